//! [`Stores`]: one set of connections to a workspace's stores (catalog, metric store, trace
//! store, artifact store) and the rules that span them — experiments, the schema, runs,
//! metrics, artifacts. The public handle, [`crate::Workspace`], keeps one set for writes and a
//! pool for reads, and calls these methods; nothing outside this crate sees this type.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_artifacts::ArtifactStore;
use cairn_catalog::{Catalog, RunEdit, RunFilter, RunRow};
use cairn_metrics::{MetricStore, Point, SeriesInfo};
use cairn_model::{
    ArtifactKind, ArtifactRef, BlobHash, Enforcement, Experiment, ExperimentId, Lineage,
    MetricSummary, ParentKind, Run, RunId, RunSchema, RunStatus, validate_artifact_path,
    validate_key,
};
use cairn_traces::TraceStore;
use serde::{Deserialize, Serialize};
use tracing::instrument;

use crate::Error;

const MARKER: &str = "workspace.json";
/// Team-doc key holding the id of the default experiment.
const DEFAULT_EXPERIMENT_KEY: &str = "default_experiment";
const FORMAT: u32 = 1;

/// How often a running run's summary metrics are copied into the catalog while it logs.
/// (They always are when it ends; the metric store itself is current at every append.)
const SUMMARY_FLUSH_EVERY: Duration = Duration::from_secs(2);

/// What `workspace.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    pub format: u32,
    pub id: String,
    pub created_ms: i64,
    /// True when the workspace was filled by `cairn demo` (shown, and removable, as demo data).
    #[serde(default)]
    pub demo: bool,
}

/// An experiment and how many runs it holds.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ExperimentSummary {
    #[serde(flatten)]
    pub experiment: Experiment,
    pub runs: u64,
}

/// What a caller gives to start a run.
#[derive(Debug, Clone, Default)]
pub struct NewRun {
    pub experiment: Option<ExperimentId>,
    /// An experiment by name, created (only if the run is accepted) when missing. Used when
    /// `experiment` is `None`; neither means the Default experiment.
    pub experiment_name: Option<String>,
    pub name: Option<String>,
    /// Defaults to the workspace user.
    pub owner: Option<String>,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub lineage: Lineage,
    pub parent: Option<(RunId, ParentKind)>,
    /// Defaults to now.
    pub start_ms: Option<i64>,
    pub notes: String,
    /// Check the schema when the run ends rather than now: for clients that send what a
    /// schema requires after creating the run (MLflow's send datasets with `log_input`). A
    /// refusing schema then refuses the run at its end (kept, marked refused) instead of its
    /// creation.
    pub defer_schema: bool,
}

/// A run with its live metric summaries (current even while the run is still logging, when the
/// catalog's copy may trail by a couple of seconds).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunView {
    #[serde(flatten)]
    pub run: Run,
    pub experiment_name: String,
    pub live_metrics: BTreeMap<String, MetricSummary>,
}

/// One entry of an artifact listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ArtifactEntry {
    pub path: String,
    pub is_dir: bool,
    pub size: Option<u64>,
}

/// One set of connections to a workspace's stores.
#[derive(Debug)]
pub(crate) struct Stores {
    dir: PathBuf,
    info: WorkspaceInfo,
    user: String,
    catalog: Catalog,
    metrics: MetricStore,
    artifacts: ArtifactStore,
    traces: TraceStore,
    last_summary_flush: HashMap<RunId, Instant>,
    /// The audit chains (`audit.db`), opened on first use (see `audit.rs`).
    pub(crate) audit: Option<cairn_audit::AuditStore>,
    /// This device's signing key, read once.
    pub(crate) audit_key: Option<cairn_audit::DeviceKey>,
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Stores {
    /// Creates a new workspace in `dir` (created if missing). `user` is who writes through it.
    pub fn create(dir: &Path, user: &str) -> Result<Stores, Error> {
        let marker = dir.join(MARKER);
        if marker.exists() {
            return Err(Error::AlreadyAWorkspace(dir.to_owned()));
        }
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let info = WorkspaceInfo {
            format: FORMAT,
            id: RunId::new().to_string(),
            created_ms: now_ms(),
            demo: false,
        };
        write_marker(&marker, &info)?;
        Self::open(dir, user)
    }

    /// Opens an existing workspace.
    pub fn open(dir: &Path, user: &str) -> Result<Stores, Error> {
        let marker = dir.join(MARKER);
        let text = match std::fs::read_to_string(&marker) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotAWorkspace(dir.to_owned()));
            }
            Err(e) => {
                return Err(Error::Io {
                    path: marker,
                    source: e,
                });
            }
        };
        let info: WorkspaceInfo =
            serde_json::from_str(&text).map_err(|e| Error::BadWorkspaceFile {
                path: marker.clone(),
                reason: e.to_string(),
            })?;
        if info.format > FORMAT {
            return Err(Error::BadWorkspaceFile {
                path: marker,
                reason: format!(
                    "format {} is newer than this build of Cairn reads ({FORMAT})",
                    info.format
                ),
            });
        }
        let catalog = Catalog::open(&dir.join("catalog.db"), user)?;
        let metrics = MetricStore::open(&dir.join("metrics.db"))?;
        let artifacts = ArtifactStore::open(&dir.join("artifacts"))?;
        let traces = TraceStore::open(&dir.join("traces.db"))?;
        restrict_to_owner(dir)?;
        let mut stores = Stores {
            dir: dir.to_owned(),
            info,
            user: user.to_owned(),
            catalog,
            metrics,
            artifacts,
            traces,
            last_summary_flush: HashMap::new(),
            audit: None,
            audit_key: None,
        };
        stores.name_author();
        Ok(stores)
    }

    /// Opens the workspace in `dir`, creating it first when `dir` holds none. Returns whether it
    /// was created.
    pub fn open_or_create(dir: &Path, user: &str) -> Result<(Stores, bool), Error> {
        match Self::open(dir, user) {
            Ok(ws) => Ok((ws, false)),
            Err(Error::NotAWorkspace(_)) => Ok((Self::create(dir, user)?, true)),
            Err(e) => Err(e),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn workspace_info(&self) -> &WorkspaceInfo {
        &self.info
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub(crate) fn mark_demo(&mut self) -> Result<(), Error> {
        self.info.demo = true;
        write_marker(&self.dir.join(MARKER), &self.info)
    }

    // ---- experiments --------------------------------------------------------------------

    #[instrument(skip(self), err)]
    pub fn create_experiment(
        &mut self,
        name: &str,
        description: Option<&str>,
    ) -> Result<Experiment, Error> {
        self.create_experiment_as(ExperimentId::new(), name, description)
    }

    /// Creates an experiment with tags under an id chosen beforehand (for records keyed by it
    /// that are written first).
    pub(crate) fn create_experiment_with_id(
        &mut self,
        id: ExperimentId,
        name: &str,
        tags: &[(String, String)],
    ) -> Result<Experiment, Error> {
        for (k, _) in tags {
            validate_key("experiment tag key", k)?;
        }
        let mut exp = self.create_experiment_as(id, name, None)?;
        if !tags.is_empty() {
            exp.tags.extend(tags.iter().cloned());
            self.catalog.update_experiment(&exp)?;
        }
        Ok(exp)
    }

    fn create_experiment_as(
        &mut self,
        id: ExperimentId,
        name: &str,
        description: Option<&str>,
    ) -> Result<Experiment, Error> {
        let name = name.trim();
        if name.is_empty() || name.len() > 500 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "invalid experiment name '{name}': must be 1-500 printable characters"
            )));
        }
        let exp = Experiment {
            id,
            name: name.to_owned(),
            created_ms: now_ms(),
            description: description.map(str::to_owned),
            tags: BTreeMap::new(),
            schema: None,
            deleted: false,
        };
        self.catalog.create_experiment(&exp)?;
        Ok(exp)
    }

    /// Creates an experiment with tags, in one step.
    pub(crate) fn create_experiment_with_tags(
        &mut self,
        name: &str,
        description: Option<&str>,
        tags: &[(String, String)],
    ) -> Result<Experiment, Error> {
        for (k, _) in tags {
            validate_key("experiment tag key", k)?;
        }
        let mut exp = self.create_experiment(name, description)?;
        if !tags.is_empty() {
            exp.tags.extend(tags.iter().cloned());
            self.catalog.update_experiment(&exp)?;
        }
        Ok(exp)
    }

    pub(crate) fn rename_experiment(
        &mut self,
        id: ExperimentId,
        name: &str,
    ) -> Result<Experiment, Error> {
        let name = name.trim();
        if name.is_empty() || name.len() > 500 || name.chars().any(char::is_control) {
            return Err(Error::Invalid(format!(
                "invalid experiment name '{name}': must be 1-500 printable characters"
            )));
        }
        let mut exp = self.experiment_by_id(id)?;
        exp.name = name.to_owned();
        self.catalog.update_experiment(&exp)?;
        Ok(exp)
    }

    pub(crate) fn set_experiment_tag(
        &mut self,
        id: ExperimentId,
        key: &str,
        value: &str,
    ) -> Result<Experiment, Error> {
        validate_key("experiment tag key", key)?;
        let mut exp = self.experiment_by_id(id)?;
        exp.tags.insert(key.to_owned(), value.to_owned());
        self.catalog.update_experiment(&exp)?;
        Ok(exp)
    }

    /// The workspace's default experiment (MLflow's experiment "0"), created on first use. It is
    /// known by id, so renaming it keeps it the default.
    pub fn default_experiment(&mut self) -> Result<Experiment, Error> {
        if let Some(id) = self
            .catalog
            .team_entry(DEFAULT_EXPERIMENT_KEY)?
            .and_then(|t| t.parse::<ExperimentId>().ok())
            && let Some(e) = self.catalog.experiment(id)?
        {
            return Ok(e);
        }
        let (e, _) = self.ensure_experiment("Default")?;
        self.catalog
            .put_team_entry(DEFAULT_EXPERIMENT_KEY, Some(&e.id.to_string()))?;
        Ok(e)
    }

    /// Deletes an experiment and marks its runs deleted; `restore_experiment` brings both back.
    pub fn delete_experiment(&mut self, id: ExperimentId) -> Result<(), Error> {
        if self.default_experiment()?.id == id {
            return Err(Error::Conflict(
                "the default experiment (MLflow's '0') cannot be deleted: it takes the runs no \
                 experiment is named for"
                    .into(),
            ));
        }
        self.set_experiment_deleted(id, true)
    }

    pub fn restore_experiment(&mut self, id: ExperimentId) -> Result<(), Error> {
        self.set_experiment_deleted(id, false)
    }

    fn set_experiment_deleted(&mut self, id: ExperimentId, deleted: bool) -> Result<(), Error> {
        let mut exp = self.experiment_by_id(id)?;
        if !deleted
            && let Some(other) = self.catalog.experiment_by_name(&exp.name)?
            && other.id != id
        {
            return Err(Error::Invalid(format!(
                "cannot restore experiment '{}': a live experiment has its name",
                exp.name
            )));
        }
        let filter = RunFilter {
            experiment: Some(id),
            include_deleted: true,
            ..Default::default()
        };
        let edits: Vec<(RunId, Vec<RunEdit>)> = self
            .catalog
            .list_runs(&filter)?
            .into_iter()
            .map(|r| (r.id, vec![RunEdit::Deleted(deleted)]))
            .collect();
        self.catalog.update_runs(&edits)?;
        exp.deleted = deleted;
        Ok(self.catalog.update_experiment(&exp)?)
    }

    /// The experiment named `name`, created when there is none. Returns whether it was created.
    pub fn ensure_experiment(&mut self, name: &str) -> Result<(Experiment, bool), Error> {
        let name = name.trim();
        match self.catalog.experiment_by_name(name)? {
            Some(e) => Ok((e, false)),
            None => Ok((self.create_experiment(name, None)?, true)),
        }
    }

    /// An experiment by name or id; "0" (MLflow's id of it) is the default experiment.
    pub fn experiment(&mut self, name_or_id: &str) -> Result<Experiment, Error> {
        if let Some(e) = self.catalog.experiment_by_name(name_or_id)? {
            return Ok(e);
        }
        if let Ok(id) = name_or_id.parse::<ExperimentId>()
            && let Some(e) = self.catalog.experiment(id)?
        {
            return Ok(e);
        }
        if name_or_id == "0" {
            return self.default_experiment();
        }
        Err(Error::UnknownExperiment(name_or_id.to_owned()))
    }

    pub fn experiment_by_id(&self, id: ExperimentId) -> Result<Experiment, Error> {
        self.catalog
            .experiment(id)?
            .ok_or_else(|| Error::UnknownExperiment(id.to_string()))
    }

    /// The live experiments with their run counts. The default experiment (MLflow's "0", there
    /// from the workspace's creation) is listed once it holds runs.
    pub fn experiments(&mut self) -> Result<Vec<ExperimentSummary>, Error> {
        let counts = self.catalog.run_counts()?;
        let default = self.default_experiment()?.id;
        Ok(self
            .catalog
            .experiments()?
            .into_iter()
            .filter(|e| !e.deleted)
            .filter(|e| e.id != default || counts.get(&e.id).is_some_and(|n| *n > 0))
            .map(|e| ExperimentSummary {
                runs: counts.get(&e.id).copied().unwrap_or(0),
                experiment: e,
            })
            .collect())
    }

    /// Every experiment, deleted ones included.
    pub fn experiments_all(&self) -> Result<Vec<Experiment>, Error> {
        Ok(self.catalog.experiments()?)
    }

    pub fn update_experiment(&mut self, exp: &Experiment) -> Result<(), Error> {
        Ok(self.catalog.update_experiment(exp)?)
    }

    // ---- schema ---------------------------------------------------------------------------

    /// The schema runs of `experiment` must satisfy: the experiment's own, else the project's.
    pub fn schema(&mut self, experiment: Option<ExperimentId>) -> Result<RunSchema, Error> {
        if let Some(id) = experiment
            && let Some(s) = self.experiment_by_id(id)?.schema
        {
            return Ok(s);
        }
        Ok(self.catalog.project_schema()?)
    }

    /// Sets the project's schema, or one experiment's override.
    pub fn set_schema(
        &mut self,
        experiment: Option<ExperimentId>,
        schema: RunSchema,
    ) -> Result<(), Error> {
        let project = self.catalog.project_schema()?;
        match experiment {
            None => {
                let draft = crate::audit::schema_set(
                    self.draft(cairn_audit::kind::SCHEMA_SET),
                    None,
                    &project,
                    "project",
                    &schema,
                );
                self.record_event(draft)?;
                Ok(self.catalog.set_project_schema(&schema)?)
            }
            Some(id) => {
                let mut exp = self.experiment_by_id(id)?;
                let (old, old_scope) = match &exp.schema {
                    Some(s) => (s.clone(), "experiment"),
                    None => (project, "project"),
                };
                let draft = crate::audit::schema_set(
                    self.draft(cairn_audit::kind::SCHEMA_SET),
                    Some(&exp),
                    &old,
                    old_scope,
                    &schema,
                );
                self.record_event(draft)?;
                exp.schema = Some(schema);
                self.update_experiment(&exp)
            }
        }
    }

    // ---- runs -----------------------------------------------------------------------------

    fn build_run(&self, new: NewRun, experiment: &Experiment) -> Result<Run, Error> {
        for k in new.params.keys() {
            validate_key("param key", k)?;
        }
        for k in new.tags.keys() {
            validate_key("tag key", k)?;
        }
        let start = new.start_ms.unwrap_or_else(now_ms);
        let id = RunId::new();
        let name = new
            .name
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| default_run_name(id));
        let mut run = Run::new(id, experiment.id, name, start);
        run.owner = new
            .owner
            .or_else(|| Some(self.user.clone()))
            .filter(|o| !o.trim().is_empty());
        run.params = new.params;
        run.tags = new.tags;
        run.lineage = new.lineage;
        run.notes = new.notes;
        if let Some((parent, kind)) = new.parent {
            run.parent = Some(parent);
            run.parent_kind = Some(kind);
        }
        Ok(run)
    }

    /// Judges `run` against its schema (the experiment's own, else the project's) at `stage`
    /// (`created`, `imported`, `ended`): `None` when it conforms, else the signed
    /// `run.schema_violation` event to record, naming every violated field, the schema in force
    /// and the outcome, with the violations and whether the schema refuses them.
    fn schema_verdict(
        &mut self,
        run: &Run,
        experiment: &Experiment,
        stage: &str,
    ) -> Result<Option<(cairn_audit::Draft, Vec<cairn_model::SchemaViolation>, bool)>, Error> {
        let (schema, own) = match &experiment.schema {
            Some(s) => (s.clone(), true),
            None => (self.catalog.project_schema()?, false),
        };
        let violations = schema.check(run);
        if violations.is_empty() {
            return Ok(None);
        }
        let draft = crate::audit::schema_violation(
            self.draft(cairn_audit::kind::SCHEMA_VIOLATION),
            run,
            experiment,
            own,
            &schema,
            &violations,
            stage,
        );
        Ok(Some((
            draft,
            violations,
            schema.enforcement == Enforcement::Refuse,
        )))
    }

    /// Refuses a run its schema refuses: one lacking required fields when the schema says
    /// refuse, with every missing field named (the refusal is itself a signed event: who tried
    /// to record what). A kept run that lacks fields gives the violation event to record with
    /// it. (What a kept run lacks is its compliance, which the catalog projects from the run
    /// and its schema.)
    pub(crate) fn refuse_incomplete(
        &mut self,
        run: &Run,
        experiment: &Experiment,
        stage: &str,
    ) -> Result<Option<cairn_audit::Draft>, Error> {
        match self.schema_verdict(run, experiment, stage)? {
            None => Ok(None),
            Some((draft, violations, true)) => {
                self.record_event(draft)?;
                Err(Error::Schema {
                    experiment: experiment.name.clone(),
                    violations,
                })
            }
            Some((draft, _, false)) => Ok(Some(draft)),
        }
    }

    /// Starts a run: checks its schema (unless the caller defers the check to the run's end),
    /// records it, and returns it as recorded, with its compliance.
    #[instrument(skip(self, new), err)]
    pub fn start_run(&mut self, mut new: NewRun) -> Result<Run, Error> {
        let defer = new.defer_schema;
        crate::runs::apply_system_tags(&mut new);
        let (exp, exists) = match (new.experiment, new.experiment_name.as_deref()) {
            (Some(id), _) => (self.experiment_by_id(id)?, true),
            (None, None) => (self.default_experiment()?, true),
            (None, Some(name)) => match self.catalog.experiment_by_name(name.trim())? {
                Some(e) => (e, true),
                // Checked against the project schema before anything is stored.
                None => (
                    Experiment {
                        id: ExperimentId::new(),
                        name: name.trim().to_owned(),
                        created_ms: now_ms(),
                        description: None,
                        tags: BTreeMap::new(),
                        schema: None,
                        deleted: false,
                    },
                    false,
                ),
            },
        };
        if let Some((parent, _)) = new.parent {
            self.run_record(parent)?;
        }
        let mut run = self.build_run(new, &exp)?;
        // A deferred run (MLflow clients send datasets after creating it) is judged when it ends.
        let violation = if defer {
            None
        } else {
            self.refuse_incomplete(&run, &exp, "created")?
        };
        let exp = if exists {
            exp
        } else {
            self.create_experiment(&exp.name, None)?
        };
        run.experiment = exp.id;
        let created = crate::audit::run_created(self.draft(cairn_audit::kind::RUN_CREATED), &run);
        // The violation names the experiment as stored (a new one has its id only now), and
        // bears the creation's time: it lists right after it.
        let violation = violation.map(|mut d| {
            d.at_ms = created.at_ms;
            d.subject(format!("experiment:{}", exp.id))
        });
        self.create_runs_attested(
            std::slice::from_ref(&run),
            std::iter::once(created).chain(violation).collect(),
        )?;
        self.run_record(run.id)
    }

    /// Records complete runs in bulk (imports and demo data): schema applied to each.
    pub fn import_runs(&mut self, mut runs: Vec<Run>) -> Result<(), Error> {
        let mut exps: HashMap<ExperimentId, Experiment> = HashMap::new();
        let mut violations = Vec::with_capacity(runs.len());
        for run in &mut runs {
            if let std::collections::hash_map::Entry::Vacant(e) = exps.entry(run.experiment) {
                e.insert(self.experiment_by_id(run.experiment)?);
            }
            let exp = exps[&run.experiment].clone();
            let violation = self.refuse_incomplete(run, &exp, "imported")?;
            violations.push(violation.map(|d| d.subject(format!("experiment:{}", exp.id))));
        }
        let mut drafts = Vec::with_capacity(runs.len());
        for (r, violation) in runs.iter().zip(violations) {
            let created = crate::audit::run_created(self.draft(cairn_audit::kind::RUN_CREATED), r);
            let at_ms = created.at_ms;
            drafts.push(created);
            drafts.extend(violation.map(|mut d| {
                d.at_ms = at_ms;
                d
            }));
        }
        self.create_runs_attested(&runs, drafts)
    }

    /// The unique run whose id starts with `prefix`.
    pub fn resolve_run(&self, prefix: &str) -> Result<RunId, Error> {
        Ok(self.catalog.resolve_run(prefix)?)
    }

    pub(crate) fn run_record(&self, id: RunId) -> Result<Run, Error> {
        self.catalog
            .run(id)?
            .ok_or(Error::Catalog(cairn_catalog::Error::UnknownRun(id)))
    }

    /// A run with its live metric series.
    pub fn run(&self, id: RunId) -> Result<RunView, Error> {
        let run = self.run_record(id)?;
        let experiment_name = self
            .catalog
            .experiment(run.experiment)?
            .map(|e| e.name)
            .unwrap_or_default();
        let live_metrics = self.live_metrics(id)?;
        Ok(RunView {
            run,
            experiment_name,
            live_metrics,
        })
    }

    /// Applies edits to a run as one change. Param edits go through [`Self::log_params`].
    pub fn update_run(&mut self, id: RunId, edits: &[RunEdit]) -> Result<Run, Error> {
        for e in edits {
            match e {
                RunEdit::Param(k, _) => validate_key("param key", k)?,
                RunEdit::Tag(k, _) | RunEdit::DeleteTag(k) => validate_key("tag key", k)?,
                RunEdit::Name(n) if n.trim().is_empty() => {
                    return Err(Error::Invalid("a run name must not be empty".into()));
                }
                _ => {}
            }
        }
        Ok(self.catalog.update_run(id, edits)?)
    }

    /// Appends points to several series of a run in one durable write.
    pub fn log_metrics(&mut self, id: RunId, batches: &[(&str, &[Point])]) -> Result<(), Error> {
        for (k, _) in batches {
            validate_key("metric key", k)?;
        }
        // A run that has ended still takes metrics, as in MLflow (evaluations logged afterwards).
        self.run_record(id)?;
        let run_key = id.to_string();
        self.metrics.append_batch(&run_key, batches)?;
        let mut live = Vec::with_capacity(batches.len());
        for (k, _) in batches {
            if let Some(s) = self
                .metrics
                .series_info(&run_key, k)?
                .as_ref()
                .and_then(summary_of)
            {
                live.push(((*k).to_owned(), s));
            }
        }
        self.catalog.project_metric_summaries(id, &live)?;
        let due = self
            .last_summary_flush
            .get(&id)
            .is_none_or(|t| t.elapsed() >= SUMMARY_FLUSH_EVERY);
        if due {
            self.flush_summaries(id)?;
        }
        Ok(())
    }

    /// Copies the run's current series summaries into the catalog.
    pub(crate) fn flush_summaries(&mut self, id: RunId) -> Result<(), Error> {
        let edits: Vec<RunEdit> = self
            .metrics
            .series(&id.to_string())?
            .into_iter()
            .filter_map(|s| summary_of(&s).map(|m| RunEdit::Metric(s.key, m)))
            .collect();
        if !edits.is_empty() {
            self.catalog.update_run(id, &edits)?;
        }
        self.last_summary_flush.insert(id, Instant::now());
        Ok(())
    }

    /// Ends a run: seals its metric series, records final summaries and status. Its compliance
    /// is projected again with the status (what was logged after the start counts): a run that
    /// ends lacking what a refusing schema requires is refused — kept, marked, unpromotable.
    #[instrument(skip(self), err)]
    pub(crate) fn end_run(
        &mut self,
        id: RunId,
        status: RunStatus,
        end_ms: Option<i64>,
    ) -> Result<Run, Error> {
        if status == RunStatus::Running {
            return Err(Error::Invalid(
                "a run ends as finished, failed or killed".into(),
            ));
        }
        self.metrics.seal_run(&id.to_string())?;
        self.flush_summaries(id)?;
        self.last_summary_flush.remove(&id);
        // A run that ends lacking what its schema requires is judged now, with what it logged
        // meanwhile: signed before the status that makes it final (once per ending).
        // (Not when its experiment has not reached this device: nor has the schema to judge by.)
        let mut ended = self.run_record(id)?;
        if !ended.status.is_final()
            && let Some(exp) = self.catalog.experiment(ended.experiment)?
        {
            ended.status = status;
            if let Some((draft, _, _)) = self.schema_verdict(&ended, &exp, "ended")? {
                self.record_event(draft.subject(format!("experiment:{}", exp.id)))?;
            }
        }
        let edits = [RunEdit::Status {
            status,
            end_ms: Some(end_ms.unwrap_or_else(now_ms)),
        }];
        Ok(self.catalog.update_run(id, &edits)?)
    }

    pub fn metric_history(&self, id: RunId, key: &str) -> Result<Vec<Point>, Error> {
        self.require_series(id, key)?;
        Ok(self.metrics.history(&id.to_string(), key)?)
    }

    pub fn metric_history_page(
        &self,
        id: RunId,
        key: &str,
        offset: u64,
        limit: usize,
    ) -> Result<Vec<Point>, Error> {
        self.require_series(id, key)?;
        Ok(self
            .metrics
            .history_page(&id.to_string(), key, offset, limit)?)
    }

    pub fn metric_downsampled(
        &self,
        id: RunId,
        key: &str,
        range: Option<(i64, i64)>,
        buckets: usize,
    ) -> Result<Vec<cairn_metrics::Bucket>, Error> {
        self.require_series(id, key)?;
        Ok(self
            .metrics
            .downsample(&id.to_string(), key, range, buckets)?)
    }

    pub(crate) fn require_series(&self, id: RunId, key: &str) -> Result<(), Error> {
        self.run_record(id)?;
        match self.metrics.series_info(&id.to_string(), key)? {
            Some(_) => Ok(()),
            None => Err(Error::UnknownMetric {
                run: id.to_string(),
                key: key.to_owned(),
            }),
        }
    }

    /// The metric store's current summary of each of the run's series.
    pub fn live_metrics(&self, id: RunId) -> Result<BTreeMap<String, MetricSummary>, Error> {
        Ok(self
            .metrics
            .series(&id.to_string())?
            .iter()
            .filter_map(|s| summary_of(s).map(|m| (s.key.clone(), m)))
            .collect())
    }

    pub fn delete_run(&mut self, id: RunId) -> Result<Run, Error> {
        self.run_record(id)?;
        self.record_event(
            self.draft(cairn_audit::kind::RUN_DELETED)
                .subject(format!("run:{id}")),
        )?;
        self.update_run(id, &[RunEdit::Deleted(true)])
    }

    pub fn restore_run(&mut self, id: RunId) -> Result<Run, Error> {
        self.run_record(id)?;
        self.record_event(
            self.draft(cairn_audit::kind::RUN_RESTORED)
                .subject(format!("run:{id}")),
        )?;
        self.update_run(id, &[RunEdit::Deleted(false)])
    }

    /// Removes a tag; a tag the run does not have is an error naming it.
    pub fn delete_tag(&mut self, id: RunId, key: &str) -> Result<(), Error> {
        let run = self.run_record(id)?;
        // MLflow's note tag is the run's notes.
        if key == crate::runs::NOTE_TAG && !run.notes.is_empty() {
            let mut edits = vec![RunEdit::Notes(String::new())];
            if run.tags.contains_key(key) {
                edits.push(RunEdit::DeleteTag(key.to_owned()));
            }
            return self.update_run(id, &edits).map(drop);
        }
        if !run.tags.contains_key(key) {
            return Err(Error::UnknownTag {
                run: id.to_string(),
                key: key.to_owned(),
            });
        }
        self.update_run(id, &[RunEdit::DeleteTag(key.to_owned())])
            .map(drop)
    }

    pub(crate) fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub(crate) fn catalog_mut(&mut self) -> &mut Catalog {
        &mut self.catalog
    }

    pub(crate) fn metrics(&self) -> &MetricStore {
        &self.metrics
    }

    pub(crate) fn blob_store(&self) -> &ArtifactStore {
        &self.artifacts
    }

    pub(crate) fn traces(&self) -> &TraceStore {
        &self.traces
    }

    pub(crate) fn traces_mut(&mut self) -> &mut TraceStore {
        &mut self.traces
    }

    /// Metric store access for bulk writers inside this crate (demo data).
    pub(crate) fn metric_store(&mut self) -> &mut MetricStore {
        &mut self.metrics
    }

    // ---- artifacts ------------------------------------------------------------------------

    /// Stores a file or a directory and binds it to `logical` (default: its file name) in the run.
    #[instrument(skip(self), err)]
    pub fn add_artifact(
        &mut self,
        id: RunId,
        src: &Path,
        logical: Option<&str>,
    ) -> Result<(String, ArtifactRef, Vec<PathBuf>), Error> {
        self.run_record(id)?;
        let meta = std::fs::metadata(src).map_err(Error::io(src))?;
        let logical = match logical {
            Some(l) => l.trim_matches('/').to_owned(),
            None => src
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{} has no file name; give a logical path",
                        src.display()
                    ))
                })?,
        };
        validate_artifact_path(&logical)?;
        self.guard_registered_path(id, &logical, false)?;
        let (reference, skipped) = if meta.is_dir() {
            let put = self.artifacts.put_dir(src)?;
            let r = ArtifactRef {
                hash: put.hash,
                size: put.total_size,
                kind: ArtifactKind::Dir,
            };
            (r, put.skipped)
        } else {
            let put = self.artifacts.put_file(src)?;
            let r = ArtifactRef {
                hash: put.hash,
                size: put.size,
                kind: ArtifactKind::File,
            };
            (r, Vec::new())
        };
        self.catalog
            .update_run(id, &[RunEdit::Artifact(logical.clone(), reference.clone())])?;
        // Symlinks and special files in a directory are not stored: the caller says so.
        Ok((logical, reference, skipped))
    }

    /// Stores what `reader` yields (an upload) as the run's artifact `logical`.
    pub fn add_artifact_reader(
        &mut self,
        id: RunId,
        logical: &str,
        reader: &mut dyn std::io::Read,
    ) -> Result<ArtifactRef, Error> {
        self.run_record(id)?;
        let logical = logical.trim_matches('/');
        validate_artifact_path(logical)?;
        self.guard_registered_path(id, logical, false)?;
        let put = self.artifacts.put_reader(reader)?;
        let reference = ArtifactRef {
            hash: put.hash,
            size: put.size,
            kind: ArtifactKind::File,
        };
        self.catalog.update_run(
            id,
            &[RunEdit::Artifact(logical.to_owned(), reference.clone())],
        )?;
        Ok(reference)
    }

    /// The files and directories directly under `dir` ("" for the top) among the run's
    /// artifacts. Directory artifacts are listed through their manifests.
    pub fn list_artifacts(&self, id: RunId, dir: &str) -> Result<Vec<ArtifactEntry>, Error> {
        let run = self.run_record(id)?;
        list_bound(&self.artifacts, &run.artifacts, dir)
    }

    /// Unbinds an artifact path from the run. The content stays in the store (blobs are
    /// immutable and may be shared); only this run's reference goes.
    pub fn delete_artifact(&mut self, id: RunId, logical: &str) -> Result<(), Error> {
        let run = self.run_record(id)?;
        let logical = logical.trim_matches('/');
        self.guard_registered_path(id, logical, true)?;
        let prefix = format!("{logical}/");
        let doomed: Vec<RunEdit> = run
            .artifacts
            .keys()
            .filter(|k| k.as_str() == logical || k.starts_with(&prefix) || logical.is_empty())
            .map(|k| RunEdit::DeleteArtifact(k.clone()))
            .collect();
        if doomed.is_empty() {
            return Err(Error::UnknownArtifact {
                run: id.to_string(),
                path: logical.to_owned(),
            });
        }
        self.catalog
            .update_run(id, &doomed)
            .map(drop)
            .map_err(Into::into)
    }

    /// Reads the file at `path`, looking inside directory artifacts too, verified.
    pub fn read_artifact_path(&self, id: RunId, path: &str) -> Result<Vec<u8>, Error> {
        Ok(self.artifacts.read(&self.artifact_file(id, path)?)?)
    }

    /// The blob of the file at `path` among the run's artifacts, looking inside directory
    /// artifacts too.
    pub(crate) fn artifact_file(&self, id: RunId, path: &str) -> Result<BlobHash, Error> {
        let run = self.run_record(id)?;
        file_in(&self.artifacts, &run.artifacts, path)?.ok_or_else(|| Error::UnknownArtifact {
            run: id.to_string(),
            path: path.trim_matches('/').to_owned(),
        })
    }

    /// Writes the run's artifact `logical` to `dest`, verified against its hash.
    pub fn get_artifact(&self, id: RunId, logical: &str, dest: &Path) -> Result<u64, Error> {
        let reference = self.artifact_ref(id, logical)?;
        Ok(match reference.kind {
            ArtifactKind::File => self.artifacts.copy_to(&reference.hash, dest)?,
            ArtifactKind::Dir => self.artifacts.restore_dir(&reference.hash, dest)?,
        })
    }

    /// The reference the run binds to the logical path `logical`.
    fn artifact_ref(&self, id: RunId, logical: &str) -> Result<ArtifactRef, Error> {
        let run = self.run_record(id)?;
        run.artifacts
            .get(logical.trim_matches('/'))
            .cloned()
            .ok_or_else(|| Error::UnknownArtifact {
                run: id.to_string(),
                path: logical.to_owned(),
            })
    }

    // ---- maintenance -----------------------------------------------------------------------

    /// Recomputes the catalog's projection tables from its automerge docs.
    pub fn rebuild_projections(&mut self) -> Result<u64, Error> {
        let n = self.catalog.rebuild_projections()?;
        // Run costs are derived from the runs too: the next cost query computes them afresh.
        self.catalog.reset_run_costs()?;
        // The docs' summaries may trail the metric store by a couple of seconds: re-apply it.
        let runs: Vec<RunRow> = self.catalog.list_runs(&RunFilter {
            include_deleted: true,
            ..Default::default()
        })?;
        for r in runs {
            let live: Vec<(String, MetricSummary)> = self.live_metrics(r.id)?.into_iter().collect();
            if !live.is_empty() {
                self.catalog.project_metric_summaries(r.id, &live)?;
            }
        }
        Ok(n)
    }

    /// Compacts every catalog doc into a fresh snapshot.
    pub fn compact(&mut self) -> Result<usize, Error> {
        Ok(self.catalog.compact_all()?)
    }

    pub fn metric_storage(&self) -> Result<cairn_metrics::StorageStats, Error> {
        Ok(self.metrics.storage_stats()?)
    }
}

/// Makes the workspace readable by its owner only: on a shared GPU box other local users must
/// not read the catalog (nor find the loopback server's data through it). The directory is
/// 0700 and the databases 0600; SQLite gives the `-wal`/`-shm` files the database's mode.
/// Workspaces made by earlier versions (0755/0644) are tightened when opened.
#[cfg(unix)]
fn restrict_to_owner(dir: &Path) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    let restrict = |path: &Path, mode: u32| -> Result<(), Error> {
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(Error::io(path)(e)),
        };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(Error::io(path))?;
        }
        Ok(())
    };
    restrict(dir, 0o700)?;
    for db in ["catalog.db", "metrics.db", "traces.db", "sync.db"] {
        for suffix in ["", "-wal", "-shm"] {
            restrict(&dir.join(format!("{db}{suffix}")), 0o600)?;
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn restrict_to_owner(_dir: &Path) -> Result<(), Error> {
    Ok(())
}

fn write_marker(path: &Path, info: &WorkspaceInfo) -> Result<(), Error> {
    let text = serde_json::to_string_pretty(info).unwrap_or_default();
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, text).map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

/// The summary the catalog keeps of a series.
pub(crate) fn summary_of(s: &SeriesInfo) -> Option<MetricSummary> {
    let last = s.last?;
    Some(MetricSummary {
        last: last.value,
        step: last.step,
        ts_ms: last.ts_ms,
        min: s.min,
        max: s.max,
        count: s.count,
    })
}

/// The files and directories directly under `dir` ("" for the top) among `artifacts` (a run's
/// or a logged model's bindings). Directory artifacts are listed through their manifests.
pub(crate) fn list_bound(
    store: &ArtifactStore,
    artifacts: &BTreeMap<String, ArtifactRef>,
    dir: &str,
) -> Result<Vec<ArtifactEntry>, Error> {
    let dir = dir.trim_matches('/');
    let mut files: Vec<(String, u64)> = Vec::new();
    for (path, r) in artifacts {
        match r.kind {
            ArtifactKind::File => files.push((path.clone(), r.size)),
            ArtifactKind::Dir => {
                for e in store.manifest(&r.hash)?.entries {
                    files.push((format!("{path}/{}", e.path), e.size));
                }
            }
        }
    }
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut out: BTreeMap<String, ArtifactEntry> = BTreeMap::new();
    for (path, size) in files {
        let Some(rest) = path.strip_prefix(&prefix) else {
            continue;
        };
        match rest.split_once('/') {
            Some((sub, _)) => {
                let p = format!("{prefix}{sub}");
                out.entry(p.clone()).or_insert(ArtifactEntry {
                    path: p,
                    is_dir: true,
                    size: None,
                });
            }
            None => {
                out.insert(
                    path.clone(),
                    ArtifactEntry {
                        path,
                        is_dir: false,
                        size: Some(size),
                    },
                );
            }
        }
    }
    Ok(out.into_values().collect())
}

/// The blob of the file at `path` among `artifacts`, looking inside directory artifacts too.
pub(crate) fn file_in(
    store: &ArtifactStore,
    artifacts: &BTreeMap<String, ArtifactRef>,
    path: &str,
) -> Result<Option<BlobHash>, Error> {
    let path = path.trim_matches('/');
    if let Some(r) = artifacts.get(path).filter(|r| r.kind == ArtifactKind::File) {
        return Ok(Some(r.hash));
    }
    for (root, r) in artifacts {
        if r.kind != ArtifactKind::Dir {
            continue;
        }
        if let Some(rest) = path.strip_prefix(&format!("{root}/"))
            && let Some(e) = store
                .manifest(&r.hash)?
                .entries
                .into_iter()
                .find(|e| e.path == rest)
        {
            return Ok(Some(e.hash));
        }
    }
    Ok(None)
}

/// A readable default name, unique enough to tell runs apart in a list: two words from the id.
fn default_run_name(id: RunId) -> String {
    const ADJ: [&str; 16] = [
        "amber", "brisk", "calm", "dusty", "eager", "fuzzy", "gentle", "hazy", "icy", "jolly",
        "keen", "lucky", "misty", "noble", "quiet", "rapid",
    ];
    const NOUN: [&str; 16] = [
        "otter", "falcon", "cedar", "comet", "delta", "ember", "fjord", "glade", "heron", "island",
        "lynx", "maple", "nebula", "orchid", "pine", "quartz",
    ];
    let b = id.to_string();
    let n = u64::from_str_radix(&b[b.len() - 6..], 16).unwrap_or(0);
    format!(
        "{}-{}-{}",
        ADJ[(n & 15) as usize],
        NOUN[((n >> 4) & 15) as usize],
        (n >> 8) % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_workspace_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ws");
        drop(Stores::create(&dir, "alice").unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("catalog.db")), 0o600);
        assert_eq!(mode(&dir.join("metrics.db")), 0o600);

        // A workspace made before (0755, 0644) is tightened when opened.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = dir.join("catalog.db");
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Stores::open(&dir, "alice").unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&db), 0o600);
    }
}
