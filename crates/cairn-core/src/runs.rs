//! Intent-level operations on runs, each holding its rules so no front end has to: a batch of
//! params, metrics and tags validated as a whole; the status lifecycle; renaming; the system
//! tags (`mlflow.*`) that carry lineage; dataset inputs named by role; a listing page.

use std::collections::BTreeMap;

use cairn_catalog::{RunEdit, RunFilter, RunOrder};
use cairn_metrics::Point;
use cairn_model::{
    CodeVersion, DatasetSnapshot, ExperimentId, ParentKind, Run, RunId, RunStatus, validate_key,
};
use serde::{Deserialize, Serialize};

use crate::stores::now_ms;
use crate::{Error, Stores};

/// MLflow's limits on one `log_batch`, which Cairn keeps for every client.
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS: usize = 100;
pub const MAX_BATCH_TAGS: usize = 100;
pub const MAX_BATCH_ENTITIES: usize = 1000;
/// Longest param and tag values, in characters (MLflow's).
pub const MAX_PARAM_VALUE: usize = 6000;
pub const MAX_TAG_VALUE: usize = 8000;
/// Longest run name, in characters.
pub const MAX_RUN_NAME: usize = 500;

/// What `cairn run log` records at once (see `Workspace::log_run`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLog {
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    pub notes: Option<String>,
    /// Whole curves: (metric key, its points).
    pub series: Vec<(String, Vec<crate::MetricPoint>)>,
}

/// One metric value of a batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricValue {
    pub key: String,
    pub value: f64,
    pub step: i64,
    /// When it was measured; the time of logging when absent.
    pub ts_ms: Option<i64>,
    /// The dataset it was measured on (MLflow 3's `dataset_name`, `dataset_digest`): such a
    /// metric also enters the run's evaluation on that dataset.
    pub dataset: Option<MetricDataset>,
}

/// The dataset a metric was measured on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricDataset {
    pub name: String,
    pub digest: String,
}

/// What one [`crate::Workspace::log_batch`] logs to a run: MLflow's `runs/log-batch`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogBatch {
    pub params: Vec<(String, String)>,
    pub metrics: Vec<MetricValue>,
    pub tags: Vec<(String, String)>,
}

impl LogBatch {
    /// Everything that can be refused without looking at the run: MLflow's limits, keys,
    /// value lengths, a param given twice with two values. The error names the offender.
    fn check(&self) -> Result<(), Error> {
        let limit = |what: &str, n: usize, max: usize| {
            if n > max {
                Err(Error::Invalid(format!(
                    "a batch can hold at most {max} {what}; this one has {n}"
                )))
            } else {
                Ok(())
            }
        };
        limit("metrics", self.metrics.len(), MAX_BATCH_METRICS)?;
        limit("params", self.params.len(), MAX_BATCH_PARAMS)?;
        limit("tags", self.tags.len(), MAX_BATCH_TAGS)?;
        limit(
            "metrics, params and tags in all",
            self.metrics.len() + self.params.len() + self.tags.len(),
            MAX_BATCH_ENTITIES,
        )?;
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for (k, v) in &self.params {
            check_param(k, v)?;
            if let Some(other) = seen.insert(k, v)
                && other != v
            {
                return Err(Error::Invalid(format!(
                    "param '{k}' is given twice in one batch, as '{other}' and as '{v}'"
                )));
            }
        }
        for (k, v) in &self.tags {
            check_tag(k, v)?;
        }
        for m in &self.metrics {
            validate_key("metric key", &m.key)?;
        }
        Ok(())
    }
}

pub(crate) fn check_param(key: &str, value: &str) -> Result<(), Error> {
    validate_key("param key", key)?;
    let n = value.chars().count();
    if n > MAX_PARAM_VALUE {
        return Err(Error::Invalid(format!(
            "param '{key}' has a value of {n} characters; the limit is {MAX_PARAM_VALUE}"
        )));
    }
    Ok(())
}

pub(crate) fn check_tag(key: &str, value: &str) -> Result<(), Error> {
    validate_key("tag key", key)?;
    let n = value.chars().count();
    if n > MAX_TAG_VALUE {
        return Err(Error::Invalid(format!(
            "tag '{key}' has a value of {n} characters; the limit is {MAX_TAG_VALUE}"
        )));
    }
    Ok(())
}

fn check_run_name(name: &str) -> Result<(), Error> {
    if name.trim().is_empty() {
        return Err(Error::Invalid("a run name must not be empty".into()));
    }
    let n = name.chars().count();
    if n > MAX_RUN_NAME || name.chars().any(char::is_control) {
        return Err(Error::Invalid(format!(
            "invalid run name '{name}': must be 1-{MAX_RUN_NAME} printable characters"
        )));
    }
    Ok(())
}

/// The tag that mirrors a run's name, as MLflow clients read and write it.
pub const RUN_NAME_TAG: &str = "mlflow.runName";

/// The tag MLflow clients read and write a run's notes as. It is not stored among the tags:
/// the notes are (as text that merges), and MLflow reads them back under this tag.
pub const NOTE_TAG: &str = "mlflow.note.content";

/// `tags` as tag edits, less [`NOTE_TAG`] (which edits the notes).
fn tag_edits(tags: &[(String, String)]) -> impl Iterator<Item = RunEdit> + '_ {
    tags.iter()
        .filter(|(k, _)| k != NOTE_TAG)
        .map(|(k, v)| RunEdit::Tag(k.clone(), v.clone()))
}

/// What the system tags among `tags` (MLflow's `mlflow.*`, which any client may send) say
/// about the run, as edits: its name (mirrored by [`RUN_NAME_TAG`]), notes, owner (only when it
/// has none), parent, and the code version (git commit, branch, repository).
pub(crate) fn system_tag_edits(run: &Run, tags: &[(String, String)]) -> Vec<RunEdit> {
    let mut edits = Vec::new();
    let mut code = run.lineage.code.clone();
    for (k, v) in tags {
        match k.as_str() {
            RUN_NAME_TAG if !v.trim().is_empty() && check_run_name(v).is_ok() => {
                edits.push(RunEdit::Name(v.clone()));
            }
            NOTE_TAG => edits.push(RunEdit::Notes(v.clone())),
            "mlflow.user" if run.owner.is_none() && !v.is_empty() => {
                edits.push(RunEdit::Owner(Some(v.clone())));
            }
            "mlflow.parentRunId" => {
                if let Ok(p) = v.parse::<RunId>()
                    && p != run.id
                {
                    edits.push(RunEdit::Parent(Some(p), Some(ParentKind::Child)));
                }
            }
            "mlflow.source.git.commit" => {
                code.get_or_insert_with(CodeVersion::default).commit = Some(v.clone());
            }
            "mlflow.source.git.branch" => {
                code.get_or_insert_with(CodeVersion::default).branch = Some(v.clone());
            }
            "mlflow.source.git.repoURL" => {
                code.get_or_insert_with(CodeVersion::default).repo = Some(v.clone());
            }
            _ => {}
        }
    }
    if code != run.lineage.code {
        edits.push(RunEdit::Code(code));
    }
    edits
}

/// What the system tags among a new run's tags say about it, applied before its schema is
/// checked (a client that sends the git commit as a tag at creation meets `code.commit`):
/// fields the caller set are kept.
pub(crate) fn apply_system_tags(new: &mut crate::NewRun) {
    let tags: Vec<(String, String)> = new
        .tags
        .iter()
        .filter(|(k, _)| k.starts_with("mlflow."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if tags.is_empty() {
        return;
    }
    new.tags.remove(NOTE_TAG);
    let mut probe = Run::new(RunId::new(), ExperimentId::new(), "", 0);
    probe.owner = new.owner.clone();
    probe.lineage.code = new.lineage.code.clone();
    for e in system_tag_edits(&probe, &tags) {
        match e {
            RunEdit::Name(n) if new.name.is_none() => new.name = Some(n),
            RunEdit::Owner(o) if new.owner.is_none() => new.owner = o,
            RunEdit::Notes(n) if new.notes.is_empty() => new.notes = n,
            RunEdit::Code(c) => new.lineage.code = c,
            RunEdit::Parent(Some(p), Some(k)) if new.parent.is_none() => new.parent = Some((p, k)),
            _ => {}
        }
    }
}

/// A run's listing, one page: the catalog's projection, fast at any size.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    /// An experiment name or id.
    pub experiment: Option<String>,
    /// running, finished, failed or killed.
    pub status: Option<String>,
    pub owner: Option<String>,
    /// `created` (newest first unless `ASC`) or `metrics.KEY [ASC|DESC]` (runs without it last);
    /// newest first when absent. Other orders are the search's.
    pub order: Option<String>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

/// One line of a run listing.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunListItem {
    pub id: RunId,
    pub experiment: ExperimentId,
    pub experiment_name: String,
    pub name: String,
    pub owner: Option<String>,
    pub status: RunStatus,
    pub start_ms: i64,
    pub end_ms: Option<i64>,
    /// Not compliant with its schema (see `compliance`).
    pub incomplete: bool,
    pub compliance: cairn_model::ComplianceState,
    /// The latest value of each summary metric.
    pub metrics: BTreeMap<String, cairn_model::Num>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunsPage {
    /// How many runs match in all.
    pub total: u64,
    pub runs: Vec<RunListItem>,
}

/// The largest page of a listing.
pub const MAX_RUNS_PAGE: u64 = 10_000;

fn runs_order(text: Option<&str>) -> Result<RunOrder, Error> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(RunOrder::Newest);
    };
    let keys = cairn_search::parse_sort(text).map_err(|source| Error::Query {
        what: "order",
        source,
    })?;
    use cairn_search::query::{Attribute, Field};
    match keys.as_slice() {
        [k] => match &k.field {
            Field::Attribute(Attribute::Created) if k.descending => Ok(RunOrder::Newest),
            Field::Attribute(Attribute::Created) => Ok(RunOrder::Oldest),
            Field::Metric(key) => Ok(RunOrder::Metric {
                key: key.clone(),
                descending: k.descending,
            }),
            other => Err(Error::Invalid(format!(
                "runs are listed by created or metrics.KEY, not by {other}; search orders by any field"
            ))),
        },
        _ => Err(Error::Invalid(format!(
            "runs are listed by one key (created or metrics.KEY), not '{text}'"
        ))),
    }
}

impl Stores {
    /// Logs params, metrics and tags to a run, validated as a whole before anything is stored:
    /// a batch with one bad key, an over-long value, a param that would change, or a run that
    /// is deleted stores nothing. Params and tags (with the lineage their system tags carry)
    /// then go in one catalog transaction, the metrics in one metric-store transaction after
    /// it. (Two databases: a crash between the two keeps params and tags without the metrics;
    /// a client that retries the unacknowledged batch loses nothing, as params and tags are
    /// idempotent.)
    pub(crate) fn log_batch(&mut self, id: RunId, batch: &LogBatch) -> Result<(), Error> {
        batch.check()?;
        let now = now_ms();
        let mut series: BTreeMap<&str, Vec<Point>> = BTreeMap::new();
        for m in &batch.metrics {
            series.entry(&m.key).or_default().push(Point {
                step: m.step,
                ts_ms: m.ts_ms.unwrap_or(now),
                value: m.value,
            });
        }
        let series: Vec<(&str, Vec<Point>)> = series.into_iter().collect();
        self.log_checked(
            id,
            &batch.params,
            &batch.tags,
            None,
            &series,
            &batch.metrics,
        )
    }

    /// Logs what `cairn run log` gives at once — params, tags, notes and whole metric curves (no
    /// limit on points) — validated as a whole before anything is stored, as a batch is.
    pub(crate) fn log_run(&mut self, id: RunId, log: &RunLog) -> Result<(), Error> {
        for (k, v) in &log.params {
            check_param(k, v)?;
        }
        for (k, v) in &log.tags {
            check_tag(k, v)?;
        }
        for (k, _) in &log.series {
            validate_key("metric key", k)?;
        }
        let series: Vec<(&str, Vec<Point>)> = log
            .series
            .iter()
            .map(|(k, pts)| (k.as_str(), pts.iter().map(|p| p.to_point()).collect()))
            .collect();
        self.log_checked(
            id,
            &log.params,
            &log.tags,
            log.notes.as_deref(),
            &series,
            &[],
        )
    }

    /// Stores what was checked: params (refused whole when one would change), tags with the
    /// lineage their system tags carry, notes, and the evaluation rows of metrics logged
    /// against a dataset (`measured`) in one catalog transaction; then the metrics.
    fn log_checked(
        &mut self,
        id: RunId,
        params: &[(String, String)],
        tags: &[(String, String)],
        notes: Option<&str>,
        series: &[(&str, Vec<Point>)],
        measured: &[MetricValue],
    ) -> Result<(), Error> {
        let run = self.run_record(id)?;
        if run.deleted {
            return Err(Error::Conflict(format!(
                "run {id} is deleted: restore it before logging to it"
            )));
        }
        let mut edits = Vec::new();
        for (k, v) in params {
            match run.params.get(k) {
                Some(old) if old == v => {}
                Some(old) => {
                    return Err(Error::ParamChanged {
                        run: id.to_string(),
                        key: k.clone(),
                        old: old.clone(),
                        new: v.clone(),
                    });
                }
                None => edits.push(RunEdit::Param(k.clone(), v.clone())),
            }
        }
        edits.extend(tag_edits(tags));
        edits.extend(system_tag_edits(&run, tags));
        if let Some(n) = notes {
            edits.push(RunEdit::Notes(n.to_owned()));
        }
        edits.extend(self.mlflow_eval_edits(&run, measured));
        if !edits.is_empty() {
            self.catalog_mut().update_run(id, &edits)?;
        }
        if !series.is_empty() {
            let batches: Vec<(&str, &[Point])> =
                series.iter().map(|(k, v)| (*k, v.as_slice())).collect();
            self.log_metrics(id, &batches)?;
        }
        Ok(())
    }

    /// Sets tags, with what their system tags say about the run, in one change.
    pub(crate) fn set_tags(&mut self, id: RunId, tags: &[(String, String)]) -> Result<(), Error> {
        for (k, v) in tags {
            check_tag(k, v)?;
        }
        if tags.is_empty() {
            return Ok(());
        }
        let run = self.run_record(id)?;
        let mut edits: Vec<RunEdit> = tag_edits(tags).collect();
        edits.extend(system_tag_edits(&run, tags));
        self.catalog_mut().update_run(id, &edits)?;
        Ok(())
    }

    /// Renames a run (and the tag that mirrors its name for MLflow clients).
    pub(crate) fn rename_run(&mut self, id: RunId, name: &str) -> Result<Run, Error> {
        check_run_name(name)?;
        Ok(self.catalog_mut().update_run(
            id,
            &[
                RunEdit::Name(name.to_owned()),
                RunEdit::Tag(RUN_NAME_TAG.into(), name.to_owned()),
            ],
        )?)
    }

    /// Replaces the run's notes.
    pub(crate) fn set_notes(&mut self, id: RunId, notes: &str) -> Result<Run, Error> {
        Ok(self
            .catalog_mut()
            .update_run(id, &[RunEdit::Notes(notes.to_owned())])?)
    }

    /// Moves a run through its lifecycle. A running run that ends (finished, failed, killed)
    /// has its series sealed, its final summaries recorded, its end time set and its schema
    /// checked again (what was logged after the start counts); an ended run may take another
    /// final status, or resume (running again, as MLflow's `start_run(run_id=…)` does), which
    /// clears its end time. A deleted run takes no status.
    pub(crate) fn set_status(
        &mut self,
        id: RunId,
        status: RunStatus,
        end_ms: Option<i64>,
    ) -> Result<Run, Error> {
        let run = self.run_record(id)?;
        if run.deleted {
            return Err(Error::Conflict(format!(
                "run {id} is deleted: restore it before changing its status"
            )));
        }
        if status.is_final() {
            return self.end_run(id, status, end_ms);
        }
        if run.status == status {
            return Ok(run);
        }
        Ok(self.catalog_mut().update_run(
            id,
            &[RunEdit::Status {
                status,
                end_ms: None,
            }],
        )?)
    }

    /// Records datasets a run read, each under its role: its context (`training`, `eval`), or
    /// its name when it has none. A second, different dataset in a role already taken is kept
    /// as `role:name`.
    pub(crate) fn add_dataset_inputs(
        &mut self,
        id: RunId,
        inputs: Vec<DatasetSnapshot>,
    ) -> Result<(), Error> {
        let mut datasets = self.run_record(id)?.lineage.datasets;
        let mut edits = Vec::new();
        for snap in inputs {
            let name = snap
                .name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .ok_or_else(|| Error::Invalid("a dataset input needs a name".into()))?;
            let base = snap
                .context
                .clone()
                .filter(|c| !c.trim().is_empty())
                .unwrap_or_else(|| name.clone());
            let key = match datasets.get(&base) {
                Some(existing) if existing.name.as_deref() != Some(name.as_str()) => {
                    format!("{base}:{name}")
                }
                _ => base,
            };
            validate_key("dataset role", &key)?;
            datasets.insert(key.clone(), snap.clone());
            edits.push(RunEdit::Dataset(key, snap));
        }
        if !edits.is_empty() {
            // Where the run's data came from, signed before it is recorded (MLflow clients send
            // datasets after creating the run, so `run.created` does not hold them).
            let logged: Vec<(&str, &DatasetSnapshot)> = edits
                .iter()
                .filter_map(|e| match e {
                    RunEdit::Dataset(role, snap) => Some((role.as_str(), snap)),
                    _ => None,
                })
                .collect();
            // 32 to an event keeps each well inside an event's bounds.
            let drafts = logged
                .chunks(32)
                .map(|some| {
                    crate::audit::datasets_logged(
                        self.draft(cairn_audit::kind::DATASETS_LOGGED),
                        id,
                        some,
                    )
                })
                .collect();
            self.record_events(drafts)?;
            self.catalog_mut().update_run(id, &edits)?;
        }
        Ok(())
    }

    /// A page of the run listing: by experiment, status and owner, newest first or by a
    /// metric, from the catalog's projection (a count index keeps `total` cheap at any size).
    pub(crate) fn runs_page(&mut self, q: &RunsQuery) -> Result<RunsPage, Error> {
        let experiment = match q.experiment.as_deref().filter(|e| !e.is_empty()) {
            Some(e) => Some(self.experiment(e)?.id),
            None => None,
        };
        let status = q
            .status
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(str::parse::<RunStatus>)
            .transpose()?;
        let filter = RunFilter {
            experiment,
            status,
            owner: q.owner.clone().filter(|o| !o.is_empty()),
            order: runs_order(q.order.as_deref())?,
            limit: Some(q.limit.unwrap_or(100).min(MAX_RUNS_PAGE)),
            offset: q.offset.unwrap_or(0),
            ..Default::default()
        };
        let total = self.catalog().count_runs(&RunFilter {
            limit: None,
            offset: 0,
            ..filter.clone()
        })?;
        let runs = self
            .catalog()
            .list_runs(&filter)?
            .into_iter()
            .map(|r| RunListItem {
                id: r.id,
                experiment: r.experiment,
                experiment_name: r.experiment_name,
                name: r.name,
                owner: r.owner,
                status: r.status,
                start_ms: r.start_ms,
                end_ms: r.end_ms,
                incomplete: r.incomplete,
                compliance: r.compliance,
                metrics: r
                    .metrics
                    .into_iter()
                    .map(|(k, v)| (k, cairn_model::Num(v)))
                    .collect(),
            })
            .collect();
        Ok(RunsPage { total, runs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_over_a_limit_or_with_a_bad_entry_names_it() {
        let metric = |k: &str| MetricValue {
            key: k.into(),
            value: 1.0,
            ..Default::default()
        };
        let cases = [
            (
                LogBatch {
                    metrics: (0..1001).map(|i| metric(&format!("m{i}"))).collect(),
                    ..Default::default()
                },
                "at most 1000 metrics; this one has 1001",
            ),
            (
                LogBatch {
                    params: (0..101).map(|i| (format!("p{i}"), "1".into())).collect(),
                    ..Default::default()
                },
                "at most 100 params",
            ),
            (
                LogBatch {
                    params: vec![("lr".into(), "0.1".into()), ("lr".into(), "0.2".into())],
                    ..Default::default()
                },
                "param 'lr' is given twice in one batch, as '0.1' and as '0.2'",
            ),
            (
                LogBatch {
                    tags: vec![("t".into(), "x".repeat(MAX_TAG_VALUE + 1))],
                    ..Default::default()
                },
                "tag 't' has a value of 8001 characters; the limit is 8000",
            ),
            (
                LogBatch {
                    metrics: vec![metric("ok"), metric("")],
                    ..Default::default()
                },
                "invalid metric key ''",
            ),
        ];
        for (batch, expected) in cases {
            let err = batch.check().unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn listing_orders_use_the_search_grammar() {
        assert_eq!(runs_order(None).unwrap(), RunOrder::Newest);
        assert_eq!(runs_order(Some("created ASC")).unwrap(), RunOrder::Oldest);
        assert_eq!(
            runs_order(Some("metrics.acc DESC")).unwrap(),
            RunOrder::Metric {
                key: "acc".into(),
                descending: true
            }
        );
        assert_eq!(
            runs_order(Some("metrics.loss")).unwrap(),
            RunOrder::Metric {
                key: "loss".into(),
                descending: false
            }
        );
        let err = runs_order(Some("params.lr")).unwrap_err().to_string();
        assert!(err.contains("not by params.lr"), "{err}");
        assert!(runs_order(Some("metrics.acc DES")).is_err());
    }
}
