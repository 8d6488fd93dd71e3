//! The one error type of Cairn's API, with a stable machine-readable [`Code`] that the CLI, the
//! HTTP server and the desktop app map to exit codes, HTTP statuses and `{code, message}`.

use std::path::PathBuf;

use cairn_model::SchemaViolation;

/// What kind of failure, for front ends to act on without parsing messages. The HTTP server
/// maps each to a status (NOT_FOUND 404, INVALID_ARGUMENT and SCHEMA_VIOLATION 400,
/// ALREADY_EXISTS and CONFLICT 409, UNAVAILABLE 503, the rest 500; the guards' own codes to
/// 401, 403, 413 and 415).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[non_exhaustive]
pub enum Code {
    NotFound,
    InvalidArgument,
    AlreadyExists,
    /// The request contradicts what is stored (a param logged with another value, a run that
    /// cannot take this status).
    Conflict,
    /// A run lacks what its project's schema requires.
    SchemaViolation,
    /// Stored data failed verification (a corrupt chunk, blob or doc).
    Corrupt,
    Io,
    /// Busy or out of time: the same request may succeed later.
    Unavailable,
    Internal,
    /// The transports' guards: no or a wrong token, a page of another origin, a body too large
    /// or of the wrong type.
    Unauthenticated,
    PermissionDenied,
    PayloadTooLarge,
    UnsupportedMediaType,
}

/// The one `{code, message}` body every transport sends for an error (HTTP under `/api/v1`, the
/// desktop's command). Query errors also say where and what: `column` (1-based, in
/// characters), `expected` and `found`, so a front end points at the spot without reading the
/// message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ErrorBody {
    pub code: Code,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub column: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub expected: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub found: Option<String>,
}

impl ErrorBody {
    pub fn new(code: Code, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
            column: None,
            expected: None,
            found: None,
        }
    }
}

impl From<&Error> for ErrorBody {
    fn from(e: &Error) -> ErrorBody {
        let mut body = ErrorBody::new(e.code(), e.to_string());
        if let Some(q) = e.query_error() {
            use cairn_search::query::QueryErrorKind as K;
            body.column = Some(q.column);
            match &q.kind {
                K::Unexpected {
                    found, expected, ..
                } => {
                    body.found = Some(found.clone());
                    body.expected = Some(expected.clone());
                }
                K::UnknownField {
                    field, expected, ..
                } => {
                    body.found = Some(field.clone());
                    body.expected = Some(expected.clone());
                }
                _ => {}
            }
        }
        body
    }
}

impl From<Error> for ErrorBody {
    fn from(e: Error) -> ErrorBody {
        ErrorBody::from(&e)
    }
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
    #[error(
        "artifact path '{path}' of run {run} cannot be written or deleted: '{locked}' backs \
         registered model '{model}' version {version}, which is pinned to its content (log the \
         files under another path, or delete that version first)"
    )]
    RegisteredArtifact {
        run: String,
        path: String,
        model: String,
        version: u32,
        locked: String,
    },
    /// A promotion its gate refused: every failed check, with its value and threshold.
    #[error(
        "promoting model '{model}' version {version} to @{alias} is refused by its gate: {}",
        failed.join("; ")
    )]
    GateRefused {
        model: String,
        version: u32,
        alias: String,
        failed: Vec<String>,
    },
    #[error("no saved view '{0}'")]
    UnknownView(String),
    /// No notebook has this id, or no id starts with this prefix.
    #[error("no notebook '{0}'")]
    UnknownNotebook(String),
    #[error("no review with id '{0}'")]
    UnknownReview(String),
    #[error("run {run} has no tag '{key}'")]
    UnknownTag { run: String, key: String },
    #[error("experiment {experiment} has no tag '{key}'")]
    UnknownExperimentTag {
        experiment: cairn_model::ExperimentId,
        key: String,
    },
    /// A change to a deleted experiment (restore it first).
    #[error("experiment {0} is deleted: restore it first")]
    ExperimentDeleted(cairn_model::ExperimentId),
    /// A logged model lacks a tag (MLflow's wording).
    #[error("No tag with key {} found for model with ID {}.", cairn_model::py_repr(.key), cairn_model::py_repr(.model))]
    UnknownModelTag { model: String, key: String },
    #[error("logged model {model} has no artifact '{path}'")]
    UnknownModelArtifact { model: String, path: String },
    #[error("'{0}' is not an operation of Cairn's API")]
    UnknownOperation(String),
    /// An evaluation dataset that does not exist (or was deleted), in the words of the call
    /// that looked for it (MLflow words each differently).
    #[error("{0}")]
    UnknownEvalDataset(String),
    /// A request a transport handed over did not decode into the operation's request type.
    #[error("malformed request for {op}: {reason}")]
    BadRequest { op: &'static str, reason: String },
    /// A query (or an order, a filter) that does not parse; `what` names which.
    #[error("invalid {what}: {source}")]
    Query {
        what: &'static str,
        #[source]
        source: cairn_search::QueryError,
    },
    #[error(transparent)]
    Search(cairn_search::SearchError),
    /// The request contradicts what is stored.
    #[error("{0}")]
    Conflict(String),
    /// What the request needs is not running here (a sync node, on a server started without
    /// `--sync`).
    #[error("{0}")]
    Unavailable(String),
    /// An operation panicked; the workspace handle recovered (see `Workspace`).
    #[error("internal error in {op}: {message}")]
    Panicked { op: &'static str, message: String },
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
    #[error(transparent)]
    Traces(#[from] cairn_traces::Error),
    #[error(transparent)]
    Audit(#[from] cairn_audit::Error),
    /// A backup file that does not read, or cannot be written.
    #[error("backup: {0}")]
    Backup(#[from] crate::backup::ContainerError),
    /// An event file of a TensorBoard import that does not read: the file, the byte, what.
    #[error("{path}: {error}")]
    EventFile {
        path: PathBuf,
        error: cairn_tensorboard::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A server another tracker runs (an import's source) that failed or answered wrongly:
    /// its URL, without credentials, and what went wrong (status and the body's start).
    #[error("{url}: {reason}")]
    Remote { url: String, reason: String },
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

fn search_code(e: &cairn_search::SearchError) -> Code {
    use cairn_search::SearchError as S;
    match e {
        S::Query(_) | S::Like(_) => Code::InvalidArgument,
        S::Busy { .. } => Code::Unavailable,
        S::Io { .. } | S::NotAnIndex { .. } => Code::Io,
        _ => Code::Internal,
    }
}

impl From<cairn_search::SearchError> for Error {
    fn from(e: cairn_search::SearchError) -> Error {
        match e {
            cairn_search::SearchError::Query(source) => Error::Query {
                what: "query",
                source,
            },
            other => Error::Search(other),
        }
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
            | Error::UnknownNotebook(_)
            | Error::UnknownModelVersion { .. }
            | Error::UnknownView(_)
            | Error::UnknownReview(_)
            | Error::UnknownTag { .. }
            | Error::UnknownExperimentTag { .. }
            | Error::UnknownModelTag { .. }
            | Error::UnknownModelArtifact { .. }
            | Error::UnknownOperation(_)
            | Error::UnknownEvalDataset(_) => Code::NotFound,
            Error::AlreadyAWorkspace(_) | Error::ModelExists(_) => Code::AlreadyExists,
            Error::BadWorkspaceFile { .. } => Code::Corrupt,
            Error::Schema { .. } => Code::SchemaViolation,
            Error::Invalid(_)
            | Error::Model(_)
            | Error::BadRequest { .. }
            | Error::EventFile { .. }
            | Error::Query { .. } => Code::InvalidArgument,
            Error::ParamChanged { .. }
            | Error::Conflict(_)
            | Error::RegisteredArtifact { .. }
            | Error::ExperimentDeleted(_)
            | Error::GateRefused { .. } => Code::Conflict,
            Error::Panicked { .. } => Code::Internal,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Search(e) => search_code(e),
            Error::Catalog(
                C::UnknownRun(_)
                | C::NoRunMatches(_)
                | C::UnknownExperiment(_)
                | C::UnknownLoggedModel(_)
                | C::UnknownNotebook(_),
            ) => Code::NotFound,
            Error::Catalog(C::AmbiguousRun { .. } | C::BadQuery(_)) => Code::InvalidArgument,
            Error::Catalog(C::UnknownVersion { .. }) => Code::Conflict,
            Error::Catalog(
                C::DuplicateExperiment(_) | C::DeletedExperimentName(_) | C::DuplicateNotebook(_),
            ) => Code::AlreadyExists,
            Error::Catalog(C::Corrupt { .. } | C::Automerge { .. }) => Code::Corrupt,
            Error::Catalog(C::Sqlite(_)) => Code::Io,
            Error::Catalog(_) => Code::Internal,
            Error::Metrics(
                cairn_metrics::Error::CorruptChunk { .. } | cairn_metrics::Error::CorruptRow { .. },
            ) => Code::Corrupt,
            Error::Metrics(
                cairn_metrics::Error::EmptyKey { .. } | cairn_metrics::Error::EmptyRun { .. },
            ) => Code::InvalidArgument,
            Error::Metrics(_) => Code::Io,
            Error::Artifacts(cairn_artifacts::Error::NotFound(_)) => Code::NotFound,
            Error::Artifacts(cairn_artifacts::Error::Corrupt { .. }) => Code::Corrupt,
            Error::Backup(crate::backup::ContainerError::Io { .. }) => Code::Io,
            Error::Backup(crate::backup::ContainerError::TooNew { .. }) => Code::InvalidArgument,
            Error::Backup(_) => Code::Corrupt,
            Error::Artifacts(_) => Code::Io,
            Error::Io { .. } => Code::Io,
            Error::Remote { .. } => Code::Unavailable,
            Error::Sync(e) => sync_code(e),
            Error::Traces(e) => crate::traces::code(e),
            Error::Audit(e) => match e {
                cairn_audit::Error::Malformed(_)
                | cairn_audit::Error::BadSignature { .. }
                | cairn_audit::Error::Bundle { .. } => Code::InvalidArgument,
                cairn_audit::Error::SchemaTooNew { .. } => Code::Corrupt,
                _ => Code::Io,
            },
        }
    }

    /// The query error inside, when this is one.
    pub fn query_error(&self) -> Option<&cairn_search::QueryError> {
        match self {
            Error::Query { source, .. } => Some(source),
            Error::Search(cairn_search::SearchError::Query(q)) => Some(q),
            _ => None,
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
