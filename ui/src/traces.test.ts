// The waterfall's layout: tree order, depth, bars to scale, broken parent links, open spans.

import { describe, expect, it } from "vitest";

import { micros, preview, ticks, waterfall } from "./traces";
import type { SpanView } from "./wire";

function span(span_id: string, parent_id: string | null, offset_us: number, duration_us: number | null, name = span_id): SpanView {
  return { span_id, parent_id, name, span_type: null, status: "OK", status_message: "", offset_us, duration_us, inputs: null, outputs: null, attributes: [], events: [] };
}

describe("waterfall", () => {
  it("puts each parent above its children, siblings by start, with their depth", () => {
    // Given out of order, as a store may list them.
    const w = waterfall([
      span("c2", "root", 600, 300),
      span("g1", "c1", 150, 50),
      span("root", null, 0, 1000),
      span("c1", "root", 100, 400),
    ]);
    expect(w.rows.map((r) => [r.span.span_id, r.depth, r.descendants])).toEqual([
      ["root", 0, 3],
      ["c1", 1, 1],
      ["g1", 2, 0],
      ["c2", 1, 0],
    ]);
  });

  it("draws every bar to the trace's scale: offset and duration as shares of its length", () => {
    const w = waterfall([span("root", null, 0, 2000), span("a", "root", 500, 1000), span("b", "root", 1500, 500)]);
    expect(w.total_us).toBe(2000);
    expect(w.rows.map((r) => [r.span.span_id, r.left, r.width])).toEqual([
      ["root", 0, 100],
      ["a", 25, 50],
      ["b", 75, 25],
    ]);
  });

  it("measures the trace to its last end, even when a child outlives its parent", () => {
    const w = waterfall([span("root", null, 0, 100), span("late", "root", 50, 350)]);
    expect(w.total_us).toBe(400);
    expect(w.rows.map((r) => [r.left, r.width])).toEqual([[0, 25], [12.5, 87.5]]);
  });

  it("runs a span that has not ended to the end of the trace, marked open", () => {
    const w = waterfall([span("root", null, 0, null), span("a", "root", 200, 600)]);
    expect(w.total_us).toBe(800);
    const root = w.rows[0];
    expect([root.open, root.left, root.width]).toEqual([true, 0, 100]);
    expect(w.rows[1].open).toBe(false);
  });

  it("shows each span once when parent links are broken: unknown parents and cycles start their own trees", () => {
    const w = waterfall([
      span("root", null, 0, 100),
      span("orphan", "ffffffffffffffff", 10, 10),
      span("self", "self", 20, 10),
      span("x", "y", 30, 10),
      span("y", "x", 40, 10),
    ]);
    const ids = w.rows.map((r) => r.span.span_id);
    expect([...ids].sort()).toEqual(["orphan", "root", "self", "x", "y"]);
    expect(w.rows.filter((r) => r.depth === 0).map((r) => r.span.span_id)).toEqual(["root", "orphan", "self", "x"]);
    expect(w.rows.find((r) => r.span.span_id === "y")?.depth).toBe(1);
  });

  it("lays out an empty trace and a trace of instantaneous spans without dividing by zero", () => {
    expect(waterfall([])).toEqual({ rows: [], total_us: 0 });
    const w = waterfall([span("a", null, 0, 0)]);
    expect([w.total_us, w.rows[0].left, w.rows[0].width]).toEqual([0, 0, 0]);
  });

  it("walks a very deep trace without overflowing the stack", () => {
    const spans = Array.from({ length: 20000 }, (_, i) => span(`s${i}`, i === 0 ? null : `s${i - 1}`, i, 20000 - i));
    const w = waterfall(spans);
    expect(w.rows.length).toBe(20000);
    expect(w.rows[19999].depth).toBe(19999);
    expect(w.rows[0].descendants).toBe(19999);
  });
});

describe("time labels", () => {
  it("reads microseconds in the unit that fits", () => {
    expect([micros(850), micros(1234), micros(45_600), micros(2_500_000), micros(125_000_000), micros(null)]).toEqual(["850 µs", "1.23 ms", "45.6 ms", "2.50 s", "2m 05s", "–"]);
  });

  it("spaces the axis marks evenly from 0 to the end", () => {
    expect(ticks(1000)).toEqual([0, 250, 500, 750, 1000]);
    expect(ticks(0)).toEqual([0]);
  });

  it("cuts a preview to one line", () => {
    expect(preview('{"q":\n  "hello"}', 10)).toBe('{"q": "he…');
    expect(preview(null)).toBe("");
  });
});
