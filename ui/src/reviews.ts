// Structured reviews in the UI: the form's state turned into a `create_review` request (every
// field the team's template requires and the form lacks named before any call), the open next
// actions grouped by owner, and how a confidence reads.

import type { ActionView, Confidence, NewReview, ReviewTemplate, ReviewView } from "./wire";

/** What the review form holds, as typed. */
export interface ReviewForm {
  objective: string;
  method: string;
  result: string;
  /** "", "low", "medium", "high" or "calibrated" (then `p` and `reason`). */
  confidence: string;
  p: string;
  reason: string;
  /** "", "adopt", "iterate" or "abandon". */
  decision: string;
  actions: { owner: string; text: string }[];
  text: string;
  extra: Record<string, string>;
}

export const EMPTY_FORM: ReviewForm = { objective: "", method: "", result: "", confidence: "", p: "", reason: "", decision: "", actions: [], text: "", extra: {} };

/** The standard fields, in the form's order, with their labels. */
export const STANDARD: [string, string][] = [
  ["objective", "Objective"],
  ["method", "Method"],
  ["result", "Result"],
  ["confidence", "Confidence"],
  ["decision", "Decision"],
  ["actions", "Next actions"],
  ["text", "Notes"],
];

function has(form: ReviewForm, field: string): boolean {
  switch (field) {
    case "objective":
    case "method":
    case "result":
    case "text":
      return form[field].trim() !== "";
    case "confidence":
      return form.confidence !== "" && (form.confidence !== "calibrated" || form.p.trim() !== "");
    case "decision":
      return form.decision !== "";
    case "actions":
      return form.actions.some((a) => a.text.trim() !== "");
    default:
      return (form.extra[field] ?? "").trim() !== "";
  }
}

/** The fields `template` requires that `form` lacks, in the template's order. */
export function missingFields(form: ReviewForm, template: ReviewTemplate): string[] {
  return template.required.filter((f) => !has(form, f));
}

/** The request for `create_review`, or what is wrong with the form (each missing field named). */
export function reviewRequest(form: ReviewForm, template: ReviewTemplate, target: { runs?: string[]; experiment?: string }): NewReview | { error: string; missing: string[] } {
  const missing = missingFields(form, template);
  if (missing.length) return { error: `missing required fields: ${missing.join(", ")}`, missing };
  let confidence: Confidence | null = null;
  if (form.confidence === "calibrated") {
    const p = Number(form.p);
    if (!Number.isFinite(p) || p < 0 || p > 1) return { error: `a calibrated confidence is a number 0-1, not '${form.p}'`, missing: [] };
    if (!form.reason.trim()) return { error: "a calibrated confidence needs a reason", missing: ["reason"] };
    confidence = { p, reason: form.reason.trim() };
  } else if (form.confidence) {
    confidence = { level: form.confidence as "low" | "medium" | "high" };
  }
  const actions = form.actions.filter((a) => a.text.trim() !== "");
  const noOwner = actions.find((a) => !a.owner.trim());
  if (noOwner) return { error: `the next action '${noOwner.text}' needs an owner`, missing: ["actions"] };
  const text = (s: string) => (s.trim() ? s.trim() : null);
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(form.extra)) if (v.trim()) extra[k] = v.trim();
  return {
    runs: target.runs ?? [],
    experiment: target.experiment ?? null,
    objective: text(form.objective),
    method: text(form.method),
    result: text(form.result),
    confidence,
    decision: (form.decision || null) as NewReview["decision"],
    actions: actions.map((a) => ({ owner: a.owner.trim(), text: a.text.trim() })),
    text: text(form.text),
    extra,
  };
}

/** How a confidence reads: its level, or `p = 0.8 (level)`, with the reason. */
export function confidenceText(c: Confidence | undefined): string {
  if (!c) return "";
  const base = c.level ?? (c.p !== undefined ? `p = ${c.p}` : "");
  return c.reason ? `${base} (${c.reason})` : base;
}

/** Every open next action, grouped by owner (owners sorted), newest review first. */
export function openActionsByOwner(reviews: ReviewView[]): [string, { review: ReviewView; action: ActionView }[]][] {
  const by = new Map<string, { review: ReviewView; action: ActionView }[]>();
  for (const review of reviews)
    for (const action of review.actions)
      if (action.state === "open") {
        const list = by.get(action.owner) ?? [];
        list.push({ review, action });
        by.set(action.owner, list);
      }
  return [...by.entries()].sort(([a], [b]) => a.localeCompare(b));
}
