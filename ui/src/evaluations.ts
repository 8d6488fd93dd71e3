// Evaluations as the UI sets them out: the gap each metric's slices show, and evaluation
// figures as rows to compare runs side by side. Pure functions (no state, no DOM).

import { num } from "./api";
import { metric } from "./format";
import type { EvaluationView, Num } from "./wire";

/** The four-fifths rule: a ratio under 0.8 is the usual sign of disparate impact. */
export const RATIO_FLOOR = 0.8;

/** For each metric of the slice table, the slices holding its lowest and highest value. */
export function extremes(slices: Record<string, Record<string, Num>>): Record<string, { lo: string; hi: string }> {
  const out: Record<string, { lo: string; hi: string; loV: number; hiV: number }> = {};
  for (const [slice, metrics] of Object.entries(slices)) {
    for (const [k, raw] of Object.entries(metrics)) {
      const v = num(raw);
      if (Number.isNaN(v)) continue;
      const e = out[k];
      if (!e) out[k] = { lo: slice, hi: slice, loV: v, hiV: v };
      else {
        if (v < e.loV) Object.assign(e, { lo: slice, loV: v });
        if (v > e.hiV) Object.assign(e, { hi: slice, hiV: v });
      }
    }
  }
  return Object.fromEntries(Object.entries(out).filter(([, e]) => e.lo !== e.hi).map(([k, e]) => [k, { lo: e.lo, hi: e.hi }]));
}


/** Each run's evaluation metrics and fairness figures as rows to set side by side. */
export function evaluationFields(views: EvaluationView[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of views) {
    for (const [k, x] of Object.entries(v.metrics)) out[`${v.benchmark} ${k}`] = metric(x);
    for (const f of v.fairness) {
      out[`${v.benchmark} ${f.metric} over ${f.attribute}: difference`] = metric(f.difference);
      out[`${v.benchmark} ${f.metric} over ${f.attribute}: ratio`] = metric(f.ratio);
    }
  }
  return out;
}
