// Reading a chart map (what cairn-charts drew where): pixels to values and back, and what the
// pointer is over. Pure functions, shared by the chart components and their tests.

import { metric } from "./format";
import type { AxisMap, LineMap } from "./wire";

/** The value drawn at pixel `px` (the inverse of the renderer's value → pixel mapping). */
export function fromPx(axis: AxisMap, px: number): number {
  const t = (px - axis.px_lo) / (axis.px_hi - axis.px_lo);
  if (axis.scale === "log") {
    const a = Math.log10(axis.lo), b = Math.log10(axis.hi);
    return 10 ** (a + (b - a) * t);
  }
  return axis.lo + (axis.hi - axis.lo) * t;
}

/** The pixel of `v` on `axis`; null where it cannot be placed (non-finite, <= 0 on log). */
export function toPx(axis: AxisMap, v: number): number | null {
  if (!Number.isFinite(v)) return null;
  let t: number;
  if (axis.scale === "log") {
    if (v <= 0) return null;
    const a = Math.log10(axis.lo), b = Math.log10(axis.hi);
    t = (Math.log10(v) - a) / (b - a);
  } else {
    t = (v - axis.lo) / (axis.hi - axis.lo);
  }
  return axis.px_lo + (axis.px_hi - axis.px_lo) * t;
}

/** The column of `columns` (sorted by `i`) nearest to index `i`: sparse curves have empty pixel
 *  columns between their points, and the pointer should still find the point next to it. */
export function nearestColumn<C extends { i: number }>(columns: C[], i: number): C | undefined {
  let lo = 0, hi = columns.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (columns[mid].i < i) lo = mid + 1;
    else hi = mid;
  }
  const after = columns[lo], before = columns[lo - 1];
  if (!before) return after;
  if (!after) return before;
  return i - before.i <= after.i - i ? before : after;
}

/** An x value as its axis labels it. */
export function xLabel(axis: AxisMap, v: number): string {
  switch (axis.unit) {
    case "step":
      return `step ${Math.round(v)}`;
    case "epoch_ms":
      return new Date(v).toISOString().replace("T", " ").slice(0, 19);
    case "seconds":
      return `${v.toFixed(1)} s`;
    default:
      return `${axis.title} ${metric(v)}`;
  }
}

export interface HoverRow {
  label: string;
  color: string;
  value: number;
  min?: number;
  max?: number;
}

function xOf(axis: AxisMap, c: { x_lo: number; x_hi: number }): string {
  if (axis.unit === "step" && Math.round(c.x_hi) !== Math.round(c.x_lo)) return `steps ${Math.round(c.x_lo)}–${Math.round(c.x_hi)}`;
  return xLabel(axis, c.x_lo);
}

/** What the pointer at canvas pixel column `px` is over: for each series (or group) its column
 *  nearest the pointer, and the x of the nearest of those. */
export function hoverAt(map: LineMap, px: number): { x: string; rows: HoverRow[] } | null {
  const i = Math.floor(px) - map.plot.x;
  if (i < 0 || i >= map.plot.width) return null;
  const rows: HoverRow[] = [];
  let closest: { d: number; x: string } | null = null;
  const near = (ci: number, x: string) => {
    const d = Math.abs(ci - i);
    if (!closest || d < closest.d) closest = { d, x };
  };
  if (map.groups.length > 0) {
    for (const g of map.groups) {
      const c = nearestColumn(g.columns, i);
      if (!c) continue;
      near(c.i, xLabel(map.x, fromPx(map.x, map.plot.x + c.i + 0.5)));
      rows.push({ label: `${g.key} (${c.runs})`, color: g.color, value: c.smoothed ?? c.mean, min: c.lo, max: c.hi });
    }
  } else {
    for (const s of map.series) {
      const c = nearestColumn(s.columns, i);
      const value = c && (c.smoothed ?? c.last ?? c.max);
      if (!c || value === undefined) continue;
      near(c.i, xOf(map.x, c));
      rows.push({ label: s.label, color: s.color, value, min: c.count > 1 ? c.min : undefined, max: c.count > 1 ? c.max : undefined });
    }
  }
  const found = closest as { d: number; x: string } | null;
  return { x: found ? found.x : xLabel(map.x, fromPx(map.x, px)), rows };
}
