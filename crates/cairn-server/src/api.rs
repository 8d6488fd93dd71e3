//! Cairn's own JSON API, versioned under `/api/v1/`: the `cairn-core` calls the UI and other
//! clients need, typed, with errors as `{code, message}`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cairn_core::{RunFilter, RunOrder};
use serde::{Deserialize, Serialize};

use crate::stream::{self, History, PointWriter};
use crate::{AppState, CallError};

/// The one error shape of the API: a stable code and a message for people.
#[derive(Debug, Serialize)]
pub(crate) struct ApiError {
    code: cairn_core::Code,
    message: String,
    /// When the code's usual status does not say it (413 is an invalid argument too).
    #[serde(skip)]
    status: Option<StatusCode>,
}

impl ApiError {
    fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = Some(status);
        self
    }
}

impl From<cairn_core::Error> for ApiError {
    fn from(e: cairn_core::Error) -> ApiError {
        ApiError {
            code: e.code(),
            message: e.to_string(),
            status: None,
        }
    }
}

impl From<CallError> for ApiError {
    fn from(e: CallError) -> ApiError {
        match e {
            CallError::Core(e) => e.into(),
            CallError::Aborted(message) => ApiError {
                code: cairn_core::Code::Internal,
                message,
                status: None,
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use cairn_core::Code;
        let status = self.status.unwrap_or(match self.code {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument | Code::SchemaViolation => StatusCode::BAD_REQUEST,
            Code::AlreadyExists => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        });
        (status, Json(self)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

fn invalid(message: String) -> ApiError {
    ApiError {
        code: cairn_core::Code::InvalidArgument,
        message,
        status: None,
    }
}

fn query<T: serde::de::DeserializeOwned>(uri: &Uri) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|q| q.0)
        .map_err(|e| invalid(format!("malformed query: {}", e.body_text())))
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/health",
            get(|| async {
                Json(serde_json::json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
            }),
        )
        .route("/experiments", get(experiments))
        .route("/runs", get(runs))
        .route("/info", get(info))
        .route("/search", get(search))
        .route("/runs/{id}", get(run))
        .route("/runs/{id}/metrics/{*key}", get(metric))
        .route("/runs/{id}/artifacts/{*path}", get(artifact))
        .route("/chart", get(chart))
        .route("/sync", get(sync_status))
        .route("/views", get(views))
        .route(
            "/views/{name}",
            axum::routing::put(save_view).delete(delete_view),
        )
        .route("/{*rest}", axum::routing::any(unknown))
}

async fn unknown(uri: Uri) -> ApiError {
    ApiError {
        code: cairn_core::Code::NotFound,
        message: format!("{} is not an endpoint of Cairn's API", uri.path()),
        status: None,
    }
}

async fn experiments(State(st): State<AppState>) -> ApiResult<Vec<cairn_core::ExperimentSummary>> {
    Ok(Json(st.call(|ws| ws.experiments()).await?))
}

#[derive(Deserialize, Default)]
struct RunsQuery {
    experiment: Option<String>,
    status: Option<String>,
    owner: Option<String>,
    /// `METRIC` or `METRIC:asc`; newest first when absent.
    sort: Option<String>,
    limit: Option<u64>,
    offset: Option<u64>,
}

#[derive(Serialize)]
struct RunsPage {
    total: u64,
    runs: Vec<cairn_core::RunRow>,
}

async fn runs(State(st): State<AppState>, uri: Uri) -> ApiResult<RunsPage> {
    let q: RunsQuery = query(&uri)?;
    let status = q
        .status
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|e: cairn_model::ModelError| invalid(e.to_string()))?;
    let order = match q.sort.as_deref() {
        None => RunOrder::Newest,
        Some(s) => match s.rsplit_once(':') {
            Some((k, "asc")) => RunOrder::Metric {
                key: k.into(),
                descending: false,
            },
            Some((k, "desc")) => RunOrder::Metric {
                key: k.into(),
                descending: true,
            },
            _ => RunOrder::Metric {
                key: s.into(),
                descending: true,
            },
        },
    };
    let page = st
        .call(move |ws| {
            let experiment = q
                .experiment
                .as_deref()
                .map(|e| ws.experiment(e).map(|e| e.id))
                .transpose()?;
            let filter = RunFilter {
                experiment,
                status,
                owner: q.owner,
                order,
                limit: Some(q.limit.unwrap_or(100).min(10_000)),
                offset: q.offset.unwrap_or(0),
                ..Default::default()
            };
            let total = ws.count_runs(&RunFilter {
                limit: None,
                offset: 0,
                ..filter.clone()
            })?;
            Ok(RunsPage {
                total,
                runs: ws.list_runs(&filter)?,
            })
        })
        .await?;
    Ok(Json(page))
}

async fn search(State(st): State<AppState>, uri: Uri) -> ApiResult<cairn_core::SearchPage> {
    let req: cairn_core::SearchRequest = query(&uri)?;
    Ok(Json(st.call(move |ws| ws.search_page(&req)).await?))
}

async fn info(State(st): State<AppState>) -> ApiResult<cairn_core::Info> {
    Ok(Json(st.call(|ws| Ok(ws.info())).await?))
}

async fn run(State(st): State<AppState>, Path(id): Path<String>) -> ApiResult<cairn_core::RunView> {
    Ok(Json(st.call(move |ws| ws.run(ws.resolve_run(&id)?)).await?))
}

#[derive(Deserialize)]
struct MetricQuery {
    /// Downsample to at most this many buckets; the full history when absent.
    buckets: Option<usize>,
    lo: Option<i64>,
    hi: Option<i64>,
}

use cairn_core::json_number as num;

/// A series: downsampled to `buckets` buckets, or every point as `[step, ts_ms, value]`,
/// streamed a sealed chunk at a time (a history of any length is never whole in memory).
async fn metric(
    State(st): State<AppState>,
    Path((id, key)): Path<(String, String)>,
    uri: Uri,
) -> Result<Response, ApiError> {
    let q: MetricQuery = query(&uri)?;
    let range = match (q.lo, q.hi) {
        (Some(lo), Some(hi)) => Some((lo, hi)),
        (None, None) => None,
        _ => return Err(invalid("give both lo and hi, or neither".into())),
    };
    if let Some(n) = q.buckets {
        let buckets = st
            .call(move |ws| ws.metric_buckets(&id, &key, range, n))
            .await?;
        return Ok(Json(buckets).into_response());
    }
    let k = key.clone();
    let (run, len) = st
        .call(move |ws| {
            let run = ws.resolve_run(&id)?;
            Ok((run, ws.metric_len(run, &k)?))
        })
        .await?;
    let write: PointWriter = std::sync::Arc::new(|out, p| {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        write!(out, "[{},{},{}]", p.step, p.ts_ms, num(p.value)).unwrap_or(());
    });
    let body = History {
        st,
        run,
        key,
        from: 0,
        to: len,
        open: "[",
        close: "]".to_owned(),
        write,
    }
    .into_body();
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// A file among the run's artifacts, streamed and verified as it goes (see `stream::file`).
async fn artifact(
    State(st): State<AppState>,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let file = st
        .call(move |ws| ws.open_artifact_path(ws.resolve_run(&id)?, &path))
        .await?;
    let len = file.len();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        stream::file(file),
    )
        .into_response())
}

async fn chart(State(st): State<AppState>, uri: Uri) -> ApiResult<cairn_core::ChartView> {
    let req: cairn_core::ChartRequest = query(&uri)?;
    Ok(Json(st.call(move |ws| ws.chart(&req)).await?))
}

async fn views(State(st): State<AppState>) -> ApiResult<Vec<cairn_core::SavedView>> {
    Ok(Json(st.call(|ws| ws.views()).await?))
}

/// A saved view as the body of `PUT /views/{name}` (the name is in the path).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ViewBody {
    query: String,
    #[serde(default)]
    order: Option<String>,
    #[serde(default)]
    columns: Vec<String>,
}

async fn save_view(
    State(st): State<AppState>,
    Path(name): Path<String>,
    body: Result<Json<ViewBody>, axum::extract::rejection::JsonRejection>,
) -> ApiResult<cairn_core::SavedView> {
    let Json(body) = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError {
                code: cairn_core::Code::InvalidArgument,
                message: format!("the view is too large: {}", e.body_text()),
                status: None,
            }
            .with_status(StatusCode::PAYLOAD_TOO_LARGE);
        }
        invalid(format!("malformed view: {}", e.body_text()))
    })?;
    let view = cairn_core::SavedView {
        name,
        query: body.query,
        order: body.order.filter(|o| !o.is_empty()),
        columns: body.columns,
    };
    Ok(Json(
        st.call(move |ws| {
            ws.save_view(&view)?;
            Ok(view)
        })
        .await?,
    ))
}

async fn delete_view(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<serde_json::Value> {
    st.call(move |ws| ws.delete_view(&name)).await?;
    Ok(Json(serde_json::json!({})))
}

/// This device, its team and its peers (last seen, last sync, pending), as `cairn sync status`.
async fn sync_status(State(st): State<AppState>) -> ApiResult<cairn_core::team::SyncStatus> {
    Ok(Json(st.call(|ws| ws.sync_status()).await?))
}
