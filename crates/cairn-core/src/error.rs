//! The one error type of Cairn's API, with a stable machine-readable [`Code`] that the CLI, the
//! HTTP server and the desktop app map to exit codes, HTTP statuses and `{code, message}`.

use std::path::PathBuf;

use cairn_model::SchemaViolation;

/// What kind of failure, for front ends to act on without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[non_exhaustive]
pub enum Code {
    NotFound,
    InvalidArgument,
    AlreadyExists,
    /// A run lacks what its project's schema requires.
    SchemaViolation,
    /// Stored data failed verification (a corrupt chunk, blob or doc).
    Corrupt,
    Io,
    Internal,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("{0} is not a Cairn workspace (no workspace.json); create one with `cairn init`")]
    NotAWorkspace(PathBuf),
    #[error("{0} is already a Cairn workspace")]
    AlreadyAWorkspace(PathBuf),
    #[error("workspace file {path}: {reason}")]
    BadWorkspaceFile { path: PathBuf, reason: String },
    #[error("no experiment '{0}'")]
    UnknownExperiment(String),
    #[error(
        "run does not satisfy the schema of experiment '{experiment}': {}",
        list(violations)
    )]
    Schema {
        experiment: String,
        violations: Vec<SchemaViolation>,
    },
    #[error(
        "param '{key}' of run {run} was already logged as '{old}'; params cannot change (got '{new}')"
    )]
    ParamChanged {
        run: String,
        key: String,
        old: String,
        new: String,
    },
    #[error("run {run} has no artifact '{path}'")]
    UnknownArtifact { run: String, path: String },
    #[error("run {run} has no metric '{key}'")]
    UnknownMetric { run: String, key: String },
    #[error("no registered model '{0}'")]
    UnknownModel(String),
    #[error("a registered model named '{0}' already exists")]
    ModelExists(String),
    #[error("registered model '{name}' has no version {version}")]
    UnknownModelVersion { name: String, version: String },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Model(#[from] cairn_model::ModelError),
    #[error(transparent)]
    Catalog(#[from] cairn_catalog::Error),
    #[error(transparent)]
    Metrics(#[from] cairn_metrics::Error),
    #[error(transparent)]
    Artifacts(#[from] cairn_artifacts::Error),
    #[error(transparent)]
    Sync(#[from] cairn_sync::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn sync_code(e: &cairn_sync::Error) -> Code {
    use cairn_sync::Error as S;
    match e {
        S::NotAMember(_) | S::Refused(_) | S::BadTicket(_) | S::Team(_) => Code::InvalidArgument,
        S::Catalog(cairn_catalog::Error::Corrupt { .. }) => Code::Corrupt,
        S::Protocol(_) | S::Io(_) | S::Net(_) | S::File { .. } => Code::Io,
        _ => Code::Internal,
    }
}

fn list(v: &[SchemaViolation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    pub fn code(&self) -> Code {
        use cairn_catalog::Error as C;
        match self {
            Error::NotAWorkspace(_)
            | Error::UnknownExperiment(_)
            | Error::UnknownArtifact { .. }
            | Error::UnknownMetric { .. }
            | Error::UnknownModel(_)
            | Error::UnknownModelVersion { .. } => Code::NotFound,
            Error::AlreadyAWorkspace(_) | Error::ModelExists(_) => Code::AlreadyExists,
            Error::BadWorkspaceFile { .. } => Code::Corrupt,
            Error::Schema { .. } => Code::SchemaViolation,
            Error::ParamChanged { .. } | Error::Invalid(_) | Error::Model(_) => {
                Code::InvalidArgument
            }
            Error::Catalog(C::UnknownRun(_) | C::NoRunMatches(_) | C::UnknownExperiment(_)) => {
                Code::NotFound
            }
            Error::Catalog(C::AmbiguousRun { .. }) => Code::InvalidArgument,
            Error::Catalog(C::DuplicateExperiment(_) | C::DeletedExperimentName(_)) => {
                Code::AlreadyExists
            }
            Error::Catalog(C::Corrupt { .. }) => Code::Corrupt,
            Error::Catalog(_) => Code::Internal,
            Error::Metrics(e) if e.to_string().contains("corrupt") => Code::Corrupt,
            Error::Metrics(_) => Code::Internal,
            Error::Artifacts(cairn_artifacts::Error::NotFound(_)) => Code::NotFound,
            Error::Artifacts(cairn_artifacts::Error::Corrupt { .. }) => Code::Corrupt,
            Error::Artifacts(_) => Code::Io,
            Error::Io { .. } => Code::Io,
            Error::Sync(e) => sync_code(e),
        }
    }

    /// True when the error says a run does not exist (an unknown or malformed run id).
    pub fn is_unknown_run(&self) -> bool {
        matches!(
            self,
            Error::Catalog(
                cairn_catalog::Error::UnknownRun(_) | cairn_catalog::Error::NoRunMatches(_)
            ) | Error::Model(cairn_model::ModelError::InvalidId { what: "run id", .. })
        )
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
