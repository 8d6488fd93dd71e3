//! Runs: create, get, update (name, status), delete and restore, search; params and tags one at a
//! time. The workspace holds the rules — the schema at creation, param immutability, the status
//! lifecycle, the system tags (`mlflow.runName`, `mlflow.source.git.*`, …) that become lineage.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::IntoResponse;
use cairn_core::{Lifecycle, LogBatch, NewRun, Workspace};
use cairn_model::{ExperimentId, Lineage, Run};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{self, ExpRef, KeyValue, de_opt_i64};
use super::{
    JsonBody, MAX_SEARCH_RESULTS, MlflowError, Reply, RunRef, json, max_results, parse, query,
    with_run, write_run,
};
use crate::AppState;
use crate::origin::FromThisMachine;

/// How MLflow knows experiments (id, artifact location), looked up once per request.
#[derive(Default)]
struct MlflowIds(BTreeMap<ExperimentId, ExpRef>);

impl MlflowIds {
    fn of(&mut self, ws: &Workspace, id: ExperimentId) -> Result<ExpRef, cairn_core::Error> {
        if let Some(known) = self.0.get(&id) {
            return Ok(known.clone());
        }
        let exp = super::experiments::exp_ref(ws, &ws.experiment_by_id(id)?)?;
        self.0.insert(id, exp.clone());
        Ok(exp)
    }
}

/// A run as MLflow's JSON shows it, with its live metric summaries.
fn run_json(ws: &Workspace, id: cairn_model::RunId) -> Result<Value, cairn_core::Error> {
    let view = ws.run(id)?;
    let mut run: Run = view.run;
    run.metrics.extend(view.live_metrics);
    let mut v = [dto::run(
        &run,
        &MlflowIds::default().of(ws, run.experiment)?,
    )];
    super::logged_models::add_model_links(ws, &mut v, &[id])?;
    let [v] = v;
    Ok(v)
}

#[derive(Deserialize)]
pub(crate) struct CreateRun {
    experiment_id: Option<String>,
    user_id: Option<String>,
    run_name: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    start_time: Option<i64>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

/// Creates a run. A client on the server's machine (see `origin.rs`) gets the machine's profile
/// recorded as the run's, so the run is costed from it; another gets none, and its run is
/// unpriced.
pub(crate) async fn create(
    State(st): State<AppState>,
    FromThisMachine(here): FromThisMachine,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: CreateRun = parse(b).await?;
    let v = st
        .write(move |ws| {
            let lineage = Lineage {
                infra: here.then(cairn_core::this_machine),
                ..Lineage::default()
            };
            let exp = ws.experiment_by_mlflow_id(req.experiment_id.as_deref().unwrap_or("0"))?;
            let run = ws.start_run(NewRun {
                experiment: Some(exp.id),
                name: req.run_name.filter(|n| !n.is_empty()),
                owner: req.user_id.filter(|u| !u.is_empty()),
                start_ms: req.start_time,
                tags: req.tags.into_iter().map(|t| (t.key, t.value)).collect(),
                // MLflow clients log datasets after creating the run: the schema has its say
                // when the run ends.
                defer_schema: true,
                lineage,
                ..Default::default()
            })?;
            Ok(dto::run(&run, &super::experiments::exp_ref(ws, &exp)?))
        })
        .await?;
    json(json!({ "run": v }))
}

pub(crate) async fn get(State(st): State<AppState>, uri: Uri) -> Reply {
    let run: RunRef = query(&uri)?;
    let v = with_run(&st, &run, run_json).await?;
    json(json!({ "run": v }))
}

#[derive(Deserialize)]
pub(crate) struct UpdateRun {
    run_id: Option<String>,
    run_uuid: Option<String>,
    status: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    end_time: Option<i64>,
    run_name: Option<String>,
}

pub(crate) async fn update(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: UpdateRun = parse(b).await?;
    let status = req.status.as_deref().map(dto::status_in).transpose()?;
    let name = req.run_name.filter(|n| !n.is_empty());
    let end = req.end_time;
    let run = RunRef::new(req.run_id, req.run_uuid);
    let v = write_run(&st, &run, move |ws, id| {
        if let Some(name) = name {
            ws.rename_run(id, &name)?;
        }
        if let Some(status) = status {
            ws.set_status(id, status, end)?;
        }
        let run = ws.run(id)?.run;
        Ok(dto::run_info(
            &run,
            &MlflowIds::default().of(ws, run.experiment)?,
        ))
    })
    .await?;
    json(json!({ "run_info": v }))
}

pub(crate) async fn delete(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let run: RunRef = parse(b).await?;
    write_run(&st, &run, |ws, id| ws.delete_run(id)).await?;
    json(json!({}))
}

pub(crate) async fn restore(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let run: RunRef = parse(b).await?;
    write_run(&st, &run, |ws, id| ws.restore_run(id)).await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct SearchRuns {
    #[serde(default)]
    experiment_ids: Vec<String>,
    filter: Option<String>,
    run_view_type: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

pub(crate) async fn search(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: SearchRuns = parse(b).await?;
    // MLflow's request check refuses more than its threshold in its own words (with a type
    // hint, though the type is right); its store refuses zero or less.
    if let Some(n) = req.max_results.filter(|n| *n > MAX_SEARCH_RESULTS) {
        return Err(super::wrong_type("max_results", &json!(n)));
    }
    let limit = max_results(req.max_results, 1000, MAX_SEARCH_RESULTS)?;
    let offset = dto::parse_page_token(req.page_token.as_deref())? as usize;
    let lifecycle = match req.run_view_type.as_deref() {
        Some("DELETED_ONLY") => Lifecycle::Deleted,
        Some("ALL") => Lifecycle::All,
        _ => Lifecycle::Active,
    };
    let body = st
        .call(move |ws| {
            let mut ids = MlflowIds::default();
            let mut experiments = Vec::new();
            for id in &req.experiment_ids {
                let e = ws.experiment_by_mlflow_id(id)?;
                ids.of(ws, e.id)?;
                experiments.push(e.id);
            }
            let (runs, next) = ws.search_runs(
                req.filter.as_deref().unwrap_or(""),
                &req.order_by,
                experiments,
                lifecycle,
                limit,
                offset,
            )?;
            let mut out = runs
                .iter()
                .map(|r| Ok(dto::run(r, &ids.of(ws, r.experiment)?)))
                .collect::<Result<Vec<Value>, cairn_core::Error>>()?;
            let run_ids: Vec<cairn_model::RunId> = runs.iter().map(|r| r.id).collect();
            super::logged_models::add_model_links(ws, &mut out, &run_ids)?;
            // Encoded here, on the blocking pool: a page holds up to 50,000 runs.
            Ok(json!({ "runs": out, "next_page_token": dto::page_token(next) }).to_string())
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

#[derive(Deserialize)]
pub(crate) struct LogParam {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: String,
    #[serde(default)]
    value: String,
}

pub(crate) async fn log_param(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogParam = parse(b).await?;
    let run = RunRef::new(req.run_id, req.run_uuid);
    let batch = LogBatch {
        params: vec![(req.key, req.value)],
        ..Default::default()
    };
    write_run(&st, &run, move |ws, id| ws.log_batch(id, &batch)).await?;
    json(json!({}))
}

pub(crate) async fn set_tag(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogParam = parse(b).await?;
    let run = RunRef::new(req.run_id, req.run_uuid);
    let tags = vec![(req.key, req.value)];
    write_run(&st, &run, move |ws, id| ws.set_tags(id, &tags)).await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct DeleteTag {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: String,
}

pub(crate) async fn delete_tag(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: DeleteTag = parse(b).await?;
    let run = RunRef::new(req.run_id, req.run_uuid);
    let key = req.key;
    let absent = write_run(&st, &run, move |ws, id| match ws.delete_tag(id, &key) {
        Err(cairn_core::Error::UnknownTag { run, key }) => Ok(Some((run, key))),
        done => done.map(|()| None),
    })
    .await?;
    if let Some((run, key)) = absent {
        // MLflow's words for a tag the run does not have.
        return Err(MlflowError::not_found(format!(
            "No tag with name: {key} in run with id {run}"
        )));
    }
    json(json!({}))
}
