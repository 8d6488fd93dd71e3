// The team in the window: create a team or join one with a pasted ticket (the join runs in the
// background; the page polls how it stands), invite a teammate (the ticket with a copy button and
// its QR code), the members and their devices with remove, and the sync status (teammates, last
// sync, whether changes are pending), polled from the cheap status op. Logic in `../team.ts`.

import { useEffect, useRef, useState } from "preact/hooks";

import { time } from "../format";
import { api } from "../state";
import { expiresIn, joinStatus, removable, removeQuestion, svgDataUrl, syncSummary, ticketProblem } from "../team";
import type { Invitation, MemberView, SyncStatus, TeamView } from "../wire";

/** How often the sync status is asked for (it reads a few rows, never every series). */
export const SYNC_POLL_MS = 3000;
/** How often a join in flight is asked about. */
export const JOIN_POLL_MS = 500;

const TTLS: [string, number][] = [["1 hour", 3600], ["1 day", 86400], ["7 days", 7 * 86400]];

export function Team() {
  const [view, setView] = useState<TeamView | null>(null);
  const [members, setMembers] = useState<MemberView[]>([]);
  const [sync, setSync] = useState<SyncStatus | null>(null);
  const [error, setError] = useState<string | null>(null);

  const load = async () => {
    try {
      const v = await api.team({});
      setView(v);
      setMembers(v.team ? await api.teamMembers({}) : []);
      setError(null);
      return v;
    } catch (e) {
      setError((e as Error).message);
      return null;
    }
  };
  useEffect(() => {
    load();
  }, []);

  // The sync status, polled while the page is open.
  useEffect(() => {
    let stop = false;
    const tick = () =>
      api
        .sync({})
        .then((s) => !stop && setSync(s))
        .catch(() => {});
    tick();
    const t = window.setInterval(tick, SYNC_POLL_MS);
    return () => {
      stop = true;
      window.clearInterval(t);
    };
    // Asked afresh as soon as the team changes (created, joined).
  }, [view?.team?.name]);

  if (!view && !error) return <div class="page loading">loading the team…</div>;
  return (
    <div class="page team" data-testid="team-page">
      <nav class="crumbs"><a href="#/">Catalog</a> / <strong>Team</strong></nav>
      {error && <p class="error" data-testid="team-error">{error}</p>}
      {view && !view.team && <NoTeam view={view} onChange={load} />}
      {view?.team && (
        <>
          <h2 data-testid="team-name">{view.team.name}</h2>
          <p class="dim">
            This device: <code data-testid="team-device">{view.device.slice(0, 16)}</code> ({view.user}) ·{" "}
            {view.node.running ? `listening at ${view.node.addrs.join(", ") || "every interface"}` : view.node.hosted ? "sync not running" : "this server runs no sync node (cairn serve --sync)"}
          </p>
          {view.join.state === "joined" && <p class="ok" data-testid="join-status">{joinStatus(view.join, Date.now()).text}</p>}
          <Invite />
          <Members members={members} onChange={setMembers} />
        </>
      )}
      {sync && <SyncPanel status={sync} />}
    </div>
  );
}

/** Create a team, or join one. */
function NoTeam({ view, onChange }: { view: TeamView; onChange: () => Promise<TeamView | null> }) {
  const [name, setName] = useState("");
  const [email, setEmail] = useState("");
  const [ticket, setTicket] = useState("");
  const [joinEmail, setJoinEmail] = useState("");
  const [join, setJoin] = useState(view.join);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const poll = useRef<number | undefined>(undefined);

  // While a join is under way, ask how it stands; once joined, the page shows the team.
  useEffect(() => {
    if (join.state !== "joining") return;
    poll.current = window.setTimeout(async () => {
      try {
        const v = await api.team({});
        setJoin(v.join);
        if (v.join.state === "joined") await onChange();
      } catch (e) {
        setProblem((e as Error).message);
      }
    }, JOIN_POLL_MS);
    return () => window.clearTimeout(poll.current);
  }, [join]);

  const create = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api.teamCreate({ name, email: email || null });
      await onChange();
    } catch (err) {
      setProblem((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  const startJoin = async (e: Event) => {
    e.preventDefault();
    const why = ticketProblem(ticket);
    if (why) return setProblem(why);
    setProblem(null);
    try {
      setJoin(await api.teamJoin({ ticket: ticket.trim(), email: joinEmail || null }));
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  const status = joinStatus(join, Date.now());
  return (
    <div class="team-start">
      <p class="dim">This workspace belongs to no team. Teammates' workspaces sync directly with each other, with no server.</p>
      {problem && <p class="error" data-testid="team-problem">{problem}</p>}
      <form class="card" onSubmit={create} data-testid="team-create-form">
        <h3>Create a team</h3>
        <input data-testid="team-create-name" placeholder="Team name" value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />{" "}
        <input data-testid="team-create-email" placeholder="Your email (shown to teammates)" value={email} onInput={(e) => setEmail((e.target as HTMLInputElement).value)} />{" "}
        <button type="submit" data-testid="team-create" disabled={!name.trim() || busy}>Create</button>
      </form>
      <form class="card" onSubmit={startJoin} data-testid="team-join-form">
        <h3>Join a team</h3>
        <textarea data-testid="team-ticket" rows={3} placeholder="Paste the invitation ticket (cairn1…)" value={ticket} onInput={(e) => setTicket((e.target as HTMLTextAreaElement).value)} spellcheck={false} />
        <div>
          <input data-testid="team-join-email" placeholder="Your email (shown to teammates)" value={joinEmail} onInput={(e) => setJoinEmail((e.target as HTMLInputElement).value)} />{" "}
          <button type="submit" data-testid="team-join" disabled={status.polling}>Join</button>
        </div>
        {status.text && <p class={status.tone === "bad" ? "error" : "dim"} data-testid="join-status">{status.text}</p>}
      </form>
    </div>
  );
}

/** An invitation: the ticket with a copy button, its QR code and expiry. */
function Invite() {
  const [ttl, setTtl] = useState(86400);
  const [inv, setInv] = useState<Invitation | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const make = async () => {
    setNote(null);
    try {
      setInv(await api.teamInvite({ ttl_s: ttl }));
    } catch (e) {
      setNote((e as Error).message);
    }
  };
  const copy = async () => {
    if (!inv) return;
    try {
      await navigator.clipboard.writeText(inv.ticket);
      setNote("copied");
    } catch {
      setNote("copy did not work here: select the ticket and copy it");
    }
  };
  return (
    <section class="card" data-testid="team-invite">
      <h3>Invite a teammate</h3>
      <label class="dim">
        valid for{" "}
        <select value={String(ttl)} onChange={(e) => setTtl(Number((e.target as HTMLSelectElement).value))} aria-label="invitation lifetime">
          {TTLS.map(([label, s]) => <option key={s} value={String(s)}>{label}</option>)}
        </select>
      </label>{" "}
      <button data-testid="team-invite-new" onClick={make}>New invitation</button>
      {note && <span class="dim" data-testid="team-invite-note"> {note}</span>}
      {inv && (
        <div class="invitation">
          <img class="qr" data-testid="team-qr" src={svgDataUrl(inv.qr_svg)} alt="QR code of the invitation ticket" width={200} height={200} />
          <div>
            <textarea data-testid="team-ticket-text" readOnly rows={4} value={inv.ticket} onFocus={(e) => (e.target as HTMLTextAreaElement).select()} />
            <div>
              <button data-testid="team-copy" onClick={copy}>Copy</button>{" "}
              <span class="dim" data-testid="team-expires">{expiresIn(inv.expires_ms, Date.now())} ({time(inv.expires_ms)}) · one use · dials {inv.addrs.join(", ")}</span>
            </div>
          </div>
        </div>
      )}
    </section>
  );
}

/** The members, their devices, and remove. */
function Members({ members, onChange }: { members: MemberView[]; onChange: (m: MemberView[]) => void }) {
  const [problem, setProblem] = useState<string | null>(null);
  const remove = async (m: MemberView, id: string) => {
    if (!window.confirm(removeQuestion(m, id))) return;
    try {
      onChange(await api.teamRemove({ member: id }));
      setProblem(null);
    } catch (e) {
      setProblem((e as Error).message);
    }
  };
  return (
    <section class="card">
      <h3>Members</h3>
      {problem && <p class="error">{problem}</p>}
      <table class="kv" data-testid="team-members">
        <thead><tr><th>member</th><th>email</th><th>device</th><th>added</th><th>by</th><th>state</th><th></th></tr></thead>
        <tbody>
          {members.flatMap((m) =>
            m.devices.map((d, i) => (
              <tr key={d.id} class={d.removed ? "removed" : ""} data-testid="team-device-row">
                <td>{i === 0 ? m.name : ""}</td>
                <td>{i === 0 ? m.email : ""}</td>
                <td><code title={d.id}>{d.id.slice(0, 10)}</code></td>
                <td>{time(d.added_ms)}</td>
                <td>{d.added_by}</td>
                <td>{d.removed ? `removed ${time(d.removed_ms)}` : d.this_device ? "this device" : "member"}</td>
                <td>{removable(m, d.id) && <button data-testid="team-remove" onClick={() => remove(m, d.id)}>Remove</button>}</td>
              </tr>
            )),
          )}
        </tbody>
      </table>
    </section>
  );
}

/** Teammates, last sync and whether anything is pending, from the polled status. */
function SyncPanel({ status }: { status: SyncStatus }) {
  const s = syncSummary(status);
  return (
    <section class="card" data-testid="team-sync">
      <h3>Sync</h3>
      <p data-testid="team-sync-summary">
        {s.text} · last sync {s.lastSyncMs ? time(s.lastSyncMs) : "never"}
      </p>
      {status.peers.length > 0 && (
        <table class="kv">
          <thead><tr><th>teammate</th><th>device</th><th>last seen</th><th>last sync</th><th>pending</th><th>error</th></tr></thead>
          <tbody>
            {status.peers.map((p) => (
              <tr key={p.id} class={p.removed ? "removed" : ""}>
                <td>{p.name || "–"}{p.removed ? " (removed)" : ""}</td>
                <td><code>{p.id.slice(0, 10)}</code></td>
                <td>{time(p.last_seen_ms)}</td>
                <td>{time(p.last_sync_ms)}</td>
                <td>{p.pending ? "yes" : "no"}</td>
                <td class="dim">{p.last_error ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
