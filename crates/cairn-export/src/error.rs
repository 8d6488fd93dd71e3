//! What can go wrong in an export, each naming the file, directory or query at fault.

use std::path::PathBuf;

/// Why an export stopped. Nothing is left under a final file name when it does.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExportError {
    /// Reading the workspace failed, or the query is not one the search language reads. Its
    /// message already holds its causes (a query error says where and what), so it is shown
    /// once, not again as a source.
    #[error("{0}")]
    Workspace(cairn_core::Error),
    /// The directory already holds files, and overwriting was not asked for.
    #[error(
        "{} already holds files ({}); export into an empty or new directory, or overwrite with --force",
        dir.display(),
        found
    )]
    NotEmpty { dir: PathBuf, found: String },
    /// The output path exists and is not a directory.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A file or directory could not be created, written, synced or renamed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The Parquet writer refused a batch (a bug here, or the disk failed under it).
    #[error("writing {}: {source}", path.display())]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// An Arrow batch could not be built from the columns (a bug here).
    #[error("building a batch of the {table} table: {source}")]
    Arrow {
        table: &'static str,
        #[source]
        source: arrow_schema::ArrowError,
    },
}

impl From<cairn_core::Error> for ExportError {
    fn from(e: cairn_core::Error) -> Self {
        ExportError::Workspace(e)
    }
}

impl ExportError {
    /// The API's error code for this error, so the CLI and any transport classify it alike.
    pub fn code(&self) -> cairn_core::Code {
        use cairn_core::Code;
        match self {
            ExportError::Workspace(e) => e.code(),
            ExportError::NotEmpty { .. } => Code::AlreadyExists,
            ExportError::NotADirectory(_) => Code::InvalidArgument,
            ExportError::Io { .. } | ExportError::Parquet { .. } => Code::Io,
            ExportError::Arrow { .. } => Code::Internal,
        }
    }
}
