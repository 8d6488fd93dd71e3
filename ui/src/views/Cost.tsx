// The cost dashboard: per line of work (experiment, owner, GPU, tag, saved view) what it spent,
// how much of that paid for idle GPUs, and how much model improvement each dollar bought. The
// charts are cairn-charts' (spend over time stacked by family, a family's cost-vs-metric
// frontier); crossed budgets show as a banner. The price table and the budgets are edited here
// too (`CostSettings`): a change reloads the figures, so a price moves the spend and a budget set
// below it raises the banner.

import { useEffect, useState } from "preact/hooks";

import { Budgets, PriceTable } from "../components/CostSettings";
import { overBudget, share, usd } from "../cost";
import { metric, shortId } from "../format";
import { api, theme } from "../state";
import type { CostDashboard } from "../wire";

const svgUrl = (svg: string) => "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);

export function Cost() {
  const [by, setBy] = useState("exp");
  const [every, setEvery] = useState("week");
  const [metricKey, setMetric] = useState("");
  const [family, setFamily] = useState("");
  const [view, setView] = useState<CostDashboard | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Bumped when a price or budget changes: the figures are asked for again.
  const [edits, setEdits] = useState(0);
  const edited = () => setEdits((n) => n + 1);

  useEffect(() => {
    let live = true;
    api
      .costDashboard({ by, every, metric: metricKey || null, family: family || null, width: 900, dark: theme.value === "dark" })
      .then((v) => {
        if (!live) return;
        setView(v);
        setError(null);
      })
      .catch((e) => live && setError(e.message));
    return () => {
      live = false;
    };
  }, [by, every, metricKey, family, theme.value, edits]);

  const r = view?.report;
  const banner = r ? overBudget(r) : [];
  return (
    <div class="page cost">
      <nav class="crumbs"><a href="#/">Catalog</a> / cost</nav>
      <h1>Cost</h1>
      {banner.length > 0 && (
        <div class="banner over-budget" role="alert" data-testid="over-budget">
          {banner.map((b) => <div key={b}>Over budget: {b}</div>)}
        </div>
      )}
      <div class="toolbar">
        <label>families <select aria-label="families" value={by} onChange={(e) => setBy((e.currentTarget as HTMLSelectElement).value)}>
          <option value="exp">experiment</option>
          <option value="owner">owner</option>
          <option value="gpu">GPU model</option>
        </select></label>
        <label>spend per <select aria-label="period" value={every} onChange={(e) => setEvery((e.currentTarget as HTMLSelectElement).value)}>
          <option value="day">day</option>
          <option value="week">week</option>
          <option value="month">month</option>
        </select></label>
        <label>metric <input aria-label="metric" placeholder="val_loss" value={metricKey} onChange={(e) => setMetric((e.currentTarget as HTMLInputElement).value.trim())} /></label>
      </div>
      {error && <div class="error">{error}</div>}
      {!r && !error && <div class="loading">loading…</div>}
      {r && view && (
        <>
          <section class="card">
            <h2>Spend over time</h2>
            <img class="chart-img" alt="spend per period stacked by family" src={svgUrl(view.spend_chart.svg)} data-testid="spend-chart" />
            <p class="dim">
              {usd(r.total.usd)} in all over {r.total.runs} runs ({r.total.unpriced_runs} unpriced), {r.total.gpu_hours.toFixed(1)} GPU-hours, {usd(r.total.idle_usd)} of it on idle GPUs
              (below {r.idle_threshold_pct}% utilisation).
            </p>
          </section>
          <section class="card">
            <h2>Improvement per dollar{r.metric ? ` (${r.metric}, ${r.direction === "min" ? "lower" : "higher"} is better)` : ""}</h2>
            <table class="kv cost-table" data-testid="cost-table">
              <thead>
                <tr><th>{r.by}</th><th>runs</th><th>spend</th><th>GPU-h</th><th>idle $</th><th>idle</th><th>best</th><th>gain / $</th><th>last runs' gain / $</th><th>budget</th></tr>
              </thead>
              <tbody>
                {r.families.map((f) => (
                  <tr key={f.key} class={f.budget?.over ? "over" : ""}>
                    <th><button class="link" title="draw its frontier" onClick={() => setFamily(f.key)}>{f.name}</button></th>
                    <td>{f.runs}{f.unpriced_runs > 0 ? ` (${f.unpriced_runs} unpriced)` : ""}</td>
                    <td>{usd(f.usd)}</td>
                    <td>{f.gpu_hours.toFixed(1)}</td>
                    <td>{usd(f.idle_usd)}</td>
                    <td>{share(f.idle_share)}</td>
                    <td>{f.improvement ? metric(f.improvement.best_value) : "–"}</td>
                    <td>{f.improvement?.per_usd !== undefined ? metric(f.improvement.per_usd) : "–"}</td>
                    <td>{f.improvement?.marginal.per_usd !== undefined ? metric(f.improvement.marginal.per_usd) : "–"}</td>
                    <td>{f.budget ? `${usd(f.budget.spent_usd)} of ${usd(f.budget.usd)}/${f.budget.period}` : "–"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            {!r.metric && <p class="dim">Name a metric to see how much improvement each dollar bought.</p>}
          </section>
          {view.frontier_chart && (
            <section class="card">
              <h2>Cost vs {r.metric}: {view.frontier_family}</h2>
              <img class="chart-img" alt="cost against metric, the frontier joined" src={svgUrl(view.frontier_chart.svg)} data-testid="frontier-chart" />
            </section>
          )}
          <section class="card">
            <h2>Top idle wasters</h2>
            {r.top_idle.length === 0 ? (
              <p class="dim">No run has GPU utilisation readings (<code>cairn exec</code> samples them; <code>cairn run log RUN --util-trace FILE</code> imports an nvidia-smi trace).</p>
            ) : (
              <table class="kv" data-testid="idle-table">
                <thead><tr><th>run</th><th>experiment</th><th>owner</th><th>idle $</th><th>idle</th><th>start</th><th>middle</th><th>end</th><th>unused GPUs</th></tr></thead>
                <tbody>
                  {r.top_idle.map((w) => (
                    <tr key={w.run}>
                      <th><a href={`#/run/${w.run}`}>{w.name || shortId(w.run)}</a></th>
                      <td>{w.experiment}</td>
                      <td>{w.owner ?? "–"}</td>
                      <td>{usd(w.idle_usd)}</td>
                      <td>{share(w.idle_share)}</td>
                      <td>{w.start_s.toFixed(0)}s</td>
                      <td>{w.middle_s.toFixed(0)}s</td>
                      <td>{w.end_s.toFixed(0)}s</td>
                      <td>{w.unused_s.toFixed(0)}s</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </section>
          {r.problems.length > 0 && <section class="card"><h2>Left out</h2>{r.problems.map((p) => <div class="dim" key={p}>{p}</div>)}</section>}
        </>
      )}
      {/* After the figures: their requests do not compete with the dashboard's first paint. */}
      {(r || error) && <PriceTable onChange={edited} />}
      {(r || error) && <Budgets families={r ? r.families.map((f) => f.key) : []} onChange={edited} />}
    </div>
  );
}
