// The app on a big workspace (issue #6's targets), measured end to end:
//
//   browser  `cairn serve` + the UI in Debian's Chromium: launch → first screen interactive,
//            query answered on screen (p50/p95/max over typed queries), scrolling the table to a
//            far position until its rows are filled, the run with 10 metrics × 100k steps open
//            with all charts drawn; the server's RSS.
//   desktop  the Tauri window under Xvfb (through tauri-driver): launch → first screen, the same
//            queries, the long run; RSS of the app and its WebKit processes together.
//   cost     the cost dashboard (issue #16) in Chromium against `cairn serve`: its first paint
//            (spend chart drawn, the families' table filled) on a fresh page load, measured from
//            navigation start, and when opened from the catalog; the first load after the server
//            starts is reported apart (it may cost runs the projection has not caught up with).
//
//   node bench/app.mjs [browser] [desktop] [cost]   (run from ui/, after `npm run build`;
//                                                    none named: browser and desktop)
//
// Environment: CAIRN_BIN (the `cairn` binary; default target/release/cairn), CAIRN_DESKTOP_BIN
// (default target/debug/cairn-desktop), BENCH_WS (workspace; created with `cairn demo` when it
// does not exist), RUNS (100000), LONG_STEPS (100000), OUT (results.jsonl appended to; default
// /tmp/cairn-bench/results.jsonl). The desktop part needs a display (xvfb-run) and tauri-driver.

import { execFileSync, spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";
import { freePort } from "../e2e/ports.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const cairn = process.env.CAIRN_BIN ?? join(repo, "target/release/cairn");
const desktopBin = process.env.CAIRN_DESKTOP_BIN ?? join(repo, "target/debug/cairn-desktop");
const runs = Number(process.env.RUNS ?? 100000);
const longSteps = Number(process.env.LONG_STEPS ?? 100000);
const ws = process.env.BENCH_WS ?? `/tmp/cairn-bench/app-ws-${runs}`;
const out = process.env.OUT ?? "/tmp/cairn-bench/results.jsonl";
const parts = process.argv.slice(2).length ? process.argv.slice(2) : ["browser", "desktop"];

const QUERIES = [
  "metrics.acc > 0.9",
  "params.optimizer = 'adam' and metrics.val_loss < 0.5",
  "resnet",
  "status:failed",
  "metrics.acc > 0.8 and params.batch_size >= 128",
  "owner:alice",
  "params.learning_rate < 0.001 or params.optimizer = 'sgd'",
  "created > -30d and metrics.loss < 0.6",
  "not params.scheduler = 'cosine'",
  "metrics.acc > 0.95",
];

function record(name, value, unit, extra = {}) {
  const r = { bench: "app", name, value: Math.round(value * 10) / 10, unit, runs, ...extra };
  appendFileSync(out, JSON.stringify(r) + "\n");
  console.log(`${name}: ${r.value} ${unit}${Object.keys(extra).length ? " " + JSON.stringify(extra) : ""}`);
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}

/** Kilobytes of a process' status field (VmRSS, VmHWM). */
function statusKb(pid, field) {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Kilobytes of a process' proportional set size: shared pages (WebKit's libraries, mapped by
 *  every WebKit process) counted once across the processes that share them. */
function pssKb(pid) {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function comm(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "?";
  }
}

function children(pid) {
  const kids = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) kids.push(Number(d));
    } catch {
      // Gone already.
    }
  }
  return kids;
}

function tree(pid) {
  return [pid, ...children(pid).flatMap(tree)];
}

function pidOf(comm) {
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, "utf8").trim() === comm) return Number(d);
    } catch {
      // Gone already.
    }
  }
  return null;
}

/** The workspace: a demo of `runs` runs. */
function prepareDemo() {
  mkdirSync(dirname(ws), { recursive: true });
  if (!existsSync(join(ws, "catalog.db"))) {
    console.log(`creating ${runs} demo runs in ${ws} (minutes at 100k)…`);
    execFileSync(cairn, ["--workspace", ws, "--user", "alice", "demo", "--runs", String(runs)], { stdio: "inherit" });
  }
}

/** The workspace: a demo of `runs` runs plus one run with 10 metrics × `longSteps` steps. */
function prepare() {
  const marker = join(ws, "bench-long-run");
  if (!existsSync(marker)) {
    prepareDemo();
    const id = /[0-9a-f]{32}/.exec(execFileSync(cairn, ["--workspace", ws, "--user", "alice", "run", "start", "--exp", "long-runs", "--name", "long-10x100k"], { encoding: "utf8" }))[0];
    const csv = join(dirname(ws), "long-run.csv");
    const lines = ["step," + Array.from({ length: 10 }, (_, k) => `m${k}`).join(",")];
    for (let s = 0; s < longSteps; s++) {
      const row = [s];
      for (let k = 0; k < 10; k++) row.push((Math.exp(-s / (longSteps / 4)) * (k + 1) + 0.05 * Math.sin(s / 50 + k) + (s % 9973 === 0 ? 3 : 0)).toFixed(6));
      lines.push(row.join(","));
    }
    writeFileSync(csv, lines.join("\n") + "\n");
    execFileSync(cairn, ["--workspace", ws, "run", "log", id, "--csv", csv], { stdio: "inherit" });
    execFileSync(cairn, ["--workspace", ws, "run", "end", id], { stdio: "inherit" });
    writeFileSync(marker, id);
  }
  return readFileSync(marker, "utf8").trim();
}

// In the page: type `q` into the query bar, press Enter, resolve with the milliseconds until the
// summary shows the new result (it passes through "searching…") and a frame has been painted.
const QUERY_IN_PAGE = `
  const [q, done] = arguments;
  const input = document.querySelector('input[aria-label="query"]');
  const summary = document.querySelector('[data-testid="summary"]');
  // Focused, as when typing: Enter elsewhere opens the run under the table's cursor.
  input.focus();
  const set = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set;
  set.call(input, q);
  input.dispatchEvent(new Event("input", { bubbles: true }));
  // Typing renders before Enter is pressed (the handler reads the rendered query); the clock
  // starts at Enter.
  setTimeout(() => {
    let searching = false;
    const obs = new MutationObserver(() => {
      const t = summary.textContent || "";
      if (t.startsWith("searching")) searching = true;
      else if (searching && / runs/.test(t)) {
        obs.disconnect();
        requestAnimationFrame(() => done(performance.now() - t0));
      }
    });
    obs.observe(summary, { subtree: true, childList: true, characterData: true });
    const t0 = performance.now();
    input.dispatchEvent(new KeyboardEvent("keydown", { key: "Enter", bubbles: true }));
  }, 50);
`;

// In the page: open a run and resolve with the milliseconds until every chart image has loaded.
const OPEN_RUN_IN_PAGE = `
  const [id, expected, done] = arguments;
  const t0 = performance.now();
  location.hash = "#/run/" + id;
  const poll = () => {
    const imgs = [...document.querySelectorAll('figure.chart[data-state="ready"] img')];
    if (imgs.length >= expected && imgs.every((i) => i.complete && i.naturalWidth > 0)) requestAnimationFrame(() => done(performance.now() - t0));
    else setTimeout(poll, 5);
  };
  poll();
`;

// In the page: scroll the runs table to a far position; resolve when its rows are filled.
const SCROLL_IN_PAGE = `
  const [fraction, done] = arguments;
  location.hash = "#/";
  const t0 = performance.now();
  const go = () => {
    const body = document.querySelector(".table .body");
    if (!body || !/ runs/.test(document.querySelector('[data-testid="summary"]')?.textContent || "")) return setTimeout(go, 5);
    body.scrollTop = body.scrollHeight * fraction;
    body.dispatchEvent(new Event("scroll"));
    const t1 = performance.now();
    const poll = () => {
      const cells = [...body.querySelectorAll(".row .cell:nth-child(2)")];
      if (cells.length > 0 && cells.every((c) => c.textContent !== "…")) requestAnimationFrame(() => done(performance.now() - t1));
      else setTimeout(poll, 5);
    };
    poll();
  };
  go();
`;

// In the page: open the cost dashboard from wherever the app is; resolve with the milliseconds
// until its spend chart is drawn and its families' table filled, and a frame painted.
const OPEN_COST_IN_PAGE = `
  const [done] = arguments;
  const t0 = performance.now();
  location.hash = "#/cost";
  const poll = () => {
    const img = document.querySelector('img[data-testid="spend-chart"]');
    const rows = document.querySelectorAll('[data-testid="cost-table"] tbody tr').length;
    if (img && img.complete && img.naturalWidth > 0 && rows > 0) requestAnimationFrame(() => done(performance.now() - t0));
    else setTimeout(poll, 5);
  };
  poll();
`;

// In a page just loaded at #/cost: the same, in milliseconds from the navigation's start (the
// HTML, the bundle, the API call and the chart all inside the clock).
const COST_PAINTED_IN_PAGE = `
  const [done] = arguments;
  const poll = () => {
    const img = document.querySelector('img[data-testid="spend-chart"]');
    const rows = document.querySelectorAll('[data-testid="cost-table"] tbody tr').length;
    if (img && img.complete && img.naturalWidth > 0 && rows > 0) requestAnimationFrame(() => done(performance.now()));
    else setTimeout(poll, 5);
  };
  poll();
`;

/** Runs one of the scripts above in a Playwright page, the way WebDriver's execute/async does:
 *  its arguments, then the callback that finishes it. */
const inPage = (page, src, args) => page.evaluate(([src, args]) => new Promise((done) => new Function(src).apply(null, [...args, done])), [src, args]);

const launchBrowser = () =>
  chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });

/** `cairn serve` on the workspace, and the address it announced. */
async function serve() {
  const server = spawn(cairn, ["--workspace", ws, "--user", "alice", "serve", "--port", "0", "--ui-dir", join(repo, "ui/dist")], { stdio: ["ignore", "pipe", "inherit"] });
  const base = await new Promise((ok, fail) => {
    let text = "";
    server.stdout.on("data", (d) => {
      text += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (m) ok(m[1]);
    });
    server.on("exit", (code) => fail(new Error(`cairn serve exited with ${code}`)));
  });
  return { server, base };
}

async function browserBench(longRun) {
  const browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const t0 = performance.now();
  const { server, base } = await serve();
  const listening = performance.now() - t0;
  await page.goto(base + "/");
  await page.waitForFunction(() => / runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? "") && document.querySelector(".body .row .cell:nth-child(2)")?.textContent !== "…");
  record("browser: launch to first screen", performance.now() - t0, "ms", { listening_ms: Math.round(listening) });

  const times = [];
  const byQuery = new Map(QUERIES.map((q) => [q, []]));
  for (let round = 0; round < 3; round++) {
    for (const q of QUERIES) {
      const t = await inPage(page, QUERY_IN_PAGE, [q]);
      times.push(t);
      byQuery.get(q).push(t);
    }
  }
  const q = stats(times);
  const slowest = [...byQuery].map(([k, v]) => [k, Math.round(stats(v).p50)]).sort((a, b) => b[1] - a[1])[0];
  record("browser: query answered on screen p50", q.p50, "ms", { p95: Math.round(q.p95), max: Math.round(q.max), queries: times.length, slowest_query_p50: slowest });
  await inPage(page, QUERY_IN_PAGE, [""]);
  const scrolls = [];
  for (const f of [0.5, 0.9, 0.1, 0.99, 0.3]) scrolls.push(await inPage(page, SCROLL_IN_PAGE, [f]));
  const s = stats(scrolls);
  record("browser: scroll to a far row, rows filled p50", s.p50, "ms", { max: Math.round(s.max) });
  const opens = [];
  for (let i = 0; i < 3; i++) {
    await page.evaluate(() => (location.hash = "#/"));
    await page.waitForTimeout(200);
    opens.push(await inPage(page, OPEN_RUN_IN_PAGE, [longRun, 10]));
  }
  const o = stats(opens);
  record(`browser: run with 10 metrics × ${longSteps} steps, all charts drawn p50`, o.p50, "ms", { max: Math.round(o.max) });
  record("browser: cairn serve RSS (peak)", statusKb(server.pid, "VmHWM") / 1024, "MiB", { now_mib: Math.round(statusKb(server.pid, "VmRSS") / 1024) });
  await page.screenshot({ path: "/tmp/cairn-bench/app-browser.png" });
  await browser.close();
  server.kill("SIGTERM");
}

async function costBench() {
  const browser = await launchBrowser();
  const { server, base } = await serve();
  const load = async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(base + "/#/cost");
    const t = await inPage(page, COST_PAINTED_IN_PAGE, []);
    return { page, t };
  };
  const first = await load();
  record("cost dashboard: first paint, first load after the server started", first.t, "ms");
  await first.page.screenshot({ path: "/tmp/cairn-bench/app-cost.png", fullPage: true });
  await first.page.close();
  const loads = [];
  for (let i = 0; i < 5; i++) {
    const { page, t } = await load();
    loads.push(t);
    await page.close();
  }
  const l = stats(loads);
  record("cost dashboard: first paint on a fresh page load p50", l.p50, "ms", { max: Math.round(l.max), loads: loads.length });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  await page.goto(base + "/");
  const opens = [];
  for (let i = 0; i < 5; i++) {
    await page.evaluate(() => (location.hash = "#/"));
    await page.waitForFunction(() => / runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
    opens.push(await inPage(page, OPEN_COST_IN_PAGE, []));
  }
  const o = stats(opens);
  record("cost dashboard: opened from the catalog, painted p50", o.p50, "ms", { max: Math.round(o.max), opens: opens.length });
  await browser.close();
  server.kill("SIGTERM");
}

async function desktopBench(longRun) {
  const [port, nativePort] = [await freePort(), await freePort()];
  const wd = `http://127.0.0.1:${port}`;
  const driver = spawn(process.env.TAURI_DRIVER ?? "tauri-driver", ["--port", String(port), "--native-port", String(nativePort)], {
    stdio: "ignore",
    env: { ...process.env, CAIRN_WORKSPACE: ws, CAIRN_USER: "alice" },
  });
  const call = async (method, path, body) => {
    const res = await fetch(wd + path, { method, headers: { "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${JSON.stringify(json)}`);
    return json.value;
  };
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(wd + "/status")).ok) break;
    } catch {
      if (i > 200) throw new Error("tauri-driver did not start");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const t0 = performance.now();
  const { sessionId } = await call("POST", "/session", { capabilities: { alwaysMatch: { "tauri:options": { application: desktopBin } } } });
  const exec = (script, args = []) => call("POST", `/session/${sessionId}/execute/sync`, { script, args });
  const execAsync = (script, args = []) => call("POST", `/session/${sessionId}/execute/async`, { script, args });
  for (;;) {
    const ready = await exec(`return / runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? "") && document.querySelector(".body .row .cell:nth-child(2)")?.textContent !== "…"`).catch(() => false);
    if (ready) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  record("desktop: launch to first screen", performance.now() - t0, "ms");
  // The kernel keeps the first 15 bytes of a program's name.
  const app = pidOf(desktopBin.split("/").pop().slice(0, 15));
  const rssFirst = app ? tree(app).reduce((a, p) => a + statusKb(p, "VmRSS"), 0) / 1024 : NaN;
  const times = [];
  for (let round = 0; round < 2; round++) for (const q of QUERIES) times.push(await execAsync(QUERY_IN_PAGE, [q]));
  const q = stats(times);
  record("desktop: query answered on screen p50", q.p50, "ms", { p95: Math.round(q.p95), max: Math.round(q.max), queries: times.length });
  await execAsync(QUERY_IN_PAGE, [""]);
  const opens = [];
  for (let i = 0; i < 3; i++) {
    await exec(`location.hash = "#/"`);
    await new Promise((r) => setTimeout(r, 200));
    opens.push(await execAsync(OPEN_RUN_IN_PAGE, [longRun, 10]));
  }
  const o = stats(opens);
  record(`desktop: run with 10 metrics × ${longSteps} steps, all charts drawn p50`, o.p50, "ms", { max: Math.round(o.max) });
  const procs = app ? tree(app) : [];
  const rss = procs.reduce((a, p) => a + statusKb(p, "VmRSS"), 0) / 1024;
  const pss = procs.reduce((a, p) => a + pssKb(p), 0) / 1024;
  const each = Object.fromEntries(procs.map((p) => [comm(p), { rss_mib: Math.round(statusKb(p, "VmRSS") / 1024), pss_mib: Math.round(pssKb(p) / 1024) }]));
  record("desktop: memory of the app and its WebKit processes (PSS)", pss, "MiB", { rss_sum_mib: Math.round(rss), at_first_screen_rss_mib: Math.round(rssFirst), app_peak_rss_mib: app ? Math.round(statusKb(app, "VmHWM") / 1024) : null, each });
  await call("DELETE", `/session/${sessionId}`).catch(() => {});
  driver.kill("SIGTERM");
  // The app can outlive its driver; the next run must not find it.
  if (app) {
    try {
      process.kill(app, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
}

mkdirSync(dirname(out), { recursive: true });
// The long run only for the parts that open it.
const longRun = parts.some((p) => p !== "cost") ? prepare() : (prepareDemo(), null);
if (parts.includes("browser")) await browserBench(longRun);
if (parts.includes("desktop")) await desktopBench(longRun);
if (parts.includes("cost")) await costBench();
process.exit(0);
