//! Experiments: create (with an artifact location), get (by id or name), search (MLflow's
//! filter and order), rename, delete and restore, tags. MLflow's experiment "0" is the
//! workspace's default experiment (the workspace decides which that is).

use axum::extract::State;
use axum::http::Uri;
use cairn_core::{ExperimentOrder, ExperimentSearch, Lifecycle, Workspace};
use cairn_model::Experiment;
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{self, ExpRef, KeyValue, de_opt_i64};
use super::{
    JsonBody, MAX_SEARCH_RESULTS, MlflowError, Reply, json, max_results, parse, query, query_lists,
    required,
};
use crate::{AppState, CallError};

/// How MLflow's clients know `e`: its MLflow id and its runs' artifact location.
pub(crate) fn exp_ref(ws: &Workspace, e: &Experiment) -> Result<ExpRef, cairn_core::Error> {
    Ok(ExpRef::new(
        ws.mlflow_experiment_id(e)?,
        ws.experiment_artifact_location(e.id)?,
    ))
}

/// An experiment as MLflow's JSON shows it, under its MLflow id.
fn experiment_json(ws: &Workspace, e: &Experiment) -> Result<Value, cairn_core::Error> {
    Ok(dto::experiment(e, &exp_ref(ws, e)?))
}

/// MLflow's `resolve_uri_if_local`: a relative local path (`art`, `file:art`) is made absolute
/// against the server's working directory, as MLflow's server resolves it against its own.
fn resolve_if_local(location: &str) -> String {
    let file = location.strip_prefix("file:");
    let path = file.unwrap_or(location);
    let local = file.is_some() || !super::sources::has_scheme(location);
    if !local || path.starts_with('/') {
        return location.to_owned();
    }
    let cwd = std::env::current_dir().unwrap_or_default();
    let absolute = cwd.join(path).display().to_string();
    match file {
        Some(_) => format!("file://{absolute}"),
        None => absolute,
    }
}

/// MLflow's refusal of a change to a deleted experiment, and its words for a missing tag.
fn experiment_refusal(id: &str) -> impl FnOnce(CallError) -> MlflowError + '_ {
    move |e| match e {
        CallError::Core(cairn_core::Error::ExperimentDeleted(_)) => MlflowError::invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is deleted."
        )),
        CallError::Core(cairn_core::Error::UnknownExperimentTag { key, .. }) => {
            MlflowError::not_found(format!(
                "No tag with name: {key} in experiment with id {id}"
            ))
        }
        CallError::Core(e) if e.code() == cairn_core::Code::NotFound => {
            MlflowError::not_found(format!("No Experiment with id={id} exists"))
        }
        other => other.into(),
    }
}

/// A call's "not found" as MLflow words it for this request.
fn not_found_as(message: String) -> impl FnOnce(CallError) -> MlflowError {
    move |e| match e {
        CallError::Core(e) if e.code() == cairn_core::Code::NotFound => {
            MlflowError::not_found(message)
        }
        other => other.into(),
    }
}

#[derive(Deserialize)]
pub(crate) struct CreateExperiment {
    name: Option<String>,
    artifact_location: Option<String>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

pub(crate) async fn create(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: CreateExperiment = parse(b).await?;
    let name = required(req.name, "name")?;
    let tags: Vec<(String, String)> = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    let location = req.artifact_location.filter(|l| !l.is_empty());
    if let Some(l) = &location {
        // MLflow checks the location as given, then resolves a relative one.
        cairn_core::validate_artifact_location(l).map_err(MlflowError::from)?;
    }
    let location = location.map(|l| resolve_if_local(&l));
    let id = st
        .write(move |ws| {
            let e = ws.create_experiment_at(&name, &tags, location.as_deref())?;
            ws.mlflow_experiment_id(&e)
        })
        .await?;
    json(json!({ "experiment_id": id }))
}

#[derive(Deserialize)]
pub(crate) struct ExperimentIdQuery {
    experiment_id: Option<String>,
    experiment_name: Option<String>,
}

pub(crate) async fn get(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: ExperimentIdQuery = query(&uri)?;
    let id = required(q.experiment_id, "experiment_id")?;
    let message = format!("No Experiment with id={id} exists");
    let exp = st
        .call(move |ws| experiment_json(ws, &ws.experiment_by_mlflow_id(&id)?))
        .await
        .map_err(not_found_as(message))?;
    json(json!({ "experiment": exp }))
}

pub(crate) async fn get_by_name(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: ExperimentIdQuery = query(&uri)?;
    let name = required(q.experiment_name, "experiment_name")?;
    let message = format!("Could not find experiment with name '{name}'");
    let exp = st
        .call(move |ws| {
            // Deleted experiments are found too, marked deleted, as MLflow does.
            match ws.experiments_all()?.into_iter().find(|e| e.name == name) {
                Some(e) => experiment_json(ws, &e),
                None => Err(cairn_core::Error::UnknownExperiment(name)),
            }
        })
        .await
        .map_err(not_found_as(message))?;
    json(json!({ "experiment": exp }))
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchExperiments {
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    filter: Option<String>,
    page_token: Option<String>,
    view_type: Option<String>,
    #[serde(default)]
    order_by: Vec<String>,
}

/// The repeated parameters of `experiments/search` as a GET.
pub(crate) const SEARCH_LISTS: &[&str] = &["order_by"];

async fn search_with(st: AppState, req: SearchExperiments) -> Reply {
    let limit = max_results(req.max_results, 1000, MAX_SEARCH_RESULTS)?;
    let order = req
        .order_by
        .iter()
        .map(|c| ExperimentOrder::parse_mlflow(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(MlflowError::from)?;
    let search = ExperimentSearch {
        filter: req.filter.unwrap_or_default(),
        lifecycle: match req.view_type.as_deref() {
            Some("DELETED_ONLY") => Lifecycle::Deleted,
            Some("ALL") => Lifecycle::All,
            _ => Lifecycle::Active,
        },
        order,
        limit,
        offset: dto::parse_page_token(req.page_token.as_deref())? as usize,
    };
    let (page, next) = st
        .call(move |ws| {
            let (hits, next) = ws.search_experiments(&search)?;
            let page = hits
                .iter()
                .map(|e| experiment_json(ws, e))
                .collect::<Result<Vec<Value>, _>>()?;
            Ok((page, next))
        })
        .await?;
    json(json!({
        "experiments": page,
        "next_page_token": dto::page_token(next.map(|n| n as u64)),
    }))
}

pub(crate) async fn search(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    search_with(st, parse(b).await?).await
}

pub(crate) async fn search_get(State(st): State<AppState>, uri: Uri) -> Reply {
    search_with(st, query_lists(&uri, SEARCH_LISTS)?).await
}

#[derive(Deserialize)]
pub(crate) struct ExperimentEdit {
    experiment_id: Option<String>,
    new_name: Option<String>,
    key: Option<String>,
    value: Option<String>,
}

pub(crate) async fn update(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: ExperimentEdit = parse(b).await?;
    let id = required(req.experiment_id, "experiment_id")?;
    let name = required(req.new_name, "new_name")?;
    let shown = id.clone();
    st.write(move |ws| {
        let e = ws.experiment_by_mlflow_id(&id)?;
        if e.deleted {
            return Err(cairn_core::Error::ExperimentDeleted(e.id));
        }
        ws.rename_experiment(e.id, &name).map(drop)
    })
    .await
    .map_err(|e| match e {
        // MLflow's code and words; its status is 500, which clients retry, so this is 400.
        CallError::Core(cairn_core::Error::ExperimentDeleted(_)) => MlflowError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            "Cannot rename a non-active experiment.",
        ),
        other => experiment_refusal(&shown)(other),
    })?;
    json(json!({}))
}

/// Deletes (or restores) an experiment together with its runs, as MLflow's SQL store does.
async fn set_deleted(st: AppState, b: axum::body::Bytes, deleted: bool) -> Reply {
    let req: ExperimentEdit = parse(b).await?;
    let id = required(req.experiment_id, "experiment_id")?;
    let shown = id.clone();
    st.write(move |ws| {
        let e = ws.experiment_by_mlflow_id(&id)?;
        if deleted {
            ws.delete_experiment(e.id)
        } else {
            ws.restore_experiment(e.id)
        }
    })
    .await
    .map_err(experiment_refusal(&shown))?;
    json(json!({}))
}

pub(crate) async fn delete(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    set_deleted(st, b, true).await
}

pub(crate) async fn restore(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    set_deleted(st, b, false).await
}

pub(crate) async fn set_tag(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: ExperimentEdit = parse(b).await?;
    let id = required(req.experiment_id, "experiment_id")?;
    let key = required(req.key, "key")?;
    let value = req.value.unwrap_or_default();
    let shown = id.clone();
    st.write(move |ws| {
        let e = ws.experiment_by_mlflow_id(&id)?;
        ws.set_live_experiment_tag(e.id, &key, &value).map(drop)
    })
    .await
    .map_err(experiment_refusal(&shown))?;
    json(json!({}))
}

pub(crate) async fn delete_tag(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: ExperimentEdit = parse(b).await?;
    let id = required(req.experiment_id, "experiment_id")?;
    let key = required(req.key, "key")?;
    let shown = id.clone();
    st.write(move |ws| {
        let e = ws.experiment_by_mlflow_id(&id)?;
        ws.delete_experiment_tag(e.id, &key).map(drop)
    })
    .await
    .map_err(experiment_refusal(&shown))?;
    json(json!({}))
}
