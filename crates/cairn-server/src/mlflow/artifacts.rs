//! Artifacts through MLflow's `mlflow-artifacts` proxy (upload, download, list, delete) and the
//! tracking API's `artifacts/list`. Content goes to Cairn's content-addressed store; a run's
//! logical paths bind to hashes. Uploads and downloads are streamed: no file is ever whole in
//! memory.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use cairn_model::RunId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{MlflowError, Reply, json, query};
use super::{parse_run_id, run_not_found};
use crate::{AppState, stream};

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

/// `_cairn_content/<hash>/<path>` → registered content by its hash and the path inside it;
/// `None` for any other path.
fn content_path(path: &str) -> Option<Result<(cairn_model::BlobHash, String), MlflowError>> {
    let rest = path
        .trim_start_matches('/')
        .strip_prefix(super::registry::CONTENT_ROOT)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    let rest = rest.trim_start_matches('/');
    let (hash, rel) = rest.split_once('/').unwrap_or((rest, ""));
    Some(
        hash.parse()
            .map(|h| (h, rel.trim_end_matches('/').to_owned()))
            .map_err(|e| MlflowError::invalid(format!("registered content path '{path}': {e}"))),
    )
}

/// What an upload whose bytes were stored is told when the workspace stays busy past the
/// request budget (the blob stays for `cairn gc` or a retry).
pub(super) fn busy_after_upload(budget: std::time::Duration) -> MlflowError {
    MlflowError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "TEMPORARILY_UNAVAILABLE",
        format!(
            "the upload was stored but the workspace was busy for over {} s: try again",
            budget.as_secs()
        ),
    )
}

/// Registered content is read-only: what a PUT or DELETE there is told.
fn content_is_read_only(path: &str) -> MlflowError {
    MlflowError::invalid(format!(
        "'{path}' is a registered model version's content, pinned by its hash: it cannot be \
         written or deleted"
    ))
}

/// MLflow's `FileInfo`s of a listing, paths relative to `strip`.
pub(super) fn listing(entries: Vec<cairn_core::ArtifactEntry>, strip: &str) -> Vec<Value> {
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

/// An upload, streamed: the run and path are checked first (an unknown run is refused before a
/// byte of the body is read), the body goes to a temporary file while it is hashed (on the
/// blocking pool, without the workspace, so a slow upload holds nobody up), and only a whole
/// body is bound to the run. A body that breaks off, or sends nothing for
/// `Limits::upload_idle`, stores nothing the run can see.
pub(crate) async fn proxy_upload(
    State(st): State<AppState>,
    Path(path): Path<String>,
    body: Body,
) -> Reply {
    if let Some((model, rel)) = super::logged_models::proxy_path(&path) {
        return super::logged_models::proxy_upload(st, model, rel, body).await;
    }
    if content_path(&path).is_some() {
        return Err(content_is_read_only(&path));
    }
    let (run, rel) = split_proxy_path(&path)?;
    if rel.is_empty() {
        return Err(MlflowError::invalid("an artifact upload needs a file path"));
    }
    let shown = run.clone();
    let upload = st
        .write(move |ws| ws.artifact_upload(parse_run_id(&run)?, &rel))
        .await
        .map_err(run_not_found(&shown))?;
    let (tx, mut reader) = stream::upload_channel();
    let store = AppState::off_loop(move || Ok(upload.store(&mut reader)?));
    let (stored, ()) = tokio::join!(store, stream::feed(body, tx, st.limits.upload_idle));
    let stored = stored?;
    let budget = st.limits.request_budget;
    tokio::time::timeout(budget, st.write(move |ws| ws.bind_artifact(stored)))
        .await
        .map_err(|_| busy_after_upload(budget))?
        .map_err(run_not_found(&shown))?;
    json(json!({}))
}

/// A download, streamed from the blob file and verified as it goes: a file whose bytes no
/// longer match their hash is cut off before its last piece, so the client sees a failed
/// transfer, never wrong bytes.
pub(crate) async fn proxy_download(State(st): State<AppState>, Path(path): Path<String>) -> Reply {
    if let Some((model, rel)) = super::logged_models::proxy_path(&path) {
        return super::logged_models::proxy_download(st, model, rel).await;
    }
    let file = match content_path(&path) {
        Some(found) => {
            let (hash, rel) = found?;
            st.call(move |ws| ws.open_registered_content(&hash, &rel))
                .await?
        }
        None => {
            let (run, rel) = split_proxy_path(&path)?;
            let shown = run.clone();
            st.call(move |ws| ws.open_artifact(parse_run_id(&run)?, &rel))
                .await
                .map_err(run_not_found(&shown))?
        }
    };
    Ok(stream::download(file))
}

pub(crate) async fn proxy_delete(State(st): State<AppState>, Path(path): Path<String>) -> Reply {
    if let Some((model, rel)) = super::logged_models::proxy_path(&path) {
        return super::logged_models::proxy_delete(st, model, rel).await;
    }
    if content_path(&path).is_some() {
        return Err(content_is_read_only(&path));
    }
    let (run, rel) = split_proxy_path(&path)?;
    let shown = run.clone();
    st.write(move |ws| ws.delete_artifact(parse_run_id(&run)?, &rel))
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
    if let Some((model, rel)) = super::logged_models::proxy_path(q.path.as_deref().unwrap_or("")) {
        return super::logged_models::proxy_list(st, model, rel).await;
    }
    if let Some(found) = content_path(q.path.as_deref().unwrap_or("")) {
        let (hash, rel) = found?;
        let files = st
            .call(move |ws| {
                let entries = ws.registered_content_entries(&hash, &rel)?;
                if entries.is_empty() && !rel.is_empty() {
                    // A file path lists as the file itself, as MLflow's proxy does.
                    let parent = rel.rsplit_once('/').map_or("", |(p, _)| p);
                    let siblings = ws.registered_content_entries(&hash, parent)?;
                    return Ok(listing(
                        siblings.into_iter().filter(|e| e.path == rel).collect(),
                        parent,
                    ));
                }
                Ok(listing(entries, &rel))
            })
            .await?;
        return json(json!({ "files": files }));
    }
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
    let run = super::RunRef::new(q.run_id, q.run_uuid).id()?;
    let dir = q.path.unwrap_or_default();
    let shown = run.clone();
    let (files, root) = st
        .call(move |ws| {
            let id: RunId = parse_run_id(&run)?;
            let view = ws.run(id)?;
            let exp = ws.experiment_by_id(view.run.experiment)?;
            let root = super::experiments::exp_ref(ws, &exp)?.run_artifacts(&view.run);
            Ok((listing(ws.list_artifacts(id, &dir)?, ""), root))
        })
        .await
        .map_err(run_not_found(&shown))?;
    json(json!({ "root_uri": root, "files": files }))
}
