//! What one request may cost, checked before a handler runs: a body over its route's limit is
//! refused from its `Content-Length` without being read (413); a request that changes data on a
//! JSON route must say it is JSON (415: a web page can send `text/plain` or a form to any origin
//! without asking, but not `application/json`); and a request that runs past its time budget is
//! answered 503 rather than left hanging.
//!
//! Errors come in the shape of the route's family: `{error_code, message}` under MLflow's API,
//! `{code, message}` under `/api/v1`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;

/// Where the MLflow client's artifact proxy uploads: a binary body of any type and size,
/// streamed to disk.
const ARTIFACT_UPLOADS: &str = "/api/2.0/mlflow-artifacts/artifacts/";

/// Which error shape a path answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    /// Cairn's own API: `{code, message}`.
    Api,
    /// MLflow's APIs, and everything else: `{error_code, message}`.
    Mlflow,
}

impl Family {
    pub(crate) fn of(path: &str) -> Family {
        if path == "/api/v1" || path.starts_with("/api/v1/") {
            Family::Api
        } else {
            Family::Mlflow
        }
    }

    /// An error of this family. `mlflow` and `api` are the codes of each shape.
    pub(crate) fn error(
        self,
        status: StatusCode,
        mlflow: &str,
        api: cairn_core::Code,
        message: &str,
    ) -> Response {
        let body = match self {
            Family::Mlflow => serde_json::json!({ "error_code": mlflow, "message": message }),
            Family::Api => serde_json::json!({ "code": api, "message": message }),
        };
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

/// Whether the path takes JSON bodies (MLflow's REST API and Cairn's own; not the artifact
/// proxy, not the UI's files).
fn json_route(path: &str) -> bool {
    let api = path.starts_with("/api/") || path.starts_with("/ajax-api/") || path == "/graphql";
    api && !path.starts_with("/api/2.0/mlflow-artifacts/")
}

fn is_upload(method: &Method, path: &str) -> bool {
    method == Method::PUT && path.starts_with(ARTIFACT_UPLOADS)
}

/// Whether the request carries a body (a length above zero, or one sent in chunks).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || content_length(headers).is_some_and(|n| n > 0)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// `application/json`, with parameters (`; charset=utf-8`) or without.
fn is_json(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// Why the request's content type is refused, or `None` when it is JSON.
fn not_json(headers: &HeaderMap) -> Option<String> {
    let mut types = headers.get_all(header::CONTENT_TYPE).iter();
    match (types.next(), types.next()) {
        (None, _) => Some("the request has no Content-Type".into()),
        (Some(_), Some(_)) => Some("the request has more than one Content-Type".into()),
        (Some(v), None) => match v.to_str() {
            Ok(t) if is_json(t) => None,
            Ok(t) => Some(format!("the request's Content-Type is '{t}'")),
            Err(_) => Some("the request's Content-Type is not readable text".into()),
        },
    }
}

pub(crate) async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let family = Family::of(req.uri().path());
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let upload = is_upload(&method, &path);

    let limit = st.limits.json_body as u64;
    if !upload && let Some(len) = content_length(req.headers()).filter(|n| *n > limit) {
        return family.error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "REQUEST_LIMIT_EXCEEDED",
            cairn_core::Code::InvalidArgument,
            &format!("the request body of {len} bytes is over the limit of {limit} bytes"),
        );
    }

    let changes_data = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    let must_be_json = matches!(method, Method::POST | Method::PATCH) || has_body(req.headers());
    if json_route(&path)
        && changes_data
        && must_be_json
        && let Some(why) = not_json(req.headers())
    {
        return family.error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "INVALID_PARAMETER_VALUE",
            cairn_core::Code::InvalidArgument,
            &format!("{method} {path} takes a JSON body (Content-Type: application/json); {why}"),
        );
    }

    if upload {
        // An upload lasts as long as the client sends; its idle time is bounded instead.
        return next.run(req).await;
    }
    let budget = st.limits.request_budget;
    match tokio::time::timeout(budget, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            // Dropping the handler drops its place in the queue for the workspace (a call that
            // had not started never runs). A call already running on the blocking pool runs to
            // its end there, and a write it makes is kept: the message says it may have been
            // applied.
            tracing::warn!(%method, %path, ?budget, "request ran past its time budget");
            let mut response = family.error(
                StatusCode::SERVICE_UNAVAILABLE,
                "TEMPORARILY_UNAVAILABLE",
                cairn_core::Code::Internal,
                &format!(
                    "{method} {path} did not finish within {} s: the workspace is busy; a change it \
                     asked for may still be applied. Try again later",
                    budget.as_secs_f64()
                ),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_application_json_with_or_without_parameters() {
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
        ] {
            assert!(is_json(ok), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonp",
            "application/json-seq",
            "",
        ] {
            assert!(!is_json(bad), "{bad}");
        }
    }

    #[test]
    fn routes_are_told_apart() {
        assert!(json_route("/api/2.0/mlflow/runs/create"));
        assert!(json_route("/api/v1/views/x"));
        assert!(json_route("/ajax-api/2.0/mlflow/runs/create"));
        assert!(!json_route(
            "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt"
        ));
        assert!(!json_route("/index.html"));
        assert!(is_upload(
            &Method::PUT,
            "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt"
        ));
        assert!(!is_upload(
            &Method::GET,
            "/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/a.txt"
        ));
        assert_eq!(Family::of("/api/v1/runs"), Family::Api);
        assert_eq!(Family::of("/api/v10/runs"), Family::Mlflow);
        assert_eq!(Family::of("/api/2.0/mlflow/runs/get"), Family::Mlflow);
    }
}
