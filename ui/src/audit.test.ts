import { describe, expect, it } from "vitest";

import { badge, byDay, deployRequest, eventFields, fieldValue, findingText, kindLabel, runEvaluations, summary, trailSections, why } from "./audit";
import type { AuditEventView, AuditVerification, TrailRun, TrailStep } from "./wire";

const verification = (over: Partial<AuditVerification>): AuditVerification => ({ ok: true, events: 1200, chains: 3, records: 40, counts: {}, findings: [], ...over });

const step = (kind: string, at_ms: number, fields: Record<string, string> = {}): TrailStep => ({ at_ms, kind, member: "ana", device: "d".repeat(64), event: `dev#${at_ms}`, fields });

const event = (seq: number, at_ms: number, kind = "alias.moved"): AuditEventView => ({ device: "dev", seq, at_ms, member: "ana", kind, subjects: [], fields: {}, hash: "h" });

describe("the verification badge", () => {
  it("says verified, and what was checked, when everything holds", () => {
    expect(badge(verification({}))).toEqual({ ok: true, label: "verified", detail: "1,200 events on 3 chains, 40 governed records checked" });
    expect(badge(verification({ events: 1, chains: 1, records: 1 })).detail).toBe("1 event on 1 chain, 1 governed record checked");
  });

  it("counts the findings by problem, the most frequent first", () => {
    const b = badge(verification({ ok: false, counts: { fork: 1, "unattested record": 3, gap: 0 } }));
    expect(b.ok).toBe(false);
    expect(b.label).toBe("4 findings: 3 unattested record, 1 fork");
  });

  it("falls back on the listed findings when no counts came", () => {
    const findings = [{ problem: "bad signature", subject: "dev", seq: 4, detail: "does not verify" }];
    expect(badge(verification({ ok: false, findings })).label).toBe("1 finding");
  });

  it("names a finding's chain and sequence number, or the record it concerns", () => {
    expect(findingText({ problem: "gap", subject: "abc", seq: 7, detail: "6 is missing" })).toBe("gap: abc#7: 6 is missing");
    expect(findingText({ problem: "unattested record", subject: "alias/m/champion", detail: "" })).toBe("unattested record: alias/m/champion");
  });
});

describe("an event as a person reads it", () => {
  it("names known kinds in words and keeps unknown ones", () => {
    expect(kindLabel("version.deployed")).toBe("deployment");
    expect(kindLabel("approval.signed")).toBe("approval (signed)");
    expect(kindLabel("something.new")).toBe("something.new");
  });

  it("says what each governed change did", () => {
    expect(summary("alias.moved", { alias: "champion", version: "3", verdict: "passed" })).toBe("@champion → version 3 (gate passed)");
    expect(summary("alias.moved", { alias: "staging", version_id: "0123456789abcdef" })).toBe("@staging → version 01234567");
    expect(summary("gate.evaluated", { alias: "champion", version: "2", verdict: "failed" })).toBe("version 2 checked against @champion: failed");
    expect(summary("approval.signed", { alias: "champion", version: "2" })).toBe("version 2 approved for @champion");
    expect(summary("version.deployed", { version: "3", alias: "champion", target: "prod-eu" })).toBe("version 3 (@champion) deployed to prod-eu");
    expect(summary("version.registered", { run: "abcdef0123", source: "runs:/abcdef0123/model" })).toBe("registered from run abcdef01 (runs:/abcdef0123/model)");
    expect(summary("run.datasets_logged", { datasets: '["training=churn@blake3:7f3a"]' })).toBe("read training=churn@blake3:7f3a");
    expect(summary("run.datasets_logged", { datasets: "not json" })).toBe("read datasets");
    expect(summary("run.schema_violation", { outcome: "refused", stage: "ended", fields: "dataset.digest" })).toBe("refused when it ended: lacks dataset.digest");
    expect(summary("run.schema_violation", { outcome: "incomplete", stage: "created", fields: "params.lr" })).toBe("incomplete when created: lacks params.lr");
    expect(summary("schema.set", { scope: "experiment", experiment: "strict", old: "owner (mark-incomplete)", new: "owner (refuse)" })).toBe("experiment strict's schema: owner (mark-incomplete) → owner (refuse)");
    expect(summary("member.added", { member: "bo", email: "bo@example.org", team: "lab", device: "0123456789abcdef" })).toBe("bo <bo@example.org> joined lab on device 01234567");
    expect(summary("artifact.purged", { path: ".env", blobs: "1" })).toBe("purged .env (1 blob)");
    expect(kindLabel("run.datasets_logged")).toBe("datasets logged");
    expect(summary("run.created", { name: "lr-sweep" })).toBe("run lr-sweep created");
    expect(summary("evaluation.logged", { benchmark: "holdout", dataset: "eval-v2" })).toBe("evaluated on holdout (dataset eval-v2)");
    expect(summary("member.added", {})).toBe("member added");
  });

  it("finds the why: a rationale, else a comment, else a reason", () => {
    expect(why({ rationale: "beats v2", comment: "ok" })).toBe("beats v2");
    expect(why({ comment: "looked at the slices" })).toBe("looked at the slices");
    expect(why({ reason: "leaked labels" })).toBe("leaked labels");
    expect(why({ rationale: "" })).toBeNull();
  });

  it("puts the telling fields first and the attested records apart, without their values", () => {
    const { rows, records } = eventFields({
      "record.1": "alias/m/champion",
      "record.0": "gate/eval/m/e1",
      "record.0.blake3": "aa11",
      "record.0.value": '{"long":"json"}',
      zeta: "z",
      rationale: "beats v2",
      model: "m",
      failed_checks: '["accuracy ≥ 0.9 on holdout","approvals ≥ 2"]',
    });
    expect(rows).toEqual([
      ["model", "m"],
      ["failed_checks", "accuracy ≥ 0.9 on holdout; approvals ≥ 2"],
      ["rationale", "beats v2"],
      ["zeta", "z"],
    ]);
    expect(records).toEqual([
      { key: "gate/eval/m/e1", digest: "aa11" },
      { key: "alias/m/champion", digest: null },
    ]);
  });

  it("reads a JSON list of texts and leaves anything else as sent", () => {
    expect(fieldValue("[]")).toBe("none");
    expect(fieldValue('[{"role":"train"}]')).toBe('[{"role":"train"}]');
    expect(fieldValue("[not json")).toBe("[not json");
    expect(fieldValue("plain")).toBe("plain");
  });

  it("groups a timeline by day, newest day and newest event first", () => {
    const day = (d: number, h: number) => new Date(2026, 11, d, h).getTime();
    const groups = byDay([event(1, day(3, 9)), event(3, day(4, 8)), event(2, day(3, 17)), event(4, day(4, 8))]);
    expect(groups.map((g) => [g.day, g.events.map((e) => e.seq)])).toEqual([
      ["2026-12-04", [4, 3]],
      ["2026-12-03", [2, 1]],
    ]);
  });
});

describe("a version's trail", () => {
  it("sets the version's steps out in the auditor's order, oldest first, every section shown", () => {
    const sections = trailSections([
      step("version.deployed", 50, { target: "prod-eu" }),
      step("alias.moved", 40, { alias: "champion", verdict: "passed" }),
      step("approval.signed", 30),
      step("gate.evaluated", 20, { verdict: "failed" }),
      step("version.registered", 10),
      step("alias.moved", 45, { alias: "staging" }),
    ]);
    expect(sections.map((s) => [s.title, s.steps.map((x) => x.at_ms)])).toEqual([
      ["Registration", [10]],
      ["Gate checks", [20, 40]],
      ["Approvals", [30]],
      ["Alias moves", [40, 45]],
      ["Deployments", [50]],
    ]);
  });

  it("keeps empty sections (no approvals is an answer) and adds other kinds last", () => {
    const sections = trailSections([step("version.deleted", 5, { reason: "leak" })]);
    expect(sections.map((s) => [s.title, s.steps.length])).toEqual([
      ["Registration", 0],
      ["Gate checks", 0],
      ["Approvals", 0],
      ["Alias moves", 0],
      ["Deployments", 0],
      ["Other", 1],
    ]);
  });

  it("pairs each evaluation the run holds with the latest event that logged it", () => {
    const run: TrailRun = {
      id: "r1", name: "train", owner: "ana", started_ms: 1, datasets: [], feature_set: "", code_commit: "", infra: "",
      evaluations: ["holdout", "fairness"],
      steps: [
        step("run.created", 1),
        step("evaluation.logged", 2, { benchmark: "holdout" }),
        step("evaluation.logged", 3, { benchmark: "holdout" }),
        step("evaluation.logged", 4, { benchmark: "dropped" }),
      ],
    };
    expect(runEvaluations(run).map((e) => [e.benchmark, e.step?.at_ms ?? null])).toEqual([
      ["holdout", 3],
      ["fairness", null],
      ["dropped", 4],
    ]);
  });
});

describe("the deployment form", () => {
  it("deploys a version by number or what an alias names", () => {
    expect(deployRequest("m", "3", " prod-eu ", " beats v2 ")).toEqual({ name: "m", version: 3, alias: null, target: "prod-eu", rationale: "beats v2" });
    expect(deployRequest("m", "v12", "prod", "why")).toEqual({ name: "m", version: 12, alias: null, target: "prod", rationale: "why" });
    expect(deployRequest("m", "@champion", "prod", "why")).toEqual({ name: "m", version: null, alias: "champion", target: "prod", rationale: "why" });
    expect(deployRequest("m", "staging", "prod", "why")).toEqual({ name: "m", version: null, alias: "staging", target: "prod", rationale: "why" });
  });

  it("says what is missing or wrong", () => {
    expect(deployRequest("m", " ", "prod", "why")).toEqual({ error: expect.stringContaining("name a version") });
    expect(deployRequest("m", "3", "", "why")).toEqual({ error: expect.stringContaining("target") });
    expect(deployRequest("m", "3", "prod", "  ")).toEqual({ error: expect.stringContaining("rationale") });
    expect(deployRequest("m", "@", "prod", "why")).toEqual({ error: "'@' is neither a version number nor an alias" });
    expect(deployRequest("m", "my alias", "prod", "why")).toEqual({ error: "'my alias' is neither a version number nor an alias" });
  });
});
