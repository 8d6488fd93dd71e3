import { describe, expect, it } from "vitest";

import { overBudget, share, usd } from "./cost";
import type { CostReport } from "./wire";

describe("cost figures", () => {
  it("read as dollars and shares, unknown as a dash", () => {
    expect(usd(1234.567)).toBe("$1,234.57");
    expect(usd(0.0214239)).toBe("$0.0214");
    expect(usd(0)).toBe("$0.00");
    expect(usd(undefined)).toBe("–");
    expect(share(0.72143)).toBe("72.1%");
    expect(share(null)).toBe("–");
  });

  it("word only the budgets that are crossed", () => {
    const budget = (family: string, over: boolean) => ({ family, usd: 100, period: "month" as const, period_label: "2026-12", spent_usd: over ? 150 : 50, over });
    const r = { budgets: [budget("exp:a", true), budget("exp:b", false)] } as unknown as CostReport;
    expect(overBudget(r)).toEqual(["exp:a spent $150.00 of its month budget of $100.00 (2026-12)"]);
  });
});
