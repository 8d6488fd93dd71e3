// Selected runs side by side: what differs in params and lineage (highlighted), overlaid metric
// charts (optionally grouped by a param: mean with a min–max band), parallel coordinates.

/** Run colours in the tables: the charts' own (cairn-charts' light and dark palettes, Okabe–Ito),
 *  in the order the charts colour runs. */
const PALETTES = {
  light: ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#646464", "#F0E442"],
  dark: ["#56B4E9", "#E69F00", "#009E73", "#F0E442", "#CC79A7", "#D55E00", "#C8C8C8", "#0072B2"],
};
const color = (i: number) => PALETTES[theme.value][i % 8];

import { Reviews } from "../components/Reviews";
import { useEffect, useState } from "preact/hooks";

import { MetricChart, ParallelChart } from "../components/Chart";
import { ChartControls, DEFAULT_SETTINGS } from "../components/ChartControls";
import { diffRows, runLabels, shortValue } from "../diff";
import { metric } from "../format";
import { api, theme } from "../state";
import { evaluationFields } from "../evaluations";
import type { EvaluationView, RunView } from "../wire";


function lineageFields(r: RunView): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [role, d] of Object.entries(r.lineage.datasets ?? {})) out[`dataset.${role}`] = d.digest ?? "(no digest)";
  if (r.lineage.feature_set) out["feature_set"] = `${r.lineage.feature_set.name} ${r.lineage.feature_set.version}`;
  if (r.lineage.code) out["code.commit"] = (r.lineage.code.commit ?? "–") + (r.lineage.code.dirty ? " (dirty)" : "");
  if (r.lineage.code?.branch) out["code.branch"] = r.lineage.code.branch;
  if (r.lineage.infra?.host) out["infra.host"] = r.lineage.infra.host;
  const gpu = r.lineage.infra?.gpus?.[0];
  if (gpu) out["infra.gpu"] = `${gpu.count}× ${gpu.model}`;
  return out;
}

function Diff({ title, labels, values }: { title: string; labels: string[]; values: Record<string, string>[] }) {
  const [all, setAll] = useState(false);
  const rows = diffRows(values);
  const shown = all ? rows : rows.filter((r) => r.differs);
  return (
    <section class="card">
      <h2>
        {title}: {rows.filter((r) => r.differs).length} of {rows.length} differ
        <label class="smooth"><input type="checkbox" checked={all} onChange={() => setAll(!all)} /> show all</label>
      </h2>
      <table class="kv diff">
        <thead><tr><th /> {labels.map((l, i) => <th key={i} style={{ color: color(i) }}>{l}</th>)}</tr></thead>
        <tbody>
          {shown.map((row) => (
            <tr key={row.key} class={row.differs ? "differs" : ""}><th>{row.key}</th>{row.values.map((v, i) => <td key={i} title={v}>{v === undefined ? "–" : shortValue(v)}</td>)}</tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function Compare({ ids }: { ids: string[] }) {
  const [runs, setRuns] = useState<RunView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [groupBy, setGroupBy] = useState("");
  const [settings, setSettings] = useState(DEFAULT_SETTINGS);
  const [target, setTarget] = useState("");
  const [evals, setEvals] = useState<EvaluationView[][] | null>(null);

  useEffect(() => {
    Promise.all(ids.map((id) => api.run({ id }))).then(setRuns).catch((e) => setError(e.message));
    Promise.all(ids.map((id) => api.evaluations({ id }))).then(setEvals).catch(() => setEvals(null));
  }, [ids.join(",")]);
  if (error) return <div class="page error">{error}</div>;
  if (!runs) return <div class="page loading">loading {ids.length} runs…</div>;

  const labels = runLabels(runs);
  const labelOf = new Map(runs.map((r, i) => [r.id, labels[i]]));
  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys({ ...r.metrics, ...r.live_metrics })))].filter((k) => !k.startsWith("system/")).sort();
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const differing = diffRows(runs.map((r) => r.params)).filter((r) => r.differs).map((r) => `params.${r.key}`);
  const objective = target || metricKeys[0];
  const axes = objective ? [...differing, `metrics.${objective}`] : differing;
  // A chart asks only for the runs that logged its metric (and the metric on x, when x is one).
  const logged = (r: RunView, k: string) => k in r.metrics || k in r.live_metrics;
  const chartRuns = (k: string) =>
    runs.filter((r) => logged(r, k) && (metricKeys.includes(settings.x) ? logged(r, settings.x) : true)).map((r) => ({ id: r.id, label: labelOf.get(r.id) ?? r.name }));
  return (
    <div class="page compare">
      <nav class="crumbs"><a href="#/">Catalog</a> / compare {runs.length} runs</nav>
      <Diff title="Params" labels={labels} values={runs.map((r) => r.params)} />
      <Diff title="Lineage" labels={labels} values={runs.map(lineageFields)} />
      {evals && evals.some((e) => e.length > 0) && <Diff title="Evaluations" labels={labels} values={evals.map(evaluationFields)} />}
      <section class="card">
        <h2>Summary</h2>
        <table class="kv">
          <thead><tr><th /> {metricKeys.map((k) => <th key={k}>{k}</th>)}</tr></thead>
          <tbody>
            {runs.map((r, i) => (
              <tr key={r.id}><th style={{ color: color(i) }}><a href={`#/run/${r.id}`}>{labels[i]}</a></th>
                {metricKeys.map((k) => <td key={k}>{metric({ ...r.metrics, ...r.live_metrics }[k]?.last)}</td>)}</tr>
            ))}
          </tbody>
        </table>
      </section>
      <section class="card">
        <h2>
          Curves
          <label class="smooth">group by <select aria-label="group by" value={groupBy} onChange={(e) => setGroupBy((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">(no grouping)</option>
            {paramKeys.map((k) => <option key={k} value={k}>params.{k}</option>)}
          </select></label>
          <ChartControls value={settings} onChange={setSettings} metrics={metricKeys} />
        </h2>
        <div class="charts">
          {metricKeys.filter((k) => k !== settings.x && chartRuns(k).length > 0).map((k) => (
            <MetricChart key={k} runs={chartRuns(k)} metricKey={k} smooth={settings.smooth} x={settings.x} log={settings.log} groupBy={groupBy ? `params.${groupBy}` : undefined} />
          ))}
        </div>
      </section>
      <section class="card">
        <h2>
          Parallel coordinates
          <label class="smooth">metric <select aria-label="parallel metric" value={objective} onChange={(e) => setTarget((e.currentTarget as HTMLSelectElement).value)}>
            {metricKeys.map((k) => <option key={k} value={k}>{k}</option>)}
          </select></label>
        </h2>
        {axes.length >= 2 ? (
          <ParallelChart runs={runs.map((r) => r.id)} fields={axes} />
        ) : (
          <p class="dim">These runs differ in {differing.length === 0 ? "no params" : "one param"}: parallel coordinates need at least two axes.</p>
        )}
      </section>
      <Reviews runs={runs.map((r) => r.id)} />
    </div>
  );
}
