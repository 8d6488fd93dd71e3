import { describe, expect, it } from "vitest";

import { fromPx, hoverAt, nearestColumn, toPx } from "./chartmap";
import type { AxisMap, LineMap } from "./wire";

const x: AxisMap = { scale: "linear", lo: 0, hi: 1000, px_lo: 50, px_hi: 550, unit: "step", title: "step" };
const y: AxisMap = { scale: "linear", lo: 0, hi: 2, px_lo: 250, px_hi: 10, unit: "value", title: "loss" };

function map(): LineMap {
  return {
    plot: { x: 50, y: 10, width: 500, height: 240 },
    x,
    y,
    smoothing: 0,
    legend_hidden: 0,
    groups: [],
    series: [
      {
        id: "a", label: "run-a", group: null, color: "#0072b2", marker: "circle", points: 3, nonfinite: 0,
        columns: [
          { i: 0, x_lo: 0, x_hi: 1, count: 2, min: 1.5, max: 2, first: 2, last: 1.5 },
          { i: 10, x_lo: 20, x_hi: 20, count: 1, min: 1, max: 1, first: 1, last: 1 },
        ],
      },
      {
        id: "b", label: "run-b", group: null, color: "#e69f00", marker: "square", points: 1, nonfinite: 0,
        columns: [{ i: 10, x_lo: 20, x_hi: 20, count: 1, min: 0.5, max: 0.5, first: 0.5, last: 0.5, smoothed: 0.75 }],
      },
    ],
  } as LineMap;
}

describe("the chart map", () => {
  it("maps pixels to values and back on linear and log axes", () => {
    expect(fromPx(x, 300)).toBe(500);
    expect(toPx(x, 500)).toBe(300);
    expect(toPx(y, 1)).toBe(130);
    const log: AxisMap = { ...y, scale: "log", lo: 0.01, hi: 100 };
    expect(toPx(log, 1)).toBeCloseTo(130);
    expect(fromPx(log, 130)).toBeCloseTo(1);
    expect(toPx(log, 0)).toBeNull();
    expect(toPx(y, NaN)).toBeNull();
  });

  it("finds the column nearest the pointer, also between the points of a sparse curve", () => {
    const cols = map().series[0].columns;
    expect(nearestColumn(cols, 10)?.x_lo).toBe(20);
    expect(nearestColumn(cols, 4)?.i).toBe(0);
    expect(nearestColumn(cols, 6)?.i).toBe(10);
    expect(nearestColumn(cols, 400)?.i).toBe(10);
    expect(nearestColumn([], 3)).toBeUndefined();
  });

  it("says what every series holds under the pointer, smoothed where smoothed, with the column's range", () => {
    const h = hoverAt(map(), 60.4);
    expect(h?.x).toBe("step 20");
    expect(h?.rows).toEqual([
      { label: "run-a", color: "#0072b2", value: 1, min: undefined, max: undefined },
      { label: "run-b", color: "#e69f00", value: 0.75, min: undefined, max: undefined },
    ]);
    const first = hoverAt(map(), 51);
    expect(first?.x).toBe("steps 0–1");
    expect(first?.rows).toEqual([
      { label: "run-a", color: "#0072b2", value: 1.5, min: 1.5, max: 2 },
      { label: "run-b", color: "#e69f00", value: 0.75, min: undefined, max: undefined },
    ]);
    expect(hoverAt(map(), 20)).toBeNull();
    expect(hoverAt(map(), 551)).toBeNull();
  });

  it("shows group means and bands for grouped charts", () => {
    const m = map();
    m.groups = [{ key: "adam", color: "#009e73", runs: ["a", "b"], columns: [{ i: 10, runs: 2, mean: 0.75, lo: 0.5, hi: 1 }] }];
    expect(hoverAt(m, 60)?.rows).toEqual([{ label: "adam (2)", color: "#009e73", value: 0.75, min: 0.5, max: 1 }]);
  });
});
