//! Artifacts through MLflow's `mlflow-artifacts` proxy (upload, download, list, delete) and the
//! tracking API's `artifacts/list`. Content goes to Cairn's content-addressed store; a run's
//! logical paths bind to hashes.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{Uri, header};
use axum::response::IntoResponse;
use cairn_model::RunId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::tracking::{parse_run_id, run_not_found};
use super::{MlflowError, Reply, json, query};
use crate::AppState;

/// `<experiment>/<run>/artifacts/<path>` → the run and the path inside its artifacts.
fn split_proxy_path(path: &str) -> Result<(String, String), MlflowError> {
    let mut parts = path.trim_start_matches('/').splitn(4, '/');
    let (_exp, run, marker) = (parts.next(), parts.next(), parts.next());
    let rest = parts.next().unwrap_or("");
    match (run, marker) {
        (Some(run), Some("artifacts")) => {
            Ok((run.to_owned(), rest.trim_end_matches('/').to_owned()))
        }
        _ => Err(MlflowError::invalid(format!(
            "artifact path '{path}' is not of the form EXPERIMENT/RUN/artifacts/PATH"
        ))),
    }
}

fn listing(entries: Vec<cairn_core::ArtifactEntry>, strip: &str) -> Vec<Value> {
    entries
        .into_iter()
        .map(|e| {
            let rel = e
                .path
                .strip_prefix(strip)
                .unwrap_or(&e.path)
                .trim_start_matches('/')
                .to_owned();
            let mut v = json!({ "path": rel, "is_dir": e.is_dir });
            if let Some(size) = e.size {
                v["file_size"] = json!(size);
            }
            v
        })
        .collect()
}

pub(crate) async fn proxy_upload(
    State(st): State<AppState>,
    Path(path): Path<String>,
    body: Bytes,
) -> Reply {
    let (run, rel) = split_proxy_path(&path)?;
    if rel.is_empty() {
        return Err(MlflowError::invalid("an artifact upload needs a file path"));
    }
    let shown = run.clone();
    st.call(move |ws| {
        let id = parse_run_id(&run)?;
        ws.add_artifact_reader(id, &rel, &mut body.as_ref())
            .map(drop)
    })
    .await
    .map_err(run_not_found(&shown))?;
    json(json!({}))
}

pub(crate) async fn proxy_download(State(st): State<AppState>, Path(path): Path<String>) -> Reply {
    let (run, rel) = split_proxy_path(&path)?;
    let shown = run.clone();
    let bytes = st
        .call(move |ws| ws.read_artifact_path(parse_run_id(&run)?, &rel))
        .await
        .map_err(run_not_found(&shown))?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

pub(crate) async fn proxy_delete(State(st): State<AppState>, Path(path): Path<String>) -> Reply {
    let (run, rel) = split_proxy_path(&path)?;
    let shown = run.clone();
    st.call(move |ws| ws.delete_artifact(parse_run_id(&run)?, &rel))
        .await
        .map_err(run_not_found(&shown))?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct PathQuery {
    path: Option<String>,
}

pub(crate) async fn proxy_list(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: PathQuery = query(&uri)?;
    let (run, rel) = split_proxy_path(q.path.as_deref().unwrap_or(""))?;
    let shown = run.clone();
    let files = st
        .call(move |ws| {
            let id = parse_run_id(&run)?;
            let entries = ws.list_artifacts(id, &rel)?;
            if entries.is_empty() && !rel.is_empty() {
                // A file path lists as the file itself, as MLflow's proxy does.
                let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
                let siblings = ws.list_artifacts(id, parent)?;
                return Ok(listing(
                    siblings.into_iter().filter(|e| e.path == rel).collect(),
                    parent,
                ));
            }
            Ok(listing(entries, &rel))
        })
        .await
        .map_err(run_not_found(&shown))?;
    json(json!({ "files": files }))
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    run_id: Option<String>,
    run_uuid: Option<String>,
    path: Option<String>,
}

pub(crate) async fn list_run_artifacts(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: ListQuery = query(&uri)?;
    let run = q
        .run_id
        .or(q.run_uuid)
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'run_id'"))?;
    let dir = q.path.unwrap_or_default();
    let shown = run.clone();
    let (files, root) = st
        .call(move |ws| {
            let id: RunId = parse_run_id(&run)?;
            let view = ws.run(id)?;
            let exp = ws.experiment_by_id(view.run.experiment)?;
            let root = super::dto::artifact_uri(&super::tracking::mlflow_id(ws, &exp)?, &view.run);
            Ok((listing(ws.list_artifacts(id, &dir)?, ""), root))
        })
        .await
        .map_err(run_not_found(&shown))?;
    json(json!({ "root_uri": root, "files": files }))
}
