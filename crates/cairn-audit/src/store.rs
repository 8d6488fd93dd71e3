//! [`AuditStore`]: the chains this device holds (its own and every peer's), in SQLite.
//!
//! Tables: `events` (one row per event, keyed by device and sequence number, never updated or
//! deleted by this code), `subjects` (which events concern which record, for `audit log
//! --model/--run` and trails), `heads` (each chain's length and last hash, what sync compares)
//! and `conflicts` (events a peer offered that rewrite, fork or mis-sign a chain held here: kept
//! as evidence, never applied).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::error::db;
use crate::event::{DeviceKey, Draft, Event, GENESIS, seal, short};
use crate::verify::{Problem, check_many};

const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS events (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash TEXT NOT NULL,
    prev TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    member TEXT NOT NULL,
    kind TEXT NOT NULL,
    subjects TEXT NOT NULL,
    fields TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_at ON events(at_ms);
CREATE TABLE IF NOT EXISTS subjects (
    subject TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (subject, at_ms, device, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (
    device TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    head TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS conflicts (
    device TEXT NOT NULL,
    seq INTEGER NOT NULL,
    offered TEXT NOT NULL,
    held TEXT,
    problem TEXT NOT NULL,
    source TEXT NOT NULL,
    why TEXT NOT NULL,
    seen_ms INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (device, seq, offered)
) WITHOUT ROWID;
"#;

/// A chain's length and last event's hash: what peers compare to sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub device: String,
    pub count: u64,
    pub head: String,
}

/// An event a peer offered that this store refused, and why: a rewrite of a held event (a
/// fork), an event that does not follow the held chain, or a bad signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    /// A fork (a rewrite, or an event that does not follow), a gap or a bad signature.
    pub problem: Problem,
    pub device: String,
    pub seq: u64,
    /// The offered event's hash.
    pub offered: String,
    /// The hash held at that place, if any.
    pub held: Option<String>,
    /// Who offered it (a peer's device id, or a bundle).
    pub source: String,
    pub why: String,
    pub seen_ms: i64,
}

/// What [`AuditStore::receive`] did with a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    pub stored: u64,
    pub duplicates: u64,
    /// Refused and kept as evidence.
    pub conflicts: Vec<Conflict>,
    /// Refused for arriving ahead of a missing event (nothing is kept; sync sends in order).
    pub gaps: u64,
}

/// Which events [`AuditStore::log`] lists (newest first).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Events about any of these records (`run:<id>`, `model:<name>`, …); empty: every event.
    pub subjects: Vec<String>,
    /// A person's events.
    pub member: Option<String>,
    pub device: Option<String>,
    pub since_ms: Option<i64>,
    pub kinds: Vec<String>,
    pub limit: usize,
}

#[derive(Debug)]
pub struct AuditStore {
    conn: Connection,
    path: PathBuf,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl AuditStore {
    /// Opens or creates the audit database: WAL, `synchronous=NORMAL` (an acknowledged event
    /// survives a killed process), a 30 s busy timeout.
    pub fn open(path: &Path) -> Result<AuditStore, Error> {
        let open_err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(open_err)?;
        let _mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        Self::init(conn, path)
    }

    /// A private in-memory store (tests, bundle checks).
    pub fn open_in_memory() -> Result<AuditStore, Error> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path)
    }

    fn init(conn: Connection, path: &Path) -> Result<AuditStore, Error> {
        let open_err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(open_err)?;
        if found > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path: path.to_owned(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
        conn.execute_batch(SCHEMA).map_err(open_err)?;
        conn.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(open_err)?;
        Ok(AuditStore {
            conn,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `draft` to `key`'s chain: the next sequence number, the head's hash as `prev`,
    /// signed; stored before it returns.
    pub fn append(&mut self, key: &DeviceKey, draft: Draft) -> Result<Event, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin append"))?;
        let (count, head) = head_of(&tx, key.id())?;
        let event = seal(key, count, &head, draft);
        event.check_bounds()?;
        insert(&tx, &event, &event.hash())?;
        tx.commit().map_err(db("commit append"))?;
        Ok(event)
    }

    /// Appends several drafts in one transaction (one commit for all of them).
    pub fn append_all(&mut self, key: &DeviceKey, drafts: Vec<Draft>) -> Result<Vec<Event>, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin append"))?;
        let out = append_in(&tx, key, drafts)?;
        tx.commit().map_err(db("commit append"))?;
        Ok(out)
    }

    /// Moves the chains of a store kept in a file of its own (`legacy`, the `audit.db` of
    /// workspaces made before the chains moved into `catalog.db`) into this one, then removes
    /// that file. Events already here are kept (a second process may have moved them first).
    /// Answers how many events were moved.
    pub fn adopt(&mut self, legacy: &Path) -> Result<u64, Error> {
        if !legacy.is_file() || legacy == self.path {
            return Ok(0);
        }
        let moving = |source| Error::Open {
            path: legacy.to_owned(),
            source,
        };
        self.conn
            .execute("ATTACH DATABASE ?1 AS legacy", [legacy.to_string_lossy()])
            .map_err(moving)?;
        let copied = (|| {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            let has_events: i64 = tx.query_row(
                "SELECT count(*) FROM legacy.sqlite_schema WHERE type = 'table' AND name = 'events'",
                [],
                |r| r.get(0),
            )?;
            let mut moved = 0;
            if has_events > 0 {
                moved = tx.execute(
                    "INSERT OR IGNORE INTO events SELECT * FROM legacy.events",
                    [],
                )?;
                tx.execute(
                    "INSERT OR IGNORE INTO subjects SELECT * FROM legacy.subjects",
                    [],
                )?;
                tx.execute(
                    "INSERT OR IGNORE INTO conflicts SELECT * FROM legacy.conflicts",
                    [],
                )?;
                // A chain held in both keeps the longer head (both are prefixes of one chain:
                // a device only ever appends).
                tx.execute(
                    "INSERT INTO heads SELECT * FROM legacy.heads WHERE true \
                     ON CONFLICT(device) DO UPDATE SET count = excluded.count, head = excluded.head \
                     WHERE excluded.count > heads.count",
                    [],
                )?;
            }
            tx.commit()?;
            Ok(moved as u64)
        })();
        self.conn
            .execute("DETACH DATABASE legacy", [])
            .map_err(moving)?;
        let moved = copied.map_err(moving)?;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = legacy.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::Io {
                        path: PathBuf::from(p),
                        source: e,
                    });
                }
            }
        }
        Ok(moved)
    }

    /// Stores what a peer (or a bundle) offers, in chain order: each event must be well formed,
    /// signed by the device it names, and follow the chain held here (next sequence number,
    /// `prev` = the held head). An event already held is a duplicate; one that differs from
    /// what is held at its place, or does not follow, is refused and kept as a [`Conflict`].
    pub fn receive(&mut self, events: &[Event], source: &str) -> Result<Received, Error> {
        let checks = check_many(events);
        let seen_ms = now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db("begin receive"))?;
        let mut heads: HashMap<String, (u64, String)> = HashMap::new();
        let mut gapped: HashSet<String> = HashSet::new();
        let mut out = Received::default();
        for (event, check) in events.iter().zip(checks) {
            let hash = check.hash.clone();
            let conflict = |problem: Problem, why: String, held: Option<String>| Conflict {
                problem,
                device: event.device.clone(),
                seq: event.seq,
                offered: hash.clone(),
                held,
                source: source.to_owned(),
                why,
                seen_ms,
            };
            if let Err(why) = check.result {
                let c = conflict(Problem::BadSignature, why, None);
                record_conflict(&tx, &c, event)?;
                out.conflicts.push(c);
                continue;
            }
            if !heads.contains_key(&event.device) {
                let h = head_of(&tx, &event.device)?;
                heads.insert(event.device.clone(), h);
            }
            let (count, head) = heads.get_mut(&event.device).expect("just inserted");
            if event.seq < *count {
                let held = hash_at(&tx, &event.device, event.seq)?;
                if held.as_deref() == Some(hash.as_str()) {
                    out.duplicates += 1;
                } else {
                    let c = conflict(
                        Problem::Fork,
                        format!(
                            "rewrites event {} of chain {}, held with another hash (a fork)",
                            event.seq,
                            short(&event.device)
                        ),
                        held,
                    );
                    record_conflict(&tx, &c, event)?;
                    out.conflicts.push(c);
                }
            } else if event.seq > *count {
                out.gaps += 1;
                if gapped.insert(event.device.clone()) {
                    let c = conflict(
                        Problem::Gap,
                        format!(
                            "offered event {} of chain {} while this peer holds 0..{count}: the events between were not offered (removed, or sent out of order)",
                            event.seq,
                            short(&event.device)
                        ),
                        None,
                    );
                    record_conflict(&tx, &c, event)?;
                    out.conflicts.push(c);
                }
            } else if event.prev != *head {
                let c = conflict(
                    Problem::Fork,
                    format!(
                        "does not follow chain {}: its prev is {}, the held event {} hashes to {} (a fork)",
                        short(&event.device),
                        short(&event.prev),
                        event.seq.saturating_sub(1),
                        short(head)
                    ),
                    Some(head.clone()),
                );
                record_conflict(&tx, &c, event)?;
                out.conflicts.push(c);
            } else {
                insert(&tx, event, &hash)?;
                *count += 1;
                *head = hash;
                out.stored += 1;
            }
        }
        tx.commit().map_err(db("commit receive"))?;
        Ok(out)
    }

    /// Every chain held here: its device, length and head.
    pub fn marks(&self) -> Result<Vec<Mark>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT device, count, head FROM heads ORDER BY device")
            .map_err(db("read heads"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(Mark {
                    device: r.get(0)?,
                    count: r.get::<_, i64>(1)? as u64,
                    head: r.get(2)?,
                })
            })
            .map_err(db("read heads"))?;
        rows.collect::<Result<_, _>>().map_err(db("read heads"))
    }

    /// Events `from..` of `device`'s chain, at most `limit`, in order.
    pub fn chain(&self, device: &str, from: u64, limit: usize) -> Result<Vec<Event>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM events e WHERE device = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3"
            ))
            .map_err(db("read chain"))?;
        let rows = stmt
            .query_map(params![device, from as i64, limit as i64], row_event)
            .map_err(db("read chain"))?;
        collect(rows)
    }

    /// The devices whose events are stored (from the events themselves, not the heads).
    pub fn devices(&self) -> Result<Vec<String>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "WITH RECURSIVE d(device) AS (SELECT min(device) FROM events \
                 UNION ALL SELECT (SELECT min(device) FROM events WHERE device > d.device) \
                 FROM d WHERE d.device IS NOT NULL) SELECT device FROM d WHERE device IS NOT NULL",
            )
            .map_err(db("list chains"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(db("list chains"))?;
        rows.collect::<Result<_, _>>().map_err(db("list chains"))
    }

    /// How many events are stored.
    pub fn count(&self) -> Result<u64, Error> {
        let n: i64 = self
            .conn
            .query_row("SELECT coalesce(sum(count), 0) FROM heads", [], |r| {
                r.get(0)
            })
            .map_err(db("count events"))?;
        Ok(n as u64)
    }

    /// Events matching `q`, newest first.
    pub fn log(&self, q: &Query) -> Result<Vec<Event>, Error> {
        let limit = if q.limit == 0 { 100 } else { q.limit } as i64;
        let mut sql = String::new();
        let mut args: Vec<rusqlite::types::Value> = Vec::new();
        if q.subjects.is_empty() {
            sql.push_str(&format!("SELECT {COLUMNS} FROM events e WHERE 1"));
        } else {
            let marks = vec!["?"; q.subjects.len()].join(", ");
            sql.push_str(&format!(
                "SELECT {COLUMNS} FROM events e WHERE EXISTS (SELECT 1 FROM subjects s \
                 WHERE s.subject IN ({marks}) AND s.device = e.device AND s.seq = e.seq)"
            ));
            args.extend(q.subjects.iter().map(|s| s.clone().into()));
        }
        if let Some(m) = &q.member {
            sql.push_str(" AND e.member = ?");
            args.push(m.clone().into());
        }
        if let Some(d) = &q.device {
            sql.push_str(" AND e.device = ?");
            args.push(d.clone().into());
        }
        if let Some(since) = q.since_ms {
            sql.push_str(" AND e.at_ms >= ?");
            args.push(since.into());
        }
        if !q.kinds.is_empty() {
            sql.push_str(&format!(
                " AND e.kind IN ({})",
                vec!["?"; q.kinds.len()].join(", ")
            ));
            args.extend(q.kinds.iter().map(|k| k.clone().into()));
        }
        sql.push_str(" ORDER BY e.at_ms DESC, e.device, e.seq DESC LIMIT ?");
        args.push(limit.into());
        let mut stmt = self.conn.prepare(&sql).map_err(db("search events"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), row_event)
            .map_err(db("search events"))?;
        collect(rows)
    }

    /// Events about `subject`, oldest first (at most `limit`).
    pub fn about(&self, subject: &str, limit: usize) -> Result<Vec<Event>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM subjects s JOIN events e ON e.device = s.device AND e.seq = s.seq \
                 WHERE s.subject = ?1 ORDER BY s.at_ms, s.device, s.seq LIMIT ?2",
            ))
            .map_err(db("events about a record"))?;
        let rows = stmt
            .query_map(params![subject, limit as i64], row_event)
            .map_err(db("events about a record"))?;
        collect(rows)
    }

    /// Offers refused so far (forks, rewrites, forged signatures), newest first.
    pub fn conflicts(&self) -> Result<Vec<Conflict>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT device, seq, offered, held, source, why, seen_ms, problem FROM conflicts \
                 ORDER BY seen_ms DESC, device, seq LIMIT 10000",
            )
            .map_err(db("read conflicts"))?;
        let rows = stmt
            .query_map([], |r| {
                let problem: String = r.get(7)?;
                Ok(Conflict {
                    problem: match problem.as_str() {
                        "fork" => Problem::Fork,
                        "gap" => Problem::Gap,
                        _ => Problem::BadSignature,
                    },
                    device: r.get(0)?,
                    seq: r.get::<_, i64>(1)? as u64,
                    offered: r.get(2)?,
                    held: r.get(3)?,
                    source: r.get(4)?,
                    why: r.get(5)?,
                    seen_ms: r.get(6)?,
                })
            })
            .map_err(db("read conflicts"))?;
        rows.collect::<Result<_, _>>().map_err(db("read conflicts"))
    }
}

const COLUMNS: &str =
    "e.device, e.seq, e.prev, e.at_ms, e.member, e.kind, e.subjects, e.fields, e.signature";

fn row_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Event, Error>> {
    let device: String = r.get(0)?;
    let seq = r.get::<_, i64>(1)? as u64;
    let subjects: String = r.get(6)?;
    let fields: String = r.get(7)?;
    let parsed = (|| {
        Ok::<_, serde_json::Error>((
            serde_json::from_str(&subjects)?,
            serde_json::from_str(&fields)?,
        ))
    })();
    let (subjects, fields) = match parsed {
        Ok(v) => v,
        Err(e) => {
            return Ok(Err(Error::Malformed(format!(
                "stored event {}#{seq} does not parse: {e}",
                short(&device)
            ))));
        }
    };
    Ok(Ok(Event {
        device,
        seq,
        prev: r.get(2)?,
        at_ms: r.get(3)?,
        member: r.get(4)?,
        kind: r.get(5)?,
        subjects,
        fields,
        signature: r.get(8)?,
    }))
}

fn collect(
    rows: impl Iterator<Item = rusqlite::Result<Result<Event, Error>>>,
) -> Result<Vec<Event>, Error> {
    rows.map(|r| r.map_err(db("read events"))?).collect()
}

/// Appends `drafts` to `key`'s chain inside `tx`, a transaction on a connection to the file that
/// holds the chains (the catalog's, so a change and the event that attests it commit together).
/// The tables must exist: open an [`AuditStore`] on that file first.
pub fn append_in(
    tx: &rusqlite::Transaction<'_>,
    key: &DeviceKey,
    drafts: Vec<Draft>,
) -> Result<Vec<Event>, Error> {
    let (mut count, mut head) = head_of(tx, key.id())?;
    let mut out = Vec::with_capacity(drafts.len());
    for draft in drafts {
        let event = seal(key, count, &head, draft);
        event.check_bounds()?;
        let hash = event.hash();
        insert(tx, &event, &hash)?;
        count += 1;
        head = hash;
        out.push(event);
    }
    Ok(out)
}

fn head_of(conn: &Connection, device: &str) -> Result<(u64, String), Error> {
    Ok(conn
        .prepare_cached("SELECT count, head FROM heads WHERE device = ?1")
        .map_err(db("read head"))?
        .query_row([device], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .optional()
        .map_err(db("read head"))?
        .unwrap_or_else(|| (0, GENESIS.to_owned())))
}

fn hash_at(conn: &Connection, device: &str, seq: u64) -> Result<Option<String>, Error> {
    conn.prepare_cached("SELECT hash FROM events WHERE device = ?1 AND seq = ?2")
        .map_err(db("read event"))?
        .query_row(params![device, seq as i64], |r| r.get(0))
        .optional()
        .map_err(db("read event"))
}

fn insert(conn: &Connection, e: &Event, hash: &str) -> Result<(), Error> {
    let subjects = serde_json::to_string(&e.subjects).unwrap_or_default();
    let fields = serde_json::to_string(&e.fields).unwrap_or_default();
    conn.prepare_cached(
        "INSERT INTO events (device, seq, hash, prev, at_ms, member, kind, subjects, fields, signature) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .map_err(db("store event"))?
    .execute(params![
        e.device,
        e.seq as i64,
        hash,
        e.prev,
        e.at_ms,
        e.member,
        e.kind,
        subjects,
        fields,
        e.signature
    ])
    .map_err(db("store event"))?;
    let mut subject = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO subjects (subject, at_ms, device, seq) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(db("store event subjects"))?;
    for s in &e.subjects {
        subject
            .execute(params![s, e.at_ms, e.device, e.seq as i64])
            .map_err(db("store event subjects"))?;
    }
    conn.prepare_cached(
        "INSERT INTO heads (device, count, head) VALUES (?1, ?2, ?3) \
         ON CONFLICT(device) DO UPDATE SET count = excluded.count, head = excluded.head",
    )
    .map_err(db("store head"))?
    .execute(params![e.device, e.seq as i64 + 1, hash])
    .map_err(db("store head"))?;
    Ok(())
}

fn record_conflict(conn: &Connection, c: &Conflict, e: &Event) -> Result<(), Error> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO conflicts (device, seq, offered, held, source, why, seen_ms, event, problem) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .map_err(db("store conflict"))?
    .execute(params![
        c.device,
        c.seq as i64,
        c.offered,
        c.held,
        c.source,
        c.why,
        c.seen_ms,
        serde_json::to_string(e).unwrap_or_default(),
        match c.problem {
            Problem::Fork => "fork",
            Problem::Gap => "gap",
            _ => "bad_signature",
        }
    ])
    .map_err(db("store conflict"))?;
    Ok(())
}
