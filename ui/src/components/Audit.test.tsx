// The audit views as rendered: the badge and its findings on click, a run's history with an
// event's fields on click, a version's trail as a nested list (verified or not), and the
// deployment form (refused before any call when incomplete; recorded and listed when whole).

import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, describe, expect, it, vi } from "vitest";

import type { AuditEventView, AuditVerification, DeployRequest, Deployment, FieldChangeView, Trail, TrailStep } from "../wire";

const calls: string[] = [];
let verification: AuditVerification;
let events: AuditEventView[] = [];
let deployments: Deployment[] = [];
let changes: FieldChangeView[] = [];

vi.mock("../state", () => ({
  api: {
    auditVerify: async () => {
      calls.push("auditVerify");
      return verification;
    },
    auditEvents: async (r: { run?: string; model?: string }) => {
      calls.push(`auditEvents ${r.run ?? r.model}`);
      return events;
    },
    runHistory: async (r: { id: string }) => {
      calls.push(`runHistory ${r.id}`);
      return changes;
    },
    deployments: async (r: { name: string }) => {
      calls.push(`deployments ${r.name}`);
      return deployments;
    },
    deploy: async (r: DeployRequest) => {
      calls.push(`deploy ${JSON.stringify(r)}`);
      const d: Deployment = { id: `d${deployments.length}`, model: r.name, version: "v", number: r.version ?? 3, alias: r.alias ?? undefined, target: r.target, rationale: r.rationale, user: "ana", at_ms: 1_700_000_000_000 };
      deployments = [d, ...deployments];
      return d;
    },
  },
}));

const { Deployments, RunHistory, TrailView, VerificationBadge } = await import("./Audit");

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

async function type(input: HTMLInputElement, value: string) {
  await act(() => {
    input.value = value;
    input.dispatchEvent(new Event("input"));
  });
}

afterEach(() => {
  document.body.innerHTML = "";
  calls.length = 0;
  events = [];
  deployments = [];
  changes = [];
});

const step = (kind: string, at_ms: number, fields: Record<string, string>): TrailStep => ({ at_ms, kind, member: "ana", device: "dev0123456789", event: `dev#${at_ms}`, fields });

describe("VerificationBadge", () => {
  it("says verified when every chain holds", async () => {
    verification = { ok: true, events: 10, chains: 2, records: 4, counts: {}, findings: [] };
    const root = await mount(<VerificationBadge />);
    const b = root.querySelector<HTMLElement>('[data-testid="audit-badge"]')!;
    expect(b.textContent).toBe("✓ verified");
    expect(b.classList.contains("verified")).toBe(true);
  });

  it("counts the findings and lists them on click", async () => {
    verification = { ok: false, events: 10, chains: 2, records: 4, counts: { fork: 1, gap: 1 }, findings: [{ problem: "fork", subject: "dev", seq: 3, detail: "two events at 3" }, { problem: "gap", subject: "dev", seq: 9, detail: "8 is missing" }] };
    const root = await mount(<VerificationBadge />);
    const b = root.querySelector<HTMLElement>('[data-testid="audit-badge"]')!;
    expect(b.textContent).toBe("✗ 2 findings: 1 fork, 1 gap");
    expect(root.querySelector('[data-testid="audit-findings"]')).toBeNull();
    await act(() => b.click());
    expect([...root.querySelectorAll('[data-testid="audit-findings"] li')].map((li) => li.textContent)).toEqual(["fork: dev#3: two events at 3", "gap: dev#9: 8 is missing"]);
  });
});

describe("RunHistory", () => {
  it("lists the run's events newest first and opens one's fields on click", async () => {
    events = [
      { device: "dev0123456789", seq: 1, at_ms: 1_700_000_000_000, member: "ana", kind: "run.created", subjects: ["run:r1"], fields: { name: "train", code_commit: "abc123" }, hash: "h1" },
      { device: "dev0123456789", seq: 2, at_ms: 1_700_000_100_000, member: "bo", kind: "evaluation.logged", subjects: ["run:r1"], fields: { benchmark: "holdout" }, hash: "h2" },
    ];
    const root = await mount(<RunHistory runId="r1" />);
    expect(calls).toEqual(["auditEvents r1", "runHistory r1"]);
    expect(root.querySelector("h3")?.textContent).toBe("Audit events (2)");
    const rows = [...root.querySelectorAll<HTMLElement>("tr[data-event]")];
    expect(rows.map((r) => [...r.querySelectorAll("td")].slice(1, 4).map((td) => td.textContent))).toEqual([
      ["evaluation logged", "evaluated on holdout", "bo dev01234"],
      ["run created", "run train created", "ana dev01234"],
    ]);
    await act(() => rows[1].click());
    expect(root.querySelector('.event-fields [data-field="code_commit"] td')?.textContent).toBe("abc123");
  });

  it("lists the run's field changes newest first: who, field, old → new, conflicts marked", async () => {
    changes = [
      { at_ms: 1_700_000_000_000, field: "run", old: null, new: "created", member: "ana", device: "dev0123456789", conflict: false },
      { at_ms: 1_700_000_050_000, field: "params.lr", old: "0.1", new: "0.01", member: "ana", device: "dev0123456789", conflict: false },
      { at_ms: 1_700_000_090_000, field: "tags.stage", old: "tuning", new: null, member: "bo", device: "fed9876543210", conflict: true },
    ];
    const root = await mount(<RunHistory runId="r3" />);
    expect(root.querySelector("h2")?.textContent).toBe("History (3 changes)");
    const rows = [...root.querySelectorAll<HTMLElement>('[data-testid="run-changes"] tbody tr')];
    expect(rows.map((r) => [...r.querySelectorAll("td")].slice(1).map((td) => td.textContent))).toEqual([
      ["bo fed98765", "tags.stage", "tuning → — conflict"],
      ["ana dev01234", "params.lr", "0.1 → 0.01"],
      ["ana dev01234", "run", "created"],
    ]);
    expect(rows[0].classList.contains("conflict")).toBe(true);
  });

  it("says so when the run has no events", async () => {
    const root = await mount(<RunHistory runId="r2" />);
    expect(root.querySelector('[data-testid="run-events"]')?.textContent).toBe("No audit events.");
  });
});

describe("TrailView", () => {
  const trail = (verified: boolean): Trail => ({
    model: "churn", version: 3, version_id: "v3", content: "blake3:feed",
    runs: [
      { id: "r1", name: "train", owner: "ana", started_ms: 1, datasets: [{ role: "train", name: "customers", digest: "sha256:aa", source: "s3://b/customers.parquet" }], feature_set: "churn-features@4", code_commit: "abc123", infra: "", evaluations: ["holdout"], parent: "r0", steps: [step("evaluation.logged", 2, { benchmark: "holdout" })] },
      { id: "r0", name: "pretrain", owner: "bo", started_ms: 0, datasets: [], feature_set: "", code_commit: "", infra: "", evaluations: [], steps: [] },
    ],
    steps: [
      step("version.registered", 3, { run: "r1" }),
      step("alias.moved", 5, { alias: "champion", version: "3", verdict: "passed", rationale: "beats v2" }),
      step("version.deployed", 6, { version: "3", target: "prod-eu", rationale: "quarterly refresh" }),
    ],
    verified,
    findings: verified ? [] : ["bad signature: event dev#5 does not verify"],
  });

  it("nests the runs' lineage and the version's steps, each with who and why", async () => {
    const root = await mount(<TrailView trail={trail(true)} />);
    expect(root.querySelector('[data-testid="trail-verdict"]')?.classList.contains("verified")).toBe(true);
    expect(root.querySelector('[data-testid="trail-findings"]')).toBeNull();
    const runs = [...root.querySelectorAll<HTMLElement>("li.trail-run")];
    expect(runs.map((r) => r.dataset.run)).toEqual(["r1", "r0"]);
    expect(runs[0].querySelector('[data-dataset="train"]')?.textContent).toBe("train: customers sha256:aa from s3://b/customers.parquet");
    expect(runs[0].querySelector('[data-section="feature set"]')?.textContent).toBe("feature set churn-features@4");
    expect(runs[0].querySelector('[data-section="code"] code')?.textContent).toBe("abc123");
    expect(runs[0].querySelector('[data-benchmark="holdout"]')?.textContent).toContain("ana");
    expect(runs[1].querySelector('[data-section="datasets"]')?.textContent).toBe("datasets none recorded");
    const section = (t: string) => root.querySelector(`[data-section="${t}"]`)!;
    expect(section("Approvals").textContent).toBe("Approvals none");
    expect(section("Gate checks").querySelector(".trail-step")?.textContent).toContain("@champion → version 3 (gate passed)");
    const deployed = section("Deployments").querySelector(".trail-step")!;
    expect(deployed.textContent).toContain("version 3 deployed to prod-eu");
    expect(deployed.querySelector(".why")?.textContent).toBe("“quarterly refresh”");
  });

  it("says not verified and lists the findings", async () => {
    const root = await mount(<TrailView trail={trail(false)} />);
    const verdict = root.querySelector('[data-testid="trail-verdict"]')!;
    expect(verdict.textContent).toBe("✗ not verified: 1 finding");
    expect([...root.querySelectorAll('[data-testid="trail-findings"] li')].map((li) => li.textContent)).toEqual(["bad signature: event dev#5 does not verify"]);
  });
});

describe("Deployments", () => {
  it("refuses an incomplete form without a call, then records a deployment and lists it", async () => {
    const onRecorded = vi.fn();
    const root = await mount(<Deployments name="churn" onRecorded={onRecorded} />);
    expect(root.textContent).toContain("None recorded.");
    const button = root.querySelector<HTMLButtonElement>('[data-testid="deploy"]')!;
    await act(() => button.click());
    expect(root.querySelector('[data-testid="deploy-problem"]')?.textContent).toContain("target");
    expect(calls).toEqual(["deployments churn"]);

    await type(root.querySelector<HTMLInputElement>('[data-testid="deploy-target"]')!, "prod-eu");
    await type(root.querySelector<HTMLInputElement>('[data-testid="deploy-rationale"]')!, "beats v2 on every slice");
    await act(() => button.click());
    await settle();
    expect(calls).toEqual([
      "deployments churn",
      'deploy {"name":"churn","version":null,"alias":"champion","target":"prod-eu","rationale":"beats v2 on every slice"}',
      "deployments churn",
    ]);
    expect(onRecorded).toHaveBeenCalledOnce();
    expect(root.querySelector('[data-testid="deploy-problem"]')).toBeNull();
    const cells = [...root.querySelectorAll('[data-testid="deployment-list"] tbody td')].map((td) => td.textContent);
    expect(cells.slice(1, 5)).toEqual(["3@champion", "prod-eu", "ana", "beats v2 on every slice"]);
  });
});
