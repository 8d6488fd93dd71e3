// A run's traces (what GenAI code sent through MLflow's tracing or OTLP): the list, newest first,
// and for the chosen trace its span tree as a waterfall — each span's offset and duration drawn
// to the trace's scale, its status, and its inputs, outputs, attributes and events on click.
// Left out of the page when the run has no traces.

import { useEffect, useState } from "preact/hooks";

import { api } from "../state";
import { clock, micros, preview, ticks, waterfall, type WaterfallRow } from "../traces";
import type { TraceSummary, TraceView } from "../wire";

const PAGE = 50;

function stateClass(state: string): string {
  return state === "OK" ? "ok" : state === "ERROR" ? "bad" : "dim";
}

function SpanDetail({ row }: { row: WaterfallRow }) {
  const s = row.span;
  return (
    <div class="span-detail" data-detail={s.span_id}>
      <dl>
        <dt>span</dt>
        <dd><code>{s.span_id}</code>{s.parent_id && <span class="dim"> under <code>{s.parent_id}</code></span>}</dd>
        <dt>timing</dt>
        <dd>starts at {micros(s.offset_us)}, {row.open ? "still running" : `lasts ${micros(s.duration_us)}`}</dd>
        <dt>status</dt>
        <dd><span class={`span-status ${stateClass(s.status)}`}>{s.status}</span>{s.status_message && ` — ${s.status_message}`}</dd>
        {s.inputs !== null && <><dt>inputs</dt><dd><pre>{s.inputs}</pre></dd></>}
        {s.outputs !== null && <><dt>outputs</dt><dd><pre>{s.outputs}</pre></dd></>}
      </dl>
      {s.attributes.length > 0 && (
        <table class="kv attributes">
          <tbody>{s.attributes.map((a) => <tr key={a.key} data-attribute={a.key}><th>{a.key}</th><td><pre>{a.value}</pre></td></tr>)}</tbody>
        </table>
      )}
      {s.events.length > 0 && (
        <table class="kv events">
          <thead><tr><th>event</th><th>at</th><th>attributes</th></tr></thead>
          <tbody>
            {s.events.map((e, i) => (
              <tr key={i}><th>{e.name}</th><td>{micros(e.offset_us)}</td><td>{e.attributes.map((a) => <div key={a.key}><code>{a.key}</code>: {a.value}</div>)}</td></tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

/** The span tree of one trace, drawn to scale. */
export function Waterfall({ view }: { view: TraceView }) {
  const [expanded, setExpanded] = useState<Set<string>>(new Set());
  const w = waterfall(view.spans);
  const toggle = (id: string) => {
    const next = new Set(expanded);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setExpanded(next);
  };
  return (
    <div class="waterfall" data-trace={view.trace.trace_id} data-total-us={w.total_us}>
      <div class="wf-head">
        <span class="wf-label">span</span>
        <span class="wf-status">status</span>
        <span class="wf-dur">duration</span>
        <span class="wf-track wf-axis">
          {ticks(w.total_us).map((t, i, all) => (
            <span key={i} class="wf-tick" style={{ left: `${w.total_us > 0 ? (t / w.total_us) * 100 : 0}%` }} data-last={i === all.length - 1 ? "" : undefined}>{micros(t)}</span>
          ))}
        </span>
      </div>
      {w.rows.map((r) => {
        const s = r.span;
        const on = expanded.has(s.span_id);
        return (
          <div key={s.span_id} class={`wf-row${on ? " on" : ""}`} data-span={s.span_id} data-depth={r.depth}>
            <button class="wf-line" aria-expanded={on} onClick={() => toggle(s.span_id)} title={`${s.name}: ${micros(s.offset_us)} + ${r.open ? "running" : micros(s.duration_us)}`}>
              <span class="wf-label" style={{ paddingLeft: `${r.depth * 14}px` }}>
                <span class="wf-name">{s.name}</span>
                {s.span_type && <span class="tag">{s.span_type}</span>}
              </span>
              <span class={`wf-status span-status ${stateClass(s.status)}`}>{s.status}</span>
              <span class="wf-dur">{r.open ? "running" : micros(s.duration_us)}</span>
              <span class="wf-track">
                <span class={`wf-bar ${stateClass(s.status)}${r.open ? " open" : ""}`} style={{ left: `${r.left}%`, width: `${r.width}%` }} data-left={r.left.toFixed(3)} data-width={r.width.toFixed(3)} />
              </span>
            </button>
            {on && <SpanDetail row={r} />}
          </div>
        );
      })}
    </div>
  );
}

export function RunTraces({ runId }: { runId: string }) {
  const [traces, setTraces] = useState<TraceSummary[]>([]);
  const [next, setNext] = useState<number | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [chosen, setChosen] = useState<string | null>(null);
  const [view, setView] = useState<TraceView | null>(null);
  const [viewError, setViewError] = useState<string | null>(null);

  useEffect(() => {
    setTraces([]);
    setNext(null);
    setError(null);
    setChosen(null);
    api.runTraces({ id: runId, limit: PAGE })
      .then((p) => {
        setTraces(p.traces);
        setNext(p.next_offset);
        setChosen(p.traces[0]?.trace_id ?? null);
      })
      .catch((e) => setError(e.message));
  }, [runId]);
  useEffect(() => {
    setView(null);
    setViewError(null);
    if (chosen) api.trace({ id: chosen }).then(setView).catch((e) => setViewError(e.message));
  }, [chosen]);

  if (error) return <section class="card"><h2>Traces</h2><div class="error">{error}</div></section>;
  if (traces.length === 0) return null;
  const more = () => {
    if (next === null) return;
    api.runTraces({ id: runId, limit: PAGE, offset: next }).then((p) => {
      setTraces([...traces, ...p.traces]);
      setNext(p.next_offset);
    }).catch((e) => setError(e.message));
  };

  return (
    <section class="card run-traces" data-testid="traces">
      <h2>Traces ({traces.length}{next !== null ? "+" : ""})</h2>
      <table class="kv trace-list">
        <thead><tr><th>trace</th><th>status</th><th>start</th><th>duration</th><th>spans</th></tr></thead>
        <tbody>
          {traces.map((t) => (
            <tr key={t.trace_id} data-trace={t.trace_id} class={t.trace_id === chosen ? "selected" : ""} onClick={() => setChosen(t.trace_id)}>
              <td>
                <div class="trace-name">{t.name || preview(t.request_preview, 60) || t.trace_id}</div>
                {t.request_preview && <div class="dim trace-preview">{preview(t.request_preview)}</div>}
              </td>
              <td><span class={`span-status ${stateClass(t.state)}`}>{t.state}</span></td>
              <td>{clock(t.request_time_ms)}</td>
              <td>{t.execution_ms === null ? "–" : micros(t.execution_ms * 1000)}</td>
              <td>{t.span_count}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {next !== null && <p><button onClick={more}>More traces</button></p>}
      {viewError && <div class="error">{viewError}</div>}
      {view && (
        <div class="trace-view">
          <h3>
            {view.trace.name ?? view.trace.trace_id} <code class="dim">{view.trace.trace_id}</code>
            {view.assessments.length > 0 && <span class="dim"> · {view.assessments.length} assessments</span>}
          </h3>
          {view.assessments.length > 0 && (
            <table class="kv assessments">
              <tbody>
                {view.assessments.map((a) => (
                  <tr key={a.assessment_id} class={a.valid ? "" : "dim"}><th>{a.name}</th><td>{a.kind}</td><td>{a.value}</td><td class="dim">{a.source}{a.rationale ? ` — ${a.rationale}` : ""}</td></tr>
                ))}
              </tbody>
            </table>
          )}
          <Waterfall key={view.trace.trace_id} view={view} />
        </div>
      )}
    </section>
  );
}
