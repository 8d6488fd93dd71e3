import { describe, expect, it } from "vitest";

import { diffRows } from "./diff";

describe("comparison diff", () => {
  it("marks keys whose values differ, including missing ones", () => {
    const rows = diffRows([{ lr: "0.1", opt: "adam" }, { lr: "0.1", opt: "sgd" }, { lr: "0.1" }]);
    expect(rows).toEqual([
      { key: "lr", values: ["0.1", "0.1", "0.1"], differs: false },
      { key: "opt", values: ["adam", "sgd", undefined], differs: true },
    ]);
  });
});
