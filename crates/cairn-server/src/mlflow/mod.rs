//! The MLflow tracking REST API, as the unmodified `mlflow` Python client uses it:
//! `/api/2.0/mlflow/…` (experiments, runs, metrics, registry) and the `mlflow-artifacts` proxy.
//!
//! Wire types live in [`dto`]; they follow MLflow's protobuf JSON (snake_case, int64 as numbers
//! or strings, doubles as numbers or "NaN"/"Infinity"). Errors are `{"error_code","message"}`.
//! The handlers are grouped by resource (`experiments`, `runs`, `metrics`, `inputs`,
//! `artifacts`, `registry`); each translates MLflow's request into one `cairn_core::Workspace`
//! operation and its answer back — the rules (schema, param immutability, the status lifecycle,
//! system tags, dataset roles, what experiment "0" is) are the workspace's.

mod artifacts;
mod bulk;
mod datasets;
mod decode;
mod dto;
mod experiments;
pub mod fuzz;
mod graphql;
mod inputs;
mod logged_models;
mod metrics;
mod registry;
mod runs;
mod sources;
mod traces;
mod webui;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use crate::{AppState, CallError};

pub(crate) use decode::{missing, required, wrong_type};

/// MLflow's error shape.
#[derive(Debug)]
pub(crate) struct MlflowError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl MlflowError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        MlflowError {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> MlflowError {
        MlflowError {
            status: StatusCode::BAD_REQUEST,
            code: "INVALID_PARAMETER_VALUE",
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> MlflowError {
        MlflowError {
            status: StatusCode::NOT_FOUND,
            code: "RESOURCE_DOES_NOT_EXIST",
            message: message.into(),
        }
    }
}

impl From<cairn_core::Error> for MlflowError {
    fn from(e: cairn_core::Error) -> MlflowError {
        use cairn_core::Code;
        // As MLflow's own server answers: a refused value, a param that would change, a write to
        // a deleted run are all INVALID_PARAMETER_VALUE.
        let (status, code) = match e.code() {
            Code::NotFound => (StatusCode::NOT_FOUND, "RESOURCE_DOES_NOT_EXIST"),
            Code::InvalidArgument | Code::SchemaViolation | Code::Conflict => {
                (StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE")
            }
            Code::AlreadyExists => (StatusCode::BAD_REQUEST, "RESOURCE_ALREADY_EXISTS"),
            Code::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "TEMPORARILY_UNAVAILABLE"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        };
        MlflowError {
            status,
            code,
            message: e.to_string(),
        }
    }
}

impl From<CallError> for MlflowError {
    fn from(e: CallError) -> MlflowError {
        match e {
            CallError::Core(e) => e.into(),
            CallError::Aborted(message) => MlflowError {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                code: "INTERNAL_ERROR",
                message,
            },
        }
    }
}

impl IntoResponse for MlflowError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(code = self.code, message = %self.message, "request failed");
        }
        let body = serde_json::json!({ "error_code": self.code, "message": self.message });
        (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response()
    }
}

pub(crate) type Reply = Result<Response, MlflowError>;

/// A JSON answer.
pub(crate) fn json(v: serde_json::Value) -> Reply {
    Ok(([(header::CONTENT_TYPE, "application/json")], v.to_string()).into_response())
}

/// A request body, read whole up to the JSON body limit (a longer one is 413 once the limit is
/// reached: a chunked body is never read past it).
#[derive(Debug)]
pub(crate) struct JsonBody(pub(crate) Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = MlflowError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Bytes::from_request(req, state)
            .await
            .map(JsonBody)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    MlflowError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "REQUEST_LIMIT_EXCEEDED",
                        format!("the request body is too large: {}", e.body_text()),
                    )
                } else {
                    MlflowError::invalid(format!("cannot read the request body: {}", e.body_text()))
                }
            })
    }
}

/// Bodies up to this size are decoded where they arrive; larger ones on the blocking pool, so a
/// 16 MiB body does not hold up the async workers.
const DECODE_INLINE: usize = 64 * 1024;

/// Decodes a JSON body as [`body`] does, on the blocking pool when it is large.
pub(crate) async fn parse<T: DeserializeOwned + Send + 'static>(
    bytes: Bytes,
) -> Result<T, MlflowError> {
    if bytes.len() <= DECODE_INLINE {
        return body(&bytes);
    }
    AppState::off_loop(move || Ok(body::<T>(&bytes)))
        .await
        .map_err(MlflowError::from)?
}

/// Decodes a JSON body (an empty body is `{}`), refusing as MLflow words it (see [`decode`]).
pub(crate) fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, MlflowError> {
    decode::body(bytes)
}

/// Decodes the query string of a GET (each parameter's first value, see [`decode`]).
pub(crate) fn query<T: DeserializeOwned>(uri: &Uri) -> Result<T, MlflowError> {
    decode::query_lists(uri, &[])
}

/// Decodes the query string of a GET whose parameters in `lists` may repeat (`order_by=a&order_by=b`).
pub(crate) fn query_lists<T: DeserializeOwned>(
    uri: &Uri,
    lists: &[&str],
) -> Result<T, MlflowError> {
    decode::query_lists(uri, lists)
}

/// The run an MLflow request names: `run_id`, or `run_uuid` as older clients send it. Every
/// handler that works on a run reads it through here. Request types carry the two fields
/// themselves (not `#[serde(flatten)]`, which would hide the path of a field refused while
/// decoding) and hand them over with [`RunRef::new`].
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct RunRef {
    run_id: Option<String>,
    run_uuid: Option<String>,
}

impl RunRef {
    pub(crate) fn new(run_id: Option<String>, run_uuid: Option<String>) -> RunRef {
        RunRef { run_id, run_uuid }
    }

    /// The id as given; a request without one is refused naming the parameter.
    pub(crate) fn id(&self) -> Result<String, MlflowError> {
        self.run_id
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.run_uuid.clone())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| missing("run_id"))
    }
}

/// A full run id (MLflow clients never send prefixes).
pub(crate) fn parse_run_id(id: &str) -> Result<cairn_model::RunId, cairn_core::Error> {
    id.parse().map_err(cairn_core::Error::from)
}

/// An unknown (or malformed) run as MLflow answers it: 404, naming the id.
pub(crate) fn run_not_found(id: &str) -> impl FnOnce(CallError) -> MlflowError + '_ {
    move |e| match e {
        CallError::Core(e) if e.is_unknown_run() => {
            MlflowError::not_found(format!("Run with id={id} not found"))
        }
        other => other.into(),
    }
}

/// Reads through `f` the run `run` names: a missing id is 400, an unknown run 404.
pub(crate) async fn with_run<T, F>(st: &AppState, run: &RunRef, f: F) -> Result<T, MlflowError>
where
    T: Send + 'static,
    F: FnOnce(&cairn_core::Workspace, cairn_model::RunId) -> Result<T, cairn_core::Error>
        + Send
        + 'static,
{
    let id = run.id()?;
    let shown = id.clone();
    st.call(move |ws| f(ws, parse_run_id(&id)?))
        .await
        .map_err(run_not_found(&shown))
}

/// Changes through `f` the run `run` names (see [`with_run`]).
pub(crate) async fn write_run<T, F>(st: &AppState, run: &RunRef, f: F) -> Result<T, MlflowError>
where
    T: Send + 'static,
    F: FnOnce(&cairn_core::Workspace, cairn_model::RunId) -> Result<T, cairn_core::Error>
        + Send
        + 'static,
{
    let id = run.id()?;
    let shown = id.clone();
    st.write(move |ws| f(ws, parse_run_id(&id)?))
        .await
        .map_err(run_not_found(&shown))
}

/// A `max_results` within `1..=max` (`default` when absent), worded as MLflow's tracking store
/// refuses it.
pub(crate) fn max_results(
    given: Option<i64>,
    default: i64,
    max: i64,
) -> Result<usize, MlflowError> {
    let n = given.unwrap_or(default);
    if n < 1 {
        return Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be a positive integer"
        )));
    }
    if n > max {
        return Err(MlflowError::invalid(format!(
            "Invalid value {n} for parameter 'max_results' supplied. It must be at most {max}"
        )));
    }
    Ok(n as usize)
}

/// MLflow's server refuses more (`SEARCH_MAX_RESULTS_THRESHOLD`, runs and experiments).
pub(crate) const MAX_SEARCH_RESULTS: i64 = 50_000;

const API: &str = "/api/2.0/mlflow";

/// The path as the client sent it (an `/ajax-api/` alias reaches here as `/api/`).
async fn unknown_endpoint(
    method: axum::http::Method,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
) -> MlflowError {
    MlflowError {
        status: StatusCode::NOT_FOUND,
        code: "ENDPOINT_NOT_FOUND",
        message: format!("{method} {} is not an endpoint of this server", uri.path()),
    }
}

/// MLflow's API under `/api/…`, and each of its endpoints again under `/ajax-api/…` as the web
/// UI calls them.
pub(crate) fn routes(st: AppState) -> Router<AppState> {
    let api = api_routes();
    webui::with_ajax_aliases(api.clone(), st).merge(graphql::routes(api))
}

fn api_routes() -> Router<AppState> {
    let r = |path: &str| format!("{API}/{path}");
    Router::new()
        .merge(traces::routes())
        .merge(datasets::routes())
        .merge(logged_models::routes())
        .route("/version", get(|| async { "3.17.2" }))
        .route("/health", get(|| async { "OK" }))
        .route(&r("experiments/create"), post(experiments::create))
        .route(&r("experiments/get"), get(experiments::get))
        .route(&r("experiments/get-by-name"), get(experiments::get_by_name))
        .route(
            &r("experiments/search"),
            post(experiments::search).get(experiments::search_get),
        )
        .route(&r("experiments/update"), post(experiments::update))
        .route(&r("experiments/delete"), post(experiments::delete))
        .route(&r("experiments/restore"), post(experiments::restore))
        .route(
            &r("experiments/set-experiment-tag"),
            post(experiments::set_tag),
        )
        .route(
            &r("experiments/delete-experiment-tag"),
            post(experiments::delete_tag),
        )
        .route(&r("runs/create"), post(runs::create))
        .route(&r("runs/get"), get(runs::get))
        .route(&r("runs/update"), post(runs::update))
        .route(&r("runs/delete"), post(runs::delete))
        .route(&r("runs/restore"), post(runs::restore))
        .route(&r("runs/search"), post(runs::search))
        .route(&r("runs/log-metric"), post(metrics::log_metric))
        .route(&r("runs/log-parameter"), post(runs::log_param))
        .route(&r("runs/set-tag"), post(runs::set_tag))
        .route(&r("runs/delete-tag"), post(runs::delete_tag))
        .route(&r("runs/log-batch"), post(metrics::log_batch))
        .route(&r("runs/log-inputs"), post(inputs::log_inputs))
        .route(
            &r("experiments/search-datasets"),
            post(inputs::search_datasets),
        )
        .route(&r("metrics/get-history"), get(metrics::get_history))
        .route(&r("metrics/get-history-bulk"), get(bulk::history_bulk))
        .route(
            &r("metrics/get-history-bulk-interval"),
            get(bulk::history_bulk_interval),
        )
        .route(&r("artifacts/list"), get(artifacts::list_run_artifacts))
        .route(
            "/api/2.0/mlflow-artifacts/artifacts",
            get(artifacts::proxy_list),
        )
        .route(
            "/api/2.0/mlflow-artifacts/artifacts/{*path}",
            get(artifacts::proxy_download)
                .put(artifacts::proxy_upload)
                .delete(artifacts::proxy_delete),
        )
        .merge(registry::routes())
        .route(&r("upload-artifact"), post(webui::upload_artifact))
        .merge(webui::not_served_routes())
        // Anything else under MLflow's API is an unknown endpoint, in MLflow's error shape
        // (not the web UI's index page).
        .route("/api/2.0/{*rest}", axum::routing::any(unknown_endpoint))
        .route("/api/3.0/{*rest}", axum::routing::any(unknown_endpoint))
}
