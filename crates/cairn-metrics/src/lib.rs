//! Cairn's metric series storage: the points a training run logs (`loss` at step 500, ...),
//! kept in SQLite as a small live tail of rows that is sealed into immutable, Gorilla-compressed
//! chunks with per-chunk and per-block summaries, so that a chart of any length never has to read
//! every point.
//!
//! What this crate is:
//! - [`MetricStore`]: one SQLite database (WAL, `synchronous=NORMAL`) holding any number of
//!   series, each identified by an opaque run id and a metric key. Appends are durable when they
//!   return (they survive `kill -9` of the process) and several processes may append at once.
//! - Reading: the full history, pages of it (MLflow's get-history), per-series summaries and
//!   [`MetricStore::downsample`], a min/max envelope of a step range in equal-width buckets that
//!   never loses a spike.
//!
//! What it is not: it does not validate metric names (the caller does, beyond rejecting empty
//! ones), knows nothing of experiments, runs' metadata or automerge, does no networking (sealed
//! chunks carry a BLAKE3 hash so that sync can ship them as content-addressed blobs, but sync
//! lives elsewhere), and never renders anything.
//!
//! # Ordering
//!
//! Points are ordered by an append sequence number, i.e. by the time they were logged. Steps need
//! not be monotonic: a run resumed from a checkpoint may log step 500 again. Both points are kept,
//! and [`MetricStore::history`] returns them in append order; [`MetricStore::downsample`] buckets
//! by step, so both land in the bucket of step 500.
//!
//! # Storage
//!
//! - `series`: one row per (run, key) with the next sequence number, the first sequence number
//!   still in the tail, and running aggregates (count, last point, finite min/max, non-finite
//!   count) so that [`MetricStore::series`] reads no points.
//! - `tail`: the newest points of each series, one row each, fewer than [`CHUNK_POINTS`].
//! - `chunks`: sealed runs of points. `data` is the codec blob, `hash` its BLAKE3, `blocks` one
//!   summary per [`BLOCK_POINTS`] points. Chunks are immutable once written.
//!
//! A small append inserts tail rows; when the tail reaches [`CHUNK_POINTS`] it is sealed in the
//! same transaction. A large append (thousands of points) does not go through row inserts: it is
//! merged with the tail in memory and written as chunks of [`CHUNK_POINTS`]; what is left over
//! becomes a shorter chunk of its own if it holds at least [`MIN_CHUNK_POINTS`] points, and tail
//! rows otherwise. (Keeping every remainder as rows, up to 8191 of them per append, made 10k-point
//! appends 8-10× slower: the rows are inserted, read back and deleted again by the next append.)
//! [`MetricStore::seal_run`] seals every tail of a run, whatever its size, when the run ends.
//!
//! Point values are stored as their `f64` bit patterns everywhere (also in rows: SQLite turns a
//! NaN into NULL and may store `-0.0` as the integer 0), so every value comes back bit-exactly.

mod bits;
mod codec;
mod downsample;
mod error;
mod store;
mod summary;

pub use error::{DecodeError, Error};
pub use store::{MetricStore, decode_peer_chunk};
pub use summary::BLOCK_POINTS;

/// Points per sealed chunk. The remainder of a large append (at least [`MIN_CHUNK_POINTS`]) and a
/// chunk written by [`MetricStore::seal_run`] may hold fewer.
pub const CHUNK_POINTS: usize = 8192;

/// The shortest remainder of a large append that is sealed as a chunk rather than kept as rows.
pub const MIN_CHUNK_POINTS: usize = 1024;

/// One logged value of a metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// The training step the caller attached; any value, not necessarily increasing.
    pub step: i64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// The value; every `f64` (NaN payloads, ±inf, -0.0, subnormals) round-trips bit-exactly.
    pub value: f64,
}

/// A sealed chunk as stored: its position in the series, its compressed bytes and their BLAKE3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedChunk {
    pub first_seq: u64,
    pub count: u64,
    pub hash: Vec<u8>,
    pub data: Vec<u8>,
}

/// A series and how many points it holds: its high-water mark for sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesMark {
    pub run: String,
    pub key: String,
    pub count: u64,
}

/// What is known about one series without reading its points.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesInfo {
    /// The metric key.
    pub key: String,
    /// Number of points.
    pub count: u64,
    /// The point appended last (not the one with the highest step).
    pub last: Option<Point>,
    /// Smallest finite value, `None` if no value is finite.
    pub min: Option<f64>,
    /// Largest finite value, `None` if no value is finite.
    pub max: Option<f64>,
    /// Number of NaN or infinite values.
    pub nonfinite: u64,
}

/// One bucket of [`MetricStore::downsample`]: the points whose step falls in an equal-width slice
/// of the requested step range.
///
/// `min`/`max` always envelope every finite value of the bucket. Where a bucket boundary falls
/// inside a 128-point block that was read from its summary rather than decoded, that block's
/// points are shared between the two buckets it touches: both get the block's min/max (so the
/// envelope stays conservative), the count is split in proportion to the step spans (each bucket
/// gets at least one point), the step span reaches the bucket boundary, and the block's first and
/// last values stand for the first/last of each side.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Lowest step of the points in the bucket.
    pub step_lo: i64,
    /// Highest step of the points in the bucket.
    pub step_hi: i64,
    /// Number of points (finite or not).
    pub count: u64,
    /// Smallest finite value, NaN if none is finite.
    pub min: f64,
    /// Largest finite value, NaN if none is finite.
    pub max: f64,
    /// Value of the first point in append order.
    pub first: f64,
    /// Value of the last point in append order.
    pub last: f64,
    /// Number of NaN or infinite values.
    pub nonfinite: u64,
}

/// Space used by sealed data, for storage benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StorageStats {
    /// Points held in sealed chunks.
    pub points: u64,
    /// Bytes of chunk data plus block summaries.
    pub chunk_bytes: u64,
    /// Points still in tail rows (not counted in `points` or `chunk_bytes`).
    pub tail_points: u64,
}
