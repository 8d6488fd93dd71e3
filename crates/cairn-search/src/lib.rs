//! Cairn's run search: one query language and a tantivy index that answers it.
//!
//! The language ([`query`]) is a superset of MLflow's `search_runs` filter: every MLflow filter
//! parses and means what it means in MLflow, and Cairn adds `OR`, `NOT`, parentheses, free text,
//! shorthands (`owner:alice`), lineage fields, ranges and relative times. The index
//! ([`SearchIndex`]) holds one document per run, derived from the catalog: it is never the
//! source of truth, can be rebuilt at any time, and rebuilds itself (when asked to open) if it is
//! missing, from another schema version, or corrupt.
//!
//! This crate is *not* the catalog: it stores no run data beyond what it needs to find runs (a
//! search returns run ids, the caller loads the runs), and it does not know where runs come
//! from. `cairn-core` feeds it after every local write and at open.

mod exec;
mod index;
mod like;
pub mod query;
mod schema;

use std::path::PathBuf;

use cairn_model::{ExperimentId, RunId};

pub use index::{Health, SearchIndex, Snapshot};
pub use like::{LikeError, LikePattern, MAX_LIKE_PATTERN};
pub use query::{Query, QueryError, SortKey, parse, parse_sort};
pub use schema::{IndexedCost, IndexedReview, IndexedRun};

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Like(#[from] LikeError),
    #[error("search index at {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another process held the index's write lock for longer than we waited.
    #[error("search index at {} is busy: another process is writing it", path.display())]
    Busy { path: PathBuf },
    /// The directory holds files that are not part of an index; they are never deleted.
    #[error("{} is not a search index directory: it holds '{file}'", path.display())]
    NotAnIndex { path: PathBuf, file: String },
    #[error("search index: {0}")]
    Index(String),
}

impl SearchError {
    pub(crate) fn index(e: tantivy::TantivyError) -> SearchError {
        SearchError::Index(e.to_string())
    }

    pub(crate) fn io_index(e: std::io::Error) -> SearchError {
        SearchError::Index(e.to_string())
    }
}

/// Which runs a search sees by lifecycle (MLflow's `run_view_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Lifecycle {
    #[default]
    Active,
    Deleted,
    All,
}

/// One search: the query, its order, the page, and the scope.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    pub query: Query,
    /// Empty: newest first (`created DESC`). The run id always breaks ties.
    pub sort: Vec<SortKey>,
    pub limit: usize,
    pub offset: usize,
    /// Only runs of these experiments; empty means every experiment.
    pub experiments: Vec<ExperimentId>,
    pub lifecycle: Lifecycle,
    /// The instant relative times (`created > -7d`) count back from; `None` is the clock.
    pub now_ms: Option<i64>,
}

impl Default for SearchRequest {
    fn default() -> Self {
        SearchRequest {
            query: Query::All,
            sort: Vec::new(),
            limit: 100,
            offset: 0,
            experiments: Vec::new(),
            lifecycle: Lifecycle::Active,
            now_ms: None,
        }
    }
}

impl SearchRequest {
    /// The first page of 100 of `query`, newest first.
    pub fn new(query: Query) -> SearchRequest {
        SearchRequest {
            query,
            ..Default::default()
        }
    }

    pub fn sorted_by(mut self, sort: Vec<SortKey>) -> SearchRequest {
        self.sort = sort;
        self
    }

    pub fn page(mut self, limit: usize, offset: usize) -> SearchRequest {
        self.limit = limit;
        self.offset = offset;
        self
    }

    pub fn in_experiments(mut self, experiments: Vec<ExperimentId>) -> SearchRequest {
        self.experiments = experiments;
        self
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// Matching runs in order.
    pub runs: Vec<RunId>,
    /// How many runs match in all.
    pub total: u64,
    /// The offset of the next page, if there are more runs.
    pub next_offset: Option<usize>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
