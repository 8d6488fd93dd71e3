//! How a run is laid out in a shard doc, and the edits a run can take.
//!
//! A run is a map at the shard's root under `run/<id>`, created whole with one
//! `batch_create_object`. Scalars (name, owner, status, times) and the entries of the
//! `params`, `tags`, `metrics`, `datasets`, `evaluations` and `artifacts` maps are separate
//! automerge keys, so concurrent edits of different fields merge and concurrent edits of the
//! same field are kept as a conflict. Structured values (a lineage section, a metric summary, an
//! artifact reference) are one JSON string each: they change as a unit.
//!
//! `notes` is an automerge Text, created with the run; an edit applies the difference between
//! the old and the new notes (a splice per changed stretch), so two people editing one run's
//! notes offline both keep their words after sync. A run written before notes were text holds
//! them as a string: it reads as is, and its first notes edit replaces the string with a Text.
//! Two devices converting the same run concurrently each create a Text: automerge keeps both
//! under `notes`, shows the same one on every peer and the run reads it, with a `notes` conflict
//! listing both texts (nothing is lost); later edits go to the shown one.
//!
//! An evaluation is several keys of the `evaluations` map, so two writers adding slices or
//! metrics to one evaluation merge: `<benchmark>` holds its header (dataset digest, reports, who
//! and when), `<benchmark>\u{1f}` its overall metrics, and `<benchmark>\u{1f}<slice>` one slice's
//! metrics (a benchmark name holds no control character, nor does a slice). A workspace written
//! before slices existed has one key per evaluation, `{metrics, report}`: it reads as the header
//! with its overall metrics.
//!
//! Every map a run will ever need is created with the run, so two writers never race to create
//! the same nested object (which automerge would resolve by hiding one of them).

use std::collections::{BTreeMap, HashMap};

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, ScalarValue, TextEncoding, Value, hydrate};
use cairn_model::{
    ArtifactRef, CodeVersion, Conflict, DatasetSnapshot, Evaluation, ExperimentId,
    FeatureSetVersion, InfraProfile, MetricSummary, Num, ParentKind, Run, RunId, RunStatus,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Error;

/// One change to a run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RunEdit {
    Name(String),
    Owner(Option<String>),
    Status {
        status: RunStatus,
        end_ms: Option<i64>,
    },
    Notes(String),
    Param(String, String),
    Tag(String, String),
    DeleteTag(String),
    Metric(String, MetricSummary),
    Dataset(String, DatasetSnapshot),
    FeatureSet(Option<FeatureSetVersion>),
    Code(Option<CodeVersion>),
    Infra(Option<InfraProfile>),
    /// Records an evaluation whole, replacing any of that benchmark (its slices included).
    Evaluation(String, Evaluation),
    /// Adds metrics to one row of an evaluation (`slice` None: the overall row), keeping what
    /// the row holds; sets the dataset digest when given. What MLflow clients log piecemeal.
    EvalMetrics {
        benchmark: String,
        slice: Option<String>,
        metrics: Vec<(String, f64)>,
        dataset: Option<String>,
    },
    /// Adds a report artifact path to an evaluation's header.
    EvalReport {
        benchmark: String,
        path: String,
    },
    Artifact(String, ArtifactRef),
    DeleteArtifact(String),
    Deleted(bool),
    Parent(Option<RunId>, Option<ParentKind>),
}

pub(crate) fn run_key(id: RunId) -> String {
    format!("run/{id}")
}

pub(crate) const RUN_PREFIX: &str = "run/";

const MAPS: [&str; 6] = [
    "params",
    "tags",
    "metrics",
    "datasets",
    "evaluations",
    "artifacts",
];

pub(crate) fn json<T: Serialize>(v: &T) -> String {
    // Serialising plain data structs to a String cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

pub(crate) fn scalar(v: impl Into<ScalarValue>) -> hydrate::Value {
    hydrate::Value::Scalar(v.into())
}

/// The whole run as one hydrate value, for `batch_create_object`.
pub(crate) fn run_value(run: &Run) -> hydrate::Value {
    let mut m: HashMap<&str, hydrate::Value> = HashMap::new();
    m.insert("experiment", scalar(run.experiment.to_string()));
    m.insert("name", scalar(run.name.as_str()));
    if let Some(o) = &run.owner {
        m.insert("owner", scalar(o.as_str()));
    }
    m.insert("status", scalar(run.status.as_str()));
    m.insert("start_ms", scalar(run.start_ms));
    if let Some(e) = run.end_ms {
        m.insert("end_ms", scalar(e));
    }
    if let Some(p) = run.parent {
        m.insert("parent", scalar(p.to_string()));
    }
    if let Some(k) = run.parent_kind {
        m.insert("parent_kind", scalar(k.as_str()));
    }
    m.insert(
        "notes",
        hydrate::Value::text(TextEncoding::platform_default(), &run.notes),
    );
    m.insert("deleted", scalar(run.deleted));
    if let Some(c) = &run.lineage.code {
        m.insert("code", scalar(json(c)));
    }
    if let Some(i) = &run.lineage.infra {
        m.insert("infra", scalar(json(i)));
    }
    if let Some(f) = &run.lineage.feature_set {
        m.insert("feature_set", scalar(json(f)));
    }
    let map_of = |entries: Vec<(String, String)>| {
        let inner: HashMap<String, hydrate::Value> =
            entries.into_iter().map(|(k, v)| (k, scalar(v))).collect();
        hydrate::Value::Map(inner.into())
    };
    m.insert(
        "params",
        map_of(
            run.params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    );
    m.insert(
        "tags",
        map_of(
            run.tags
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
    );
    m.insert(
        "metrics",
        map_of(
            run.metrics
                .iter()
                .map(|(k, v)| (k.clone(), json(v)))
                .collect(),
        ),
    );
    m.insert(
        "datasets",
        map_of(
            run.lineage
                .datasets
                .iter()
                .map(|(k, v)| (k.clone(), json(v)))
                .collect(),
        ),
    );
    m.insert(
        "evaluations",
        map_of(
            run.lineage
                .evaluations
                .iter()
                .flat_map(|(k, v)| eval_entries(k, v))
                .collect(),
        ),
    );
    m.insert(
        "artifacts",
        map_of(
            run.artifacts
                .iter()
                .map(|(k, v)| (k.clone(), json(v)))
                .collect(),
        ),
    );
    m.into()
}

/// Applies one edit to the run object `obj` inside an open transaction.
pub(crate) fn apply_edit(
    doc: &mut AutoCommit,
    obj: &automerge::ObjId,
    edit: &RunEdit,
    doc_name: &str,
) -> Result<(), Error> {
    let err = Error::automerge(doc_name);
    let in_map = |doc: &mut AutoCommit, map: &str| -> Result<automerge::ObjId, Error> {
        match doc.get(obj, map).map_err(Error::automerge(doc_name))? {
            Some((Value::Object(ObjType::Map), id)) => Ok(id),
            // Only a doc written by something other than Cairn lacks these maps.
            _ => doc
                .put_object(obj, map, ObjType::Map)
                .map_err(Error::automerge(doc_name)),
        }
    };
    match edit {
        RunEdit::Name(n) => doc.put(obj, "name", n.as_str()),
        RunEdit::Owner(Some(o)) => doc.put(obj, "owner", o.as_str()),
        RunEdit::Owner(None) => doc.delete(obj, "owner"),
        RunEdit::Status { status, end_ms } => {
            doc.put(obj, "status", status.as_str())
                .map_err(Error::automerge(doc_name))?;
            match end_ms {
                Some(e) => doc.put(obj, "end_ms", *e),
                None => doc.delete(obj, "end_ms"),
            }
        }
        RunEdit::Notes(n) => {
            let text = match doc.get(obj, "notes").map_err(Error::automerge(doc_name))? {
                Some((Value::Object(ObjType::Text), id)) => id,
                // Notes written before they were text (a string), or by something other than
                // Cairn: the first edit makes them text.
                _ => doc
                    .put_object(obj, "notes", ObjType::Text)
                    .map_err(Error::automerge(doc_name))?,
            };
            doc.update_text(&text, n.as_str())
        }
        RunEdit::Param(k, v) => {
            let m = in_map(doc, "params")?;
            doc.put(&m, k.as_str(), v.as_str())
        }
        RunEdit::Tag(k, v) => {
            let m = in_map(doc, "tags")?;
            doc.put(&m, k.as_str(), v.as_str())
        }
        RunEdit::DeleteTag(k) => {
            let m = in_map(doc, "tags")?;
            doc.delete(&m, k.as_str())
        }
        RunEdit::Metric(k, s) => {
            let m = in_map(doc, "metrics")?;
            doc.put(&m, k.as_str(), json(s))
        }
        RunEdit::Dataset(k, d) => {
            let m = in_map(doc, "datasets")?;
            doc.put(&m, k.as_str(), json(d))
        }
        RunEdit::Evaluation(k, e) => {
            let m = in_map(doc, "evaluations")?;
            let prefix = format!("{k}{EVAL_SEP}");
            let stale: Vec<String> = doc
                .keys(&m)
                .filter(|key| key.starts_with(&prefix))
                .collect();
            for key in stale {
                doc.delete(&m, key.as_str())
                    .map_err(Error::automerge(doc_name))?;
            }
            for (key, value) in eval_entries(k, e) {
                doc.put(&m, key.as_str(), value)
                    .map_err(Error::automerge(doc_name))?;
            }
            Ok(())
        }
        RunEdit::EvalMetrics {
            benchmark,
            slice,
            metrics,
            dataset,
        } => {
            let m = in_map(doc, "evaluations")?;
            let absent = doc
                .get(&m, benchmark.as_str())
                .map_err(Error::automerge(doc_name))?
                .is_none();
            let (mut header, migrated) = take_header(doc, &m, benchmark, doc_name)?;
            let key = format!("{benchmark}{EVAL_SEP}{}", slice.as_deref().unwrap_or(""));
            let mut row: BTreeMap<String, Num> = read_json(doc, &m, &key).unwrap_or_default();
            row.extend(metrics.iter().map(|(k, v)| (k.clone(), Num(*v))));
            doc.put(&m, key.as_str(), json(&row))
                .map_err(Error::automerge(doc_name))?;
            let new_dataset = dataset.is_some() && header.dataset != *dataset;
            if new_dataset {
                header.dataset = dataset.clone();
            }
            // The header is written only when it changes: two devices adding rows to one
            // evaluation must not both rewrite it (a conflict of equal values).
            if !(absent || migrated || new_dataset) {
                return Ok(());
            }
            doc.put(&m, benchmark.as_str(), json(&header))
        }
        RunEdit::EvalReport { benchmark, path } => {
            let m = in_map(doc, "evaluations")?;
            let (mut header, _) = take_header(doc, &m, benchmark, doc_name)?;
            if !header.reports.contains(path) {
                header.reports.push(path.clone());
            }
            doc.put(&m, benchmark.as_str(), json(&header))
        }
        RunEdit::Artifact(k, a) => {
            let m = in_map(doc, "artifacts")?;
            doc.put(&m, k.as_str(), json(a))
        }
        RunEdit::DeleteArtifact(k) => {
            let m = in_map(doc, "artifacts")?;
            doc.delete(&m, k.as_str())
        }
        RunEdit::FeatureSet(v) => put_opt_json(doc, obj, "feature_set", v.as_ref()),
        RunEdit::Code(v) => put_opt_json(doc, obj, "code", v.as_ref()),
        RunEdit::Infra(v) => put_opt_json(doc, obj, "infra", v.as_ref()),
        RunEdit::Deleted(d) => doc.put(obj, "deleted", *d),
        RunEdit::Parent(p, k) => {
            match p {
                Some(p) => doc.put(obj, "parent", p.to_string()),
                None => doc.delete(obj, "parent"),
            }
            .map_err(Error::automerge(doc_name))?;
            match k {
                Some(k) => doc.put(obj, "parent_kind", k.as_str()),
                None => doc.delete(obj, "parent_kind"),
            }
        }
    }
    .map_err(err)
}

/// Separates a benchmark from a row of its evaluation in the `evaluations` map's keys.
const EVAL_SEP: char = '\u{1f}';

/// An evaluation's header as stored under its benchmark's key. `metrics` and `report` are what a
/// workspace written before slices existed holds there (one key per evaluation).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct EvalHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dataset: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reports: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logged_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logged_by: Option<String>,
    #[serde(default, skip_serializing)]
    metrics: BTreeMap<String, Num>,
    #[serde(default, skip_serializing)]
    report: Option<String>,
}

/// The header of `benchmark`'s evaluation, ready to be written back, and whether it must be:
/// one in the layout before slices has its metrics moved to the overall row and its report to
/// the reports.
fn take_header(
    doc: &mut AutoCommit,
    m: &automerge::ObjId,
    benchmark: &str,
    doc_name: &str,
) -> Result<(EvalHeader, bool), Error> {
    let mut header: EvalHeader = read_json(doc, m, benchmark).unwrap_or_default();
    let migrated = header.report.is_some() || !header.metrics.is_empty();
    if let Some(r) = header.report.take()
        && !header.reports.contains(&r)
    {
        header.reports.push(r);
    }
    let legacy = std::mem::take(&mut header.metrics);
    if !legacy.is_empty() {
        let key = format!("{benchmark}{EVAL_SEP}");
        let mut row: BTreeMap<String, Num> = read_json(doc, m, &key).unwrap_or_default();
        for (k, v) in legacy {
            row.entry(k).or_insert(v);
        }
        doc.put(m, key.as_str(), json(&row))
            .map_err(Error::automerge(doc_name))?;
    }
    Ok((header, migrated))
}

/// The keys and values one evaluation is stored as.
fn eval_entries(benchmark: &str, e: &Evaluation) -> Vec<(String, String)> {
    let header = EvalHeader {
        dataset: e.dataset.clone(),
        reports: e.reports.clone(),
        logged_ms: e.logged_ms,
        logged_by: e.logged_by.clone(),
        ..Default::default()
    };
    let mut out = vec![
        (benchmark.to_owned(), json(&header)),
        (format!("{benchmark}{EVAL_SEP}"), json(&e.metrics)),
    ];
    for (slice, metrics) in &e.slices {
        out.push((format!("{benchmark}{EVAL_SEP}{slice}"), json(metrics)));
    }
    out
}

/// The JSON value under `key` of the map `m`, if it is one of type `T`.
fn read_json<T: DeserializeOwned>(doc: &AutoCommit, m: &automerge::ObjId, key: &str) -> Option<T> {
    match doc.get(m, key).ok()?? {
        (Value::Scalar(s), _) => s.as_str().and_then(|t| serde_json::from_str(t).ok()),
        _ => None,
    }
}

/// Reassembles evaluations from the `evaluations` map's entries (the current layout and the
/// one-key-per-evaluation layout before it).
fn evaluations_from(
    entries: BTreeMap<String, String>,
    corrupt: impl Fn(String) -> Error,
) -> Result<BTreeMap<String, Evaluation>, Error> {
    let mut out: BTreeMap<String, Evaluation> = BTreeMap::new();
    for (key, text) in entries {
        match key.split_once(EVAL_SEP) {
            None => {
                let h: EvalHeader = serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("evaluations.{key}: {e}")))?;
                let e = out.entry(key).or_default();
                e.dataset = h.dataset;
                e.reports = h.reports;
                e.reports.extend(h.report);
                e.logged_ms = h.logged_ms;
                e.logged_by = h.logged_by;
                // The old layout's metrics give way to an overall row written since.
                for (k, v) in h.metrics {
                    e.metrics.entry(k).or_insert(v);
                }
            }
            Some((benchmark, slice)) => {
                let row: BTreeMap<String, Num> = serde_json::from_str(&text)
                    .map_err(|e| corrupt(format!("evaluations.{benchmark} row '{slice}': {e}")))?;
                let e = out.entry(benchmark.to_owned()).or_default();
                if slice.is_empty() {
                    e.metrics.extend(row);
                } else {
                    e.slices.insert(slice.to_owned(), row);
                }
            }
        }
    }
    Ok(out)
}

fn put_opt_json<T: Serialize>(
    doc: &mut AutoCommit,
    obj: &automerge::ObjId,
    key: &str,
    v: Option<&T>,
) -> Result<(), automerge::AutomergeError> {
    match v {
        Some(v) => doc.put(obj, key, json(v)),
        None => doc.delete(obj, key),
    }
}

/// Reads every value of `key` in `obj`: the winner first, then the values it conflicts with.
/// A Text object reads as its string (notes are text; a peer may hold any string field as
/// text); other objects are left out.
fn all_scalars(
    doc: &AutoCommit,
    obj: &automerge::ObjId,
    key: &str,
) -> Result<Vec<ScalarValue>, automerge::AutomergeError> {
    let mut vals = Vec::new();
    for (v, id) in doc.get_all(obj, key)? {
        match v {
            Value::Scalar(s) => vals.push(s.into_owned()),
            Value::Object(ObjType::Text) => vals.push(ScalarValue::Str(doc.text(&id)?.into())),
            Value::Object(_) => {}
        }
    }
    // get_all lists values in op order; the winner is the last one.
    vals.reverse();
    Ok(vals)
}

fn to_json(s: &ScalarValue) -> serde_json::Value {
    match s {
        ScalarValue::Str(t) => serde_json::from_str::<serde_json::Value>(t)
            .ok()
            .filter(|v| v.is_object() || v.is_array())
            .unwrap_or_else(|| serde_json::Value::String(t.to_string())),
        ScalarValue::Int(i) | ScalarValue::Timestamp(i) => (*i).into(),
        ScalarValue::Uint(u) => (*u).into(),
        ScalarValue::F64(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        ScalarValue::Boolean(b) => (*b).into(),
        _ => serde_json::Value::Null,
    }
}

/// Reads runs out of a shard doc, recording every conflict it meets.
pub(crate) struct RunReader<'a> {
    pub doc: &'a AutoCommit,
    pub doc_name: &'a str,
    conflicts: Vec<Conflict>,
}

impl<'a> RunReader<'a> {
    pub fn new(doc: &'a AutoCommit, doc_name: &'a str) -> Self {
        RunReader {
            doc,
            doc_name,
            conflicts: Vec::new(),
        }
    }

    pub(crate) fn corrupt(&self, reason: String) -> Error {
        Error::Corrupt {
            doc: self.doc_name.to_owned(),
            reason,
        }
    }

    pub(crate) fn values(
        &mut self,
        obj: &automerge::ObjId,
        key: &str,
        field: &str,
    ) -> Result<Option<ScalarValue>, Error> {
        let vals = all_scalars(self.doc, obj, key).map_err(Error::automerge(self.doc_name))?;
        // Equal values written concurrently (two devices creating one evaluation's header)
        // leave nothing to resolve.
        if vals.len() > 1 && vals.iter().any(|v| *v != vals[0]) {
            self.conflicts.push(Conflict {
                field: field.to_owned(),
                values: vals.iter().map(to_json).collect(),
            });
        }
        Ok(vals.into_iter().next())
    }

    pub(crate) fn string(
        &mut self,
        obj: &automerge::ObjId,
        key: &str,
        field: &str,
    ) -> Result<Option<String>, Error> {
        Ok(match self.values(obj, key, field)? {
            Some(ScalarValue::Str(s)) => Some(s.to_string()),
            Some(other) => return Err(self.corrupt(format!("{field} is {other:?}, expected text"))),
            None => None,
        })
    }

    pub(crate) fn int(
        &mut self,
        obj: &automerge::ObjId,
        key: &str,
        field: &str,
    ) -> Result<Option<i64>, Error> {
        Ok(match self.values(obj, key, field)? {
            Some(ScalarValue::Int(i) | ScalarValue::Timestamp(i)) => Some(i),
            Some(ScalarValue::Uint(u)) => i64::try_from(u).ok(),
            Some(other) => {
                return Err(self.corrupt(format!("{field} is {other:?}, expected an integer")));
            }
            None => None,
        })
    }

    pub(crate) fn parsed<T: DeserializeOwned>(
        &mut self,
        obj: &automerge::ObjId,
        key: &str,
        field: &str,
    ) -> Result<Option<T>, Error> {
        match self.string(obj, key, field)? {
            Some(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| self.corrupt(format!("{field}: {e}"))),
            None => Ok(None),
        }
    }

    pub(crate) fn map_entries(
        &mut self,
        obj: &automerge::ObjId,
        map: &str,
    ) -> Result<BTreeMap<String, String>, Error> {
        let mut out = BTreeMap::new();
        let Some((Value::Object(ObjType::Map), id)) = self
            .doc
            .get(obj, map)
            .map_err(Error::automerge(self.doc_name))?
        else {
            return Ok(out);
        };
        let keys: Vec<String> = self.doc.keys(&id).collect();
        for k in keys {
            if let Some(v) = self.string(&id, &k, &format!("{map}.{k}"))? {
                out.insert(k, v);
            }
        }
        Ok(out)
    }

    pub(crate) fn parsed_map<T: DeserializeOwned>(
        &mut self,
        obj: &automerge::ObjId,
        map: &str,
    ) -> Result<BTreeMap<String, T>, Error> {
        self.map_entries(obj, map)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_str(&v)
                    .map(|t| (k.clone(), t))
                    .map_err(|e| self.corrupt(format!("{map}.{k}: {e}")))
            })
            .collect()
    }

    /// The conflicts met since the last call (other readers of the doc use the same helpers).
    pub(crate) fn take_conflicts(&mut self) -> Vec<Conflict> {
        std::mem::take(&mut self.conflicts)
    }

    /// The run stored under `run/<id>`, or None when the doc has no such run.
    pub fn run(&mut self, id: RunId) -> Result<Option<Run>, Error> {
        self.conflicts.clear();
        let key = run_key(id);
        let obj = match self
            .doc
            .get(automerge::ROOT, key.as_str())
            .map_err(Error::automerge(self.doc_name))?
        {
            Some((Value::Object(ObjType::Map), obj)) => obj,
            Some(_) => return Err(self.corrupt(format!("{key} is not a map"))),
            None => return Ok(None),
        };
        let experiment: ExperimentId = self
            .string(&obj, "experiment", "experiment")?
            .ok_or_else(|| self.corrupt(format!("{key} has no experiment")))?
            .parse()
            .map_err(|e| self.corrupt(format!("{key}: {e}")))?;
        let status_text = self
            .string(&obj, "status", "status")?
            .unwrap_or_else(|| "running".into());
        let status = status_text
            .parse()
            .map_err(|e| self.corrupt(format!("{key}: {e}")))?;
        let mut run = Run::new(
            id,
            experiment,
            self.string(&obj, "name", "name")?.unwrap_or_default(),
            0,
        );
        run.status = status;
        run.start_ms = self.int(&obj, "start_ms", "start_ms")?.unwrap_or(0);
        run.end_ms = self.int(&obj, "end_ms", "end_ms")?;
        run.owner = self.string(&obj, "owner", "owner")?;
        run.parent = match self.string(&obj, "parent", "parent")? {
            Some(p) => Some(p.parse().map_err(|e| self.corrupt(format!("{key}: {e}")))?),
            None => None,
        };
        run.parent_kind = match self.string(&obj, "parent_kind", "parent_kind")? {
            Some(p) => Some(p.parse().map_err(|e| self.corrupt(format!("{key}: {e}")))?),
            None => None,
        };
        run.notes = self.string(&obj, "notes", "notes")?.unwrap_or_default();
        run.deleted = matches!(
            self.values(&obj, "deleted", "deleted")?,
            Some(ScalarValue::Boolean(true))
        );
        run.lineage.code = self.parsed(&obj, "code", "code")?;
        run.lineage.infra = self.parsed(&obj, "infra", "infra")?;
        run.lineage.feature_set = self.parsed(&obj, "feature_set", "feature_set")?;
        run.params = self.map_entries(&obj, MAPS[0])?;
        run.tags = self.map_entries(&obj, MAPS[1])?;
        run.metrics = self.parsed_map(&obj, MAPS[2])?;
        run.lineage.datasets = self.parsed_map(&obj, MAPS[3])?;
        let entries = self.map_entries(&obj, MAPS[4])?;
        let doc_name = self.doc_name.to_owned();
        run.lineage.evaluations = evaluations_from(entries, |reason| Error::Corrupt {
            doc: doc_name.clone(),
            reason,
        })?;
        run.artifacts = self.parsed_map(&obj, MAPS[5])?;
        run.conflicts = std::mem::take(&mut self.conflicts);
        Ok(Some(run))
    }

    /// Ids of every run in the doc.
    pub fn run_ids(&self) -> Result<Vec<RunId>, Error> {
        self.doc
            .keys(automerge::ROOT)
            .filter_map(|k| k.strip_prefix(RUN_PREFIX).map(str::to_owned))
            .map(|k| {
                k.parse()
                    .map_err(|e| self.corrupt(format!("run key '{k}': {e}")))
            })
            .collect()
    }
}
