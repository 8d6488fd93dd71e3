//! The one error type of the artifact store; every message names the path or the hash at fault.

use std::io;
use std::path::PathBuf;

use cairn_model::BlobHash;

/// Everything that can go wrong storing, reading or restoring blobs.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// No blob with this hash is stored.
    #[error("blob {0} is not in the artifact store")]
    NotFound(BlobHash),

    /// The stored bytes do not hash to the blob's name: tampered with, truncated or bit-rotted.
    #[error("blob {hash} is corrupt: its stored content hashes to {actual}")]
    Corrupt { hash: BlobHash, actual: BlobHash },

    /// A filesystem operation failed.
    #[error("cannot {op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Reading from a caller-supplied reader (e.g. an HTTP upload body) failed.
    #[error("cannot read the content to store: {0}")]
    Input(#[source] io::Error),

    /// A blob read as a directory manifest is not one.
    #[error("blob {hash} is not a valid directory manifest: {reason}")]
    BadManifest { hash: BlobHash, reason: String },

    /// A manifest entry whose path could escape the restore directory or cannot be a file name.
    #[error("manifest {manifest} has an unsafe entry path {path:?}: {reason}")]
    UnsafePath {
        manifest: BlobHash,
        path: String,
        reason: &'static str,
    },

    /// A file under a directory being stored has a name a manifest cannot hold.
    #[error("cannot store {}: {reason}", path.display())]
    UnstorableName { path: PathBuf, reason: &'static str },

    /// Restoring would write through a symlink or over a non-directory already in the destination.
    #[error("cannot restore into {}: {reason}", path.display())]
    UnsafeDestination { path: PathBuf, reason: &'static str },

    /// `digest_path`/`put_file` was given something that is neither a regular file nor a directory.
    #[error("{} is neither a regular file nor a directory", path.display())]
    NotAFileOrDirectory { path: PathBuf },
}

impl Error {
    pub(crate) fn io(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
