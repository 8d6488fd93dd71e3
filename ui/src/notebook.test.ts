import { describe, expect, it } from "vitest";

import { changedLines } from "./notebook";

describe("what changed since you last looked", () => {
  it("is the lines the text did not hold then", () => {
    expect(changedLines(null, "a\nb")).toEqual([]);
    expect(changedLines("a\nb\n", "a\nb\n")).toEqual([]);
    expect(changedLines("a\nb\n", "zero\na\nb (edited)\n")).toEqual([0, 2]);
  });

  it("counts repeated lines and ignores blank ones", () => {
    expect(changedLines("x\n", "x\nx\n\n")).toEqual([1]);
  });
});
