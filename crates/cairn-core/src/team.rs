//! Teams and peer sync for a workspace: the device key (`device.key`), the roster, invitations,
//! the sync status front ends show, and the sync node they run (`cairn serve --sync`, the
//! desktop app). The sync node opens its own handles on the workspace's stores, like any other
//! process writing to it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use cairn_artifacts::ArtifactStore;
use cairn_model::{ArtifactKind, BlobHash, RunId};
use cairn_sync::{StorePaths, identity, roster};

pub use cairn_sync::node::MAX_ANNOUNCED;
pub use cairn_sync::roster::{Member, TeamInfo};
pub use cairn_sync::{
    FetchReport, INVITE_TTL, Node, NodeConfig, SecretKey, SessionReport, SharedStores, Ticket,
};

/// One peer as `cairn sync status` and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct PeerStatus {
    /// The peer's endpoint id (hex).
    pub id: String,
    /// The person, from the roster (empty for a peer not on it).
    pub name: String,
    pub removed: bool,
    pub addrs: Vec<String>,
    pub last_seen_ms: Option<i64>,
    pub last_sync_ms: Option<i64>,
    pub last_error: Option<String>,
    /// Bytes sent and received in the last sync.
    pub last_sent: u64,
    pub last_received: u64,
    /// True when this device holds changes it had not when it last synced with the peer.
    pub pending: bool,
}

/// The sync status of a device: who it is, its team, its peers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct SyncStatus {
    /// This device's endpoint id (hex).
    pub device: String,
    pub team: Option<String>,
    /// Where this device's always-on node last listened.
    pub advertised: Vec<String>,
    pub peers: Vec<PeerStatus>,
}

impl From<cairn_sync::SyncStatus> for SyncStatus {
    fn from(s: cairn_sync::SyncStatus) -> SyncStatus {
        SyncStatus {
            device: s.device,
            team: s.team,
            advertised: s.advertised,
            peers: s
                .peers
                .into_iter()
                .map(|p| PeerStatus {
                    id: p.id,
                    name: p.name,
                    removed: p.removed,
                    addrs: p.addrs,
                    last_seen_ms: p.last_seen_ms,
                    last_sync_ms: p.last_sync_ms,
                    last_error: p.last_error,
                    last_sent: p.last_sent,
                    last_received: p.last_received,
                    pending: p.pending,
                })
                .collect(),
        }
    }
}

use crate::{Error, Stores};

/// The device key's file in the workspace (mode 0600).
const DEVICE_KEY: &str = "device.key";

impl Stores {
    fn sync_paths(&self) -> StorePaths {
        StorePaths::in_workspace(self.dir())
    }

    fn sync_stores(&self) -> Result<cairn_sync::Stores, Error> {
        let mut s = cairn_sync::Stores::open(&self.sync_paths(), self.user())?;
        // The roster's changes name this device as their author too.
        if let Ok(key) = self.device_key() {
            s.catalog.set_author(*key.public().as_bytes());
        }
        Ok(s)
    }

    pub(crate) fn device_key_path(&self) -> PathBuf {
        self.dir().join(DEVICE_KEY)
    }

    /// This device's secret key, created on first use.
    pub fn device_key(&self) -> Result<SecretKey, Error> {
        Ok(identity::load_or_create_key(&self.device_key_path())?)
    }

    /// This device's endpoint id (hex): its identity on the roster.
    pub fn device_id(&self) -> Result<String, Error> {
        Ok(self.device_key()?.public().to_string())
    }

    /// Creates a team with this device (owned by the workspace user) as its first member.
    pub fn team_create(&mut self, name: &str, email: &str) -> Result<TeamInfo, Error> {
        let me = self.device_id()?;
        let user = self.user().to_owned();
        let mut s = self.sync_stores()?;
        let team = roster::create(&mut s.catalog, name, &me, &user, email)?;
        self.record_event(
            self.draft(cairn_audit::kind::TEAM_CREATED)
                .subject(format!("member:{me}"))
                .field("team", name)
                .field("member", user)
                .field("device", me),
        )?;
        Ok(team)
    }

    /// The team this workspace belongs to, if any.
    pub fn team(&mut self) -> Result<Option<TeamInfo>, Error> {
        // The workspace's own catalog handle: asking opens no other store (the desktop asks at
        // every start, team or not).
        Ok(roster::team(self.catalog_mut())?)
    }

    /// Every device on the roster, removed ones included.
    pub fn team_members(&mut self) -> Result<Vec<Member>, Error> {
        Ok(roster::members(self.catalog_mut())?)
    }

    /// Removes a member (by id prefix, name or email): refused from now on, sent nothing new.
    pub fn team_remove(&mut self, who: &str) -> Result<Member, Error> {
        let me = self.device_id()?;
        let mut s = self.sync_stores()?;
        let m = roster::find(&mut s.catalog, who)?;
        if m.id == me {
            return Err(Error::Invalid(
                "a device cannot remove itself from the team".into(),
            ));
        }
        if m.removed {
            // A second removal would move the time after which its signatures are flagged.
            return Err(Error::Conflict(format!(
                "device {} ({}) is already removed",
                &m.id[..m.id.len().min(12)],
                m.name
            )));
        }
        let removed = roster::remove(&mut s.catalog, who, &me)?;
        self.record_event(
            self.draft(cairn_audit::kind::MEMBER_REMOVED)
                .subject(format!("member:{}", removed.id))
                .field("member", removed.name.clone())
                .field("device", removed.id.clone())
                .field(
                    "removed_ms",
                    removed.removed_ms.unwrap_or_default().to_string(),
                ),
        )?;
        Ok(removed)
    }

    /// Issues a one-time invitation ticket carrying `addrs` (or where this device's always-on
    /// node last listened). Only the secret's hash is kept.
    pub fn team_invite(&mut self, addrs: &[SocketAddr], ttl: Duration) -> Result<String, Error> {
        Ok(self.team_invitation(addrs, ttl)?.0.encode())
    }

    /// [`Stores::team_invite`]'s ticket, and when it expires (ms).
    pub(crate) fn team_invitation(
        &mut self,
        addrs: &[SocketAddr],
        ttl: Duration,
    ) -> Result<(Ticket, i64), Error> {
        let key = self.device_key()?;
        let mut s = self.sync_stores()?;
        Ok(cairn_sync::invite_until(&mut s, &key, addrs, ttl)?)
    }

    /// The sync status: this device, its team, each peer (last seen, last sync, what is
    /// pending). Reads local state only; serialisable for the API and the UI.
    pub fn sync_status(&mut self) -> Result<SyncStatus, Error> {
        let me = self.device_id()?;
        let mut s = self.sync_stores()?;
        Ok(cairn_sync::status(&mut s, &me)?.into())
    }

    /// The blobs `run`'s artifacts need that this device does not hold: sync sends blobs up to
    /// 8 MiB eagerly, larger ones are fetched on demand with [`Node::fetch_blobs`]. A directory's
    /// files are listed once its manifest is here, so fetch, then ask again.
    pub fn missing_artifact_blobs(&self, run: RunId) -> Result<Vec<BlobHash>, Error> {
        let view = self.run(run)?;
        let store = ArtifactStore::open(&self.sync_paths().artifacts)?;
        let mut out = Vec::new();
        for a in view.run.artifacts.values() {
            if !store.contains(&a.hash) {
                out.push(a.hash);
            } else if a.kind == ArtifactKind::Dir {
                for e in store.manifest(&a.hash)?.entries {
                    if !store.contains(&e.hash) {
                        out.push(e.hash);
                    }
                }
            }
        }
        out.sort_by_key(|h| h.0);
        out.dedup();
        Ok(out)
    }

    /// What this device's sync node runs on: its key and its own handles on the stores.
    pub(crate) fn sync_node_parts(&self) -> Result<(SecretKey, SharedStores), Error> {
        Ok((self.device_key()?, SharedStores::new(self.sync_stores()?)))
    }
}

/// Parses an invitation ticket.
pub fn parse_ticket(text: &str) -> Result<Ticket, Error> {
    Ok(Ticket::decode(text)?)
}

// ---- the team as the API and the window show it ---------------------------------------------

pub use crate::sync_host::{JoinState, NodeView};

/// The longest team name, email or member reference the API takes (what an audit event's text
/// field holds).
pub const MAX_TEAM_TEXT: usize = cairn_audit::event::MAX_TEXT_LEN;
/// The longest ticket text the API takes (a ticket with dozens of addresses is far shorter).
pub const MAX_TICKET_LEN: usize = 4096;
/// How long an invitation may stay valid at most.
pub const MAX_INVITE_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// How long an invitation stays valid at least.
pub const MIN_INVITE_TTL: Duration = Duration::from_secs(60);

/// The team's own record.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TeamSummary {
    pub name: String,
    /// The device that created it (hex id).
    pub created_by: String,
    pub created_ms: i64,
}

/// This device and its team, with the hosted sync node and a join in flight.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TeamView {
    /// This device's id (hex): its identity on the roster.
    pub device: String,
    /// The workspace's user: the name this device joins or creates a team under.
    pub user: String,
    /// `null` while the workspace belongs to no team.
    pub team: Option<TeamSummary>,
    pub node: NodeView,
    pub join: JoinState,
}

/// One device on the roster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct DeviceView {
    /// The device's id (hex).
    pub id: String,
    /// Who added it (the adding device's member name, or its id when unknown).
    pub added_by: String,
    pub added_ms: i64,
    pub removed: bool,
    pub removed_ms: Option<i64>,
    /// Where it said teammates reach it.
    pub addrs: Vec<String>,
    /// True for the device this workspace is on.
    pub this_device: bool,
}

/// A member of the team: a person (by email, else name) and their devices.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct MemberView {
    pub name: String,
    pub email: String,
    /// True when every device of theirs was removed.
    pub removed: bool,
    /// Oldest first.
    pub devices: Vec<DeviceView>,
}

/// A team to create: its name, and the creator's email shown to teammates.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct NewTeam {
    pub name: String,
    pub email: Option<String>,
}

/// An invitation to issue: how long it stays valid (seconds; default a day, 60 s to 30 days).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub ttl_s: Option<u64>,
}

/// A one-time invitation for a teammate's device.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Invitation {
    /// The ticket to paste into `cairn team join` or a teammate's window (`cairn1…`).
    pub ticket: String,
    /// When it stops being accepted (ms since the epoch).
    pub expires_ms: i64,
    /// Where the joiner will dial this device (what the ticket carries).
    pub addrs: Vec<String>,
    /// The ticket as a QR code: a standalone SVG document (black modules on white).
    pub qr_svg: String,
}

/// A ticket to join a team with, and the joiner's email shown to teammates.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct JoinRequest {
    pub ticket: String,
    pub email: Option<String>,
}

/// A device to remove from the team: its id (or a unique prefix), or the member's name or
/// email when they have one device.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct MemberRef {
    pub member: String,
}

/// Refuses text longer than `max` bytes, or with control characters, naming the field.
fn bounded<'a>(field: &str, text: &'a str, max: usize) -> Result<&'a str, Error> {
    if text.len() > max {
        return Err(Error::Invalid(format!(
            "the {field} is {} bytes long; at most {max}",
            text.len()
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "the {field} holds a control character"
        )));
    }
    Ok(text)
}

/// The ticket as a QR code, an SVG document.
pub fn ticket_qr_svg(ticket: &str) -> Result<String, Error> {
    let code = qrcode::QrCode::with_error_correction_level(ticket, qrcode::EcLevel::M)
        .map_err(|e| Error::Invalid(format!("the ticket does not fit a QR code: {e}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

impl crate::Workspace {
    /// This device, its team, the hosted sync node and where a join through the API stands.
    pub fn team_view(&self) -> Result<TeamView, Error> {
        Ok(TeamView {
            device: self.device_id()?,
            user: self.user().to_owned(),
            team: self.team()?.map(|t| TeamSummary {
                name: t.name,
                created_by: t.created_by,
                created_ms: t.created_ms,
            }),
            node: self.hosted_node_view(),
            join: self.hosted_join_state(),
        })
    }

    /// Creates a team (as [`crate::Workspace::team_create`], which records the signed
    /// `team.created` event) and starts the hosted sync node, so the window can invite at once.
    pub fn team_create_view(&self, r: &NewTeam) -> Result<TeamView, Error> {
        let name = bounded("team name", r.name.trim(), MAX_TEAM_TEXT)?;
        if name.is_empty() {
            return Err(Error::Invalid("a team needs a name".into()));
        }
        let email = bounded(
            "email",
            r.email.as_deref().unwrap_or("").trim(),
            MAX_TEAM_TEXT,
        )?;
        self.team_create(name, email)?;
        if let Err(e) = self.ensure_hosted_node() {
            // The team exists; the node can start with the next invitation.
            tracing::warn!(error = %e, "the sync node did not start");
        }
        self.team_view()
    }

    /// Issues a one-time invitation carrying where the hosted sync node listens (or, with no
    /// node hosted here, where `cairn serve --sync` last listened), with its QR code.
    pub fn team_invitation(&self, r: &InviteRequest) -> Result<Invitation, Error> {
        let ttl = match r.ttl_s {
            None => INVITE_TTL,
            Some(s) => {
                let ttl = Duration::from_secs(s);
                if !(MIN_INVITE_TTL..=MAX_INVITE_TTL).contains(&ttl) {
                    return Err(Error::Invalid(format!(
                        "an invitation lasts from {} to {} seconds; got {s}",
                        MIN_INVITE_TTL.as_secs(),
                        MAX_INVITE_TTL.as_secs()
                    )));
                }
                ttl
            }
        };
        if self.team()?.is_none() {
            return Err(Error::Invalid(
                "this workspace belongs to no team: create one or join one first".into(),
            ));
        }
        let addrs = match self.ensure_hosted_node()? {
            Some(addrs) if addrs.is_empty() => {
                return Err(Error::Invalid(
                    "this device's sync node listens on every interface and announces no \
                     address a teammate can dial: give it one (`cairn serve --sync --advertise \
                     ADDR`, CAIRN_SYNC_ADVERTISE for the desktop app)"
                        .into(),
                ));
            }
            Some(addrs) => addrs,
            None => Vec::new(),
        };
        let (ticket, expires_ms) = self.write("team_invite", |s| s.team_invitation(&addrs, ttl))?;
        let text = ticket.encode();
        Ok(Invitation {
            qr_svg: ticket_qr_svg(&text)?,
            ticket: text,
            expires_ms,
            addrs: ticket.addrs.iter().map(ToString::to_string).collect(),
        })
    }

    /// The roster as members (people) and their devices, removed ones included and flagged.
    pub fn team_member_views(&self) -> Result<Vec<MemberView>, Error> {
        let me = self.device_id()?;
        let mut devices = self.team_members()?;
        devices.sort_by(|a, b| a.added_ms.cmp(&b.added_ms).then(a.id.cmp(&b.id)));
        let name_of = |id: &str| {
            devices
                .iter()
                .find(|m| m.id == id)
                .map_or_else(|| id.to_owned(), |m| m.name.clone())
        };
        let mut out: Vec<MemberView> = Vec::new();
        for m in &devices {
            let device = DeviceView {
                id: m.id.clone(),
                added_by: name_of(&m.added_by),
                added_ms: m.added_ms,
                removed: m.removed,
                removed_ms: m.removed_ms,
                addrs: m.addrs.clone(),
                this_device: m.id == me,
            };
            let same = |v: &MemberView| {
                if m.email.is_empty() {
                    v.email.is_empty() && v.name == m.name
                } else {
                    v.email == m.email
                }
            };
            match out.iter_mut().find(|v| same(v)) {
                Some(v) => v.devices.push(device),
                None => out.push(MemberView {
                    name: m.name.clone(),
                    email: m.email.clone(),
                    removed: false,
                    devices: vec![device],
                }),
            }
        }
        for v in &mut out {
            v.removed = v.devices.iter().all(|d| d.removed);
        }
        Ok(out)
    }

    /// Removes a device from the team (as [`crate::Workspace::team_remove`], which records the
    /// signed `member.removed` event); answers the roster after it.
    pub fn team_remove_view(&self, r: &MemberRef) -> Result<Vec<MemberView>, Error> {
        let who = bounded("member", r.member.trim(), MAX_TEAM_TEXT)?;
        if who.is_empty() {
            return Err(Error::Invalid("name the member to remove".into()));
        }
        self.team_remove(who)?;
        self.team_member_views()
    }

    /// Starts joining the team a ticket invites to, through the hosted sync node, in the
    /// background (dialling the inviter and the first sync may take a while); the window polls
    /// [`TeamView::join`]. A ticket that does not decode is refused at once, naming what is wrong
    /// with it; one the inviter refuses (expired, already used) ends the join as failed with the
    /// inviter's reason.
    pub fn team_join(&self, r: &JoinRequest) -> Result<JoinState, Error> {
        let text = r.ticket.trim();
        if text.is_empty() {
            return Err(Error::Invalid(
                "paste an invitation ticket (cairn1…)".into(),
            ));
        }
        if text.len() > MAX_TICKET_LEN {
            return Err(Error::Invalid(format!(
                "the ticket is {} characters long; a ticket is at most {MAX_TICKET_LEN}",
                text.len()
            )));
        }
        let ticket = parse_ticket(text)?;
        let email = bounded(
            "email",
            r.email.as_deref().unwrap_or("").trim(),
            MAX_TEAM_TEXT,
        )?;
        if ticket.addrs.is_empty() {
            return Err(Error::Invalid(
                "invitation ticket: it carries no address to dial the inviter at".into(),
            ));
        }
        let key = self.read("device_key", |s| s.device_key())?;
        if ticket.inviter == *key.public().as_bytes() {
            return Err(Error::Invalid(
                "invitation ticket: it is this device's own invitation; open it on the \
                 teammate's device"
                    .into(),
            ));
        }
        if let Some(team) = self.team()? {
            return Err(Error::Conflict(format!(
                "this workspace already belongs to team '{}'; a workspace joins one team",
                team.name
            )));
        }
        self.start_join(ticket, email.to_owned())
    }
}
