// One run: overview, full lineage, cost, traces, params, metric charts, system metrics,
// evaluations, logged models, artifacts, reviews, history (the run's audit events), log output.

import { useEffect, useState } from "preact/hooks";

import { RunHistory } from "../components/Audit";
import { MetricChart } from "../components/Chart";
import { Evaluations } from "../components/Evaluations";
import { ChartControls, DEFAULT_SETTINGS } from "../components/ChartControls";
import { RunCost } from "../components/RunCost";
import { Reviews } from "../components/Reviews";
import { RunTraces } from "../components/RunTraces";
import { bytes, duration, metric, thousands, time } from "../format";
import { api, go } from "../state";
import type { EvaluationView, RunModel, RunView } from "../wire";

function Field({ k, children }: { k: string; children: preact.ComponentChildren }) {
  return (
    <>
      <dt>{k}</dt>
      <dd>{children}</dd>
    </>
  );
}

export function RunPage({ id }: { id: string }) {
  const [run, setRun] = useState<RunView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [log, setLog] = useState<string | null>(null);
  const [models, setModels] = useState<RunModel[]>([]);
  const [settings, setSettings] = useState(DEFAULT_SETTINGS);
  const [evals, setEvals] = useState<EvaluationView[]>([]);

  useEffect(() => {
    setRun(null);
    setEvals([]);
    api.run({ id }).then(setRun).catch((e) => setError(e.message));
    api.evaluations({ id }).then(setEvals).catch(() => setEvals([]));
    setModels([]);
    // The run page stands without them: a failure leaves the section out.
    api.runModels({ id }).then(setModels).catch(() => setModels([]));
  }, [id]);
  useEffect(() => {
    if (run?.artifacts["logs/output.log"]) api.artifactText({ id: run.id, path: "logs/output.log", tail: true }).then((t) => setLog(t.text.slice(-20000))).catch(() => setLog(null));
  }, [run?.id]);

  if (error) return <div class="page error">{error} <a href="#/">back to the catalog</a></div>;
  if (!run) return <div class="page loading">loading run…</div>;
  const metrics = { ...run.metrics, ...run.live_metrics };
  const keys = Object.keys(metrics).sort();
  const user = keys.filter((k) => !k.startsWith("system/"));
  const system = keys.filter((k) => k.startsWith("system/"));
  const l = run.lineage;
  const me = [{ id: run.id, label: run.name }];

  return (
    <div class="page run">
      <nav class="crumbs"><a href="#/">Catalog</a> / {run.experiment_name} / <strong>{run.name}</strong></nav>
      <header class="run-head">
        <h1>{run.name}</h1>
        <span class={`badge status-${run.status}`}>{run.status}</span>
        {run.compliance.state !== "compliant" && (
          <span class={`badge compliance-${run.compliance.state}`} title={(run.compliance.missing ?? []).join("\n")}>{run.compliance.state}</span>
        )}
        <code class="id">{run.id}</code>
      </header>
      <div class="grid2">
        <section class="card">
          <h2>Overview</h2>
          <dl>
            <Field k="owner">{run.owner ?? "–"}</Field>
            <Field k="started">{time(run.start_ms)}</Field>
            <Field k="ended">{run.end_ms ? `${time(run.end_ms)} (${duration(run.end_ms - run.start_ms)})` : "still running"}</Field>
            {run.parent && <Field k={run.parent_kind ?? "parent"}><a href={`#/run/${run.parent}`}>{run.parent.slice(0, 12)}</a></Field>}
            <Field k="tags">{Object.entries(run.tags).map(([k, v]) => <span class="tag" key={k}>{k}={v}</span>)}</Field>
            {run.notes && <Field k="notes">{run.notes}</Field>}
            {run.compliance.state !== "compliant" && (
              <Field k="compliance">
                <span class={`compliance-${run.compliance.state}`}>{run.compliance.state}</span>
                {run.compliance.state === "refused" && <span class="dim"> (ended without what the schema requires: cannot be registered or promoted)</span>}
                {run.compliance.state === "pending" && <span class="dim"> (checked when the run ends)</span>}
                <ul class="missing-fields">{(run.compliance.missing ?? []).map((m) => <li key={m}>{m}</li>)}</ul>
              </Field>
            )}
          </dl>
          {run.conflicts && run.conflicts.length > 0 && (
            <div class="conflicts">
              <h3>Conflicting edits (both kept)</h3>
              {run.conflicts.map((c) => <div key={c.field}><code>{c.field}</code>: {c.values.map((v) => JSON.stringify(v)).join(" | ")}</div>)}
            </div>
          )}
        </section>
        <section class="card lineage">
          <h2>Lineage</h2>
          <dl>
            {Object.entries(l.datasets ?? {}).map(([role, d]) => (
              <Field k={`dataset ${role}`} key={role}>
                <div>{d.uri ?? "–"}</div>
                <code class={d.digest ? "" : "missing"}>{d.digest ?? "no digest"}</code>
                <div class="dim">{[d.rows !== undefined ? `${thousands(d.rows)} rows` : "", d.size_bytes !== undefined ? bytes(d.size_bytes) : ""].filter(Boolean).join(" · ")}</div>
              </Field>
            ))}
            {l.feature_set && <Field k="feature set">{l.feature_set.name} {l.feature_set.version}</Field>}
            {l.code && (
              <Field k="code">
                <div>{l.code.repo}</div>
                <code>{l.code.commit ?? "no commit"}</code> {l.code.branch && <span class="tag">{l.code.branch}</span>}
                {l.code.dirty && <span class="badge warn" title={l.code.diff_digest}>dirty</span>}
              </Field>
            )}
            {l.infra && (
              <Field k="machine">
                <div>{[l.infra.host, l.infra.os].filter(Boolean).join(" · ")}</div>
                <div>{l.infra.cpu_model}{l.infra.cpu_cores ? ` ×${l.infra.cpu_cores}` : ""}{l.infra.memory_bytes ? ` · ${bytes(l.infra.memory_bytes)} RAM` : ""}</div>
                {(l.infra.gpus ?? []).map((g) => <div key={g.model}>{g.count}× {g.model}{g.driver ? ` (driver ${g.driver})` : ""}</div>)}
                <div class="dim">{[l.infra.container_image, l.infra.instance_type, l.infra.hourly_price_usd !== undefined ? `$${l.infra.hourly_price_usd.toFixed(2)}/h` : ""].filter(Boolean).join(" · ")}</div>
              </Field>
            )}
          </dl>
        </section>
      </div>
      <Evaluations runId={run.id} views={evals} />
      <RunCost id={run.id} />
      <RunTraces runId={run.id} />
      <section class="card">
        <h2>Params ({Object.keys(run.params).length})</h2>
        <table class="kv">
          <tbody>{Object.entries(run.params).map(([k, v]) => <tr key={k}><th>{k}</th><td>{v}</td></tr>)}</tbody>
        </table>
      </section>
      <section class="card">
        <h2>
          Metrics ({user.length})
          <ChartControls value={settings} onChange={setSettings} metrics={user} />
        </h2>
        <table class="kv metrics-table">
          <thead><tr><th>key</th><th>last</th><th>step</th><th>min</th><th>max</th><th>points</th></tr></thead>
          <tbody>
            {user.map((k) => (
              <tr key={k} data-metric={k}><th>{k}</th><td>{metric(metrics[k].last)}</td><td>{metrics[k].step}</td><td>{metric(metrics[k].min)}</td><td>{metric(metrics[k].max)}</td><td>{thousands(metrics[k].count)}</td></tr>
            ))}
          </tbody>
        </table>
        <div class="charts">{user.filter((k) => k !== settings.x).map((k) => <MetricChart key={k} runs={me} metricKey={k} smooth={settings.smooth} x={settings.x} log={settings.log} />)}</div>
      </section>
      {system.length > 0 && (
        <section class="card">
          <h2>System metrics</h2>
          <div class="charts">{system.map((k) => <MetricChart key={k} runs={me} metricKey={k} x={settings.x === "time" || settings.x === "relative" ? settings.x : "step"} height={220} />)}</div>
        </section>
      )}
      {models.length > 0 && (
        <section class="card models" data-testid="models">
          <h2>Logged models ({models.length})</h2>
          <table class="kv">
            <thead><tr><th>name</th><th>id</th><th>status</th><th>role</th><th>metrics</th><th>files</th></tr></thead>
            <tbody>
              {models.map(({ role, step, model: m }) => {
                const files = Object.values(m.artifacts).filter((a) => a.kind === "file");
                return (
                  <tr key={`${role}-${m.id}`} data-model={m.id}>
                    <th>{m.name}{m.model_type && <span class="tag">{m.model_type}</span>}</th>
                    <td><code>{m.id}</code></td>
                    <td><span class={`badge status-${m.status}`}>{m.status}</span>{m.deleted && <span class="badge warn">deleted</span>}</td>
                    <td>{role === "output" ? `output at step ${step}` : role}</td>
                    <td>{m.metrics.map((x) => <span class="tag" key={`${x.key}-${x.run ?? ""}-${x.dataset_name ?? ""}`}>{x.key}={metric(x.value)}{x.dataset_name ? ` on ${x.dataset_name}` : ""}</span>)}</td>
                    <td>{files.length} · {bytes(files.reduce((n, a) => n + a.size, 0))}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      )}
      <section class="card">
        <h2>Artifacts ({Object.keys(run.artifacts).length})</h2>
        {Object.keys(run.artifacts).length === 0 ? (
          <p class="dim">None. Log some with <code>mlflow.log_artifact</code> or <code>cairn artifact add {run.id.slice(0, 8)} PATH</code>.</p>
        ) : (
          <table class="kv">
            <tbody>
              {Object.entries(run.artifacts).map(([p, a]) => (
                <tr key={p}>
                  <th>{a.kind === "file" ? <a href={api.artifactUrl(run.id, p)} download>{p}</a> : p + "/"}</th>
                  <td>{bytes(a.size)}</td>
                  <td><code title="BLAKE3 content hash, verified on every read">{a.hash.slice(0, 16)}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <Reviews run={run.id} />
      <RunHistory runId={run.id} />
      {log !== null && (
        <section class="card">
          <h2>Output</h2>
          <pre class="log">{log}</pre>
        </section>
      )}
      <p><button onClick={() => go("#/")}>← Back</button></p>
    </div>
  );
}
