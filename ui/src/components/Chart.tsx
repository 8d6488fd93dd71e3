// Charts drawn by Cairn's renderer (cairn-charts, the same code behind `cairn plot`): the server
// returns SVG plus the map of what it drew where. The SVG is shown as an image (it never runs in
// the page); a transparent layer on top uses the map for hover values, drag-to-zoom (the server
// re-renders the range at full resolution) and the legend toggles runs on and off.

import { useEffect, useLayoutEffect, useRef, useState } from "preact/hooks";

import { fromPx, hoverAt, toPx, type HoverRow } from "../chartmap";
import { metric } from "../format";
import { api, theme } from "../state";
import type { ChartRequest, ChartView, LineMap, ParallelMap } from "../wire";

const xText = (v: number) => (Number.isInteger(v) ? String(v) : metric(v));

function svgUrl(svg: string): string {
  return "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
}

/** The chart's width in pixels: its container's, so text is drawn at the size it is shown. */
function useWidth(fallback: number): [preact.RefObject<HTMLDivElement>, number] {
  const ref = useRef<HTMLDivElement>(null);
  const [width, setWidth] = useState(0);
  useLayoutEffect(() => {
    const w = ref.current?.clientWidth ?? 0;
    setWidth(w > 0 ? Math.min(1600, Math.max(360, Math.round(w / 20) * 20)) : fallback);
  }, []);
  return [ref, width];
}

function useChart(req: ChartRequest | null): { view: ChartView | null; error: string | null; loading: boolean } {
  const [view, setView] = useState<ChartView | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const key = req ? JSON.stringify(req) : "";
  useEffect(() => {
    if (!req) return;
    let live = true;
    setLoading(true);
    api
      .chart(req)
      .then((v) => {
        if (!live) return;
        setView(v);
        setError(null);
      })
      .catch((e) => live && setError(e.message))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [key]);
  return { view, error, loading };
}

export interface LineProps {
  runs: { id: string; label: string }[];
  metricKey: string;
  smooth?: number;
  /** `step`, `time`, `relative` or another metric's key. */
  x?: string;
  log?: boolean;
  groupBy?: string;
  height?: number;
}

export function MetricChart({ runs, metricKey, smooth = 0, x = "step", log = false, groupBy, height = 280 }: LineProps) {
  const [box, width] = useWidth(640);
  const [range, setRange] = useState<[number, number] | null>(null);
  const [hidden, setHidden] = useState<Set<string>>(new Set());
  const [hover, setHover] = useState<{ px: number; x: string; rows: HoverRow[] } | null>(null);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const overlay = useRef<SVGSVGElement>(null);
  useEffect(() => setRange(null), [x, log]);

  const shown = runs.filter((r) => !hidden.has(r.id));
  const req: ChartRequest | null =
    width > 0 && shown.length > 0
      ? { runs: shown.map((r) => r.id), metric: metricKey, x, smooth: smooth || undefined, log, group_by: groupBy || undefined, lo: range?.[0], hi: range?.[1], width, height, dark: theme.value === "dark" }
      : null;
  const { view, error, loading } = useChart(req);
  const map = view?.map.kind === "line" ? (view.map as LineMap) : null;

  const pointerPx = (e: MouseEvent) => {
    const r = overlay.current!.getBoundingClientRect();
    return ((e.clientX - r.left) / r.width) * width;
  };
  const onMove = (e: MouseEvent) => {
    if (!map) return;
    const px = pointerPx(e);
    if (drag) setDrag([drag[0], px]);
    const h = hoverAt(map, px);
    setHover(h && { px, ...h });
  };
  const onUp = () => {
    if (map && drag && Math.abs(drag[1] - drag[0]) > 4) {
      let a = fromPx(map.x, Math.min(drag[0], drag[1]));
      let b = fromPx(map.x, Math.max(drag[0], drag[1]));
      if (map.x.unit === "step") [a, b] = [Math.floor(a), Math.ceil(b)];
      if (b > a) setRange([a, b]);
    }
    setDrag(null);
  };
  const toggle = (id: string) => {
    const next = new Set(hidden);
    if (next.has(id)) next.delete(id);
    else if (shown.length > 1) next.add(id);
    setHidden(next);
  };
  const colorOf = new Map(map?.series.map((s) => [s.id, s.color]) ?? []);
  const plot = map?.plot;

  return (
    <figure class="chart" data-metric={metricKey} data-state={loading ? "loading" : error ? "error" : "ready"}>
      <figcaption>
        {range && (
          <button class="link" onClick={() => setRange(null)}>
            reset zoom ({xText(range[0])} – {xText(range[1])})
          </button>
        )}
        {error && <span class="chart-error">{metricKey}: {error}</span>}
      </figcaption>
      <div class="plot" ref={box} style={{ aspectRatio: `${width || 640} / ${height}` }}>
        {view && <img src={svgUrl(view.svg)} alt={`${metricKey} chart`} draggable={false} />}
        {!view && !error && <div class="chart-loading">loading {metricKey}…</div>}
        {map && plot && (
          <svg
            ref={overlay}
            class="overlay"
            viewBox={`0 0 ${width} ${height}`}
            role="img"
            aria-label={`${metricKey} chart`}
            onMouseMove={onMove}
            onMouseLeave={() => {
              setHover(null);
              setDrag(null);
            }}
            onMouseDown={(e) => setDrag([pointerPx(e), pointerPx(e)])}
            onMouseUp={onUp}
            onDblClick={() => setRange(null)}
          >
            {drag && <rect x={Math.min(drag[0], drag[1])} y={plot.y} width={Math.abs(drag[1] - drag[0])} height={plot.height} class="zoom" />}
            {hover && <line x1={hover.px} x2={hover.px} y1={plot.y} y2={plot.y + plot.height} class="cursor" />}
            {hover?.rows.map((r) => {
              const y = toPx(map.y, r.value);
              return y === null ? null : <circle key={r.label} cx={hover.px} cy={y} r="3" fill={r.color} />;
            })}
          </svg>
        )}
      </div>
      <div class="hover" data-testid="hover">
        {hover ? (
          <>
            <strong>{hover.x}</strong>
            {hover.rows.map((r) => (
              <span key={r.label}>
                <i class="swatch" style={{ background: r.color }} /> {r.label} {metric(r.value)}
                {r.min !== undefined && r.max !== undefined && r.min !== r.max && <span class="dim"> [{metric(r.min)} … {metric(r.max)}]</span>}
              </span>
            ))}
          </>
        ) : (
          <span class="dim">{runs.length > 0 ? "hover for values · drag to zoom · double-click to reset" : ""}</span>
        )}
      </div>
      {runs.length > 1 && !groupBy && (
        <ul class="legend" aria-label={`${metricKey} runs`}>
          {runs.map((r) => (
            <li key={r.id}>
              <button class={hidden.has(r.id) ? "link off" : "link"} onClick={() => toggle(r.id)} title={hidden.has(r.id) ? "show this run" : "hide this run"}>
                <i class="swatch" style={{ background: hidden.has(r.id) ? "transparent" : colorOf.get(r.id) ?? "var(--dim)" }} /> {r.label}
              </button>
            </li>
          ))}
        </ul>
      )}
    </figure>
  );
}

/** Parallel coordinates of runs across params and a metric; hovering a line names its run. */
export function ParallelChart({ runs, fields }: { runs: string[]; fields?: string[] }) {
  const [box, width] = useWidth(900);
  const height = 360;
  const req: ChartRequest | null = width > 0 && runs.length > 0 ? { kind: "parallel", runs, fields, width, height, dark: theme.value === "dark" } : null;
  const { view, error } = useChart(req);
  const [over, setOver] = useState<string | null>(null);
  const map = view?.map.kind === "parallel" ? (view.map as ParallelMap) : null;
  return (
    <figure class="chart parallel" data-chart="parallel">
      {error && <div class="chart-error">{error}</div>}
      <div class="plot" ref={box} style={{ aspectRatio: `${width || 900} / ${height}` }}>
        {view && <img src={svgUrl(view.svg)} alt="parallel coordinates" draggable={false} />}
        {map && (
          <svg class="overlay" viewBox={`0 0 ${width} ${height}`} onMouseLeave={() => setOver(null)}>
            {map.rows.map((r) => (
              <polyline key={r.id} points={r.points.map(([x, y]) => `${x},${y}`).join(" ")} class={over === r.id ? "row-line on" : "row-line"} stroke={r.color} onMouseEnter={() => setOver(r.id)}>
                <title>{r.label}</title>
              </polyline>
            ))}
          </svg>
        )}
      </div>
      <div class="hover" data-testid="parallel-hover">
        {over ? <a href={`#/run/${over}`}>{map?.rows.find((r) => r.id === over)?.label}</a> : <span class="dim">{map ? `${map.rows.length} runs across ${map.axes.map((a) => a.name).join(", ")}` : ""}</span>}
      </div>
    </figure>
  );
}
