import { describe, expect, it } from "vitest";

import { changedLines, diffRegion, mapPosition, rebase } from "./notebook";

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

describe("live editing", () => {
  it("finds the one region two texts differ in", () => {
    expect(diffRegion("abc", "abc")).toEqual({ at: 3, removed: 0, inserted: "" });
    expect(diffRegion("warmup helps", "warmup really helps")).toEqual({ at: 7, removed: 0, inserted: "really " });
    expect(diffRegion("a lr of 0.1", "a lr of 0.01")).toEqual({ at: 10, removed: 0, inserted: "0" });
    expect(diffRegion("keep this", "keep")).toEqual({ at: 4, removed: 5, inserted: "" });
  });

  it("moves a caret by what a teammate wrote before it, not after it", () => {
    const before = "# Notes\nseed 1 wins\n";
    const after = "# Notes (ada)\nseed 1 wins\n";
    expect(mapPosition(before, after, 2)).toBe(2);
    expect(mapPosition(before, after, before.indexOf("wins"))).toBe(after.indexOf("wins"));
  });

  it("replays typing done during a save on the server's merge", () => {
    const sent = "# Sweep\nbest: run 1\n";
    // While the save was in flight the user typed at the end...
    const current = sent + "next: try warmup\n";
    // ...and the merge brought a teammate's words at the top.
    const merged = "# Sweep (shared)\nbest: run 1\n";
    expect(rebase(sent, current, merged)).toBe("# Sweep (shared)\nbest: run 1\nnext: try warmup\n");
    // Nothing typed meanwhile: the merge as it is; nothing merged: the typing as it is.
    expect(rebase(sent, sent, merged)).toBe(merged);
    expect(rebase(sent, current, sent)).toBe(current);
  });

  it("keeps both when the teammate and the user wrote at the same place", () => {
    const out = rebase("ab", "aXb", "aYb");
    expect(out.includes("X") && out.includes("Y")).toBe(true);
    expect(out.length).toBe(4);
  });
});
