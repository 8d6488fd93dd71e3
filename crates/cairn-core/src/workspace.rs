//! **The API boundary.** [`Workspace`] is a cheap-clone handle on an open workspace, like iroh's
//! `Endpoint`: every front end holds one (clones of it, across threads) and never a lock.
//!
//! Inside, one set of store connections takes the writes, one at a time, and a pool of others
//! answers reads — SQLite in WAL mode lets a read run while a write commits, so a search from
//! the UI does not wait for a training job's batch. The search index is shared: caught up under
//! its own lock, searched from a snapshot outside it. A panic inside an operation is caught at
//! this boundary: the connections it used are dropped and reopened (an in-memory doc may hold
//! half an edit), and the caller gets [`Error::Panicked`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, RwLock};
use std::time::Duration;

use cairn_model::{
    BlobHash, DatasetSnapshot, Experiment, ExperimentId, MetricSummary, Run, RunId, RunSchema,
    RunStatus,
};

use crate::charts::{ChartRequest, ChartView, PlotSpec};
use crate::demo::{DemoOptions, DemoReport};
use crate::lineage::LineageRequest;
use crate::runs::{LogBatch, RunsPage, RunsQuery};
use crate::search::{SavedView, SharedIndex};
use crate::stores::{ArtifactEntry, ExperimentSummary, NewRun, RunView, Stores, WorkspaceInfo};
use crate::sync_host::SyncHost;
use crate::team::{Member, Node, NodeConfig, SyncStatus, TeamInfo};
use crate::views::{BucketView, Info, MetricPoint, SearchPage, SearchRequest};
use crate::{Error, Lifecycle};

/// How many read connections a handle opens at most; more readers wait for one to come back.
const MAX_READERS: usize = 8;

/// An open workspace. Clone it freely: clones share the connections, the index and the pool.
#[derive(Clone)]
pub struct Workspace {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace")
            .field("dir", &self.shared.dir)
            .field("user", &self.shared.user)
            .finish()
    }
}

struct Shared {
    dir: PathBuf,
    user: String,
    info: RwLock<WorkspaceInfo>,
    writer: Mutex<Stores>,
    readers: Pool,
    index: SharedIndex,
    /// The sync node a long-running front end hosts for the API (`sync_host.rs`).
    sync: OnceLock<Arc<SyncHost>>,
}

/// Read connections, opened on demand up to [`MAX_READERS`].
struct Pool {
    state: Mutex<PoolState>,
    returned: Condvar,
}

struct PoolState {
    idle: Vec<Stores>,
    open: usize,
}

/// The message of a caught panic.
fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

impl Workspace {
    /// Creates a new workspace in `dir` (created if missing). `user` is who writes through it.
    pub fn create(dir: &Path, user: &str) -> Result<Workspace, Error> {
        Self::with_writer(Stores::create(dir, user)?)
    }

    /// Opens an existing workspace.
    pub fn open(dir: &Path, user: &str) -> Result<Workspace, Error> {
        Self::with_writer(Stores::open(dir, user)?)
    }

    /// Opens the workspace in `dir`, creating it first when `dir` holds none. Returns whether it
    /// was created.
    pub fn open_or_create(dir: &Path, user: &str) -> Result<(Workspace, bool), Error> {
        let (stores, created) = Stores::open_or_create(dir, user)?;
        Ok((Self::with_writer(stores)?, created))
    }

    fn with_writer(mut writer: Stores) -> Result<Workspace, Error> {
        // MLflow's experiment "0" exists from the start, so no read ever has to create it.
        writer.default_experiment()?;
        // Registered models in the format before records become records (same numbers).
        writer.migrate_legacy_registry()?;
        Ok(Workspace {
            shared: Arc::new(Shared {
                dir: writer.dir().to_owned(),
                user: writer.user().to_owned(),
                info: RwLock::new(writer.workspace_info().clone()),
                writer: Mutex::new(writer),
                readers: Pool {
                    state: Mutex::new(PoolState {
                        idle: Vec::new(),
                        open: 0,
                    }),
                    returned: Condvar::new(),
                },
                index: SharedIndex::default(),
                sync: OnceLock::new(),
            }),
        })
    }

    /// Runs `f` on the write connections, one writer at a time. Each area's operations (in its
    /// own module: `impl Workspace` there) are one line over this or [`Workspace::read`].
    pub(crate) fn write<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Stores) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut guard = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut guard))) {
            Ok(result) => result,
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(op, %message, "an operation panicked; reopening its connections");
                match Stores::open(&self.shared.dir, &self.shared.user) {
                    Ok(fresh) => *guard = fresh,
                    Err(e) => tracing::error!(error = %e, "could not reopen the workspace"),
                }
                Err(Error::Panicked { op, message })
            }
        }
    }

    /// Runs `f` on a read connection of the pool; it never waits for a writer.
    pub(crate) fn read<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&mut Stores) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut stores = self.checkout()?;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut stores))) {
            Ok(result) => {
                self.give_back(Some(stores));
                result
            }
            Err(panic) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(op, %message, "an operation panicked; dropping its connections");
                self.give_back(None);
                Err(Error::Panicked { op, message })
            }
        }
    }

    fn checkout(&self) -> Result<Stores, Error> {
        let pool = &self.shared.readers;
        let mut state = pool.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(s) = state.idle.pop() {
                return Ok(s);
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                return Stores::open(&self.shared.dir, &self.shared.user).inspect_err(|_| {
                    let mut state = pool.state.lock().unwrap_or_else(PoisonError::into_inner);
                    state.open -= 1;
                    pool.returned.notify_one();
                });
            }
            state = pool
                .returned
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Returns a read connection to the pool, or (`None`) drops one that saw a panic.
    fn give_back(&self, stores: Option<Stores>) {
        let pool = &self.shared.readers;
        let mut state = pool.state.lock().unwrap_or_else(PoisonError::into_inner);
        match stores {
            Some(s) => state.idle.push(s),
            None => state.open -= 1,
        }
        pool.returned.notify_one();
    }

    /// The search index this handle shares (for areas that search, like cost rollups).
    pub(crate) fn shared_index(&self) -> &SharedIndex {
        &self.shared.index
    }

    // ---- the workspace --------------------------------------------------------------------

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    pub fn user(&self) -> &str {
        &self.shared.user
    }

    pub fn workspace_info(&self) -> WorkspaceInfo {
        self.shared
            .info
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Who and where, for a UI's header.
    pub fn info(&self) -> Info {
        Info {
            version: env!("CARGO_PKG_VERSION"),
            workspace: self.dir().display().to_string(),
            user: self.user().to_owned(),
            demo: self.workspace_info().demo,
        }
    }

    // ---- experiments ----------------------------------------------------------------------

    pub fn experiments(&self) -> Result<Vec<ExperimentSummary>, Error> {
        self.read("experiments", |s| s.experiments())
    }

    /// Every experiment, deleted ones included.
    pub fn experiments_all(&self) -> Result<Vec<Experiment>, Error> {
        self.read("experiments_all", |s| s.experiments_all())
    }

    /// An experiment by name or id.
    pub fn experiment(&self, name_or_id: &str) -> Result<Experiment, Error> {
        self.read("experiment", |s| s.experiment(name_or_id))
    }

    pub fn experiment_by_id(&self, id: ExperimentId) -> Result<Experiment, Error> {
        self.read("experiment_by_id", |s| s.experiment_by_id(id))
    }

    /// The workspace's default experiment: MLflow's experiment "0", known by id (renaming it
    /// keeps it the default).
    pub fn default_experiment(&self) -> Result<Experiment, Error> {
        self.read("default_experiment", |s| s.default_experiment())
    }

    /// The experiment an MLflow client means by `id`: "0" is the default experiment.
    pub fn experiment_by_mlflow_id(&self, id: &str) -> Result<Experiment, Error> {
        self.read("experiment_by_mlflow_id", |s| {
            if id == "0" {
                return s.default_experiment();
            }
            match id.parse::<ExperimentId>() {
                Ok(parsed) => s.experiment_by_id(parsed),
                // An experiment imported from MLflow is also known by its MLflow id.
                Err(_) => s
                    .experiments_all()?
                    .into_iter()
                    .filter(|e| {
                        e.tags
                            .get(crate::mlflow_import::EXPERIMENT_ID_TAG)
                            .map(String::as_str)
                            == Some(id)
                    })
                    .min_by_key(|e| e.deleted)
                    .ok_or_else(|| Error::UnknownExperiment(id.to_owned())),
            }
        })
    }

    /// The id an MLflow client knows `e` by: "0" for the default experiment.
    pub fn mlflow_experiment_id(&self, e: &Experiment) -> Result<String, Error> {
        let default = self.default_experiment()?;
        Ok(if default.id == e.id {
            "0".into()
        } else {
            e.id.to_string()
        })
    }

    /// The experiments an MLflow experiment filter matches (`name LIKE 'resnet%'`,
    /// `tags.team = 'vision'`), one page, and the offset of the next.
    pub fn search_experiments(
        &self,
        search: &crate::ExperimentSearch,
    ) -> Result<(Vec<Experiment>, Option<usize>), Error> {
        self.read("search_experiments", |s| s.search_experiments(search))
    }

    pub fn create_experiment(
        &self,
        name: &str,
        description: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Experiment, Error> {
        self.write("create_experiment", |s| {
            s.create_experiment_with_tags(name, description, tags)
        })
    }

    /// The experiment named `name`, created when there is none. Returns whether it was created.
    pub fn ensure_experiment(&self, name: &str) -> Result<(Experiment, bool), Error> {
        self.write("ensure_experiment", |s| s.ensure_experiment(name))
    }

    pub fn rename_experiment(&self, id: ExperimentId, name: &str) -> Result<Experiment, Error> {
        self.write("rename_experiment", |s| s.rename_experiment(id, name))
    }

    pub fn set_experiment_tag(
        &self,
        id: ExperimentId,
        key: &str,
        value: &str,
    ) -> Result<Experiment, Error> {
        self.write("set_experiment_tag", |s| {
            s.set_experiment_tag(id, key, value)
        })
    }

    /// Deletes an experiment and marks its runs deleted; `restore_experiment` brings both back.
    pub fn delete_experiment(&self, id: ExperimentId) -> Result<(), Error> {
        self.write("delete_experiment", |s| s.delete_experiment(id))
    }

    pub fn restore_experiment(&self, id: ExperimentId) -> Result<(), Error> {
        self.write("restore_experiment", |s| s.restore_experiment(id))
    }

    // ---- the schema -----------------------------------------------------------------------

    /// The schema runs of `experiment` must satisfy: the experiment's own, else the project's.
    pub fn schema(&self, experiment: Option<ExperimentId>) -> Result<RunSchema, Error> {
        self.read("schema", |s| s.schema(experiment))
    }

    /// Sets the project's schema, or one experiment's override.
    pub fn set_schema(
        &self,
        experiment: Option<ExperimentId>,
        schema: RunSchema,
    ) -> Result<(), Error> {
        self.write("set_schema", |s| s.set_schema(experiment, schema))
    }

    // ---- runs -----------------------------------------------------------------------------

    /// The lineage of a run started here and now: the git working copy, this machine, dataset
    /// digests (cached by file sizes and times), a feature-set version.
    pub fn lineage_here(&self, req: &LineageRequest) -> Result<cairn_model::Lineage, Error> {
        self.read("lineage_here", |s| s.lineage_here(req))
    }

    /// Starts a run: checks its schema, records it, and returns it.
    pub fn start_run(&self, new: NewRun) -> Result<Run, Error> {
        self.write("start_run", |s| s.start_run(new))
    }

    /// Records complete runs in bulk (imports): the schema applied to each.
    pub fn import_runs(&self, runs: Vec<Run>) -> Result<(), Error> {
        self.write("import_runs", |s| s.import_runs(runs))
    }

    /// The unique run whose id starts with `prefix`.
    pub fn resolve_run(&self, prefix: &str) -> Result<RunId, Error> {
        self.read("resolve_run", |s| s.resolve_run(prefix))
    }

    /// A run with its live metric summaries.
    pub fn run(&self, id: RunId) -> Result<RunView, Error> {
        self.read("run", |s| s.run(id))
    }

    /// A run by id prefix.
    pub fn run_by_prefix(&self, prefix: &str) -> Result<RunView, Error> {
        self.read("run", |s| {
            let id = s.resolve_run(prefix)?;
            s.run(id)
        })
    }

    /// A page of the run listing (experiment, status, owner; newest first or by a metric).
    pub fn runs_page(&self, query: &RunsQuery) -> Result<RunsPage, Error> {
        self.read("runs_page", |s| s.runs_page(query))
    }

    /// Logs params, metrics and tags, validated as a whole before anything is stored.
    pub fn log_batch(&self, id: RunId, batch: &LogBatch) -> Result<(), Error> {
        self.write("log_batch", |s| s.log_batch(id, batch))
    }

    /// Logs params, tags, notes and whole metric curves at once (`cairn run log`), validated as a
    /// whole before anything is stored.
    pub fn log_run(&self, id: RunId, log: &crate::RunLog) -> Result<(), Error> {
        self.write("log_run", |s| s.log_run(id, log))
    }

    /// Logs params. A param already logged with another value is refused (as MLflow does), and
    /// then nothing of the call is stored.
    pub fn log_params(&self, id: RunId, params: &[(String, String)]) -> Result<(), Error> {
        let batch = LogBatch {
            params: params.to_vec(),
            ..Default::default()
        };
        self.write("log_params", |s| s.log_batch(id, &batch))
    }

    /// Appends points to one series of a run (bulk: no per-batch limit).
    pub fn log_metric(&self, id: RunId, key: &str, points: &[MetricPoint]) -> Result<(), Error> {
        self.log_metrics(id, &[(key, points)])
    }

    /// Appends points to series of a run in one durable write (bulk: no per-batch limit).
    pub fn log_metrics(&self, id: RunId, series: &[(&str, &[MetricPoint])]) -> Result<(), Error> {
        let converted: Vec<(&str, Vec<cairn_metrics::Point>)> = series
            .iter()
            .map(|(k, pts)| (*k, pts.iter().map(|p| p.to_point()).collect()))
            .collect();
        let batches: Vec<(&str, &[cairn_metrics::Point])> =
            converted.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        self.write("log_metrics", |s| s.log_metrics(id, &batches))
    }

    /// Sets tags, with what their system tags (`mlflow.*`) say about the run.
    pub fn set_tags(&self, id: RunId, tags: &[(String, String)]) -> Result<(), Error> {
        self.write("set_tags", |s| s.set_tags(id, tags))
    }

    /// Removes a tag; a tag the run does not have is an error naming it.
    pub fn delete_tag(&self, id: RunId, key: &str) -> Result<(), Error> {
        self.write("delete_tag", |s| s.delete_tag(id, key))
    }

    pub fn rename_run(&self, id: RunId, name: &str) -> Result<Run, Error> {
        self.write("rename_run", |s| s.rename_run(id, name))
    }

    pub fn set_notes(&self, id: RunId, notes: &str) -> Result<Run, Error> {
        self.write("set_notes", |s| s.set_notes(id, notes))
    }

    /// Moves a run through its lifecycle (see `Stores::set_status`): ending seals its series
    /// and checks its schema again; an ended run may resume.
    pub fn set_status(
        &self,
        id: RunId,
        status: RunStatus,
        end_ms: Option<i64>,
    ) -> Result<Run, Error> {
        self.write("set_status", |s| s.set_status(id, status, end_ms))
    }

    /// Records datasets a run read, each under its role.
    pub fn add_dataset_inputs(&self, id: RunId, inputs: Vec<DatasetSnapshot>) -> Result<(), Error> {
        self.write("add_dataset_inputs", |s| s.add_dataset_inputs(id, inputs))
    }

    pub fn delete_run(&self, id: RunId) -> Result<Run, Error> {
        self.write("delete_run", |s| s.delete_run(id))
    }

    pub fn restore_run(&self, id: RunId) -> Result<Run, Error> {
        self.write("restore_run", |s| s.restore_run(id))
    }

    // ---- metrics --------------------------------------------------------------------------

    /// Every point of a series, in the order logged.
    pub fn metric_history(&self, id: RunId, key: &str) -> Result<Vec<MetricPoint>, Error> {
        self.read("metric_history", |s| {
            Ok(s.metric_history(id, key)?
                .into_iter()
                .map(MetricPoint::from)
                .collect())
        })
    }

    /// Points `offset..offset+limit` of a series.
    pub fn metric_history_page(
        &self,
        id: RunId,
        key: &str,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<MetricPoint>, Error> {
        self.read("metric_history_page", |s| {
            Ok(s.metric_history_page(id, key, offset, limit)?
                .into_iter()
                .map(MetricPoint::from)
                .collect())
        })
    }

    /// How many points the run's series `key` holds now: where a streamed history stops.
    pub fn metric_len(&self, id: RunId, key: &str) -> Result<u64, Error> {
        self.read("metric_len", |s| s.metric_len(id, key))
    }

    /// Points `from..to` of a series, up to the end of the sealed chunk holding `from`: reading
    /// on from where the last piece ended walks the history one decoded chunk at a time. Empty
    /// at the end.
    pub fn metric_history_chunk(
        &self,
        id: RunId,
        key: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<MetricPoint>, Error> {
        self.read("metric_history_chunk", |s| {
            Ok(s.metric_history_chunk(id, key, from, to)?
                .into_iter()
                .map(MetricPoint::from)
                .collect())
        })
    }

    /// A metric of the run whose id starts with `run`, downsampled to at most `buckets`
    /// buckets (over the steps in `range`, or all).
    pub fn metric_buckets(
        &self,
        run: &str,
        key: &str,
        range: Option<(i64, i64)>,
        buckets: usize,
    ) -> Result<Vec<BucketView>, Error> {
        self.read("metric_buckets", |s| {
            s.metric_buckets(run, key, range, buckets)
        })
    }

    /// The metric store's current summary of each of the run's series.
    pub fn live_metrics(&self, id: RunId) -> Result<BTreeMap<String, MetricSummary>, Error> {
        self.read("live_metrics", |s| s.live_metrics(id))
    }

    pub fn metric_storage(&self) -> Result<cairn_metrics::StorageStats, Error> {
        self.read("metric_storage", |s| s.metric_storage())
    }

    // ---- search ---------------------------------------------------------------------------

    /// One page of runs matching a query, narrowed by a saved view and to the user's own runs
    /// when asked.
    pub fn search(&self, req: &SearchRequest) -> Result<SearchPage, Error> {
        let index = &self.shared.index;
        let page = self.read("search", |s| s.search_page(index, req));
        self.catch_up_index_beside();
        page
    }

    /// Runs matching an MLflow filter with an order, in experiments (empty: all), by
    /// lifecycle: MLflow's `runs/search`. Each run carries its live metric summaries.
    pub fn search_runs(
        &self,
        filter: &str,
        order: &[String],
        experiments: Vec<ExperimentId>,
        lifecycle: Lifecycle,
        limit: usize,
        offset: usize,
    ) -> Result<(Vec<Run>, Option<u64>), Error> {
        let index = &self.shared.index;
        let found = self.read("search_runs", |s| {
            s.search_runs_by_query(index, filter, order, experiments, lifecycle, limit, offset)
        });
        self.catch_up_index_beside();
        found
    }

    /// Catches the search index up with streamed metric summaries on a thread of its own when a
    /// search in a busy stretch found them behind, so no search waits for the commit.
    fn catch_up_index_beside(&self) {
        if !self.shared.index.take_behind() {
            return;
        }
        let ws = self.clone();
        let spawned = std::thread::Builder::new()
            .name("cairn-index".into())
            .spawn(move || {
                let index = &ws.shared.index;
                if let Err(e) = ws.read("index catch-up", |s| s.catch_up_index(index)) {
                    tracing::warn!(error = %e, "search index not caught up this time");
                }
                index.caught_up();
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "no thread to catch the search index up on");
            self.shared.index.caught_up();
        }
    }

    /// Sets a tag on every run a query matches; returns how many.
    pub fn tag_matching(&self, query: &str, key: &str, value: &str) -> Result<usize, Error> {
        let index = &self.shared.index;
        self.write("tag_matching", |s| s.tag_matching(index, query, key, value))
    }

    /// Makes `owner` the owner of every run a query matches; returns how many.
    pub fn set_owner_matching(&self, query: &str, owner: &str) -> Result<usize, Error> {
        let index = &self.shared.index;
        self.write("set_owner_matching", |s| {
            s.set_owner_matching(index, query, owner)
        })
    }

    /// Rebuilds the search index from the catalog; returns how many runs it holds.
    pub fn rebuild_index(&self) -> Result<u64, Error> {
        let index = &self.shared.index;
        self.read("rebuild_index", |s| s.rebuild_index(index))
    }

    pub fn views(&self) -> Result<Vec<SavedView>, Error> {
        self.read("views", |s| s.views())
    }

    pub fn view(&self, name: &str) -> Result<SavedView, Error> {
        self.read("view", |s| s.view(name))
    }

    /// Saves (or replaces) a named view; its query and order must parse.
    pub fn save_view(&self, view: &SavedView) -> Result<(), Error> {
        self.write("save_view", |s| s.save_view(view))
    }

    pub fn delete_view(&self, name: &str) -> Result<(), Error> {
        self.write("delete_view", |s| s.delete_view(name))
    }

    // ---- artifacts ------------------------------------------------------------------------

    /// Stores a file or a directory and binds it to `logical` (default: its file name) in the
    /// run. Returns the logical path, the reference and what a directory skipped.
    pub fn add_artifact(
        &self,
        id: RunId,
        src: &Path,
        logical: Option<&str>,
    ) -> Result<(String, cairn_model::ArtifactRef, Vec<PathBuf>), Error> {
        self.write("add_artifact", |s| s.add_artifact(id, src, logical))
    }

    /// Stores what `reader` yields (an upload) as the run's artifact `logical`.
    pub fn add_artifact_reader(
        &self,
        id: RunId,
        logical: &str,
        reader: &mut dyn std::io::Read,
    ) -> Result<cairn_model::ArtifactRef, Error> {
        self.write("add_artifact_reader", |s| {
            s.add_artifact_reader(id, logical, reader)
        })
    }

    /// The files and directories directly under `dir` ("" for the top) among the run's
    /// artifacts.
    pub fn list_artifacts(&self, id: RunId, dir: &str) -> Result<Vec<ArtifactEntry>, Error> {
        self.read("list_artifacts", |s| s.list_artifacts(id, dir))
    }

    /// Unbinds an artifact path from the run.
    pub fn delete_artifact(&self, id: RunId, logical: &str) -> Result<(), Error> {
        self.write("delete_artifact", |s| s.delete_artifact(id, logical))
    }

    /// Reads the file at `path`, looking inside directory artifacts too, verified.
    pub fn read_artifact(&self, id: RunId, path: &str) -> Result<Vec<u8>, Error> {
        self.read("read_artifact", |s| s.read_artifact_path(id, path))
    }

    /// Removes the blobs no run keeps any more that were stored longer than `grace` ago (with
    /// `dry_run`, only says what it would remove).
    pub fn gc(&self, grace: Duration, dry_run: bool) -> Result<crate::GcReport, Error> {
        self.write("gc", |s| s.gc(grace, dry_run))
    }

    /// Purges a run's artifact (a leaked secret) here at once, and through a signed tombstone
    /// from every teammate's device that syncs afterwards.
    pub fn purge_artifact(
        &self,
        run: RunId,
        path: &str,
        reason: &str,
    ) -> Result<crate::PurgeReport, Error> {
        self.write("purge_artifact", |s| s.purge_artifact(run, path, reason))
    }

    /// Writes the run's artifact `logical` to `dest`, verified against its hash.
    pub fn get_artifact(&self, id: RunId, logical: &str, dest: &Path) -> Result<u64, Error> {
        self.read("get_artifact", |s| s.get_artifact(id, logical, dest))
    }

    /// Opens the file at `path` among the run's artifacts (inside directory artifacts too) for
    /// streaming, verified as it is read; reading it needs no connection of the handle.
    pub fn open_artifact(&self, id: RunId, path: &str) -> Result<crate::ArtifactDownload, Error> {
        self.read("open_artifact", |s| s.open_artifact_path(id, path))
    }

    /// Accepts an upload to the run's artifact `logical` (the run must exist and the path be
    /// valid, checked before a byte is read); store it, then [`Workspace::bind_artifact`].
    pub fn artifact_upload(
        &self,
        id: RunId,
        logical: &str,
    ) -> Result<crate::ArtifactUpload, Error> {
        self.read("artifact_upload", |s| s.artifact_upload(id, logical))
    }

    /// Binds stored upload content to its run's path.
    pub fn bind_artifact(
        &self,
        stored: crate::StoredArtifact,
    ) -> Result<cairn_model::ArtifactRef, Error> {
        self.write("bind_artifact", |s| s.bind_artifact(stored))
    }

    // ---- charts ---------------------------------------------------------------------------

    /// A chart as SVG with the map of what it drew (the UI's charts).
    pub fn chart(&self, req: &ChartRequest) -> Result<ChartView, Error> {
        self.read("chart", |s| s.chart(req))
    }

    /// A line chart of one metric over runs, as SVG or PNG.
    pub fn plot(
        &self,
        spec: &PlotSpec,
        format: cairn_charts::Format,
    ) -> Result<cairn_charts::Rendered, Error> {
        self.read("plot", |s| s.plot(spec, format))
    }

    /// A self-contained HTML report comparing runs.
    pub fn compare_report(&self, ids: &[RunId]) -> Result<String, Error> {
        self.read("compare_report", |s| s.compare_report(ids))
    }

    // ---- teams and sync -------------------------------------------------------------------

    /// This device's endpoint id (hex): its identity on the roster.
    pub fn device_id(&self) -> Result<String, Error> {
        self.read("device_id", |s| s.device_id())
    }

    pub(crate) fn sync_host_slot(&self) -> &OnceLock<Arc<SyncHost>> {
        &self.shared.sync
    }

    /// The sync node this process hosts for the API, if a front end lent one.
    pub(crate) fn hosted_sync(&self) -> Option<Arc<SyncHost>> {
        self.shared.sync.get().cloned()
    }

    /// Creates a team with this device (owned by the workspace user) as its first member.
    pub fn team_create(&self, name: &str, email: &str) -> Result<TeamInfo, Error> {
        self.write("team_create", |s| s.team_create(name, email))
    }

    /// The team this workspace belongs to, if any.
    pub fn team(&self) -> Result<Option<TeamInfo>, Error> {
        self.read("team", |s| s.team())
    }

    /// Every device on the roster, removed ones included.
    pub fn team_members(&self) -> Result<Vec<Member>, Error> {
        self.read("team_members", |s| s.team_members())
    }

    /// Removes a member (by id prefix, name or email).
    pub fn team_remove(&self, who: &str) -> Result<Member, Error> {
        self.write("team_remove", |s| s.team_remove(who))
    }

    /// Issues a one-time invitation ticket carrying `addrs`.
    pub fn team_invite(&self, addrs: &[SocketAddr], ttl: Duration) -> Result<String, Error> {
        self.write("team_invite", |s| s.team_invite(addrs, ttl))
    }

    /// This device, its team, each peer (last seen, last sync, what is pending).
    pub fn sync_status(&self) -> Result<SyncStatus, Error> {
        self.read("sync_status", |s| s.sync_status())
    }

    /// The blobs `run`'s artifacts need that this device does not hold.
    pub fn missing_artifact_blobs(&self, run: RunId) -> Result<Vec<BlobHash>, Error> {
        self.read("missing_artifact_blobs", |s| s.missing_artifact_blobs(run))
    }

    /// Fetches the artifact blobs `run` lacks from whichever teammate holds them, through a
    /// running `node` (sessions send blobs up to 8 MiB eagerly; larger ones come on demand): a
    /// directory's manifest first, then the files it lists.
    pub async fn fetch_run_artifacts(
        &self,
        node: &Node,
        run: RunId,
    ) -> Result<crate::team::FetchReport, Error> {
        let mut total = crate::team::FetchReport::default();
        for _ in 0..2 {
            let missing = self.missing_artifact_blobs(run)?;
            if missing.is_empty() {
                break;
            }
            let r = node.fetch_blobs(&missing).await?;
            total.bytes += r.bytes;
            total.fetched.extend(r.fetched);
            total.missing = r.missing;
        }
        Ok(total)
    }

    /// Starts this device's sync node (needs a tokio runtime).
    pub async fn start_sync_node(&self, config: NodeConfig) -> Result<Node, Error> {
        let (key, stores) = self.read("start_sync_node", |s| s.sync_node_parts())?;
        Ok(Node::spawn(stores, key, config).await?)
    }

    // ---- maintenance ----------------------------------------------------------------------

    /// Fills the workspace with a demo catalog, calling `progress(done, total)` as it goes.
    pub fn generate_demo(
        &self,
        opts: &DemoOptions,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<DemoReport, Error> {
        let started = std::time::Instant::now();
        let mut report = self.write("generate_demo", |s| s.generate_demo(opts, progress))?;
        self.shared
            .info
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .demo = true;
        // Indexed now, so the first search of a fresh demo (the app's first screen) does not
        // wait for it.
        self.rebuild_index()?;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// Recomputes the catalog's projection tables from its automerge docs.
    pub fn rebuild_projections(&self) -> Result<u64, Error> {
        self.write("rebuild_projections", |s| s.rebuild_projections())
    }

    /// Compacts every catalog doc into a fresh snapshot.
    pub fn compact(&self) -> Result<usize, Error> {
        self.write("compact", |s| s.compact())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_handle_is_shared_across_threads() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Workspace>();
    }
}
