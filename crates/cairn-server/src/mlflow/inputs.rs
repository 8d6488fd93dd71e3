//! Dataset inputs (`runs/log-inputs`, what `mlflow.log_input` sends): each dataset becomes part
//! of the run's lineage, under the role the workspace gives it (its context, else its name). The
//! source, profile and input tags are kept as the client sent them, so they read back exactly;
//! fields over MLflow's lengths are refused in its words before anything is stored.
//! `experiments/search-datasets` (the web UI's dataset list) summarises the datasets the runs of
//! some experiments used.

use std::collections::BTreeMap;

use axum::extract::State;
use cairn_model::DatasetSnapshot;
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::KeyValue;
use super::{JsonBody, MlflowError, Reply, RunRef, json, parse, write_run};
use crate::AppState;
use cairn_core::Lifecycle;

/// MLflow's limits on a dataset input's fields (`mlflow.utils.validation`), in characters.
const MAX_NAME: usize = 500;
const MAX_DIGEST: usize = 36;
const MAX_SOURCE: usize = 65_535;
const MAX_SCHEMA: usize = 1_048_575;
const MAX_PROFILE: usize = 16_777_215;
const MAX_TAG_KEY: usize = 255;
const MAX_TAG_VALUE: usize = 500;

/// The input tag that names what the run used the dataset for.
const CONTEXT_TAG: &str = "mlflow.data.context";

#[derive(Deserialize)]
pub(crate) struct DatasetIn {
    name: Option<String>,
    digest: Option<String>,
    source_type: Option<String>,
    source: Option<String>,
    schema: Option<String>,
    profile: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DatasetInput {
    dataset: DatasetIn,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

#[derive(Deserialize)]
pub(crate) struct LogInputs {
    run_id: Option<String>,
    run_uuid: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetInput>,
    /// MLflow 3: logged models the run took as input (`[{model_id}]`).
    #[serde(default)]
    models: Vec<super::logged_models::ModelInput>,
}

/// The uri inside MLflow's source JSON (`{"uri": …}`, `{"url": …}`, `{"path": …}`), or the text.
fn source_uri(source: &str) -> String {
    serde_json::from_str::<Value>(source)
        .ok()
        .and_then(|v| {
            ["uri", "url", "path", "table_name", "delta_table_name"]
                .iter()
                .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
        })
        .unwrap_or_else(|| source.to_owned())
}

/// MLflow's `exceeds_maximum_length` refusal when `value` is longer than `max` characters.
fn at_most(field: &str, value: Option<&str>, max: usize) -> Result<(), MlflowError> {
    match value {
        Some(v) if v.len() > max && v.chars().count() > max => Err(MlflowError::invalid(format!(
            "'{field}' exceeds the maximum length of {max} characters"
        ))),
        _ => Ok(()),
    }
}

/// Checks an input as MLflow's store does, in its order: the dataset's fields, then its tags.
fn check(input: &DatasetInput) -> Result<(), MlflowError> {
    let d = &input.dataset;
    at_most("name", d.name.as_deref(), MAX_NAME)?;
    at_most("digest", d.digest.as_deref(), MAX_DIGEST)?;
    at_most("source", d.source.as_deref(), MAX_SOURCE)?;
    at_most("schema", d.schema.as_deref(), MAX_SCHEMA)?;
    at_most("profile", d.profile.as_deref(), MAX_PROFILE)?;
    for t in &input.tags {
        at_most("key", Some(&t.key), MAX_TAG_KEY)?;
        at_most("value", Some(&t.value), MAX_TAG_VALUE)?;
    }
    Ok(())
}

/// A dataset input as a snapshot of the run's lineage (its context from the
/// `mlflow.data.context` tag, its row count from the profile).
fn snapshot(input: DatasetInput) -> Result<DatasetSnapshot, MlflowError> {
    let d = input.dataset;
    let name = d
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| MlflowError::invalid("a dataset input needs a name"))?;
    let mut context = None;
    let mut tags = BTreeMap::new();
    for t in input.tags {
        if t.key == CONTEXT_TAG {
            context = Some(t.value);
        } else {
            tags.insert(t.key, t.value);
        }
    }
    let rows = d
        .profile
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|p| p.get("num_rows").and_then(Value::as_u64));
    Ok(DatasetSnapshot {
        name: Some(name),
        context,
        uri: d.source.as_deref().map(source_uri),
        digest: d.digest.filter(|x| !x.is_empty()),
        size_bytes: None,
        rows,
        source_type: d.source_type,
        schema: d.schema.filter(|s| !s.is_empty()),
        source: d.source,
        profile: d.profile.filter(|p| !p.is_empty()),
        tags,
    })
}

pub(crate) async fn log_inputs(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogInputs = parse(b).await?;
    for input in &req.datasets {
        check(input)?;
    }
    let inputs = req
        .datasets
        .into_iter()
        .map(snapshot)
        .collect::<Result<Vec<_>, _>>()?;
    let run = RunRef::new(req.run_id, req.run_uuid);
    let models = super::logged_models::model_inputs(&req.models)?;
    write_run(&st, &run, move |ws, id| {
        // As MLflow's store: a dataset (name and digest) is an input of a run once; a second
        // input of it, in this request or after an earlier one, is passed over.
        let key = |d: &DatasetSnapshot| (d.name.clone(), d.digest.clone().unwrap_or_default());
        let mut seen: std::collections::HashSet<_> =
            ws.run(id)?.run.lineage.datasets.values().map(key).collect();
        let inputs: Vec<_> = inputs.into_iter().filter(|d| seen.insert(key(d))).collect();
        ws.add_dataset_inputs(id, inputs)?;
        ws.log_model_inputs(id, &models)
    })
    .await?;
    json(json!({}))
}

/// MLflow's limits on `experiments/search-datasets`: experiments per request, summaries.
const MAX_SEARCH_EXPERIMENTS: usize = 20;
const MAX_DATASET_SUMMARIES: usize = 1000;
/// Runs read per step while summarising.
const SUMMARY_PAGE: usize = 1000;

#[derive(Deserialize)]
pub(crate) struct SearchDatasets {
    #[serde(default, deserialize_with = "search_experiment_ids")]
    experiment_ids: Vec<String>,
}

/// At most 20 ids are kept while decoding; more are counted and refused in MLflow's words.
fn search_experiment_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    super::dto::de_at_most_worded(d, MAX_SEARCH_EXPERIMENTS, |n| {
        format!(
            "SearchDatasets request cannot specify more than {MAX_SEARCH_EXPERIMENTS} \
             experiment_ids. Received {n} experiment_ids."
        )
    })
}

/// The datasets the runs of some experiments used: each (experiment, name, digest, context)
/// once, up to MLflow's 1,000; experiments that do not exist are passed over, as MLflow does.
pub(crate) async fn search_datasets(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: SearchDatasets = parse(b).await?;
    if req.experiment_ids.is_empty() {
        return Err(MlflowError::invalid(
            "SearchDatasets request must specify at least one experiment_id.",
        ));
    }
    let summaries = st
        .call(move |ws| {
            let mut seen = std::collections::HashSet::new();
            let mut out = Vec::new();
            'experiments: for mlflow_id in &req.experiment_ids {
                let exp = match ws.experiment_by_mlflow_id(mlflow_id) {
                    Ok(e) => e,
                    Err(e) if e.code() == cairn_core::Code::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let mut offset = 0;
                loop {
                    let (runs, next) = ws.search_runs(
                        "",
                        &[],
                        vec![exp.id],
                        Lifecycle::All,
                        SUMMARY_PAGE,
                        offset,
                    )?;
                    for run in &runs {
                        for (role, d) in &run.lineage.datasets {
                            let input = super::dto::dataset_input(role, d);
                            let context = input["tags"]
                                .as_array()
                                .and_then(|t| t.iter().find(|t| t["key"] == CONTEXT_TAG))
                                .map(|t| t["value"].clone());
                            let summary = json!({
                                "experiment_id": mlflow_id,
                                "name": input["dataset"]["name"],
                                "digest": input["dataset"]["digest"],
                            });
                            let mut summary = summary;
                            if let Some(c) = context {
                                summary["context"] = c;
                            }
                            if seen.insert(summary.to_string()) {
                                out.push(summary);
                                if out.len() == MAX_DATASET_SUMMARIES {
                                    break 'experiments;
                                }
                            }
                        }
                    }
                    match next {
                        Some(n) => offset = n as usize,
                        None => break,
                    }
                }
            }
            Ok(out)
        })
        .await?;
    if summaries.is_empty() {
        return json(json!({}));
    }
    json(json!({ "dataset_summaries": summaries }))
}
