// How the cost dashboard reads its figures: dollars, shares, improvement per dollar, and which
// budgets to warn about (kept apart from the view so vitest checks them without a DOM).

import type { BudgetStatus, CostReport } from "./wire";

/** `$1,234.57`; amounts under a dollar keep 4 decimals (idle waste of a short run is cents). */
export function usd(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v !== 0 && Math.abs(v) < 1) return `$${v.toFixed(4)}`;
  return v.toLocaleString("en-US", { style: "currency", currency: "USD" });
}

export function share(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(1)}%`;
}

/** The budgets crossed, worded for the banner. */
export function overBudget(r: CostReport): string[] {
  return r.budgets.filter((b: BudgetStatus) => b.over).map((b) => `${b.family} spent ${usd(b.spent_usd)} of its ${b.period} budget of ${usd(b.usd)} (${b.period_label})`);
}
