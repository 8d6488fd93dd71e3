// A trace's spans set out as a waterfall: each span in its place in the tree (depth-first, a
// parent above its children, siblings by start) and in time (its offset and duration as shares
// of the trace's whole length, so the bars are drawn to one scale). Pure functions (no state, no
// DOM).

import type { SpanView } from "./wire";

/** One row of the waterfall. */
export type WaterfallRow = {
  span: SpanView;
  /** 0 for a root; a span whose parent is not in the trace is drawn as a root. */
  depth: number;
  /** Where the bar starts and how wide it is, in percent of the trace's length. */
  left: number;
  width: number;
  /** The span has not ended: its bar runs to the end of the trace. */
  open: boolean;
  /** Spans drawn under this one (its whole subtree). */
  descendants: number;
};

export type Waterfall = {
  rows: WaterfallRow[];
  /** From the first span's start to the last span's end, microseconds. */
  total_us: number;
};

const bySpanStart = (a: SpanView, b: SpanView) => a.offset_us - b.offset_us || a.name.localeCompare(b.name) || a.span_id.localeCompare(b.span_id);

/** The waterfall of a trace's spans. Every span appears exactly once, even when parent links
 *  are broken (an unknown parent, a span its own ancestor): such spans start a tree of their own. */
export function waterfall(spans: SpanView[]): Waterfall {
  const ends = spans.map((s) => s.offset_us + Math.max(0, s.duration_us ?? 0));
  const total = Math.max(0, ...spans.map((s) => s.offset_us), ...ends);
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map<string, SpanView[]>();
  const roots: SpanView[] = [];
  for (const s of spans) {
    if (s.parent_id && s.parent_id !== s.span_id && ids.has(s.parent_id)) {
      const list = children.get(s.parent_id) ?? [];
      list.push(s);
      children.set(s.parent_id, list);
    } else roots.push(s);
  }
  for (const list of children.values()) list.sort(bySpanStart);
  roots.sort(bySpanStart);

  const rows: WaterfallRow[] = [];
  const seen = new Set<string>();
  const pct = (us: number) => (total > 0 ? (us / total) * 100 : 0);
  const visit = (root: SpanView) => {
    // Iterative depth-first walk: a deep trace must not overflow the stack.
    const stack: Array<{ s: SpanView; depth: number }> = [{ s: root, depth: 0 }];
    const open: Array<{ row: WaterfallRow; at: number }> = [];
    while (stack.length) {
      const { s, depth } = stack.pop()!;
      if (seen.has(s.span_id)) continue;
      seen.add(s.span_id);
      while (open.length > depth) {
        const done = open.pop()!;
        done.row.descendants = rows.length - done.at - 1;
      }
      const running = s.duration_us === null;
      const offset = Math.max(0, s.offset_us);
      const row: WaterfallRow = {
        span: s,
        depth,
        left: pct(offset),
        width: running ? 100 - pct(offset) : pct(Math.max(0, s.duration_us ?? 0)),
        open: running,
        descendants: 0,
      };
      open.push({ row, at: rows.length });
      rows.push(row);
      const kids = children.get(s.span_id) ?? [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push({ s: kids[i], depth: depth + 1 });
    }
    while (open.length) {
      const done = open.pop()!;
      done.row.descendants = rows.length - done.at - 1;
    }
  };
  for (const r of roots) visit(r);
  // Spans only reachable through a cycle of parent links: each starts its own tree.
  for (const s of [...spans].sort(bySpanStart)) if (!seen.has(s.span_id)) visit(s);
  return { rows, total_us: total };
}

/** A span of time given in microseconds, in the unit that reads best. */
export function micros(us: number | null | undefined): string {
  if (us === null || us === undefined || !Number.isFinite(us) || us < 0) return "–";
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  if (us < 60_000_000) return `${(us / 1_000_000).toFixed(2)} s`;
  const s = Math.round(us / 1_000_000);
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
}

/** Evenly spaced marks along the time axis: `n + 1` offsets from 0 to the trace's end. */
export function ticks(total_us: number, n = 4): number[] {
  if (total_us <= 0) return [0];
  return Array.from({ length: n + 1 }, (_, i) => (total_us * i) / n);
}

/** A trace's start, to the second, in local time. */
export function clock(ms: number): string {
  if (!ms) return "–";
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** The first line of a preview, cut to `max` characters. */
export function preview(text: string | null | undefined, max = 120): string {
  if (!text) return "";
  const line = text.replace(/\s+/g, " ").trim();
  return line.length > max ? line.slice(0, max - 1) + "…" : line;
}
