//! How a logged model is laid out in a shard doc, and the edits it takes.
//!
//! A logged model is a map at the shard's root under `lmodel/<id>`, created whole with one
//! `batch_create_object`, beside the runs of its experiment (never inside a shared nested map,
//! so two writers cannot race to create the same object). Scalars (name, status, times) and
//! each entry of `params`, `tags`, `metrics` (one per metric, run and dataset), `artifacts`,
//! `outputs` and `inputs` (runs that produced or read it) are their own automerge keys, so
//! concurrent edits of different entries merge and concurrent edits of one are kept and
//! surfaced as conflicts. A deletion is a tombstone (`deleted`: who and when), never a removal.

use std::collections::HashMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc, Value, hydrate};
use cairn_model::{
    ArtifactRef, Deletion, ExperimentId, LoggedModel, LoggedModelId, LoggedModelMetric,
    LoggedModelStatus, RunId,
};

use crate::Error;
use crate::run_doc::{RunReader, json, scalar};

pub(crate) const MODEL_PREFIX: &str = "lmodel/";

pub(crate) fn model_key(id: &LoggedModelId) -> String {
    format!("{MODEL_PREFIX}{id}")
}

const MAPS: [&str; 6] = [
    "params",
    "tags",
    "metrics",
    "artifacts",
    "outputs",
    "inputs",
];

/// One change to a logged model.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LoggedModelEdit {
    Status {
        status: LoggedModelStatus,
        message: Option<String>,
    },
    Param(String, String),
    Tag(String, String),
    DeleteTag(String),
    /// A metric value: replaces the entry of its series (metric, run, dataset).
    Metric(LoggedModelMetric),
    Artifact(String, ArtifactRef),
    DeleteArtifact(String),
    /// A run logged the model as an output at a step.
    Output(RunId, i64),
    /// A run took the model as an input, at a time.
    Input(RunId, i64),
    Deleted(Option<Deletion>),
    Updated(i64),
}

/// The whole model as one hydrate value, for `batch_create_object`. Every map it will ever need
/// is created with it.
pub(crate) fn model_value(m: &LoggedModel) -> hydrate::Value {
    let mut v: HashMap<&str, hydrate::Value> = HashMap::new();
    v.insert("experiment", scalar(m.experiment.to_string()));
    v.insert("name", scalar(m.name.as_str()));
    if let Some(r) = m.source_run {
        v.insert("source_run", scalar(r.to_string()));
    }
    v.insert("status", scalar(m.status.as_str()));
    if let Some(s) = &m.status_message {
        v.insert("status_message", scalar(s.as_str()));
    }
    if let Some(t) = &m.model_type {
        v.insert("model_type", scalar(t.as_str()));
    }
    v.insert("artifact_location", scalar(m.artifact_location.as_str()));
    if let Some(c) = &m.creator {
        v.insert("creator", scalar(c.as_str()));
    }
    v.insert("created_ms", scalar(m.created_ms));
    v.insert("updated_ms", scalar(m.updated_ms));
    if let Some(d) = &m.deleted {
        v.insert("deleted", scalar(json(d)));
    }
    let map_of = |entries: Vec<(String, String)>| {
        let inner: HashMap<String, hydrate::Value> =
            entries.into_iter().map(|(k, v)| (k, scalar(v))).collect();
        hydrate::Value::Map(inner.into())
    };
    let pairs = |m: &std::collections::BTreeMap<String, String>| {
        m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    v.insert("params", map_of(pairs(&m.params)));
    v.insert("tags", map_of(pairs(&m.tags)));
    v.insert(
        "metrics",
        map_of(
            m.metrics
                .iter()
                .map(|x| (x.series_key(), json(x)))
                .collect(),
        ),
    );
    v.insert(
        "artifacts",
        map_of(
            m.artifacts
                .iter()
                .map(|(k, a)| (k.clone(), json(a)))
                .collect(),
        ),
    );
    v.insert(
        "outputs",
        map_of(
            m.outputs
                .iter()
                .map(|(r, s)| (r.to_string(), json(s)))
                .collect(),
        ),
    );
    v.insert(
        "inputs",
        map_of(
            m.inputs
                .iter()
                .map(|(r, t)| (r.to_string(), json(t)))
                .collect(),
        ),
    );
    v.into()
}

/// Applies one edit to the model object `obj` inside an open transaction.
pub(crate) fn apply_edit(
    doc: &mut AutoCommit,
    obj: &automerge::ObjId,
    edit: &LoggedModelEdit,
    doc_name: &str,
) -> Result<(), Error> {
    let in_map = |doc: &mut AutoCommit, map: &str| -> Result<automerge::ObjId, Error> {
        match doc.get(obj, map).map_err(Error::automerge(doc_name))? {
            Some((Value::Object(ObjType::Map), id)) => Ok(id),
            // Only a doc written by something other than Cairn lacks these maps.
            _ => doc
                .put_object(obj, map, ObjType::Map)
                .map_err(Error::automerge(doc_name)),
        }
    };
    let done = match edit {
        LoggedModelEdit::Status { status, message } => {
            doc.put(obj, "status", status.as_str())
                .map_err(Error::automerge(doc_name))?;
            match message {
                Some(m) => doc.put(obj, "status_message", m.as_str()),
                None => doc.delete(obj, "status_message"),
            }
        }
        LoggedModelEdit::Param(k, v) => {
            let m = in_map(doc, "params")?;
            doc.put(&m, k.as_str(), v.as_str())
        }
        LoggedModelEdit::Tag(k, v) => {
            let m = in_map(doc, "tags")?;
            doc.put(&m, k.as_str(), v.as_str())
        }
        LoggedModelEdit::DeleteTag(k) => {
            let m = in_map(doc, "tags")?;
            doc.delete(&m, k.as_str())
        }
        LoggedModelEdit::Metric(x) => {
            let m = in_map(doc, "metrics")?;
            doc.put(&m, x.series_key().as_str(), json(x))
        }
        LoggedModelEdit::Artifact(k, a) => {
            let m = in_map(doc, "artifacts")?;
            doc.put(&m, k.as_str(), json(a))
        }
        LoggedModelEdit::DeleteArtifact(k) => {
            let m = in_map(doc, "artifacts")?;
            doc.delete(&m, k.as_str())
        }
        LoggedModelEdit::Output(run, step) => {
            let m = in_map(doc, "outputs")?;
            doc.put(&m, run.to_string().as_str(), json(step))
        }
        LoggedModelEdit::Input(run, at) => {
            let m = in_map(doc, "inputs")?;
            doc.put(&m, run.to_string().as_str(), json(at))
        }
        LoggedModelEdit::Deleted(Some(d)) => doc.put(obj, "deleted", json(d)),
        LoggedModelEdit::Deleted(None) => doc.delete(obj, "deleted"),
        LoggedModelEdit::Updated(ms) => doc.put(obj, "updated_ms", *ms),
    };
    done.map_err(Error::automerge(doc_name))
}

/// Reads logged models out of a shard doc. A doc any peer could have written is read with
/// care: a malformed model is an error naming the doc and the field, never a panic.
pub(crate) fn read_model(
    doc: &AutoCommit,
    doc_name: &str,
    id: &LoggedModelId,
) -> Result<Option<LoggedModel>, Error> {
    let key = model_key(id);
    let mut r = RunReader::new(doc, doc_name);
    let obj = match doc
        .get(automerge::ROOT, key.as_str())
        .map_err(Error::automerge(doc_name))?
    {
        Some((Value::Object(ObjType::Map), obj)) => obj,
        Some(_) => return Err(r.corrupt(format!("{key} is not a map"))),
        None => return Ok(None),
    };
    let experiment: ExperimentId = r
        .string(&obj, "experiment", "experiment")?
        .ok_or_else(|| r.corrupt(format!("{key} has no experiment")))?
        .parse()
        .map_err(|e| r.corrupt(format!("{key}: {e}")))?;
    let status = match r.string(&obj, "status", "status")? {
        Some(s) => s.parse().map_err(|e| r.corrupt(format!("{key}: {e}")))?,
        None => LoggedModelStatus::Pending,
    };
    let source_run = match r.string(&obj, "source_run", "source_run")? {
        Some(s) => Some(s.parse().map_err(|e| r.corrupt(format!("{key}: {e}")))?),
        None => None,
    };
    let deleted: Option<Deletion> = r.parsed(&obj, "deleted", "deleted")?;
    let metrics: Vec<LoggedModelMetric> = r
        .parsed_map::<LoggedModelMetric>(&obj, MAPS[2])?
        .into_values()
        .collect();
    let mut model = LoggedModel {
        id: id.clone(),
        experiment,
        name: r.string(&obj, "name", "name")?.unwrap_or_default(),
        source_run,
        status,
        status_message: r.string(&obj, "status_message", "status_message")?,
        model_type: r.string(&obj, "model_type", "model_type")?,
        artifact_location: r
            .string(&obj, "artifact_location", "artifact_location")?
            .unwrap_or_default(),
        creator: r.string(&obj, "creator", "creator")?,
        created_ms: r.int(&obj, "created_ms", "created_ms")?.unwrap_or(0),
        updated_ms: r.int(&obj, "updated_ms", "updated_ms")?.unwrap_or(0),
        params: r.map_entries(&obj, MAPS[0])?,
        tags: r.map_entries(&obj, MAPS[1])?,
        metrics,
        artifacts: r.parsed_map(&obj, MAPS[3])?,
        outputs: run_map(&mut r, &obj, MAPS[4])?,
        inputs: run_map(&mut r, &obj, MAPS[5])?,
        deleted,
        conflicts: Vec::new(),
    };
    model.conflicts = r.take_conflicts();
    Ok(Some(model))
}

/// A map keyed by run id whose values are integers.
fn run_map(
    r: &mut RunReader<'_>,
    obj: &automerge::ObjId,
    map: &str,
) -> Result<std::collections::BTreeMap<RunId, i64>, Error> {
    r.parsed_map::<i64>(obj, map)?
        .into_iter()
        .map(|(k, v)| {
            k.parse::<RunId>()
                .map(|id| (id, v))
                .map_err(|e| r.corrupt(format!("{map}: {e}")))
        })
        .collect()
}

/// Ids of every logged model in the doc.
pub(crate) fn model_ids(doc: &AutoCommit, doc_name: &str) -> Result<Vec<LoggedModelId>, Error> {
    doc.keys(automerge::ROOT)
        .filter_map(|k| k.strip_prefix(MODEL_PREFIX).map(str::to_owned))
        .map(|k| {
            k.parse().map_err(|e| Error::Corrupt {
                doc: doc_name.to_owned(),
                reason: format!("logged model key '{k}': {e}"),
            })
        })
        .collect()
}
