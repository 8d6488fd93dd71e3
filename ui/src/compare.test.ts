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

describe("run labels", () => {
  it("are names, told apart by experiment and then id only where names repeat", async () => {
    const { runLabels } = await import("./diff");
    const runs = [
      { id: "aaaaaaaa1111", name: "trial-0333", experiment_name: "sweep-a" },
      { id: "bbbbbbbb2222", name: "trial-0333", experiment_name: "sweep-b" },
      { id: "cccccccc3333", name: "trial-0333", experiment_name: "sweep-b" },
      { id: "dddddddd4444", name: "baseline", experiment_name: "sweep-b" },
    ];
    expect(runLabels(runs)).toEqual([
      "trial-0333 · sweep-a",
      "trial-0333 · sweep-b · …bb2222",
      "trial-0333 · sweep-b · …cc3333",
      "baseline",
    ]);
  });
});

describe("short values", () => {
  it("cut digests and commits, keep prefixes, suffixes and other text", async () => {
    const { shortValue } = await import("./diff");
    expect(shortValue("blake3:" + "ab".repeat(32))).toBe("blake3:abababababab…");
    expect(shortValue("0123456789abcdef0123456789abcdef01234567 (dirty)")).toBe("0123456789ab… (dirty)");
    expect(shortValue("1× NVIDIA H200")).toBe("1× NVIDIA H200");
    expect(shortValue("churn-features v12")).toBe("churn-features v12");
  });
});
