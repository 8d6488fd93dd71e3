import { describe, expect, it } from "vitest";

import { evaluationFields, extremes } from "./evaluations";

describe("evaluations", () => {
  it("marks each metric's lowest and highest slice, NaN left out", () => {
    const e = extremes({
      "sex=female": { acc: 0.85, tpr: "NaN" },
      "sex=male": { acc: 0.91, tpr: 0.7 },
      "age=60+": { acc: 0.88 },
    });
    expect(e).toEqual({ acc: { lo: "sex=female", hi: "sex=male" } });
  });

  it("sets evaluation metrics and fairness figures out as rows", () => {
    const rows = evaluationFields([
      {
        benchmark: "test",
        metrics: { acc: 0.9 },
        fairness: [{ benchmark: "test", metric: "acc", attribute: "sex", difference: 0.06, ratio: "NaN", groups: 2, lowest: "sex=f", highest: "sex=m" }],
      },
    ]);
    expect(rows).toEqual({
      "test acc": "0.9000",
      "test acc over sex: difference": "0.0600",
      "test acc over sex: ratio": "NaN",
    });
  });
});
