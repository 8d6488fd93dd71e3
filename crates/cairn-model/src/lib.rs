//! Cairn's domain types: ids, experiments, runs with their lineage, params, tags, summary metrics
//! and artifact references, evaluations with their fairness figures, the mandatory run schema
//! with its validation and the compliance it gives a run, and the cost rules ([`cost`]: prices,
//! run cost, idle GPU time, families, budgets).
//!
//! This crate is pure data: serde derives and validation, no IO, no storage, no clock reads beyond
//! minting time-ordered ids. Storage lives in `cairn-catalog`, `cairn-metrics` and
//! `cairn-artifacts`; the API that ties them together is `cairn-core`.

pub mod cost;
mod evaluation;
pub mod gate;
mod ids;
mod lineage;
mod logged_model;
pub mod notebook;
pub mod num;
pub mod registry;
pub mod review;
mod run;
mod schema;
#[cfg(feature = "ts")]
pub mod ts;

pub use evaluation::{
    DEMOGRAPHIC_PARITY, EQUALIZED_ODDS, Evaluation, FairnessFigure, MAX_BENCHMARK_LEN,
    MAX_EVAL_METRICS, MAX_EVALUATIONS, MAX_REPORTS, MAX_SLICE_PAIRS, MAX_SLICE_TEXT, MAX_SLICES,
    Slice, difference_and_ratio, fairness, validate_benchmark, validate_eval_metrics,
};
pub use ids::{BlobHash, ExperimentId, NotebookId, RecordId, RunId, ShardId, VersionId};
pub use lineage::{
    CodeVersion, DatasetSnapshot, FeatureSetVersion, GpuGroup, InfraProfile, Lineage,
};
pub use logged_model::{
    BAD_MODEL_NAME_CHARS, Deletion, LoggedModel, LoggedModelId, LoggedModelMetric,
    LoggedModelStatus, MAX_MODEL_NAME_LEN, py_repr, validate_logged_model_name,
};
pub use num::Num;
pub use registry::{
    Alias, AliasTarget, ModelVersion, RegisteredModel, Tombstone, validate_alias,
    validate_model_name,
};
pub use run::{
    ArtifactKind, ArtifactRef, Conflict, Experiment, MetricSummary, ParamValue, ParentKind, Run,
    RunStatus, artifact_path_problem, validate_artifact_path, validate_key,
};
pub use schema::{
    Compliance, ComplianceState, Enforcement, FieldPath, FieldRequirement, FieldType, RunSchema,
    SchemaViolation,
};

/// Everything that can be wrong with a value handed to the model.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("invalid {what} '{value}': expected 32 hex digits")]
    InvalidId { what: &'static str, value: String },
    #[error("invalid {what} '{value}': {reason}")]
    InvalidKey {
        what: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("unknown run status '{0}': expected running, finished, failed or killed")]
    UnknownStatus(String),
    #[error("invalid schema field '{value}': {reason}")]
    InvalidField { value: String, reason: String },
    #[error("invalid logged model id '{0}': expected 'm-' and 32 lowercase hex digits")]
    InvalidModelId(String),
    #[error("unknown logged model status '{0}': expected pending, ready or failed")]
    UnknownModelStatus(String),
    /// A logged model name MLflow would refuse, worded as MLflow's server words it.
    #[error("{}", model_name_message(.name, .reason))]
    InvalidModelName {
        name: String,
        /// Why, when it is not MLflow's own rule (empty, or a refused character).
        reason: Option<&'static str>,
    },
    /// Part of an evaluation: `what` is a benchmark name, a slice, an evaluation, a digest.
    #[error("invalid {what} '{value}': {reason}")]
    InvalidEvaluation {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// Part of a notebook: its title, a tag, an owner, its text.
    #[error("invalid notebook {what} '{value}': {reason}")]
    InvalidNotebook {
        what: &'static str,
        /// The offending value, cut to 80 characters.
        value: String,
        reason: String,
    },
    #[error("run is missing required metadata: {}", violations.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; "))]
    SchemaViolations { violations: Vec<SchemaViolation> },
    /// A review that lacks fields its team's template requires: each is named.
    #[error("the review is missing required fields: {} (the team's review template requires them)", missing.join(", "))]
    ReviewIncomplete { missing: Vec<String> },
}

fn model_name_message(name: &str, reason: &Option<&'static str>) -> String {
    match reason {
        None => format!(
            "Invalid model name ({}) provided. Model name must be a non-empty string and cannot \
             contain the following characters: ('/', ':', '.', '%', '\"', \"'\")",
            py_repr(name)
        ),
        Some(why) => format!("Invalid model name ({}) provided: {why}", py_repr(name)),
    }
}
