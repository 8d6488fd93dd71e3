// The model registry: every model, and one model's aliases (conflicts shown), versions (content
// hash, lineage back to the run), the gate that guards an alias with the verdict of each check,
// promotion through it, signed approvals, and the history of every gate check; the audit trail:
// the verification badge, the model's timeline of events, each version's trail, and its
// recorded deployments.

import { useEffect, useState } from "preact/hooks";

import { Deployments, Timeline, VerificationBadge, VersionTrail } from "../components/Audit";
import { bytes, shortId, time } from "../format";
import { VERSION_PAGE, shownVersions } from "../registry";
import { api } from "../state";
import type { ApprovalsView, AuditEventView, Check, GateEvaluation, GateView, ModelVersion, RegisteredModel } from "../wire";

export function Models() {
  const [models, setModels] = useState<RegisteredModel[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api.registeredModels({}).then(setModels).catch((e) => setError(e.message));
  }, []);
  if (error) return <div class="page error">{error}</div>;
  if (!models) return <div class="page loading">loading the registry…</div>;
  return (
    <div class="page registry">
      <nav class="crumbs"><a href="#/">Catalog</a> / <strong>Models</strong></nav>
      {models.length === 0 && <p class="dim">No registered models yet: <code>cairn model register NAME RUN</code> adds one.</p>}
      {models.length > 0 && (
        <table class="kv" data-testid="models">
          <thead><tr><th>model</th><th>versions</th><th>latest</th><th>aliases</th><th>updated</th></tr></thead>
          <tbody>
            {models.map((m) => {
              const live = m.versions.filter((v) => !v.deleted);
              return (
                <tr key={m.name}>
                  <td><a href={`#/models/${encodeURIComponent(m.name)}`}>{m.name}</a></td>
                  <td>{live.length}</td>
                  <td>{live.length ? live[live.length - 1].version : "–"}</td>
                  <td>{m.aliases.map((a) => <span key={a.name} class={`tag${a.targets.length > 1 ? " warn" : ""}`}>@{a.name} → {a.targets.map((t) => t.number).join(" | ")}</span>)}</td>
                  <td>{time(m.updated_ms)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}

function CheckRow({ c }: { c: Check }) {
  return (
    <tr class={c.passed ? "" : "differs"}>
      <td>{c.passed ? "pass" : "FAIL"}</td>
      <td>{c.subject}</td>
      <td>{c.value === undefined ? "–" : String(c.value)}</td>
      <td>{c.threshold}</td>
      <td class="dim">{c.detail}</td>
    </tr>
  );
}

function Checks({ e }: { e: GateEvaluation }) {
  if (!e.policy_hash) return <p class="dim">No gate guards @{e.alias}: the move is not checked.</p>;
  return (
    <table class="kv checks" data-testid="checks">
      <thead><tr><th>verdict</th><th>check</th><th>value</th><th>needs</th><th>why</th></tr></thead>
      <tbody>{e.checks.map((c, i) => <CheckRow key={i} c={c} />)}</tbody>
    </table>
  );
}

function content(v: ModelVersion): string {
  if (!v.content) return "(content elsewhere)";
  return `blake3:${shortId(v.content)}${v.size !== undefined ? ` · ${bytes(v.size)}` : ""}`;
}

export function ModelPage({ name }: { name: string }) {
  const [model, setModel] = useState<RegisteredModel | null>(null);
  const [allVersions, setAllVersions] = useState(false);
  const [gate, setGate] = useState<GateView | null | undefined>(undefined);
  const [history, setHistory] = useState<GateEvaluation[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [alias, setAlias] = useState("champion");
  const [selected, setSelected] = useState<number | null>(null);
  const [rationale, setRationale] = useState("");
  const [verdict, setVerdict] = useState<GateEvaluation | null>(null);
  const [refusal, setRefusal] = useState<string | null>(null);
  const [approvals, setApprovals] = useState<ApprovalsView | null>(null);
  const [trailOf, setTrailOf] = useState<number | null>(null);
  const [events, setEvents] = useState<AuditEventView[] | null>(null);

  const loadEvents = () => api.auditEvents({ model: name, limit: 500 }).then(setEvents).catch(() => setEvents(null));
  const load = () => {
    api.registeredModel({ name }).then(setModel).catch((e) => setError(e.message));
    api.gate({ name, alias }).then(setGate).catch(() => setGate(null));
    api.gateEvaluations({ name, limit: 50 }).then(setHistory).catch(() => setHistory([]));
    loadEvents();
  };
  useEffect(load, [name, alias]);
  useEffect(() => {
    setVerdict(null);
    setRefusal(null);
    setApprovals(null);
    if (selected !== null) api.approvals({ name, version: String(selected), alias }).then(setApprovals).catch(() => setApprovals(null));
  }, [selected, alias]);

  if (error) return <div class="page error">{error} <a href="#/models">back to the models</a></div>;
  if (!model) return <div class="page loading">loading {name}…</div>;

  const action = () => ({ name, version: String(selected), alias });
  const check = () => api.checkGate(action()).then((e) => { setVerdict(e); setRefusal(null); load(); }).catch((e) => setRefusal(e.message));
  const promote = () =>
    api.promote({ ...action(), rationale: rationale || null })
      .then((e) => { setVerdict(e); setRefusal(null); load(); })
      .catch((e) => {
        setRefusal(e.message);
        // The refused check is kept (and its audit event): show its every line.
        loadEvents();
        api.gateEvaluations({ name, limit: 50 }).then((h) => { setHistory(h); setVerdict(h.find((x) => x.number === selected && x.alias === alias) ?? null); });
      });
  const approve = () =>
    api.approve({ ...action(), comment: rationale || null })
      .then(() => { api.approvals(action()).then(setApprovals); loadEvents(); })
      .catch((e) => setRefusal(e.message));

  return (
    <div class="page registry">
      <nav class="crumbs"><a href="#/">Catalog</a> / <a href="#/models">Models</a> / <strong>{model.name}</strong></nav>
      <header class="run-head"><h1>{model.name}</h1><span class="dim">created {time(model.created_ms)} by {model.created_by}</span> <VerificationBadge /></header>
      {model.description && <p>{model.description}</p>}
      <section class="card">
        <h2>Aliases</h2>
        {model.aliases.length === 0 && <p class="dim">No aliases.</p>}
        {model.aliases.map((a) => (
          <div key={a.name} data-testid={`alias-${a.name}`}>
            <strong>@{a.name}</strong>{" "}
            {a.targets.length > 1 || a.removed_concurrently
              ? <span class="badge warn" title="Peers moved it concurrently; a promotion settles it">conflict: versions {a.targets.map((t) => t.number).join(" | ")}{a.removed_concurrently ? ", also removed" : ""}</span>
              : <>→ version {a.targets[0].number} <span class="dim">set by {a.targets[0].set_by} {time(a.targets[0].set_ms)}{a.targets[0].rationale ? ` — “${a.targets[0].rationale}”` : ""}</span></>}
          </div>
        ))}
      </section>
      <section class="card">
        <h2>Versions <span class="dim" data-testid="version-count">{model.versions.length} in all, newest first</span></h2>
        <table class="kv" data-testid="versions">
          <thead><tr><th>version</th><th>content</th><th>run</th><th>path</th><th>by</th><th>created</th><th>aliases</th><th>audit</th></tr></thead>
          <tbody>
            {shownVersions(model.versions, allVersions).map((v) => (
              <tr key={v.id} class={selected === v.version ? "selected" : ""} onClick={() => !v.deleted && setSelected(v.version)}>
                <td>{v.version}</td>
                <td><code title={v.content ?? ""}>{content(v)}</code></td>
                <td>{v.run ? <a href={`#/run/${v.run}`} onClick={(e) => e.stopPropagation()}>{shortId(v.run)}</a> : "–"}</td>
                <td>{v.path ?? v.model_id ?? "–"}</td>
                <td>{v.user}</td>
                <td>{time(v.created_ms)}</td>
                <td>{v.deleted ? <span class="badge warn" title={v.deleted.reason}>deleted by {v.deleted.user}</span> : v.aliases.map((a) => <span class="tag" key={a}>@{a}</span>)}</td>
                <td><button class="link" data-testid={`trail-${v.version}`} onClick={(e) => { e.stopPropagation(); setTrailOf(v.version); }}>trail</button></td>
              </tr>
            ))}
          </tbody>
        </table>
        {!allVersions && model.versions.length > VERSION_PAGE && (
          <button onClick={() => setAllVersions(true)} data-testid="all-versions">show all {model.versions.length} versions</button>
        )}
        <p class="dim">Click a version to check it against a gate, promote it or approve it; its trail shows where its data came from, who approved it and why it was deployed.</p>
      </section>
      {trailOf !== null && <VersionTrail name={name} version={trailOf} onClose={() => setTrailOf(null)} />}
      <Deployments name={name} onRecorded={loadEvents} />
      <section class="card" data-testid="gate">
        <h2>
          Gate of @<input class="alias" value={alias} onChange={(e) => setAlias((e.target as HTMLInputElement).value || "champion")} size={12} />
          {gate ? <span class="dim">policy {shortId(gate.hash.replace("blake3:", ""))}, set by {gate.set_by} {time(gate.set_ms)}</span> : gate === null ? <span class="dim">not gated</span> : null}
        </h2>
        {gate && <pre class="policy">{JSON.stringify(gate.policy, null, 2)}</pre>}
        {selected !== null && (
          <div class="promote">
            <strong>version {selected}</strong>{" "}
            <input placeholder="rationale / comment" value={rationale} onInput={(e) => setRationale((e.target as HTMLInputElement).value)} />{" "}
            <button onClick={check}>check</button> <button onClick={promote} data-testid="promote">promote to @{alias}</button> <button onClick={approve}>approve (signed)</button>
          </div>
        )}
        {refusal && <div class="error" data-testid="refusal">{refusal}</div>}
        {verdict && <Checks e={verdict} />}
        {approvals && approvals.approvals.length > 0 && (
          <table class="kv">
            <thead><tr><th>approved by</th><th>device</th><th>when</th><th>counts</th><th>comment</th></tr></thead>
            <tbody>
              {approvals.approvals.map((a) => (
                <tr key={a.approval.id}>
                  <td>{a.member ?? a.approval.user}</td>
                  <td><code>{shortId(a.approval.device)}</code></td>
                  <td>{time(a.approval.at_ms)}</td>
                  <td>{a.counts ? "yes" : <span class="badge warn" title={a.problem}>no: {a.problem}</span>}</td>
                  <td>{a.approval.comment}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card">
        <h2>Gate history</h2>
        {history.length === 0 && <p class="dim">No checks yet.</p>}
        {history.length > 0 && (
          <table class="kv" data-testid="history">
            <thead><tr><th>when</th><th>who</th><th>version</th><th>alias</th><th>verdict</th><th>moved</th><th>rationale</th></tr></thead>
            <tbody>
              {history.slice(0, 50).map((e) => (
                <tr key={e.id} onClick={() => setVerdict(e)}>
                  <td>{time(e.at_ms)}</td><td>{e.user}</td><td>{e.number}</td><td>@{e.alias}</td>
                  <td>{e.passed ? "pass" : `FAIL (${e.checks.filter((c) => !c.passed).length})`}</td>
                  <td>{e.promoted ? "yes" : "no"}</td><td>{e.rationale ?? ""}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section class="card" data-testid="model-timeline">
        <h2>Audit timeline{events ? ` (${events.length})` : ""}</h2>
        {events === null ? <p class="dim">No audit events to show.</p> : <Timeline events={events} testid="model-events" />}
      </section>
    </div>
  );
}
