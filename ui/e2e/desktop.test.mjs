// The real desktop window (Tauri + WebKitGTK) under Xvfb, driven over WebDriver through
// tauri-driver and Debian's WebKitWebDriver: the app opens on a workspace, shows the catalog, a
// search narrows it, the window stays responsive while its workspace is busy, a teammate joins
// its team, and a second window on a fresh workspace joins another team through its Team page
// and shows the team's notebook. Run under `xvfb-run`; screenshots go to e2e/screenshots/.

import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { freePort } from "./ports.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const cairn = process.env.CAIRN_BIN ?? join(repo, "target/debug/cairn");
const desktop = process.env.CAIRN_DESKTOP_BIN ?? join(repo, "target/debug/cairn-desktop");
const driverBin = process.env.TAURI_DRIVER ?? "tauri-driver";
const shots = join(here, "screenshots");
let driver, session, workspace, wd, syncAddr, teammate;
let driverLog = "";

async function call(method, path, body) {
  const res = await fetch(wd + path, { method, headers: { "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json.value;
}

async function waitFor(what, fn, timeoutMs = 30000) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}: ${last}`);
}

async function find(css, using = "css selector") {
  const el = await call("POST", `/session/${session}/element`, { using, value: css });
  return Object.values(el)[0];
}

async function text(css) {
  return call("GET", `/session/${session}/element/${await find(css)}/text`);
}

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), "cairn-desktop-"));
  execFileSync(cairn, ["--workspace", workspace, "--user", "alice", "demo", "--runs", "120", "--steps", "100"], { stdio: "ignore" });
  // A team workspace: the window runs its sync node, on a port the test knows.
  execFileSync(cairn, ["--workspace", workspace, "--user", "alice", "team", "create", "lab", "--email", "alice@example.org"], { stdio: "ignore" });
  syncAddr = `127.0.0.1:${await freePort()}`;
  // Both tauri-driver's port and WebKitWebDriver's behind it are picked free, so a leftover
  // driver or another test run cannot collide with this one.
  const [port, nativePort] = [await freePort(), await freePort()];
  wd = `http://127.0.0.1:${port}`;
  driver = spawn(driverBin, ["--port", String(port), "--native-port", String(nativePort)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, CAIRN_WORKSPACE: workspace, CAIRN_USER: "alice", CAIRN_SYNC_BIND: syncAddr },
  });
  driver.stdout.on("data", (d) => (driverLog += d));
  driver.stderr.on("data", (d) => (driverLog += d));
  driver.on("exit", (code) => (driverLog += `\n[tauri-driver exited with ${code}]`));
  await waitFor("tauri-driver", async () => (await fetch(wd + "/status")).ok, 60000).catch((e) => {
    throw new Error(`${e.message}\ntauri-driver said:\n${driverLog}`);
  });
  const s = await call("POST", "/session", { capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application: desktop } } } });
  session = s.sessionId;
  mkdirSync(shots, { recursive: true });
});

/** Pids of the app started on a workspace (found by its binary and CAIRN_WORKSPACE). */
function appPids(ws = workspace) {
  const exe = resolve(desktop);
  const pids = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readlinkSync(`/proc/${d}/exe`) !== exe) continue;
      if (readFileSync(`/proc/${d}/environ`, "utf8").split("\0").includes(`CAIRN_WORKSPACE=${ws}`)) pids.push(Number(d));
    } catch {
      // Gone, or not ours to read.
    }
  }
  return pids;
}

after(async () => {
  if (session) await call("DELETE", `/session/${session}`).catch(() => {});
  driver?.kill("SIGTERM");
  // Ending the WebDriver session closes the webview, but the app can outlive its driver (seen in
  // CI: an orphaned window kept the driver's output pipe, and so this test, open for minutes).
  await waitFor("the app to exit", async () => appPids().length === 0, 3000).catch(() => {
    for (const pid of appPids()) process.kill(pid, "SIGKILL");
  });
  if (workspace) rmSync(workspace, { recursive: true, force: true });
  // The teammate's workspace lives in a temporary directory of its own: remove that too.
  if (teammate) rmSync(dirname(teammate), { recursive: true, force: true });
});

test("the desktop window opens on the catalog and a search narrows it", async () => {
  const all = await waitFor("the catalog", async () => {
    const t = await text("[data-testid=summary]");
    return /^120 runs/.test(t) && t;
  });
  assert.match(all, /^120 runs/);
  // The header shows where MLflow clients can log: the in-process tracking server.
  assert.match(await text("[data-testid=tracking]"), /MLFLOW_TRACKING_URI=http:\/\/127\.0\.0\.1:\d+/);
  const shot = await call("GET", `/session/${session}/screenshot`);
  writeFileSync(join(shots, "desktop-1-catalog.png"), Buffer.from(shot, "base64"));

  const input = await find("input[aria-label=query]");
  await call("POST", `/session/${session}/element/${input}/value`, { text: "params.optimizer = 'sgd'\uE007" });
  const narrowed = await waitFor("the narrowed catalog", async () => {
    const m = /^(\d+) runs/.exec(await text("[data-testid=summary]"));
    return m && Number(m[1]) < 120 && Number(m[1]);
  });
  assert.ok(narrowed > 0, "some demo runs use sgd");
  const rows = await call("POST", `/session/${session}/elements`, { using: "css selector", value: ".body .row" });
  assert.ok(rows.length > 0 && rows.length <= narrowed + 20, `${rows.length} rows shown for ${narrowed} runs`);
  const shot2 = await call("GET", `/session/${session}/screenshot`);
  writeFileSync(join(shots, "desktop-2-search.png"), Buffer.from(shot2, "base64"));
});

test("a notebook in the window draws its embeds: a run card, a chart and a comparison", async () => {
  const tracking = /MLFLOW_TRACKING_URI=(http:\/\/127\.0\.0\.1:\d+)/.exec(await text("[data-testid=tracking]"))[1];
  const api = async (method, path, body) => {
    const res = await fetch(`${tracking}/api/v1${path}`, { method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body) });
    const answer = await res.text();
    assert.ok(res.ok, `${method} ${path}: ${res.status} ${answer}`);
    return JSON.parse(answer);
  };
  const runs = (await api("GET", "/search?limit=2&q=" + encodeURIComponent("attributes.status = 'FINISHED'"))).runs;
  assert.equal(runs.length, 2);
  const [a, b] = runs;
  const metric = Object.keys(a.metrics)[0];
  const nb = await api("POST", "/notebooks", {
    title: "Desktop embeds",
    text: `# Two runs\n\nThe first: [[run:${a.id}]]\n\n{{chart runs=${a.id},${b.id} metric=${metric}}}\n\n{{compare runs=${a.id},${b.id}}}\n`,
    tags: null, owners: null, experiment: null,
  });
  await call("POST", `/session/${session}/execute/sync`, { script: `location.hash = "#/notebooks/${nb.id}"`, args: [] });
  const preview = "[data-testid=nb-preview]";
  await waitFor("the run card", async () => (await text(`${preview} [data-run="${a.id}"] a`)) === a.name);
  await waitFor("the chart", async () => find(`${preview} figure.nb-chart svg`));
  await waitFor("the comparison", async () => /2 runs compared/.test(await text(`${preview} table.nb-compare`)));
  assert.equal(await text(`${preview} table.nb-compare th[data-run="${b.id}"] a`), b.name);
  const shot = await call("GET", `/session/${session}/screenshot`);
  writeFileSync(join(shots, "desktop-1b-notebook-embeds.png"), Buffer.from(shot, "base64"));
  // Back to the catalog, where the next test starts.
  await call("POST", `/session/${session}/execute/sync`, { script: `location.hash = "#/"`, args: [] });
  await waitFor("the catalog again", async () => /^\d+ runs/.test(await text("[data-testid=summary]")));
});

/** Holds the write lock of a workspace database from another process (as a training job's long
 *  transaction would) until `release()`: every write to it waits, up to SQLite's busy timeout. */
async function holdWriteLock(db) {
  const holder = spawn("python3", ["-c", [
    "import sqlite3, sys",
    "db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)",
    "db.execute('BEGIN IMMEDIATE')",
    "print('locked', flush=True)",
    "sys.stdin.readline()",
    "db.execute('ROLLBACK')",
  ].join("\n"), db], { stdio: ["pipe", "pipe", "inherit"] });
  await new Promise((ok, fail) => {
    holder.stdout.on("data", (d) => /locked/.test(String(d)) && ok());
    holder.on("exit", (code) => fail(new Error(`the lock holder exited with ${code}`)));
  });
  const exited = new Promise((ok) => holder.on("exit", ok));
  return async () => {
    holder.stdin.end();
    await exited;
  };
}

test("the window stays responsive while the in-process server holds its workspace", async () => {
  const tracking = /MLFLOW_TRACKING_URI=(http:\/\/127\.0\.0\.1:\d+)/.exec(await text("[data-testid=tracking]"))[1];
  const release = await holdWriteLock(join(workspace, "catalog.db"));
  let released = false;
  try {
    // A tracking client's write: the server takes the workspace and waits, holding it, for the
    // catalog's write lock.
    let serverDone = false;
    const serverWrite = fetch(`${tracking}/api/2.0/mlflow/experiments/create`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "logged while the window waits" }),
    }).finally(() => (serverDone = true));
    // Then, in the window: its own write, a command that has to wait for the workspace too, and
    // meanwhile what needs no workspace: the column chooser opens, the query bar takes text. A
    // window whose main thread waits for the workspace answers none of it until the lock goes, so
    // the bound is generous and the lock is held well past it (SQLite waits 30 s for it).
    const interaction = (async () => {
      await call("POST", `/session/${session}/element/${await find("button[title^='save this query']")}/click`, {});
      await call("POST", `/session/${session}/element/${await find("input[aria-label='view name']")}/value`, { text: "saved while busy\uE007" });
      await call("POST", `/session/${session}/element/${await find("//button[text()='Columns']", "xpath")}/click`, {});
      await find(".chooser");
      const input = await find("input[aria-label=query]");
      await call("POST", `/session/${session}/element/${input}/clear`, {});
      await call("POST", `/session/${session}/element/${input}/value`, { text: "still here" });
      return call("GET", `/session/${session}/element/${input}/property/value`);
    })();
    const answered = await Promise.race([interaction, new Promise((ok) => setTimeout(() => ok(null), 15000))]);
    const stillBusy = !serverDone;
    released = true;
    await release();
    await interaction;
    assert.equal(answered, "still here", "the window answered while its workspace was busy");
    assert.ok(stillBusy, "the server's write was still waiting when the window answered (the workspace was busy)");

    // Once the lock goes, the server's write and the window's command both complete.
    const res = await serverWrite;
    assert.equal(res.status, 200, `the server's write: ${res.status} ${await res.text()}`);
    await waitFor("the view saved while busy", async () => (await call("POST", `/session/${session}/elements`, { using: "css selector", value: "select[aria-label='saved views'] option[value='saved while busy']" })).length === 1);
    // The screenshot is of the last painted frame: let the saved view reach the screen first.
    await call("POST", `/session/${session}/execute/async`, { script: "requestAnimationFrame(() => requestAnimationFrame(arguments[0]))", args: [] });
    const shot = await call("GET", `/session/${session}/screenshot`);
    writeFileSync(join(shots, "desktop-3-busy.png"), Buffer.from(shot, "base64"));
    await call("POST", `/session/${session}/element/${await find("//button[text()='Columns']", "xpath")}/click`, {});
  } finally {
    if (!released) await release();
  }
});

test("a teammate joins the open window's team and receives its catalog", async () => {
  // The window announced where it listens; an invitation carries that address.
  const ticket = execFileSync(cairn, ["--workspace", workspace, "--user", "alice", "team", "invite"], { encoding: "utf8" }).trim();
  assert.match(ticket, /^cairn1/);
  teammate = join(mkdtempSync(join(tmpdir(), "cairn-teammate-")), "ws");
  execFileSync(cairn, ["--workspace", teammate, "--user", "bob", "init"], { stdio: "ignore" });
  execFileSync(cairn, ["--workspace", teammate, "--user", "bob", "team", "join", ticket], { stdio: "ignore" });
  const runs = JSON.parse(execFileSync(cairn, ["--workspace", teammate, "--json", "runs", "list", "--limit", "1000"], { encoding: "utf8" }));
  assert.equal(runs.length, 120, "every run of the window's catalog reached the teammate");
  const members = JSON.parse(execFileSync(cairn, ["--workspace", workspace, "--json", "team", "members"], { encoding: "utf8" }));
  assert.deepEqual(members.map((m) => m.name).sort(), ["alice", "bob"]);
});

/** A second app on its own workspace, with its own tauri-driver: `{ call, find, text, stop }`. */
async function startApp(ws, env) {
  const [port, nativePort] = [await freePort(), await freePort()];
  const base = `http://127.0.0.1:${port}`;
  let log = "";
  const drv = spawn(driverBin, ["--port", String(port), "--native-port", String(nativePort)], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, CAIRN_WORKSPACE: ws, ...env },
  });
  drv.stdout.on("data", (d) => (log += d));
  drv.stderr.on("data", (d) => (log += d));
  const req = async (method, path, body) => {
    const res = await fetch(base + path, { method, headers: { "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    const json = await res.json();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json.value;
  };
  await waitFor("the second tauri-driver", async () => (await fetch(base + "/status")).ok, 60000).catch((e) => {
    throw new Error(`${e.message}\ntauri-driver said:\n${log}`);
  });
  const id = (await req("POST", "/session", { capabilities: { alwaysMatch: { browserName: "wry", "tauri:options": { application: desktop } } } })).sessionId;
  const call = (method, path, body) => req(method, `/session/${id}${path}`, body);
  const find = async (css, using = "css selector") => Object.values(await call("POST", "/element", { using, value: css }))[0];
  const text = async (css) => call("GET", `/element/${await find(css)}/text`);
  const stop = async () => {
    await call("DELETE", "").catch(() => {});
    drv.kill("SIGTERM");
    await waitFor("the second app to exit", async () => appPids(ws).length === 0, 3000).catch(() => {
      for (const pid of appPids(ws)) process.kill(pid, "SIGKILL");
    });
  };
  return { call, find, text, stop, log: () => log };
}

/** `cairn serve --sync` on `ws`, once its sync node listens. */
function serveWithSync(ws, user) {
  return new Promise((ok, fail) => {
    const child = spawn(cairn, ["--workspace", ws, "--user", user, "serve", "--port", "0", "--sync", "--sync-bind", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      if (/Cairn sync: device \w+ listening at 127\.0\.0\.1:\d+/.test(out) && /Cairn is serving/.test(out)) ok(child);
    });
    child.on("exit", (code) => fail(new Error(`cairn serve --sync exited with ${code}: ${out}`)));
  });
}

test("a teammate joins through the window's Team page and sees the team's notebook", async () => {
  // The inviter: a workspace with a team and a notebook (through the CLI), served with its sync
  // node on loopback, and an invitation printed by `cairn team invite`.
  const root = mkdtempSync(join(tmpdir(), "cairn-desktop-join-"));
  const inviter = join(root, "carol");
  const fresh = join(root, "dave");
  const as = (ws, user, ...args) => execFileSync(cairn, ["--workspace", ws, "--user", user, ...args], { encoding: "utf8" });
  as(inviter, "carol", "init");
  as(inviter, "carol", "team", "create", "optics", "--email", "carol@example.org");
  writeFileSync(join(root, "nb.md"), "# Shared findings\n\nlr 0.1 wins on the held-out set.\n");
  as(inviter, "carol", "notebook", "new", "Shared findings", "--file", join(root, "nb.md"));
  const server = await serveWithSync(inviter, "carol");
  let app;
  try {
    const ticket = as(inviter, "carol", "team", "invite").trim();
    assert.match(ticket, /^cairn1[0-9a-f]+$/);

    // The joiner: the desktop app on a fresh workspace (no team, so no sync node yet).
    as(fresh, "dave", "init");
    app = await startApp(fresh, { CAIRN_USER: "dave", CAIRN_SYNC_BIND: "127.0.0.1:0" });
    await waitFor("the second window", async () => (await app.text("[data-testid=nav-team]")) === "Team");
    await app.call("POST", `/element/${await app.find("[data-testid=nav-team]")}/click`, {});
    await waitFor("the join form", async () => app.find("[data-testid=team-ticket]"));
    await app.call("POST", `/element/${await app.find("[data-testid=team-ticket]")}/value`, { text: ticket });
    await app.call("POST", `/element/${await app.find("[data-testid=team-join-email]")}/value`, { text: "dave@example.org" });
    await app.call("POST", `/element/${await app.find("[data-testid=team-join]")}/click`, {});
    // The join runs in the background; the page polls it until the team shows.
    await waitFor("the joined team", async () => (await app.text("[data-testid=team-name]")) === "optics", 60000);
    assert.match(await app.text("[data-testid=join-status]"), /^Joined team 'optics'/);
    assert.match(await app.text("[data-testid=team-members]"), /carol[\s\S]*dave@example\.org[\s\S]*this device/);
    const shot = await app.call("GET", "/screenshot");
    writeFileSync(join(shots, "desktop-4-joined.png"), Buffer.from(shot, "base64"));

    // The team's notebook is in the window's notebook list, and opens with its text.
    await app.call("POST", `/element/${await app.find("[data-testid=nav-notebooks]")}/click`, {});
    await waitFor("the synced notebook", async () => /Shared findings/.test(await app.text("[data-testid=notebooks]")));
    await app.call("POST", `/element/${await app.find("//a[text()='Shared findings']", "xpath")}/click`, {});
    await waitFor("the notebook's text", async () => /lr 0\.1 wins on the held-out set/.test(await app.text("[data-testid=nb-preview]")));
    const shot2 = await app.call("GET", "/screenshot");
    writeFileSync(join(shots, "desktop-5-notebook.png"), Buffer.from(shot2, "base64"));

    // The inviter's roster has the window's device.
    const members = JSON.parse(as(inviter, "carol", "--json", "team", "members"));
    assert.deepEqual(members.map((m) => m.name).sort(), ["carol", "dave"]);
  } catch (e) {
    if (app) e.message += `\nthe second tauri-driver said:\n${app.log()}`;
    throw e;
  } finally {
    await app?.stop();
    server.kill("SIGTERM");
    rmSync(root, { recursive: true, force: true });
  }
});
