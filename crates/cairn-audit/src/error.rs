//! The errors of `cairn-audit`: each names the chain and event it concerns.

use std::path::PathBuf;

#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("opening audit database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "audit database {path} has schema version {found}; this build supports up to {supported}"
    )]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("audit store: {op}: {source}")]
    Database {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// An event whose shape breaks a bound or does not parse.
    #[error("malformed audit event: {0}")]
    Malformed(String),
    #[error("audit event {}#{seq}: {why}", crate::event::short(device))]
    BadSignature {
        device: String,
        seq: u64,
        why: String,
    },
    /// A bundle file that cannot be read as one.
    #[error("audit bundle {path}: {why}")]
    Bundle { path: PathBuf, why: String },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    move |source| Error::Database { op, source }
}
