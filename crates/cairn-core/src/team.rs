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
        let key = self.device_key()?;
        let mut s = self.sync_stores()?;
        Ok(cairn_sync::invite(&mut s, &key, addrs, ttl)?.encode())
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
