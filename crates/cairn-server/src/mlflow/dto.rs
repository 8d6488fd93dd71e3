//! MLflow wire types and their conversion to and from Cairn's domain types.
//!
//! MLflow's protobuf JSON writes int64 fields as numbers (or, from some clients, strings) and
//! non-finite doubles as the strings "NaN", "Infinity", "-Infinity": the decoders accept both.

use std::collections::BTreeMap;

use cairn_model::{Experiment, MetricSummary, Run, RunStatus};
use serde::{Deserialize, Deserializer};
use serde_json::{Value, json};

use super::MlflowError;

#[derive(Deserialize)]
#[serde(untagged)]
enum NumOrText {
    Int(i64),
    Float(f64),
    Text(String),
}

pub(crate) fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match Option::<NumOrText>::deserialize(d)? {
        None => None,
        Some(NumOrText::Int(i)) => Some(i),
        Some(NumOrText::Float(f)) if f.fract() == 0.0 && f.is_finite() => Some(f as i64),
        Some(NumOrText::Float(f)) => {
            return Err(serde::de::Error::custom(format!(
                "{f} is not a whole number"
            )));
        }
        Some(NumOrText::Text(t)) => Some(
            t.trim()
                .parse()
                .map_err(|_| serde::de::Error::custom(format!("'{t}' is not a whole number")))?,
        ),
    })
}

/// A list of at most `max` items: decoding stops keeping items past the limit (the rest are
/// only counted, so the error says how many came) and fails naming the limit.
pub(crate) fn de_at_most<'de, D, T>(
    d: D,
    max: usize,
    noun: &'static str,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    de_at_most_worded(d, max, |total| batch_limit(noun, max, total))
}

/// [`de_at_most`] refusing in the words `refusal` gives for the number of items that came.
pub(crate) fn de_at_most_worded<'de, D, T>(
    d: D,
    max: usize,
    refusal: impl Fn(usize) -> String,
) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct AtMost<T, F> {
        max: usize,
        refusal: F,
        item: std::marker::PhantomData<T>,
    }
    impl<'de, T: Deserialize<'de>, F: Fn(usize) -> String> serde::de::Visitor<'de> for AtMost<T, F> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a list of at most {} items", self.max)
        }

        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max));
            while out.len() < self.max {
                match seq.next_element()? {
                    Some(item) => out.push(item),
                    None => return Ok(out),
                }
            }
            let mut total = out.len();
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                total += 1;
            }
            if total > self.max {
                return Err(serde::de::Error::custom(super::decode::verbatim((self
                    .refusal)(
                    total
                ))));
            }
            Ok(out)
        }
    }
    d.deserialize_seq(AtMost {
        max,
        refusal,
        item: std::marker::PhantomData,
    })
}

/// MLflow's refusal of a batch over one of its limits.
pub(crate) fn batch_limit(noun: &str, max: usize, got: usize) -> String {
    format!(
        "A batch logging request can contain at most {max} {noun}. Got {got} {noun}. Please \
         split up {noun} across multiple requests and try again."
    )
}

pub(crate) fn de_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match NumOrText::deserialize(d)? {
        NumOrText::Int(i) => Ok(i as f64),
        NumOrText::Float(f) => Ok(f),
        // The spellings every decoder of Cairn reads (`cairn_model::num`).
        NumOrText::Text(t) => cairn_model::num::parse_text(&t)
            .ok_or_else(|| serde::de::Error::custom(format!("'{t}' is not a number"))),
    }
}

/// A double as MLflow's JSON writes it (`cairn_model::num`'s encoding).
pub(crate) fn f64_json(v: f64) -> Value {
    cairn_core::json_number(v)
}

#[derive(Deserialize, Debug, Clone)]
pub(crate) struct KeyValue {
    pub key: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Deserialize, Debug, Clone)]
pub(crate) struct MetricIn {
    pub key: String,
    #[serde(deserialize_with = "de_f64")]
    pub value: f64,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    pub step: Option<i64>,
    /// MLflow 3: the logged model the value measured, and the dataset it was measured on
    /// (`mlflow.evaluate` sends both).
    #[serde(default)]
    pub model_id: Option<String>,
    #[serde(default)]
    pub dataset_name: Option<String>,
    #[serde(default)]
    pub dataset_digest: Option<String>,
}

pub(crate) fn kv_list<'a>(m: impl IntoIterator<Item = (&'a String, &'a String)>) -> Value {
    Value::Array(
        m.into_iter()
            .map(|(k, v)| json!({ "key": k, "value": v }))
            .collect(),
    )
}

/// An experiment as MLflow's clients know it: its MLflow id ("0" for the default experiment)
/// and where its runs' artifacts go — the location it was created with, else the server's
/// artifact proxy (`mlflow-artifacts:/<id>`, what `mlflow server` reports by default).
#[derive(Debug, Clone)]
pub(crate) struct ExpRef {
    pub id: String,
    pub artifact_location: String,
}

impl ExpRef {
    pub(crate) fn new(id: String, artifact_location: Option<String>) -> ExpRef {
        let artifact_location =
            artifact_location.unwrap_or_else(|| format!("mlflow-artifacts:/{id}"));
        ExpRef {
            id,
            artifact_location,
        }
    }

    /// Where the artifacts of `run` go: MLflow's `append_to_uri_path(location, run, "artifacts")`.
    pub(crate) fn run_artifacts(&self, run: &Run) -> String {
        let (base, query) = match self.artifact_location.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (self.artifact_location.as_str(), None),
        };
        let mut uri = format!("{}/{}/artifacts", base.trim_end_matches('/'), run.id);
        if let Some(q) = query {
            uri.push('?');
            uri.push_str(q);
        }
        uri
    }
}

/// An experiment as MLflow's message.
pub(crate) fn experiment(e: &Experiment, exp: &ExpRef) -> Value {
    json!({
        "experiment_id": exp.id,
        "name": e.name,
        "artifact_location": exp.artifact_location,
        "lifecycle_stage": if e.deleted { "deleted" } else { "active" },
        "creation_time": e.created_ms,
        "last_update_time": e.created_ms,
        "tags": kv_list(&e.tags),
        "workspace": "default",
    })
}

pub(crate) fn status_out(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "RUNNING",
        RunStatus::Finished => "FINISHED",
        RunStatus::Failed => "FAILED",
        RunStatus::Killed => "KILLED",
    }
}

pub(crate) fn status_in(s: &str) -> Result<RunStatus, MlflowError> {
    match s {
        "RUNNING" | "SCHEDULED" => Ok(RunStatus::Running),
        "FINISHED" => Ok(RunStatus::Finished),
        "FAILED" => Ok(RunStatus::Failed),
        "KILLED" => Ok(RunStatus::Killed),
        other => Err(MlflowError::invalid(format!(
            "unknown run status '{other}': expected RUNNING, SCHEDULED, FINISHED, FAILED or KILLED"
        ))),
    }
}

pub(crate) fn run_info(run: &Run, exp: &ExpRef) -> Value {
    json!({
        "run_id": run.id.to_string(),
        "run_uuid": run.id.to_string(),
        "run_name": run.name,
        "experiment_id": exp.id,
        "user_id": run.owner.clone().unwrap_or_default(),
        "status": status_out(run.status),
        "start_time": run.start_ms,
        "end_time": run.end_ms,
        "artifact_uri": exp.run_artifacts(run),
        "lifecycle_stage": if run.deleted { "deleted" } else { "active" },
    })
}

fn metrics_json(metrics: &BTreeMap<String, MetricSummary>) -> Value {
    Value::Array(
        metrics
            .iter()
            .map(|(k, m)| json!({ "key": k, "value": f64_json(m.last), "timestamp": m.ts_ms, "step": m.step }))
            .collect(),
    )
}

/// A dataset of the run's lineage as MLflow's `DatasetInput`: what an MLflow client logged
/// reads back as it was sent (source, schema, profile, tags); a dataset Cairn recorded itself
/// shows its uri as the source and its row count as the profile, and its role as the context
/// when the role is not just its name.
pub(crate) fn dataset_input(role: &str, d: &cairn_model::DatasetSnapshot) -> Value {
    let name = d.name.clone().unwrap_or_else(|| role.to_owned());
    let context = d
        .context
        .clone()
        .or_else(|| (role != name).then(|| role.to_owned()));
    let mut tags: Vec<Value> = context
        .map(|c| json!({ "key": "mlflow.data.context", "value": c }))
        .into_iter()
        .collect();
    tags.extend(kv_list(&d.tags).as_array().into_iter().flatten().cloned());
    let source = d
        .source
        .clone()
        .unwrap_or_else(|| json!({ "uri": d.uri.clone().unwrap_or_default() }).to_string());
    let mut dataset = json!({
        "name": name,
        "digest": d.digest.clone().unwrap_or_default(),
        "source_type": d.source_type.clone().unwrap_or_else(|| "external".into()),
        "source": source,
    });
    if let Some(schema) = d.schema.clone().filter(|s| !s.is_empty()) {
        dataset["schema"] = json!(schema);
    }
    let profile = d
        .profile
        .clone()
        .or_else(|| d.rows.map(|r| json!({ "num_rows": r }).to_string()));
    if let Some(profile) = profile {
        dataset["profile"] = json!(profile);
    }
    json!({ "tags": tags, "dataset": dataset })
}

/// A run as MLflow's `Run` message.
pub(crate) fn run(run: &Run, exp: &ExpRef) -> Value {
    let mut tags = run.tags.clone();
    tags.entry("mlflow.runName".into())
        .or_insert_with(|| run.name.clone());
    if let Some(o) = &run.owner {
        tags.entry("mlflow.user".into())
            .or_insert_with(|| o.clone());
    }
    // The notes, as they are now (edited anywhere, merged from peers), not as a client last
    // sent them.
    if run.notes.is_empty() {
        tags.remove(cairn_core::NOTE_TAG);
    } else {
        tags.insert(cairn_core::NOTE_TAG.into(), run.notes.clone());
    }
    let inputs: Vec<Value> = run
        .lineage
        .datasets
        .iter()
        .map(|(role, d)| dataset_input(role, d))
        .collect();
    json!({
        "info": run_info(run, exp),
        "data": {
            "metrics": metrics_json(&run.metrics),
            "params": kv_list(&run.params),
            "tags": kv_list(&tags),
        },
        "inputs": { "dataset_inputs": inputs },
    })
}

/// An opaque page token: the offset of the next page.
pub(crate) fn page_token(next: Option<u64>) -> Value {
    match next {
        Some(n) => json!(format!("o{n}")),
        None => Value::Null,
    }
}

pub(crate) fn parse_page_token(token: Option<&str>) -> Result<u64, MlflowError> {
    match token.filter(|t| !t.is_empty()) {
        None => Ok(0),
        Some(t) => t
            .strip_prefix('o')
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| MlflowError::invalid(format!("invalid page_token '{t}'"))),
    }
}
