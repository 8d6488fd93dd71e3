// The catalog: experiments, and every run in a virtualised table searchable with the query
// language, with chosen columns, sort, multi-select and keyboard navigation.

import { Reviews } from "../components/Reviews";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";

import { ApiError } from "../api";
import { runCostCell } from "../cost";
import type { SavedView } from "../wire";
import { duration, metric, thousands, time } from "../format";
import { apply, complete, vocabularyOf, type Completion } from "../query";
import { api, go, info } from "../state";
import type { ExperimentSummary, RunSummary } from "../wire";

const ROW = 30;
const PAGE = 100;

interface Column {
  id: string;
  label: string;
  order?: string;
  value: (r: RunSummary) => string;
  numeric?: boolean;
}

const BASE_COLUMNS: Column[] = [
  { id: "name", label: "name", order: "attributes.run_name", value: (r) => r.name },
  { id: "experiment", label: "experiment", value: (r) => r.experiment_name },
  { id: "owner", label: "owner", order: "attributes.user_id", value: (r) => r.owner ?? "–" },
  { id: "status", label: "status", order: "attributes.status", value: (r) => r.status + (r.incomplete ? ` · ${r.compliance}` : "") },
  { id: "started", label: "started", order: "attributes.start_time", value: (r) => time(r.start_ms) },
  { id: "duration", label: "duration", value: (r) => (r.end_ms ? duration(r.end_ms - r.start_ms) : "–"), numeric: true },
  // The cost projection's figure (a running run's grown to the time of the search); sorts as `cost.usd`.
  { id: "cost", label: "cost", order: "cost.usd", value: (r) => runCostCell(r.cost), numeric: true },
];

function columnFor(id: string): Column {
  const [kind, ...rest] = id.split(".");
  const key = rest.join(".");
  const quoted = /^[A-Za-z_][A-Za-z0-9_./-]*$/.test(key) ? key : "`" + key + "`";
  if (kind === "metrics") return { id, label: key, order: `metrics.${quoted}`, value: (r) => metric(r.metrics[key]), numeric: true };
  if (kind === "params") return { id, label: key, order: `params.${quoted}`, value: (r) => r.params[key] ?? "–" };
  return { id, label: key, order: `tags.${quoted}`, value: (r) => r.tags[key] ?? "–" };
}

/** `initialExperiment`: an experiment's name or id to open on (MLflow's "0" too). */
export function Catalog({ initialExperiment }: { initialExperiment?: string } = {}) {
  const [experiments, setExperiments] = useState<ExperimentSummary[] | null>(null);
  const [experiment, setExperiment] = useState<string>(initialExperiment ?? "");
  const [query, setQuery] = useState("");
  const [applied, setApplied] = useState("");
  const [mine, setMine] = useState(false);
  const [order, setOrder] = useState<{ field: string; desc: boolean } | null>(null);
  const [total, setTotal] = useState<number | null>(null);
  const [pages, setPages] = useState<Map<number, RunSummary[]>>(new Map());
  const [error, setError] = useState<ApiError | null>(null);
  const [elapsed, setElapsed] = useState<number | null>(null);
  const [extra, setExtra] = useState<string[] | null>(null);
  const [chooser, setChooser] = useState(false);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [cursor, setCursor] = useState(0);
  const [scrollTop, setScrollTop] = useState(0);
  const [completions, setCompletions] = useState<Completion[]>([]);
  const [active, setActive] = useState(0);
  const scroller = useRef<HTMLDivElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const generation = useRef(0);
  const [views, setViews] = useState<SavedView[]>([]);
  const [view, setView] = useState("");
  const [naming, setNaming] = useState<string | null>(null);
  const [viewError, setViewError] = useState<string | null>(null);

  useEffect(() => {
    api.experiments().then(setExperiments).catch((e) => setError(e));
    api.views().then(setViews).catch((e) => setViewError(e.message));
  }, []);

  const openView = (name: string) => {
    setView(name);
    const v = views.find((v) => v.name === name);
    if (!v) return;
    setQuery(v.query);
    setApplied(v.query);
    const m = v.order ? /^(.*?)(?:\s+(asc|desc))?$/i.exec(v.order.trim()) : null;
    setOrder(m ? { field: m[1], desc: (m[2] ?? "").toLowerCase() === "desc" } : null);
    setExtra(v.columns.length ? v.columns : null);
  };
  const saveView = async (name: string) => {
    try {
      const saved = await api.saveView({ name, query: applied, order: orderText, columns: extra ?? [] });
      setViews((vs) => [...vs.filter((v) => v.name !== saved.name), saved].sort((a, b) => a.name.localeCompare(b.name)));
      setView(saved.name);
      setNaming(null);
      setViewError(null);
    } catch (e) {
      setViewError((e as Error).message);
    }
  };
  const deleteView = async () => {
    try {
      await api.deleteView({ name: view });
      setViews((vs) => vs.filter((v) => v.name !== view));
      setView("");
    } catch (e) {
      setViewError((e as Error).message);
    }
  };

  const orderText = order ? `${order.field} ${order.desc ? "DESC" : "ASC"}` : undefined;

  const loadPage = useCallback(
    (page: number, gen: number) => {
      const t0 = performance.now();
      return api
        .search({ q: applied.trim(), mine, order: orderText, experiment: experiment || undefined, limit: PAGE, offset: page * PAGE })
        .then((res) => {
          if (gen !== generation.current) return;
          setTotal(res.total);
          setPages((p) => new Map(p).set(page, res.runs));
          setError(null);
          if (page === 0) setElapsed(performance.now() - t0);
        })
        .catch((e) => gen === generation.current && setError(e));
    },
    [applied, mine, orderText, experiment],
  );

  // A new query, order or experiment starts over from the first page.
  useEffect(() => {
    generation.current++;
    setPages(new Map());
    setTotal(null);
    setCursor(0);
    scroller.current?.scrollTo(0, 0);
    loadPage(0, generation.current);
  }, [loadPage]);

  const height = scroller.current?.clientHeight ?? 600;
  const first = Math.max(0, Math.floor(scrollTop / ROW) - 10);
  const last = Math.min(total ?? 0, Math.ceil((scrollTop + height) / ROW) + 10);
  useEffect(() => {
    for (let p = Math.floor(first / PAGE); p <= Math.floor(Math.max(first, last - 1) / PAGE); p++) {
      if (!pages.has(p) && total !== null && p * PAGE < total) {
        pages.set(p, []);
        loadPage(p, generation.current);
      }
    }
  }, [first, last, total]);

  const rowAt = (i: number): RunSummary | undefined => pages.get(Math.floor(i / PAGE))?.[i % PAGE];
  const firstPage = pages.get(0) ?? [];
  const vocab = useMemo(() => vocabularyOf(firstPage), [firstPage]);
  const metricsSeen = vocab.metrics;
  const columnIds = extra ?? metricsSeen.filter((m) => !m.startsWith("system/")).slice(0, 4).map((m) => `metrics.${m}`);
  const columns = [...BASE_COLUMNS, ...columnIds.map(columnFor)];

  const submit = () => {
    setApplied(query);
    setCompletions([]);
  };
  const onInput = (e: Event) => {
    const el = e.currentTarget as HTMLInputElement;
    setQuery(el.value);
    setCompletions(complete(el.value, el.selectionStart ?? el.value.length, vocab));
    setActive(0);
  };
  const accept = (c: Completion) => {
    const el = input.current!;
    const r = apply(query, el.selectionStart ?? query.length, c);
    setQuery(r.text);
    setCompletions([]);
    requestAnimationFrame(() => el.setSelectionRange(r.cursor, r.cursor));
  };
  const onQueryKey = (e: KeyboardEvent) => {
    if (completions.length && (e.key === "ArrowDown" || e.key === "ArrowUp")) {
      e.preventDefault();
      setActive((a) => (a + (e.key === "ArrowDown" ? 1 : completions.length - 1)) % completions.length);
    } else if (completions.length && e.key === "Tab") {
      e.preventDefault();
      accept(completions[active]);
    } else if (e.key === "Enter") {
      e.preventDefault();
      submit();
    } else if (e.key === "Escape") {
      setCompletions([]);
      input.current?.blur();
    }
  };

  // Keyboard navigation of the table: j/k or arrows, Enter opens, x selects, / searches.
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (document.activeElement && ["INPUT", "TEXTAREA"].includes(document.activeElement.tagName)) return;
      const n = total ?? 0;
      if (e.key === "/") {
        e.preventDefault();
        input.current?.focus();
      } else if (e.key === "j" || e.key === "ArrowDown") {
        e.preventDefault();
        setCursor((c) => Math.min(n - 1, c + 1));
      } else if (e.key === "k" || e.key === "ArrowUp") {
        e.preventDefault();
        setCursor((c) => Math.max(0, c - 1));
      } else if (e.key === "Enter") {
        const r = rowAt(cursor);
        if (r) go(`#/run/${r.id}`);
      } else if (e.key === "x") {
        const r = rowAt(cursor);
        if (r) toggle(r.id);
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  });
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const top = cursor * ROW;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW - el.clientHeight;
  }, [cursor]);

  const toggle = (id: string) =>
    setSelected((s) => {
      const next = new Set(s);
      if (next.has(id)) next.delete(id);
      else next.add(id);
      return next;
    });
  const sortBy = (c: Column) => {
    if (!c.order) return;
    setOrder((o) => (o && o.field === c.order ? { field: c.order!, desc: !o.desc } : { field: c.order!, desc: c.numeric ?? false }));
  };

  const errorColumn = error?.column ?? null;
  const rows = [];
  for (let i = first; i < last; i++) {
    const r = rowAt(i);
    rows.push(
      <div key={i} class={"row" + (i === cursor ? " cursor" : "") + (r && selected.has(r.id) ? " selected" : "")} style={{ top: i * ROW }} role="row"
        onClick={() => { setCursor(i); if (r) go(`#/run/${r.id}`); }}>
        <span class="cell check" onClick={(e) => { e.stopPropagation(); if (r) toggle(r.id); }}>
          <input type="checkbox" checked={!!r && selected.has(r.id)} aria-label="select run" />
        </span>
        {columns.map((c) => (
          <span key={c.id} class={"cell" + (c.numeric ? " num" : "") + (c.id === "status" && r ? ` status-${r.status}` : "")}>
            {r && c.id === "status" && r.incomplete ? (
              <>{r.status} <span class={`badge compliance-${r.compliance}`} title="lacks fields the schema requires: see the run">{r.compliance}</span></>
            ) : r ? c.value(r) : "…"}
          </span>
        ))}
      </div>,
    );
  }

  const allKeys = [...vocab.metrics.map((k) => `metrics.${k}`), ...vocab.params.map((k) => `params.${k}`), ...vocab.tags.map((k) => `tags.${k}`)];
  return (
    <div class="catalog">
      <aside class="experiments">
        <h2>Experiments</h2>
        <button class={"exp" + (experiment === "" ? " on" : "")} onClick={() => setExperiment("")}>
          All runs
        </button>
        {experiments?.map((e) => (
          <button key={e.id} class={"exp" + (experiment === e.name || experiment === e.id ? " on" : "")} onClick={() => setExperiment(e.name)}>
            <span>{e.name}</span>
            <span class="count">{thousands(e.runs)}</span>
          </button>
        ))}
      </aside>
      <section class="runs">
        <div class="toolbar">
          <div class="search">
            <input ref={input} type="search" placeholder="metrics.acc > 0.9 and params.optimizer = 'adam'   (press / to search, Enter to run)" value={query}
              onInput={onInput} onKeyDown={onQueryKey} aria-label="query" class={error && errorColumn ? "bad" : ""} spellcheck={false} />
            {completions.length > 0 && (
              <ul class="completions" role="listbox">
                {completions.map((c, i) => (
                  <li key={c.label} class={i === active ? "on" : ""} onMouseDown={(e) => { e.preventDefault(); accept(c); }}>{c.label}</li>
                ))}
              </ul>
            )}
            {error && (
              <div class="query-error" role="alert">
                {errorColumn ? <pre class="caret">{applied}{"\n"}{" ".repeat(Math.max(0, errorColumn - 1))}^</pre> : null}
                {error.message}
              </div>
            )}
          </div>
          <label class="mine"><input type="checkbox" checked={mine} onChange={() => setMine(!mine)} /> mine</label>
          <div class="views">
            <select aria-label="saved views" value={view} onChange={(e) => openView((e.currentTarget as HTMLSelectElement).value)}>
              <option value="">{views.length ? "Saved views…" : "No saved views"}</option>
              {views.map((v) => <option key={v.name} value={v.name}>{v.name}</option>)}
            </select>
            {view && <button class="link" onClick={deleteView} title={`delete the view '${view}' for everyone`} aria-label="delete view">✕</button>}
            {naming === null ? (
              <button onClick={() => setNaming(view || "")} title="save this query, order and columns for the team">Save view</button>
            ) : (
              <form class="name-view" onSubmit={(e) => { e.preventDefault(); if (naming.trim()) saveView(naming.trim()); }}>
                <input aria-label="view name" placeholder="view name" value={naming} autoFocus onInput={(e) => setNaming((e.currentTarget as HTMLInputElement).value)}
                  onKeyDown={(e) => e.key === "Escape" && setNaming(null)} />
                <button type="submit" disabled={!naming.trim()}>Save</button>
              </form>
            )}
            {viewError && <span class="view-error" role="alert">{viewError}</span>}
          </div>
          <button onClick={() => setChooser(!chooser)}>Columns</button>
          <button disabled={selected.size < 2} onClick={() => go(`#/compare/${[...selected].join(",")}`)}>Compare ({selected.size})</button>
        </div>
        {chooser && (
          <div class="chooser">
            {allKeys.map((k) => (
              <label key={k}>
                <input type="checkbox" checked={columnIds.includes(k)} onChange={() => setExtra(columnIds.includes(k) ? columnIds.filter((c) => c !== k) : [...columnIds, k])} /> {k}
              </label>
            ))}
          </div>
        )}
        <div class="summary" data-testid="summary">
          {total === null ? "searching…" : `${thousands(total)} runs`}
          {elapsed !== null && total !== null ? ` · ${elapsed.toFixed(0)} ms` : ""}
          {order ? ` · sorted by ${order.field} ${order.desc ? "↓" : "↑"}` : ""}
        </div>
        <div class="table" role="table">
          <div class="row head" role="row">
            <span class="cell check" />
            {columns.map((c) => (
              <span key={c.id} class={"cell" + (c.numeric ? " num" : "") + (c.order ? " sortable" : "")} onClick={() => sortBy(c)} role="columnheader">
                {c.label}
                {order && order.field === c.order ? (order.desc ? " ↓" : " ↑") : ""}
              </span>
            ))}
          </div>
          <div class="body" ref={scroller} onScroll={(e) => setScrollTop((e.currentTarget as HTMLDivElement).scrollTop)}>
            <div style={{ height: (total ?? 0) * ROW, position: "relative" }}>{rows}</div>
          </div>
        </div>
        {total === 0 && !error && (
          <div class="empty">
            <h3>No runs {applied ? "match this query" : "yet"}</h3>
            {!applied && (
              <p>
                Point any MLflow training script at this workspace: <code>export MLFLOW_TRACKING_URI={info.value?.tracking_uri ?? window.location.origin}</code>, or wrap a
                command: <code>cairn exec --exp NAME -- python train.py</code>.
              </p>
            )}
          </div>
        )}
      </section>
      {experiment && <Reviews key={experiment} experiment={experiment} />}
    </div>
  );
}
