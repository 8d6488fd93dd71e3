// The cost dashboard's price and budget forms, rendered over a fake API that keeps what is set:
// an incomplete form is refused before any call; a price set is listed and the dashboard is told;
// a budget set below a family's spend raises the dashboard's over-budget banner, and lifting it
// lowers it again.

import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { BudgetEntry, BudgetStatus, CostDashboard, DashboardRequest, PriceEntry, SetBudget, SetPrice } from "../wire";

const calls: string[] = [];
let prices: PriceEntry[] = [];
let budgets: BudgetEntry[] = [];
/** The fake workspace's one run: 10 hours on a machine named `gpu-box`. */
const HOURS = 10;

function dashboard(): CostDashboard {
  const price = prices.filter((p) => p.target === "gpu-box").at(-1);
  const spent = price ? price.usd * HOURS : 0;
  const status: BudgetStatus[] = budgets.map((b) => ({ family: b.family, usd: b.usd!, period: b.period, period_label: "2026-12", spent_usd: b.family === "exp:resnet" ? spent : 0, over: b.family === "exp:resnet" && spent > b.usd! }));
  const family = { key: "exp:resnet", name: "resnet", runs: 1, unpriced_runs: price ? 0 : 1, usd: spent, gpu_hours: 0, idle_usd: 0, spend: [spent], best: [], frontier: [], budget: status.find((s) => s.family === "exp:resnet") };
  return {
    report: { by: "exp", as_of_ms: 0, idle_threshold_pct: 5, every: "week", periods: [{ start_ms: 0, label: "W49" }], families: [family], total: { ...family, key: "", name: "all" }, budgets: status, over_budget: status.filter((s) => s.over).length, top_idle: [], problems: [] },
    spend_chart: { svg: "<svg/>" } as CostDashboard["spend_chart"],
  };
}

vi.mock("../state", async () => {
  const { signal } = await import("@preact/signals");
  return {
    theme: signal("light"),
    api: {
      costDashboard: async (r: DashboardRequest) => {
        calls.push(`costDashboard ${r.by}`);
        return dashboard();
      },
      prices: async () => {
        calls.push("prices");
        return { entries: prices, idle_threshold_pct: 5, problems: [] };
      },
      setPrice: async (r: SetPrice) => {
        calls.push(`setPrice ${JSON.stringify(r)}`);
        if (r.from === "someday") throw new Error("invalid date 'someday': expected YYYY-MM-DD, YYYY-MM-DDTHH:MM or always");
        const e: PriceEntry = { id: `p${prices.length}`, target: r.target, unit: r.per === "hour" ? "hour" : "gpu_hour", usd: r.usd, from_ms: r.from === "always" ? undefined : 1_700_000_000_000, set_by: "ana", set_ms: 1_700_000_000_000 };
        prices = [...prices, e];
        return e;
      },
      budgets: async () => {
        calls.push("budgets");
        return { budgets, problems: [] };
      },
      setBudget: async (r: SetBudget) => {
        calls.push(`setBudget ${JSON.stringify(r)}`);
        budgets = budgets.filter((b) => b.family !== r.family);
        const e: BudgetEntry = { id: `b${budgets.length}`, family: r.family, usd: r.usd ?? undefined, period: (r.period ?? "month") as BudgetEntry["period"], set_by: "ana", set_ms: 1_700_000_000_000 };
        if (r.usd !== null && r.usd !== undefined) budgets = [...budgets, e];
        return e;
      },
    },
  };
});

const { Budgets, PriceTable } = await import("./CostSettings");
const { Cost } = await import("../views/Cost");

const settle = () => act(async () => {
  for (let i = 0; i < 5; i++) await new Promise((ok) => setTimeout(ok, 0));
});

async function mount(node: preact.ComponentChild): Promise<HTMLElement> {
  const root = document.createElement("div");
  document.body.append(root);
  await act(() => render(node, root));
  await settle();
  return root;
}

async function type(root: HTMLElement, testid: string, value: string) {
  const el = root.querySelector<HTMLInputElement | HTMLSelectElement>(`[data-testid="${testid}"]`)!;
  await act(() => {
    el.value = value;
    el.dispatchEvent(new Event(el.tagName === "SELECT" ? "change" : "input"));
  });
}

async function click(root: HTMLElement, testid: string) {
  await act(() => root.querySelector<HTMLButtonElement>(`[data-testid="${testid}"]`)!.click());
  await settle();
}

const text = (root: HTMLElement, testid: string) => root.querySelector(`[data-testid="${testid}"]`)?.textContent ?? null;

afterEach(() => {
  document.body.innerHTML = "";
  calls.length = 0;
  prices = [];
  budgets = [];
});

describe("PriceTable", () => {
  it("refuses an incomplete price without a call, then sets one, lists it and tells the dashboard", async () => {
    const onChange = vi.fn();
    const root = await mount(<PriceTable onChange={onChange} />);
    expect(root.textContent).toContain("No prices yet");
    await click(root, "set-price");
    expect(text(root, "price-problem")).toContain("name what the price is for");
    await type(root, "price-target", "NVIDIA H200");
    await type(root, "price-usd", "three");
    await click(root, "set-price");
    expect(text(root, "price-problem")).toBe("'three' is not a price: dollars of 0 or more (3.50)");
    expect(calls).toEqual(["prices"]);

    await type(root, "price-usd", "3.50");
    await click(root, "set-price");
    expect(calls).toEqual(["prices", 'setPrice {"target":"NVIDIA H200","usd":3.5,"per":"gpu-hour","from":null}', "prices"]);
    expect(onChange).toHaveBeenCalledOnce();
    expect(text(root, "price-problem")).toBeNull();
    const row = root.querySelector('[data-testid="price-list"] tr[data-target="NVIDIA H200"]')!;
    expect([...row.querySelectorAll("th, td")].slice(0, 3).map((c) => c.textContent)).toEqual(["NVIDIA H200", "$3.50 / GPU-hour", "2023-11-14 22:13 UTC"]);
  });

  it("shows the server's refusal and leaves the dashboard alone", async () => {
    const onChange = vi.fn();
    const root = await mount(<PriceTable onChange={onChange} />);
    await type(root, "price-target", "gpu-box");
    await type(root, "price-usd", "2");
    await type(root, "price-per", "hour");
    await type(root, "price-from", "someday");
    await click(root, "set-price");
    expect(calls[1]).toBe('setPrice {"target":"gpu-box","usd":2,"per":"hour","from":"someday"}');
    expect(text(root, "price-problem")).toContain("invalid date 'someday'");
    expect(onChange).not.toHaveBeenCalled();
  });
});

describe("Budgets", () => {
  it("sets a budget, lists it, and lifts it", async () => {
    const onChange = vi.fn();
    const root = await mount(<Budgets families={["exp:resnet", "exp:bert"]} onChange={onChange} />);
    expect([...root.querySelectorAll("#budget-families option")].map((o) => (o as HTMLOptionElement).value)).toEqual(["exp:resnet", "exp:bert"]);
    await type(root, "budget-family", "resnet");
    await type(root, "budget-usd", "100");
    await click(root, "set-budget");
    expect(text(root, "budget-problem")).toContain("'resnet' is not a family");
    expect(calls).toEqual(["budgets"]);

    await type(root, "budget-family", "exp:resnet");
    await type(root, "budget-period", "week");
    await click(root, "set-budget");
    expect(calls.slice(1)).toEqual(['setBudget {"family":"exp:resnet","usd":100,"period":"week"}', "budgets"]);
    const row = root.querySelector('[data-testid="budget-list"] tr[data-family="exp:resnet"]')!;
    expect(row.querySelector("td")?.textContent).toBe("$100.00 per week");

    await click(root, "lift-budget");
    expect(calls.slice(3)).toEqual(['setBudget {"family":"exp:resnet","usd":null,"period":null}', "budgets"]);
    expect(root.querySelector('[data-testid="budget-list"]')).toBeNull();
    expect(onChange).toHaveBeenCalledTimes(2);
  });
});

describe("the cost dashboard", () => {
  it("reprices when a price is set and raises the banner when a budget is set below the spend", async () => {
    const root = await mount(<Cost />);
    const spend = () => root.querySelector('[data-testid="cost-table"] tbody tr td:nth-child(3)')?.textContent;
    expect(spend()).toBe("$0.00");
    expect(text(root, "cost-table")).toContain("(1 unpriced)");

    await type(root, "price-target", "gpu-box");
    await type(root, "price-usd", "4");
    await type(root, "price-per", "hour");
    await type(root, "price-from", "always");
    await click(root, "set-price");
    expect(spend()).toBe("$40.00");
    expect(root.querySelector('[data-testid="over-budget"]')).toBeNull();

    await type(root, "budget-family", "exp:resnet");
    await type(root, "budget-usd", "25");
    await click(root, "set-budget");
    expect(text(root, "over-budget")).toBe("Over budget: exp:resnet spent $40.00 of its month budget of $25.00 (2026-12)");

    await click(root, "lift-budget");
    expect(root.querySelector('[data-testid="over-budget"]')).toBeNull();
    expect(calls.filter((c) => c.startsWith("costDashboard")).length).toBe(4);
  });
});
