//! The errors of `cairn-traces`: every failure names what it concerns — the trace, the chunk,
//! the filter's offending part, the OTLP field that was refused.

use std::path::PathBuf;

/// Why stored or received bytes could not be decoded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("BLAKE3 hash mismatch (stored {stored}, computed {computed})")]
    HashMismatch { stored: String, computed: String },
    #[error("unknown chunk format byte {0:#04x}")]
    UnknownHeader(u8),
    #[error("truncated: {0}")]
    Truncated(&'static str),
    #[error("malformed: {0}")]
    Malformed(String),
}

/// Everything that can go wrong in a [`TraceStore`](crate::TraceStore).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening trace database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "trace database {path} has schema version {found}; this build supports up to {supported}"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// A SQLite call failed while doing `op`.
    #[error("trace store: {op}: {source}")]
    Database {
        op: String,
        #[source]
        source: rusqlite::Error,
    },
    /// A stored chunk of the log failed verification or decoding; `traces` names the traces
    /// whose spans it was read for.
    #[error(
        "trace store: chunk {first_seq} of source {source_name} (read for {traces}) is corrupt: {error}"
    )]
    CorruptChunk {
        source_name: String,
        first_seq: i64,
        traces: String,
        error: DecodeError,
    },
    /// A stored row or entry holds impossible values.
    #[error("trace store: corrupt data for {what}: {reason}")]
    Corrupt { what: String, reason: String },
    // The messages of these three read as MLflow's server words them.
    #[error("Trace with ID '{0}' not found.")]
    UnknownTrace(String),
    #[error("Assessment with ID '{id}' not found for trace '{trace}'")]
    UnknownAssessment { trace: String, id: String },
    #[error("No trace tag with key '{key}' for trace with ID '{trace}'")]
    UnknownTag { trace: String, key: String },
    #[error("invalid trace id '{0}': it must be 1-256 letters, digits or -_.:/")]
    InvalidTraceId(String),
    /// A search filter that does not parse or asks for something unsupported.
    #[error("invalid trace filter '{filter}': {reason}")]
    Filter { filter: String, reason: String },
    /// A value a caller gave that the store refuses (an empty key, an unknown order).
    #[error("{0}")]
    Invalid(String),
    /// An OTLP request that does not decode or exceeds a bound.
    #[error("invalid OTLP request: {0}")]
    Otlp(String),
    /// A peer's entries that do not continue this store's copy of its log.
    #[error("entries of source {source_name} from a peer: {reason}")]
    Peer { source_name: String, reason: String },
}

impl Error {
    pub(crate) fn db(op: impl Into<String>) -> impl FnOnce(rusqlite::Error) -> Error {
        let op = op.into();
        move |source| Error::Database { op, source }
    }
}
