// The run page's evaluations as rendered: the overall row and each slice's metrics with every
// metric's lowest and highest group marked, the fairness figures with a ratio under the
// four-fifths floor flagged, and report links into the run's artifacts.

import { render } from "preact";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { EvaluationView } from "../wire";

vi.mock("../state", () => ({
  api: { artifactUrl: (id: string, p: string) => `/api/v1/runs/${id}/artifacts/${p}` },
}));

const { Evaluations } = await import("./Evaluations");

const VIEW: EvaluationView = {
  benchmark: "credit-test",
  dataset: "blake3:9f2c01",
  metrics: { acc: 0.88, selection_rate: 0.38 },
  slices: {
    "sex=female": { acc: 0.85, selection_rate: 0.3 },
    "sex=male": { acc: 0.91, selection_rate: 0.45 },
    "sex=other": { acc: 0.88, selection_rate: "NaN" },
  },
  reports: ["eval/credit-test/report.html"],
  fairness: [
    { benchmark: "credit-test", metric: "acc", attribute: "sex", difference: 0.06, ratio: 0.85 / 0.91, groups: 3, lowest: "sex=female", highest: "sex=male" },
    { benchmark: "credit-test", metric: "demographic_parity", attribute: "sex", difference: 0.15, ratio: 0.3 / 0.45, groups: 2, lowest: "sex=female", highest: "sex=male" },
  ],
};

function mount(views: EvaluationView[]): HTMLElement {
  const root = document.createElement("div");
  document.body.append(root);
  render(<Evaluations runId="r1" views={views} />, root);
  return root;
}

function cells(row: Element | null): string[] {
  return [...(row?.querySelectorAll("th, td") ?? [])].map((c) => c.textContent ?? "");
}

afterEach(() => {
  document.body.innerHTML = "";
});

describe("Evaluations", () => {
  it("renders nothing for a run without evaluations", () => {
    expect(mount([]).innerHTML).toBe("");
  });

  it("sets out the overall metrics above each slice's, marking each metric's gap", () => {
    const root = mount([VIEW]);
    const table = root.querySelector("[data-benchmark=credit-test] table.slices");
    expect(cells(table?.querySelector("thead tr") ?? null)).toEqual(["slice", "acc", "selection_rate"]);
    expect(cells(table?.querySelector("tr.overall") ?? null)).toEqual(["overall", "0.8800", "0.3800"]);
    expect(cells(table?.querySelector('[data-slice="sex=female"]') ?? null)).toEqual(["sex=female", "0.8500", "0.3000"]);
    expect(cells(table?.querySelector('[data-slice="sex=other"]') ?? null)).toEqual(["sex=other", "0.8800", "NaN"]);
    const marked = (cls: string) => [...(table?.querySelectorAll(`td.${cls}`) ?? [])].map((td) => `${td.closest("tr")?.getAttribute("data-slice")} ${td.textContent}`);
    expect(marked("lo")).toEqual(["sex=female 0.8500", "sex=female 0.3000"]);
    expect(marked("hi")).toEqual(["sex=male 0.9100", "sex=male 0.4500"]);
    expect(root.textContent).toContain("blake3:9f2c01");
    const link = root.querySelector("a[download]");
    expect(link?.getAttribute("href")).toBe("/api/v1/runs/r1/artifacts/eval/credit-test/report.html");
  });

  it("lists each metric's disparity across slices and flags a ratio under 0.8", () => {
    const root = mount([VIEW]);
    const acc = root.querySelector('[data-fairness="acc/sex"]');
    expect(cells(acc)).toEqual(["sex", "acc", "0.0600", "0.9341", "3", "sex=female", "sex=male"]);
    expect(acc?.classList.contains("gap")).toBe(false);
    const dp = root.querySelector('[data-fairness="demographic_parity/sex"]');
    expect(cells(dp)).toEqual(["sex", "demographic_parity", "0.1500", "0.6667", "2", "sex=female", "sex=male"]);
    expect(dp?.classList.contains("gap")).toBe(true);
    expect(dp?.getAttribute("title")).toContain("four-fifths");
  });

  it("shows overall metrics alone when an evaluation has no slices", () => {
    const root = mount([{ benchmark: "imagenet-val", metrics: { top1: 0.761 }, fairness: [] }]);
    expect(root.querySelector("table")).toBeNull();
    expect(root.querySelector(".overall")?.textContent).toBe("top1=0.7610");
    expect(root.querySelector("h2")?.textContent).toBe("Evaluations (1)");
  });
});
