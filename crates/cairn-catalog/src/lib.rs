//! Cairn's catalog: the source of truth for experiments and run metadata.
//!
//! Run metadata lives in automerge documents: one small *team doc* (experiments, the project's
//! run schema, the shard registry) and *shard docs*, each holding up to [`SHARD_CAPACITY`] runs of
//! one experiment. Each notebook is a doc of its own (`notebook/<id>`). Docs are persisted in SQLite as a snapshot plus incremental changes and
//! compacted per doc. Projection tables (runs, params, tags, summary metrics) are derived from the
//! docs in the same transaction as every write, and can be rebuilt from them at any time.
//!
//! Several processes may open one catalog at once (the desktop app and a training job): every
//! write runs in an IMMEDIATE SQLite transaction that first loads the changes other processes
//! appended, so each sees the others' writes and nothing is lost.
//!
//! This crate is not the API: it validates nothing about runs beyond storage. Business rules
//! (schemas, MLflow's param immutability) live in `cairn-core`. Metric points are not here
//! (`cairn-metrics`), nor artifact bytes (`cairn-artifacts`).

mod blob_refs;
mod cost;
mod docs;
mod error;
mod logged_model_doc;
mod logged_model_project;
mod notebook_doc;
mod project;
mod run_doc;

pub use blob_refs::{BlobBinding, BoundBlob};
pub use cost::{
    CostFamily, CostFields, CostGroup, CostPoint, CostRow, CostScan, CostState, CostTotals,
};
pub use docs::{
    Catalog, DocHeads, DocSyncState, FieldChange, MAX_HISTORY_VALUE, SHARD_CAPACITY, SyncReceipt,
    TeamRange,
};
pub use error::Error;
pub use logged_model_doc::LoggedModelEdit;
pub use logged_model_project::{
    CmpOp, CmpValue, DatasetFilter, LoggedModelQuery, ModelAttribute, ModelCondition, ModelField,
    ModelOrder, ModelRole, RunModelLink,
};
pub use notebook_doc::{
    MAX_NOTEBOOK_QUERY, MAX_NOTEBOOK_QUERY_TERMS, NotebookEdit, NotebookHit, notebook_match,
};
pub use project::{RunFilter, RunOrder, RunRow};
pub use run_doc::RunEdit;
