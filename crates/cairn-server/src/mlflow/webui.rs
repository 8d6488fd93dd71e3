//! What MLflow's own web UI calls beyond the client's REST API: every endpoint again under
//! `/ajax-api/…` (the UI's prefix for the same handlers), `upload-artifact`, and a clear
//! `NOT_IMPLEMENTED` refusal, in MLflow's error shape, for the features Cairn deliberately does
//! not serve (MLflow's AI gateway, scorers, prompt lab, …) so a client learns which feature is
//! missing rather than meeting an unknown endpoint.

use axum::Router;
use axum::extract::{OriginalUri, Request, State};
use axum::handler::Handler;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Deserialize;
use tower_service::Service;

use super::{JsonBody, MlflowError, Reply, parse_run_id, query, run_not_found};
use crate::AppState;

/// `api` with each of its routes answered under `/ajax-api/…` too: the request goes, unchanged
/// but for its path, through the same router, so every endpoint (whoever adds it) has its alias
/// and the aliases cannot drift from the originals. The alias is a nested service, not a route
/// with a parameter of its own: such a parameter would reach the endpoint's handler beside the
/// endpoint's (a `Path<String>` would see two and answer 500).
pub(crate) fn with_ajax_aliases(api: Router<AppState>, st: AppState) -> Router<AppState> {
    let inner = api.clone();
    let alias = (move |req: Request| ajax(inner.clone(), st.clone(), req)).with_state(());
    api.nest_service("/ajax-api", alias)
}

async fn ajax(api: Router<AppState>, st: AppState, mut req: Request) -> Response {
    let uri = req.uri();
    // Nested, the path arrives without its `/ajax-api` prefix.
    let rest = uri.path().strip_prefix("/ajax-api").unwrap_or(uri.path());
    let target = match uri.query() {
        Some(q) => format!("/api{rest}?{q}"),
        None => format!("/api{rest}"),
    };
    match target.parse::<Uri>() {
        Ok(u) => *req.uri_mut() = u,
        Err(e) => {
            return MlflowError::invalid(format!("invalid path '{target}': {e}")).into_response();
        }
    }
    // A `Router` is always ready and never fails (its error type is `Infallible`).
    match api.with_state(st).call(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    }
}

/// The features Cairn does not serve, by the path of their endpoints under `/api/` (each path
/// and everything below it; their `/ajax-api/` aliases are refused alike).
const NOT_SERVED: &[(&str, &str)] = &[
    ("2.0/mlflow/gateway-proxy", GATEWAY),
    ("3.0/mlflow/gateway", GATEWAY),
    (
        "2.0/mlflow/runs/create-promptlab-run",
        "MLflow's prompt lab",
    ),
    (
        "3.0/mlflow/prompt-optimization",
        "MLflow's prompt optimization",
    ),
    ("3.0/mlflow/scorers", "MLflow's scorers"),
    ("3.0/mlflow/issues", "MLflow's issues"),
    ("3.0/mlflow/review-queues", "MLflow's review queues"),
    ("3.0/mlflow/label-schemas", "MLflow's label schemas"),
    (
        "3.0/mlflow/genai/evaluate",
        "MLflow's server-side GenAI evaluation",
    ),
    ("3.0/mlflow/jobs", "MLflow's server-side jobs"),
    ("3.0/mlflow/demo", "MLflow's demo data"),
    ("2.0/mlflow/webhooks", "MLflow's model registry webhooks"),
    (
        "3.0/mlflow/workspaces",
        "MLflow's workspaces (a Cairn server serves one workspace)",
    ),
    ("2.0/mlflow-artifacts/presigned", PRESIGNED),
    ("2.0/mlflow/artifacts/presigned-download-url", PRESIGNED),
    ("2.0/mlflow/artifacts/presigned-upload-url", PRESIGNED),
];

const GATEWAY: &str =
    "MLflow's AI gateway (secrets, endpoints, providers, model definitions, budgets)";
const PRESIGNED: &str = "presigned artifact URLs (artifacts go through the server)";

/// What MLflow's client reads as "no multipart uploads here", falling back to a plain upload
/// (`_UnsupportedMultipartUploadException.MESSAGE`).
const NO_MULTIPART: &str = "Multipart upload is not supported for the current artifact repository";

/// Routes refusing the features in [`NOT_SERVED`] and multipart artifact uploads.
pub(crate) fn not_served_routes() -> Router<AppState> {
    let mut r = Router::new();
    for (base, _) in NOT_SERVED {
        r = r
            .route(&format!("/api/{base}"), any(not_implemented))
            .route(&format!("/api/{base}/{{*rest}}"), any(not_implemented));
    }
    r.route("/api/2.0/mlflow-artifacts/mpu/{*rest}", any(no_multipart))
}

fn not_served(path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/api/")?;
    NOT_SERVED
        .iter()
        .find(|(base, _)| {
            rest.strip_prefix(base)
                .is_some_and(|r| r.is_empty() || r.starts_with('/'))
        })
        .map(|(_, feature)| *feature)
}

/// 501 `NOT_IMPLEMENTED` naming the feature and the request as the client sent it.
async fn not_implemented(
    method: axum::http::Method,
    uri: Uri,
    OriginalUri(original): OriginalUri,
) -> MlflowError {
    let feature = not_served(uri.path()).unwrap_or("this MLflow feature");
    MlflowError::new(
        StatusCode::NOT_IMPLEMENTED,
        "NOT_IMPLEMENTED",
        format!(
            "Cairn does not implement {feature}: {method} {} is not served",
            original.path()
        ),
    )
}

async fn no_multipart() -> MlflowError {
    MlflowError::new(StatusCode::NOT_IMPLEMENTED, "NOT_IMPLEMENTED", NO_MULTIPART)
}

/// The largest file the web UI may upload (MLflow's limit).
const MAX_UPLOAD: usize = 10 * 1024 * 1024;

#[derive(Deserialize)]
pub(crate) struct UploadQuery {
    run_uuid: Option<String>,
    path: Option<String>,
}

/// MLflow's `validate_path_is_safe`: a relative path with `/` separators and no `..`.
fn safe_path(path: &str) -> Result<&str, MlflowError> {
    let unsafe_path = path.contains(['#', '\\'])
        || path.starts_with('/')
        || path.split('/').any(|s| s == "..")
        || path.as_bytes().get(1) == Some(&b':');
    if unsafe_path {
        return Err(MlflowError::invalid("Invalid path"));
    }
    Ok(path)
}

/// `upload-artifact`: the web UI's upload of a small file (its body, up to 10 MB) to a run's
/// artifacts at `path`, refused in MLflow's words.
pub(crate) async fn upload_artifact(
    State(st): State<AppState>,
    uri: Uri,
    JsonBody(data): JsonBody,
) -> Reply {
    let q: UploadQuery = query(&uri)?;
    let run = q
        .run_uuid
        .filter(|r| !r.is_empty())
        .ok_or_else(|| MlflowError::invalid("Request must specify run_uuid."))?;
    let path = q
        .path
        .filter(|p| !p.is_empty())
        .ok_or_else(|| MlflowError::invalid("Request must specify path."))?;
    let path = safe_path(&path)?.to_owned();
    if data.len() > MAX_UPLOAD {
        return Err(MlflowError::invalid(
            "Artifact size is too large. Max size is 10MB.",
        ));
    }
    if data.is_empty() {
        return Err(MlflowError::invalid("Request must specify data."));
    }
    let shown = run.clone();
    let upload = st
        .write(move |ws| ws.artifact_upload(parse_run_id(&run)?, &path))
        .await
        .map_err(run_not_found(&shown))?;
    let stored = AppState::off_loop(move || Ok(upload.store(&mut &data[..])?)).await?;
    st.write(move |ws| ws.bind_artifact(stored))
        .await
        .map_err(run_not_found(&shown))?;
    Ok(([(header::CONTENT_TYPE, "application/json")], "").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_features_are_named_by_their_path() {
        assert_eq!(
            not_served("/api/3.0/mlflow/gateway/secrets/create"),
            Some(GATEWAY)
        );
        assert_eq!(
            not_served("/api/3.0/mlflow/scorers"),
            Some("MLflow's scorers")
        );
        assert_eq!(
            not_served("/api/2.0/mlflow/artifacts/presigned-upload-url"),
            Some(PRESIGNED)
        );
        assert_eq!(not_served("/api/3.0/mlflow/scorersx"), None);
        assert_eq!(not_served("/api/2.0/mlflow/runs/get"), None);
    }

    #[test]
    fn unsafe_upload_paths_are_refused() {
        for bad in ["../x", "a/../b", "/etc/passwd", "a#b", "a\\b", "C:x"] {
            assert!(safe_path(bad).is_err(), "{bad}");
        }
        for ok in ["a.txt", "dir/a.txt", "a..b"] {
            assert_eq!(safe_path(ok).ok(), Some(ok));
        }
    }
}
