//! [`TraceStore`]: the SQLite side. The log (per-source tail rows sealed into chunks), the
//! transactions that append to it and project what they append into the index, and the reads
//! sync needs (high-water marks, sealed chunks, entries by position).
//!
//! Every write is one `BEGIN IMMEDIATE` transaction holding the log rows and their projection,
//! so an acknowledged append survives a crash whole and the index never disagrees with the log.
//! Reads run in one deferred transaction each (a consistent snapshot).

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::codec::{self, Sealed};
use crate::error::{DecodeError, Error};
use crate::model::{Entry, Span, TraceId};
use crate::project::{self, Batch, Stamp};
use crate::span_text;

const SCHEMA_VERSION: i64 = 3;

/// Pages the WAL grows to before a checkpoint copies them into the database (32 MiB of 4 KiB
/// pages).
const WAL_CHECKPOINT_PAGES: i64 = 8192;

/// Entries per sealed chunk.
pub const CHUNK_ENTRIES: usize = 1024;
/// A tail holding this many encoded bytes is sealed even when it has fewer entries (spans with
/// large inputs), so no chunk inflates to more than a few MiB.
pub const CHUNK_BYTES: usize = 4 << 20;
/// The shortest remainder of a large append sealed as a chunk of its own rather than kept as
/// tail rows (re-reading and deleting long tails costs more than a short chunk).
pub const MIN_CHUNK_ENTRIES: usize = 256;

const SCHEMA_V1: &str = "
CREATE TABLE meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
-- The log: one per writer (this store's own, and each peer's copy). `next_seq` is its length;
-- entries before `tail_start` are in chunks, the rest in `tail`.
CREATE TABLE sources (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    next_seq    INTEGER NOT NULL,
    tail_start  INTEGER NOT NULL
);
CREATE TABLE tail (
    source  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (source, seq)
) WITHOUT ROWID;
CREATE TABLE chunks (
    source     INTEGER NOT NULL,
    first_seq  INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    raw        INTEGER NOT NULL,   -- bytes of the entries before compression
    hash       BLOB NOT NULL,      -- BLAKE3 of `data`
    data       BLOB NOT NULL,
    PRIMARY KEY (source, first_seq)
) WITHOUT ROWID;

-- The index: what the log adds up to, kept in the transaction that appends.
CREATE TABLE traces (
    id                 INTEGER PRIMARY KEY,
    trace_id           TEXT NOT NULL UNIQUE,
    experiment         TEXT NOT NULL,
    request_time       INTEGER NOT NULL,   -- ms
    execution_ms       INTEGER,
    state              TEXT NOT NULL,
    name               TEXT,
    client_request_id  TEXT,
    request_preview    TEXT,
    response_preview   TEXT,
    run_id             TEXT,
    span_count         INTEGER NOT NULL DEFAULT 0,
    -- what the spans say, used where no client set the field
    span_experiment    TEXT,
    span_start         INTEGER,            -- ns
    span_end           INTEGER,            -- ns
    root_status        TEXT,
    root_name          TEXT,
    root_inputs        TEXT,
    root_outputs       TEXT
);
CREATE INDEX traces_by_time ON traces (experiment, request_time DESC, trace_id);
-- kind 0: trace fields, 1: metadata, 2: tags. A NULL value is a tombstone. The stamp (at, src,
-- seq) of the entry that wrote the row decides which of two writes is kept.
CREATE TABLE trace_kv (
    trace  INTEGER NOT NULL,
    kind   INTEGER NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT,
    at     INTEGER NOT NULL,
    src    TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (trace, kind, key)
) WITHOUT ROWID;
CREATE INDEX trace_kv_by_value ON trace_kv (kind, key, value);
CREATE TABLE spans (
    id        INTEGER PRIMARY KEY,
    trace     INTEGER NOT NULL,
    span_id   BLOB NOT NULL,
    parent    BLOB,
    name      TEXT NOT NULL,
    type      TEXT,
    status    TEXT NOT NULL,
    start_ns  INTEGER NOT NULL,
    end_ns    INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    src       TEXT NOT NULL,
    source    INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    UNIQUE (trace, span_id)
);
-- Substring search over spans' names and attributes (MLflow's `trace.text LIKE '%…%'`):
-- trigrams answer LIKE from the index.
CREATE VIRTUAL TABLE span_text USING fts5(text, tokenize = 'trigram', detail = 'none');
CREATE TABLE assessments (
    trace  INTEGER NOT NULL,
    id     TEXT NOT NULL,
    name   TEXT,
    kind   TEXT,
    value  TEXT,
    valid  INTEGER,
    body   TEXT,                           -- JSON; NULL is a tombstone
    at     INTEGER NOT NULL,
    src    TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (trace, id)
) WITHOUT ROWID;
CREATE TABLE trace_runs (
    run    TEXT NOT NULL,
    trace  INTEGER NOT NULL,
    PRIMARY KEY (run, trace)
) WITHOUT ROWID;
CREATE INDEX trace_runs_by_trace ON trace_runs (trace);
CREATE TABLE deleted (
    trace_id  TEXT PRIMARY KEY,
    at        INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 2: a trigram index over each trace's id, name and previews (the text search's
/// trace-level half, which was a scan of `traces`). Rows are `traces.id`, written by
/// `project::refresh`.
const SCHEMA_V2: &str = "
CREATE VIRTUAL TABLE trace_text USING fts5(text, tokenize = 'trigram', detail = 'none');
INSERT INTO trace_text (rowid, text)
    SELECT id, trace_id || char(10) || COALESCE(name, '') || char(10) || COALESCE(request_preview, '')
        || char(10) || COALESCE(response_preview, '') FROM traces;
UPDATE meta SET value = 2 WHERE name = 'schema_version';
";

/// Version 3: `span_text` holds one row per trace and append (its spans' texts and where each
/// starts; see [`crate::span_text`]) instead of one per span, its row ids naming the trace. The
/// version-2 rows (one per span, row id `spans.id`) are regrouped per trace by [`migrate_v3`].
/// Both text indexes merge their segments 16 at a time rather than FTS5's 4: each appending
/// transaction writes a segment, and at 1M spans merging them was a fifth of an ingest's CPU.
const SCHEMA_V3: &str = "
CREATE VIRTUAL TABLE span_text_v3 USING fts5(text, bounds UNINDEXED, tokenize = 'trigram', detail = 'none', columnsize = 0);
INSERT INTO span_text_v3 (span_text_v3, rank) VALUES ('automerge', 16);
INSERT INTO trace_text (trace_text, rank) VALUES ('automerge', 16);
";

/// A source of the log and how many entries it holds: its high-water mark for sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMark {
    pub source: String,
    pub count: u64,
}

/// A sealed chunk as stored: its position in its source, its compressed bytes and their BLAKE3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    pub first_seq: u64,
    pub count: u64,
    pub hash: Vec<u8>,
    pub data: Vec<u8>,
}

/// Space used by the log, for storage benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorageStats {
    pub chunk_entries: u64,
    /// Compressed bytes of the chunks.
    pub chunk_bytes: u64,
    /// Bytes of the chunks' entries before compression.
    pub raw_bytes: u64,
    pub tail_entries: u64,
    pub spans: u64,
    pub traces: u64,
}

/// A trace database: one SQLite connection. See the crate docs for the layout.
#[derive(Debug)]
pub struct TraceStore {
    pub(crate) conn: Connection,
    local: String,
}

/// A source's row.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SourceRow {
    pub(crate) id: i64,
    pub(crate) next_seq: i64,
    pub(crate) tail_start: i64,
}

impl TraceStore {
    /// Opens (creating if needed) the trace database at `path`: WAL journal checkpointed every
    /// 32 MiB, `synchronous=NORMAL`, a 30 s busy timeout, schema
    /// created, upgraded or checked.
    #[tracing::instrument(err)]
    pub fn open(path: &Path) -> Result<TraceStore, Error> {
        let open_err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(open_err)?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(open_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(path = %path.display(), mode, "trace database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        // A checkpoint fsyncs the database and copies every page the WAL holds; at SQLite's
        // default (1,000 pages) an ingest of OTLP batches spent a fifth of its time waiting for
        // them, copying the same hot index pages again and again.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)
            .map_err(open_err)?;
        Self::init(conn, path)
    }

    /// A private in-memory database (tests, previews).
    pub fn open_in_memory() -> Result<TraceStore, Error> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path)
    }

    fn init(mut conn: Connection, path: &Path) -> Result<TraceStore, Error> {
        let open_err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        conn.set_prepared_statement_cache_capacity(64);
        span_text::register(&conn).map_err(open_err)?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(open_err)?;
        let has_meta: bool = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(open_err)?
            > 0;
        let version: Option<i64> = if has_meta {
            tx.query_row(
                "SELECT value FROM meta WHERE name = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(open_err)?
        } else {
            None
        };
        let local = match version {
            None => {
                tx.execute_batch(SCHEMA_V1).map_err(open_err)?;
                tx.execute_batch(SCHEMA_V2).map_err(open_err)?;
                migrate_v3(&tx).map_err(open_err)?;
                // This store's own log: a name no other store has, so peers keep it apart.
                let local = uuid::Uuid::now_v7().simple().to_string();
                tx.execute(
                    "INSERT INTO meta (name, value) VALUES ('schema_version', ?1), ('local_source', ?2)",
                    params![SCHEMA_VERSION, local],
                )
                .map_err(open_err)?;
                tx.execute(
                    "INSERT INTO sources (name, next_seq, tail_start) VALUES (?1, 0, 0)",
                    [&local],
                )
                .map_err(open_err)?;
                local
            }
            Some(found) if found > SCHEMA_VERSION => {
                return Err(Error::SchemaTooNew {
                    path: path.to_owned(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(found) => {
                if found < 2 {
                    tx.execute_batch(SCHEMA_V2).map_err(open_err)?;
                }
                if found < 3 {
                    migrate_v3(&tx).map_err(open_err)?;
                }
                tx.query_row(
                    "SELECT value FROM meta WHERE name = 'local_source'",
                    [],
                    |r| r.get(0),
                )
                .map_err(open_err)?
            }
        };
        tx.commit().map_err(open_err)?;
        Ok(TraceStore { conn, local })
    }

    /// The name of this store's own log (what peers know its entries by).
    pub fn local_source(&self) -> &str {
        &self.local
    }

    /// Appends entries to this store's own log in one IMMEDIATE transaction and projects them
    /// into the index. Durable once it returns.
    pub fn append(&mut self, entries: &[Entry]) -> Result<(), Error> {
        if entries.is_empty() {
            return Ok(());
        }
        let encoded: Vec<Vec<u8>> = entries.iter().map(codec::entry_bytes).collect();
        let local = self.local.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("appending traces"))?;
        let src = source_row(&tx, &local)?.ok_or_else(|| Error::Corrupt {
            what: format!("source {local}"),
            reason: "this store's own log has no row".into(),
        })?;
        let first = src.next_seq;
        write_entries(&tx, src, &encoded)?;
        let mut batch = Batch::default();
        for (i, e) in entries.iter().enumerate() {
            let stamp = Stamp {
                at: e.at_ms,
                src: &local,
                source: src.id,
                seq: first + i as i64,
            };
            batch.apply(&tx, &stamp, e)?;
        }
        batch.finish(&tx)?;
        tx.commit().map_err(Error::db("committing traces"))
    }

    /// Every source of the log with its length, sorted by name: what a peer compares to learn
    /// which entries it lacks.
    pub fn marks(&self) -> Result<Vec<SourceMark>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT name, next_seq FROM sources WHERE next_seq > 0 ORDER BY name")
            .map_err(Error::db("listing sources"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(SourceMark {
                    source: r.get(0)?,
                    count: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                })
            })
            .map_err(Error::db("listing sources"))?;
        rows.collect::<Result<_, _>>()
            .map_err(Error::db("listing sources"))
    }

    /// The sealed chunks of `source` that start at or after entry `from`, in order, as stored:
    /// what sync sends instead of the entries they hold.
    pub fn sealed_chunks(&self, source: &str, from: u64) -> Result<Vec<SealedChunk>, Error> {
        let op = || format!("reading chunks of {source}");
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.first_seq, c.count, c.hash, c.data FROM chunks c JOIN sources s ON s.id = c.source \
                 WHERE s.name = ?1 AND c.first_seq >= ?2 ORDER BY c.first_seq",
            )
            .map_err(Error::db(op()))?;
        let rows = stmt
            .query_map(params![source, to_i64(from)], |r| {
                Ok(SealedChunk {
                    first_seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                    count: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    hash: r.get(2)?,
                    data: r.get(3)?,
                })
            })
            .map_err(Error::db(op()))?;
        rows.collect::<Result<_, _>>().map_err(Error::db(op()))
    }

    /// Entries `from..from + limit` of `source`, encoded, in order (from chunks or the tail).
    pub fn entries(&self, source: &str, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, Error> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(Error::db("reading entries"))?;
        let Some(src) = source_row(&tx, source)? else {
            return Ok(Vec::new());
        };
        let from = to_i64(from);
        let to = from
            .saturating_add(i64::try_from(limit).unwrap_or(i64::MAX))
            .min(src.next_seq);
        let mut out = Vec::new();
        let mut seq = from;
        let mut chunks = ChunkCache::default();
        while seq < to {
            out.push(read_entry(&tx, source, src, seq, &mut chunks, "sync")?);
            seq += 1;
        }
        Ok(out)
    }

    /// Appends a peer's entries to its log here, only if the log holds exactly `expected`
    /// entries now (each log has one writer, so a suffix is all a peer can add). Returns false,
    /// storing nothing, when it does not. Every entry is decoded (and so validated) before
    /// anything is stored.
    pub fn append_at(
        &mut self,
        source: &str,
        expected: u64,
        entries: &[Vec<u8>],
    ) -> Result<bool, Error> {
        self.check_peer_source(source)?;
        let decoded = decode_all(source, entries)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("appending a peer's traces"))?;
        let src = ensure_source(&tx, source)?;
        if u64::try_from(src.next_seq).ok() != Some(expected) {
            return Ok(false);
        }
        write_entries(&tx, src, entries)?;
        project_peer(&tx, source, src, &decoded)?;
        tx.commit()
            .map_err(Error::db("committing a peer's traces"))?;
        Ok(true)
    }

    /// Stores a peer's sealed chunk as it is (byte for byte, its hash its name) at the end of
    /// its log here, when the log ends exactly where the chunk starts. The chunk is verified
    /// and every entry decoded first; returns false, storing nothing, when it does not fit.
    pub fn append_chunk_at(&mut self, source: &str, chunk: &SealedChunk) -> Result<bool, Error> {
        self.check_peer_source(source)?;
        let raw =
            codec::open_chunk(&chunk.hash, &chunk.data, chunk.count).map_err(|e| Error::Peer {
                source_name: source.to_owned(),
                reason: format!("chunk at {}: {e}", chunk.first_seq),
            })?;
        let decoded = decode_all(source, &raw)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("storing a peer's chunk"))?;
        let src = ensure_source(&tx, source)?;
        if u64::try_from(src.next_seq).ok() != Some(chunk.first_seq) {
            return Ok(false);
        }
        if src.tail_start != src.next_seq {
            // Entries of this source already sit in the tail: keep the log in one form (a
            // chunk never follows tail rows) by storing these as entries too.
            write_entries(&tx, src, &raw)?;
        } else {
            let raw_len: usize = raw.iter().map(Vec::len).sum();
            insert_chunk(
                &tx,
                src.id,
                src.next_seq,
                &Sealed {
                    data: chunk.data.clone(),
                    hash: chunk.hash.as_slice().try_into().map_err(|_| Error::Peer {
                        source_name: source.to_owned(),
                        reason: "a chunk hash is not 32 bytes".into(),
                    })?,
                    raw: raw_len,
                },
                raw.len(),
            )?;
            let next = src.next_seq + raw.len() as i64;
            tx.prepare_cached("UPDATE sources SET next_seq = ?2, tail_start = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![src.id, next]))
                .map_err(Error::db("storing a peer's chunk"))?;
        }
        project_peer(&tx, source, src, &decoded)?;
        tx.commit()
            .map_err(Error::db("committing a peer's chunk"))?;
        Ok(true)
    }

    /// How many entries of `source`'s log this store holds (0 for a source it has not seen).
    pub fn source_count(&self, source: &str) -> Result<u64, Error> {
        Ok(source_row(&self.conn, source)?.map_or(0, |s| u64::try_from(s.next_seq).unwrap_or(0)))
    }

    /// A peer's sealed chunk of `source`'s log, as sync receives it: what this store already
    /// holds of it is passed over (another session may have brought it meanwhile; a log has one
    /// writer, so the overlap is the same entries), the rest stored — as the chunk itself when
    /// it starts where the log ends. A chunk starting past the log's end (a gap) is refused.
    /// Returns the entries stored.
    pub fn receive_chunk(&mut self, source: &str, chunk: &SealedChunk) -> Result<u64, Error> {
        self.check_peer_source(source)?;
        let at = self.source_count(source)?;
        if chunk.first_seq > at {
            return Err(gap(source, chunk.first_seq, at));
        }
        let end = chunk.first_seq.saturating_add(chunk.count);
        if end <= at {
            return Ok(0);
        }
        if chunk.first_seq == at {
            if self.append_chunk_at(source, chunk)? {
                return Ok(chunk.count);
            }
            return Err(gap(source, chunk.first_seq, self.source_count(source)?));
        }
        let raw =
            codec::open_chunk(&chunk.hash, &chunk.data, chunk.count).map_err(|e| Error::Peer {
                source_name: source.to_owned(),
                reason: format!("chunk at {}: {e}", chunk.first_seq),
            })?;
        let skip = usize::try_from(at - chunk.first_seq).unwrap_or(usize::MAX);
        self.receive_entries(source, at, &raw[skip.min(raw.len())..])
    }

    /// A peer's entries of `source`'s log continuing at `from`, as sync receives them: the
    /// overlap with what is here is passed over, a gap refused. Returns the entries stored.
    pub fn receive_entries(
        &mut self,
        source: &str,
        from: u64,
        entries: &[Vec<u8>],
    ) -> Result<u64, Error> {
        self.check_peer_source(source)?;
        let at = self.source_count(source)?;
        if from > at {
            return Err(gap(source, from, at));
        }
        let skip = usize::try_from(at - from).unwrap_or(usize::MAX);
        if skip >= entries.len() {
            return Ok(0);
        }
        let rest = &entries[skip..];
        if self.append_at(source, at, rest)? {
            Ok(rest.len() as u64)
        } else {
            Err(gap(source, at, self.source_count(source)?))
        }
    }

    fn check_peer_source(&self, source: &str) -> Result<(), Error> {
        if source == self.local {
            return Err(Error::Peer {
                source_name: source.to_owned(),
                reason: "this is this store's own log: only it writes there".into(),
            });
        }
        let ok = source.len() == 32 && source.bytes().all(|b| b.is_ascii_hexdigit());
        if !ok {
            return Err(Error::Peer {
                source_name: source.chars().take(80).collect(),
                reason: "a source name is 32 hex digits".into(),
            });
        }
        Ok(())
    }

    /// Seals what is left in this store's own tail into a chunk, whatever its size.
    pub fn seal(&mut self) -> Result<(), Error> {
        let local = self.local.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(Error::db("sealing traces"))?;
        if let Some(src) = source_row(&tx, &local)? {
            seal_tail(&tx, src, 1)?;
        }
        tx.commit().map_err(Error::db("sealing traces"))
    }

    /// SQLite's `data_version`: changes whenever another connection commits (a cheap poll).
    pub fn data_version(&self) -> Result<i64, Error> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(Error::db("polling data_version"))
    }

    /// Space used by the log and the size of the index.
    pub fn storage_stats(&self) -> Result<StorageStats, Error> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(Error::db("measuring"))?;
        let q = |sql: &str| -> Result<u64, Error> {
            let v: i64 = tx
                .query_row(sql, [], |r| r.get(0))
                .map_err(Error::db("measuring"))?;
            Ok(u64::try_from(v).unwrap_or(0))
        };
        Ok(StorageStats {
            chunk_entries: q("SELECT COALESCE(SUM(count), 0) FROM chunks")?,
            chunk_bytes: q("SELECT COALESCE(SUM(length(data)), 0) FROM chunks")?,
            raw_bytes: q("SELECT COALESCE(SUM(raw), 0) FROM chunks")?,
            tail_entries: q("SELECT count(*) FROM tail")?,
            spans: q("SELECT count(*) FROM spans")?,
            traces: q("SELECT count(*) FROM traces")?,
        })
    }

    /// The spans of a trace, by start time, read from the log.
    pub fn spans(&self, trace: &TraceId) -> Result<Vec<Span>, Error> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(Error::db("reading spans"))?;
        match project::trace_row(&tx, trace)? {
            Some(id) => trace_spans(&tx, id, trace.as_str()),
            None => Ok(Vec::new()),
        }
    }
}

/// The spans of the trace in row `id`, by start time, read from the log. `reading_for` names
/// the trace in errors.
pub(crate) fn trace_spans(
    conn: &Connection,
    id: i64,
    reading_for: &str,
) -> Result<Vec<Span>, Error> {
    let positions: Vec<(i64, String, i64)> = {
        let mut stmt = conn
            .prepare_cached(
                "SELECT s.source, src.name, s.seq FROM spans s JOIN sources src ON src.id = s.source \
                 WHERE s.trace = ?1 ORDER BY s.start_ns, s.id",
            )
            .map_err(Error::db(format!("reading spans of {reading_for}")))?;
        stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(Error::db(format!("reading spans of {reading_for}")))?
    };
    let mut out = Vec::with_capacity(positions.len());
    let mut chunks = ChunkCache::default();
    for (source, name, seq) in positions {
        let src = source_by_id(conn, source)?;
        let bytes = read_entry(conn, &name, src, seq, &mut chunks, reading_for)?;
        let entry = codec::decode_entry(&bytes).map_err(|error| Error::CorruptChunk {
            source_name: name.clone(),
            first_seq: seq,
            traces: reading_for.to_owned(),
            error,
        })?;
        match entry.record {
            crate::model::Record::Span { span, .. } => out.push(span),
            other => {
                return Err(Error::Corrupt {
                    what: format!("trace {reading_for}"),
                    reason: format!(
                        "entry {seq} of {name} is indexed as a span but holds {:?}",
                        std::mem::discriminant(&other)
                    ),
                });
            }
        }
    }
    Ok(out)
}

/// Regroups version 2's per-span `span_text` rows into one row per trace (all its spans' texts,
/// as [`span_text`] lays them out), then sets the version to 3.
fn migrate_v3(tx: &Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(SCHEMA_V3)?;
    {
        let mut read =
            tx.prepare("SELECT s.trace, t.text FROM spans s JOIN span_text t ON t.rowid = s.id ORDER BY s.trace")?;
        let mut insert =
            tx.prepare("INSERT INTO span_text_v3 (rowid, text, bounds) VALUES (?1, ?2, ?3)")?;
        let mut rows = read.query([])?;
        let mut current: Option<(i64, span_text::Rows)> = None;
        let mut flush = |done: Option<(i64, span_text::Rows)>| -> rusqlite::Result<()> {
            if let Some((trace, texts)) = done {
                // A trace with more text than its rows hold (over a GiB) keeps what fits.
                let (first, last) = span_text::row_range(trace);
                for (row, (text, bounds)) in (first..=last).zip(texts.finish()) {
                    insert.execute(params![row, text, bounds])?;
                }
            }
            Ok(())
        };
        while let Some(r) = rows.next()? {
            let trace: i64 = r.get(0)?;
            let text: Option<String> = r.get(1)?;
            if current.as_ref().is_none_or(|(t, _)| *t != trace) {
                flush(current.replace((trace, span_text::Rows::default())))?;
            }
            if let Some((_, texts)) = &mut current {
                texts.push_text(text.as_deref().unwrap_or_default());
            }
        }
        flush(current)?;
    }
    tx.execute_batch(
        "DROP TABLE span_text;
         ALTER TABLE span_text_v3 RENAME TO span_text;
         UPDATE meta SET value = 3 WHERE name = 'schema_version';",
    )
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn gap(source: &str, from: u64, at: u64) -> Error {
    Error::Peer {
        source_name: source.to_owned(),
        reason: format!("entries from {from}, but this store holds {at} of this log"),
    }
}

fn decode_all(source: &str, entries: &[Vec<u8>]) -> Result<Vec<Entry>, Error> {
    entries
        .iter()
        .enumerate()
        .map(|(i, b)| {
            codec::decode_entry(b).map_err(|e| Error::Peer {
                source_name: source.to_owned(),
                reason: format!("entry {i} of the batch: {e}"),
            })
        })
        .collect()
}

fn project_peer(
    tx: &Transaction<'_>,
    source: &str,
    src: SourceRow,
    decoded: &[Entry],
) -> Result<(), Error> {
    let mut batch = Batch::default();
    for (i, e) in decoded.iter().enumerate() {
        let stamp = Stamp {
            at: e.at_ms,
            src: source,
            source: src.id,
            seq: src.next_seq + i as i64,
        };
        batch.apply(tx, &stamp, e)?;
    }
    batch.finish(tx)
}

pub(crate) fn source_row(conn: &Connection, name: &str) -> Result<Option<SourceRow>, Error> {
    conn.prepare_cached("SELECT id, next_seq, tail_start FROM sources WHERE name = ?1")
        .and_then(|mut s| {
            s.query_row([name], |r| {
                Ok(SourceRow {
                    id: r.get(0)?,
                    next_seq: r.get(1)?,
                    tail_start: r.get(2)?,
                })
            })
            .optional()
        })
        .map_err(Error::db(format!("reading source {name}")))
}

fn source_by_id(conn: &Connection, id: i64) -> Result<SourceRow, Error> {
    conn.prepare_cached("SELECT id, next_seq, tail_start FROM sources WHERE id = ?1")
        .and_then(|mut s| {
            s.query_row([id], |r| {
                Ok(SourceRow {
                    id: r.get(0)?,
                    next_seq: r.get(1)?,
                    tail_start: r.get(2)?,
                })
            })
        })
        .map_err(Error::db(format!("reading source {id}")))
}

fn ensure_source(tx: &Transaction<'_>, name: &str) -> Result<SourceRow, Error> {
    if let Some(s) = source_row(tx, name)? {
        return Ok(s);
    }
    tx.prepare_cached("INSERT INTO sources (name, next_seq, tail_start) VALUES (?1, 0, 0)")
        .and_then(|mut s| s.execute([name]))
        .map_err(Error::db(format!("adding source {name}")))?;
    Ok(SourceRow {
        id: tx.last_insert_rowid(),
        next_seq: 0,
        tail_start: 0,
    })
}

/// Appends encoded entries at the end of `src`'s log: tail rows, sealed into chunks when the
/// tail grows past [`CHUNK_ENTRIES`] or [`CHUNK_BYTES`]. A large batch is written as chunks
/// directly, merged with the (short) tail in memory.
fn write_entries(tx: &Transaction<'_>, src: SourceRow, entries: &[Vec<u8>]) -> Result<(), Error> {
    let op = "appending to the trace log";
    let tail_len = src.next_seq - src.tail_start;
    let n = entries.len() as i64;
    let next = src.next_seq + n;
    let tail_bytes: i64 = if tail_len > 0 {
        tx.prepare_cached("SELECT COALESCE(SUM(length(data)), 0) FROM tail WHERE source = ?1")
            .and_then(|mut s| s.query_row([src.id], |r| r.get(0)))
            .map_err(Error::db(op))?
    } else {
        0
    };
    let new_bytes: usize = entries.iter().map(Vec::len).sum();
    let large =
        (tail_len + n) as usize >= CHUNK_ENTRIES || tail_bytes as usize + new_bytes >= CHUNK_BYTES;
    if !large {
        let mut stmt = tx
            .prepare_cached("INSERT INTO tail (source, seq, data) VALUES (?1, ?2, ?3)")
            .map_err(Error::db(op))?;
        for (i, e) in entries.iter().enumerate() {
            stmt.execute(params![src.id, src.next_seq + i as i64, e])
                .map_err(Error::db(op))?;
        }
        tx.prepare_cached("UPDATE sources SET next_seq = ?2 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![src.id, next]))
            .map_err(Error::db(op))?;
        return Ok(());
    }
    let mut all: Vec<Vec<u8>> = Vec::with_capacity(tail_len as usize + entries.len());
    if tail_len > 0 {
        let mut stmt = tx
            .prepare_cached("SELECT seq, data FROM tail WHERE source = ?1 ORDER BY seq")
            .map_err(Error::db(op))?;
        let mut rows = stmt.query([src.id]).map_err(Error::db(op))?;
        let mut expect = src.tail_start;
        while let Some(r) = rows.next().map_err(Error::db(op))? {
            let seq: i64 = r.get(0).map_err(Error::db(op))?;
            if seq != expect {
                return Err(Error::Corrupt {
                    what: format!("trace log source {}", src.id),
                    reason: format!("tail row {expect} is missing (found {seq})"),
                });
            }
            expect += 1;
            all.push(r.get(1).map_err(Error::db(op))?);
        }
        tx.prepare_cached("DELETE FROM tail WHERE source = ?1")
            .and_then(|mut s| s.execute([src.id]))
            .map_err(Error::db(op))?;
    }
    all.extend(entries.iter().cloned());
    let cuts = chunk_cuts(&all);
    let mut start = 0usize;
    let mut seq = src.tail_start;
    let sealed_until = {
        // Seal every full cut; the last, short one only if it is long enough.
        let mut until = 0;
        for (i, &end) in cuts.iter().enumerate() {
            let len = end - start;
            let last = i == cuts.len() - 1;
            if last && len < MIN_CHUNK_ENTRIES && !full_by_bytes(&all[start..end]) {
                break;
            }
            let refs: Vec<&[u8]> = all[start..end].iter().map(Vec::as_slice).collect();
            insert_chunk(tx, src.id, seq, &codec::seal(&refs), len)?;
            seq += len as i64;
            start = end;
            until = end;
        }
        until
    };
    let mut stmt = tx
        .prepare_cached("INSERT INTO tail (source, seq, data) VALUES (?1, ?2, ?3)")
        .map_err(Error::db(op))?;
    for (i, e) in all[sealed_until..].iter().enumerate() {
        stmt.execute(params![src.id, seq + i as i64, e])
            .map_err(Error::db(op))?;
    }
    tx.prepare_cached("UPDATE sources SET next_seq = ?2, tail_start = ?3 WHERE id = ?1")
        .and_then(|mut s| s.execute(params![src.id, next, seq]))
        .map_err(Error::db(op))?;
    Ok(())
}

/// Where chunks end: every [`CHUNK_ENTRIES`] entries or [`CHUNK_BYTES`] bytes, whichever
/// comes first; the last cut is the end.
fn chunk_cuts(all: &[Vec<u8>]) -> Vec<usize> {
    let mut cuts = Vec::new();
    let (mut n, mut bytes) = (0usize, 0usize);
    for (i, e) in all.iter().enumerate() {
        n += 1;
        bytes += e.len();
        if n >= CHUNK_ENTRIES || bytes >= CHUNK_BYTES {
            cuts.push(i + 1);
            n = 0;
            bytes = 0;
        }
    }
    if n > 0 {
        cuts.push(all.len());
    }
    cuts
}

fn full_by_bytes(entries: &[Vec<u8>]) -> bool {
    entries.iter().map(Vec::len).sum::<usize>() >= CHUNK_BYTES
}

fn insert_chunk(
    tx: &Transaction<'_>,
    source: i64,
    first_seq: i64,
    sealed: &Sealed,
    count: usize,
) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO chunks (source, first_seq, count, raw, hash, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            source,
            first_seq,
            count as i64,
            sealed.raw as i64,
            sealed.hash.as_slice(),
            sealed.data
        ])
    })
    .map_err(Error::db("sealing a trace chunk"))?;
    Ok(())
}

/// Seals `src`'s tail into chunks when it holds at least `min` entries.
fn seal_tail(tx: &Transaction<'_>, src: SourceRow, min: usize) -> Result<(), Error> {
    let len = (src.next_seq - src.tail_start) as usize;
    if len == 0 || len < min {
        return Ok(());
    }
    let op = "sealing the trace log";
    let tail: Vec<Vec<u8>> = {
        let mut stmt = tx
            .prepare_cached("SELECT data FROM tail WHERE source = ?1 ORDER BY seq")
            .map_err(Error::db(op))?;
        stmt.query_map([src.id], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(Error::db(op))?
    };
    if tail.len() != len {
        return Err(Error::Corrupt {
            what: format!("trace log source {}", src.id),
            reason: format!("{} tail rows, its row says {len}", tail.len()),
        });
    }
    let mut start = 0;
    let mut seq = src.tail_start;
    for end in chunk_cuts(&tail) {
        let refs: Vec<&[u8]> = tail[start..end].iter().map(Vec::as_slice).collect();
        insert_chunk(tx, src.id, seq, &codec::seal(&refs), end - start)?;
        seq += (end - start) as i64;
        start = end;
    }
    tx.prepare_cached("DELETE FROM tail WHERE source = ?1")
        .and_then(|mut s| s.execute([src.id]))
        .map_err(Error::db(op))?;
    tx.prepare_cached("UPDATE sources SET tail_start = next_seq WHERE id = ?1")
        .and_then(|mut s| s.execute([src.id]))
        .map_err(Error::db(op))?;
    Ok(())
}

/// Chunks already opened within one read, so a trace whose spans share a chunk inflates it
/// once.
#[derive(Default)]
struct ChunkCache(HashMap<(i64, i64), Vec<Vec<u8>>>);

/// The encoded entry at `seq` of a source, from its chunk or the tail. `reading_for` names
/// what the read was for (a trace), so a corrupt chunk is reported against it.
fn read_entry(
    conn: &Connection,
    name: &str,
    src: SourceRow,
    seq: i64,
    cache: &mut ChunkCache,
    reading_for: &str,
) -> Result<Vec<u8>, Error> {
    let op = || format!("reading entry {seq} of {name}");
    if seq >= src.tail_start {
        return conn
            .prepare_cached("SELECT data FROM tail WHERE source = ?1 AND seq = ?2")
            .and_then(|mut s| s.query_row(params![src.id, seq], |r| r.get(0)).optional())
            .map_err(Error::db(op()))?
            .ok_or_else(|| Error::Corrupt {
                what: format!("trace log {name}"),
                reason: format!("tail entry {seq} is missing (read for {reading_for})"),
            });
    }
    let head: Option<(i64, i64)> = conn
        .prepare_cached(
            "SELECT first_seq, count FROM chunks WHERE source = ?1 AND first_seq <= ?2 \
             ORDER BY first_seq DESC LIMIT 1",
        )
        .and_then(|mut s| {
            s.query_row(params![src.id, seq], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
        })
        .map_err(Error::db(op()))?;
    let Some((first, count)) = head.filter(|(f, c)| f + c > seq) else {
        return Err(Error::Corrupt {
            what: format!("trace log {name}"),
            reason: format!("no chunk holds entry {seq} (read for {reading_for})"),
        });
    };
    let entries = match cache.0.entry((src.id, first)) {
        std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
        std::collections::hash_map::Entry::Vacant(v) => {
            let (hash, data): (Vec<u8>, Vec<u8>) = conn
                .prepare_cached(
                    "SELECT hash, data FROM chunks WHERE source = ?1 AND first_seq = ?2",
                )
                .and_then(|mut s| {
                    s.query_row(params![src.id, first], |r| Ok((r.get(0)?, r.get(1)?)))
                })
                .map_err(Error::db(op()))?;
            let corrupt = |error: DecodeError| Error::CorruptChunk {
                source_name: name.to_owned(),
                first_seq: first,
                traces: reading_for.to_owned(),
                error,
            };
            let count = u64::try_from(count)
                .map_err(|_| corrupt(DecodeError::Malformed(format!("negative count {count}"))))?;
            v.insert(codec::open_chunk(&hash, &data, count).map_err(corrupt)?)
        }
    };
    entries
        .get((seq - first) as usize)
        .cloned()
        .ok_or_else(|| Error::Corrupt {
            what: format!("trace log {name}"),
            reason: format!("chunk at {first} lacks entry {seq}"),
        })
}
