// The run page's traces as rendered: nothing for a run without traces; the list; the first
// trace's waterfall with bars to scale; a span's attributes on click; choosing another trace.

import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { SpanView, TraceSummary, TraceView, TracesPage } from "../wire";

const calls: string[] = [];
let pages: Record<string, TracesPage> = {};
let views: Record<string, TraceView> = {};

vi.mock("../state", () => ({
  api: {
    runTraces: async (r: { id: string }) => {
      calls.push(`runTraces ${r.id}`);
      return pages[r.id] ?? { traces: [], next_offset: null };
    },
    trace: async (r: { id: string }) => {
      calls.push(`trace ${r.id}`);
      return views[r.id];
    },
  },
}));

const { RunTraces } = await import("./RunTraces");

function summary(trace_id: string, name: string, span_count: number, state = "OK"): TraceSummary {
  return { trace_id, name, state, request_time_ms: 1_700_000_000_000, execution_ms: 12, span_count, request_preview: '{"question": "why"}', response_preview: null, tags: {}, assessment_count: 0 };
}

function span(span_id: string, parent_id: string | null, offset_us: number, duration_us: number, status = "OK"): SpanView {
  return { span_id, parent_id, name: `op-${span_id}`, span_type: "CHAIN", status, status_message: "", offset_us, duration_us, inputs: '{"x": 1}', outputs: null, attributes: [{ key: "model", value: "small" }], events: [] };
}

// Renders, runs the effects and lets the answers of the API arrive.
const settle = () => act(async () => {
  for (let i = 0; i < 5; i++) await new Promise((ok) => setTimeout(ok, 0));
});

async function mount(runId: string): Promise<HTMLElement> {
  const root = document.createElement("div");
  document.body.append(root);
  await act(() => render(<RunTraces runId={runId} />, root));
  await settle();
  return root;
}

afterEach(() => {
  document.body.innerHTML = "";
  calls.length = 0;
  pages = {};
  views = {};
});

describe("RunTraces", () => {
  it("leaves the section out for a run without traces", async () => {
    const root = await mount("empty");
    expect(root.innerHTML).toBe("");
    expect(calls).toEqual(["runTraces empty"]);
  });

  it("lists the traces and draws the first one's span tree to scale", async () => {
    pages.r1 = { traces: [summary("t1", "chat", 3), summary("t2", "retry", 1, "ERROR")], next_offset: null };
    views.t1 = { trace: summary("t1", "chat", 3), experiment: "e", runs: ["r1"], metadata: {}, assessments: [], spans: [span("b", "a", 250, 500), span("a", null, 0, 1000), span("c", "a", 800, 200, "ERROR")] };
    const root = await mount("r1");
    const rows = [...root.querySelectorAll("table.trace-list tbody tr")];
    expect(rows.map((r) => [...r.querySelectorAll("td")].map((td) => td.textContent))).toEqual([
      ["chat{\"question\": \"why\"}", "OK", expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/), "12.0 ms", "3"],
      ["retry{\"question\": \"why\"}", "ERROR", expect.any(String), "12.0 ms", "1"],
    ]);
    expect(rows[0].classList.contains("selected")).toBe(true);
    const spans = [...root.querySelectorAll(".waterfall .wf-row")];
    expect(spans.map((s) => [s.getAttribute("data-span"), s.getAttribute("data-depth")])).toEqual([["a", "0"], ["b", "1"], ["c", "1"]]);
    const bars = spans.map((s) => s.querySelector<HTMLElement>(".wf-bar")!);
    expect(bars.map((b) => [b.style.left, b.style.width])).toEqual([["0%", "100%"], ["25%", "50%"], ["80%", "20%"]]);
    expect(bars[2].classList.contains("bad")).toBe(true);
    expect(spans.map((s) => s.querySelector(".wf-dur")?.textContent)).toEqual(["1.00 ms", "500 µs", "200 µs"]);
  });

  it("opens a span's inputs and attributes on click and closes them again", async () => {
    pages.r1 = { traces: [summary("t1", "chat", 1)], next_offset: null };
    views.t1 = { trace: summary("t1", "chat", 1), experiment: "e", runs: ["r1"], metadata: {}, assessments: [], spans: [span("a", null, 0, 10)] };
    const root = await mount("r1");
    const line = root.querySelector<HTMLButtonElement>('[data-span="a"] .wf-line')!;
    expect(root.querySelector("[data-detail]")).toBeNull();
    await act(() => line.click());
    await settle();
    const detail = root.querySelector('[data-detail="a"]');
    expect(detail?.querySelector('[data-attribute="model"] td')?.textContent).toBe("small");
    expect(detail?.textContent).toContain('{"x": 1}');
    await act(() => line.click());
    await settle();
    expect(root.querySelector("[data-detail]")).toBeNull();
  });

  it("shows another trace's spans when its row is chosen", async () => {
    pages.r1 = { traces: [summary("t1", "chat", 1), summary("t2", "retry", 2)], next_offset: null };
    views.t1 = { trace: summary("t1", "chat", 1), experiment: "e", runs: ["r1"], metadata: {}, assessments: [], spans: [span("a", null, 0, 10)] };
    views.t2 = { trace: summary("t2", "retry", 2), experiment: "e", runs: ["r1"], metadata: {}, assessments: [], spans: [span("x", null, 0, 10), span("y", "x", 5, 5)] };
    const root = await mount("r1");
    await act(() => root.querySelector<HTMLElement>('tr[data-trace="t2"]')!.click());
    await settle();
    expect(root.querySelector(".waterfall")?.getAttribute("data-trace")).toBe("t2");
    expect([...root.querySelectorAll(".wf-row")].map((s) => s.getAttribute("data-span"))).toEqual(["x", "y"]);
    expect(calls).toEqual(["runTraces r1", "trace t1", "trace t2"]);
  });
});
