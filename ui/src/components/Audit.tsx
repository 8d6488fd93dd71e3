// The audit trail in the UI (issue #15): the verification badge (its findings on click), a
// timeline of events (a model's or a run's history: what, who, when, why and the fields), a
// version's trail as a nested list — version → runs (datasets with digests and sources, feature
// set, code commit, parents) → evaluations → gate checks → approvals → alias moves →
// deployments, each with who, when and why — and a model's deployments with the form that
// records one.

import { useEffect, useState } from "preact/hooks";

import { badge, byDay, deployRequest, eventFields, findingText, kindLabel, runEvaluations, summary, trailSections, why } from "../audit";
import { shortId, time } from "../format";
import { api } from "../state";
import type { AuditEventView, AuditVerification, Deployment, FieldChangeView, Trail, TrailRun, TrailStep } from "../wire";

/** "verified", or the findings' counts; the findings listed on click. */
export function VerificationBadge() {
  const [v, setV] = useState<AuditVerification | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  useEffect(() => {
    api.auditVerify({}).then(setV).catch((e) => setError(e.message));
  }, []);
  if (error) return <span class="badge warn" data-testid="audit-badge" title={error}>audit not checked</span>;
  if (!v) return <span class="badge dim" data-testid="audit-badge">verifying…</span>;
  const b = badge(v);
  return (
    <span class="audit-verification">
      <button class={`badge ${b.ok ? "verified" : "unverified"}`} data-testid="audit-badge" title={b.detail} onClick={() => setOpen(!open)}>
        {b.ok ? "✓ " : "✗ "}{b.label}
      </button>
      {open && (
        <div class="audit-findings card" data-testid="audit-findings">
          <div class="dim">{b.detail}</div>
          {v.findings.length === 0 ? <p>Every chain verifies and every governed record is attested.</p> : (
            <ul>{v.findings.map((f, i) => <li key={i}>{findingText(f)}</li>)}</ul>
          )}
        </div>
      )}
    </span>
  );
}

function Who({ member, device, at }: { member: string; device: string; at: number }) {
  return <span class="who">{member} <span class="dim">on <code title={device}>{shortId(device)}</code>, {time(at)}</span></span>;
}

/** An event's fields, the records it attests apart. */
function Fields({ fields }: { fields: Record<string, string> }) {
  const { rows, records } = eventFields(fields);
  return (
    <div class="audit-fields">
      {rows.length > 0 && (
        <table class="kv">
          <tbody>{rows.map(([k, v]) => <tr key={k} data-field={k}><th>{k}</th><td>{v}</td></tr>)}</tbody>
        </table>
      )}
      {records.length > 0 && (
        <div class="dim">attests {records.map((r) => <code key={r.key} title={r.digest ? `blake3 ${r.digest}` : undefined}>{r.key}</code>)}</div>
      )}
    </div>
  );
}

/** Events newest first, by day: kind, what, who, when, why; the fields on click. */
export function Timeline({ events, testid }: { events: AuditEventView[]; testid: string }) {
  const [open, setOpen] = useState<string | null>(null);
  if (events.length === 0) return <p class="dim" data-testid={testid}>No audit events.</p>;
  return (
    <table class="kv audit-timeline" data-testid={testid}>
      <thead><tr><th>when</th><th>event</th><th>what</th><th>who</th><th>why</th></tr></thead>
      {byDay(events).map(({ day, events: es }) => (
        <tbody key={day}>
          <tr class="day"><th colSpan={5}>{day}</th></tr>
          {es.map((e) => {
            const id = `${e.device}#${e.seq}`;
            return [
              <tr key={id} data-event={e.kind} class={open === id ? "selected" : ""} onClick={() => setOpen(open === id ? null : id)}>
                <td>{time(e.at_ms).slice(11)}</td>
                <td><span class="tag">{kindLabel(e.kind)}</span></td>
                <td>{summary(e.kind, e.fields)}</td>
                <td>{e.member} <code class="dim" title={e.device}>{shortId(e.device)}</code></td>
                <td>{why(e.fields) ?? ""}</td>
              </tr>,
              open === id && (
                <tr key={`${id}-fields`} class="event-fields">
                  <td colSpan={5}>
                    <Fields fields={e.fields} />
                    <div class="dim">event <code>{id}</code> · hash <code>{e.hash}</code></div>
                  </td>
                </tr>
              ),
            ];
          })}
        </tbody>
      ))}
    </table>
  );
}

/** A run's field changes, newest first: when, who, field, old → new (a conflict marked). */
export function FieldChanges({ changes }: { changes: FieldChangeView[] }) {
  if (changes.length === 0) return <p class="dim" data-testid="run-changes">No changes recorded.</p>;
  const shown = (v: string | null | undefined) => (v == null ? <span class="dim">—</span> : <span class="value" title={v}>{v}</span>);
  return (
    <table class="kv field-changes" data-testid="run-changes">
      <thead><tr><th>when</th><th>who</th><th>field</th><th>old → new</th></tr></thead>
      <tbody>
        {[...changes].reverse().map((c, i) => (
          <tr key={i} data-field={c.field} class={c.conflict ? "conflict" : ""}>
            <td>{c.at_ms > 0 ? time(c.at_ms) : <span class="dim">—</span>}</td>
            <td>{c.member}{c.device && <> <code class="dim" title={c.device}>{shortId(c.device)}</code></>}</td>
            <td><code>{c.field}</code></td>
            <td>{c.field === "run" ? "created" : <>{shown(c.old)} → {shown(c.new)}</>}{c.conflict && <span class="tag warn" title="another change set this field at the same time"> conflict</span>}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A run's history: its field changes (from the run's own change history, the same on every
 * peer) and its audit events (creation with lineage, evaluations, deletion). */
export function RunHistory({ runId }: { runId: string }) {
  const [events, setEvents] = useState<AuditEventView[] | null>(null);
  const [changes, setChanges] = useState<FieldChangeView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setEvents(null);
    setChanges(null);
    setError(null);
    api.auditEvents({ run: runId, limit: 500 }).then(setEvents).catch((e) => setError(e.message));
    api.runHistory({ id: runId }).then(setChanges).catch((e) => setError(e.message));
  }, [runId]);
  return (
    <section class="card history" data-testid="run-history">
      <h2>History{changes ? ` (${changes.length} changes)` : ""}</h2>
      {error && <div class="error">{error}</div>}
      {!changes && !error && <p class="dim">loading the run's history…</p>}
      {changes && <FieldChanges changes={changes} />}
      <h3>Audit events{events ? ` (${events.length})` : ""}</h3>
      {events && <Timeline events={events} testid="run-events" />}
    </section>
  );
}

function Step({ s }: { s: TrailStep }) {
  const w = why(s.fields);
  return (
    <li class="trail-step" data-step={s.kind}>
      <span class="tag">{kindLabel(s.kind)}</span> {summary(s.kind, s.fields)} — <Who member={s.member} device={s.device} at={s.at_ms} />
      {w && <div class="why">“{w}”</div>}
      <details><summary class="dim">fields</summary><Fields fields={s.fields} /><div class="dim">event <code>{s.event}</code></div></details>
    </li>
  );
}

function Steps({ title, steps }: { title: string; steps: TrailStep[] }) {
  return (
    <li data-section={title}>
      <strong>{title}</strong>
      {steps.length === 0 ? <span class="dim"> none</span> : <ul>{steps.map((s) => <Step key={s.event} s={s} />)}</ul>}
    </li>
  );
}

function RunNode({ run, first }: { run: TrailRun; first: boolean }) {
  const evals = runEvaluations(run);
  const other = run.steps.filter((s) => s.kind !== "evaluation.logged");
  return (
    <li class="trail-run" data-run={run.id}>
      <strong>{first ? "run" : "parent run"}</strong> <a href={`#/run/${run.id}`}>{run.name || shortId(run.id)}</a>{" "}
      <span class="dim">by {run.owner || "–"}, started {time(run.started_ms)}</span>
      <ul>
        <li data-section="datasets">
          <strong>datasets</strong>
          {run.datasets.length === 0 ? <span class="dim"> none recorded</span> : (
            <ul>
              {run.datasets.map((d) => (
                <li key={d.role} data-dataset={d.role}>
                  {d.role}: {d.name || "–"} <code class={d.digest ? "" : "missing"}>{d.digest || "no digest"}</code>
                  {d.source && <span class="dim"> from {d.source}</span>}
                </li>
              ))}
            </ul>
          )}
        </li>
        <li data-section="feature set"><strong>feature set</strong> {run.feature_set || <span class="dim">none recorded</span>}</li>
        <li data-section="code"><strong>code commit</strong> {run.code_commit ? <code>{run.code_commit}</code> : <span class="dim">none recorded</span>}</li>
        {run.infra && <li data-section="infra"><strong>infra</strong> <code class="dim">{run.infra}</code></li>}
        <li data-section="parent"><strong>parent</strong> {run.parent ? <a href={`#/run/${run.parent}`}>{shortId(run.parent)}</a> : <span class="dim">none</span>}</li>
        <li data-section="evaluations">
          <strong>evaluations</strong>
          {evals.length === 0 ? <span class="dim"> none</span> : (
            <ul>
              {evals.map(({ benchmark, step }) => (
                <li key={benchmark} data-benchmark={benchmark}>
                  {benchmark}{" "}
                  {step ? <>— <Who member={step.member} device={step.device} at={step.at_ms} /></> : <span class="badge warn">no event logged it</span>}
                  {!run.evaluations.includes(benchmark) && <span class="dim"> (no longer on the run)</span>}
                </li>
              ))}
            </ul>
          )}
        </li>
        {other.length > 0 && <Steps title="run events" steps={other} />}
      </ul>
    </li>
  );
}

/** A version's trail as a nested list, and whether every event on it verifies. */
export function TrailView({ trail }: { trail: Trail }) {
  return (
    <div class="trail" data-testid="trail">
      <div class={`trail-verdict ${trail.verified ? "verified" : "unverified"}`} data-testid="trail-verdict">
        {trail.verified ? "✓ verified: every event on this trail is signed and its chain holds" : `✗ not verified: ${trail.findings.length} finding${trail.findings.length === 1 ? "" : "s"}`}
      </div>
      {!trail.verified && <ul class="findings" data-testid="trail-findings">{trail.findings.map((f, i) => <li key={i}>{f}</li>)}</ul>}
      <ul class="trail-tree">
        <li>
          <strong>{trail.model} version {trail.version}</strong> {trail.content && <code title={trail.content}>{trail.content.startsWith("blake3:") ? trail.content : `blake3:${trail.content}`}</code>}
          <ul>
            {trail.runs.length === 0 ? <li class="dim">no run: registered from outside a run</li> : trail.runs.map((r, i) => <RunNode key={r.id} run={r} first={i === 0} />)}
            {trailSections(trail.steps).map((s) => <Steps key={s.title} title={s.title} steps={s.steps} />)}
          </ul>
        </li>
      </ul>
    </div>
  );
}

/** Loads and shows the trail of `name` version `version`. */
export function VersionTrail({ name, version, onClose }: { name: string; version: number; onClose: () => void }) {
  const [trail, setTrail] = useState<Trail | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setTrail(null);
    setError(null);
    api.auditTrail({ name, version: String(version) }).then(setTrail).catch((e) => setError(e.message));
  }, [name, version]);
  return (
    <section class="card" data-testid="version-trail">
      <h2>Trail of version {version} <button class="link" onClick={onClose}>close</button></h2>
      {error && <div class="error">{error}</div>}
      {!trail && !error && <p class="dim">walking the trail…</p>}
      {trail && <TrailView trail={trail} />}
    </section>
  );
}

/** A model's recorded deployments, newest first, and the form that records one. */
export function Deployments({ name, onRecorded }: { name: string; onRecorded?: () => void }) {
  const [list, setList] = useState<Deployment[] | null>(null);
  const [what, setWhat] = useState("@champion");
  const [target, setTarget] = useState("");
  const [rationale, setRationale] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const load = () => api.deployments({ name }).then(setList).catch((e) => setProblem(e.message));
  useEffect(() => {
    setList(null);
    load();
  }, [name]);
  const record = () => {
    const req = deployRequest(name, what, target, rationale);
    if ("error" in req) return setProblem(req.error);
    api.deploy(req)
      .then(() => {
        setProblem(null);
        setRationale("");
        load();
        onRecorded?.();
      })
      .catch((e) => setProblem(e.message));
  };
  const input = (set: (v: string) => void) => (e: Event) => set((e.target as HTMLInputElement).value);
  return (
    <section class="card deployments" data-testid="deployments">
      <h2>Deployments</h2>
      <p class="dim">Cairn does not deploy: it records what went where and why, as a signed audit event.</p>
      <div class="deploy-form">
        <input placeholder="version or @alias" value={what} onInput={input(setWhat)} size={12} data-testid="deploy-what" />{" "}
        <input placeholder="target (prod-eu)" value={target} onInput={input(setTarget)} size={14} data-testid="deploy-target" />{" "}
        <input placeholder="rationale: why it was deployed" value={rationale} onInput={input(setRationale)} size={40} data-testid="deploy-rationale" />{" "}
        <button onClick={record} data-testid="deploy">record deployment</button>
      </div>
      {problem && <div class="error" data-testid="deploy-problem">{problem}</div>}
      {list && list.length === 0 && <p class="dim">None recorded.</p>}
      {list && list.length > 0 && (
        <table class="kv" data-testid="deployment-list">
          <thead><tr><th>when</th><th>version</th><th>target</th><th>who</th><th>rationale</th><th>content</th></tr></thead>
          <tbody>
            {list.map((d) => (
              <tr key={d.id}>
                <td>{time(d.at_ms)}</td>
                <td>{d.number}{d.alias && <span class="tag">@{d.alias}</span>}</td>
                <td>{d.target}</td>
                <td>{d.user}{d.device && <code class="dim" title={d.device}> {shortId(d.device)}</code>}</td>
                <td>{d.rationale}</td>
                <td>{d.content ? <code title={d.content}>{shortId(d.content.replace("blake3:", ""))}</code> : "–"}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
