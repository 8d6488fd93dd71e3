//! Cairn's peer sync: teams without a server.
//!
//! What this crate is:
//! - transport-free sync sessions ([`session`]) over any ordered byte stream, framed by
//!   [`wire`]: the catalog's automerge docs (only those whose heads differ, with the per-peer
//!   sync state persisted by the catalog), metric series and trace logs by high-water mark
//!   (sealed chunks as stored, the rest as points or entries), audit chains by length and head
//!   (`cairn-audit` stores what follows and keeps forks, edits and forgeries as evidence),
//!   artifact blobs verified against their BLAKE3 before they are stored;
//! - which blobs are live and may travel ([`live`]), and signed purge tombstones that take a
//!   blob off every device ([`purge`]);
//! - the roster ([`roster`]) in the team doc, invitations ([`ticket`]) and the device key
//!   ([`identity`]);
//! - the iroh adapter ([`node`]): one offline-by-default endpoint per device, sync and join by
//!   ALPN on one router, access control before any data moves, a doorbell and periodic pull;
//! - the local ledger of peers ([`ledger`]) behind `cairn sync status`.
//!
//! What it is not: it has no business rules about runs (the catalog merges, `cairn-core`
//! validates what users write), reads no configuration and never reaches the internet unless a
//! caller configures relays or discovery (nothing here does).

mod error;
pub mod fetch;
pub mod identity;
pub mod idle;
pub mod ledger;
pub mod live;
pub mod node;
pub mod purge;
pub mod roster;
pub mod session;
pub mod store;
pub mod ticket;
pub mod wire;

use std::time::Duration;

pub use error::Error;
pub use fetch::FetchReport;
pub use iroh::SecretKey;
pub use ledger::PeerRecord;
pub use node::{Node, NodeConfig};
pub use session::{Link, SessionReport, run_session};
pub use store::{SharedStores, StorePaths, Stores};
pub use ticket::Ticket;

/// How long an invitation stays valid by default.
pub const INVITE_TTL: Duration = Duration::from_secs(24 * 3600);

/// Issues an invitation: a fresh secret whose hash is kept in the ledger (the secret itself
/// only in the ticket), with this device's id and `addrs` (or the addresses its always-on node
/// last advertised).
pub fn invite(
    stores: &mut Stores,
    secret_key: &SecretKey,
    addrs: &[std::net::SocketAddr],
    ttl: Duration,
) -> Result<Ticket, Error> {
    Ok(invite_until(stores, secret_key, addrs, ttl)?.0)
}

/// [`invite`], also saying when the invitation expires (ms since the epoch).
pub fn invite_until(
    stores: &mut Stores,
    secret_key: &SecretKey,
    addrs: &[std::net::SocketAddr],
    ttl: Duration,
) -> Result<(Ticket, i64), Error> {
    let me = secret_key.public().to_string();
    if !roster::is_active_member(&mut stores.catalog, &me)? {
        return Err(Error::Team(
            "this device is not on a team roster: create a team or join one first".into(),
        ));
    }
    let addrs = if addrs.is_empty() {
        stores.ledger.advertised()?
    } else {
        addrs.to_vec()
    };
    if addrs.is_empty() {
        return Err(Error::Team(
            "no address to put in the ticket: start `cairn serve --sync` (it records where it listens) or pass an address".into(),
        ));
    }
    let secret: [u8; 32] = SecretKey::generate().to_bytes();
    let expires_ms = stores
        .ledger
        .add_invite(blake3::hash(&secret).as_bytes(), ttl)?;
    let ticket = Ticket {
        inviter: *secret_key.public().as_bytes(),
        addrs,
        secret,
    };
    Ok((ticket, expires_ms))
}

/// One peer as `cairn sync status` and the API show it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PeerStatus {
    pub id: String,
    /// The person, from the roster (empty for a peer not on it).
    pub name: String,
    pub removed: bool,
    pub addrs: Vec<String>,
    pub last_seen_ms: Option<i64>,
    pub last_sync_ms: Option<i64>,
    pub last_error: Option<String>,
    pub last_sent: u64,
    pub last_received: u64,
    /// True when this device holds changes (catalog, metrics, traces or blobs) it had not when it last
    /// synced with the peer.
    pub pending: bool,
}

/// The sync status of a device: who it is, its team, its peers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncStatus {
    pub device: String,
    pub team: Option<String>,
    pub advertised: Vec<String>,
    pub peers: Vec<PeerStatus>,
}

/// Reads the status from the stores (no network).
pub fn status(stores: &mut Stores, me: &str) -> Result<SyncStatus, Error> {
    let team = roster::team(&mut stores.catalog)?.map(|t| t.name);
    let members = roster::members(&mut stores.catalog)?;
    // What this device holds, as a stamp (a few rows per doc, device and chain): read only when
    // some peer has a sync to compare it with.
    let mut stamp: Option<Vec<u8>> = None;
    let ledger = stores.ledger.peers()?;
    let mut peers = Vec::new();
    let mut ids: Vec<String> = members.iter().map(|m| m.id.clone()).collect();
    ids.extend(ledger.iter().map(|p| p.id.clone()));
    ids.sort();
    ids.dedup();
    for id in ids {
        if id == me {
            continue;
        }
        let m = members.iter().find(|m| m.id == id);
        let p = ledger.iter().find(|p| p.id == id);
        let mut addrs: Vec<String> = p.map(|p| p.addrs.clone()).unwrap_or_default();
        for a in m.map(|m| m.addrs.clone()).unwrap_or_default() {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        let pending = match p.and_then(|p| p.synced_stamp.as_deref()) {
            None => true,
            Some(synced) => {
                if stamp.is_none() {
                    stamp = Some(stores.stamp()?);
                }
                stamp.as_deref() != Some(synced)
            }
        };
        peers.push(PeerStatus {
            id: id.clone(),
            name: m.map(|m| m.name.clone()).unwrap_or_default(),
            removed: m.is_some_and(|m| m.removed),
            addrs,
            last_seen_ms: p.and_then(|p| p.last_seen_ms),
            last_sync_ms: p.and_then(|p| p.last_sync_ms),
            last_error: p.and_then(|p| p.last_error.clone()),
            last_sent: p.map_or(0, |p| p.last_sent),
            last_received: p.map_or(0, |p| p.last_received),
            pending,
        });
    }
    Ok(SyncStatus {
        device: me.to_owned(),
        team,
        advertised: stores
            .ledger
            .advertised()?
            .iter()
            .map(|a| a.to_string())
            .collect(),
        peers,
    })
}
