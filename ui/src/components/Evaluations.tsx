// A run's evaluations: per benchmark its dataset and reports, the slice table (the overall
// metrics first, then each slice's, with each metric's lowest and highest group marked: the gap
// the fairness figures measure), and the fairness figures (difference and ratio per sensitive
// attribute and metric, a ratio under the four-fifths floor flagged).

import { metric } from "../format";
import { api } from "../state";
import type { EvaluationView, FairnessFigure, Num } from "../wire";
import { num } from "../api";
import { RATIO_FLOOR, extremes } from "../evaluations";

function flagged(f: FairnessFigure): boolean {
  return num(f.ratio) < RATIO_FLOOR;
}

export function FairnessTable({ figures }: { figures: FairnessFigure[] }) {
  if (figures.length === 0) return null;
  return (
    <table class="kv fairness">
      <caption>Disparity across slices: difference (max − min) and ratio (min / max) per metric and sensitive attribute, as fairlearn defines them</caption>
      <thead><tr><th>attribute</th><th>metric</th><th>difference</th><th>ratio</th><th>groups</th><th>lowest</th><th>highest</th></tr></thead>
      <tbody>
        {figures.map((f) => (
          <tr key={`${f.attribute}/${f.metric}`} class={flagged(f) ? "gap" : ""} title={flagged(f) ? `ratio under ${RATIO_FLOOR}: the four-fifths rule's sign of disparate impact` : undefined} data-fairness={`${f.metric}/${f.attribute}`}>
            <th>{f.attribute}</th><td>{f.metric}</td><td class="num">{metric(f.difference)}</td><td class="num">{metric(f.ratio)}</td>
            <td class="num">{f.groups}</td><td>{f.lowest}</td><td>{f.highest}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function SliceTable({ overall, slices }: { overall: Record<string, Num>; slices: Record<string, Record<string, Num>> }) {
  const names = Object.keys(slices);
  if (names.length === 0) return null;
  const keys = [...new Set([...Object.keys(overall), ...names.flatMap((s) => Object.keys(slices[s]))])].sort();
  const ext = extremes(slices);
  return (
    <table class="kv slices">
      <thead><tr><th>slice</th>{keys.map((k) => <th key={k} class="num">{k}</th>)}</tr></thead>
      <tbody>
        <tr class="overall" data-slice="">
          <th>overall</th>
          {keys.map((k) => <td key={k} class="num">{metric(overall[k])}</td>)}
        </tr>
        {names.map((s) => (
          <tr key={s} data-slice={s}>
            <th>{s}</th>
            {keys.map((k) => {
              const mark = ext[k]?.lo === s ? "lo" : ext[k]?.hi === s ? "hi" : "";
              const v = slices[s][k];
              return <td key={k} class={"num " + mark} title={mark === "lo" ? "lowest group" : mark === "hi" ? "highest group" : undefined}>{metric(v)}</td>;
            })}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function Evaluation({ runId, view }: { runId: string; view: EvaluationView }) {
  return (
    <div class="evaluation" data-benchmark={view.benchmark}>
      <h3>{view.benchmark}</h3>
      <div class="dim">
        dataset <code>{view.dataset ?? "–"}</code>
        {(view.reports ?? []).map((r) => <span key={r}> · <a href={api.artifactUrl(runId, r)} download>{r}</a></span>)}
      </div>
      {Object.keys(view.slices ?? {}).length === 0 && (
        <div class="overall">{Object.entries(view.metrics).map(([k, v]) => <span class="tag" key={k}>{k}={metric(v)}</span>)}</div>
      )}
      <SliceTable overall={view.metrics} slices={view.slices ?? {}} />
      <FairnessTable figures={view.fairness} />
    </div>
  );
}

export function Evaluations({ runId, views }: { runId: string; views: EvaluationView[] }) {
  if (views.length === 0) return null;
  return (
    <section class="card evaluations">
      <h2>Evaluations ({views.length})</h2>
      {views.map((v) => <Evaluation key={v.benchmark} runId={runId} view={v} />)}
    </section>
  );
}
