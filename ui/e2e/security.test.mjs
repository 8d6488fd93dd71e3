// What a web page the user visits can do to a local Cairn: a real Chromium page served from
// another origin fires the requests any page may make without asking (`<img>` GETs, `fetch` with
// `mode: "no-cors"`, `<form method=post>`) at `cairn serve` and at the desktop app's in-process
// server, then the test checks through the API (same origin, JSON) that nothing changed and the
// server still answers `/health`. Run under `xvfb-run` (the desktop app needs a display).

import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const cairn = process.env.CAIRN_BIN ?? join(repo, "target/debug/cairn");
const desktopBin = process.env.CAIRN_DESKTOP_BIN ?? join(repo, "target/debug/cairn-desktop");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";

// An availability bound, not a speed measurement: a server that is up answers `/health` in a few
// milliseconds; one whose workers are wedged or that has died does not answer at all.
const HEALTH_MS = 1000;
// How long a page's requests may take before the test looks at what they did.
const ATTACK_MS = 10000;

let browser, attacker, attackerPort;
const scratch = [];

/** The attacker's site: one page that fires the requests its URL's fragment lists, all at once,
 *  and sets its title to "done" when every one has been answered or failed (or the time is up). */
const ATTACK_PAGE = `<!doctype html><title>attacking</title><body><script>
const { shots, timeout } = JSON.parse(decodeURIComponent(location.hash.slice(1)));
function img(s) {
  return new Promise((ok) => { const i = new Image(); i.onload = i.onerror = ok; i.src = s.url; document.body.append(i); });
}
function post(s) {
  const init = { method: "POST", mode: "no-cors", credentials: "include" };
  if (s.type === null) init.body = new Blob([s.body]);
  else { init.body = s.body; init.headers = { "Content-Type": s.type }; }
  return fetch(s.url, init).then(() => {}, () => {});
}
function form(s, n) {
  return new Promise((ok) => {
    const frame = document.createElement("iframe");
    frame.name = "f" + n;
    document.body.append(frame);
    frame.onload = () => {
      // The first load may be the empty frame; the answer comes from the server's origin.
      try { if (frame.contentWindow.location.href === "about:blank") return; } catch {}
      ok();
    };
    const f = document.createElement("form");
    f.method = "post";
    f.enctype = s.enctype;
    f.action = s.url;
    f.target = frame.name;
    for (const [k, v] of s.fields) {
      const i = document.createElement("input");
      i.type = "hidden"; i.name = k; i.value = v;
      f.append(i);
    }
    document.body.append(f);
    f.submit();
  });
}
const fire = { img, post, form };
Promise.race([
  Promise.all(shots.map((s, n) => fire[s.kind](s, n))),
  new Promise((ok) => setTimeout(ok, timeout)),
]).then(() => { document.title = "done"; });
</script>`;

/** A Cairn server under attack: `cairn serve`, or the desktop app with its in-process server. */
class Target {
  constructor(name, start) {
    this.name = name;
    this.start = start;
  }

  async up() {
    if (!this.workspace) {
      this.workspace = mkdtempSync(join(tmpdir(), "cairn-security-"));
      scratch.push(this.workspace);
      execFileSync(cairn, ["--workspace", this.workspace, "--user", "alice", "demo", "--runs", "20", "--steps", "20"], { stdio: "ignore" });
    }
    ({ child: this.child, url: this.base } = await this.start(this.workspace));
    const victim = (await this.get("/api/v1/search?limit=1")).runs[0].id;
    const run = (await this.get(`/api/2.0/mlflow/runs/get?run_id=${victim}`)).run;
    this.victim = victim;
    this.experiment = run.info.experiment_id;
  }

  /** Starts the server again when an attack took it down (so each case is judged on its own). */
  async ensureUp() {
    if (this.child && (await this.health()).ok) return;
    await this.stop();
    await this.up();
  }

  async stop() {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((ok) => child.once("exit", ok));
    child.kill("SIGTERM");
    // A server with wedged workers ignores SIGTERM.
    const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(timer);
  }

  async get(path) {
    const res = await fetch(this.base + path, { signal: AbortSignal.timeout(10000) });
    assert.equal(res.status, 200, `${this.name} GET ${path}: ${res.status}`);
    return res.json();
  }

  /** Whether `/health` answers within HEALTH_MS, and how long it took. */
  async health() {
    const t0 = performance.now();
    try {
      const res = await fetch(this.base + "/health", { signal: AbortSignal.timeout(HEALTH_MS) });
      await res.text();
      return { ok: res.ok, ms: performance.now() - t0 };
    } catch (e) {
      return { ok: false, ms: performance.now() - t0, error: e.message };
    }
  }

  /** Everything an attack could change, read through the API. */
  async state() {
    return {
      experiments: await this.get("/api/v1/experiments"),
      runs: (await this.get("/api/v1/search?limit=1")).total,
      victim: (await this.get(`/api/2.0/mlflow/runs/get?run_id=${this.victim}`)).run,
      views: await this.get("/api/v1/views"),
      team: (await this.get("/api/v1/team")).team,
    };
  }
}

function outputMatch(child, stream, re, what) {
  return new Promise((ok, fail) => {
    let out = "";
    child[stream].on("data", (d) => {
      out += d;
      const m = re.exec(out);
      if (m) ok({ child, url: m[1] });
    });
    child.on("exit", (code) => fail(new Error(`${what} exited with ${code}: ${out}`)));
  });
}

function startServe(ws) {
  const child = spawn(cairn, ["--workspace", ws, "--user", "alice", "serve", "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  return outputMatch(child, "stdout", /at (http:\/\/127\.0\.0\.1:\d+)/, "cairn serve");
}

function startDesktop(ws) {
  assert.ok(process.env.DISPLAY, "the desktop app needs a display: run this test under xvfb-run");
  // The app says where its in-process server listens (port 0: the OS picks a free one).
  const child = spawn(desktopBin, [], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, CAIRN_WORKSPACE: ws, CAIRN_USER: "alice", CAIRN_PORT: "0" },
  });
  return outputMatch(child, "stderr", /tracking server at (http:\/\/127\.0\.0\.1:\d+)/, "cairn-desktop");
}

const targets = [new Target("cairn serve", startServe), new Target("the desktop app", startDesktop)];

before(async () => {
  attacker = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(ATTACK_PAGE);
  });
  await new Promise((ok) => attacker.listen(0, "127.0.0.1", ok));
  attackerPort = attacker.address().port;
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // A site on the internet as the browser sees it, served by the test.
      "--host-resolver-rules=MAP evil.example 127.0.0.1",
    ],
  });
});

after(async () => {
  await browser?.close();
  for (const t of targets) await t.stop();
  attacker?.close();
  for (const dir of scratch) rmSync(dir, { recursive: true, force: true });
});

/** Opens the attacker's page at `origin` and waits until it has fired every shot. */
async function attack(origin, shots) {
  const page = await browser.newPage();
  try {
    const config = encodeURIComponent(JSON.stringify({ shots, timeout: ATTACK_MS }));
    // Not "load": images that never answer would hold the load event.
    await page.goto(`${origin}/#${config}`, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(() => document.title === "done", null, { timeout: ATTACK_MS + 10000 });
  } finally {
    await page.close();
  }
}

const DEEP = "(".repeat(2500);
const WILD = `name LIKE '${"%".repeat(30)}x'`;

/** MLflow writes a page would like to make, with the JSON bodies MLflow's handlers take. */
function writes(t, mark) {
  const m = `${t.base}/api/2.0/mlflow`;
  return [
    [`${m}/runs/create`, { experiment_id: t.experiment, run_name: `csrf-${mark}`, start_time: 1 }],
    [`${m}/experiments/create`, { name: `csrf-${mark}` }],
    [`${m}/runs/log-batch`, {
      run_id: t.victim,
      params: [{ key: `csrf-${mark}`, value: "1" }],
      metrics: [{ key: `csrf-${mark}`, value: 1, timestamp: 1, step: 0 }],
      tags: [{ key: `csrf-${mark}`, value: "1" }],
    }],
    [`${m}/runs/delete`, { run_id: t.victim }],
    [`${t.base}/api/v1/views/csrf-${mark}`, { query: "", columns: [] }],
    [`${t.base}/api/v1/team`, { name: `csrf-${mark}`, email: null }],
  ];
}

/** The same writes as `fetch(…, {mode: "no-cors"})` POSTs, with every Content-Type a page may
 *  send without asking the server first (and none at all). */
function noCorsWrites(t) {
  const types = ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", null];
  return types.flatMap((type, n) => writes(t, `fetch${n}`).map(([url, body]) => ({ kind: "post", url, type, body: JSON.stringify(body) })));
}

/** The same writes as HTML forms: a text/plain form smuggles a JSON body in a field's name; an
 *  urlencoded form sends the fields MLflow's request names. */
function formWrites(t) {
  const plain = writes(t, "plain").map(([url, body]) => {
    const json = JSON.stringify({ ...body, pad: "" });
    // `name=value`: the name ends inside the pad string, the value closes it.
    return { kind: "form", url, enctype: "text/plain", fields: [[json.slice(0, -2), '"}']] };
  });
  const encoded = writes(t, "encoded").map(([url, body]) => ({
    kind: "form",
    url,
    enctype: "application/x-www-form-urlencoded",
    fields: Object.entries(body).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  }));
  return [...plain, ...encoded];
}

const cases = [
  {
    name: "<img> GET of a search with 2,500 '('",
    shots: (t) => [{ kind: "img", url: `${t.base}/api/v1/search?q=${DEEP}` }],
  },
  {
    name: "<img> GETs of a LIKE filter of 30 '%'",
    shots: (t) => [
      // One request per worker and more: one wedged worker is not yet an outage.
      ...[1, 2, 3, 4].map((n) => ({ kind: "img", url: `${t.base}/api/2.0/mlflow/experiments/search?max_results=${n}&filter=${encodeURIComponent(WILD)}` })),
      { kind: "img", url: `${t.base}/api/v1/search?q=${encodeURIComponent(`attributes.run_name LIKE '${"%".repeat(30)}x'`)}` },
    ],
  },
  {
    name: "no-cors POSTs of hostile filters",
    shots: (t) => [
      { kind: "post", url: `${t.base}/api/2.0/mlflow/runs/search`, type: "text/plain", body: JSON.stringify({ experiment_ids: [t.experiment], filter: DEEP }) },
      ...[1, 2, 3, 4].map((n) => ({ kind: "post", url: `${t.base}/api/2.0/mlflow/experiments/search`, type: "text/plain", body: JSON.stringify({ max_results: n, filter: WILD }) })),
    ],
  },
  { name: "no-cors POSTs that write", shots: noCorsWrites, fromLoopback: true },
  { name: "form POSTs that write", shots: formWrites, fromLoopback: true },
];

for (const target of targets) {
  describe(`a page on another origin against ${target.name}`, () => {
    for (const c of cases) {
      // A page on this machine (another port) is another origin too, and sends an Origin with
      // the same host as the server's.
      const from = c.fromLoopback ? ["evil.example", "127.0.0.1"] : ["evil.example"];
      for (const host of from) {
        test(`${c.name}, from ${host}: nothing changes and the server stays up`, async () => {
          await target.ensureUp();
          const before = await target.state();
          await attack(`http://${host}:${attackerPort}`, c.shots(target));
          const health = await target.health();
          assert.ok(health.ok, `${target.name} answers /health within ${HEALTH_MS} ms after the attack (${health.error ?? `${health.ms.toFixed(0)} ms`})`);
          const after = await target.state();
          assert.deepEqual(after.experiments, before.experiments, "no experiment created or changed");
          assert.equal(after.runs, before.runs, "no run created or deleted");
          assert.equal(after.victim.info.lifecycle_stage, "active", "the run is not deleted");
          assert.deepEqual(after.victim, before.victim, "the run's params, metrics and tags are unchanged");
          assert.deepEqual(after.views, before.views, "no saved view");
        });
      }
    }
  });
}
