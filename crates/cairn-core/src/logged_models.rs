//! Logged models (MLflow 3's `LoggedModel`), each holding its rules: created `PENDING` in its
//! experiment (beside the run that produced it), finalized `READY` or `FAILED`, deleted as a
//! tombstone (who and when); params that never change once logged; tags; the latest value of
//! each metric a run measured it with (with the dataset); the runs that logged it as an output
//! or took it as an input; its files, uploaded under it and listed and read like a run's; a
//! search by MLflow's filter grammar ordered by metrics, params or attributes. A registered
//! model version made from `models:/<id>` gets the model's files as its content
//! ([`Workspace::model_source_content`]).

mod filter;

use std::collections::BTreeMap;
use std::io::Read;

use cairn_artifacts::{ArtifactStore, Manifest, ManifestEntry};
use cairn_catalog::{
    DatasetFilter, LoggedModelEdit, LoggedModelQuery, ModelField, ModelOrder, ModelRole,
};
use cairn_model::{
    ArtifactKind, ArtifactRef, BlobHash, Deletion, ExperimentId, LoggedModel, LoggedModelId,
    LoggedModelMetric, LoggedModelStatus, RunId, py_repr, validate_artifact_path, validate_key,
    validate_logged_model_name,
};
use serde::{Deserialize, Serialize};

use crate::runs::{check_param, check_tag};
use crate::stores::{ArtifactEntry, file_in, list_bound, now_ms};
use crate::transfer::ArtifactDownload;
use crate::{Error, Stores, Workspace};

/// The most params, tags, metrics or run links one call may carry (MLflow's client sends 100
/// params a request; a batch of metrics carries up to 1,000).
pub const MAX_MODEL_ENTRIES: usize = 1000;

/// The most models one search page may hold (larger `max_results` are cut to it: the page
/// then ends with a token for the rest).
pub const MAX_MODEL_PAGE: usize = 50_000;

/// A logged model to create.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewLoggedModel {
    pub experiment: ExperimentId,
    /// A readable name is made up when absent.
    pub name: Option<String>,
    /// The run that produces it (it must exist).
    pub source_run: Option<RunId>,
    pub model_type: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
}

/// A metric value logged by a run for a logged model (MLflow's `log_metric(model_id=…)`).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelMetricValue {
    pub model: LoggedModelId,
    pub key: String,
    pub value: f64,
    pub step: i64,
    /// When it was measured; now when absent.
    pub ts_ms: Option<i64>,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// One key of a search's order: `metrics.acc`, `params.lr`, or an attribute (`name`,
/// `creation_timestamp`…); a metric may be restricted to the values measured on a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelOrderKey {
    pub field: String,
    pub ascending: bool,
    pub dataset_name: Option<String>,
    pub dataset_digest: Option<String>,
}

/// A search of logged models (MLflow's `logged-models/search`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoggedModelSearch {
    pub experiments: Vec<ExperimentId>,
    /// MLflow's filter grammar for logged models (comparisons joined by `AND`).
    pub filter: String,
    /// (name, digest): metric conditions hold only for values measured on one of them, and
    /// without metric conditions a model must have a value measured on one of them.
    pub datasets: Vec<(String, Option<String>)>,
    pub order: Vec<ModelOrderKey>,
    pub limit: usize,
    pub offset: usize,
}

/// A logged model as a run sees it: one it produced (at a step) or took as input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunModelLink {
    pub run: RunId,
    pub model: LoggedModelId,
    /// `output` (the run logged it) or `input` (the run read it).
    pub role: String,
    pub step: i64,
}

/// A run's logged models, for its page: each link with the model it names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunModel {
    pub role: String,
    pub step: i64,
    pub model: LoggedModel,
}

/// A logged model with the listing of its files, for a page.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct LoggedModelView {
    pub model: LoggedModel,
    pub experiment_name: String,
    /// Every file under the model, with its size.
    pub files: Vec<ArtifactEntry>,
}

/// Where a model version's files come from, when its source names a logged model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSource {
    pub model: LoggedModelId,
    /// The run that produced the model.
    pub run: Option<RunId>,
    /// The manifest of the model's files (a directory in the artifact store), when it has any.
    pub content: Option<BlobHash>,
}

/// An upload accepted for one path of one logged model, stored without the workspace
/// ([`ModelArtifactUpload::store`]) and then bound ([`Workspace::bind_model_artifact`]).
#[derive(Debug)]
pub struct ModelArtifactUpload {
    store: ArtifactStore,
    model: LoggedModelId,
    path: String,
}

impl ModelArtifactUpload {
    /// Stores what `reader` yields, hashing while it writes a temporary file: memory does not
    /// grow with the size. Nothing is bound until [`Workspace::bind_model_artifact`].
    pub fn store(self, reader: &mut dyn Read) -> Result<StoredModelArtifact, Error> {
        let put = self.store.put_reader(reader)?;
        Ok(StoredModelArtifact {
            model: self.model,
            path: self.path,
            reference: ArtifactRef {
                hash: put.hash,
                size: put.size,
                kind: ArtifactKind::File,
            },
        })
    }
}

/// Content a [`ModelArtifactUpload`] stored, not yet bound to its model.
#[derive(Debug)]
pub struct StoredModelArtifact {
    model: LoggedModelId,
    path: String,
    reference: ArtifactRef,
}

fn role_name(r: ModelRole) -> &'static str {
    match r {
        ModelRole::Output => "output",
        ModelRole::Input => "input",
    }
}

fn unknown(id: &LoggedModelId) -> Error {
    Error::Catalog(cairn_catalog::Error::UnknownLoggedModel(id.clone()))
}

fn too_many(what: &str, n: usize) -> Result<(), Error> {
    if n > MAX_MODEL_ENTRIES {
        return Err(Error::Invalid(format!(
            "one call may carry at most {MAX_MODEL_ENTRIES} {what}; this one has {n}"
        )));
    }
    Ok(())
}

/// Params given in one call: checked, and the same key twice must have one value.
fn check_params(params: &[(String, String)]) -> Result<BTreeMap<String, String>, Error> {
    too_many("params", params.len())?;
    let mut out = BTreeMap::new();
    for (k, v) in params {
        check_param(k, v)?;
        if let Some(other) = out.insert(k.clone(), v.clone())
            && &other != v
        {
            return Err(Error::Invalid(format!(
                "param '{k}' is given twice, as '{other}' and as '{v}'"
            )));
        }
    }
    Ok(out)
}

fn check_tags(tags: &[(String, String)]) -> Result<BTreeMap<String, String>, Error> {
    too_many("tags", tags.len())?;
    let mut out = BTreeMap::new();
    for (k, v) in tags {
        check_tag(k, v)?;
        // A key given twice keeps its last value, as MLflow's server does.
        out.insert(k.clone(), v.clone());
    }
    Ok(out)
}

/// A readable default name (MLflow makes one up too): two words and a number from the id.
fn default_name(id: &LoggedModelId) -> String {
    const ADJ: [&str; 16] = [
        "able", "bold", "crisp", "deft", "even", "fair", "grand", "hardy", "ideal", "just", "kind",
        "lean", "merry", "neat", "prime", "sound",
    ];
    const NOUN: [&str; 16] = [
        "ash", "birch", "cove", "dune", "elm", "fern", "gull", "hawk", "ibis", "jay", "kite",
        "lark", "moss", "newt", "oak", "peak",
    ];
    let hex = id.as_str();
    let n = u64::from_str_radix(&hex[hex.len() - 6..], 16).unwrap_or(0);
    format!(
        "{}-{}-{}",
        ADJ[(n & 15) as usize],
        NOUN[((n >> 4) & 15) as usize],
        (n >> 8) % 1000
    )
}

/// The logged model a version source names: `models:/<id>` (a path under it included), or
/// the model's own artifact location (`mlflow-artifacts:/…/models/<id>/artifacts…`).
fn model_in_source(source: &str) -> Option<LoggedModelId> {
    if let Some(rest) = source.strip_prefix("models:/") {
        let id = rest.trim_start_matches('/').split('/').next().unwrap_or("");
        return id.parse().ok();
    }
    let (_, rest) = source.split_once("/models/")?;
    let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
    (tail.is_empty() || tail == "artifacts" || tail.starts_with("artifacts/"))
        .then(|| id.parse().ok())
        .flatten()
}

impl Stores {
    /// Edits a logged model in one change, deciding inside the write (see
    /// `Catalog::update_logged_model`).
    fn edit_model(
        &mut self,
        id: &LoggedModelId,
        edits: impl FnOnce(&LoggedModel) -> Result<Vec<LoggedModelEdit>, Error>,
    ) -> Result<LoggedModel, Error> {
        self.catalog_mut().update_logged_model(id, edits)
    }

    fn model_record(&self, id: &LoggedModelId) -> Result<LoggedModel, Error> {
        self.catalog().logged_model(id)?.ok_or_else(|| unknown(id))
    }

    /// A live model (deleted ones are not found, as MLflow's server does).
    fn live_model(&self, id: &LoggedModelId) -> Result<LoggedModel, Error> {
        let m = self.model_record(id)?;
        if m.deleted.is_some() {
            return Err(unknown(id));
        }
        Ok(m)
    }

    pub(crate) fn create_logged_model(
        &mut self,
        new: NewLoggedModel,
    ) -> Result<LoggedModel, Error> {
        if let Some(name) = &new.name {
            validate_logged_model_name(name)?;
        }
        if let Some(t) = &new.model_type
            && t.chars().count() > 500
        {
            return Err(Error::Invalid(format!(
                "a model type is at most 500 characters; '{t}' has {}",
                t.chars().count()
            )));
        }
        let params = check_params(&new.params)?;
        let tags = check_tags(&new.tags)?;
        let exp = self.experiment_by_id(new.experiment)?;
        if exp.deleted {
            return Err(Error::Invalid(format!(
                "The experiment {} must be in the 'active' state. Current state is deleted.",
                self.mlflow_id(&exp)?
            )));
        }
        if let Some(run) = new.source_run {
            self.run_record(run)?;
        }
        let id = LoggedModelId::new();
        let now = now_ms();
        let model = LoggedModel {
            name: new.name.unwrap_or_else(|| default_name(&id)),
            artifact_location: format!(
                "mlflow-artifacts:/{}/models/{id}/artifacts",
                self.mlflow_id(&exp)?
            ),
            id,
            experiment: exp.id,
            source_run: new.source_run,
            status: LoggedModelStatus::Pending,
            status_message: None,
            model_type: new.model_type,
            creator: Some(self.user().to_owned()),
            created_ms: now,
            updated_ms: now,
            params,
            tags,
            metrics: Vec::new(),
            artifacts: BTreeMap::new(),
            outputs: BTreeMap::new(),
            inputs: BTreeMap::new(),
            deleted: None,
            conflicts: Vec::new(),
        };
        self.catalog_mut().create_logged_model(&model)?;
        Ok(model)
    }

    /// The id MLflow clients know the experiment by ("0" for the default one).
    fn mlflow_id(&mut self, e: &cairn_model::Experiment) -> Result<String, Error> {
        Ok(if self.default_experiment()?.id == e.id {
            "0".into()
        } else {
            e.id.to_string()
        })
    }

    pub(crate) fn finalize_logged_model(
        &mut self,
        id: &LoggedModelId,
        status: LoggedModelStatus,
        message: Option<String>,
    ) -> Result<LoggedModel, Error> {
        self.live_model(id)?;
        let now = now_ms();
        self.edit_model(id, |_| {
            Ok(vec![
                LoggedModelEdit::Status { status, message },
                LoggedModelEdit::Updated(now),
            ])
        })
    }

    /// Marks the model deleted: a tombstone with who and when. Deleting it again is no error
    /// (as MLflow's server answers) and keeps the first tombstone.
    pub(crate) fn delete_logged_model(&mut self, id: &LoggedModelId) -> Result<(), Error> {
        let user = self.user().to_owned();
        let now = now_ms();
        self.edit_model(id, |m| {
            if m.deleted.is_some() {
                return Ok(Vec::new());
            }
            Ok(vec![
                LoggedModelEdit::Deleted(Some(Deletion {
                    by: user,
                    at_ms: now,
                })),
                LoggedModelEdit::Updated(now),
            ])
        })?;
        Ok(())
    }

    pub(crate) fn set_logged_model_tags(
        &mut self,
        id: &LoggedModelId,
        tags: &[(String, String)],
    ) -> Result<(), Error> {
        let tags = check_tags(tags)?;
        self.model_record(id)?;
        self.edit_model(id, |_| {
            Ok(tags
                .into_iter()
                .map(|(k, v)| LoggedModelEdit::Tag(k, v))
                .collect())
        })?;
        Ok(())
    }

    pub(crate) fn delete_logged_model_tag(
        &mut self,
        id: &LoggedModelId,
        key: &str,
    ) -> Result<(), Error> {
        self.edit_model(id, |m| {
            if !m.tags.contains_key(key) {
                return Err(Error::UnknownModelTag {
                    model: m.id.to_string(),
                    key: key.to_owned(),
                });
            }
            Ok(vec![LoggedModelEdit::DeleteTag(key.to_owned())])
        })?;
        Ok(())
    }

    /// Logs params; a param already logged with another value is refused (as a run's are),
    /// and then nothing of the call is stored.
    pub(crate) fn log_logged_model_params(
        &mut self,
        id: &LoggedModelId,
        params: &[(String, String)],
    ) -> Result<(), Error> {
        let params = check_params(params)?;
        self.model_record(id)?;
        self.edit_model(id, |m| {
            for (k, v) in &params {
                if let Some(old) = m.params.get(k)
                    && old != v
                {
                    return Err(Error::Conflict(format!(
                        "param '{k}' of logged model {} was already logged as '{old}'; \
                         params cannot change (got '{v}')",
                        m.id
                    )));
                }
            }
            Ok(params
                .iter()
                .filter(|(k, _)| !m.params.contains_key(*k))
                .map(|(k, v)| LoggedModelEdit::Param(k.clone(), v.clone()))
                .collect())
        })?;
        Ok(())
    }

    /// Records metric values a run measured models with: each model keeps the latest value of
    /// each (metric, run, dataset). Every model must exist, checked before anything is stored.
    pub(crate) fn log_model_metrics(
        &mut self,
        run: RunId,
        metrics: &[ModelMetricValue],
    ) -> Result<(), Error> {
        too_many("metrics", metrics.len())?;
        if metrics.is_empty() {
            return Ok(());
        }
        let r = self.run_record(run)?;
        if r.deleted {
            return Err(Error::Conflict(format!(
                "run {run} is deleted: restore it before logging to it"
            )));
        }
        let now = now_ms();
        let mut by_model: BTreeMap<LoggedModelId, Vec<LoggedModelMetric>> = BTreeMap::new();
        for m in metrics {
            validate_key("metric key", &m.key)?;
            self.model_record(&m.model)?;
            by_model
                .entry(m.model.clone())
                .or_default()
                .push(LoggedModelMetric {
                    key: m.key.clone(),
                    value: m.value,
                    step: m.step,
                    ts_ms: m.ts_ms.unwrap_or(now),
                    run: Some(run),
                    dataset_name: m.dataset_name.clone().filter(|d| !d.is_empty()),
                    dataset_digest: m.dataset_digest.clone().filter(|d| !d.is_empty()),
                });
        }
        for (id, values) in by_model {
            self.edit_model(&id, |model| {
                // The latest value of each series, among what is stored and what came.
                let mut latest: BTreeMap<String, LoggedModelMetric> = BTreeMap::new();
                for v in values {
                    let key = v.series_key();
                    match latest.get(&key) {
                        Some(seen) if !v.supersedes(seen) => {}
                        _ => {
                            latest.insert(key, v);
                        }
                    }
                }
                Ok(latest
                    .into_iter()
                    .filter(|(key, v)| {
                        !model
                            .metrics
                            .iter()
                            .any(|old| &old.series_key() == key && !v.supersedes(old))
                    })
                    .map(|(_, v)| LoggedModelEdit::Metric(v))
                    .collect())
            })?;
        }
        Ok(())
    }

    fn active_run(&self, run: RunId) -> Result<(), Error> {
        if self.run_record(run)?.deleted {
            return Err(Error::Conflict(format!(
                "run {run} is deleted: restore it before logging to it"
            )));
        }
        Ok(())
    }

    /// Records that `run` logged these models as outputs, each at a step.
    pub(crate) fn log_model_outputs(
        &mut self,
        run: RunId,
        models: &[(LoggedModelId, i64)],
    ) -> Result<(), Error> {
        too_many("models", models.len())?;
        self.active_run(run)?;
        for (id, _) in models {
            self.model_record(id)?;
        }
        for (id, step) in models {
            let step = *step;
            self.edit_model(id, |_| Ok(vec![LoggedModelEdit::Output(run, step)]))?;
        }
        Ok(())
    }

    /// Records that `run` took these models as inputs.
    pub(crate) fn log_model_inputs(
        &mut self,
        run: RunId,
        models: &[LoggedModelId],
    ) -> Result<(), Error> {
        too_many("models", models.len())?;
        self.active_run(run)?;
        for id in models {
            self.model_record(id)?;
        }
        let now = now_ms();
        for id in models {
            self.edit_model(id, |m| {
                // Once is enough: the first time a run read it stays.
                Ok(if m.inputs.contains_key(&run) {
                    Vec::new()
                } else {
                    vec![LoggedModelEdit::Input(run, now)]
                })
            })?;
        }
        Ok(())
    }

    pub(crate) fn search_logged_models(
        &mut self,
        s: &LoggedModelSearch,
    ) -> Result<(Vec<LoggedModel>, Option<usize>), Error> {
        if s.datasets.iter().any(|(name, _)| name.is_empty()) {
            return Err(Error::Invalid(
                "`dataset_name` in the `datasets` clause must be specified.".into(),
            ));
        }
        let mut conditions = filter::parse(&s.filter)?;
        // An experiment id in a filter is the one MLflow clients know ("0" for the default).
        for c in &mut conditions {
            if c.field == ModelField::Attribute(cairn_catalog::ModelAttribute::Experiment) {
                let default = self.default_experiment()?.id.to_string();
                let map = |v: &str| {
                    if v == "0" {
                        default.clone()
                    } else {
                        v.to_owned()
                    }
                };
                c.value = match &c.value {
                    cairn_catalog::CmpValue::Text(t) => cairn_catalog::CmpValue::Text(map(t)),
                    cairn_catalog::CmpValue::List(l) => {
                        cairn_catalog::CmpValue::List(l.iter().map(|t| map(t)).collect())
                    }
                    other => other.clone(),
                };
            }
        }
        let mut order = Vec::new();
        for o in &s.order {
            let field = filter::field(&o.field)
                .map_err(|_| Error::Invalid(format!("Invalid order by field name: {}", o.field)))?;
            if (o.dataset_name.is_some() || o.dataset_digest.is_some())
                && !matches!(field, ModelField::Metric(_))
            {
                return Err(Error::Invalid(format!(
                    "Invalid order by field name: {}: a dataset applies to metrics only",
                    o.field
                )));
            }
            order.push(ModelOrder {
                field,
                ascending: o.ascending,
                dataset_name: o.dataset_name.clone().filter(|d| !d.is_empty()),
                dataset_digest: o.dataset_digest.clone().filter(|d| !d.is_empty()),
            });
        }
        let limit = s.limit.clamp(1, MAX_MODEL_PAGE);
        let q = LoggedModelQuery {
            experiments: s.experiments.clone(),
            conditions,
            datasets: s
                .datasets
                .iter()
                .map(|(name, digest)| DatasetFilter {
                    name: name.clone(),
                    digest: digest.clone().filter(|d| !d.is_empty()),
                })
                .collect(),
            order,
            include_deleted: false,
            limit: limit + 1,
            offset: s.offset,
        };
        let mut models = self.catalog().search_logged_models(&q)?;
        let next = (models.len() > limit).then(|| s.offset + limit);
        models.truncate(limit);
        Ok((models, next))
    }

    pub(crate) fn run_model_links(&self, runs: &[RunId]) -> Result<Vec<RunModelLink>, Error> {
        Ok(self
            .catalog()
            .run_model_links(runs)?
            .into_iter()
            .map(|l| RunModelLink {
                run: l.run,
                model: l.model,
                role: role_name(l.role).to_owned(),
                step: l.step,
            })
            .collect())
    }

    pub(crate) fn model_artifact_upload(
        &self,
        id: &LoggedModelId,
        path: &str,
    ) -> Result<ModelArtifactUpload, Error> {
        self.model_record(id)?;
        let path = path.trim_matches('/');
        validate_artifact_path(path)?;
        Ok(ModelArtifactUpload {
            store: self.blob_store().clone(),
            model: id.clone(),
            path: path.to_owned(),
        })
    }

    pub(crate) fn bind_model_artifact(
        &mut self,
        stored: StoredModelArtifact,
    ) -> Result<ArtifactRef, Error> {
        let StoredModelArtifact {
            model,
            path,
            reference,
        } = stored;
        let r = reference.clone();
        self.edit_model(&model, |_| Ok(vec![LoggedModelEdit::Artifact(path, r)]))?;
        Ok(reference)
    }

    pub(crate) fn list_model_artifacts(
        &self,
        id: &LoggedModelId,
        dir: &str,
    ) -> Result<Vec<ArtifactEntry>, Error> {
        let m = self.model_record(id)?;
        list_bound(self.blob_store(), &m.artifacts, dir)
    }

    /// Every file under the model (directories expanded), sorted by path.
    fn model_files(&self, m: &LoggedModel) -> Result<Vec<ManifestEntry>, Error> {
        let mut out = Vec::new();
        for (path, r) in &m.artifacts {
            match r.kind {
                ArtifactKind::File => out.push(ManifestEntry {
                    path: path.clone(),
                    hash: r.hash,
                    size: r.size,
                }),
                ArtifactKind::Dir => {
                    for e in self.blob_store().manifest(&r.hash)?.entries {
                        out.push(ManifestEntry {
                            path: format!("{path}/{}", e.path),
                            hash: e.hash,
                            size: e.size,
                        });
                    }
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    pub(crate) fn open_model_artifact(
        &self,
        id: &LoggedModelId,
        path: &str,
    ) -> Result<ArtifactDownload, Error> {
        let m = self.model_record(id)?;
        let hash = file_in(self.blob_store(), &m.artifacts, path)?.ok_or_else(|| {
            Error::UnknownModelArtifact {
                model: id.to_string(),
                path: path.trim_matches('/').to_owned(),
            }
        })?;
        ArtifactDownload::open(self.blob_store(), &hash)
    }

    pub(crate) fn delete_model_artifact(
        &mut self,
        id: &LoggedModelId,
        path: &str,
    ) -> Result<(), Error> {
        let m = self.model_record(id)?;
        let path = path.trim_matches('/');
        let prefix = format!("{path}/");
        let doomed: Vec<LoggedModelEdit> = m
            .artifacts
            .keys()
            .filter(|k| path.is_empty() || k.as_str() == path || k.starts_with(&prefix))
            .map(|k| LoggedModelEdit::DeleteArtifact(k.clone()))
            .collect();
        if doomed.is_empty() {
            return Err(Error::UnknownModelArtifact {
                model: id.to_string(),
                path: path.to_owned(),
            });
        }
        self.edit_model(id, |_| Ok(doomed))?;
        Ok(())
    }

    /// The logged model `source` names (`models:/<id>`, or a path under the model's artifact
    /// location), the run that produced it and, as the version's content, the manifest of its
    /// files (stored as a directory blob). `None` when `source` names no logged model; an
    /// unknown or deleted model is an error naming it.
    pub(crate) fn model_source_content(
        &mut self,
        source: &str,
    ) -> Result<Option<ModelSource>, Error> {
        let Some(id) = model_in_source(source) else {
            if source.starts_with("models:/m-") {
                return Err(Error::Invalid(format!(
                    "Invalid model version source: {}: the model id must be 'm-' and 32 hex digits",
                    py_repr(source)
                )));
            }
            return Ok(None);
        };
        let m = self.live_model(&id)?;
        let files = self.model_files(&m)?;
        let content = if files.is_empty() {
            None
        } else {
            let manifest = Manifest::from_entries(files);
            Some(self.blob_store().put_bytes(&manifest.to_bytes())?.hash)
        };
        Ok(Some(ModelSource {
            model: id,
            run: m.source_run,
            content,
        }))
    }

    /// Notes on the logged model that a registered model version was made from it (MLflow's
    /// `mlflow.modelVersions` tag: a JSON list of `{name, version}`).
    pub(crate) fn note_model_version(
        &mut self,
        id: &LoggedModelId,
        name: &str,
        version: u32,
    ) -> Result<(), Error> {
        const TAG: &str = "mlflow.modelVersions";
        let entry = serde_json::json!({ "name": name, "version": version.to_string() });
        self.edit_model(id, |m| {
            let mut list: Vec<serde_json::Value> = m
                .tags
                .get(TAG)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default();
            if list.contains(&entry) {
                return Ok(Vec::new());
            }
            list.push(entry);
            Ok(vec![LoggedModelEdit::Tag(
                TAG.to_owned(),
                serde_json::Value::Array(list).to_string(),
            )])
        })?;
        Ok(())
    }
}

impl Workspace {
    /// Creates a logged model, `PENDING` until finalized; its files go under its artifact
    /// location.
    pub fn create_logged_model(&self, new: NewLoggedModel) -> Result<LoggedModel, Error> {
        self.write("create_logged_model", |s| s.create_logged_model(new))
    }

    /// A logged model; a deleted one only when `allow_deleted`.
    pub fn logged_model(
        &self,
        id: &LoggedModelId,
        allow_deleted: bool,
    ) -> Result<LoggedModel, Error> {
        self.read("logged_model", |s| {
            if allow_deleted {
                s.model_record(id)
            } else {
                s.live_model(id)
            }
        })
    }

    /// A logged model with its files and its experiment's name, for a page (by id).
    pub fn logged_model_view(&self, id: &str) -> Result<LoggedModelView, Error> {
        let id: LoggedModelId = id.parse()?;
        self.read("logged_model_view", |s| {
            let model = s.model_record(&id)?;
            let files = s
                .model_files(&model)?
                .into_iter()
                .map(|e| ArtifactEntry {
                    path: e.path,
                    is_dir: false,
                    size: Some(e.size),
                })
                .collect();
            let experiment_name = s.experiment_by_id(model.experiment)?.name;
            Ok(LoggedModelView {
                model,
                experiment_name,
                files,
            })
        })
    }

    /// Sets the model's status (`READY` once its files are uploaded, `FAILED` when they could
    /// not be).
    pub fn finalize_logged_model(
        &self,
        id: &LoggedModelId,
        status: LoggedModelStatus,
        message: Option<String>,
    ) -> Result<LoggedModel, Error> {
        self.write("finalize_logged_model", |s| {
            s.finalize_logged_model(id, status, message)
        })
    }

    /// Deletes a logged model: a tombstone (who, when) that hides it from gets and searches.
    pub fn delete_logged_model(&self, id: &LoggedModelId) -> Result<(), Error> {
        self.write("delete_logged_model", |s| s.delete_logged_model(id))
    }

    pub fn set_logged_model_tags(
        &self,
        id: &LoggedModelId,
        tags: &[(String, String)],
    ) -> Result<(), Error> {
        self.write("set_logged_model_tags", |s| {
            s.set_logged_model_tags(id, tags)
        })
    }

    /// Removes a tag; one the model does not have is an error naming it.
    pub fn delete_logged_model_tag(&self, id: &LoggedModelId, key: &str) -> Result<(), Error> {
        self.write("delete_logged_model_tag", |s| {
            s.delete_logged_model_tag(id, key)
        })
    }

    /// Logs params of a model; they never change once logged.
    pub fn log_logged_model_params(
        &self,
        id: &LoggedModelId,
        params: &[(String, String)],
    ) -> Result<(), Error> {
        self.write("log_logged_model_params", |s| {
            s.log_logged_model_params(id, params)
        })
    }

    /// Records metric values `run` measured logged models with (the run's own series are
    /// logged with `log_batch`).
    pub fn log_model_metrics(&self, run: RunId, metrics: &[ModelMetricValue]) -> Result<(), Error> {
        self.write("log_model_metrics", |s| s.log_model_metrics(run, metrics))
    }

    /// Records that `run` produced these models, each at a step.
    pub fn log_model_outputs(
        &self,
        run: RunId,
        models: &[(LoggedModelId, i64)],
    ) -> Result<(), Error> {
        self.write("log_model_outputs", |s| s.log_model_outputs(run, models))
    }

    /// Records that `run` took these models as inputs.
    pub fn log_model_inputs(&self, run: RunId, models: &[LoggedModelId]) -> Result<(), Error> {
        self.write("log_model_inputs", |s| s.log_model_inputs(run, models))
    }

    /// One page of the logged models a search matches, and the offset of the next page.
    pub fn search_logged_models(
        &self,
        search: &LoggedModelSearch,
    ) -> Result<(Vec<LoggedModel>, Option<usize>), Error> {
        self.read("search_logged_models", |s| s.search_logged_models(search))
    }

    /// The logged models each of `runs` produced or took as input.
    pub fn run_model_links(&self, runs: &[RunId]) -> Result<Vec<RunModelLink>, Error> {
        self.read("run_model_links", |s| s.run_model_links(runs))
    }

    /// A run's logged models with their links, for its page (the run by id or prefix).
    pub fn run_logged_models(&self, run: &str) -> Result<Vec<RunModel>, Error> {
        let id = self.resolve_run(run)?;
        self.read("run_logged_models", |s| {
            s.run_model_links(&[id])?
                .into_iter()
                .map(|l| {
                    Ok(RunModel {
                        model: s.model_record(&l.model)?,
                        role: l.role,
                        step: l.step,
                    })
                })
                .collect()
        })
    }

    /// Accepts an upload to a model's artifact `path` (the model must exist, the path be
    /// valid); store it, then [`Workspace::bind_model_artifact`].
    pub fn model_artifact_upload(
        &self,
        id: &LoggedModelId,
        path: &str,
    ) -> Result<ModelArtifactUpload, Error> {
        self.read("model_artifact_upload", |s| {
            s.model_artifact_upload(id, path)
        })
    }

    pub fn bind_model_artifact(&self, stored: StoredModelArtifact) -> Result<ArtifactRef, Error> {
        self.write("bind_model_artifact", |s| s.bind_model_artifact(stored))
    }

    /// The files and directories directly under `dir` ("" for the top) of a model.
    pub fn list_model_artifacts(
        &self,
        id: &LoggedModelId,
        dir: &str,
    ) -> Result<Vec<ArtifactEntry>, Error> {
        self.read("list_model_artifacts", |s| s.list_model_artifacts(id, dir))
    }

    /// Opens a model's file for streaming, verified as it is read.
    pub fn open_model_artifact(
        &self,
        id: &LoggedModelId,
        path: &str,
    ) -> Result<ArtifactDownload, Error> {
        self.read("open_model_artifact", |s| s.open_model_artifact(id, path))
    }

    /// Unbinds a path (a file, or everything under a directory) from a model.
    pub fn delete_model_artifact(&self, id: &LoggedModelId, path: &str) -> Result<(), Error> {
        self.write("delete_model_artifact", |s| {
            s.delete_model_artifact(id, path)
        })
    }

    /// The logged model a model version's `source` names, with the run that produced it and
    /// the content hash of its files; `None` when the source names none. What
    /// `create_model_version` binds a version made from `models:/<model_id>` to.
    pub fn model_source_content(&self, source: &str) -> Result<Option<ModelSource>, Error> {
        self.write("model_source_content", |s| s.model_source_content(source))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_name_their_model() {
        let id = LoggedModelId::new();
        assert_eq!(model_in_source(&format!("models:/{id}")), Some(id.clone()));
        assert_eq!(model_in_source(&format!("models:/{id}/")), Some(id.clone()));
        assert_eq!(
            model_in_source(&format!("mlflow-artifacts:/0/models/{id}/artifacts")),
            Some(id.clone())
        );
        assert_eq!(
            model_in_source(&format!(
                "mlflow-artifacts:/0/models/{id}/artifacts/MLmodel"
            )),
            Some(id)
        );
        assert_eq!(model_in_source("models:/my-model/3"), None);
        assert_eq!(model_in_source("runs:/abc/model"), None);
        assert_eq!(
            model_in_source("mlflow-artifacts:/0/models/x/artifacts"),
            None
        );
    }

    #[test]
    fn default_names_are_readable() {
        let n = default_name(&LoggedModelId::new());
        assert_eq!(n.split('-').count(), 3, "{n}");
        validate_logged_model_name(&n).unwrap();
    }
}
