//! MLflow 3's evaluation datasets (`mlflow.genai.datasets`, the `/api/3.0/mlflow/datasets/…`
//! calls): named sets of records (inputs, expectations, outputs, tags, where each came from),
//! linked to experiments, searched by name, tags and times.
//!
//! They are kept in the team doc, so they sync with the catalog, one key per fact:
//! - `evds/<id>` the creation (name, who — MLflow's `created_by` and this workspace's user —,
//!   which device, when): written once, never changed; it attests who made the dataset.
//! - `evdsdel/<id>` the deletion (who, which device, when): written once; a deleted dataset
//!   stays deleted on every peer, whatever else arrives for it.
//! - `evdsstate/<id>` what MLflow derives as records change (last update, by whom, the schema
//!   inferred from the records, the profile): last writer wins; concurrent values are read
//!   as the latest update.
//! - `evdstag/<id>/<key>` a tag, `evdsexp/<id>/<experiment>` a link to an experiment, and
//!   `evdsrec/<id>/<hash of the inputs>` a record: each its own key, so two devices editing
//!   different tags, links or records merge; two upserts of the same inputs at once keep the
//!   later. A record is keyed by its inputs as MLflow deduplicates them (the same inputs, in
//!   any key order, are the same record).
//!
//! Datasets are read whole from their key ranges; bounds keep that small (records per
//! dataset, bytes per record, tags, filter length).

use std::collections::{BTreeMap, BTreeSet};

use cairn_model::{ExperimentId, RecordId, registry::keys::esc, registry::keys::unesc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::stores::now_ms;
use crate::{Error, LikePattern, Stores, Workspace};

/// Team-doc key prefixes (see the module documentation).
pub mod keys {
    pub const DATASET: &str = "evds/";
    pub const DELETION: &str = "evdsdel/";
    pub const STATE: &str = "evdsstate/";
    pub const TAG: &str = "evdstag/";
    pub const EXPERIMENT: &str = "evdsexp/";
    pub const RECORD: &str = "evdsrec/";
}

/// A dataset's name, in bytes.
pub const MAX_NAME: usize = 1_000;
/// Tags of one dataset, and a tag's key and value in bytes.
pub const MAX_TAGS: usize = 1_000;
pub const MAX_TAG_KEY: usize = 250;
pub const MAX_TAG_VALUE: usize = 8_000;
/// Records of one dataset, records in one upsert, bytes of one record as JSON.
pub const MAX_RECORDS: usize = 100_000;
pub const MAX_UPSERT: usize = 10_000;
pub const MAX_RECORD_BYTES: usize = 1 << 20;
/// Experiments one dataset is linked to.
pub const MAX_EXPERIMENTS: usize = 1_000;
/// A search filter: bytes, comparisons, values of an `IN` list.
const MAX_FILTER: usize = 64 * 1024;
const MAX_COMPARISONS: usize = 100;
const MAX_IN_VALUES: usize = 1_000;

/// The tag whose value MLflow takes as a record's or dataset's author.
const USER_TAG: &str = "mlflow.user";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Creation {
    id: String,
    name: String,
    created_ms: i64,
    /// MLflow's `created_by`: the `mlflow.user` tag given at creation.
    created_by: Option<String>,
    /// Who created it here (the workspace's user) and on which device.
    user: String,
    device: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Deletion {
    ms: i64,
    user: String,
    device: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    last_update_ms: i64,
    last_updated_by: Option<String>,
    /// As MLflow writes them (Python's `json.dumps`), kept verbatim.
    schema: Option<String>,
    profile: Option<String>,
}

/// An evaluation dataset as MLflow's `Dataset` message describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalDataset {
    /// `d-` and 32 hex digits.
    pub id: String,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    pub schema: Option<String>,
    pub profile: Option<String>,
    /// Changes with every update of the records (8 hex digits, as MLflow's).
    pub digest: String,
    pub created_ms: i64,
    pub last_update_ms: i64,
    pub created_by: Option<String>,
    pub last_updated_by: Option<String>,
    pub experiments: Vec<ExperimentId>,
}

/// One record of an evaluation dataset, as stored and as MLflow's `DatasetRecord.to_dict`
/// answers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalRecord {
    /// `dr-` and 32 hex digits.
    pub id: String,
    pub inputs: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expectations: Option<Value>,
    #[serde(default)]
    pub tags: Map<String, Value>,
    /// `{"source_type": "TRACE", "source_data": {…}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_by: Option<String>,
}

impl EvalRecord {
    /// MLflow's `DatasetRecord.to_dict()` of this record in `dataset`.
    pub fn to_mlflow(&self, dataset: &str) -> Value {
        let mut d = json!({
            "dataset_record_id": self.id,
            "dataset_id": dataset,
            "inputs": self.inputs,
            "tags": self.tags,
            "created_time": self.created_ms,
            "last_update_time": self.updated_ms,
        });
        let o = d.as_object_mut().expect("an object");
        let mut put = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                o.insert(k.to_owned(), v);
            }
        };
        put("outputs", self.outputs.clone());
        put("expectations", self.expectations.clone());
        put("source", self.source.clone());
        put("source_id", self.source_id.clone().map(Value::String));
        put("source_type", self.source_type.clone().map(Value::String));
        put("created_by", self.created_by.clone().map(Value::String));
        put(
            "last_updated_by",
            self.last_updated_by.clone().map(Value::String),
        );
        d
    }
}

/// Where a page of records ends: the creation time and id of its last record.
pub type RecordCursor = (i64, String);
/// A page of records and the cursor of the next one.
pub type RecordPage = (Vec<EvalRecord>, Option<RecordCursor>);
/// A record's source (`{"source_type", "source_data"}`), the id it names, its type.
type RecordSource = (Option<Value>, Option<String>, Option<String>);

/// A search of evaluation datasets (MLflow's `SearchEvaluationDatasets`).
#[derive(Debug, Clone, Default)]
pub struct EvalDatasetSearch {
    /// Only datasets linked to one of these (none: every dataset).
    pub experiments: Vec<ExperimentId>,
    pub filter: String,
    pub order_by: Vec<String>,
    pub max_results: usize,
    pub offset: usize,
}

fn json_text<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn parse_entry<T: for<'de> Deserialize<'de>>(key: &str, text: &str) -> Option<T> {
    match serde_json::from_str(text) {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(key, "ignoring an unreadable evaluation dataset entry: {e}");
            None
        }
    }
}

/// MLflow's digest of a dataset's state: it changes with every update.
fn digest(name: &str, last_update_ms: i64) -> String {
    let h = blake3::hash(format!("{name}:{last_update_ms}").as_bytes());
    h.to_hex()[..8].to_owned()
}

/// A JSON value with every object's keys sorted, written compactly: the same inputs in any
/// key order give the same text (MLflow's `json.dumps(inputs, sort_keys=True)`).
fn canonical(v: &Value) -> String {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let b: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
                Value::Object(b.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    // Keys are inserted in order; a map that keeps insertion order or sorts gives the same.
    sorted(v).to_string()
}

/// Python's `json.dumps(v)` (separators `", "` and `": "`, non-ASCII escaped): how MLflow
/// writes a dataset's schema and profile, kept so they read back byte for byte.
pub fn py_dumps(v: &Value) -> String {
    fn s(text: &str, out: &mut String) {
        out.push('"');
        for c in text.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                    let mut buf = [0u16; 2];
                    for u in c.encode_utf16(&mut buf) {
                        out.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
    fn w(v: &Value, out: &mut String) {
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => out.push_str(&n.to_string()),
            Value::String(t) => s(t, out),
            Value::Array(a) => {
                out.push('[');
                for (i, x) in a.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    w(x, out);
                }
                out.push(']');
            }
            Value::Object(m) => {
                out.push('{');
                for (i, (k, x)) in m.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    s(k, out);
                    out.push_str(": ");
                    w(x, out);
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    w(v, &mut out);
    out
}

/// MLflow's `_infer_field_type`.
fn field_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A dataset id as MLflow's clients send it: `d-` and 32 hex digits.
fn check_id(id: &str) -> Result<(), Error> {
    let ok = id
        .strip_prefix("d-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "'{}' is not an evaluation dataset id (d- and 32 hex digits)",
            id.chars().take(80).collect::<String>()
        )))
    }
}

fn check_tag(key: &str, value: &str) -> Result<(), Error> {
    if key.is_empty() {
        return Err(Error::Invalid("a dataset tag needs a key".into()));
    }
    if key.len() > MAX_TAG_KEY {
        return Err(Error::Invalid(format!(
            "the dataset tag key '{}…' is {} bytes long (at most {MAX_TAG_KEY})",
            key.chars().take(40).collect::<String>(),
            key.len()
        )));
    }
    if value.len() > MAX_TAG_VALUE {
        return Err(Error::Invalid(format!(
            "the value of dataset tag '{key}' is {} bytes long (at most {MAX_TAG_VALUE})",
            value.len()
        )));
    }
    Ok(())
}

/// Everything the team doc holds for some datasets, read in one pass.
#[derive(Default)]
struct Entries {
    created: BTreeMap<String, Creation>,
    deleted: BTreeSet<String>,
    state: BTreeMap<String, State>,
    tags: BTreeMap<String, BTreeMap<String, String>>,
    experiments: BTreeMap<String, Vec<ExperimentId>>,
}

impl Entries {
    fn dataset(&self, id: &str) -> Option<EvalDataset> {
        let c = self.created.get(id)?;
        if self.deleted.contains(id) {
            return None;
        }
        let st = self.state.get(id).cloned().unwrap_or_default();
        let last_update_ms = st.last_update_ms.max(c.created_ms);
        Some(EvalDataset {
            id: c.id.clone(),
            name: c.name.clone(),
            tags: self.tags.get(id).cloned().unwrap_or_default(),
            schema: st.schema,
            profile: st.profile,
            digest: digest(&c.name, last_update_ms),
            created_ms: c.created_ms,
            last_update_ms,
            created_by: c.created_by.clone(),
            last_updated_by: if self.state.contains_key(id) {
                st.last_updated_by
            } else {
                c.created_by.clone()
            },
            experiments: self.experiments.get(id).cloned().unwrap_or_default(),
        })
    }
}

/// The id part after `prefix` of a key, and the rest after the next `/` (if any).
fn split_key<'a>(key: &'a str, prefix: &str) -> Option<(&'a str, Option<&'a str>)> {
    let rest = key.strip_prefix(prefix)?;
    Some(match rest.split_once('/') {
        Some((id, tail)) => (id, Some(tail)),
        None => (rest, None),
    })
}

impl Stores {
    /// Reads the entries of one dataset (`Some(id)`) or of all.
    fn eval_entries(&mut self, id: Option<&str>) -> Result<Entries, Error> {
        let one = |p: &str| match id {
            Some(id) => format!("{p}{id}"),
            None => p.to_owned(),
        };
        let prefixes = [
            one(keys::DATASET),
            one(keys::DELETION),
            one(keys::STATE),
            one(keys::TAG),
            one(keys::EXPERIMENT),
        ];
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let ranges = self.catalog_mut().team_ranges(&refs)?;
        let mut e = Entries::default();
        for (i, range) in ranges.into_iter().enumerate() {
            for (key, values) in range {
                match i {
                    0 => {
                        let Some((ds, None)) = split_key(&key, keys::DATASET) else {
                            continue;
                        };
                        if let Some(c) = values
                            .last()
                            .and_then(|v| parse_entry::<Creation>(&key, v))
                            .filter(|c| c.id == ds)
                        {
                            e.created.insert(ds.to_owned(), c);
                        }
                    }
                    1 => {
                        if let Some((ds, None)) = split_key(&key, keys::DELETION) {
                            e.deleted.insert(ds.to_owned());
                        }
                    }
                    2 => {
                        let Some((ds, None)) = split_key(&key, keys::STATE) else {
                            continue;
                        };
                        // Concurrent updates: the latest one is the state.
                        if let Some(st) = values
                            .iter()
                            .filter_map(|v| parse_entry::<State>(&key, v))
                            .max_by_key(|s| s.last_update_ms)
                        {
                            e.state.insert(ds.to_owned(), st);
                        }
                    }
                    3 => {
                        let Some((ds, Some(k))) = split_key(&key, keys::TAG) else {
                            continue;
                        };
                        if let (Some(k), Some(v)) = (unesc(k), values.last()) {
                            e.tags
                                .entry(ds.to_owned())
                                .or_default()
                                .insert(k, v.clone());
                        }
                    }
                    _ => {
                        let Some((ds, Some(exp))) = split_key(&key, keys::EXPERIMENT) else {
                            continue;
                        };
                        if let Ok(exp) = exp.parse::<ExperimentId>() {
                            e.experiments.entry(ds.to_owned()).or_default().push(exp);
                        }
                    }
                }
            }
        }
        Ok(e)
    }

    fn eval_dataset_or(
        &mut self,
        id: &str,
        missing: impl FnOnce() -> String,
    ) -> Result<EvalDataset, Error> {
        if check_id(id).is_err() {
            return Err(Error::UnknownEvalDataset(missing()));
        }
        self.eval_entries(Some(id))?
            .dataset(id)
            .ok_or_else(|| Error::UnknownEvalDataset(missing()))
    }

    /// Every record of a dataset, by key.
    fn eval_records_all(&mut self, id: &str) -> Result<BTreeMap<String, EvalRecord>, Error> {
        let prefix = format!("{}{id}/", keys::RECORD);
        let ranges = self.catalog_mut().team_ranges(&[&prefix])?;
        let mut out = BTreeMap::new();
        for (key, values) in ranges.into_iter().flatten() {
            // Concurrent upserts of the same inputs: the later update is the record.
            if let Some(r) = values
                .iter()
                .filter_map(|v| parse_entry::<EvalRecord>(&key, v))
                .max_by_key(|r| r.updated_ms)
            {
                out.insert(key, r);
            }
        }
        Ok(out)
    }

    fn check_experiments(&mut self, experiments: &[ExperimentId]) -> Result<(), Error> {
        if experiments.len() > MAX_EXPERIMENTS {
            return Err(Error::Invalid(format!(
                "a dataset is linked to at most {MAX_EXPERIMENTS} experiments ({} given)",
                experiments.len()
            )));
        }
        for e in experiments {
            self.experiment_by_id(*e)?;
        }
        Ok(())
    }

    pub fn create_eval_dataset(
        &mut self,
        name: &str,
        tags: &[(String, String)],
        experiments: &[ExperimentId],
    ) -> Result<EvalDataset, Error> {
        if name.is_empty() {
            return Err(Error::Invalid("an evaluation dataset needs a name".into()));
        }
        if name.len() > MAX_NAME {
            return Err(Error::Invalid(format!(
                "the dataset name is {} bytes long (at most {MAX_NAME})",
                name.len()
            )));
        }
        if tags.len() > MAX_TAGS {
            return Err(Error::Invalid(format!(
                "a dataset has at most {MAX_TAGS} tags ({} given)",
                tags.len()
            )));
        }
        for (k, v) in tags {
            check_tag(k, v)?;
        }
        self.check_experiments(experiments)?;
        let id = format!("d-{}", RecordId::new());
        let created = Creation {
            id: id.clone(),
            name: name.to_owned(),
            created_ms: now_ms(),
            created_by: tags
                .iter()
                .find(|(k, _)| k == USER_TAG)
                .map(|(_, v)| v.clone()),
            user: self.user().to_owned(),
            device: self.record_device(),
        };
        let mut entries = vec![(format!("{}{id}", keys::DATASET), Some(json_text(&created)))];
        for (k, v) in tags {
            entries.push((format!("{}{id}/{}", keys::TAG, esc(k)), Some(v.clone())));
        }
        for e in experiments {
            entries.push((
                format!("{}{id}/{e}", keys::EXPERIMENT),
                Some(created.created_ms.to_string()),
            ));
        }
        self.catalog_mut().put_team_entries(&entries)?;
        self.eval_dataset_or(&id, || {
            format!("Evaluation dataset with id '{id}' not found")
        })
    }

    pub fn eval_dataset(&mut self, id: &str) -> Result<EvalDataset, Error> {
        self.eval_dataset_or(id, || {
            format!("Evaluation dataset with id '{id}' not found")
        })
    }

    /// Deletes a dataset (a tombstone: its records go with it). `false` when there was none,
    /// which MLflow does not treat as an error.
    pub fn delete_eval_dataset(&mut self, id: &str) -> Result<bool, Error> {
        if check_id(id).is_err() || self.eval_entries(Some(id))?.dataset(id).is_none() {
            return Ok(false);
        }
        let d = Deletion {
            ms: now_ms(),
            user: self.user().to_owned(),
            device: self.record_device(),
        };
        self.catalog_mut()
            .put_team_entries(&[(format!("{}{id}", keys::DELETION), Some(json_text(&d)))])?;
        Ok(true)
    }

    pub fn search_eval_datasets(
        &mut self,
        search: &EvalDatasetSearch,
    ) -> Result<(Vec<EvalDataset>, Option<usize>), Error> {
        let conditions = parse_filter(&search.filter)?;
        let order = parse_order(&search.order_by)?;
        let entries = self.eval_entries(None)?;
        let wanted: BTreeSet<ExperimentId> = search.experiments.iter().copied().collect();
        let mut found: Vec<EvalDataset> = entries
            .created
            .keys()
            .filter_map(|id| entries.dataset(id))
            .filter(|d| wanted.is_empty() || d.experiments.iter().any(|e| wanted.contains(e)))
            .filter(|d| conditions.iter().all(|c| c.matches(d)))
            .collect();
        found.sort_by(|a, b| {
            for (key, asc) in &order {
                let o = match key {
                    OrderKey::Name => a.name.cmp(&b.name),
                    OrderKey::Created => a.created_ms.cmp(&b.created_ms),
                    OrderKey::Updated => a.last_update_ms.cmp(&b.last_update_ms),
                };
                let o = if *asc { o } else { o.reverse() };
                if o.is_ne() {
                    return o;
                }
            }
            // MLflow's tie-breaker: the id, descending.
            b.id.cmp(&a.id)
        });
        let total = found.len();
        let page: Vec<EvalDataset> = found
            .into_iter()
            .skip(search.offset)
            .take(search.max_results)
            .collect();
        let end = search.offset.saturating_add(search.max_results);
        Ok((page, (end < total).then_some(end)))
    }

    /// Sets tags (an upsert: other tags stay); a `None` value is passed over, as MLflow does.
    pub fn set_eval_dataset_tags(
        &mut self,
        id: &str,
        tags: &[(String, Option<String>)],
    ) -> Result<(), Error> {
        let ds = self.eval_dataset_or(id, || {
            format!("Could not find evaluation dataset with ID {id}")
        })?;
        let mut keys_after: BTreeSet<&str> = ds.tags.keys().map(String::as_str).collect();
        let mut entries = Vec::new();
        for (k, v) in tags {
            let Some(v) = v else { continue };
            check_tag(k, v)?;
            keys_after.insert(k);
            entries.push((format!("{}{id}/{}", keys::TAG, esc(k)), Some(v.clone())));
        }
        if keys_after.len() > MAX_TAGS {
            return Err(Error::Invalid(format!(
                "a dataset has at most {MAX_TAGS} tags ({} after this change)",
                keys_after.len()
            )));
        }
        if !entries.is_empty() {
            self.catalog_mut().put_team_entries(&entries)?;
        }
        Ok(())
    }

    /// Removes a tag; a missing tag or dataset is no error (as MLflow).
    pub fn delete_eval_dataset_tag(&mut self, id: &str, key: &str) -> Result<(), Error> {
        let Ok(ds) = self.eval_dataset(id) else {
            return Ok(());
        };
        if ds.tags.contains_key(key) {
            self.catalog_mut()
                .put_team_entries(&[(format!("{}{id}/{}", keys::TAG, esc(key)), None)])?;
        }
        Ok(())
    }

    pub fn add_eval_dataset_experiments(
        &mut self,
        id: &str,
        experiments: &[ExperimentId],
    ) -> Result<EvalDataset, Error> {
        let ds = self.eval_dataset_or(id, || format!("Dataset '{id}' not found"))?;
        for e in experiments {
            self.experiment_by_id(*e)?;
        }
        let linked: BTreeSet<ExperimentId> = ds.experiments.iter().copied().collect();
        let new: BTreeSet<ExperimentId> = experiments
            .iter()
            .copied()
            .filter(|e| !linked.contains(e))
            .collect();
        if linked.len() + new.len() > MAX_EXPERIMENTS {
            return Err(Error::Invalid(format!(
                "a dataset is linked to at most {MAX_EXPERIMENTS} experiments"
            )));
        }
        let now = now_ms();
        let mut entries: Vec<(String, Option<String>)> = new
            .iter()
            .map(|e| {
                (
                    format!("{}{id}/{e}", keys::EXPERIMENT),
                    Some(now.to_string()),
                )
            })
            .collect();
        entries.push(self.touch(&ds, now, ds.last_updated_by.clone()));
        self.catalog_mut().put_team_entries(&entries)?;
        self.eval_dataset(id)
    }

    /// Unlinks experiments (those not linked are passed over); the dataset is updated only
    /// when one was linked.
    pub fn remove_eval_dataset_experiments(
        &mut self,
        id: &str,
        experiments: &[ExperimentId],
    ) -> Result<EvalDataset, Error> {
        let ds = self.eval_dataset_or(id, || format!("Dataset '{id}' not found"))?;
        let gone: BTreeSet<ExperimentId> = experiments
            .iter()
            .copied()
            .filter(|e| ds.experiments.contains(e))
            .collect();
        if gone.is_empty() {
            return Ok(ds);
        }
        let mut entries: Vec<(String, Option<String>)> = gone
            .iter()
            .map(|e| (format!("{}{id}/{e}", keys::EXPERIMENT), None))
            .collect();
        entries.push(self.touch(&ds, now_ms(), ds.last_updated_by.clone()));
        self.catalog_mut().put_team_entries(&entries)?;
        self.eval_dataset(id)
    }

    /// The state entry of `ds` updated at `now` by `by` (schema and profile kept).
    fn touch(&self, ds: &EvalDataset, now: i64, by: Option<String>) -> (String, Option<String>) {
        let st = State {
            last_update_ms: now.max(ds.last_update_ms),
            last_updated_by: by,
            schema: ds.schema.clone(),
            profile: ds.profile.clone(),
        };
        (format!("{}{}", keys::STATE, ds.id), Some(json_text(&st)))
    }

    /// MLflow's upsert: a record whose inputs are already in the dataset is merged into
    /// (outputs replaced, expectations and tags added to), any other is inserted; the
    /// dataset's schema, profile, digest and update time follow. Answers (inserted, updated).
    pub fn upsert_eval_records(
        &mut self,
        id: &str,
        records: &[Value],
    ) -> Result<(usize, usize), Error> {
        let ds = self.eval_dataset(id)?;
        if records.len() > MAX_UPSERT {
            return Err(Error::Invalid(format!(
                "at most {MAX_UPSERT} records are upserted at once ({} given)",
                records.len()
            )));
        }
        let mut stored = self.eval_records_all(id)?;
        let now = now_ms();
        let (mut inserted, mut updated) = (0, 0);
        let mut updated_by = None;
        let mut changed: BTreeMap<String, EvalRecord> = BTreeMap::new();
        for (i, r) in records.iter().enumerate() {
            let r = r
                .as_object()
                .ok_or_else(|| Error::Invalid(format!("record {i} is not a JSON object")))?;
            let size = r
                .iter()
                .map(|(k, v)| k.len() + v.to_string().len())
                .sum::<usize>();
            if size > MAX_RECORD_BYTES {
                return Err(Error::Invalid(format!(
                    "record {i} is {size} bytes long as JSON (at most {MAX_RECORD_BYTES})"
                )));
            }
            let inputs = r.get("inputs").cloned().unwrap_or_else(|| json!({}));
            if !inputs.is_object() {
                return Err(Error::Invalid(format!(
                    "the inputs of record {i} are not a JSON object"
                )));
            }
            let tags = match r.get("tags") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(t)) => t.clone(),
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "the tags of record {i} are not a JSON object"
                    )));
                }
            };
            let expectations = match r.get("expectations") {
                None | Some(Value::Null) => None,
                Some(Value::Object(e)) => Some(e.clone()),
                Some(_) => {
                    return Err(Error::Invalid(format!(
                        "the expectations of record {i} are not a JSON object"
                    )));
                }
            };
            let user = tags
                .get(USER_TAG)
                .and_then(Value::as_str)
                .map(str::to_owned);
            if user.is_some() {
                updated_by = user.clone();
            }
            let key = format!(
                "{}{id}/{}",
                keys::RECORD,
                blake3::hash(canonical(&inputs).as_bytes()).to_hex()
            );
            let existing = changed.get(&key).or_else(|| stored.get(&key)).cloned();
            let record = match existing {
                Some(mut rec) => {
                    if let Some(o) = r.get("outputs") {
                        rec.outputs = (!o.is_null()).then(|| o.clone());
                    }
                    if let Some(e) = expectations.filter(|e| !e.is_empty()) {
                        let mut merged = match rec.expectations.take() {
                            Some(Value::Object(m)) => m,
                            _ => Map::new(),
                        };
                        merged.extend(e);
                        rec.expectations = Some(Value::Object(merged));
                    }
                    if !tags.is_empty() {
                        rec.tags.extend(tags);
                    }
                    rec.updated_ms = now;
                    if user.is_some() {
                        rec.last_updated_by = user;
                    }
                    updated += 1;
                    rec
                }
                None => {
                    let (source, source_id, source_type) = record_source(i, r.get("source"))?;
                    inserted += 1;
                    EvalRecord {
                        id: format!("dr-{}", RecordId::new()),
                        inputs: inputs.clone(),
                        outputs: match r.get("outputs") {
                            None => Some(json!({})),
                            Some(Value::Null) => None,
                            Some(o) => Some(o.clone()),
                        },
                        expectations: expectations.map(Value::Object),
                        tags,
                        source,
                        source_id,
                        source_type,
                        created_ms: now,
                        updated_ms: now,
                        created_by: user.clone(),
                        last_updated_by: user,
                    }
                }
            };
            changed.insert(key, record);
        }
        let new_keys = changed.keys().filter(|k| !stored.contains_key(*k)).count();
        if stored.len() + new_keys > MAX_RECORDS {
            return Err(Error::Invalid(format!(
                "a dataset holds at most {MAX_RECORDS} records ({} after this upsert)",
                stored.len() + new_keys
            )));
        }
        let schema = update_schema(ds.schema.as_deref(), records);
        let mut entries: Vec<(String, Option<String>)> = changed
            .iter()
            .map(|(k, r)| (k.clone(), Some(json_text(r))))
            .collect();
        stored.extend(changed);
        let count = stored.len();
        let st = State {
            last_update_ms: now.max(ds.last_update_ms),
            last_updated_by: updated_by,
            schema: schema.or(ds.schema.clone()),
            profile: if count > 0 {
                Some(py_dumps(&json!({ "num_records": count })))
            } else {
                ds.profile.clone()
            },
        };
        entries.push((format!("{}{id}", keys::STATE), Some(json_text(&st))));
        self.catalog_mut().put_team_entries(&entries)?;
        Ok((inserted, updated))
    }

    /// A page of a dataset's records in MLflow's order (creation time, then id), after the
    /// record `after` names (its creation time and id), and the cursor of the next page.
    pub fn eval_records(
        &mut self,
        id: &str,
        max: usize,
        after: Option<(i64, String)>,
    ) -> Result<RecordPage, Error> {
        self.eval_dataset(id)?;
        let mut all: Vec<EvalRecord> = self.eval_records_all(id)?.into_values().collect();
        all.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        let mut page: Vec<EvalRecord> = all
            .into_iter()
            .filter(|r| match &after {
                Some((t, rid)) => (r.created_ms, &r.id) > (*t, rid),
                None => true,
            })
            .take(max.saturating_add(1))
            .collect();
        let next = if page.len() > max {
            page.truncate(max);
            page.last().map(|r| (r.created_ms, r.id.clone()))
        } else {
            None
        };
        Ok((page, next))
    }

    /// Deletes records by id; answers how many there were. The profile counts them off as
    /// MLflow's does (to `null` when none is left).
    pub fn delete_eval_records(&mut self, id: &str, record_ids: &[String]) -> Result<usize, Error> {
        let ds = self.eval_dataset(id)?;
        let wanted: BTreeSet<&str> = record_ids.iter().map(String::as_str).collect();
        let gone: Vec<String> = self
            .eval_records_all(id)?
            .into_iter()
            .filter(|(_, r)| wanted.contains(r.id.as_str()))
            .map(|(k, _)| k)
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        let before = ds
            .profile
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .and_then(|p| p.get("num_records").and_then(Value::as_u64))
            .unwrap_or(0) as usize;
        let left = before.saturating_sub(gone.len());
        let st = State {
            last_update_ms: ds.last_update_ms,
            last_updated_by: ds.last_updated_by.clone(),
            schema: ds.schema.clone(),
            profile: Some(if left > 0 {
                py_dumps(&json!({ "num_records": left }))
            } else {
                "null".to_owned()
            }),
        };
        let mut entries: Vec<(String, Option<String>)> =
            gone.iter().map(|k| (k.clone(), None)).collect();
        entries.push((format!("{}{id}", keys::STATE), Some(json_text(&st))));
        self.catalog_mut().put_team_entries(&entries)?;
        Ok(gone.len())
    }
}

/// A record's source as MLflow's `DatasetRecordSource.from_dict` reads it: its type
/// (upper-cased, one of MLflow's), its data, and the id it names (a trace's id, else
/// `source_id`).
fn record_source(i: usize, source: Option<&Value>) -> Result<RecordSource, Error> {
    let s = match source {
        None | Some(Value::Null) => return Ok((None, None, None)),
        Some(Value::Object(s)) if s.is_empty() => return Ok((None, None, None)),
        Some(Value::Object(s)) => s,
        Some(_) => {
            return Err(Error::Invalid(format!(
                "the source of record {i} is not a JSON object"
            )));
        }
    };
    if let Some(k) = s
        .keys()
        .find(|k| *k != "source_type" && *k != "source_data")
    {
        return Err(Error::Invalid(format!(
            "the source of record {i} has a field '{k}' (a source has source_type and source_data)"
        )));
    }
    let kind = s
        .get("source_type")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Invalid(format!("the source of record {i} needs a source_type")))?
        .to_uppercase();
    const KINDS: [&str; 5] = ["UNSPECIFIED", "TRACE", "HUMAN", "DOCUMENT", "CODE"];
    if !KINDS.contains(&kind.as_str()) {
        return Err(Error::Invalid(format!(
            "Invalid dataset record source type: {kind}. Valid source types: \
             ['UNSPECIFIED', 'TRACE', 'HUMAN', 'DOCUMENT', 'CODE']"
        )));
    }
    let data = match s.get("source_data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(d)) => d.clone(),
        Some(_) => {
            return Err(Error::Invalid(format!(
                "the source_data of record {i} is not a JSON object"
            )));
        }
    };
    let id_key = if kind == "TRACE" {
        "trace_id"
    } else {
        "source_id"
    };
    let source_id = data.get(id_key).and_then(Value::as_str).map(str::to_owned);
    Ok((
        Some(json!({ "source_type": kind, "source_data": data })),
        source_id,
        Some(kind),
    ))
}

/// MLflow's `_update_dataset_schema`: the first type seen of each input, output and
/// expectation field, added to the schema there was.
fn update_schema(existing: Option<&str>, records: &[Value]) -> Option<String> {
    if records.is_empty() && existing.is_none() {
        return None;
    }
    let mut schema = existing
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .filter(Value::is_object)
        .unwrap_or_else(
            || json!({"inputs": {}, "outputs": {}, "expectations": {}, "version": "1.0"}),
        );
    let add = |schema: &mut Value, part: &str, fields: &Map<String, Value>| {
        if let Some(Value::Object(m)) = schema.get_mut(part) {
            for (k, v) in fields {
                m.entry(k.clone())
                    .or_insert_with(|| Value::String(field_type(v).into()));
            }
        }
    };
    for r in records {
        if let Some(Value::Object(i)) = r.get("inputs") {
            add(&mut schema, "inputs", i);
        }
        match r.get("outputs") {
            None | Some(Value::Null) => {}
            Some(Value::Object(o)) => {
                if schema.get("outputs").is_some_and(Value::is_object) {
                    add(&mut schema, "outputs", o);
                }
            }
            Some(other) => {
                let empty = match schema.get("outputs") {
                    Some(Value::Object(m)) => m.is_empty(),
                    Some(Value::String(s)) => s.is_empty(),
                    _ => true,
                };
                if empty {
                    schema["outputs"] = Value::String(field_type(other).into());
                }
            }
        }
        if let Some(Value::Object(e)) = r.get("expectations") {
            add(&mut schema, "expectations", e);
        }
    }
    Some(py_dumps(&schema))
}

// ---- search filter -------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum OrderKey {
    Name,
    Created,
    Updated,
}

/// MLflow's `order_by` for datasets: `name`, `created_time`, `last_update_time`, each with
/// `ASC` (the default) or `DESC`; none is `created_time DESC`.
fn parse_order(order_by: &[String]) -> Result<Vec<(OrderKey, bool)>, Error> {
    if order_by.is_empty() {
        return Ok(vec![(OrderKey::Created, false)]);
    }
    if order_by.len() > MAX_COMPARISONS {
        return Err(Error::Invalid(format!(
            "at most {MAX_COMPARISONS} order_by clauses ({} given)",
            order_by.len()
        )));
    }
    order_by
        .iter()
        .map(|clause| {
            let words: Vec<&str> = clause.split_whitespace().collect();
            let (field, asc) = match words.as_slice() {
                [f] => (*f, true),
                [f, d] if d.eq_ignore_ascii_case("asc") => (*f, true),
                [f, d] if d.eq_ignore_ascii_case("desc") => (*f, false),
                _ => {
                    return Err(Error::Invalid(format!(
                        "Invalid order_by clause '{clause}'. Could not be parsed."
                    )));
                }
            };
            let key = match field {
                "name" => OrderKey::Name,
                "created_time" => OrderKey::Created,
                "last_update_time" => OrderKey::Updated,
                other => {
                    return Err(Error::Invalid(format!(
                        "Invalid attribute key '{other}' specified. Valid keys are: \
                         {{'created_time', 'last_update_time', 'name'}}"
                    )));
                }
            };
            Ok((key, asc))
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Field {
    Name,
    CreatedBy,
    LastUpdatedBy,
    Created,
    Updated,
    Tag(String),
}

#[derive(Debug)]
enum Cmp {
    Eq(String),
    Ne(String),
    Like(LikePattern),
    In(BTreeSet<String>),
    Order(&'static str, String),
    Num(&'static str, i64),
}

#[derive(Debug)]
struct Condition {
    field: Field,
    cmp: Cmp,
}

impl Condition {
    fn matches(&self, d: &EvalDataset) -> bool {
        let text: Option<&str> = match &self.field {
            Field::Name => Some(&d.name),
            Field::CreatedBy => d.created_by.as_deref(),
            Field::LastUpdatedBy => d.last_updated_by.as_deref(),
            Field::Tag(k) => d.tags.get(k).map(String::as_str),
            Field::Created | Field::Updated => None,
        };
        let number = match self.field {
            Field::Created => d.created_ms,
            _ => d.last_update_ms,
        };
        match &self.cmp {
            // SQL: a missing value (NULL) matches no comparison.
            Cmp::Eq(v) => text == Some(v.as_str()),
            Cmp::Ne(v) => text.is_some_and(|t| t != v),
            Cmp::Like(p) => text.is_some_and(|t| p.matches(t)),
            Cmp::In(vs) => text.is_some_and(|t| vs.contains(t)),
            Cmp::Order(op, v) => text.is_some_and(|t| match *op {
                "<" => t < v.as_str(),
                "<=" => t <= v.as_str(),
                ">" => t > v.as_str(),
                _ => t >= v.as_str(),
            }),
            Cmp::Num(op, v) => match *op {
                "=" => number == *v,
                "!=" => number != *v,
                "<" => number < *v,
                "<=" => number <= *v,
                ">" => number > *v,
                _ => number >= *v,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokens(filter: &str) -> Result<Vec<Tok>, Error> {
    let chars: Vec<char> = filter.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '(' || c == ')' || c == ',' {
            out.push(match c {
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                _ => Tok::Comma,
            });
            i += 1;
        } else if c == '\'' || c == '"' {
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(Error::Invalid(format!(
                            "Invalid filter string '{filter}': a string is not closed"
                        )));
                    }
                    // SQL's doubled quote stands for one.
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        s.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&q) => {
                        s.push(q);
                        i += 1;
                    }
                }
            }
            out.push(Tok::Str(s));
        } else if c == '`' {
            let start = i + 1;
            let end = chars[start..]
                .iter()
                .position(|&x| x == '`')
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "Invalid filter string '{filter}': a backquoted name is not closed"
                    ))
                })?;
            let name: String = chars[start..start + end].iter().collect();
            i = start + end + 1;
            // `tags.`a b`` continues an identifier.
            match out.last_mut() {
                Some(Tok::Ident(prev)) if prev.ends_with('.') => prev.push_str(&name),
                _ => out.push(Tok::Ident(name)),
            }
        } else if "=!<>".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = if ["!=", "<=", ">=", "<>"].contains(&two.as_str()) {
                i += 2;
                if two == "<>" { "!=".to_owned() } else { two }
            } else if c == '!' {
                return Err(Error::Invalid(format!(
                    "Invalid filter string '{filter}': '!' must be followed by '='"
                )));
            } else {
                i += 1;
                c.to_string()
            };
            out.push(Tok::Op(op));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let upper = word.to_uppercase();
            if ["LIKE", "ILIKE", "IN"].contains(&upper.as_str()) {
                out.push(Tok::Op(upper));
            } else if upper == "NOT" && matches!(out.last(), Some(Tok::Ident(_))) {
                out.push(Tok::Op("NOT".into()));
            } else {
                out.push(Tok::Ident(word));
            }
        } else {
            return Err(Error::Invalid(format!(
                "Invalid filter string '{filter}': unexpected character '{c}'"
            )));
        }
    }
    Ok(out)
}

fn field_of(name: &str) -> Result<Field, Error> {
    if let Some(tag) = name.strip_prefix("tags.") {
        return Ok(Field::Tag(tag.to_owned()));
    }
    if let Some((entity, _)) = name.split_once('.') {
        return Err(Error::Invalid(format!(
            "Invalid identifier token '{entity}' specified"
        )));
    }
    Ok(match name {
        "name" => Field::Name,
        "created_by" => Field::CreatedBy,
        "last_updated_by" => Field::LastUpdatedBy,
        "created_time" => Field::Created,
        "last_update_time" => Field::Updated,
        other => {
            return Err(Error::Invalid(format!(
                "Invalid attribute key '{other}' specified. Valid keys are: {{'created_by', \
                 'created_time', 'last_update_time', 'last_updated_by', 'name'}}"
            )));
        }
    })
}

/// MLflow's filter for datasets: comparisons joined by `AND` — `name = 'x'`,
/// `name IN ('a', 'b')`, `name LIKE 'qa-%'`, `tags.team = 'ml'`, `created_by != 'bob'`,
/// `created_time > 1700000000000` — worded as MLflow's server refuses the rest.
fn parse_filter(filter: &str) -> Result<Vec<Condition>, Error> {
    if filter.len() > MAX_FILTER {
        return Err(Error::Invalid(format!(
            "the filter is {} bytes long (at most {MAX_FILTER})",
            filter.len()
        )));
    }
    let toks = tokens(filter)?;
    let mut out = Vec::new();
    let mut i = 0;
    let bad = |why: &str| Error::Invalid(format!("Invalid filter string '{filter}': {why}"));
    while i < toks.len() {
        if !out.is_empty() {
            match toks.get(i) {
                Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("and") => i += 1,
                _ => return Err(bad("comparisons must be joined by AND")),
            }
        }
        if out.len() == MAX_COMPARISONS {
            return Err(bad(&format!("more than {MAX_COMPARISONS} comparisons")));
        }
        let Some(Tok::Ident(name)) = toks.get(i) else {
            return Err(bad(
                "expected a field name (name, tags.KEY, created_time, …)",
            ));
        };
        let field = field_of(name)?;
        let numeric = matches!(field, Field::Created | Field::Updated);
        let Some(Tok::Op(op)) = toks.get(i + 1) else {
            return Err(bad(&format!("expected a comparison after '{name}'")));
        };
        i += 2;
        if op == "NOT" {
            return Err(bad("NOT is not supported"));
        }
        let cmp = if op == "IN" {
            if field != Field::Name {
                return Err(Error::Invalid(format!(
                    "Invalid comparator for {}: IN",
                    if numeric {
                        "numeric attribute"
                    } else if matches!(field, Field::Tag(_)) {
                        "tag"
                    } else {
                        "string attribute"
                    }
                )));
            }
            if toks.get(i) != Some(&Tok::LParen) {
                return Err(bad("IN takes a parenthesised list of strings"));
            }
            i += 1;
            let mut values = BTreeSet::new();
            loop {
                match toks.get(i) {
                    Some(Tok::Str(s)) => {
                        if values.len() == MAX_IN_VALUES {
                            return Err(bad(&format!("more than {MAX_IN_VALUES} values in IN")));
                        }
                        values.insert(s.clone());
                        i += 1;
                    }
                    _ => return Err(bad("IN takes a parenthesised list of strings")),
                }
                match toks.get(i) {
                    Some(Tok::Comma) => i += 1,
                    Some(Tok::RParen) => {
                        i += 1;
                        break;
                    }
                    _ => return Err(bad("IN takes a parenthesised list of strings")),
                }
            }
            Cmp::In(values)
        } else if numeric {
            let shown = match toks.get(i) {
                Some(Tok::Num(n)) => n.clone(),
                Some(Tok::Str(s)) => {
                    return Err(Error::Invalid(format!(
                        "Expected numeric value type for numeric attribute: {name}. Found {}",
                        cairn_model::py_repr(s)
                    )));
                }
                _ => return Err(bad(&format!("expected a number after '{name} {op}'"))),
            };
            i += 1;
            if !["=", "!=", "<", "<=", ">", ">="].contains(&op.as_str()) {
                return Err(Error::Invalid(format!(
                    "Invalid comparator for numeric attribute: {op}"
                )));
            }
            let v = shown.parse::<i64>().map_err(|_| {
                Error::Invalid(format!(
                    "Invalid value for numeric attribute '{name}': '{shown}'"
                ))
            })?;
            let op: &'static str = match op.as_str() {
                "=" => "=",
                "!=" => "!=",
                "<" => "<",
                "<=" => "<=",
                ">" => ">",
                _ => ">=",
            };
            Cmp::Num(op, v)
        } else {
            let Some(Tok::Str(v)) = toks.get(i) else {
                return Err(bad(&format!(
                    "expected a quoted string after '{name} {op}'"
                )));
            };
            i += 1;
            match op.as_str() {
                "=" => Cmp::Eq(v.clone()),
                "!=" => Cmp::Ne(v.clone()),
                "LIKE" | "ILIKE" => {
                    let p = if op == "LIKE" {
                        LikePattern::case_sensitive(v)
                    } else {
                        LikePattern::case_insensitive(v)
                    }
                    .map_err(|e| bad(&e.to_string()))?;
                    Cmp::Like(p)
                }
                // MLflow's SQL compares a string attribute (not a tag) in order too.
                "<" | "<=" | ">" | ">=" if !matches!(field, Field::Tag(_)) => {
                    let op: &'static str = match op.as_str() {
                        "<" => "<",
                        "<=" => "<=",
                        ">" => ">",
                        _ => ">=",
                    };
                    Cmp::Order(op, v.clone())
                }
                other => {
                    let what = if matches!(field, Field::Tag(_)) {
                        "tag"
                    } else {
                        "string attribute"
                    };
                    return Err(Error::Invalid(format!(
                        "Invalid comparator for {what}: {other}"
                    )));
                }
            }
        };
        out.push(Condition { field, cmp });
    }
    Ok(out)
}

impl Workspace {
    /// Creates an evaluation dataset with tags, linked to experiments.
    pub fn create_eval_dataset(
        &self,
        name: &str,
        tags: &[(String, String)],
        experiments: &[ExperimentId],
    ) -> Result<EvalDataset, Error> {
        self.write("create_eval_dataset", |s| {
            s.create_eval_dataset(name, tags, experiments)
        })
    }

    pub fn eval_dataset(&self, id: &str) -> Result<EvalDataset, Error> {
        self.read("eval_dataset", |s| s.eval_dataset(id))
    }

    /// Deletes a dataset (a tombstone); `false` when there was none.
    pub fn delete_eval_dataset(&self, id: &str) -> Result<bool, Error> {
        self.write("delete_eval_dataset", |s| s.delete_eval_dataset(id))
    }

    /// One page of the datasets a search finds, and the offset of the next.
    pub fn search_eval_datasets(
        &self,
        search: &EvalDatasetSearch,
    ) -> Result<(Vec<EvalDataset>, Option<usize>), Error> {
        self.read("search_eval_datasets", |s| s.search_eval_datasets(search))
    }

    pub fn set_eval_dataset_tags(
        &self,
        id: &str,
        tags: &[(String, Option<String>)],
    ) -> Result<(), Error> {
        self.write("set_eval_dataset_tags", |s| {
            s.set_eval_dataset_tags(id, tags)
        })
    }

    pub fn delete_eval_dataset_tag(&self, id: &str, key: &str) -> Result<(), Error> {
        self.write("delete_eval_dataset_tag", |s| {
            s.delete_eval_dataset_tag(id, key)
        })
    }

    pub fn add_eval_dataset_experiments(
        &self,
        id: &str,
        experiments: &[ExperimentId],
    ) -> Result<EvalDataset, Error> {
        self.write("add_eval_dataset_experiments", |s| {
            s.add_eval_dataset_experiments(id, experiments)
        })
    }

    pub fn remove_eval_dataset_experiments(
        &self,
        id: &str,
        experiments: &[ExperimentId],
    ) -> Result<EvalDataset, Error> {
        self.write("remove_eval_dataset_experiments", |s| {
            s.remove_eval_dataset_experiments(id, experiments)
        })
    }

    /// Inserts or merges records (see [`Stores::upsert_eval_records`]): (inserted, updated).
    pub fn upsert_eval_records(
        &self,
        id: &str,
        records: &[Value],
    ) -> Result<(usize, usize), Error> {
        self.write("upsert_eval_records", |s| {
            s.upsert_eval_records(id, records)
        })
    }

    pub fn eval_records(
        &self,
        id: &str,
        max: usize,
        after: Option<(i64, String)>,
    ) -> Result<RecordPage, Error> {
        self.read("eval_records", |s| s.eval_records(id, max, after))
    }

    pub fn delete_eval_records(&self, id: &str, record_ids: &[String]) -> Result<usize, Error> {
        self.write("delete_eval_records", |s| {
            s.delete_eval_records(id, record_ids)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws() -> (tempfile::TempDir, Stores) {
        let dir = tempfile::tempdir().unwrap();
        let s = Stores::create(&dir.path().join("ws"), "ann").unwrap();
        (dir, s)
    }

    #[test]
    fn records_merge_by_their_inputs_and_the_dataset_follows() {
        let (_d, mut s) = ws();
        let ds = s
            .create_eval_dataset("qa", &[("team".into(), "ml".into())], &[])
            .unwrap();
        assert_eq!(ds.tags["team"], "ml");
        assert_eq!(ds.profile, None);
        let (ins, upd) = s
            .upsert_eval_records(
                &ds.id,
                &[
                    json!({"inputs": {"q": "a", "n": 1}, "expectations": {"x": 1}}),
                    json!({"inputs": {"q": "b"}, "outputs": "out",
                           "source": {"source_type": "trace", "source_data": {"trace_id": "tr-1"}}}),
                ],
            )
            .unwrap();
        assert_eq!((ins, upd), (2, 0));
        // The same inputs in another key order are the same record.
        let (ins, upd) = s
            .upsert_eval_records(
                &ds.id,
                &[
                    json!({"inputs": {"n": 1, "q": "a"}, "expectations": {"y": 2},
                         "tags": {"mlflow.user": "bob"}}),
                ],
            )
            .unwrap();
        assert_eq!((ins, upd), (0, 1));
        let got = s.eval_dataset(&ds.id).unwrap();
        assert_eq!(got.profile.as_deref(), Some(r#"{"num_records": 2}"#));
        assert_eq!(got.last_updated_by.as_deref(), Some("bob"));
        let schema: Value = serde_json::from_str(got.schema.as_deref().unwrap()).unwrap();
        assert_eq!(schema["inputs"], json!({"n": "integer", "q": "string"}));
        assert_eq!(schema["outputs"], json!("string"));
        assert_ne!(got.digest, ds.digest);
        let (recs, next) = s.eval_records(&ds.id, 1, None).unwrap();
        assert_eq!(recs.len(), 1);
        let (rest, end) = s.eval_records(&ds.id, 10, next).unwrap();
        assert_eq!((rest.len(), end), (1, None));
        let all: Vec<_> = recs.iter().chain(&rest).collect();
        let a = all.iter().find(|r| r.inputs["q"] == "a").unwrap();
        assert_eq!(a.expectations, Some(json!({"x": 1, "y": 2})));
        assert_eq!(a.outputs, Some(json!({})));
        let b = all.iter().find(|r| r.inputs["q"] == "b").unwrap();
        assert_eq!(b.source_id.as_deref(), Some("tr-1"));
        assert_eq!(b.source_type.as_deref(), Some("TRACE"));
        assert_eq!(
            s.delete_eval_records(&ds.id, &[a.id.clone(), "dr-x".into()])
                .unwrap(),
            1
        );
        assert_eq!(
            s.eval_dataset(&ds.id).unwrap().profile.as_deref(),
            Some(r#"{"num_records": 1}"#)
        );
        assert!(s.delete_eval_dataset(&ds.id).unwrap());
        assert!(!s.delete_eval_dataset(&ds.id).unwrap());
        assert_eq!(
            s.eval_dataset(&ds.id).unwrap_err().code(),
            crate::Code::NotFound
        );
    }

    #[test]
    fn searches_filter_and_order_as_mlflow() {
        let (_d, mut s) = ws();
        let a = s
            .create_eval_dataset("alpha", &[("k".into(), "1".into())], &[])
            .unwrap();
        let b = s.create_eval_dataset("beta", &[], &[]).unwrap();
        let find = |s: &mut Stores, filter: &str, order: &[&str]| -> Vec<String> {
            let search = EvalDatasetSearch {
                filter: filter.into(),
                order_by: order.iter().map(|o| o.to_string()).collect(),
                max_results: 10,
                ..Default::default()
            };
            s.search_eval_datasets(&search)
                .unwrap()
                .0
                .into_iter()
                .map(|d| d.name)
                .collect()
        };
        assert_eq!(find(&mut s, "", &["name DESC"]), ["beta", "alpha"]);
        assert_eq!(find(&mut s, "name = 'alpha'", &[]), ["alpha"]);
        assert_eq!(
            find(&mut s, "name IN ('alpha', 'beta')", &["name"]),
            ["alpha", "beta"]
        );
        assert_eq!(find(&mut s, "name LIKE 'b%'", &[]), ["beta"]);
        assert_eq!(find(&mut s, "tags.k = '1'", &[]), ["alpha"]);
        assert_eq!(
            find(
                &mut s,
                &format!("created_time >= {} AND name != 'alpha'", a.created_ms),
                &[]
            ),
            ["beta"]
        );
        let _ = b;
        for (bad, says) in [
            ("colour = 'x'", "Invalid attribute key 'colour'"),
            ("tags.k > 'x'", "Invalid comparator for tag: >"),
            (
                "created_time LIKE 1",
                "Invalid comparator for numeric attribute: LIKE",
            ),
            (
                "created_time = 'x'",
                "Expected numeric value type for numeric attribute",
            ),
            (
                "created_time = 1.5",
                "Invalid value for numeric attribute 'created_time'",
            ),
            ("name = 'a' OR name = 'b'", "joined by AND"),
            ("name = 'a", "not closed"),
        ] {
            let search = EvalDatasetSearch {
                filter: bad.into(),
                max_results: 1,
                ..Default::default()
            };
            let e = s.search_eval_datasets(&search).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let huge = "name = 'a' AND ".repeat(200) + "name = 'a'";
        let search = EvalDatasetSearch {
            filter: huge,
            max_results: 1,
            ..Default::default()
        };
        assert!(s.search_eval_datasets(&search).is_err());
    }

    #[test]
    fn python_dumps_matches_json_dumps() {
        assert_eq!(
            py_dumps(&json!({"num_records": 3})),
            r#"{"num_records": 3}"#
        );
        assert_eq!(
            py_dumps(&json!(["é", 1.5, null])),
            r#"["\u00e9", 1.5, null]"#
        );
    }
}
