//! MLflow 3's evaluation datasets API (`/api/3.0/mlflow/datasets/…`, what
//! `mlflow.genai.datasets` and `MlflowClient`'s dataset calls send): create, get, delete,
//! search, tags, records (upsert, read by page, delete) and the experiments a dataset is
//! linked to. The rules (records merged by their inputs, the schema and profile MLflow
//! derives) are the workspace's (`cairn_core::EvalDataset`); this module translates MLflow's
//! messages, whose tags and records travel as JSON text inside the JSON body.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::routing::{get, post};
use cairn_core::{EvalDataset, EvalDatasetSearch, Workspace};
use cairn_model::ExperimentId;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::dto::{de_at_most_worded, de_opt_i64};
use super::{JsonBody, MlflowError, Reply, json, max_results, parse, query_lists};
use crate::AppState;

/// Experiment ids in one request, and records in one page (MLflow has no cap on the latter).
const MAX_EXPERIMENT_IDS: usize = 1_000;
const MAX_RECORD_PAGE: i64 = 10_000;
/// Record ids in one deletion.
const MAX_DELETE_IDS: usize = 10_000;

fn exp_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_at_most_worded(d, MAX_EXPERIMENT_IDS, |n| {
        format!("at most {MAX_EXPERIMENT_IDS} experiment_ids are taken in one request ({n} given)")
    })
}

fn record_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_at_most_worded(d, MAX_DELETE_IDS, |n| {
        format!("at most {MAX_DELETE_IDS} dataset_record_ids are taken in one request ({n} given)")
    })
}

#[derive(Deserialize)]
pub(crate) struct CreateDataset {
    name: Option<String>,
    #[serde(default, deserialize_with = "exp_ids")]
    experiment_ids: Vec<String>,
    tags: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct SearchDatasets {
    #[serde(default, deserialize_with = "exp_ids")]
    experiment_ids: Vec<String>,
    filter_string: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

/// The repeated parameters of `datasets/search` as a GET.
pub(crate) const SEARCH_LISTS: &[&str] = &["experiment_ids", "order_by"];

#[derive(Deserialize)]
pub(crate) struct TagsBody {
    tags: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RecordsBody {
    records: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct RecordsQuery {
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct DeleteRecords {
    #[serde(default, deserialize_with = "record_ids")]
    dataset_record_ids: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct Experiments {
    #[serde(default, deserialize_with = "exp_ids")]
    experiment_ids: Vec<String>,
}

/// The dataset a path names.
#[derive(Deserialize)]
struct DatasetPath {
    dataset_id: String,
}

#[derive(Deserialize)]
struct TagPath {
    dataset_id: String,
    key: String,
}

/// Python's `str()` of a JSON value, as MLflow stores a tag value it was given.
fn py_str(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
    }
}

/// A JSON object carried as text (`tags`, MLflow's `json.loads` of the field).
fn json_object(field: &str, text: &str) -> Result<Map<String, Value>, MlflowError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(MlflowError::invalid(format!(
            "Invalid value for parameter '{field}': it must be a JSON object as text"
        ))),
        Err(e) => Err(MlflowError::invalid(format!(
            "Invalid value for parameter '{field}': it is not JSON ({e})"
        ))),
    }
}

/// The experiments MLflow ids name: each must exist, worded as MLflow's store refuses one.
fn experiments(ws: &Workspace, ids: &[String]) -> Result<Vec<ExperimentId>, cairn_core::Error> {
    ids.iter()
        .map(|id| {
            ws.experiment_by_mlflow_id(id).map(|e| e.id).map_err(|e| {
                if e.code() == cairn_core::Code::NotFound {
                    cairn_core::Error::UnknownExperiment(format!("No Experiment with id={id}"))
                } else {
                    e
                }
            })
        })
        .collect()
}

/// An unknown experiment in MLflow's words (the core's message names the experiment only).
fn exp_error(e: MlflowError) -> MlflowError {
    match e.message.strip_prefix("no experiment '") {
        Some(rest) if rest.starts_with("No Experiment with id=") => {
            MlflowError::not_found(rest.trim_end_matches('\''))
        }
        _ => e,
    }
}

/// MLflow's `Dataset` message; `experiment_ids` only where MLflow's answer has them.
fn dataset_json(
    ws: &Workspace,
    d: &EvalDataset,
    with_experiments: bool,
) -> Result<Value, cairn_core::Error> {
    let tags: Map<String, Value> = d
        .tags
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut out = json!({
        "dataset_id": d.id,
        "name": d.name,
        "tags": cairn_core::eval_dataset_py_dumps(&Value::Object(tags)),
        "digest": d.digest,
        "created_time": d.created_ms,
        "last_update_time": d.last_update_ms,
    });
    let o = out.as_object_mut().expect("an object");
    for (k, v) in [
        ("schema", &d.schema),
        ("profile", &d.profile),
        ("created_by", &d.created_by),
        ("last_updated_by", &d.last_updated_by),
    ] {
        if let Some(v) = v {
            o.insert(k.into(), Value::String(v.clone()));
        }
    }
    if with_experiments && !d.experiments.is_empty() {
        let ids = d
            .experiments
            .iter()
            .map(|e| {
                ws.experiment_by_id(*e)
                    .and_then(|e| ws.mlflow_experiment_id(&e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        o.insert("experiment_ids".into(), json!(ids));
    }
    Ok(out)
}

async fn create(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: CreateDataset = parse(b).await?;
    let name = super::required(req.name, "name")?;
    let mut tags = Vec::new();
    if let Some(t) = req.tags.filter(|t| !t.is_empty()) {
        for (k, v) in json_object("tags", &t)? {
            if !v.is_null() {
                tags.push((k, py_str(&v)));
            }
        }
    }
    let ids = req.experiment_ids;
    let out = st
        .write(move |ws| {
            let exps = experiments(ws, &ids)?;
            let d = ws.create_eval_dataset(&name, &tags, &exps)?;
            dataset_json(ws, &d, true)
        })
        .await
        .map_err(|e| exp_error(e.into()))?;
    json(json!({ "dataset": out }))
}

async fn get_dataset(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
) -> Reply {
    let out = st
        .call(move |ws| {
            let d = ws.eval_dataset(&id)?;
            dataset_json(ws, &d, false)
        })
        .await?;
    json(json!({ "dataset": out }))
}

async fn delete_dataset(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
) -> Reply {
    st.write(move |ws| ws.delete_eval_dataset(&id)).await?;
    json(json!({}))
}

async fn search_with(st: AppState, req: SearchDatasets) -> Reply {
    if req.max_results == Some(0) {
        // MLflow's handler reads 0 as "not given", which its store then refuses.
        return Err(MlflowError::invalid(
            "Invalid value None for parameter 'max_results' supplied. It must be a positive integer",
        ));
    }
    let limit = max_results(req.max_results, 1000, super::MAX_SEARCH_RESULTS)?;
    let offset = super::dto::parse_page_token(req.page_token.as_deref())? as usize;
    let (found, next) = st
        .call(move |ws| {
            let search = EvalDatasetSearch {
                // An experiment that does not exist links no dataset.
                experiments: req
                    .experiment_ids
                    .iter()
                    .filter_map(|id| ws.experiment_by_mlflow_id(id).ok().map(|e| e.id))
                    .collect(),
                filter: req.filter_string.unwrap_or_default(),
                order_by: req.order_by,
                max_results: limit,
                offset,
            };
            if !req.experiment_ids.is_empty() && search.experiments.is_empty() {
                return Ok((Vec::new(), None));
            }
            let (found, next) = ws.search_eval_datasets(&search)?;
            let found = found
                .iter()
                .map(|d| dataset_json(ws, d, false))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((found, next))
        })
        .await?;
    let mut out = json!({});
    if !found.is_empty() {
        out["datasets"] = json!(found);
    }
    if let Some(n) = next {
        out["next_page_token"] = super::dto::page_token(Some(n as u64));
    }
    json(out)
}

async fn search(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    search_with(st, parse(b).await?).await
}

async fn search_get(State(st): State<AppState>, uri: Uri) -> Reply {
    search_with(st, query_lists(&uri, SEARCH_LISTS)?).await
}

async fn set_tags(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: TagsBody = parse(b).await?;
    let text = super::required(req.tags, "tags")?;
    let tags: Vec<(String, Option<String>)> = json_object("tags", &text)?
        .into_iter()
        .map(|(k, v)| {
            let v = (!v.is_null()).then(|| py_str(&v));
            (k, v)
        })
        .collect();
    st.write(move |ws| ws.set_eval_dataset_tags(&id, &tags))
        .await?;
    json(json!({}))
}

async fn delete_tag(
    State(st): State<AppState>,
    Path(TagPath {
        dataset_id: id,
        key,
    }): Path<TagPath>,
) -> Reply {
    st.write(move |ws| ws.delete_eval_dataset_tag(&id, &key))
        .await?;
    json(json!({}))
}

async fn upsert_records(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: RecordsBody = parse(b).await?;
    let text = super::required(req.records, "records")?;
    let records = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(r)) => r,
        Ok(_) => {
            return Err(MlflowError::invalid(
                "Invalid value for parameter 'records': it must be a JSON list as text",
            ));
        }
        Err(e) => {
            return Err(MlflowError::invalid(format!(
                "Invalid value for parameter 'records': it is not JSON ({e})"
            )));
        }
    };
    let (inserted, updated) = st
        .write(move |ws| ws.upsert_eval_records(&id, &records))
        .await?;
    json(json!({ "inserted_count": inserted, "updated_count": updated }))
}

/// A records page token: the creation time and id of the last record of the page before.
fn parse_cursor(token: Option<&str>) -> Result<Option<(i64, String)>, MlflowError> {
    let Some(t) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    t.strip_prefix('c')
        .and_then(|r| r.split_once(':'))
        .and_then(|(ms, id)| Some((ms.parse().ok()?, id.to_owned())))
        .map(Some)
        .ok_or_else(|| MlflowError::invalid(format!("invalid page_token '{t}'")))
}

async fn get_records(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
    uri: Uri,
) -> Reply {
    let req: RecordsQuery = super::query(&uri)?;
    let limit = max_results(req.max_results, 1000, MAX_RECORD_PAGE)?;
    let after = parse_cursor(req.page_token.as_deref())?;
    let shown = id.clone();
    let (records, next) = st
        .call(move |ws| ws.eval_records(&id, limit, after))
        .await?;
    let list: Vec<Value> = records.iter().map(|r| r.to_mlflow(&shown)).collect();
    let mut out = json!({ "records": Value::Array(list).to_string() });
    if let Some((ms, rid)) = next {
        out["next_page_token"] = json!(format!("c{ms}:{rid}"));
    }
    json(out)
}

async fn delete_records(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: DeleteRecords = parse(b).await?;
    let n = st
        .write(move |ws| ws.delete_eval_records(&id, &req.dataset_record_ids))
        .await?;
    json(json!({ "deleted_count": n }))
}

async fn experiment_ids(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
) -> Reply {
    let ids = st
        .call(move |ws| {
            // As MLflow: a dataset that does not exist is linked to no experiment.
            let d = match ws.eval_dataset(&id) {
                Ok(d) => d,
                Err(e) if e.code() == cairn_core::Code::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(e),
            };
            d.experiments
                .iter()
                .map(|e| {
                    ws.experiment_by_id(*e)
                        .and_then(|e| ws.mlflow_experiment_id(&e))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    if ids.is_empty() {
        return json(json!({}));
    }
    json(json!({ "experiment_ids": ids }))
}

async fn link(st: AppState, id: String, b: axum::body::Bytes, add: bool) -> Reply {
    let req: Experiments = parse(b).await?;
    let out = st
        .write(move |ws| {
            let d = if add {
                let exps = experiments(ws, &req.experiment_ids)?;
                ws.add_eval_dataset_experiments(&id, &exps)?
            } else {
                // Unlinking an experiment that does not exist is unlinking nothing.
                let exps: Vec<ExperimentId> = req
                    .experiment_ids
                    .iter()
                    .filter_map(|e| ws.experiment_by_mlflow_id(e).ok().map(|e| e.id))
                    .collect();
                ws.remove_eval_dataset_experiments(&id, &exps)?
            };
            dataset_json(ws, &d, false)
        })
        .await
        .map_err(|e| exp_error(e.into()))?;
    json(json!({ "dataset": out }))
}

async fn add_experiments(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
    JsonBody(b): JsonBody,
) -> Reply {
    link(st, id, b, true).await
}

async fn remove_experiments(
    State(st): State<AppState>,
    Path(DatasetPath { dataset_id: id }): Path<DatasetPath>,
    JsonBody(b): JsonBody,
) -> Reply {
    link(st, id, b, false).await
}

pub(crate) fn routes() -> Router<AppState> {
    const D: &str = "/api/3.0/mlflow/datasets";
    Router::new()
        .route(&format!("{D}/create"), post(create))
        .route(&format!("{D}/search"), post(search).get(search_get))
        .route(
            &format!("{D}/{{dataset_id}}"),
            get(get_dataset).delete(delete_dataset),
        )
        .route(
            &format!("{D}/{{dataset_id}}/tags"),
            axum::routing::patch(set_tags),
        )
        .route(
            &format!("{D}/{{dataset_id}}/tags/{{key}}"),
            axum::routing::delete(delete_tag),
        )
        .route(
            &format!("{D}/{{dataset_id}}/records"),
            post(upsert_records).get(get_records).delete(delete_records),
        )
        .route(
            &format!("{D}/{{dataset_id}}/experiment-ids"),
            get(experiment_ids),
        )
        .route(
            &format!("{D}/{{dataset_id}}/add-experiments"),
            post(add_experiments),
        )
        .route(
            &format!("{D}/{{dataset_id}}/remove-experiments"),
            post(remove_experiments),
        )
}
