//! Cairn's own JSON API, versioned under `/api/v1/`: the `cairn-core` calls the UI and other
//! clients need, typed, with errors as `{code, message}`.

use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cairn_core::{RunFilter, RunOrder};
use serde::{Deserialize, Serialize};

use crate::AppState;

/// The one error shape of the API: a stable code and a message for people.
#[derive(Debug, Serialize)]
pub(crate) struct ApiError {
    code: cairn_core::Code,
    message: String,
}

impl From<cairn_core::Error> for ApiError {
    fn from(e: cairn_core::Error) -> ApiError {
        ApiError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use cairn_core::Code;
        let status = match self.code {
            Code::NotFound => StatusCode::NOT_FOUND,
            Code::InvalidArgument | Code::SchemaViolation => StatusCode::BAD_REQUEST,
            Code::AlreadyExists => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(self)).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

fn invalid(message: String) -> ApiError {
    ApiError {
        code: cairn_core::Code::InvalidArgument,
        message,
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

#[derive(Serialize)]
#[serde(untagged)]
enum MetricData {
    Points(Vec<[serde_json::Value; 3]>),
    Buckets(Vec<cairn_core::BucketView>),
}

use cairn_core::json_number as num;

async fn metric(
    State(st): State<AppState>,
    Path((id, key)): Path<(String, String)>,
    uri: Uri,
) -> ApiResult<MetricData> {
    let q: MetricQuery = query(&uri)?;
    let range = match (q.lo, q.hi) {
        (Some(lo), Some(hi)) => Some((lo, hi)),
        (None, None) => None,
        _ => return Err(invalid("give both lo and hi, or neither".into())),
    };
    let data = st
        .call(move |ws| {
            let id = ws.resolve_run(&id)?;
            Ok(match q.buckets {
                Some(n) => {
                    MetricData::Buckets(ws.metric_buckets(&id.to_string(), &key, range, n)?)
                }
                None => MetricData::Points(
                    ws.metric_history(id, &key)?
                        .into_iter()
                        .map(|p| [p.step.into(), p.ts_ms.into(), num(p.value)])
                        .collect(),
                ),
            })
        })
        .await?;
    Ok(Json(data))
}

async fn artifact(
    State(st): State<AppState>,
    Path((id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let bytes = st
        .call(move |ws| ws.read_artifact_path(ws.resolve_run(&id)?, &path))
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
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
    let Json(body) = body.map_err(|e| invalid(format!("malformed view: {}", e.body_text())))?;
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
