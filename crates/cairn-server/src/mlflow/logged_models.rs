//! MLflow 3's logged models (`/api/2.0/mlflow/logged-models/…`, `runs/outputs`): create, get,
//! finalize, delete, search, tags, params, artifact listings, and the model's files through
//! the `mlflow-artifacts` proxy (`<experiment>/models/<model_id>/artifacts/<path>`, the
//! location `create` answers) and the web UI's `/ajax-api/…/artifacts/files`. Answers follow
//! MLflow's server field for field; refusals carry its codes and, where it has them, its
//! words. The rules are the workspace's (`cairn_core::Workspace::create_logged_model`…).

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::routing::{get, patch, post};
use cairn_core::{
    LoggedModelSearch, ModelMetricValue, ModelOrderKey, NewLoggedModel, RunModelLink, Workspace,
};
use cairn_model::{
    ExperimentId, LoggedModel, LoggedModelId, LoggedModelMetric, LoggedModelStatus, RunId,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::decode::{SEE_DOCS, invalid_value, missing, required, wrong_type};
use super::dto::{self, KeyValue, f64_json};
use super::{JsonBody, MlflowError, Reply, json, parse, parse_run_id, query, run_not_found};
use crate::{AppState, CallError, stream};

const API: &str = "/api/2.0/mlflow";

pub(crate) fn routes() -> Router<AppState> {
    let r = |path: &str| format!("{API}/{path}");
    Router::new()
        .route(&r("logged-models"), post(create))
        .route(&r("logged-models/search"), post(search))
        .route(
            &r("logged-models/{model_id}"),
            get(get_model).patch(finalize).delete(delete_model),
        )
        .route(&r("logged-models/{model_id}/tags"), patch(set_tags))
        .route(
            &r("logged-models/{model_id}/tags/{*tag_key}"),
            axum::routing::delete(delete_tag),
        )
        .route(&r("logged-models/{model_id}/params"), post(log_params))
        .route(
            &r("logged-models/{model_id}/artifacts/directories"),
            get(list_artifacts),
        )
        .route(&r("runs/outputs"), post(log_outputs))
        // The web UI downloads a model's file here (only under /ajax-api in MLflow's server).
        .route(
            "/ajax-api/2.0/mlflow/logged-models/{model_id}/artifacts/files",
            get(download_file),
        )
}

// ---- requests, decoded and refused as MLflow's server refuses them (see `decode`) --------

/// `params` / `tags` of a logged model: `{key, value}` entries, at most
/// `cairn_core::MAX_MODEL_ENTRIES` of them (checked after decoding, naming the list).
fn entries(name: &str, items: Vec<KeyValue>) -> Result<Vec<(String, String)>, MlflowError> {
    if items.len() > cairn_core::MAX_MODEL_ENTRIES {
        return Err(MlflowError::invalid(format!(
            "'{name}' may hold at most {} entries; got {}",
            cairn_core::MAX_MODEL_ENTRIES,
            items.len()
        )));
    }
    Ok(items.into_iter().map(|kv| (kv.key, kv.value)).collect())
}

/// A text that must be there and not empty (as protobuf, MLflow reads "" as unset).
fn given(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

#[derive(Deserialize)]
pub(crate) struct CreateReq {
    experiment_id: Option<String>,
    name: Option<String>,
    model_type: Option<String>,
    source_run_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

/// A status as a client sends it: MLflow's enum name or its number.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum StatusIn {
    Name(String),
    Number(i64),
}

#[derive(Deserialize)]
pub(crate) struct FinalizeReq {
    model_id: Option<String>,
    status: Option<StatusIn>,
}

#[derive(Deserialize)]
pub(crate) struct TagsReq {
    #[serde(default)]
    tags: Vec<KeyValue>,
}

#[derive(Deserialize)]
pub(crate) struct ParamsReq {
    model_id: Option<String>,
    #[serde(default)]
    params: Vec<KeyValue>,
}

#[derive(Deserialize)]
pub(crate) struct DatasetFilter {
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

/// `true`/`false`, or their text as some clients send it.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum Flag {
    Bool(bool),
    Text(String),
}

#[derive(Deserialize)]
pub(crate) struct OrderBy {
    field_name: Option<String>,
    ascending: Option<Flag>,
    dataset_name: Option<String>,
    dataset_digest: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct SearchReq {
    experiment_ids: Option<Vec<String>>,
    filter: Option<String>,
    #[serde(default)]
    datasets: Vec<DatasetFilter>,
    #[serde(default, deserialize_with = "dto::de_opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<OrderBy>,
    page_token: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct ModelOutput {
    model_id: Option<String>,
    #[serde(default, deserialize_with = "dto::de_opt_i64")]
    step: Option<i64>,
}

#[derive(Deserialize)]
pub(crate) struct OutputsReq {
    run_id: Option<String>,
    models: Option<Vec<ModelOutput>>,
}

/// A logged model a run took as input (`runs/log-inputs`' `models: [{model_id}]`).
#[derive(Deserialize)]
pub(crate) struct ModelInput {
    model_id: Option<String>,
}

// ---- answers ---------------------------------------------------------------------------

/// A model id as a path or a body names it; one that cannot be an id is not found, as MLflow
/// says of any id it does not know.
fn model_id(id: &str) -> Result<LoggedModelId, MlflowError> {
    id.parse().map_err(|_| not_found(id))
}

fn not_found(id: &str) -> MlflowError {
    MlflowError::not_found(format!("Logged model with ID '{id}' not found."))
}

fn status_name(s: LoggedModelStatus) -> &'static str {
    match s {
        LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
        LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
        LoggedModelStatus::Failed => "LOGGED_MODEL_UPLOAD_FAILED",
    }
}

/// A status as a client sends it: MLflow's enum name or number.
fn status_in(v: &StatusIn) -> Result<LoggedModelStatus, MlflowError> {
    let (status, shown) = match v {
        StatusIn::Name(s) => (
            match s.as_str() {
                "LOGGED_MODEL_PENDING" => Some(LoggedModelStatus::Pending),
                "LOGGED_MODEL_READY" => Some(LoggedModelStatus::Ready),
                "LOGGED_MODEL_UPLOAD_FAILED" => Some(LoggedModelStatus::Failed),
                _ => None,
            },
            Value::String(s.clone()),
        ),
        StatusIn::Number(n) => (
            match n {
                1 => Some(LoggedModelStatus::Pending),
                2 => Some(LoggedModelStatus::Ready),
                3 => Some(LoggedModelStatus::Failed),
                _ => None,
            },
            Value::from(*n),
        ),
    };
    status.ok_or_else(|| {
        MlflowError::invalid(format!(
            "{}{SEE_DOCS}",
            invalid_value(
                "status",
                &shown,
                Some(
                    "expected LOGGED_MODEL_PENDING, LOGGED_MODEL_READY or \
                     LOGGED_MODEL_UPLOAD_FAILED (1, 2 or 3)."
                )
            )
        ))
    })
}

/// MLflow's ids of experiments, looked up once per request.
#[derive(Default)]
struct ExperimentIds(BTreeMap<ExperimentId, String>);

impl ExperimentIds {
    fn of(&mut self, ws: &Workspace, id: ExperimentId) -> Result<String, cairn_core::Error> {
        if let Some(known) = self.0.get(&id) {
            return Ok(known.clone());
        }
        let mlflow = ws.mlflow_experiment_id(&ws.experiment_by_id(id)?)?;
        self.0.insert(id, mlflow.clone());
        Ok(mlflow)
    }
}

fn metric_json(m: &LoggedModelMetric, model: &LoggedModelId) -> Value {
    let mut v = Map::new();
    v.insert("key".into(), json!(m.key));
    v.insert("value".into(), f64_json(m.value));
    v.insert("timestamp".into(), json!(m.ts_ms));
    v.insert("step".into(), json!(m.step));
    if let Some(d) = &m.dataset_name {
        v.insert("dataset_name".into(), json!(d));
    }
    if let Some(d) = &m.dataset_digest {
        v.insert("dataset_digest".into(), json!(d));
    }
    v.insert("model_id".into(), json!(model.as_str()));
    if let Some(r) = m.run {
        v.insert("run_id".into(), json!(r.to_string()));
    }
    Value::Object(v)
}

/// A logged model as MLflow's `LoggedModel` message (empty lists left out, as its server does).
fn model_json(m: &LoggedModel, experiment_id: &str) -> Value {
    let mut info = Map::new();
    info.insert("model_id".into(), json!(m.id.as_str()));
    info.insert("experiment_id".into(), json!(experiment_id));
    info.insert("name".into(), json!(m.name));
    info.insert("creation_timestamp_ms".into(), json!(m.created_ms));
    info.insert("last_updated_timestamp_ms".into(), json!(m.updated_ms));
    info.insert("artifact_uri".into(), json!(m.artifact_location));
    info.insert("status".into(), json!(status_name(m.status)));
    info.insert(
        "model_type".into(),
        json!(m.model_type.clone().unwrap_or_default()),
    );
    info.insert(
        "source_run_id".into(),
        json!(m.source_run.map(|r| r.to_string()).unwrap_or_default()),
    );
    if let Some(s) = &m.status_message {
        info.insert("status_message".into(), json!(s));
    }
    if !m.tags.is_empty() {
        info.insert("tags".into(), dto::kv_list(&m.tags));
    }
    let mut data = Map::new();
    if !m.params.is_empty() {
        data.insert("params".into(), dto::kv_list(&m.params));
    }
    if !m.metrics.is_empty() {
        data.insert(
            "metrics".into(),
            Value::Array(m.metrics.iter().map(|x| metric_json(x, &m.id)).collect()),
        );
    }
    json!({ "info": Value::Object(info), "data": Value::Object(data) })
}

fn model_answer(ws: &Workspace, m: &LoggedModel) -> Result<Value, cairn_core::Error> {
    let exp = ExperimentIds::default().of(ws, m.experiment)?;
    Ok(json!({ "model": model_json(m, &exp) }))
}

// ---- handlers --------------------------------------------------------------------------

async fn create(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: CreateReq = parse(b).await?;
    let experiment = required(req.experiment_id, "experiment_id")?;
    let name = given(req.name);
    let model_type = given(req.model_type);
    let source_run = given(req.source_run_id);
    let params = entries("params", req.params)?;
    let tags = entries("tags", req.tags)?;
    let no_experiment = format!("No Experiment with id={experiment} exists");
    let exp = st
        .call(move |ws| ws.experiment_by_mlflow_id(&experiment))
        .await
        .map_err(|e| match e {
            CallError::Core(e) if e.code() == cairn_core::Code::NotFound => {
                MlflowError::not_found(no_experiment)
            }
            other => other.into(),
        })?;
    let source_run = match source_run {
        Some(r) => {
            let shown = r.clone();
            Some(
                st.call(move |ws| {
                    let id = parse_run_id(&r)?;
                    ws.run(id).map(|_| id)
                })
                .await
                .map_err(run_not_found(&shown))?,
            )
        }
        None => None,
    };
    let v = st
        .write(move |ws| {
            let m = ws.create_logged_model(NewLoggedModel {
                experiment: exp.id,
                name,
                source_run,
                model_type,
                params,
                tags,
            })?;
            model_answer(ws, &m)
        })
        .await?;
    json(v)
}

async fn get_model(State(st): State<AppState>, Path(id): Path<String>, uri: Uri) -> Reply {
    #[derive(serde::Deserialize)]
    struct Q {
        allow_deleted: Option<String>,
    }
    let q: Q = query(&uri)?;
    let allow_deleted = q
        .allow_deleted
        .is_some_and(|a| a.eq_ignore_ascii_case("true"));
    let mid = model_id(&id)?;
    let v = st
        .call(move |ws| model_answer(ws, &ws.logged_model(&mid, allow_deleted)?))
        .await
        .map_err(MlflowError::from)?;
    json(v)
}

async fn finalize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: FinalizeReq = parse(b).await?;
    required(req.model_id, "model_id")?;
    let status = req.status.ok_or_else(|| missing("status"))?;
    let mid = model_id(&id)?;
    // As MLflow's server: an unknown model is named before a bad status.
    let status = match status_in(&status) {
        Ok(s) => s,
        Err(e) => {
            let known = mid.clone();
            st.call(move |ws| ws.logged_model(&known, false))
                .await
                .map_err(MlflowError::from)?;
            return Err(e);
        }
    };
    let v = st
        .write(move |ws| model_answer(ws, &ws.finalize_logged_model(&mid, status, None)?))
        .await
        .map_err(MlflowError::from)?;
    json(v)
}

async fn delete_model(State(st): State<AppState>, Path(id): Path<String>) -> Reply {
    let mid = model_id(&id)?;
    st.write(move |ws| ws.delete_logged_model(&mid))
        .await
        .map_err(MlflowError::from)?;
    json(json!({}))
}

async fn set_tags(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: TagsReq = parse(b).await?;
    let tags = entries("tags", req.tags)?;
    let mid = model_id(&id)?;
    st.write(move |ws| ws.set_logged_model_tags(&mid, &tags))
        .await
        .map_err(MlflowError::from)?;
    json(json!({}))
}

async fn delete_tag(State(st): State<AppState>, Path((id, key)): Path<(String, String)>) -> Reply {
    let mid = model_id(&id)?;
    st.write(move |ws| ws.delete_logged_model_tag(&mid, &key))
        .await
        .map_err(MlflowError::from)?;
    json(json!({}))
}

async fn log_params(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: ParamsReq = parse(b).await?;
    required(req.model_id, "model_id")?;
    let params = entries("params", req.params)?;
    let mid = model_id(&id)?;
    st.write(move |ws| ws.log_logged_model_params(&mid, &params))
        .await
        .map_err(MlflowError::from)?;
    json(json!({}))
}

/// `order_by` entries: `{field_name, ascending, dataset_name, dataset_digest}`.
fn order_keys(order: Vec<OrderBy>) -> Result<Vec<ModelOrderKey>, MlflowError> {
    order
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            let ascending = match o.ascending {
                None => true,
                Some(Flag::Bool(b)) => b,
                Some(Flag::Text(t)) if t == "true" || t == "false" => t == "true",
                Some(Flag::Text(t)) => {
                    return Err(wrong_type(
                        &format!("order_by[{i}].ascending"),
                        &Value::String(t),
                    ));
                }
            };
            Ok(ModelOrderKey {
                field: o.field_name.unwrap_or_default(),
                ascending,
                dataset_name: given(o.dataset_name),
                dataset_digest: given(o.dataset_digest),
            })
        })
        .collect()
}

async fn search(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: SearchReq = parse(b).await?;
    let experiment_ids = req
        .experiment_ids
        .ok_or_else(|| missing("experiment_ids"))?;
    let filter = req.filter.unwrap_or_default();
    let datasets = req
        .datasets
        .into_iter()
        .map(|d| {
            (
                given(d.dataset_name).unwrap_or_default(),
                given(d.dataset_digest),
            )
        })
        .collect();
    let limit = match req.max_results {
        None | Some(0) => 50,
        Some(n) if n < 0 => {
            return Err(MlflowError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied: it must be positive"
            )));
        }
        // Larger pages are cut to the bound; the page's token leads on.
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX),
    };
    let order = order_keys(req.order_by)?;
    let offset = dto::parse_page_token(req.page_token.as_deref())? as usize;
    let body = st
        .call(move |ws| {
            let mut ids = ExperimentIds::default();
            let mut experiments = Vec::new();
            for id in &experiment_ids {
                // MLflow's ids are integers, Cairn's 32 hex digits: anything else is refused.
                let integer = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
                if !integer && id.parse::<ExperimentId>().is_err() {
                    return Err(cairn_core::Error::Invalid(format!(
                        "Invalid experiment ID '{id}'. Experiment ID must be a valid integer."
                    )));
                }
                // An unknown experiment holds no models (as MLflow answers).
                if let Ok(e) = ws.experiment_by_mlflow_id(id) {
                    ids.0.insert(e.id, id.clone());
                    experiments.push(e.id);
                }
            }
            let (models, next) = ws.search_logged_models(&LoggedModelSearch {
                experiments,
                filter,
                datasets,
                order,
                limit,
                offset,
            })?;
            let out = models
                .iter()
                .map(|m| Ok(model_json(m, &ids.of(ws, m.experiment)?)))
                .collect::<Result<Vec<Value>, cairn_core::Error>>()?;
            let mut answer = Map::new();
            if !out.is_empty() {
                answer.insert("models".into(), Value::Array(out));
            }
            if let Some(n) = next {
                answer.insert("next_page_token".into(), dto::page_token(Some(n as u64)));
            }
            // Encoded here, on the blocking pool: a page may hold many models.
            Ok(Value::Object(answer).to_string())
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn list_artifacts(State(st): State<AppState>, Path(id): Path<String>, uri: Uri) -> Reply {
    #[derive(serde::Deserialize)]
    struct Q {
        artifact_directory_path: Option<String>,
    }
    let q: Q = query(&uri)?;
    let mid = model_id(&id)?;
    let dir = q.artifact_directory_path.unwrap_or_default();
    let (root, files) = st
        .call(move |ws| {
            let m = ws.logged_model(&mid, false)?;
            Ok((m.artifact_location, ws.list_model_artifacts(&mid, &dir)?))
        })
        .await
        .map_err(MlflowError::from)?;
    let mut v = json!({ "root_uri": root });
    if !files.is_empty() {
        // As MLflow's proxy lists: paths under the model's root.
        v["files"] = Value::Array(super::artifacts::listing(files, ""));
    }
    json(v)
}

async fn download_file(State(st): State<AppState>, Path(id): Path<String>, uri: Uri) -> Reply {
    #[derive(serde::Deserialize)]
    struct Q {
        artifact_file_path: Option<String>,
    }
    let q: Q = query(&uri)?;
    let path = q
        .artifact_file_path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| {
            MlflowError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "Request must include the \"artifact_file_path\" query parameter.",
            )
        })?;
    let mid = model_id(&id)?;
    send_file(&st, mid, path).await
}

async fn send_file(st: &AppState, id: LoggedModelId, path: String) -> Reply {
    let file = st
        .call(move |ws| {
            ws.logged_model(&id, false)?;
            ws.open_model_artifact(&id, &path)
        })
        .await
        .map_err(MlflowError::from)?;
    Ok(stream::download(file))
}

async fn log_outputs(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: OutputsReq = parse(b).await?;
    let run = required(req.run_id, "run_id")?;
    let models = req
        .models
        .ok_or_else(|| missing("models"))?
        .into_iter()
        .map(|m| {
            Ok((
                model_id(m.model_id.as_deref().unwrap_or(""))?,
                m.step.unwrap_or(0),
            ))
        })
        .collect::<Result<Vec<_>, MlflowError>>()?;
    let shown = run.clone();
    st.write(move |ws| ws.log_model_outputs(parse_run_id(&run)?, &models))
        .await
        .map_err(run_not_found(&shown))?;
    json(json!({}))
}

// ---- hooks for the other MLflow handlers ------------------------------------------------

/// The model-linked values among a metric batch (`model_id` set), for
/// `Workspace::log_model_metrics` after the run's own batch. An id that cannot be a model's is
/// not found.
pub(crate) fn model_metrics(
    metrics: &[super::dto::MetricIn],
) -> Result<Vec<ModelMetricValue>, MlflowError> {
    metrics
        .iter()
        .filter_map(|m| {
            m.model_id
                .as_deref()
                .filter(|id| !id.is_empty())
                .map(|id| (m, id))
        })
        .map(|(m, id)| {
            Ok(ModelMetricValue {
                model: model_id(id)?,
                key: m.key.clone(),
                value: m.value,
                step: m.step.unwrap_or(0),
                ts_ms: m.timestamp,
                dataset_name: m.dataset_name.clone(),
                dataset_digest: m.dataset_digest.clone(),
            })
        })
        .collect()
}

/// Checks that every model a batch names exists, before the run's batch stores anything.
pub(crate) fn check_models(
    ws: &Workspace,
    metrics: &[ModelMetricValue],
) -> Result<(), cairn_core::Error> {
    let mut seen = std::collections::BTreeSet::new();
    for m in metrics {
        if seen.insert(m.model.clone()) {
            ws.logged_model(&m.model, true)?;
        }
    }
    Ok(())
}

/// A run's logged model inputs as `runs/log-inputs` sends them (`models: [{model_id}]`).
pub(crate) fn model_inputs(models: &[ModelInput]) -> Result<Vec<LoggedModelId>, MlflowError> {
    models
        .iter()
        .map(|m| model_id(m.model_id.as_deref().unwrap_or("")))
        .collect()
}

/// Adds MLflow's `inputs.model_inputs` and `outputs.model_outputs` to runs as `dto::run`
/// made them (`runs` and `ids` in the same order).
pub(crate) fn add_model_links(
    ws: &Workspace,
    runs: &mut [Value],
    ids: &[RunId],
) -> Result<(), cairn_core::Error> {
    let links = ws.run_model_links(ids)?;
    if links.is_empty() {
        return Ok(());
    }
    for (v, id) in runs.iter_mut().zip(ids) {
        let mine: Vec<&RunModelLink> = links.iter().filter(|l| l.run == *id).collect();
        let inputs: Vec<Value> = mine
            .iter()
            .filter(|l| l.role == "input")
            .map(|l| json!({ "model_id": l.model.as_str() }))
            .collect();
        let outputs: Vec<Value> = mine
            .iter()
            .filter(|l| l.role == "output")
            .map(|l| json!({ "model_id": l.model.as_str(), "step": l.step }))
            .collect();
        if !inputs.is_empty() {
            v["inputs"]["model_inputs"] = Value::Array(inputs);
        }
        if !outputs.is_empty() {
            v["outputs"] = json!({ "model_outputs": outputs });
        }
    }
    Ok(())
}

/// `<experiment>/models/<model_id>/artifacts/<path>` (a proxy path under a model's artifact
/// location) → the model and the path under it; `None` for any other path.
pub(crate) fn proxy_path(path: &str) -> Option<(String, String)> {
    let mut parts = path.trim_start_matches('/').splitn(5, '/');
    let (_exp, models, id, marker) = (parts.next(), parts.next(), parts.next(), parts.next());
    let rest = parts.next().unwrap_or("");
    match (models, id, marker) {
        (Some("models"), Some(id), Some("artifacts")) | (Some("models"), Some(id), None)
            if id.starts_with("m-") =>
        {
            Some((id.to_owned(), rest.trim_end_matches('/').to_owned()))
        }
        _ => None,
    }
}

/// An upload to a model's artifact path, streamed to the store and bound when whole (as a
/// run's: see `artifacts::proxy_upload`).
pub(crate) async fn proxy_upload(st: AppState, id: String, rel: String, body: Body) -> Reply {
    if rel.is_empty() {
        return Err(MlflowError::invalid("an artifact upload needs a file path"));
    }
    let mid = model_id(&id)?;
    let upload = st
        .call(move |ws| ws.model_artifact_upload(&mid, &rel))
        .await
        .map_err(MlflowError::from)?;
    let (tx, mut reader) = stream::upload_channel();
    let store = AppState::off_loop(move || Ok(upload.store(&mut reader)?));
    let (stored, ()) = tokio::join!(store, stream::feed(body, tx, st.limits.upload_idle));
    let stored = stored?;
    let budget = st.limits.request_budget;
    tokio::time::timeout(budget, st.write(move |ws| ws.bind_model_artifact(stored)))
        .await
        .map_err(|_| super::artifacts::busy_after_upload(budget))?
        .map_err(MlflowError::from)?;
    json(json!({}))
}

pub(crate) async fn proxy_download(st: AppState, id: String, rel: String) -> Reply {
    send_file(&st, model_id(&id)?, rel).await
}

pub(crate) async fn proxy_delete(st: AppState, id: String, rel: String) -> Reply {
    let mid = model_id(&id)?;
    st.write(move |ws| ws.delete_model_artifact(&mid, &rel))
        .await
        .map_err(MlflowError::from)?;
    json(json!({}))
}

/// A listing under a model's artifact path, as MLflow's proxy lists (a file lists as itself).
pub(crate) async fn proxy_list(st: AppState, id: String, rel: String) -> Reply {
    let mid = model_id(&id)?;
    let files = st
        .call(move |ws| {
            let entries = ws.list_model_artifacts(&mid, &rel)?;
            if entries.is_empty() && !rel.is_empty() {
                let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
                let siblings = ws.list_model_artifacts(&mid, parent)?;
                return Ok(super::artifacts::listing(
                    siblings.into_iter().filter(|e| e.path == rel).collect(),
                    parent,
                ));
            }
            Ok(super::artifacts::listing(entries, &rel))
        })
        .await
        .map_err(MlflowError::from)?;
    json(json!({ "files": files }))
}
