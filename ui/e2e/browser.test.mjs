// Browser end to end: the real UI in Debian's Chromium (driven by playwright-core, no downloaded
// browser) against `cairn serve` on a demo workspace. Screenshots go to e2e/screenshots/.

import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";

import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const cairn = process.env.CAIRN_BIN ?? join(repo, "target/debug/cairn");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const shots = join(here, "screenshots");

let server, browser, page, base, workspace;

function startServer(ws, extra = [], user = "alice") {
  return new Promise((ok, fail) => {
    const child = spawn(cairn, ["--workspace", ws, "--user", user, "serve", "--port", "0", "--ui-dir", join(repo, "ui/dist"), ...extra], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (m) ok({ child, url: m[1] });
    });
    child.on("exit", (code) => fail(new Error(`cairn serve exited with ${code}: ${out}`)));
  });
}

async function apiGet(path) {
  const res = await fetch(base + path);
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

async function summaryCount() {
  const text = await page.getByTestId("summary").innerText();
  const m = /([\d,]+) runs/.exec(text);
  return m ? Number(m[1].replace(/,/g, "")) : null;
}

before(async () => {
  workspace = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  execFileSync(cairn, ["--workspace", workspace, "--user", "alice", "demo", "--runs", "300", "--steps", "200"], { stdio: "ignore" });
  ({ child: server, url: base } = await startServer(workspace));
  mkdirSync(shots, { recursive: true });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  if (workspace) rmSync(workspace, { recursive: true, force: true });
});

test("the catalog lists every run of the workspace", async () => {
  await page.goto(base + "/");
  await page.waitForFunction(() => /300 runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
  assert.equal(await summaryCount(), 300);
  const exps = await apiGet("/api/v1/experiments");
  for (const e of exps) await page.getByRole("button", { name: new RegExp(e.name) }).first().waitFor();
  await page.screenshot({ path: join(shots, "1-catalog.png") });
});

test("a query narrows the table to exactly what the API finds", async () => {
  const q = "metrics.acc > 0.9 and params.optimizer = 'adam'";
  const expected = await apiGet("/api/v1/search?" + new URLSearchParams({ q, limit: "1000" }));
  assert.ok(expected.total > 0 && expected.total < 300, `the demo has some but not all: ${expected.total}`);
  await page.getByLabel("query").fill(q);
  await page.getByLabel("query").press("Enter");
  await page.waitForFunction((n) => new RegExp(`^${n} runs`).test(document.querySelector("[data-testid=summary]")?.textContent ?? ""), expected.total);
  // Every row on screen is one of the runs the API returned, with its accuracy shown.
  const names = await page.locator(".body .row .cell:nth-child(2)").allInnerTexts();
  const apiNames = new Set(expected.runs.map((r) => r.name));
  assert.ok(names.length > 0);
  for (const n of names) assert.ok(apiNames.has(n), `${n} is not a result`);
  await page.screenshot({ path: join(shots, "2-query.png") });
});

test("a malformed query says where it went wrong", async () => {
  await page.getByLabel("query").fill("metrics.acc > 0.9 and (");
  await page.getByLabel("query").press("Enter");
  const alert = page.getByRole("alert");
  await alert.waitFor();
  assert.match(await alert.innerText(), /at column 24/);
  await page.screenshot({ path: join(shots, "3-query-error.png") });
  await page.getByLabel("query").fill("");
  await page.getByLabel("query").press("Enter");
  await page.waitForFunction(() => /^300 runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
});

test("opening a run shows its lineage, params and charts", async () => {
  const first = (await apiGet("/api/v1/search?limit=1&q=" + encodeURIComponent("attributes.status = 'FINISHED'"))).runs[0];
  const run = await apiGet(`/api/v1/runs/${first.id}`);
  await page.goto(`${base}/#/run/${first.id}`);
  await page.locator("h1", { hasText: run.name }).waitFor();
  for (const [k, v] of Object.entries(run.params)) {
    const row = page.locator("table.kv tr", { has: page.locator("th", { hasText: new RegExp(`^${k}$`) }) }).first();
    assert.equal(await row.locator("td").first().innerText(), v, `param ${k}`);
  }
  const digest = run.lineage.datasets.train.digest;
  await page.getByText(digest).waitFor();
  await page.getByText(run.lineage.code.commit).waitFor();
  // The loss chart comes from cairn-charts as an image, with the map of what it drew on top.
  const chart = page.locator('figure.chart[data-metric="loss"][data-state="ready"]');
  await chart.locator("img").waitFor();
  const natural = await chart.locator("img").evaluate((img) => img.naturalWidth);
  assert.ok(natural > 300, `the chart image rendered (${natural}px wide)`);
  // Hovering names the step and the run's value there: the curve's own value in that column.
  await chart.scrollIntoViewIfNeeded();
  const box = await chart.locator("svg.overlay").boundingBox();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
  const hover = chart.getByTestId("hover");
  const text = await hover.innerText();
  const m = /step (\d+)\s+.*?(-?\d+\.\d+(?:e[-+]?\d+)?)/s.exec(text);
  assert.ok(m, `hover shows a step and a value: ${text}`);
  const [step, shown] = [Number(m[1]), Number(m[2])];
  const logged = (await apiGet(`/api/v1/runs/${first.id}/metrics/loss`)).find((p) => p[0] === step);
  assert.ok(logged, `the run logged loss at step ${step}`);
  assert.ok(Math.abs(shown - logged[2]) <= 1e-3 * Math.max(1, Math.abs(logged[2])), `hover shows ${shown}, the run logged ${logged[2]} at step ${step}`);
  // Drag to zoom: the chart is drawn again for that range only, and the hover stays inside it.
  const src = await chart.locator("img").getAttribute("src");
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2, { steps: 5 });
  await page.mouse.up();
  const reset = chart.getByRole("button", { name: /reset zoom/ });
  await reset.waitFor();
  const [, lo, hi] = /\((\S+) – (\S+)\)/.exec(await reset.innerText()).map(Number);
  assert.ok(lo < hi, `zoomed into ${lo}..${hi}`);
  await page.waitForFunction((old) => {
    const img = document.querySelector('figure.chart[data-metric="loss"] img');
    return img && img.getAttribute("src") !== old;
  }, src);
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height / 2);
  const zoomedStep = Number(/step (\d+)/.exec(await hover.innerText())[1]);
  assert.ok(zoomedStep >= lo && zoomedStep <= hi, `hover at step ${zoomedStep} inside ${lo}..${hi}`);
  await page.screenshot({ path: join(shots, "4-run.png"), fullPage: true });
});

test("a run's History lists each field change with who made it, as the API reads it", async () => {
  const first = (await apiGet("/api/v1/search?limit=1&q=" + encodeURIComponent("attributes.status = 'FINISHED'"))).runs[0];
  // An edit through the MLflow REST API, as a training script would make it.
  const res = await fetch(`${base}/api/2.0/mlflow/runs/set-tag`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ run_id: first.id, key: "stage", value: "reviewed" }),
  });
  assert.equal(res.status, 200, `set-tag: ${res.status}`);
  const history = await apiGet(`/api/v1/runs/${first.id}/history`);
  const change = history.find((c) => c.field === "tags.stage");
  assert.ok(change, `the API lists the tag change: ${JSON.stringify(history.slice(-3))}`);
  assert.equal(change.new, "reviewed");
  assert.equal(change.member, "alice");
  assert.equal(history[0].field, "run");
  // The previous step left this run's page open, read before the edit: open it afresh.
  await page.goto(`${base}/#/`);
  await page.goto(`${base}/#/run/${first.id}`);
  const table = page.getByTestId("run-changes");
  await table.waitFor();
  const rows = table.locator("tbody tr");
  assert.equal(await rows.count(), history.length, "one row per change");
  // Newest first: the tag change heads the table, with who and old → new.
  const top = rows.first();
  assert.equal(await top.getAttribute("data-field"), "tags.stage");
  const cells = await top.locator("td").allInnerTexts();
  assert.match(cells[1], /^alice/);
  assert.match(cells[3], /→ reviewed/);
  await page.getByTestId("run-history").screenshot({ path: join(shots, "4b-run-history.png") });
});

test("a notebook written in the browser renders its run embed as a card, as the API renders it", async () => {
  const first = (await apiGet("/api/v1/search?limit=1&q=" + encodeURIComponent("attributes.status = 'FINISHED'"))).runs[0];
  await page.goto(`${base}/#/notebooks`);
  await page.getByTestId("nb-title").fill("Sweep notes");
  await page.getByTestId("nb-create").click();
  const text = page.getByTestId("nb-text");
  await text.waitFor();
  await text.fill(`# Sweep\n\nBest so far: [[run:${first.id.slice(0, 12)}]]\n`);
  // The preview draws the embed: the run's name linking to its page, and its status.
  const card = page.getByTestId("nb-preview").locator(`[data-run="${first.id}"]`);
  await card.waitFor();
  assert.equal(await card.locator("a").innerText(), first.name);
  assert.match(await card.innerText(), /finished/);
  // The editor saves by itself a moment after typing stops.
  await page.getByTestId("nb-status").filter({ hasText: "saved" }).waitFor();
  const listed = await apiGet("/api/v1/notebooks");
  assert.equal(listed[0].title, "Sweep notes");
  const stored = await apiGet(`/api/v1/notebooks/${listed[0].id}`);
  assert.match(stored.text, new RegExp(`\\[\\[run:${first.id.slice(0, 12)}\\]\\]`));
  await page.screenshot({ path: join(shots, "12-notebook.png") });

  // A teammate's edit (synced in from their laptop, or another window) shows in the open editor
  // without a reload, and what is typed here next keeps their words.
  const put = await fetch(`${base}/api/v1/notebooks/${stored.id}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      text: "_Shared with the team._\n" + stored.text, base: stored.heads, title: null, add_tags: null,
      remove_tags: null, add_owners: null, remove_owners: null, experiment: null,
    }),
  });
  assert.equal(put.status, 200, await put.text());
  await page.waitForFunction(
    () => document.querySelector('[data-testid="nb-text"]').value.startsWith("_Shared with the team._"),
    null,
    { timeout: 10_000 },
  );
  await text.focus();
  await page.keyboard.press("Control+End");
  await page.keyboard.type("Next: try warmup.");
  let both = "";
  for (let i = 0; i < 100 && !both.includes("Next: try warmup."); i++) {
    await new Promise((r) => setTimeout(r, 100));
    both = (await apiGet(`/api/v1/notebooks/${stored.id}`)).text;
  }
  assert.ok(both.includes("Next: try warmup."), `stored: ${both}\neditor: ${await text.inputValue()}`);
  assert.ok(both.startsWith("_Shared with the team._\n# Sweep"), both);
  assert.ok(both.endsWith("Next: try warmup."), both);

  // The notebooks are searchable by their words: the list finds this one by what was typed.
  await page.goto(`${base}/#/notebooks`);
  await page.getByTestId("nb-search").fill("warm");
  const hit = page.getByTestId("nb-hits").locator("tbody tr");
  await hit.first().waitFor();
  assert.equal(await hit.count(), 1);
  assert.equal(await hit.locator("a").innerText(), "Sweep notes");
  assert.match(await hit.locator("td").last().innerText(), /try warmup/);
  await page.getByTestId("nb-search").fill("tag:nothing-has-this");
  await page.getByText("No notebook matches.").waitFor();
});

test("a run's evaluation shows its slices, each metric's gap, and the fairness figures the API computed", async () => {
  // Some finished demo runs were evaluated per group (sex=female, sex=male).
  const finished = (await apiGet("/api/v1/search?limit=100&q=" + encodeURIComponent("attributes.status = 'FINISHED'"))).runs;
  let run, view;
  for (const r of finished) {
    view = (await apiGet(`/api/v1/runs/${r.id}/evaluations`)).find((v) => Object.keys(v.slices ?? {}).length > 0);
    if (view) { run = r; break; }
  }
  assert.ok(view, "a demo run has a sliced evaluation");
  await page.goto(`${base}/#/run/${run.id}`);
  const section = page.locator(`.evaluation[data-benchmark="${view.benchmark}"]`);
  await section.locator("table.slices").waitFor();
  const fixed = (v) => Number(v).toFixed(4);
  const overall = await section.locator("tr.overall td").allInnerTexts();
  const keys = (await section.locator("table.slices thead th").allInnerTexts()).slice(1);
  assert.deepEqual(overall, keys.map((k) => (k in view.metrics ? fixed(view.metrics[k]) : "–")));
  for (const [slice, metrics] of Object.entries(view.slices)) {
    const cells = await section.locator(`tr[data-slice="${slice}"] td`).allInnerTexts();
    assert.deepEqual(cells, keys.map((k) => fixed(metrics[k])), `slice ${slice}`);
  }
  assert.ok(view.fairness.length > 0, "figures for the slices");
  for (const f of view.fairness) {
    const row = section.locator(`tr[data-fairness="${f.metric}/${f.attribute}"]`);
    const cells = await row.locator("th, td").allInnerTexts();
    assert.deepEqual(cells.slice(0, 4), [f.attribute, f.metric, fixed(f.difference), fixed(f.ratio)]);
    assert.equal(await row.evaluate((tr) => tr.classList.contains("gap")), f.ratio < 0.8, `${f.metric} ratio ${f.ratio} flagged under 0.8 only`);
    // The lowest and highest slice of a metric are marked in the slice table.
    if (f.metric in Object.values(view.slices)[0] && f.difference > 0) {
      const col = keys.indexOf(f.metric);
      const lo = section.locator(`tr[data-slice="${f.lowest}"] td`).nth(col);
      assert.match((await lo.getAttribute("class")) ?? "", /\blo\b/, `${f.lowest} is the lowest ${f.metric}`);
    }
  }
  await section.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, "4b-evaluations.png"), fullPage: true });
});

async function mlflow(method, path, body) {
  const res = await fetch(`${base}/api/2.0/mlflow/${path}`, { method, headers: { "content-type": "application/json" }, body: body && JSON.stringify(body) });
  assert.equal(res.status, 200, `${method} ${path}: ${res.status} ${await res.clone().text()}`);
  return res.json();
}

test("a run's page lists the models it logged, with their metrics and files", async () => {
  // Not the run the test before opened: the page must load it afresh, models included.
  const first = (await apiGet("/api/v1/search?limit=2&q=" + encodeURIComponent("attributes.status = 'FINISHED'"))).runs[1];
  const { run } = await mlflow("GET", `runs/get?run_id=${first.id}`);
  // As `mlflow.pyfunc.log_model` does: create, upload a file, link a metric, output, finalize.
  const { model } = await mlflow("POST", "logged-models", { experiment_id: run.info.experiment_id, name: "e2e-model", model_type: "clf", source_run_id: first.id });
  const id = model.info.model_id;
  const put = await fetch(`${base}/api/2.0/mlflow-artifacts/artifacts/${run.info.experiment_id}/models/${id}/artifacts/MLmodel`, { method: "PUT", body: "flavors: {}\n" });
  assert.equal(put.status, 200);
  await mlflow("POST", "runs/log-metric", { run_id: first.id, key: "val_acc", value: 0.875, timestamp: Date.now(), step: 3, model_id: id, dataset_name: "holdout" });
  await mlflow("POST", "runs/outputs", { run_id: first.id, models: [{ model_id: id, step: 3 }] });
  await mlflow("PATCH", `logged-models/${id}`, { model_id: id, status: "LOGGED_MODEL_READY" });
  await page.goto(`${base}/#/run/${first.id}`);
  const row = page.locator(`[data-testid=models] tr[data-model="${id}"]`);
  await row.waitFor();
  const text = await row.innerText();
  for (const want of ["e2e-model", id, "ready", "output at step 3", "val_acc=0.8750 on holdout", "1 · 12 B"]) {
    assert.ok(text.includes(want), `the model's row shows ${want}: ${text}`);
  }
  await page.locator("[data-testid=models]").screenshot({ path: join(shots, "4b-run-models.png") });
});

test("a saved view brings back its query for everyone who opens the catalog", async () => {
  await page.goto(base + "/#/");
  await page.waitForFunction(() => /^300 runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
  const q = "params.optimizer = 'sgd'";
  const expected = (await apiGet("/api/v1/search?" + new URLSearchParams({ q, limit: "1" }))).total;
  await page.getByLabel("query").fill(q);
  await page.getByLabel("query").press("Enter");
  await page.waitForFunction((n) => new RegExp(`^${n} runs`).test(document.querySelector("[data-testid=summary]")?.textContent ?? ""), expected);
  await page.getByRole("button", { name: "Save view" }).click();
  await page.getByLabel("view name").fill("sgd runs");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  // Saved once the catalog offers it.
  await page.waitForFunction(() => document.querySelector('select[aria-label="saved views"] option[value="sgd runs"]'));
  assert.deepEqual((await apiGet("/api/v1/views")).map((v) => [v.name, v.query]), [["sgd runs", q]]);
  // A fresh page starts unfiltered; choosing the view filters it again.
  await page.reload();
  await page.waitForFunction(() => /^300 runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
  await page.getByLabel("saved views").selectOption("sgd runs");
  await page.waitForFunction((n) => new RegExp(`^${n} runs`).test(document.querySelector("[data-testid=summary]")?.textContent ?? ""), expected);
  assert.equal(await page.getByLabel("query").inputValue(), q);
  await page.getByRole("button", { name: "delete view" }).click();
  await page.waitForFunction(() => !document.querySelector('select[aria-label="saved views"] option[value="sgd runs"]'));
  assert.deepEqual(await apiGet("/api/v1/views"), []);
  await page.getByLabel("query").fill("");
  await page.getByLabel("query").press("Enter");
  await page.waitForFunction(() => /^300 runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
});

test("three selected runs compare side by side", async () => {
  await page.goto(base + "/#/");
  await page.waitForFunction(() => /^300 runs/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
  const boxes = page.locator(".body .row .check input");
  for (let i = 0; i < 3; i++) await boxes.nth(i).click();
  await page.getByRole("button", { name: "Compare (3)" }).click();
  await page.locator("h2", { hasText: /Params: \d+ of \d+ differ/ }).waitFor();
  const heads = await page.locator("table.diff").first().locator("thead th").allInnerTexts();
  assert.equal(heads.filter((h) => h.trim()).length, 3, `three run columns: ${heads}`);
  const differing = await page.locator("table.diff").first().locator("tr.differs").count();
  assert.ok(differing > 0, "demo sweeps differ in some params");
  // Curves overlaid, one legend entry per run; grouping by a param draws one mean per value.
  const curves = page.locator("figure.chart[data-metric]").first();
  await curves.locator('img').waitFor();
  assert.equal(await curves.locator(".legend li").count(), 3);
  // Parallel coordinates across the params that differ and a metric; a line names its run.
  const parallel = page.locator('figure[data-chart="parallel"]');
  await parallel.locator("img").waitFor();
  assert.match(await parallel.getByTestId("parallel-hover").innerText(), /^3 runs across .*metrics\./);
  await page.screenshot({ path: join(shots, "5-compare.png"), fullPage: true });
});

test("an installed cairn serves its own UI, and the run link the MLflow client prints opens the run", async () => {
  // The binary alone, away from the source tree it was built in: the UI travels inside it.
  const bin = mkdtempSync(join(tmpdir(), "cairn-installed-"));
  const installed = join(bin, "cairn");
  copyFileSync(cairn, installed);
  chmodSync(installed, 0o755);
  const child = spawn(installed, ["--workspace", workspace, "--user", "alice", "serve", "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const url = await new Promise((ok, fail) => {
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
        const m = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
        if (m) ok(m[1]);
      });
      child.on("exit", (code) => fail(new Error(`cairn serve exited with ${code}: ${out}`)));
    });
    // A run logged as the MLflow client logs one, into experiment "0".
    const res = await fetch(url + "/api/2.0/mlflow/runs/create", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ experiment_id: "0", run_name: "from-mlflow", start_time: Date.now() }),
    });
    assert.equal(res.status, 200);
    const id = (await res.json()).run.info.run_id;
    // What `mlflow` prints: "View run from-mlflow at: http://…/#/experiments/0/runs/<id>".
    await page.goto(`${url}/#/experiments/0/runs/${id}`);
    await page.locator("h1", { hasText: "from-mlflow" }).waitFor();
    // And "View experiment at: http://…/#/experiments/0": the catalog of that experiment.
    await page.goto(`${url}/#/experiments/0`);
    await page.waitForFunction(() => /^1 runs?/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
    await page.getByText("from-mlflow").first().waitFor();
  } finally {
    child.kill("SIGTERM");
    rmSync(bin, { recursive: true, force: true });
  }
});

test("the cost dashboard shows each experiment's spend, its charts, and a crossed budget as a banner", async () => {
  const report = await apiGet("/api/v1/cost?" + new URLSearchParams({ by: "exp", metric: "val_loss" }));
  assert.ok(report.families.length > 1, `the demo's experiments are priced: ${JSON.stringify(report.total)}`);
  const top = report.families[0];
  execFileSync(cairn, ["--workspace", workspace, "--user", "alice", "cost", "budget", "set", top.key, "1", "--period", "total"], { stdio: "ignore" });
  await page.goto(base + "/#/cost");
  await page.getByTestId("spend-chart").waitFor();
  await page.getByTestId("over-budget").waitFor();
  assert.match(await page.getByTestId("over-budget").innerText(), new RegExp(`${top.key} spent`));
  const rows = page.getByTestId("cost-table").locator("tbody tr");
  await rows.first().waitFor();
  assert.equal(await rows.count(), report.families.length);
  assert.match(await rows.first().innerText(), new RegExp(top.name));
  await page.getByLabel("metric").fill("val_loss");
  await page.getByLabel("metric").press("Tab");
  await page.getByTestId("frontier-chart").waitFor();
  await page.screenshot({ path: join(shots, "6-cost.png"), fullPage: true });
  execFileSync(cairn, ["--workspace", workspace, "--user", "alice", "cost", "budget", "rm", top.key], { stdio: "ignore" });
});

test("a price set on the dashboard costs a run logged through MLflow on this machine, and a budget set below its spend raises the banner", async () => {
  // Half an hour, logged as the MLflow client logs a run from the server's machine: the server
  // records its own machine's profile for it, which no price names yet.
  const t0 = Date.UTC(2026, 0, 5, 9, 0);
  const mlflow = async (path, body) => {
    const res = await fetch(base + "/api/2.0/mlflow/" + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, 200, `${path}: ${text}`);
    return JSON.parse(text);
  };
  const id = (await mlflow("runs/create", { experiment_id: "0", run_name: "priced-here", start_time: t0 })).run.info.run_id;
  await mlflow("runs/update", { run_id: id, status: "FINISHED", end_time: t0 + 30 * 60 * 1000 });
  const run = await apiGet(`/api/v1/runs/${id}`);
  const host = run.lineage.infra.host;
  assert.ok(host, "the run carries the serving machine's profile");
  const panel = page.getByTestId("run-cost");
  await page.goto(`${base}/#/run/${id}`);
  await panel.waitFor();
  assert.match(await panel.innerText(), /unpriced/);

  await page.goto(base + "/#/cost");
  await page.getByTestId("prices").waitFor();
  await page.getByTestId("price-target").fill(host);
  await page.getByTestId("price-usd").fill("7.20");
  await page.getByTestId("price-per").selectOption("hour");
  await page.getByTestId("price-from").fill("always");
  await page.getByTestId("set-price").click();
  const row = page.getByTestId("price-list").locator(`tr[data-target="${host}"]`);
  await row.waitFor();
  assert.match(await row.innerText(), /\$7\.20 \/ hour/);

  await page.goto(`${base}/#/run/${id}`);
  await page.waitForFunction(() => /\$3\.60/.test(document.querySelector("[data-testid=run-cost]")?.textContent ?? ""));
  assert.doesNotMatch(await panel.innerText(), /unpriced/);
  // The catalog's cost column, and the search's cost field, say the same.
  await page.goto(`${base}/#/`);
  await page.getByLabel("query").fill("attributes.run_name = 'priced-here' and cost.usd > 3.59 and cost.usd < 3.61");
  await page.getByLabel("query").press("Enter");
  await page.waitForFunction(() => /^1 runs?/.test(document.querySelector("[data-testid=summary]")?.textContent ?? ""));
  const costColumn = 1 + (await page.locator(".row.head .cell").allInnerTexts()).findIndex((t) => t.trim() === "cost");
  assert.ok(costColumn > 1, "the catalog has a cost column");
  assert.deepEqual(await page.locator(`.body .row .cell:nth-child(${costColumn})`).allInnerTexts(), ["$3.60"]);
  assert.deepEqual(await page.locator(".body .row .cell:nth-child(2)").allInnerTexts(), ["priced-here"]);
  await page.getByLabel("query").fill("");
  await page.getByLabel("query").press("Enter");

  // A budget of a dollar over all time for the run's experiment, which has spent more.
  const family = `exp:${run.experiment_name}`;
  await page.goto(base + "/#/cost");
  await page.getByTestId("budgets").waitFor();
  assert.equal(await page.getByTestId("over-budget").count(), 0);
  await page.getByTestId("budget-family").fill(family);
  await page.getByTestId("budget-usd").fill("1");
  await page.getByTestId("budget-period").selectOption("total");
  await page.getByTestId("set-budget").click();
  await page.getByTestId("over-budget").waitFor();
  assert.match(await page.getByTestId("over-budget").innerText(), new RegExp(`${family} spent \\$[\\d.,]+ of its total budget of \\$1\\.00`));
  await page.screenshot({ path: join(shots, "6b-cost-settings.png"), fullPage: true });
  await page.getByTestId("budget-list").locator(`tr[data-family="${family}"]`).getByTestId("lift-budget").click();
  await page.getByTestId("over-budget").waitFor({ state: "detached" });
});

test("a promotion the gate refuses lists every failed check; once the gate is lifted it moves the alias", async () => {
  const run = (await apiGet("/api/v1/runs?limit=1")).runs[0].id;
  const file = join(workspace, "..", `weights-${Date.now()}.bin`);
  execFileSync("sh", ["-c", `printf weights > '${file}'`]);
  const cli = (...args) => execFileSync(cairn, ["--workspace", workspace, "--user", "alice", ...args], { encoding: "utf8" });
  cli("artifact", "add", run, file, "--as", "model/weights.bin");
  cli("model", "register", "churn", run);
  cli("model", "gate", "set", "churn", "--require", "holdout", "--metric", "holdout.auc>=0.9");

  await page.goto(base + "/#/models");
  await page.getByRole("link", { name: "churn" }).click();
  await page.getByTestId("versions").locator("tbody tr").first().locator("td").first().click();
  await page.getByTestId("promote").click();
  const refusal = await page.getByTestId("refusal").innerText();
  assert.match(refusal, /refused by its gate/);
  assert.match(refusal, /no evaluation on benchmark 'holdout'/);
  await page.getByTestId("checks").waitFor();
  assert.equal(await page.getByTestId("checks").locator("tbody tr.differs").count(), 2, "both checks failed");
  assert.deepEqual((await apiGet("/api/v1/models/churn")).aliases, []);
  await page.screenshot({ path: join(shots, "7-gate-refused.png"), fullPage: true });

  cli("model", "gate", "set", "churn");
  await page.getByTestId("promote").click();
  await page.getByTestId("alias-champion").waitFor();
  assert.match(await page.getByTestId("alias-champion").innerText(), /version 1/);
  const history = await apiGet("/api/v1/models/churn/gate-evaluations");
  assert.deepEqual(history.map((e) => [e.passed, e.promoted]), [[true, true], [false, false]]);
  rmSync(file, { force: true });
});

test("a deployment recorded through the registry page shows on the version's trail, as the trail API gives it", async () => {
  // After the promotion above: churn@champion is version 1.
  await page.goto(base + "/#/models");
  await page.getByRole("link", { name: "churn" }).click();
  await page.getByTestId("deployments").waitFor();
  assert.equal(await page.getByTestId("deploy-what").inputValue(), "@champion");
  await page.getByTestId("deploy-target").fill("prod-eu");
  const rationale = "beats the rules baseline on every slice";
  await page.getByTestId("deploy-rationale").fill(rationale);
  await page.getByTestId("deploy").click();
  await page.getByTestId("deployment-list").waitFor();
  const row = await page.getByTestId("deployment-list").locator("tbody tr").first().locator("td").allInnerTexts();
  assert.match(row[1], /^1\s*@champion$/);
  assert.deepEqual([row[2], row[4]].map((t) => t.trim()), ["prod-eu", rationale]);
  assert.match(row[3], /^alice/);
  const recorded = await apiGet("/api/v1/models/churn/deployments");
  assert.deepEqual(recorded.map((d) => [d.number, d.alias, d.target, d.rationale, d.user]), [[1, "champion", "prod-eu", rationale, "alice"]]);

  await page.getByTestId("trail-1").click();
  await page.getByTestId("trail").waitFor();
  const api = await apiGet("/api/v1/models/churn/versions/1/trail");
  assert.equal(api.verified, true, JSON.stringify(api.findings));
  assert.match(await page.getByTestId("trail-verdict").innerText(), /verified/);
  const deployed = api.steps.filter((s) => s.kind === "version.deployed");
  assert.equal(deployed.length, 1);
  assert.deepEqual([deployed[0].fields.target, deployed[0].fields.rationale, deployed[0].fields.alias, deployed[0].member], ["prod-eu", rationale, "champion", "alice"]);
  // The page's Deployments section shows that event: what, where, who and why.
  const section = page.getByTestId("trail").locator('li[data-section="Deployments"] li.trail-step');
  assert.equal(await section.count(), 1);
  const text = await section.first().innerText();
  assert.match(text, /version 1 \(@champion\) deployed to prod-eu/);
  assert.match(text, /alice/);
  assert.equal(await section.first().locator(".why").innerText(), `“${rationale}”`);
  // Every version step the API lists is on the page, by its chain event, and nothing else is.
  // (A gate check that moved the alias shows under both "Gate checks" and "Alias moves".)
  const shown = (inRun) => page.getByTestId("trail").evaluate((el, inRun) => {
    const steps = [...el.querySelectorAll("li.trail-step")].filter((li) => Boolean(li.closest("li.trail-run")) === inRun);
    return [...new Set(steps.map((li) => `${li.dataset.step} ${li.querySelector("details > div.dim > code")?.textContent}`))].sort();
  }, inRun);
  assert.deepEqual(await shown(false), api.steps.map((s) => `${s.kind} ${s.event}`).sort());
  // And the version's run and its parents, by id, with their own events (evaluations show apart).
  const runIds = await page.getByTestId("trail").evaluate((el) => [...el.querySelectorAll("li.trail-run")].map((li) => li.dataset.run));
  assert.deepEqual(runIds, api.runs.map((r) => r.id));
  assert.equal(runIds[0], (await apiGet("/api/v1/models/churn")).versions.find((v) => v.version === 1).run);
  const runSteps = api.runs.flatMap((r) => r.steps).filter((s) => s.kind !== "evaluation.logged");
  assert.deepEqual(await shown(true), [...new Set(runSteps.map((s) => `${s.kind} ${s.event}`))].sort());
  await page.screenshot({ path: join(shots, "8-trail-deployed.png"), fullPage: true });
});

test("a run's traces, logged through OTLP, list as the API lists them and open into their span tree", async () => {
  // A run as the MLflow client creates one, and two traces sent to it as OTLP/JSON the way
  // OpenTelemetry's exporter sends them to MLflow (`/v1/traces`, the run in x-mlflow-run-id).
  const created = await fetch(base + "/api/2.0/mlflow/runs/create", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ experiment_id: "0", run_name: "rag-agent", start_time: Date.now() }),
  });
  assert.equal(created.status, 200);
  const id = (await created.json()).run.info.run_id;
  const t0 = BigInt(Date.now()) * 1_000_000n;
  const ns = (us) => String(t0 + BigInt(us) * 1000n);
  const str = (key, v) => ({ key, value: { stringValue: v } });
  const span = (traceId, spanId, parentSpanId, name, startUs, endUs, extra = {}) => ({
    traceId, spanId, parentSpanId, name, kind: "SPAN_KIND_INTERNAL", startTimeUnixNano: ns(startUs), endTimeUnixNano: ns(endUs),
    attributes: extra.attributes ?? [], events: extra.events ?? [], status: extra.status ?? { code: "STATUS_CODE_OK" },
  });
  const agent = "0af7651916cd43dd8448eb211c80319c";
  const lookup = "5b8aa5a2d2c872e8321cf37308d69df2";
  const spans = [
    span(agent, "b7ad6b7169203331", "", "agent", 0, 120_000, { attributes: [str("mlflow.spanType", '"AGENT"'), str("mlflow.spanInputs", '{"question": "what is cairn?"}'), str("mlflow.spanOutputs", '"a tracker"')] }),
    span(agent, "00f067aa0ba902b7", "b7ad6b7169203331", "retrieve", 5_000, 35_000, { attributes: [str("mlflow.spanType", '"RETRIEVER"'), str("index", "docs-v2")] }),
    span(agent, "53995c3f42cd8ad8", "00f067aa0ba902b7", "embed", 6_000, 16_000, { attributes: [str("model", "mini-embed")] }),
    span(agent, "e457b5a2e4d86bd1", "b7ad6b7169203331", "generate", 40_000, 118_000, {
      attributes: [str("mlflow.spanType", '"LLM"'), str("llm.model", "small-chat")],
      status: { code: "STATUS_CODE_ERROR", message: "rate limited" },
      events: [{ timeUnixNano: ns(90_000), name: "retry", attributes: [str("attempt", "2")] }],
    }),
    span(lookup, "d75597dee50b0cac", "", "lookup", 200_000, 203_500),
  ];
  const sent = await fetch(base + "/v1/traces", {
    method: "POST",
    headers: { "Content-Type": "application/json", "x-mlflow-experiment-id": "0", "x-mlflow-run-id": id },
    body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [str("service.name", "rag")] }, scopeSpans: [{ scope: { name: "e2e" }, spans }] }] }),
  });
  assert.equal(sent.status, 200, await sent.text());

  const listed = await apiGet(`/api/v1/runs/${id}/traces`);
  assert.deepEqual(listed.traces.map((t) => [t.trace_id, t.span_count]).sort(), [[`tr-${agent}`, 4], [`tr-${lookup}`, 1]].sort());
  await page.goto(`${base}/#/run/${id}`);
  const section = page.getByTestId("traces");
  await section.locator("table.trace-list tbody tr").first().waitFor();
  // The list: one row per trace, in the API's order, with its status and span count.
  const rows = section.locator("table.trace-list tbody tr");
  assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.trace)), listed.traces.map((t) => t.trace_id));
  for (const t of listed.traces) {
    const cells = await section.locator(`tr[data-trace="${t.trace_id}"] td`).allInnerTexts();
    assert.equal(cells[1], t.state, `${t.trace_id} state`);
    assert.equal(cells[4], String(t.span_count), `${t.trace_id} span count`);
  }

  // The agent's trace: its spans as the API returns them, a parent above its children, each bar
  // at its offset and as wide as its duration on the trace's scale.
  await section.locator(`tr[data-trace="tr-${agent}"]`).click();
  const view = await apiGet(`/api/v1/traces/tr-${agent}`);
  const tree = section.locator(`.waterfall[data-trace="tr-${agent}"]`);
  await tree.waitFor();
  const shown = await tree.locator(".wf-row").evaluateAll((rows) => rows.map((r) => {
    const bar = r.querySelector(".wf-bar");
    return { id: r.dataset.span, depth: Number(r.dataset.depth), status: r.querySelector(".wf-status").textContent, left: Number(bar.dataset.left), width: Number(bar.dataset.width) };
  }));
  assert.deepEqual(shown.map((r) => r.id).sort(), view.spans.map((s) => s.span_id).sort());
  assert.deepEqual(shown.map((r) => r.id), ["b7ad6b7169203331", "00f067aa0ba902b7", "53995c3f42cd8ad8", "e457b5a2e4d86bd1"]);
  const total = Math.max(...view.spans.map((s) => s.offset_us + (s.duration_us ?? 0)));
  const at = Object.fromEntries(shown.map((r, i) => [r.id, i]));
  for (const s of view.spans) {
    const r = shown[at[s.span_id]];
    assert.equal(r.status, s.status, `${s.name} status`);
    assert.equal(r.depth, s.parent_id ? shown[at[s.parent_id]].depth + 1 : 0, `${s.name} depth`);
    if (s.parent_id) assert.ok(at[s.parent_id] < at[s.span_id], `${s.name} under its parent`);
    assert.ok(Math.abs(r.left - (s.offset_us / total) * 100) < 0.01, `${s.name} starts at ${r.left}%`);
    assert.ok(Math.abs(r.width - (s.duration_us / total) * 100) < 0.01, `${s.name} lasts ${r.width}%`);
  }
  assert.deepEqual(view.spans.map((s) => [s.name, s.offset_us, s.duration_us]).sort(), [["agent", 0, 120000], ["embed", 6000, 10000], ["generate", 40000, 78000], ["retrieve", 5000, 30000]]);
  // A span's attributes, status message and events on click.
  const generate = view.spans.find((s) => s.name === "generate");
  await tree.locator(`[data-span="${generate.span_id}"] .wf-line`).click();
  const detail = tree.locator(`[data-detail="${generate.span_id}"]`);
  for (const a of generate.attributes) assert.equal(await detail.locator(`[data-attribute="${a.key}"] td`).innerText(), a.value);
  assert.match(await detail.innerText(), /rate limited/);
  assert.match(await detail.locator("table.events").innerText(), /retry\s+90\.0 ms/);
  await section.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(shots, "4c-traces.png"), fullPage: true });

  // A run without traces has no traces section.
  const other = (await apiGet("/api/v1/runs?limit=5")).runs.map((r) => r.id).find((r) => r !== id);
  const answered = page.waitForResponse((r) => r.url().includes(`/runs/${other}/traces`));
  await page.goto(`${base}/#/run/${other}`);
  assert.deepEqual((await (await answered).json()).traces, []);
  await page.locator("h2", { hasText: /^Params/ }).waitFor();
  await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
  assert.equal(await page.getByTestId("traces").count(), 0);
});

test("a review written through the run page's form is refused naming missing fields, then lists and finds the run", async () => {
  const run = (await apiGet("/api/v1/search?limit=1&q=" + encodeURIComponent("attributes.status = 'FINISHED'"))).runs[0];
  await page.goto(`${base}/#/run/${run.id}`);
  const section = page.getByTestId("reviews");
  await section.waitFor();
  await section.getByTestId("write-review").click();
  const form = section.getByTestId("review-form");
  await form.waitFor();
  // The default template: objective, confidence and decision are required, and marked.
  assert.deepEqual(await form.locator("label.required").evaluateAll((ls) => ls.map((l) => l.getAttribute("for"))), ["review-objective", "review-confidence", "review-decision"]);
  await form.getByTestId("review-submit").click();
  assert.equal(await form.getByTestId("review-problem").innerText(), "missing required fields: objective, confidence, decision");
  await form.getByTestId("review-objective").fill("beat the baseline on val");
  await form.getByTestId("review-confidence").selectOption("high");
  await form.getByTestId("review-decision").selectOption("adopt");
  await form.getByTestId("review-add-action").click();
  await form.getByTestId("review-action-owner").fill("bob");
  await form.getByTestId("review-action-text").fill("rerun on the new split");
  await form.getByTestId("review-text").fill("Calibration looks oddly flat");
  const written = page.waitForResponse((r) => r.url().endsWith("/api/v1/reviews") && r.request().method() === "POST");
  await form.getByTestId("review-submit").click();
  assert.equal((await written).status(), 200);
  const card = section.getByTestId("review");
  await card.waitFor();
  assert.equal(await card.getAttribute("data-decision"), "adopt");
  assert.equal(await card.getByTestId("review-objective").innerText(), "beat the baseline on val");
  await section.screenshot({ path: join(shots, "4d-review.png") });
  // The API lists it; search finds the run by its review's fields and its text.
  const listed = await apiGet(`/api/v1/reviews?run=${run.id}`);
  assert.equal(listed.length, 1);
  assert.equal(listed[0].actions[0].owner, "bob");
  for (const q of ["review.decision:adopt", "has:open-action=bob", "oddly"]) {
    const found = await apiGet("/api/v1/search?q=" + encodeURIComponent(q));
    assert.deepEqual(found.runs.map((r) => r.id), [run.id], q);
  }
  // The open-actions page lists bob's action; closing it there empties his list.
  await page.goto(`${base}/#/actions`);
  const bob = page.locator('[data-testid=owner-actions][data-owner="bob"]');
  await bob.waitFor();
  await bob.getByTestId("action-done").click();
  await page.getByText("No open next actions.").waitFor();
  assert.equal((await apiGet(`/api/v1/reviews/${listed[0].review.id}`)).actions[0].state, "done");
});

test("a team created in the browser invites with a ticket and its QR code, and a teammate joins with it", async () => {
  // A server that hosts its sync node (on loopback), on a workspace of its own.
  const ws = mkdtempSync(join(tmpdir(), "cairn-e2e-team-"));
  const mate = mkdtempSync(join(tmpdir(), "cairn-e2e-mate-"));
  const { child, url } = await startServer(ws, ["--sync"], "dana");
  try {
    await page.goto(url + "/#/team");
    await page.getByTestId("team-create-form").waitFor();
    await page.getByTestId("team-create-name").fill("vision lab");
    await page.getByTestId("team-create-email").fill("dana@example.org");
    await page.getByTestId("team-create").click();
    await page.getByTestId("team-name").filter({ hasText: "vision lab" }).waitFor();
    const view = await (await fetch(url + "/api/v1/team")).json();
    assert.equal(view.team.name, "vision lab");
    assert.ok(view.node.running && view.node.addrs.length > 0, JSON.stringify(view.node));
    assert.match(await page.getByTestId("team-members").innerText(), /dana@example\.org[\s\S]*this device/);

    await page.getByTestId("team-invite-new").click();
    const ticketBox = page.getByTestId("team-ticket-text");
    await ticketBox.waitFor();
    const ticket = await ticketBox.inputValue();
    assert.match(ticket, /^cairn1[0-9a-f]+$/);
    // The QR code is the server's SVG shown as an image: it loads and has a size.
    const qr = page.getByTestId("team-qr");
    await page.waitForFunction(() => {
      const img = document.querySelector("[data-testid=team-qr]");
      return img && img.complete && img.naturalWidth > 0;
    });
    assert.match(await qr.getAttribute("src"), /^data:image\/svg\+xml/);
    assert.match(await page.getByTestId("team-expires").innerText(), /expires in 2[34] h .*dials 127\.0\.0\.1:\d+/);
    await page.screenshot({ path: join(shots, "team-invite.png") });

    // The ticket works: a teammate joins with it from the command line, and the page lists them.
    execFileSync(cairn, ["--workspace", mate, "--user", "erin", "init"], { stdio: "ignore" });
    execFileSync(cairn, ["--workspace", mate, "--user", "erin", "team", "join", ticket, "--email", "erin@example.org", "--bind", "127.0.0.1:0"], { stdio: "ignore" });
    await page.reload();
    await page.getByTestId("team-members").filter({ hasText: "erin@example.org" }).waitFor();
    await page.getByTestId("team-sync-summary").filter({ hasText: "1 teammate" }).waitFor();
  } finally {
    child.kill("SIGTERM");
    rmSync(ws, { recursive: true, force: true });
    rmSync(mate, { recursive: true, force: true });
  }
});
