//! [`MetricStore`]: the SQLite side of the crate. Schema, transactions, sealing tails into chunks,
//! and the read paths (history, pages, summaries, downsampling) over tail rows and chunks.
//!
//! Every write runs in one `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so the
//! busy handler (30 s) applies and two processes appending at once queue instead of failing with
//! `SQLITE_BUSY` on a lock upgrade. Sequence numbers are allocated inside that transaction.
//! Reads run in one deferred transaction each, so they see a consistent snapshot even while
//! another connection seals the tail they are reading.

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::downsample::{Buckets, Fit, Grid};
use crate::error::{DecodeError, Error};
use crate::summary::{BLOCK_POINTS, Summary, decode_blocks, encode_blocks};
use crate::{Bucket, CHUNK_POINTS, MIN_CHUNK_POINTS, Point, SeriesInfo, StorageStats, codec};

const SCHEMA_VERSION: i64 = 1;

const META_SQL: &str = "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;";

/// Values (`*_value`, `tail.value`) are `f64` bit patterns stored as INTEGER: a REAL column would
/// turn NaN into NULL and may store -0.0 as 0.
const SCHEMA_V1: &str = "
CREATE TABLE series (
    id          INTEGER PRIMARY KEY,
    run         TEXT NOT NULL,
    key         TEXT NOT NULL,
    next_seq    INTEGER NOT NULL,  -- seq of the next point; seqs start at 0, so also the count
    tail_start  INTEGER NOT NULL,  -- seq of the first point in `tail`; all before are in chunks
    count       INTEGER NOT NULL,
    last_step   INTEGER,
    last_ts     INTEGER,
    last_value  INTEGER,
    min_value   INTEGER,           -- finite min, NULL if none
    max_value   INTEGER,           -- finite max, NULL if none
    nonfinite   INTEGER NOT NULL,
    UNIQUE (run, key)
);
CREATE TABLE tail (
    series  INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    step    INTEGER NOT NULL,
    ts      INTEGER NOT NULL,
    value   INTEGER NOT NULL,
    PRIMARY KEY (series, seq)
) WITHOUT ROWID;
-- `blocks` precedes `data` on purpose: a row's columns are stored in order and large values
-- spill into a chain of overflow pages, so downsampling reads the summaries without walking
-- the data's pages.
CREATE TABLE chunks (
    series       INTEGER NOT NULL,
    first_seq    INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    step_min     INTEGER NOT NULL,
    step_max     INTEGER NOT NULL,
    ts_first     INTEGER NOT NULL,
    ts_last      INTEGER NOT NULL,
    min_value    INTEGER,
    max_value    INTEGER,
    first_value  INTEGER NOT NULL,
    last_value   INTEGER NOT NULL,
    nonfinite    INTEGER NOT NULL,
    hash         BLOB NOT NULL,    -- BLAKE3 of `data`
    blocks       BLOB NOT NULL,
    data         BLOB NOT NULL,
    PRIMARY KEY (series, first_seq)
) WITHOUT ROWID;
";

/// The store's generation: a counter every change of a series' mark (a series created, a
/// point appended, a series deleted) bumps, through triggers, so every writer — this crate's
/// every write path, any process — keeps it. Sync's status compares it with the one seen at
/// the end of the last session instead of reading every series' mark.
const GENERATION_SQL: &str = "
INSERT OR IGNORE INTO meta (name, value) VALUES ('generation', 0);
CREATE TRIGGER IF NOT EXISTS series_created AFTER INSERT ON series BEGIN
    UPDATE meta SET value = value + 1 WHERE name = 'generation';
END;
CREATE TRIGGER IF NOT EXISTS series_grown AFTER UPDATE OF next_seq ON series
WHEN NEW.next_seq IS NOT OLD.next_seq BEGIN
    UPDATE meta SET value = value + 1 WHERE name = 'generation';
END;
CREATE TRIGGER IF NOT EXISTS series_deleted AFTER DELETE ON series BEGIN
    UPDATE meta SET value = value + 1 WHERE name = 'generation';
END;
";

const SERIES_COLS: &str = "id, key, next_seq, tail_start, count, last_step, last_ts, last_value, \
                           min_value, max_value, nonfinite";

/// Tail rows inserted per statement when an append leaves many of them.
const TAIL_ROWS_PER_INSERT: usize = 64;

/// A metric database: one SQLite connection. See the crate docs for the layout.
#[derive(Debug)]
pub struct MetricStore {
    conn: Connection,
    insert_tail_many: String,
}

/// A failure inside a transaction, before it is named after its series.
#[derive(Debug)]
enum Fail {
    Sql(rusqlite::Error),
    Chunk { first_seq: i64, source: DecodeError },
    Row(String),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl Fail {
    fn at(self, op: &'static str, series: String) -> Error {
        match self {
            Fail::Sql(source) => Error::Database { op, series, source },
            Fail::Chunk { first_seq, source } => Error::CorruptChunk {
                series,
                first_seq,
                source,
            },
            Fail::Row(reason) => Error::CorruptRow { series, reason },
        }
    }
}

fn name(run: &str, key: &str) -> String {
    format!("{run}/{key}")
}

fn check_names(run: &str, key: &str) -> Result<(), Error> {
    if run.is_empty() {
        return Err(Error::EmptyRun {
            key: key.to_owned(),
        });
    }
    if key.is_empty() {
        return Err(Error::EmptyKey {
            run: run.to_owned(),
        });
    }
    Ok(())
}

fn bits(v: f64) -> i64 {
    v.to_bits() as i64
}

fn from_bits(b: i64) -> f64 {
    f64::from_bits(b as u64)
}

/// Finite min/max as stored: NULL when there is none (NaN in memory).
fn opt_bits(v: f64) -> Option<i64> {
    (!v.is_nan()).then(|| bits(v))
}

fn to_u64(v: i64, what: &str) -> Result<u64, Fail> {
    u64::try_from(v).map_err(|_| Fail::Row(format!("negative {what} {v}")))
}

/// The `series` row of one series.
#[derive(Debug, Clone)]
struct SeriesRow {
    id: i64,
    key: String,
    next_seq: i64,
    tail_start: i64,
    last: Option<Point>,
    /// Finite min/max, NaN if none.
    min: f64,
    max: f64,
    nonfinite: i64,
}

impl SeriesRow {
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Self, Fail>> {
        let id: i64 = row.get(0)?;
        let key: String = row.get(1)?;
        let next_seq: i64 = row.get(2)?;
        let tail_start: i64 = row.get(3)?;
        let count: i64 = row.get(4)?;
        let last = match (
            row.get::<_, Option<i64>>(5)?,
            row.get::<_, Option<i64>>(6)?,
            row.get::<_, Option<i64>>(7)?,
        ) {
            (Some(step), Some(ts_ms), Some(v)) => Some(Point {
                step,
                ts_ms,
                value: from_bits(v),
            }),
            _ => None,
        };
        let min = row.get::<_, Option<i64>>(8)?.map_or(f64::NAN, from_bits);
        let max = row.get::<_, Option<i64>>(9)?.map_or(f64::NAN, from_bits);
        let nonfinite: i64 = row.get(10)?;
        let ok = 0 <= tail_start
            && tail_start <= next_seq
            && count == next_seq
            && (0..=count).contains(&nonfinite)
            && last.is_some() == (count > 0);
        if !ok {
            return Ok(Err(Fail::Row(format!(
                "inconsistent bookkeeping (next_seq {next_seq}, tail_start {tail_start}, count {count}, nonfinite {nonfinite})"
            ))));
        }
        Ok(Ok(SeriesRow {
            id,
            key,
            next_seq,
            tail_start,
            last,
            min,
            max,
            nonfinite,
        }))
    }

    fn info(&self) -> SeriesInfo {
        SeriesInfo {
            key: self.key.clone(),
            count: self.next_seq as u64, // checked non-negative in `read`
            last: self.last,
            min: (!self.min.is_nan()).then_some(self.min),
            max: (!self.max.is_nan()).then_some(self.max),
            nonfinite: self.nonfinite as u64,
        }
    }

    fn tail_len(&self) -> i64 {
        self.next_seq - self.tail_start
    }
}

fn find_series(conn: &Connection, run: &str, key: &str) -> Result<Option<SeriesRow>, Fail> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {SERIES_COLS} FROM series WHERE run = ?1 AND key = ?2"
    ))?;
    match stmt
        .query_row(params![run, key], SeriesRow::read)
        .optional()?
    {
        None => Ok(None),
        Some(row) => row.map(Some),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A BLOB column of a chunk row; anything else there is corruption.
fn blob<'r>(row: &'r rusqlite::Row<'_>, idx: usize, first_seq: i64) -> Result<&'r [u8], Fail> {
    row.get_ref(idx)?.as_blob().map_err(|e| Fail::Chunk {
        first_seq,
        source: DecodeError::Malformed(format!("column {idx}: {e}")),
    })
}

/// Checks the hash, then decodes and checks the point count.
/// Verifies and decodes a chunk that came from elsewhere (a peer): its bytes must hash to `hash`
/// and hold exactly `count` points.
pub fn decode_peer_chunk(
    series: &str,
    first_seq: u64,
    count: u64,
    hash: &[u8],
    data: &[u8],
) -> Result<Vec<Point>, Error> {
    let first = i64::try_from(first_seq).unwrap_or(i64::MAX);
    open_chunk(first, i64::try_from(count).unwrap_or(-1), hash, data)
        .map_err(|f| f.at("decoding", series.to_owned()))
}

fn open_chunk(first_seq: i64, count: i64, hash: &[u8], data: &[u8]) -> Result<Vec<Point>, Fail> {
    let corrupt = |source| Fail::Chunk { first_seq, source };
    let computed = blake3::hash(data);
    if computed.as_bytes().as_slice() != hash {
        return Err(corrupt(DecodeError::HashMismatch {
            stored: hex(hash),
            computed: computed.to_hex().to_string(),
        }));
    }
    let points = codec::decode(data).map_err(corrupt)?;
    if i64::try_from(points.len()).ok() != Some(count) {
        return Err(corrupt(DecodeError::Malformed(format!(
            "holds {} points, its row says {count}",
            points.len()
        ))));
    }
    Ok(points)
}

fn read_tail(conn: &Connection, s: &SeriesRow) -> Result<Vec<Point>, Fail> {
    read_tail_range(conn, s, s.tail_start, s.next_seq)
}

/// Tail points with `from <= seq < to`, checking that none is missing.
fn read_tail_range(
    conn: &Connection,
    s: &SeriesRow,
    from: i64,
    to: i64,
) -> Result<Vec<Point>, Fail> {
    let (from, to) = (from.max(s.tail_start), to.min(s.next_seq));
    if from >= to {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT seq, step, ts, value FROM tail WHERE series = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
    )?;
    let mut rows = stmt.query(params![s.id, from, to])?;
    let mut out = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
    let mut expected = from;
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        if seq != expected {
            return Err(Fail::Row(format!(
                "tail row for seq {expected} is missing (found {seq})"
            )));
        }
        expected += 1;
        out.push(Point {
            step: row.get(1)?,
            ts_ms: row.get(2)?,
            value: from_bits(row.get(3)?),
        });
    }
    if expected != to {
        return Err(Fail::Row(format!("tail rows {expected}..{to} are missing")));
    }
    Ok(out)
}

/// One `chunks` row without its data.
#[derive(Debug)]
struct ChunkHead {
    first_seq: i64,
    summary: Summary,
    blocks: Vec<u8>,
}

impl MetricStore {
    /// Opens (creating if needed) the metric database at `path`: WAL journal,
    /// `synchronous=NORMAL`, a 30 s busy timeout, schema created or checked.
    #[tracing::instrument(err)]
    pub fn open(path: &Path) -> Result<Self, Error> {
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
            tracing::warn!(path = %path.display(), mode, "metric database is not in WAL mode");
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_err)?;
        Self::init(conn, path)
    }

    /// A private in-memory database (for tests and previews).
    pub fn open_in_memory() -> Result<Self, Error> {
        let path = Path::new(":memory:");
        let conn = Connection::open_in_memory().map_err(|source| Error::Open {
            path: path.to_owned(),
            source,
        })?;
        Self::init(conn, path)
    }

    fn init(mut conn: Connection, path: &Path) -> Result<Self, Error> {
        let open_err = |source| Error::Open {
            path: path.to_owned(),
            source,
        };
        conn.set_prepared_statement_cache_capacity(32);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(open_err)?;
        tx.execute_batch(META_SQL).map_err(open_err)?;
        let version: Option<i64> = tx
            .query_row(
                "SELECT value FROM meta WHERE name = 'schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(open_err)?;
        match version {
            None => {
                tx.execute_batch(SCHEMA_V1).map_err(open_err)?;
                tx.execute(
                    "INSERT INTO meta (name, value) VALUES ('schema_version', ?1)",
                    [SCHEMA_VERSION],
                )
                .map_err(open_err)?;
            }
            Some(found) if found > SCHEMA_VERSION => {
                return Err(Error::SchemaTooNew {
                    path: path.to_owned(),
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            Some(_) => {}
        }
        // Older databases get the generation counter on their first open (no new version:
        // nothing else changes).
        tx.execute_batch(GENERATION_SQL).map_err(open_err)?;
        tx.commit().map_err(open_err)?;

        let mut insert_tail_many =
            String::from("INSERT INTO tail (series, seq, step, ts, value) VALUES ");
        for i in 0..TAIL_ROWS_PER_INSERT {
            insert_tail_many.push_str(if i == 0 {
                "(?,?,?,?,?)"
            } else {
                ",(?,?,?,?,?)"
            });
        }
        Ok(MetricStore {
            conn,
            insert_tail_many,
        })
    }

    /// Appends `points` to the series `run`/`key` (created on first use) in one IMMEDIATE
    /// transaction. Durable once it returns.
    pub fn append(&mut self, run: &str, key: &str, points: &[Point]) -> Result<(), Error> {
        self.append_batch(run, &[(key, points)])
    }

    /// Appends to several series of one run in one transaction (MLflow's log-batch). The same
    /// key may appear more than once; its batches are appended in order.
    pub fn append_batch(&mut self, run: &str, batches: &[(&str, &[Point])]) -> Result<(), Error> {
        for (key, _) in batches {
            check_names(run, key)?;
        }
        if batches.iter().all(|(_, points)| points.is_empty()) {
            return Ok(());
        }
        let insert_many = self.insert_tail_many.as_str();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Fail::Sql(e).at("appending to", run.to_owned()))?;
        for (key, points) in batches {
            append_in(&tx, insert_many, run, key, points)
                .map_err(|f| f.at("appending to", name(run, key)))?;
        }
        tx.commit()
            .map_err(|e| Fail::Sql(e).at("appending to", run.to_owned()))
    }

    /// Every series with its point count (its high-water mark), sorted by run and key: what a
    /// peer compares to learn which points it lacks. Reads the `series` rows only.
    /// The store's generation: it changes whenever any series' mark does (see
    /// [`Self::series_marks`]), and reading it costs one row.
    pub fn generation(&self) -> Result<u64, Error> {
        self.conn
            .prepare_cached("SELECT value FROM meta WHERE name = 'generation'")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
            .map(|v| u64::try_from(v).unwrap_or(0))
            .map_err(|e| Fail::Sql(e).at("reading", "the generation".to_owned()))
    }

    pub fn series_marks(&self) -> Result<Vec<crate::SeriesMark>, Error> {
        let err = |e: rusqlite::Error| Fail::Sql(e).at("listing", "every series".to_owned());
        let mut stmt = self
            .conn
            .prepare_cached("SELECT run, key, next_seq FROM series ORDER BY run, key")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(crate::SeriesMark {
                    run: r.get(0)?,
                    key: r.get(1)?,
                    count: u64::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                })
            })
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Appends `points` to `run`/`key` only if the series holds exactly `expected` points now
    /// (a series has one writer, so a peer's suffix continues where ours ends). Returns false,
    /// storing nothing, when it does not: the points are stale or the series diverged.
    pub fn append_at(
        &mut self,
        run: &str,
        key: &str,
        expected: u64,
        points: &[Point],
    ) -> Result<bool, Error> {
        check_names(run, key)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Fail::Sql(e).at("appending to", name(run, key)))?;
        let have = find_series(&tx, run, key)
            .map_err(|f| f.at("appending to", name(run, key)))?
            .map_or(0, |s| s.next_seq);
        if u64::try_from(have).ok() != Some(expected) {
            return Ok(false);
        }
        if !points.is_empty() {
            append_in(&tx, self.insert_tail_many.as_str(), run, key, points)
                .map_err(|f| f.at("appending to", name(run, key)))?;
        }
        tx.commit()
            .map_err(|e| Fail::Sql(e).at("appending to", name(run, key)))?;
        Ok(true)
    }

    /// The sealed chunks of `run`/`key` that start at or after point `from`, in order, as stored
    /// (compressed, with their BLAKE3): what sync sends instead of the points they hold.
    pub fn sealed_chunks(
        &self,
        run: &str,
        key: &str,
        from: u64,
    ) -> Result<Vec<crate::SealedChunk>, Error> {
        let err = |e: rusqlite::Error| Fail::Sql(e).at("reading chunks of", name(run, key));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.first_seq, c.count, c.hash, c.data FROM chunks c JOIN series s ON s.id = c.series \
                 WHERE s.run = ?1 AND s.key = ?2 AND c.first_seq >= ?3 ORDER BY c.first_seq",
            )
            .map_err(err)?;
        let rows = stmt
            .query_map(
                params![run, key, i64::try_from(from).unwrap_or(i64::MAX)],
                |r| {
                    Ok(crate::SealedChunk {
                        first_seq: u64::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                        count: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                        hash: r.get(2)?,
                        data: r.get(3)?,
                    })
                },
            )
            .map_err(err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// SQLite's `data_version`: changes whenever another connection commits to this database
    /// (a training job appended). A cheap poll for "something changed".
    pub fn data_version(&self) -> Result<i64, Error> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| Fail::Sql(e).at("polling", "data_version".to_owned()))
    }

    /// Seals the tail of every series of `run` into a chunk, whatever its size (the run ended).
    #[tracing::instrument(skip(self), err)]
    pub fn seal_run(&mut self, run: &str) -> Result<(), Error> {
        let err = |f: Fail| f.at("sealing", run.to_owned());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| err(e.into()))?;
        let open: Vec<SeriesRow> = {
            let mut stmt = tx
                .prepare_cached(&format!(
                    "SELECT {SERIES_COLS} FROM series WHERE run = ?1 AND next_seq > tail_start ORDER BY key"
                ))
                .map_err(|e| err(e.into()))?;
            let rows = stmt
                .query_map([run], SeriesRow::read)
                .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
                .map_err(|e| err(e.into()))?;
            rows.into_iter().collect::<Result<_, _>>().map_err(err)?
        };
        for s in &open {
            seal_tail(&tx, s).map_err(|f| f.at("sealing", name(run, &s.key)))?;
        }
        tx.commit().map_err(|e| err(e.into()))?;
        tracing::debug!(run, series = open.len(), "sealed run");
        Ok(())
    }

    /// Every series of `run`, sorted by key.
    pub fn series(&self, run: &str) -> Result<Vec<SeriesInfo>, Error> {
        let err = |f: Fail| f.at("listing series of", run.to_owned());
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {SERIES_COLS} FROM series WHERE run = ?1 ORDER BY key"
            ))
            .map_err(|e| err(e.into()))?;
        let rows = stmt
            .query_map([run], SeriesRow::read)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| err(e.into()))?;
        rows.into_iter()
            .map(|r| r.map(|s| s.info()).map_err(err))
            .collect()
    }

    /// What is known about `run`/`key` without reading points; `None` if nothing was appended.
    pub fn series_info(&self, run: &str, key: &str) -> Result<Option<SeriesInfo>, Error> {
        find_series(&self.conn, run, key)
            .map(|s| s.map(|s| s.info()))
            .map_err(|f| f.at("reading", name(run, key)))
    }

    /// Every point of `run`/`key` in append order (sealed chunks, then the tail). Empty if the
    /// series does not exist.
    pub fn history(&self, run: &str, key: &str) -> Result<Vec<Point>, Error> {
        self.read(run, key, |conn, s| history_in(conn, s, 0, s.next_seq))
    }

    /// Points `offset..offset + limit` of the history, in append order.
    pub fn history_page(
        &self,
        run: &str,
        key: &str,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<Point>, Error> {
        let Ok(from) = i64::try_from(offset) else {
            return Ok(Vec::new());
        };
        let to = from.saturating_add(i64::try_from(limit).unwrap_or(i64::MAX));
        self.read(run, key, |conn, s| history_in(conn, s, from, to))
    }

    /// Points of `run`/`key` from `from` to the end of the sealed chunk that holds `from` (past
    /// the chunks: at most [`CHUNK_POINTS`] tail points), and before `to`: a history read one
    /// chunk at a time, so that a reader of any length (a streamed HTTP reply) decodes and holds
    /// one chunk. Reading on from where the last piece ended walks the whole series, each chunk
    /// decoded once; a series is append-only, so pieces read in separate calls fit together.
    /// Empty at or past the end (or `to`).
    pub fn history_chunk(
        &self,
        run: &str,
        key: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<Point>, Error> {
        let Ok(from) = i64::try_from(from) else {
            return Ok(Vec::new());
        };
        let to = i64::try_from(to).unwrap_or(i64::MAX);
        self.read(run, key, |conn, s| {
            let end = if from < s.tail_start {
                chunk_end(conn, s.id, from)?
            } else {
                from.saturating_add(CHUNK_POINTS as i64)
            };
            history_in(conn, s, from, to.min(end))
        })
    }

    /// Downsamples the points of `run`/`key` whose step is in `lo..=hi` (`None`: the whole
    /// series) into at most `buckets` buckets of equal step width; returns the non-empty ones in
    /// step order. See [`Bucket`] for what each holds.
    ///
    /// When there are at least [`BLOCK_POINTS`] points per bucket, sealed chunks are read through
    /// their chunk and block summaries without decoding points; otherwise (zoomed in) only the
    /// chunks overlapping the range are decoded. Tail points are always read directly. On the
    /// summary path a chunk is still decoded if one of its blocks cannot be placed from its
    /// summary: a block that is only partly inside the range, one whose steps span more than
    /// two buckets (a resumed run going back in steps), or one that straddles a bucket boundary
    /// and holds non-finite values (so that non-finite counts stay exact).
    pub fn downsample(
        &self,
        run: &str,
        key: &str,
        range: Option<(i64, i64)>,
        buckets: usize,
    ) -> Result<Vec<Bucket>, Error> {
        if buckets == 0 || range.is_some_and(|(lo, hi)| lo > hi) {
            return Ok(Vec::new());
        }
        self.read(run, key, |conn, s| downsample_in(conn, s, range, buckets))
    }

    /// Bytes of sealed chunk data and block summaries, the points they hold, and the points still
    /// in tail rows, over the whole database.
    pub fn storage_stats(&self) -> Result<StorageStats, Error> {
        let err = |e: rusqlite::Error| Fail::Sql(e).at("measuring", "all series".to_owned());
        let tx = self.conn.unchecked_transaction().map_err(err)?;
        let (points, bytes): (i64, i64) = tx
            .query_row(
                "SELECT COALESCE(SUM(count), 0), COALESCE(SUM(length(data) + length(blocks)), 0) FROM chunks",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(err)?;
        let tail: i64 = tx
            .query_row(
                "SELECT COALESCE(SUM(next_seq - tail_start), 0) FROM series",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        let row =
            |v: i64, what| to_u64(v, what).map_err(|f| f.at("measuring", "all series".to_owned()));
        Ok(StorageStats {
            points: row(points, "chunk point total")?,
            chunk_bytes: row(bytes, "chunk byte total")?,
            tail_points: row(tail, "tail point total")?,
        })
    }

    /// Runs `f` on the series in one read transaction; a missing series reads as empty.
    fn read<T: Default>(
        &self,
        run: &str,
        key: &str,
        f: impl FnOnce(&Connection, &SeriesRow) -> Result<T, Fail>,
    ) -> Result<T, Error> {
        let err = |f: Fail| f.at("reading", name(run, key));
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(|e| err(e.into()))?;
        let Some(s) = find_series(&tx, run, key).map_err(err)? else {
            return Ok(T::default());
        };
        let out = f(&tx, &s).map_err(err)?;
        // Dropping a read transaction ends it; nothing to commit.
        drop(tx);
        Ok(out)
    }
}

fn append_in(
    tx: &Transaction<'_>,
    insert_many: &str,
    run: &str,
    key: &str,
    points: &[Point],
) -> Result<(), Fail> {
    if points.is_empty() {
        return Ok(());
    }
    let s = match find_series(tx, run, key)? {
        Some(s) => s,
        None => {
            tx.prepare_cached(
                "INSERT INTO series (run, key, next_seq, tail_start, count, nonfinite) VALUES (?1, ?2, 0, 0, 0, 0)",
            )?
            .execute(params![run, key])?;
            SeriesRow {
                id: tx.last_insert_rowid(),
                key: key.to_owned(),
                next_seq: 0,
                tail_start: 0,
                last: None,
                min: f64::NAN,
                max: f64::NAN,
                nonfinite: 0,
            }
        }
    };
    let n = i64::try_from(points.len()).map_err(|_| Fail::Row("batch too large".into()))?;
    let next_seq = s
        .next_seq
        .checked_add(n)
        .ok_or_else(|| Fail::Row("sequence numbers exhausted".into()))?;

    let tail_len = s.tail_len();
    let mut tail_start = s.tail_start;
    if tail_len.saturating_add(n) < CHUNK_POINTS as i64 {
        insert_tail(tx, insert_many, s.id, s.next_seq, points)?;
    } else {
        // Merge with the (small) tail in memory and write whole chunks. The remainder stays as
        // rows only if it is short: re-inserting, re-reading and deleting a remainder of up to
        // 8191 rows per batch cost 80% of the time of 10k-point appends (1.3-1.6 M points/s
        // against 12-14 M with this rule, see benches/ingest.rs).
        let all: Cow<'_, [Point]> = if tail_len == 0 {
            Cow::Borrowed(points)
        } else {
            let mut v = read_tail(tx, &s)?;
            v.extend_from_slice(points);
            Cow::Owned(v)
        };
        let mut full = all.len() / CHUNK_POINTS * CHUNK_POINTS;
        if all.len() - full >= MIN_CHUNK_POINTS {
            full = all.len();
        }
        for (i, chunk) in all[..full].chunks(CHUNK_POINTS).enumerate() {
            write_chunk(tx, s.id, tail_start + (i * CHUNK_POINTS) as i64, chunk)?;
        }
        if tail_len > 0 {
            tx.prepare_cached("DELETE FROM tail WHERE series = ?1")?
                .execute([s.id])?;
        }
        tail_start += full as i64;
        insert_tail(tx, insert_many, s.id, tail_start, &all[full..])?;
    }

    let mut min = s.min;
    let mut max = s.max;
    let mut nonfinite = s.nonfinite;
    for p in points {
        if p.value.is_finite() {
            min = min.min(p.value);
            max = max.max(p.value);
        } else {
            nonfinite += 1;
        }
    }
    let last = points.last().copied().or(s.last);
    tx.prepare_cached(
        "UPDATE series SET next_seq = ?2, tail_start = ?3, count = ?2, last_step = ?4, last_ts = ?5, \
         last_value = ?6, min_value = ?7, max_value = ?8, nonfinite = ?9 WHERE id = ?1",
    )?
    .execute(params![
        s.id,
        next_seq,
        tail_start,
        last.map(|p| p.step),
        last.map(|p| p.ts_ms),
        last.map(|p| bits(p.value)),
        opt_bits(min),
        opt_bits(max),
        nonfinite,
    ])?;
    Ok(())
}

fn insert_tail(
    tx: &Transaction<'_>,
    insert_many: &str,
    series: i64,
    first_seq: i64,
    points: &[Point],
) -> Result<(), Fail> {
    let mut seq = first_seq;
    let groups = points.chunks_exact(TAIL_ROWS_PER_INSERT);
    let rest = groups.remainder();
    if points.len() >= TAIL_ROWS_PER_INSERT {
        let mut stmt = tx.prepare_cached(insert_many)?;
        for group in groups {
            for (i, p) in group.iter().enumerate() {
                let at = i * 5;
                stmt.raw_bind_parameter(at + 1, series)?;
                stmt.raw_bind_parameter(at + 2, seq)?;
                stmt.raw_bind_parameter(at + 3, p.step)?;
                stmt.raw_bind_parameter(at + 4, p.ts_ms)?;
                stmt.raw_bind_parameter(at + 5, bits(p.value))?;
                seq += 1;
            }
            stmt.raw_execute()?;
        }
    }
    if !rest.is_empty() {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO tail (series, seq, step, ts, value) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for p in rest {
            stmt.execute(params![series, seq, p.step, p.ts_ms, bits(p.value)])?;
            seq += 1;
        }
    }
    Ok(())
}

fn write_chunk(
    tx: &Transaction<'_>,
    series: i64,
    first_seq: i64,
    points: &[Point],
) -> Result<(), Fail> {
    let data = codec::encode(points);
    let (blocks, s) = encode_blocks(points);
    let hash = blake3::hash(&data);
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO chunks (series, first_seq, count, step_min, step_max, ts_first, ts_last, \
         min_value, max_value, first_value, last_value, nonfinite, hash, blocks, data) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        series,
        first_seq,
        points.len() as i64,
        s.step_min,
        s.step_max,
        first.ts_ms,
        last.ts_ms,
        opt_bits(s.min),
        opt_bits(s.max),
        bits(first.value),
        bits(last.value),
        s.nonfinite as i64,
        hash.as_bytes().as_slice(),
        blocks,
        data,
    ])?;
    Ok(())
}

fn seal_tail(tx: &Transaction<'_>, s: &SeriesRow) -> Result<(), Fail> {
    let tail = read_tail(tx, s)?;
    if tail.is_empty() {
        return Ok(());
    }
    // A tail is shorter than a chunk, but stay correct if a future writer left a longer one.
    for (i, chunk) in tail.chunks(CHUNK_POINTS).enumerate() {
        write_chunk(tx, s.id, s.tail_start + (i * CHUNK_POINTS) as i64, chunk)?;
    }
    tx.prepare_cached("DELETE FROM tail WHERE series = ?1")?
        .execute([s.id])?;
    tx.prepare_cached("UPDATE series SET tail_start = next_seq WHERE id = ?1")?
        .execute([s.id])?;
    Ok(())
}

/// Points with `from <= seq < to`, chunks then tail.
fn history_in(conn: &Connection, s: &SeriesRow, from: i64, to: i64) -> Result<Vec<Point>, Fail> {
    let (from, to) = (from.max(0), to.min(s.next_seq));
    if from >= to {
        return Ok(Vec::new());
    }
    let mut out = Vec::with_capacity(usize::try_from(to - from).unwrap_or(0));
    if from < s.tail_start {
        let mut stmt = conn.prepare_cached(
            "SELECT first_seq, count, hash, data FROM chunks \
             WHERE series = ?1 AND first_seq < ?3 AND first_seq + count > ?2 ORDER BY first_seq",
        )?;
        let mut rows = stmt.query(params![s.id, from, to.min(s.tail_start)])?;
        // Chunks tile 0..tail_start: each starts where the previous ended.
        let mut expected: Option<i64> = None;
        while let Some(row) = rows.next()? {
            let first_seq: i64 = row.get(0)?;
            let count: i64 = row.get(1)?;
            if expected.is_some_and(|e| e != first_seq) || (expected.is_none() && first_seq > from)
            {
                return Err(Fail::Row(format!(
                    "no chunk holds seq {}",
                    expected.unwrap_or(from)
                )));
            }
            let points = open_chunk(
                first_seq,
                count,
                blob(row, 2, first_seq)?,
                blob(row, 3, first_seq)?,
            )?;
            let lo = usize::try_from(from.saturating_sub(first_seq))
                .unwrap_or(0)
                .min(points.len());
            let hi = usize::try_from(to.saturating_sub(first_seq))
                .unwrap_or(0)
                .min(points.len());
            out.extend_from_slice(&points[lo..hi]);
            expected = Some(first_seq.saturating_add(count));
        }
        let covered = expected.unwrap_or(from);
        if covered < to.min(s.tail_start) {
            return Err(Fail::Row(format!("no chunk holds seq {covered}")));
        }
    }
    out.extend(read_tail_range(conn, s, from, to)?);
    Ok(out)
}

/// Where the sealed chunk holding point `seq` ends (one past its last point); `seq + 1` when
/// no chunk starts at or before it, which `history_in` then reports as a missing chunk.
fn chunk_end(conn: &Connection, series: i64, seq: i64) -> Result<i64, Fail> {
    let end: Option<i64> = conn
        .prepare_cached(
            "SELECT first_seq + count FROM chunks WHERE series = ?1 AND first_seq <= ?2 \
             ORDER BY first_seq DESC LIMIT 1",
        )?
        .query_row(params![series, seq], |r| r.get(0))
        .optional()?;
    Ok(end.filter(|e| *e > seq).unwrap_or(seq.saturating_add(1)))
}

fn downsample_in(
    conn: &Connection,
    s: &SeriesRow,
    range: Option<(i64, i64)>,
    buckets: usize,
) -> Result<Vec<Bucket>, Fail> {
    let (want_lo, want_hi) = range.unwrap_or((i64::MIN, i64::MAX));
    let tail = read_tail(conn, s)?;
    let heads = chunk_heads(conn, s.id, want_lo, want_hi)?;

    let (lo, hi) = match range {
        Some(r) => r,
        None => {
            let steps = heads
                .iter()
                .flat_map(|c| [c.summary.step_min, c.summary.step_max])
                .chain(tail.iter().map(|p| p.step));
            match steps.fold(None, |acc: Option<(i64, i64)>, st| {
                Some(acc.map_or((st, st), |(a, b)| (a.min(st), b.max(st))))
            }) {
                Some(r) => r,
                None => return Ok(Vec::new()),
            }
        }
    };
    let grid = Grid::new(lo, hi, buckets);

    // How many points are in range? Whole chunks count fully; chunks at the edges of the range
    // are counted block by block.
    let mut blocks: Vec<Option<Vec<Summary>>> = Vec::with_capacity(heads.len());
    let mut in_range: u64 = tail.iter().filter(|p| grid.contains(p.step)).count() as u64;
    for c in &heads {
        if grid.contains(c.summary.step_min) && grid.contains(c.summary.step_max) {
            in_range += c.summary.count;
            blocks.push(None);
        } else {
            let parsed = parse_blocks(c)?;
            in_range += parsed
                .iter()
                .filter(|b| b.step_max >= lo && b.step_min <= hi)
                .map(|b| b.count)
                .sum::<u64>();
            blocks.push(Some(parsed));
        }
    }
    let summaries_suffice = u128::from(in_range) >= BLOCK_POINTS as u128 * buckets as u128;

    let mut out = Buckets::new(grid, in_range);
    for (c, parsed) in heads.iter().zip(blocks) {
        if summaries_suffice {
            if let Fit::One(i) = grid.fit(&c.summary) {
                out.one(i, &c.summary);
                continue;
            }
            let parsed = match parsed {
                Some(p) => p,
                None => parse_blocks(c)?,
            };
            let fits: Vec<Fit> = parsed.iter().map(|b| grid.fit(b)).collect();
            if !fits.contains(&Fit::Decode) {
                for (b, fit) in parsed.iter().zip(fits) {
                    match fit {
                        Fit::One(i) => out.one(i, b),
                        Fit::Two(i) => out.two(i, b),
                        Fit::Outside | Fit::Decode => {}
                    }
                }
                continue;
            }
        }
        for p in &decode_chunk(conn, s.id, c)? {
            out.point(p);
        }
    }
    for p in &tail {
        out.point(p);
    }
    Ok(out.finish())
}

/// Summary columns and block summaries of the chunks of `series` whose steps overlap `lo..=hi`.
fn chunk_heads(conn: &Connection, series: i64, lo: i64, hi: i64) -> Result<Vec<ChunkHead>, Fail> {
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, count, step_min, step_max, ts_first, ts_last, first_value, last_value, \
         min_value, max_value, nonfinite, blocks FROM chunks \
         WHERE series = ?1 AND step_max >= ?2 AND step_min <= ?3 ORDER BY first_seq",
    )?;
    let mut rows = stmt.query(params![series, lo, hi])?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let first_seq: i64 = row.get(0)?;
        let corrupt = |what: &str| Fail::Chunk {
            first_seq,
            source: DecodeError::Malformed(format!("row summary: {what}")),
        };
        let count = u64::try_from(row.get::<_, i64>(1)?).map_err(|_| corrupt("negative count"))?;
        let nonfinite =
            u64::try_from(row.get::<_, i64>(10)?).map_err(|_| corrupt("negative nonfinite"))?;
        let (ts_first, ts_last): (i64, i64) = (row.get(4)?, row.get(5)?);
        let summary = Summary {
            step_min: row.get(2)?,
            step_max: row.get(3)?,
            ts_min: ts_first.min(ts_last),
            ts_max: ts_first.max(ts_last),
            first: from_bits(row.get(6)?),
            last: from_bits(row.get(7)?),
            min: row.get::<_, Option<i64>>(8)?.map_or(f64::NAN, from_bits),
            max: row.get::<_, Option<i64>>(9)?.map_or(f64::NAN, from_bits),
            count,
            nonfinite,
        };
        let finite_ok = if nonfinite == count {
            summary.min.is_nan() && summary.max.is_nan()
        } else {
            summary.min.is_finite() && summary.max.is_finite() && summary.min <= summary.max
        };
        if count == 0 || nonfinite > count || summary.step_min > summary.step_max || !finite_ok {
            return Err(corrupt("inconsistent"));
        }
        out.push(ChunkHead {
            first_seq,
            summary,
            blocks: row.get(11)?,
        });
    }
    Ok(out)
}

fn parse_blocks(c: &ChunkHead) -> Result<Vec<Summary>, Fail> {
    decode_blocks(&c.blocks, c.summary.count).map_err(|source| Fail::Chunk {
        first_seq: c.first_seq,
        source,
    })
}

fn decode_chunk(conn: &Connection, series: i64, c: &ChunkHead) -> Result<Vec<Point>, Fail> {
    let mut stmt =
        conn.prepare_cached("SELECT hash, data FROM chunks WHERE series = ?1 AND first_seq = ?2")?;
    let mut rows = stmt.query(params![series, c.first_seq])?;
    let row = rows
        .next()?
        .ok_or_else(|| Fail::Row(format!("chunk at seq {} vanished", c.first_seq)))?;
    let count = i64::try_from(c.summary.count).unwrap_or(-1);
    open_chunk(
        c.first_seq,
        count,
        blob(row, 0, c.first_seq)?,
        blob(row, 1, c.first_seq)?,
    )
}
