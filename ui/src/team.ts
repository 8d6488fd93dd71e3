// The Team page's logic, apart from its rendering: what a pasted ticket lacks before it is sent,
// how a join in flight reads, when an invitation runs out, the sync status in one line, and the
// invitation's QR code as an image the page can show (the SVG is drawn by the server, never run
// in the page).

import type { JoinState, MemberView, SyncStatus } from "./wire";

/** Why a pasted ticket cannot be one, or null when it may be (the server decodes it fully). */
export function ticketProblem(text: string): string | null {
  const t = text.trim();
  if (!t) return "paste the invitation ticket your teammate sent (cairn1…)";
  if (!t.startsWith("cairn1")) return "a ticket starts with 'cairn1'";
  if (t.length > 4096) return "a ticket is at most 4096 characters";
  if (!/^[0-9a-f]*$/i.test(t.slice(6))) return "a ticket is 'cairn1' followed by hex digits only";
  return null;
}

/** How a join reads on the page: the words, and whether to keep polling. */
export function joinStatus(state: JoinState, now: number): { text: string; tone: "busy" | "ok" | "bad" | "idle"; polling: boolean } {
  switch (state.state) {
    case "idle":
      return { text: "", tone: "idle", polling: false };
    case "joining":
      return {
        text: `Joining… connecting to the inviter (${state.inviter.slice(0, 10)}) and syncing (${Math.max(0, Math.round((now - state.since_ms) / 1000))} s)`,
        tone: "busy",
        polling: true,
      };
    case "joined":
      return {
        text: `Joined team '${state.team}': ${state.docs_changed} documents, ${state.points_received} metric points and ${state.blobs_received} files arrived.`,
        tone: "ok",
        polling: false,
      };
    case "failed":
      return { text: `Joining failed: ${state.message}`, tone: "bad", polling: false };
  }
}

/** "expires in 23 h 59 min", "expires in 40 s", "expired". */
export function expiresIn(expiresMs: number, now: number): string {
  const s = Math.floor((expiresMs - now) / 1000);
  if (s <= 0) return "expired";
  if (s < 60) return `expires in ${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `expires in ${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `expires in ${h} h ${m % 60} min`;
  return `expires in ${Math.floor(h / 24)} days`;
}

/** The sync status in one line: how many teammates, when this device last synced with any, and
 *  whether it holds changes some active teammate has not had. */
export function syncSummary(s: SyncStatus): { peers: number; lastSyncMs: number | null; pending: boolean; text: string } {
  const active = s.peers.filter((p) => !p.removed);
  const last = active.reduce<number | null>((m, p) => (p.last_sync_ms != null && (m === null || p.last_sync_ms > m) ? p.last_sync_ms : m), null);
  const pending = active.some((p) => p.pending);
  const n = active.length;
  const who = n === 0 ? "no teammates yet" : n === 1 ? "1 teammate" : `${n} teammates`;
  return { peers: n, lastSyncMs: last, pending, text: `${who} · ${pending ? "changes pending" : "nothing pending"}` };
}

/** Whether a device may be removed from this window: not this device, not one already removed. */
export function removable(m: MemberView, deviceId: string): boolean {
  const d = m.devices.find((x) => x.id === deviceId);
  return !!d && !d.removed && !d.this_device;
}

/** The question the remove button asks before it acts. */
export function removeQuestion(m: MemberView, deviceId: string): string {
  const others = m.devices.filter((d) => d.id !== deviceId && !d.removed).length;
  const rest = others > 0 ? ` Their ${others} other device${others > 1 ? "s stay" : " stays"} on the team.` : "";
  return `Remove ${m.name}'s device ${deviceId.slice(0, 10)} from the team? It will be refused and sent nothing new; this is recorded in the audit trail.${rest}`;
}

/** The server's SVG as an image source (shown by <img>: the SVG is never put into the page). */
export function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}
