// The Team page over a fake API that keeps a team, its roster and a join's state: the page's
// logic (ticket checks, join words, expiry, sync summary, who may be removed) and the page
// itself — creating a team and inviting (ticket, copy, QR image), a pasted ticket refused before
// any call or joined through polling until the roster shows, a failed join's reason, removal
// only after the confirm, and the polled sync status.

import { render } from "preact";
import { act } from "preact/test-utils";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { expiresIn, joinStatus, removable, removeQuestion, svgDataUrl, syncSummary, ticketProblem } from "../team";
import type { InviteRequest, JoinRequest, JoinState, MemberRef, MemberView, NewTeam, SyncStatus, TeamView } from "../wire";

const ME = "aa".repeat(32);
const BO = "bb".repeat(32);
const GOOD = "cairn1" + "ab".repeat(70);
const calls: string[] = [];
let team: TeamView["team"] = null;
let join: JoinState = { state: "idle" };
/** What the next polls of `team` report for the join, one per poll. */
let joinScript: JoinState[] = [];
let members: MemberView[] = [];
let peers: SyncStatus["peers"] = [];

const device = (id: string, me: boolean) => ({ id, added_by: "ana", added_ms: 1_700_000_000_000, removed: false, removed_ms: null, addrs: [], this_device: me });

vi.mock("../state", async () => {
  const { signal } = await import("@preact/signals");
  return {
    theme: signal("light"),
    api: {
      team: async (): Promise<TeamView> => {
        calls.push("team");
        if (join.state === "joining" && joinScript.length) join = joinScript.shift()!;
        if (join.state === "joined") {
          team = { name: join.team, created_by: BO, created_ms: 1 };
          members = [{ name: "bo", email: "", removed: false, devices: [device(BO, false)] }, { name: "ana", email: "ana@example.org", removed: false, devices: [device(ME, true)] }];
        }
        return { device: ME, user: "ana", team, node: { hosted: true, running: !!team, addrs: team ? ["127.0.0.1:7420"] : [] }, join };
      },
      teamCreate: async (r: NewTeam) => {
        calls.push(`teamCreate ${JSON.stringify(r)}`);
        team = { name: r.name, created_by: ME, created_ms: 1 };
        members = [{ name: "ana", email: r.email ?? "", removed: false, devices: [device(ME, true)] }];
      },
      teamMembers: async () => {
        calls.push("teamMembers");
        return members;
      },
      teamInvite: async (r: InviteRequest) => {
        calls.push(`teamInvite ${JSON.stringify(r)}`);
        return { ticket: GOOD, expires_ms: Date.now() + 86_400_000, addrs: ["127.0.0.1:7420"], qr_svg: '<svg xmlns="http://www.w3.org/2000/svg"><rect fill="#000000"/></svg>' };
      },
      teamJoin: async (r: JoinRequest): Promise<JoinState> => {
        calls.push(`teamJoin ${JSON.stringify(r)}`);
        join = { state: "joining", inviter: BO, since_ms: Date.now() };
        return join;
      },
      teamRemove: async (r: MemberRef) => {
        calls.push(`teamRemove ${r.member}`);
        members = members.map((m) => ({ ...m, devices: m.devices.map((d) => (d.id === r.member ? { ...d, removed: true, removed_ms: 1_700_000_100_000 } : d)) }));
        return members;
      },
      sync: async (): Promise<SyncStatus> => {
        calls.push("sync");
        return { device: ME, team: team?.name ?? null, advertised: [], peers };
      },
    },
  };
});

const { Team } = await import("./Team");

const settle = () => act(async () => {
  for (let i = 0; i < 5; i++) await new Promise((ok) => setTimeout(ok, 0));
});

async function mount(): Promise<HTMLElement> {
  const root = document.createElement("div");
  document.body.append(root);
  await act(() => render(<Team />, root));
  await settle();
  return root;
}

async function type(root: HTMLElement, testid: string, value: string) {
  const el = root.querySelector<HTMLInputElement | HTMLTextAreaElement>(`[data-testid="${testid}"]`)!;
  await act(() => {
    el.value = value;
    el.dispatchEvent(new Event("input"));
  });
}

async function click(root: HTMLElement, testid: string, nth = 0) {
  await act(() => root.querySelectorAll<HTMLButtonElement>(`[data-testid="${testid}"]`)[nth].click());
  await settle();
}

const text = (root: HTMLElement, testid: string) => root.querySelector(`[data-testid="${testid}"]`)?.textContent ?? null;

async function waitFor(what: string, ok: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await act(() => new Promise((r) => setTimeout(r, 50)));
  }
}

beforeEach(() => {
  team = null;
  join = { state: "idle" };
  joinScript = [];
  members = [];
  peers = [];
  calls.length = 0;
});

afterEach(() => {
  render(null, document.body);
  document.body.innerHTML = "";
  vi.restoreAllMocks();
});

describe("the team logic", () => {
  it("checks a pasted ticket before sending it", () => {
    expect(ticketProblem("  ")).toContain("paste the invitation ticket");
    expect(ticketProblem("hello")).toBe("a ticket starts with 'cairn1'");
    expect(ticketProblem("cairn1xyz")).toBe("a ticket is 'cairn1' followed by hex digits only");
    expect(ticketProblem("cairn1" + "a".repeat(5000))).toBe("a ticket is at most 4096 characters");
    expect(ticketProblem(`\n ${GOOD} \n`)).toBeNull();
  });

  it("words a join and says when to keep polling", () => {
    expect(joinStatus({ state: "idle" }, 0)).toEqual({ text: "", tone: "idle", polling: false });
    const busy = joinStatus({ state: "joining", inviter: BO, since_ms: 1_000 }, 4_400);
    expect(busy.polling).toBe(true);
    expect(busy.text).toBe("Joining… connecting to the inviter (bbbbbbbbbb) and syncing (3 s)");
    const done = joinStatus({ state: "joined", team: "lab", inviter: BO, at_ms: 1, docs_changed: 3, points_received: 120, blobs_received: 2 }, 0);
    expect(done).toEqual({ text: "Joined team 'lab': 3 documents, 120 metric points and 2 files arrived.", tone: "ok", polling: false });
    const failed = joinStatus({ state: "failed", inviter: BO, at_ms: 1, code: "INVALID_ARGUMENT", message: "the peer refused: the invitation expired 3 min ago" }, 0);
    expect(failed).toEqual({ text: "Joining failed: the peer refused: the invitation expired 3 min ago", tone: "bad", polling: false });
  });

  it("says when an invitation runs out", () => {
    expect(expiresIn(1_000, 2_000)).toBe("expired");
    expect(expiresIn(41_000, 1_000)).toBe("expires in 40 s");
    expect(expiresIn(30 * 60_000, 0)).toBe("expires in 30 min");
    expect(expiresIn(86_400_000 - 60_000, 0)).toBe("expires in 23 h 59 min");
    expect(expiresIn(7 * 86_400_000, 0)).toBe("expires in 7 days");
  });

  it("sums the sync status up over the active teammates", () => {
    const peer = (id: string, last: number | null, pending: boolean, removed = false) => ({ id, name: id, removed, addrs: [], last_seen_ms: last, last_sync_ms: last, last_error: null, last_sent: 0, last_received: 0, pending });
    expect(syncSummary({ device: ME, team: null, advertised: [], peers: [] })).toEqual({ peers: 0, lastSyncMs: null, pending: false, text: "no teammates yet · nothing pending" });
    const s = syncSummary({ device: ME, team: "lab", advertised: [], peers: [peer("a", 5, false), peer("b", 9, true), peer("c", 99, true, true)] });
    expect(s).toEqual({ peers: 2, lastSyncMs: 9, pending: true, text: "2 teammates · changes pending" });
    expect(syncSummary({ device: ME, team: "lab", advertised: [], peers: [peer("a", null, false)] }).text).toBe("1 teammate · nothing pending");
  });

  it("lets only another live device be removed, and says what removal does", () => {
    const m: MemberView = { name: "bo", email: "", removed: false, devices: [device(BO, false), { ...device("cc".repeat(32), false), removed: true }, device("dd".repeat(32), false)] };
    expect(removable(m, BO)).toBe(true);
    expect(removable(m, "cc".repeat(32))).toBe(false);
    expect(removable({ ...m, devices: [device(ME, true)] }, ME)).toBe(false);
    expect(removable(m, "ee")).toBe(false);
    expect(removeQuestion(m, BO)).toBe("Remove bo's device bbbbbbbbbb from the team? It will be refused and sent nothing new; this is recorded in the audit trail. Their 1 other device stays on the team.");
  });

  it("shows the server's SVG as an image, never as markup", () => {
    const url = svgDataUrl('<svg><script>alert(1)</script></svg>');
    expect(url.startsWith("data:image/svg+xml;charset=utf-8,")).toBe(true);
    expect(url).not.toContain("<");
    expect(decodeURIComponent(url.split(",")[1])).toBe("<svg><script>alert(1)</script></svg>");
  });
});

describe("the Team page", () => {
  it("creates a team, then invites with the ticket, a copy button and its QR code", async () => {
    const root = await mount();
    expect(root.querySelector('[data-testid="team-create-form"]')).not.toBeNull();
    expect((root.querySelector('[data-testid="team-create"]') as HTMLButtonElement).disabled).toBe(true);
    await type(root, "team-create-name", "lab");
    await type(root, "team-create-email", "ana@example.org");
    await click(root, "team-create");
    expect(calls).toContain('teamCreate {"name":"lab","email":"ana@example.org"}');
    expect(text(root, "team-name")).toBe("lab");
    expect(text(root, "team-members")).toContain("ana@example.org");
    expect(text(root, "team-members")).toContain("this device");
    expect(root.querySelector('[data-testid="team-remove"]')).toBeNull();

    await click(root, "team-invite-new");
    expect(calls).toContain('teamInvite {"ttl_s":86400}');
    expect((root.querySelector('[data-testid="team-ticket-text"]') as HTMLTextAreaElement).value).toBe(GOOD);
    const qr = root.querySelector<HTMLImageElement>('[data-testid="team-qr"]')!;
    expect(qr.src.startsWith("data:image/svg+xml")).toBe(true);
    expect(decodeURIComponent(qr.src)).toContain('fill="#000000"');
    expect(text(root, "team-expires")).toMatch(/^expires in 2[34] h/);
    const writeText = vi.fn(async () => {});
    Object.defineProperty(navigator, "clipboard", { value: { writeText }, configurable: true });
    await click(root, "team-copy");
    expect(writeText).toHaveBeenCalledWith(GOOD);
    expect(text(root, "team-invite-note")).toContain("copied");
  });

  it("refuses a pasted ticket that cannot be one without calling, then joins and shows the members", async () => {
    const root = await mount();
    await type(root, "team-ticket", "hello");
    await click(root, "team-join");
    expect(text(root, "team-problem")).toBe("a ticket starts with 'cairn1'");
    expect(calls.some((c) => c.startsWith("teamJoin"))).toBe(false);

    joinScript = [{ state: "joining", inviter: BO, since_ms: Date.now() }, { state: "joined", team: "lab", inviter: BO, at_ms: 1, docs_changed: 4, points_received: 0, blobs_received: 0 }];
    await type(root, "team-ticket", `  ${GOOD}\n`);
    await type(root, "team-join-email", "ana@example.org");
    await click(root, "team-join");
    expect(calls).toContain(`teamJoin {"ticket":"${GOOD}","email":"ana@example.org"}`);
    expect(text(root, "join-status")).toMatch(/^Joining… connecting to the inviter/);
    expect((root.querySelector('[data-testid="team-join"]') as HTMLButtonElement).disabled).toBe(true);
    await waitFor("the team", () => text(root, "team-name") === "lab");
    expect(text(root, "join-status")).toBe("Joined team 'lab': 4 documents, 0 metric points and 0 files arrived.");
    const rows = [...root.querySelectorAll('[data-testid="team-device-row"]')].map((r) => r.textContent);
    expect(rows.length).toBe(2);
    expect(rows[0]).toContain("bo");
    expect(rows[1]).toContain("this device");
  });

  it("shows why a join failed and lets the user try again", async () => {
    const root = await mount();
    joinScript = [{ state: "failed", inviter: BO, at_ms: 1, code: "INVALID_ARGUMENT", message: "the peer refused: the invitation is not one this device issued, or it was already used" }];
    await type(root, "team-ticket", GOOD);
    await click(root, "team-join");
    await waitFor("the failure", () => (text(root, "join-status") ?? "").startsWith("Joining failed"));
    expect(text(root, "join-status")).toContain("already used");
    expect((root.querySelector('[data-testid="team-join"]') as HTMLButtonElement).disabled).toBe(false);
    expect(text(root, "team-name")).toBeNull();
  });

  it("removes a teammate's device only after the confirm, and shows the polled sync status", async () => {
    team = { name: "lab", created_by: ME, created_ms: 1 };
    members = [{ name: "ana", email: "", removed: false, devices: [device(ME, true)] }, { name: "bo", email: "bo@example.org", removed: false, devices: [device(BO, false)] }];
    peers = [{ id: BO, name: "bo", removed: false, addrs: [], last_seen_ms: 1_700_000_000_000, last_sync_ms: 1_700_000_000_000, last_error: null, last_sent: 1, last_received: 1, pending: true }];
    const root = await mount();
    expect(text(root, "team-sync-summary")).toContain("1 teammate · changes pending");
    expect(text(root, "team-sync")).toContain("yes");

    const confirm = vi.spyOn(window, "confirm").mockReturnValueOnce(false).mockReturnValueOnce(true);
    await click(root, "team-remove");
    expect(confirm).toHaveBeenCalledOnce();
    expect(calls.some((c) => c.startsWith("teamRemove"))).toBe(false);
    await click(root, "team-remove");
    expect(calls).toContain(`teamRemove ${BO}`);
    const bo = [...root.querySelectorAll('[data-testid="team-device-row"]')][1];
    expect(bo.textContent).toContain("removed");
    expect(bo.querySelector('[data-testid="team-remove"]')).toBeNull();
  });
});
