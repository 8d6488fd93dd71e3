// The review components over a fake API that keeps what is written: the form is built from the
// team's template (required fields marked, an extra choice field), refuses a review missing
// required fields naming each before any call, shows the server's refusal, writes a review that
// is then listed; an open action is closed from the card; the open-actions page groups by owner.

import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { NewReview, ReviewFilter, ReviewView, SetActionState, TemplateView } from "../wire";

const calls: string[] = [];
let reviews: ReviewView[] = [];
const template: TemplateView = {
  template: { required: ["objective", "decision", "risk"], extra: [{ name: "risk", kind: "choice", options: ["low", "high"], help: "" }] },
  default: false,
  set_by: "ana",
  set_ms: 1_700_000_000_000,
};

vi.mock("../state", async () => {
  const { signal } = await import("@preact/signals");
  return {
    theme: signal("light"),
    api: {
      reviewTemplate: async () => template,
      reviews: async (f: ReviewFilter) => {
        calls.push(`reviews ${f.run ?? ""}${f.open_actions ? " open" : ""}`);
        return reviews.filter((v) => (!f.run || v.review.runs.includes(f.run)) && (!f.open_actions || v.actions.some((a) => a.state === "open")));
      },
      createReview: async (r: NewReview) => {
        calls.push(`createReview ${JSON.stringify(r)}`);
        if (r.objective === "server says no") throw new Error("the review is missing required fields: method (the team's review template requires them)");
        const v: ReviewView = {
          review: { id: `r${reviews.length}`, runs: r.runs, objective: r.objective ?? undefined, decision: r.decision ?? undefined, actions: r.actions, extra: r.extra, user: "ana", at_ms: 1_700_000_000_000 },
          author: "ana",
          actions: r.actions.map((a, index) => ({ index, text: a.text, owner: a.owner, state: "open", note: "" })),
        };
        reviews = [v, ...reviews];
        return v;
      },
      setActionState: async (r: SetActionState) => {
        calls.push(`setActionState ${r.id} ${r.action} ${r.state}`);
        reviews = reviews.map((v) => (v.review.id !== r.id ? v : { ...v, actions: v.actions.map((a) => (a.index === r.action ? { ...a, state: r.state, changed_by: "ana", changed_ms: 1_700_000_000_000 } : a)) }));
        return reviews.find((v) => v.review.id === r.id)!;
      },
    },
  };
});

const { Reviews, OpenActions } = await import("./Reviews");

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

async function type(root: HTMLElement, testid: string, value: string, nth = 0) {
  const el = root.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>(`[data-testid="${testid}"]`)[nth];
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
  reviews = [];
});

describe("Reviews", () => {
  it("marks required fields, refuses a review missing them by name, then writes and lists it", async () => {
    const root = await mount(<Reviews run="abc" />);
    expect(root.textContent).toContain("No reviews yet");
    await click(root, "write-review");
    const required = [...root.querySelectorAll("label.required")].map((l) => l.getAttribute("for"));
    expect(required).toEqual(["review-objective", "review-decision", "review-risk"]);
    await click(root, "review-submit");
    expect(text(root, "review-problem")).toBe("missing required fields: objective, decision, risk");
    expect(root.querySelectorAll(".field.missing").length).toBe(3);
    expect(calls).toEqual(["reviews abc"]);

    await type(root, "review-objective", "server says no");
    await type(root, "review-decision", "adopt");
    await type(root, "review-extra-risk", "low");
    await click(root, "review-submit");
    expect(text(root, "review-problem")).toContain("missing required fields: method");

    await type(root, "review-objective", "beat the baseline");
    await click(root, "review-add-action");
    await type(root, "review-action-owner", "bob");
    await type(root, "review-action-text", "rerun on split v2");
    await click(root, "review-submit");
    expect(calls.at(-2)).toBe(
      'createReview {"runs":["abc"],"experiment":null,"objective":"beat the baseline","method":null,"result":null,"confidence":null,"decision":"adopt","actions":[{"owner":"bob","text":"rerun on split v2"}],"text":null,"extra":{"risk":"low"}}',
    );
    expect(text(root, "review-objective")).toBe("beat the baseline");
    expect(root.querySelector('[data-testid="review"]')!.getAttribute("data-decision")).toBe("adopt");
    expect(root.querySelector('[data-testid="review-form"]')).toBeNull();

    await click(root, "action-done");
    expect(calls).toContain("setActionState r0 0 done");
    expect(root.querySelector('[data-testid="review-action"]')!.getAttribute("data-state")).toBe("done");
    expect(text(root, "review-action")).toContain("done by ana");
  });
});

describe("OpenActions", () => {
  it("lists open next actions grouped by owner", async () => {
    reviews = [
      {
        review: { id: "r1", runs: ["abc"], objective: "x", actions: [], extra: {}, user: "ana", at_ms: 0 },
        author: "ana",
        actions: [
          { index: 0, text: "a", owner: "bob", state: "open", note: "" },
          { index: 1, text: "b", owner: "alice", state: "open", note: "" },
          { index: 2, text: "c", owner: "bob", state: "done", note: "" },
        ],
      },
    ];
    const root = await mount(<OpenActions />);
    const owners = [...root.querySelectorAll('[data-testid="owner-actions"]')].map((s) => [s.getAttribute("data-owner"), s.querySelectorAll('[data-testid="review-action"]').length]);
    expect(owners).toEqual([["alice", 1], ["bob", 1]]);
  });
});
