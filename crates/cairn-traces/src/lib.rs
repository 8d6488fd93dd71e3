//! Cairn's trace store: the traces GenAI apps send through MLflow 3's client (`mlflow.trace`,
//! `mlflow.start_span`, autologging) and OpenTelemetry's OTLP exporters — spans, the trace-level
//! facts MLflow keeps, tags, assessments, links to runs — kept the way metric points are: an
//! append-only log in SQLite, sealed into immutable compressed chunks named by their BLAKE3,
//! with an index for search beside it.
//!
//! What this crate is:
//! - [`TraceStore`]: one SQLite database (`traces.db`: WAL, `synchronous=NORMAL`). Appends are
//!   durable when they return and several processes may append at once.
//! - The log: every write is an [`Entry`] (a span, trace fields, a tag set or deleted, an
//!   assessment written or deleted, a link to a run, a deletion) appended to this store's own
//!   *source*. Entries land as tail rows; a tail reaching [`CHUNK_ENTRIES`] entries (or
//!   [`CHUNK_BYTES`] bytes) is sealed into a DEFLATE-compressed chunk in the same transaction.
//!   Chunks never change. A peer's entries are kept in a source of their own, so logs travel
//!   between devices like metric series do: each has one writer, peers compare high-water
//!   marks ([`TraceStore::marks`]) and send sealed chunks as stored plus the rest as entries.
//! - The index, a projection of the log kept in the appending transaction: `traces` (one row
//!   per trace: experiment, times, state, name, previews, run), `trace_kv` (trace fields,
//!   metadata and tags, one row per key), `spans` (id, parent, name, type, status, times, and
//!   where the span sits in the log), `span_text` (an FTS5 trigram index for substring search
//!   over spans' text, one row per trace and append), `trace_text` (the same over each trace's
//!   id, name and previews), `assessments`, `trace_runs`, `deleted`. Every mutable row keeps the
//!   stamp of the entry that wrote it (time, source, position) and only a later stamp replaces
//!   it; deletions are tombstones. So two devices that received the same entries in any order
//!   agree.
//! - Reads: a trace's info ([`TraceStore::info`]), its spans from the log
//!   ([`TraceStore::spans`]), searches with MLflow's trace filter grammar
//!   ([`TraceStore::search`]), MLflow's trace metrics ([`TraceStore::metrics`]).
//! - [`otlp`]: a bounded decoder of OTLP/HTTP requests (protobuf and JSON).
//!
//! What it is not: it knows nothing of runs and experiments beyond their ids (the caller checks
//! them), speaks no HTTP, does no networking (sync lives in `cairn-sync`), and decides nothing
//! MLflow's API leaves to the server (trace ids of v2 traces, assessment ids: the caller's).
//!
//! # Ordering and conflicts
//!
//! Of two writes to one key (a tag, a trace field, an assessment) the one with the later stamp
//! wins: wall-clock milliseconds, then the source's name, then the position in its log — the
//! same answer on every device. A deleted trace stays deleted: entries about it that arrive
//! later (from a peer that had not heard) are kept in the log but change nothing.

mod codec;
mod encoding;
mod error;
mod filter;
mod metrics;
mod model;
pub mod otlp;
mod project;
mod query;
mod span_text;
mod store;

pub use codec::{MAX_CHUNK_RAW, MAX_DEPTH, decode_entry, entry_bytes};
pub use encoding::{base64, hex, unbase64, unhex};
pub use error::{DecodeError, Error};
pub use filter::{MAX_CLAUSES, MAX_FILTER, MAX_IN_VALUES};
pub use metrics::MAX_METRIC_RESULTS;
pub use model::{
    Assessment, AssessmentError, AssessmentSource, AssessmentValue, Entry, Event, Field, Link,
    Record, Span, SpanStatus, StatusCode, TraceId, TraceInfo, TraceState, Value, attr, meta, tag,
};
pub use query::{Aggregation, DataPoint, MAX_PAGE, MetricView, MetricsQuery, Search};
pub use store::{
    CHUNK_BYTES, CHUNK_ENTRIES, MIN_CHUNK_ENTRIES, SealedChunk, SourceMark, StorageStats,
    TraceStore,
};

/// Checks a filter without running it (what a front end does before it asks).
pub fn check_filter(filter: &str) -> Result<(), Error> {
    filter::parse(filter).map(drop)
}
