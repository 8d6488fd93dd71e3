// The registry screen on a big model (issue #14: "registry screen first paint ≤ 300 ms" on a
// model with 1,000 versions and 10,000 evaluations), measured in Debian's Chromium against
// `cairn serve`:
//
//   - a fresh page opened at #/models/NAME: from navigation start until the versions table
//     shows its first page (the newest 100 versions) with the count of all, and a frame has
//     been painted (the first load, then LOADS more);
//   - in the app: from #/models to #/models/NAME (a click on the model) until the same;
//   - "show all": from the click until every version's row is painted;
//   - the /api/v1 requests the screen made, with their durations and sizes (resource timing).
//
//   node bench/registry.mjs                 (run from ui/, after `npm run build`)
//
// The workspace comes from the gate benchmark, which builds that model and keeps it:
//   CAIRN_BENCH_KEEP=/tmp/cairn-bench/gate cargo bench -p cairn-core --bench gate
// Environment: CAIRN_BIN (default target/release/cairn), BENCH_WS (default
// /tmp/cairn-bench/gate/ada), MODEL (churn), VERSIONS (1000: the rows to wait for), LOADS (10),
// OUT (results.jsonl appended to; default /tmp/cairn-bench/results.jsonl).

import { spawn } from "node:child_process";
import { appendFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const cairn = process.env.CAIRN_BIN ?? join(repo, "target/release/cairn");
const ws = process.env.BENCH_WS ?? "/tmp/cairn-bench/gate/ada";
const model = process.env.MODEL ?? "churn";
const versions = Number(process.env.VERSIONS ?? 1000);
const loads = Number(process.env.LOADS ?? 10);
const out = process.env.OUT ?? "/tmp/cairn-bench/results.jsonl";

function record(name, value, unit, extra = {}) {
  const r = { bench: "registry", name, value: Math.round(value * 10) / 10, unit, versions, ...extra };
  mkdirSync(dirname(out), { recursive: true });
  appendFileSync(out, JSON.stringify(r) + "\n");
  console.log(`${name}: ${r.value} ${unit}${Object.keys(extra).length ? " " + JSON.stringify(extra) : ""}`);
}

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { p50: q(0.5), p95: q(0.95), max: s[s.length - 1] };
}

// In the page: resolves with performance.now() (ms since navigation start) once the versions
// table shows its first page (the newest 100, or all of a smaller model), the count of every
// version is on screen, and the next frame has been painted.
const SHOWN = ([n]) =>
  new Promise((done) => {
    const poll = () => {
      const rows = document.querySelectorAll('[data-testid="versions"] tbody tr').length;
      const count = document.querySelector('[data-testid="version-count"]')?.textContent ?? "";
      if (rows >= Math.min(n, 100) && count.startsWith(`${n} `)) requestAnimationFrame(() => setTimeout(() => done(performance.now()), 0));
      else setTimeout(poll, 2);
    };
    poll();
  });

// In the page: clicks "show all" and resolves with the ms until all `n` rows are painted.
const ALL = ([n]) =>
  new Promise((done) => {
    const t0 = performance.now();
    document.querySelector('[data-testid="all-versions"]').click();
    const poll = () => {
      if (document.querySelectorAll('[data-testid="versions"] tbody tr').length >= n) requestAnimationFrame(() => setTimeout(() => done(performance.now() - t0), 0));
      else setTimeout(poll, 2);
    };
    poll();
  });

// In the page: the /api/v1 requests made so far, name → [duration ms, bytes].
const REQUESTS = () =>
  performance
    .getEntriesByType("resource")
    .filter((e) => e.name.includes("/api/"))
    .map((e) => [decodeURIComponent(new URL(e.name).pathname), Math.round(e.duration), e.transferSize]);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const server = spawn(cairn, ["--workspace", ws, "--user", "ada", "serve", "--port", "0", "--ui-dir", join(repo, "ui/dist")], { stdio: ["ignore", "pipe", "inherit"] });
try {
  const base = await new Promise((ok, fail) => {
    let text = "";
    server.stdout.on("data", (d) => {
      text += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
      if (m) ok(m[1]);
    });
    server.on("exit", (code) => fail(new Error(`cairn serve exited with ${code}`)));
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const url = `${base}/#/models/${encodeURIComponent(model)}`;

  const open = async () => {
    const page = await context.newPage();
    await page.goto(url, { waitUntil: "commit" });
    const t = await page.evaluate(SHOWN, [versions]);
    const requests = await page.evaluate(REQUESTS);
    await page.close();
    return { t, requests };
  };
  const first = await open();
  record("registry screen: first load, versions shown", first.t, "ms", { requests: first.requests });
  const times = [];
  let last;
  for (let i = 0; i < loads; i++) {
    last = await open();
    times.push(last.t);
  }
  const s = stats(times);
  record("registry screen: page opened at #/models/NAME, versions shown p50", s.p50, "ms", { p95: Math.round(s.p95), max: Math.round(s.max), loads, requests: last.requests });

  // In the app: the models list, then the model.
  const page = await context.newPage();
  await page.goto(`${base}/#/models`);
  await page.waitForSelector('[data-testid="models"]');
  const moves = [];
  for (let i = 0; i < loads; i++) {
    await page.evaluate(() => (location.hash = "#/models"));
    await page.waitForSelector('[data-testid="models"]');
    const t0 = await page.evaluate(() => performance.now());
    await page.evaluate((m) => (location.hash = `#/models/${encodeURIComponent(m)}`), model);
    moves.push((await page.evaluate(SHOWN, [versions])) - t0);
  }
  const m = stats(moves);
  record("registry screen: from #/models to the model, versions shown p50", m.p50, "ms", { p95: Math.round(m.p95), max: Math.round(m.max), loads });
  if (versions > 100) {
    const alls = [];
    for (let i = 0; i < loads; i++) {
      await page.evaluate(() => (location.hash = "#/models"));
      await page.waitForSelector('[data-testid="models"]');
      await page.evaluate((m) => (location.hash = `#/models/${encodeURIComponent(m)}`), model);
      await page.evaluate(SHOWN, [versions]);
      alls.push(await page.evaluate(ALL, [versions]));
    }
    const a = stats(alls);
    record(`registry screen: "show all", all ${versions} versions painted p50`, a.p50, "ms", { p95: Math.round(a.p95), max: Math.round(a.max), loads });
  }
  await page.screenshot({ path: "/tmp/cairn-bench/registry.png" });
} finally {
  server.kill();
  await browser.close();
}
