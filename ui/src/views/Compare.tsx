// Selected runs side by side: what differs in params and lineage (highlighted), overlaid metric
// charts, optionally grouped by a param.

import { useEffect, useState } from "preact/hooks";

import { MetricChart, PALETTE } from "../components/Chart";
import { diffRows } from "../diff";
import { metric } from "../format";
import { api } from "../state";
import type { RunView } from "../wire";

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

function Diff({ title, runs, values }: { title: string; runs: RunView[]; values: Record<string, string>[] }) {
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
        <thead><tr><th /> {runs.map((r, i) => <th key={r.id} style={{ color: PALETTE[i % PALETTE.length] }}>{r.name}</th>)}</tr></thead>
        <tbody>
          {shown.map((row) => (
            <tr key={row.key} class={row.differs ? "differs" : ""}><th>{row.key}</th>{row.values.map((v, i) => <td key={i}>{v ?? "–"}</td>)}</tr>
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

  useEffect(() => {
    Promise.all(ids.map((id) => api.run(id))).then(setRuns).catch((e) => setError(e.message));
  }, [ids.join(",")]);
  if (error) return <div class="page error">{error}</div>;
  if (!runs) return <div class="page loading">loading {ids.length} runs…</div>;

  const metricKeys = [...new Set(runs.flatMap((r) => Object.keys({ ...r.metrics, ...r.live_metrics })))].filter((k) => !k.startsWith("system/")).sort();
  const paramKeys = [...new Set(runs.flatMap((r) => Object.keys(r.params)))].sort();
  const groups = new Map<string, RunView[]>();
  for (const r of runs) {
    const g = groupBy ? r.params[groupBy] ?? "(none)" : "";
    groups.set(g, [...(groups.get(g) ?? []), r]);
  }
  return (
    <div class="page compare">
      <nav class="crumbs"><a href="#/">Catalog</a> / compare {runs.length} runs</nav>
      <Diff title="Params" runs={runs} values={runs.map((r) => r.params)} />
      <Diff title="Lineage" runs={runs} values={runs.map(lineageFields)} />
      <section class="card">
        <h2>Summary</h2>
        <table class="kv">
          <thead><tr><th /> {metricKeys.map((k) => <th key={k}>{k}</th>)}</tr></thead>
          <tbody>
            {runs.map((r, i) => (
              <tr key={r.id}><th style={{ color: PALETTE[i % PALETTE.length] }}><a href={`#/run/${r.id}`}>{r.name}</a></th>
                {metricKeys.map((k) => <td key={k}>{metric({ ...r.metrics, ...r.live_metrics }[k]?.last)}</td>)}</tr>
            ))}
          </tbody>
        </table>
      </section>
      <section class="card">
        <h2>
          Curves
          <label class="smooth">group by <select value={groupBy} onChange={(e) => setGroupBy((e.currentTarget as HTMLSelectElement).value)}>
            <option value="">(no grouping)</option>
            {paramKeys.map((k) => <option key={k} value={k}>params.{k}</option>)}
          </select></label>
        </h2>
        {[...groups.entries()].map(([g, rs]) => (
          <div key={g}>
            {groupBy && <h3>{groupBy} = {g} ({rs.length})</h3>}
            <div class="charts">{metricKeys.map((k) => <MetricChart key={k + g} runs={rs.map((r) => ({ id: r.id, label: r.name }))} metricKey={k} />)}</div>
          </div>
        ))}
      </section>
    </div>
  );
}
