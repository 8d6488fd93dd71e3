import { describe, expect, it } from "vitest";

import { amount, budgetAmount, budgetRequest, overBudget, priceFrom, priceRequest, runCostCell, share, usd } from "./cost";
import type { BudgetEntry, CostReport, PriceEntry } from "./wire";

describe("cost figures", () => {
  it("read as dollars and shares, unknown as a dash", () => {
    expect(usd(1234.567)).toBe("$1,234.57");
    expect(usd(0.0214239)).toBe("$0.0214");
    expect(usd(0)).toBe("$0.00");
    expect(usd(undefined)).toBe("–");
    expect(share(0.72143)).toBe("72.1%");
    expect(share(null)).toBe("–");
  });

  it("show a run's cost in the catalog: dollars, unpriced, or not yet computed", () => {
    expect(runCostCell({ usd: 12.5, idle_share: 0.2 })).toBe("$12.50");
    expect(runCostCell({ usd: 0 })).toBe("$0.00");
    expect(runCostCell({})).toBe("unpriced");
    expect(runCostCell(undefined)).toBe("–");
  });

  it("word only the budgets that are crossed", () => {
    const budget = (family: string, over: boolean) => ({ family, usd: 100, period: "month" as const, period_label: "2026-12", spent_usd: over ? 150 : 50, over });
    const r = { budgets: [budget("exp:a", true), budget("exp:b", false)] } as unknown as CostReport;
    expect(overBudget(r)).toEqual(["exp:a spent $150.00 of its month budget of $100.00 (2026-12)"]);
  });
});

describe("the price and budget forms", () => {
  it("read amounts as typed, and refuse what is not one", () => {
    expect(amount("3.50")).toBe(3.5);
    expect(amount(" $1,200 ")).toBe(1200);
    expect(amount("0")).toBe(0);
    expect(amount(".5")).toBe(0.5);
    for (const bad of ["", "-1", "3,5.0.1", "abc", "1e3", "Infinity"]) expect(amount(bad)).toBeNull();
  });

  it("make a price request, or say what is missing", () => {
    expect(priceRequest(" NVIDIA H200 ", "3.50", "gpu-hour", "")).toEqual({ target: "NVIDIA H200", usd: 3.5, per: "gpu-hour", from: null });
    expect(priceRequest("gpu-box", "$2", "hour", " always ")).toEqual({ target: "gpu-box", usd: 2, per: "hour", from: "always" });
    expect(priceRequest(" ", "3", "hour", "")).toEqual({ error: expect.stringContaining("name what the price is for") });
    expect(priceRequest("gpu-box", "-2", "hour", "")).toEqual({ error: "'-2' is not a price: dollars of 0 or more (3.50)" });
    expect(priceRequest("gpu-box", "2", "day", "")).toEqual({ error: "a price is per gpu-hour or per hour, not 'day'" });
  });

  it("make a budget request, or say what is wrong", () => {
    expect(budgetRequest(" exp:resnet ", "5,000", "month")).toEqual({ family: "exp:resnet", usd: 5000, period: "month" });
    expect(budgetRequest("tag:team=vision", "900", "total")).toEqual({ family: "tag:team=vision", usd: 900, period: "total" });
    expect(budgetRequest("resnet", "5", "month")).toEqual({ error: expect.stringContaining("'resnet' is not a family") });
    expect(budgetRequest("exp:", "5", "month")).toEqual({ error: expect.stringContaining("'exp:' is not a family") });
    expect(budgetRequest("project:x", "5", "month")).toEqual({ error: expect.stringContaining("is not a family") });
    expect(budgetRequest("exp:a", "lots", "month")).toEqual({ error: "'lots' is not a budget: dollars of 0 or more (5000)" });
    expect(budgetRequest("exp:a", "5", "year")).toEqual({ error: "a budget is per day, week, month or total, not 'year'" });
  });

  it("show prices and budgets as the lists do", () => {
    const price = { id: "p", target: "NVIDIA H200", unit: "gpu_hour", usd: 3.5, set_by: "ana", set_ms: 0 } as PriceEntry;
    expect(priceFrom(price)).toBe("always");
    expect(priceFrom({ ...price, from_ms: Date.UTC(2026, 10, 1, 9, 0) })).toBe("2026-11-01 09:00 UTC");
    const budget = { id: "b", family: "exp:a", usd: 5000, period: "month", set_by: "ana", set_ms: 0 } as BudgetEntry;
    expect(budgetAmount(budget)).toBe("$5,000.00 per month");
    expect(budgetAmount({ ...budget, usd: 900, period: "total" })).toBe("$900.00 in all");
  });
});
