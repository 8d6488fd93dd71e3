// The audit trail as the UI sets it out (issue #15): the verification badge, each event as a
// person reads it (what happened, who, why, and the records it attests), a version's trail in
// the order an auditor asks about it, and the deployment form's request. Pure functions (no
// state, no DOM).

import { time } from "./format";
import type { AuditEventView, AuditFindingView, AuditVerification, DeployRequest, TrailRun, TrailStep } from "./wire";

/** What the badge says: "verified", or how many findings of which problem. */
export type Badge = { ok: boolean; label: string; detail: string };

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;

export function badge(v: AuditVerification): Badge {
  const checked = `${plural(v.events, "event")} on ${plural(v.chains, "chain")}, ${plural(v.records, "governed record")} checked`;
  if (v.ok) return { ok: true, label: "verified", detail: checked };
  const counts = Object.entries(v.counts).filter(([, n]) => n > 0).sort(([a, x], [b, y]) => y - x || a.localeCompare(b));
  const total = counts.reduce((s, [, n]) => s + n, 0) || v.findings.length;
  const parts = counts.map(([problem, n]) => `${n} ${problem}`);
  return { ok: false, label: `${plural(total, "finding")}${parts.length ? `: ${parts.join(", ")}` : ""}`, detail: checked };
}

/** A finding as one line: `problem: subject#seq: detail`. */
export function findingText(f: AuditFindingView): string {
  const at = f.seq === undefined || f.seq === null ? f.subject : `${f.subject}#${f.seq}`;
  return `${f.problem}: ${at}${f.detail ? `: ${f.detail}` : ""}`;
}

const KINDS: Record<string, string> = {
  "run.created": "run created",
  "run.deleted": "run deleted",
  "run.restored": "run restored",
  "run.schema_violation": "schema violation",
  "run.datasets_logged": "datasets logged",
  "evaluation.logged": "evaluation logged",
  "model.created": "model created",
  "model.deleted": "model deleted",
  "version.registered": "version registered",
  "version.deleted": "version deleted",
  "gate.evaluated": "gate check",
  "gate.policy_set": "gate policy set",
  "approval.signed": "approval (signed)",
  "alias.moved": "alias moved",
  "alias.deleted": "alias removed",
  "version.deployed": "deployment",
  "schema.set": "schema set",
  "member.added": "member added",
  "member.removed": "member removed",
  "team.created": "team created",
  "artifact.purged": "artifact purged",
  "audit.baseline": "baseline attested",
};

/** An event kind (`alias.moved`) in words ("alias moved"); an unknown kind as it is. */
export function kindLabel(kind: string): string {
  return KINDS[kind] ?? kind;
}

/** Why it was done, where the event says: a rationale, an approval's comment, a deletion's reason. */
export function why(fields: Record<string, string>): string | null {
  for (const k of ["rationale", "comment", "reason"]) if (fields[k]) return fields[k];
  return null;
}

const short = (id: string) => id.slice(0, 8);

/** A field holding a JSON list of strings (`["train=churn@blake3:…"]`); anything else as none. */
function list(text: string | undefined): string[] {
  try {
    const v: unknown = JSON.parse(text ?? "[]");
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/** One line saying what the event did. */
export function summary(kind: string, f: Record<string, string>): string {
  const version = f.version ? `version ${f.version}` : f.version_id ? `version ${short(f.version_id)}` : "the version";
  switch (kind) {
    case "version.registered":
      return `registered${f.run ? ` from run ${short(f.run)}` : ""}${f.source ? ` (${f.source})` : ""}`;
    case "gate.evaluated":
      return `${version} checked against @${f.alias}: ${f.verdict ?? "?"}`;
    case "alias.moved":
      return `@${f.alias} → ${version}${f.verdict ? ` (gate ${f.verdict})` : ""}`;
    case "alias.deleted":
      return `@${f.alias} removed`;
    case "approval.signed":
      return `${version} approved for @${f.alias}`;
    case "version.deployed":
      return `${version}${f.alias ? ` (@${f.alias})` : ""} deployed to ${f.target}`;
    case "version.deleted":
      return `${version} deleted`;
    case "run.created":
      return f.name ? `run ${f.name} created` : "run created";
    case "evaluation.logged":
      return `evaluated on ${f.benchmark}${f.dataset ? ` (dataset ${f.dataset})` : ""}`;
    case "run.datasets_logged":
      return `read ${list(f.datasets).join(", ") || "datasets"}`;
    case "run.schema_violation":
      return `${f.outcome === "refused" ? "refused" : "incomplete"} ${f.stage === "ended" ? "when it ended" : `when ${f.stage ?? "created"}`}: lacks ${f.fields ?? "required fields"}`;
    case "schema.set":
      return `${f.scope === "experiment" ? `experiment ${f.experiment}'s schema` : "project schema"}: ${f.old} → ${f.new}`;
    case "member.added":
      if (!f.member) return kindLabel(kind);
      return `${f.member}${f.email ? ` <${f.email}>` : ""} joined ${f.team || "the team"} on device ${short(f.device ?? "")}`;
    case "artifact.purged":
      return `purged ${f.path} (${f.blobs ?? "?"} blob${f.blobs === "1" ? "" : "s"})`;
    default:
      return kindLabel(kind);
  }
}

/** A record an event attests: its team-doc key and the BLAKE3 of its value. */
export type Attested = { key: string; digest: string | null };

/** An event's fields as rows, the most telling first, and the records it attests apart (their
 *  values, whole records, are left out: `verify` checks them). */
export function eventFields(fields: Record<string, string>): { rows: [string, string][]; records: Attested[] } {
  const records = new Map<string, Attested>();
  const rows: [string, string][] = [];
  for (const [k, v] of Object.entries(fields)) {
    const m = /^record\.(\d+)(?:\.(blake3|value))?$/.exec(k);
    if (!m) {
      rows.push([k, fieldValue(v)]);
      continue;
    }
    const r = records.get(m[1]) ?? { key: "", digest: null };
    if (m[2] === undefined) r.key = v;
    else if (m[2] === "blake3") r.digest = v;
    records.set(m[1], r);
  }
  const rank = (k: string) => {
    const i = FIRST.indexOf(k);
    return i < 0 ? FIRST.length : i;
  };
  rows.sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  const ordered = [...records.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([, r]) => r);
  return { rows, records: ordered };
}

const FIRST = ["model", "version", "alias", "verdict", "promoted", "failed_checks", "target", "rationale", "comment", "reason", "benchmark", "dataset", "name", "owner"];

/** A field's value to read: a JSON list of texts joined, anything else as sent. */
export function fieldValue(v: string): string {
  if (!v.startsWith("[")) return v;
  try {
    const list = JSON.parse(v);
    if (Array.isArray(list) && list.every((x) => typeof x === "string")) return list.length ? list.join("; ") : "none";
  } catch {
    // Not JSON after all: as sent.
  }
  return v;
}

/** Events grouped by their local day, newest day first, each day's events newest first. */
export function byDay(events: AuditEventView[]): { day: string; events: AuditEventView[] }[] {
  const sorted = [...events].sort((a, b) => b.at_ms - a.at_ms || b.seq - a.seq);
  const out: { day: string; events: AuditEventView[] }[] = [];
  for (const e of sorted) {
    const day = time(e.at_ms).slice(0, 10);
    if (out.length && out[out.length - 1].day === day) out[out.length - 1].events.push(e);
    else out.push({ day, events: [e] });
  }
  return out;
}

/** A version's own steps in the order an auditor asks about them. Every section is there, empty
 *  or not ("no approvals" is an answer); other kinds come last when there are any. A promotion's
 *  event is both the gate check that allowed the move and the move. */
export function trailSections(steps: TrailStep[]): { title: string; steps: TrailStep[] }[] {
  const oldest = [...steps].sort((a, b) => a.at_ms - b.at_ms);
  const of = (test: (s: TrailStep) => boolean) => oldest.filter(test);
  const sections = [
    { title: "Registration", steps: of((s) => s.kind === "version.registered") },
    { title: "Gate checks", steps: of((s) => s.kind === "gate.evaluated" || (s.kind === "alias.moved" && s.fields.verdict !== undefined)) },
    { title: "Approvals", steps: of((s) => s.kind === "approval.signed") },
    { title: "Alias moves", steps: of((s) => s.kind === "alias.moved" || s.kind === "alias.deleted") },
    { title: "Deployments", steps: of((s) => s.kind === "version.deployed") },
  ];
  const known = new Set(["version.registered", "gate.evaluated", "approval.signed", "alias.moved", "alias.deleted", "version.deployed"]);
  const other = of((s) => !known.has(s.kind));
  return other.length ? [...sections, { title: "Other", steps: other }] : sections;
}

/** A run's evaluations on the trail: each benchmark the run holds with the event that logged
 *  it (null when none did: recorded before the audit trail, or never attested), then any
 *  logged benchmark the run no longer holds. */
export function runEvaluations(run: TrailRun): { benchmark: string; step: TrailStep | null }[] {
  const logged = run.steps.filter((s) => s.kind === "evaluation.logged");
  const last = (b: string) => logged.filter((s) => s.fields.benchmark === b).sort((x, y) => y.at_ms - x.at_ms)[0] ?? null;
  const held = run.evaluations.map((benchmark) => ({ benchmark, step: last(benchmark) }));
  const gone = [...new Set(logged.map((s) => s.fields.benchmark).filter((b) => b && !run.evaluations.includes(b)))];
  return [...held, ...gone.map((benchmark) => ({ benchmark, step: last(benchmark) }))];
}

/** The deployment form's request, or what is wrong with it. `what` is a version number
 *  (`3`) or an alias (`@champion` or `champion`). */
export function deployRequest(name: string, what: string, target: string, rationale: string): DeployRequest | { error: string } {
  const w = what.trim();
  if (!w) return { error: "name a version (3) or an alias (@champion) to deploy" };
  if (!target.trim()) return { error: "name the target it was deployed to (prod-eu)" };
  if (!rationale.trim()) return { error: "a deployment needs a rationale: why it was deployed" };
  const number = /^v?(\d+)$/i.exec(w);
  if (number) return { name, version: Number(number[1]), alias: null, target: target.trim(), rationale: rationale.trim() };
  const alias = w.replace(/^@/, "");
  if (!alias || /\s/.test(alias)) return { error: `'${what}' is neither a version number nor an alias` };
  return { name, version: null, alias, target: target.trim(), rationale: rationale.trim() };
}
