//! The catalog's error type.

use cairn_model::{ExperimentId, LoggedModelId, NotebookId, RunId};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("catalog database: {0}")]
    Sqlite(#[from] Box<rusqlite::Error>),
    #[error("catalog document {doc}: {source}")]
    Automerge {
        doc: String,
        source: Box<automerge::AutomergeError>,
    },
    #[error("catalog document {doc} is corrupt: {reason}")]
    Corrupt { doc: String, reason: String },
    #[error("no run {0}")]
    UnknownRun(RunId),
    #[error("no run id starts with '{0}'")]
    NoRunMatches(String),
    #[error("run id prefix '{prefix}' is ambiguous: it matches {}", matches.join(", "))]
    AmbiguousRun {
        prefix: String,
        matches: Vec<String>,
    },
    #[error("Logged model with ID '{0}' not found.")]
    UnknownLoggedModel(LoggedModelId),
    /// The caller's rule refused an edit inside a write (its own error is what it returns).
    #[error("the edit was refused")]
    EditRefused,
    #[error("no notebook {0}")]
    UnknownNotebook(NotebookId),
    /// A search query that cannot be run (too long, too many terms); the text says which.
    #[error("{0}")]
    BadQuery(String),
    #[error("{doc} has no version {heads}: it was not read from this device's copy")]
    UnknownVersion { doc: String, heads: String },
    #[error("notebook {0} already exists")]
    DuplicateNotebook(NotebookId),
    #[error("no experiment {0}")]
    UnknownExperiment(ExperimentId),
    #[error("an experiment named '{0}' already exists")]
    DuplicateExperiment(String),
    #[error("a deleted experiment is named '{0}': restore it, or pick another name")]
    DeletedExperimentName(String),
    #[error(
        "this catalog was written by a newer Cairn (format {found}, this build reads up to {supported})"
    )]
    NewerFormat { found: i64, supported: i64 },
}

impl Error {
    pub(crate) fn automerge(doc: &str) -> impl FnOnce(automerge::AutomergeError) -> Error + '_ {
        move |source| Error::Automerge {
            doc: doc.to_owned(),
            source: Box::new(source),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Sqlite(Box::new(e))
    }
}
