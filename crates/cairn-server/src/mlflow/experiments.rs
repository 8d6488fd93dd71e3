//! Experiments: create, get (by id or name), search, rename, delete and restore, tags. MLflow's
//! experiment "0" is the workspace's default experiment (the workspace decides which that is).

use axum::extract::State;
use axum::http::Uri;
use cairn_core::{ExperimentSearch, Lifecycle, Workspace};
use cairn_model::Experiment;
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{self, KeyValue, de_opt_i64};
use super::{
    JsonBody, MAX_SEARCH_RESULTS, MlflowError, Reply, json, max_results, parse, query, required,
};
use crate::{AppState, CallError};

/// An experiment as MLflow's JSON shows it, under its MLflow id.
fn experiment_json(ws: &Workspace, e: &Experiment) -> Result<Value, cairn_core::Error> {
    Ok(dto::experiment(e, &ws.mlflow_experiment_id(e)?))
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
    #[serde(default)]
    tags: Vec<KeyValue>,
}

pub(crate) async fn create(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: CreateExperiment = parse(b).await?;
    let name = required(req.name, "name")?;
    let tags: Vec<(String, String)> = req.tags.into_iter().map(|t| (t.key, t.value)).collect();
    let id = st
        .write(move |ws| {
            let e = ws.create_experiment(&name, None, &tags)?;
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
}

async fn search_with(st: AppState, req: SearchExperiments) -> Reply {
    let search = ExperimentSearch {
        filter: req.filter.unwrap_or_default(),
        lifecycle: match req.view_type.as_deref() {
            Some("DELETED_ONLY") => Lifecycle::Deleted,
            Some("ALL") => Lifecycle::All,
            _ => Lifecycle::Active,
        },
        limit: max_results(req.max_results, 1000, MAX_SEARCH_RESULTS)?,
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
    search_with(st, query(&uri)?).await
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
    st.write(move |ws| {
        let e = ws.experiment_by_mlflow_id(&id)?;
        ws.rename_experiment(e.id, &name).map(drop)
    })
    .await?;
    json(json!({}))
}

/// Deletes (or restores) an experiment together with its runs, as MLflow's SQL store does.
async fn set_deleted(st: AppState, b: axum::body::Bytes, deleted: bool) -> Reply {
    let req: ExperimentEdit = parse(b).await?;
    let id = required(req.experiment_id, "experiment_id")?;
    st.write(move |ws| {
        let e = ws.experiment_by_mlflow_id(&id)?;
        if deleted {
            ws.delete_experiment(e.id)
        } else {
            ws.restore_experiment(e.id)
        }
    })
    .await?;
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
    st.write(move |ws| {
        let e = ws.experiment_by_mlflow_id(&id)?;
        ws.set_experiment_tag(e.id, &key, &value).map(drop)
    })
    .await?;
    json(json!({}))
}
