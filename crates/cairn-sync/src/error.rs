//! The sync crate's error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer broke the protocol (bad frame, bad message, out of order, bad content): the
    /// connection is dropped.
    #[error("sync protocol: {0}")]
    Protocol(String),
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Catalog(#[from] cairn_catalog::Error),
    #[error(transparent)]
    Metrics(#[from] cairn_metrics::Error),
    #[error(transparent)]
    Traces(#[from] cairn_traces::Error),
    #[error(transparent)]
    Audit(#[from] cairn_audit::Error),
    #[error(transparent)]
    Artifacts(#[from] cairn_artifacts::Error),
    #[error("sync ledger: {0}")]
    Ledger(#[from] rusqlite::Error),
    #[error("device {0} is not a member of this team")]
    NotAMember(String),
    #[error("the peer refused: {0}")]
    Refused(String),
    #[error("network: {0}")]
    Net(String),
    #[error("invitation ticket: {0}")]
    BadTicket(String),
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Team(String),
}
