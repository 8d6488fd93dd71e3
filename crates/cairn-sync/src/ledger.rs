//! The peer ledger (`sync.db`, local to this device, never synced): peers this device has met,
//! where to reach them, how their last sync went; and the hashes of invitations it issued.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;

use crate::Error;

/// What this device knows of one peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PeerRecord {
    /// The peer's endpoint id (hex).
    pub id: String,
    /// Direct addresses to dial it at.
    pub addrs: Vec<String>,
    /// When a connection with it last succeeded (ms since the epoch).
    pub last_seen_ms: Option<i64>,
    /// When a sync session with it last completed.
    pub last_sync_ms: Option<i64>,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
    /// Bytes sent and received in the last session.
    pub last_sent: u64,
    pub last_received: u64,
    /// This side's stamp ([`crate::Stores::stamp`]) at the end of the last session (the column
    /// keeps its first name, `synced_digest`; a digest stored before stamps reads as a change,
    /// so such a peer shows pending until the next session).
    #[serde(skip)]
    pub synced_stamp: Option<Vec<u8>>,
}

/// The ledger's connection.
#[derive(Debug)]
pub struct Ledger {
    conn: Connection,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS peers (
    id TEXT PRIMARY KEY,
    addrs TEXT NOT NULL DEFAULT '[]',
    last_seen_ms INTEGER,
    last_sync_ms INTEGER,
    last_error TEXT,
    last_sent INTEGER NOT NULL DEFAULT 0,
    last_received INTEGER NOT NULL DEFAULT 0,
    synced_digest BLOB
);
CREATE TABLE IF NOT EXISTS local (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS invites (
    secret_hash BLOB PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
";

impl Ledger {
    pub fn open(path: &Path) -> Result<Ledger, Error> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Ledger { conn })
    }

    pub fn peers(&self) -> Result<Vec<PeerRecord>, Error> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, addrs, last_seen_ms, last_sync_ms, last_error, last_sent, last_received, synced_digest FROM peers ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
            let addrs: String = r.get(1)?;
            Ok(PeerRecord {
                id: r.get(0)?,
                addrs: serde_json::from_str(&addrs).unwrap_or_default(),
                last_seen_ms: r.get(2)?,
                last_sync_ms: r.get(3)?,
                last_error: r.get(4)?,
                last_sent: r.get::<_, i64>(5)?.max(0) as u64,
                last_received: r.get::<_, i64>(6)?.max(0) as u64,
                synced_stamp: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn peer(&self, id: &str) -> Result<Option<PeerRecord>, Error> {
        Ok(self.peers()?.into_iter().find(|p| p.id == id))
    }

    /// Records where `id` can be dialled (replacing what was known, unless `addrs` is empty).
    pub fn note_addrs(&self, id: &str, addrs: &[String]) -> Result<(), Error> {
        self.conn
            .execute("INSERT OR IGNORE INTO peers(id) VALUES (?1)", [id])?;
        if !addrs.is_empty() {
            self.conn.execute(
                "UPDATE peers SET addrs = ?2 WHERE id = ?1",
                params![
                    id,
                    serde_json::to_string(addrs).unwrap_or_else(|_| "[]".into())
                ],
            )?;
        }
        Ok(())
    }

    /// Records a completed session.
    pub fn note_synced(
        &self,
        id: &str,
        sent: u64,
        received: u64,
        stamp: &[u8],
    ) -> Result<(), Error> {
        let now = now_ms();
        self.conn
            .execute("INSERT OR IGNORE INTO peers(id) VALUES (?1)", [id])?;
        self.conn.execute(
            "UPDATE peers SET last_seen_ms = ?2, last_sync_ms = ?2, last_error = NULL, last_sent = ?3, last_received = ?4, synced_digest = ?5 WHERE id = ?1",
            params![id, now, sent as i64, received as i64, stamp],
        )?;
        Ok(())
    }

    /// Records a failed attempt.
    pub fn note_failure(&self, id: &str, error: &str) -> Result<(), Error> {
        self.conn
            .execute("INSERT OR IGNORE INTO peers(id) VALUES (?1)", [id])?;
        self.conn.execute(
            "UPDATE peers SET last_error = ?2 WHERE id = ?1",
            params![id, error],
        )?;
        Ok(())
    }

    /// Records the addresses this device's always-on node listens at (what tickets carry).
    pub fn set_advertised(&self, addrs: &[std::net::SocketAddr]) -> Result<(), Error> {
        let text: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        self.conn.execute(
            "INSERT OR REPLACE INTO local(key, value) VALUES ('advertised', ?1)",
            [serde_json::to_string(&text).unwrap_or_else(|_| "[]".into())],
        )?;
        Ok(())
    }

    /// The addresses last recorded by [`Self::set_advertised`].
    pub fn advertised(&self) -> Result<Vec<std::net::SocketAddr>, Error> {
        let text: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM local WHERE key = 'advertised'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        let list: Vec<String> = text
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Ok(list.iter().filter_map(|a| a.parse().ok()).collect())
    }

    /// Stores the hash of a new invitation's secret; returns when it expires (ms).
    pub fn add_invite(&self, secret_hash: &[u8; 32], ttl: Duration) -> Result<i64, Error> {
        let now = now_ms();
        let expires = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        self.conn.execute(
            "INSERT INTO invites(secret_hash, created_ms, expires_ms) VALUES (?1, ?2, ?3)",
            params![&secret_hash[..], now, expires],
        )?;
        Ok(expires)
    }

    /// Uses up the invitation whose secret hashes to `secret_hash`, saying whether it admits
    /// the bearer. Either way it cannot be used again.
    pub fn take_invite(&self, secret_hash: &[u8; 32]) -> Result<InviteUse, Error> {
        let expires: Option<i64> = self
            .conn
            .query_row(
                "DELETE FROM invites WHERE secret_hash = ?1 RETURNING expires_ms",
                [&secret_hash[..]],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match expires {
            None => InviteUse::Unknown,
            Some(e) if e > now_ms() => InviteUse::Admitted,
            Some(e) => InviteUse::Expired { expires_ms: e },
        })
    }
}

/// What presenting an invitation's secret found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InviteUse {
    /// A live invitation: the bearer is admitted.
    Admitted,
    /// It was issued here but expired at `expires_ms`.
    Expired { expires_ms: i64 },
    /// Never issued here, or already used.
    Unknown,
}

impl InviteUse {
    /// Why the bearer is refused, in words the joiner sees; `None` when admitted.
    pub fn refusal(self) -> Option<String> {
        match self {
            InviteUse::Admitted => None,
            InviteUse::Expired { expires_ms } => {
                let ago = (now_ms() - expires_ms).max(0) / 60_000;
                Some(format!(
                    "the invitation expired {ago} min ago: ask the inviter for a new one"
                ))
            }
            InviteUse::Unknown => Some(
                "the invitation is not one this device issued, or it was already used: ask \
                 the inviter for a new one"
                    .to_owned(),
            ),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
