// A metric chart: the min–max envelope of every bucket (so no spike is lost), the last value of
// each bucket as the line, hover values, drag to zoom (re-fetched at full resolution for the
// range), double-click to reset.

import { useEffect, useRef, useState } from "preact/hooks";

import { num } from "../api";
import { metric } from "../format";
import { api } from "../state";
import type { Bucket } from "../wire";

export const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];

interface Series {
  run: string;
  label: string;
  buckets: Bucket[];
}

const W = 560;
const H = 200;
const PAD = { l: 52, r: 10, t: 10, b: 24 };

function extent(series: Series[]): { x0: number; x1: number; y0: number; y1: number } {
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const s of series) {
    for (const b of s.buckets) {
      x0 = Math.min(x0, b.step_lo);
      x1 = Math.max(x1, b.step_hi);
      const lo = num(b.min), hi = num(b.max);
      if (Number.isFinite(lo)) y0 = Math.min(y0, lo);
      if (Number.isFinite(hi)) y1 = Math.max(y1, hi);
    }
  }
  if (!Number.isFinite(x0)) return { x0: 0, x1: 1, y0: 0, y1: 1 };
  if (x1 === x0) x1 = x0 + 1;
  if (!Number.isFinite(y0)) { y0 = 0; y1 = 1; }
  if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
  return { x0, x1, y0, y1 };
}

export function MetricChart({ runs, metricKey, smooth = 0 }: { runs: { id: string; label: string }[]; metricKey: string; smooth?: number }) {
  const [series, setSeries] = useState<Series[] | null>(null);
  const [range, setRange] = useState<[number, number] | undefined>(undefined);
  const [hover, setHover] = useState<{ x: number; step: number; values: [string, number][] } | null>(null);
  const [drag, setDrag] = useState<[number, number] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const svgRef = useRef<SVGSVGElement>(null);

  useEffect(() => {
    let live = true;
    Promise.all(runs.map((r) => api.buckets(r.id, metricKey, W - PAD.l - PAD.r, range).then((b) => ({ run: r.id, label: r.label, buckets: b }))))
      .then((s) => live && setSeries(s))
      .catch((e) => live && setError(e.message));
    return () => { live = false; };
  }, [runs.map((r) => r.id).join(","), metricKey, range?.[0], range?.[1]]);

  if (error) return <div class="chart-error">{metricKey}: {error}</div>;
  if (!series) return <div class="chart loading">loading {metricKey}…</div>;
  const { x0, x1, y0, y1 } = extent(series);
  const sx = (x: number) => PAD.l + ((x - x0) / (x1 - x0)) * (W - PAD.l - PAD.r);
  const sy = (y: number) => PAD.t + (1 - (y - y0) / (y1 - y0)) * (H - PAD.t - PAD.b);
  const unx = (px: number) => x0 + ((px - PAD.l) / (W - PAD.l - PAD.r)) * (x1 - x0);

  const toSvgX = (e: MouseEvent) => {
    const r = svgRef.current!.getBoundingClientRect();
    return ((e.clientX - r.left) / r.width) * W;
  };
  const onMove = (e: MouseEvent) => {
    const px = toSvgX(e);
    if (drag) setDrag([drag[0], px]);
    const step = unx(px);
    const values: [string, number][] = series.map((s) => {
      const b = s.buckets.find((b) => b.step_lo <= step && step <= b.step_hi) ?? s.buckets.reduce((best, b) => (Math.abs(b.step_lo - step) < Math.abs(best.step_lo - step) ? b : best), s.buckets[0]);
      return [s.label, b ? num(b.last) : NaN];
    });
    setHover({ x: px, step: Math.round(step), values });
  };
  const onUp = () => {
    if (drag && Math.abs(drag[1] - drag[0]) > 4) {
      const a = Math.round(unx(Math.min(drag[0], drag[1])));
      const b = Math.round(unx(Math.max(drag[0], drag[1])));
      setRange([a, b]);
    }
    setDrag(null);
  };

  const ticks = [0, 0.25, 0.5, 0.75, 1].map((t) => y0 + t * (y1 - y0));
  return (
    <figure class="chart" data-metric={metricKey}>
      <figcaption>
        {metricKey}
        {range && <button class="link" onClick={() => setRange(undefined)}>reset zoom</button>}
      </figcaption>
      <svg ref={svgRef} viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${metricKey} chart`}
        onMouseMove={onMove} onMouseLeave={() => setHover(null)}
        onMouseDown={(e) => setDrag([toSvgX(e), toSvgX(e)])} onMouseUp={onUp} onDblClick={() => setRange(undefined)}>
        {ticks.map((t) => (
          <g key={t}>
            <line x1={PAD.l} x2={W - PAD.r} y1={sy(t)} y2={sy(t)} class="grid" />
            <text x={PAD.l - 4} y={sy(t) + 3} class="tick" text-anchor="end">{metric(t)}</text>
          </g>
        ))}
        <text x={PAD.l} y={H - 6} class="tick">{Math.round(x0)}</text>
        <text x={W - PAD.r} y={H - 6} class="tick" text-anchor="end">{Math.round(x1)}</text>
        {series.map((s, i) => {
          const color = PALETTE[i % PALETTE.length];
          const finite = s.buckets.filter((b) => Number.isFinite(num(b.min)) && Number.isFinite(num(b.max)));
          const env = finite.map((b) => `M${sx(b.step_lo).toFixed(1)},${sy(num(b.max)).toFixed(1)}V${sy(num(b.min)).toFixed(1)}`).join("");
          let ema = NaN;
          const pts: string[] = [];
          for (const b of s.buckets) {
            const v = num(b.last);
            if (!Number.isFinite(v)) { pts.push(""); continue; }
            ema = Number.isNaN(ema) || smooth <= 0 ? v : smooth * ema + (1 - smooth) * v;
            pts.push(`${sx((b.step_lo + b.step_hi) / 2).toFixed(1)},${sy(ema).toFixed(1)}`);
          }
          const line = pts.join(" ").split("  ").filter(Boolean).map((seg) => "M" + seg.trim().replace(/ /g, "L")).join("");
          const gaps = s.buckets.filter((b) => b.nonfinite > 0);
          return (
            <g key={s.run}>
              <path d={env} stroke={color} stroke-opacity="0.35" stroke-width="1.5" />
              <path d={line} fill="none" stroke={color} stroke-width="1.6" />
              {gaps.map((b) => <circle key={b.step_lo} cx={sx(b.step_lo)} cy={PAD.t + 3} r="2.5" fill="#D55E00"><title>NaN/inf at step {b.step_lo}</title></circle>)}
            </g>
          );
        })}
        {drag && <rect x={Math.min(drag[0], drag[1])} y={PAD.t} width={Math.abs(drag[1] - drag[0])} height={H - PAD.t - PAD.b} class="zoom" />}
        {hover && <line x1={hover.x} x2={hover.x} y1={PAD.t} y2={H - PAD.b} class="cursor" />}
      </svg>
      {hover && (
        <div class="hover" data-testid="hover">
          step {hover.step}: {hover.values.map(([l, v]) => <span key={l}>{l} {metric(v)}</span>)}
        </div>
      )}
    </figure>
  );
}
