//! The error type of `cairn-metrics`: every failure names the series (run/key) it concerns and,
//! for sealed data, the chunk. Corrupt bytes on disk surface here, never as a panic.

use std::path::PathBuf;

/// Why a chunk (or its block summaries) could not be decoded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The stored BLAKE3 hash does not match the chunk bytes.
    #[error("BLAKE3 hash mismatch (stored {stored}, computed {computed})")]
    HashMismatch {
        /// Hex of the hash stored next to the chunk.
        stored: String,
        /// Hex of the hash of the bytes actually read.
        computed: String,
    },
    /// The header names a codec version or value mode this build does not know.
    #[error("unknown codec header byte {0:#04x}")]
    UnknownHeader(u8),
    /// The bytes end before the structure they describe.
    #[error("truncated: {0}")]
    Truncated(&'static str),
    /// The bytes are structurally invalid.
    #[error("malformed: {0}")]
    Malformed(String),
}

/// Everything that can go wrong in a [`MetricStore`](crate::MetricStore).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database file could not be opened or initialised.
    #[error("opening metric database {path}: {source}")]
    Open {
        /// The database path.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer version of Cairn.
    #[error(
        "metric database {path} has schema version {found}; this build supports up to {supported}"
    )]
    SchemaTooNew {
        /// The database path.
        path: PathBuf,
        /// The version stored in the database.
        found: i64,
        /// The newest version this build understands.
        supported: i64,
    },
    /// A SQLite call failed while working on `series`.
    #[error("metric store: {op} {series}: {source}")]
    Database {
        /// What was being done ("appending to", "reading", ...).
        op: &'static str,
        /// `run/key`, or the run alone for run-wide operations.
        series: String,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A sealed chunk of `series` failed verification or decoding.
    #[error("metric series {series}: chunk at seq {first_seq} is corrupt: {source}")]
    CorruptChunk {
        /// `run/key`.
        series: String,
        /// The sequence number of the chunk's first point (its key in the `chunks` table).
        first_seq: i64,
        /// What is wrong with it.
        #[source]
        source: DecodeError,
    },
    /// A row of `series` (its bookkeeping or its live tail) holds impossible values.
    #[error("metric series {series}: corrupt row: {reason}")]
    CorruptRow {
        /// `run/key`.
        series: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The metric key is empty.
    #[error("empty metric key in run {run:?}")]
    EmptyKey {
        /// The run the points were meant for.
        run: String,
    },
    /// The run id is empty.
    #[error("empty run id (metric key {key:?})")]
    EmptyRun {
        /// The key the points were meant for.
        key: String,
    },
}
