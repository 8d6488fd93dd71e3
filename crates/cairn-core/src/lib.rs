//! **API boundary.** `cairn-core` is the one API every front end calls: the CLI, the HTTP server
//! and the desktop app are thin adapters over [`Workspace`].
//!
//! A workspace is a directory holding the catalog (`catalog.db`: automerge docs and their
//! projections), the metric store (`metrics.db`), the trace store (`traces.db`) and the
//! artifact store (`artifacts/`). The
//! façade enforces the rules that span them: the mandatory run schema, MLflow's param
//! immutability, key validation, summary metrics kept in step with the series.
//!
//! This crate reads no environment variables and no config files: who the user is and where the
//! workspace lives are arguments, decided by the binaries.

pub mod api;
pub mod audit;
pub mod backup;
pub mod by_group;
mod charts;
pub mod cost;
pub mod csv_import;
mod datasets;
mod demo;
mod error;
mod eval_datasets;
mod evaluations;
mod experiments;
mod gate;
mod gc;
mod history;
mod lineage;
mod logged_models;
pub mod mlflow_import;
pub mod notebook_markup;
mod notebook_render;
pub mod notebooks;
mod registry;
pub mod reviews;
mod runs;
mod search;
mod stores;
mod sync_host;
pub mod team;
pub mod tensorboard;
pub mod traces;
mod transfer;
mod views;
mod workspace;

pub use cairn_charts::{Format as ChartFormat, Rendered as RenderedChart};
pub use cairn_metrics::StorageStats;
pub use cairn_search::{Lifecycle, LikeError, LikePattern, MAX_LIKE_PATTERN};
pub use charts::{ChartKind, ChartRequest, ChartView, MAX_CHART_RUNS, PlotSpec};
pub use demo::{DemoOptions, DemoReport};
pub use error::{Code, Error, ErrorBody};
pub use eval_datasets::{
    EvalDataset, EvalDatasetSearch, EvalRecord, RecordCursor, RecordPage,
    py_dumps as eval_dataset_py_dumps,
};
pub use evaluations::{EvaluationLog, EvaluationView};
pub use experiments::{
    ExperimentOrder, ExperimentOrderKey, ExperimentSearch, MAX_ARTIFACT_LOCATION,
    validate_artifact_location,
};
pub use gate::{
    ApprovalsView, DEFAULT_ALIAS, DEFAULT_GATE_HISTORY, GateHistory, GateQuery, GateScope,
    GateView, MAX_GATE_RECORDS, ModelRef, SetGate, VersionAction, verify_approval,
};
pub use gc::{GC_GRACE, GcReport, PurgeReport, PurgedBlob};
pub use history::FieldChangeView;
pub use lineage::{LineageRequest, this_machine};
pub use logged_models::{
    LoggedModelSearch, LoggedModelView, MAX_MODEL_ENTRIES, MAX_MODEL_PAGE, ModelArtifactUpload,
    ModelMetricValue, ModelOrderKey, ModelSource, NewLoggedModel, RunModel, RunModelLink,
    StoredModelArtifact,
};
pub use mlflow_import::{MlflowCounts, MlflowProgress, MlflowReport};
pub use reviews::{
    ActionView, MAX_REVIEWS, NewReview, ReviewFilter, ReviewRef, ReviewView, SetActionState,
    TemplateView,
};
pub use runs::{
    LogBatch, MAX_BATCH_ENTITIES, MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS,
    MAX_PARAM_VALUE, MAX_TAG_VALUE, MetricDataset, MetricValue, NOTE_TAG, RUN_NAME_TAG,
    RunListItem, RunLog, RunsPage, RunsQuery,
};
pub use search::SavedView;
pub use stores::{ArtifactEntry, ExperimentSummary, NewRun, RunView, WorkspaceInfo};
pub use tensorboard::{TensorboardProgress, TensorboardReport, TensorboardRun};
pub use transfer::{ArtifactDownload, ArtifactUpload, StoredArtifact};
pub use views::{
    BucketView, Info, MetricPoint, RunSummary, SearchPage, SearchRequest, json_number,
};
pub use workspace::Workspace;

pub(crate) use stores::Stores;
