// How the cost dashboard reads its figures: dollars, shares, improvement per dollar, which
// budgets to warn about, and the price and budget forms' requests (kept apart from the view so
// vitest checks them without a DOM).

import type { BudgetEntry, BudgetStatus, CostBrief, CostReport, PriceEntry, SetBudget, SetPrice } from "./wire";

/** `$1,234.57`; amounts under a dollar keep 4 decimals (idle waste of a short run is cents). */
export function usd(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return "–";
  if (v !== 0 && Math.abs(v) < 1) return `$${v.toFixed(4)}`;
  return v.toLocaleString("en-US", { style: "currency", currency: "USD" });
}

export function share(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "–" : `${(v * 100).toFixed(1)}%`;
}

/** A run's cost in the catalog's column: dollars, "unpriced" when no price applies (never $0),
 *  a dash before its figures are computed. */
export function runCostCell(c: CostBrief | undefined): string {
  if (!c) return "–";
  return c.usd === undefined || c.usd === null ? "unpriced" : usd(c.usd);
}

/** The budgets crossed, worded for the banner. */
export function overBudget(r: CostReport): string[] {
  return r.budgets.filter((b: BudgetStatus) => b.over).map((b) => `${b.family} spent ${usd(b.spent_usd)} of its ${b.period} budget of ${usd(b.usd)} (${b.period_label})`);
}

/** A dollar amount as typed (`3.50`, `$3.50`, `1,200`): a finite amount of 0 or more, or null. */
export function amount(text: string): number | null {
  const t = text.trim().replace(/^\$/, "").replace(/,/g, "");
  if (!/^\d+(\.\d*)?$|^\.\d+$/.test(t)) return null;
  const v = Number(t);
  return Number.isFinite(v) ? v : null;
}

/** The price form's request, or what is wrong with it (before any call). `from` empty: the
 *  server's default (from the beginning for a target's first price, from now for a change). */
export function priceRequest(target: string, usdText: string, per: string, from: string): SetPrice | { error: string } {
  const t = target.trim();
  if (!t) return { error: "name what the price is for: a GPU model (NVIDIA H200), an instance type or a host" };
  const v = amount(usdText);
  if (v === null) return { error: `'${usdText}' is not a price: dollars of 0 or more (3.50)` };
  if (per !== "gpu-hour" && per !== "hour") return { error: `a price is per gpu-hour or per hour, not '${per}'` };
  const f = from.trim();
  return { target: t, usd: v, per, from: f || null };
}

const FAMILY_KINDS = ["exp", "owner", "gpu", "tag", "view"];

/** The budget form's request, or what is wrong with it (before any call). */
export function budgetRequest(family: string, usdText: string, period: string): SetBudget | { error: string } {
  const f = family.trim();
  const kind = f.split(":")[0];
  if (!f.includes(":") || !FAMILY_KINDS.includes(kind) || f.length === kind.length + 1) {
    return { error: `'${family}' is not a family: exp:NAME, owner:NAME, gpu:MODEL, tag:KEY=VALUE or view:NAME` };
  }
  const v = amount(usdText);
  if (v === null) return { error: `'${usdText}' is not a budget: dollars of 0 or more (5000)` };
  if (!["day", "week", "month", "total"].includes(period)) return { error: `a budget is per day, week, month or total, not '${period}'` };
  return { family: f, usd: v, period };
}

/** What a price is per, as the table shows it. */
export function perUnit(p: PriceEntry): string {
  return p.unit === "gpu_hour" ? "GPU-hour" : "hour";
}

/** From when a price applies, as the table shows it. */
export function priceFrom(p: PriceEntry): string {
  return p.from_ms === undefined || p.from_ms === null ? "always" : new Date(p.from_ms).toISOString().slice(0, 16).replace("T", " ") + " UTC";
}

/** A budget as the list shows it: `$5,000.00 per month`, `$900.00 in all`. */
export function budgetAmount(b: BudgetEntry): string {
  return b.period === "total" ? `${usd(b.usd)} in all` : `${usd(b.usd)} per ${b.period}`;
}
