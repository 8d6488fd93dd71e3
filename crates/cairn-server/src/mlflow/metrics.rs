//! Metrics: one value (`runs/log-metric`), a batch of params, metrics and tags
//! (`runs/log-batch`, validated as a whole by the workspace: one bad entry stores nothing), and a
//! metric's history (`metrics/get-history`), paged or streamed whole.

use axum::extract::State;
use axum::http::{Uri, header};
use axum::response::IntoResponse;
use cairn_core::{LogBatch, MetricDataset, MetricValue};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{self, KeyValue, MetricIn, de_opt_i64};
use super::{
    JsonBody, MlflowError, Reply, RunRef, json, parse, parse_run_id, query, run_not_found,
    write_run,
};
use crate::AppState;
use crate::stream;

fn metric_value(m: MetricIn) -> MetricValue {
    let dataset = match (m.dataset_name, m.dataset_digest) {
        (Some(name), Some(digest)) if !name.is_empty() || !digest.is_empty() => {
            Some(MetricDataset { name, digest })
        }
        _ => None,
    };
    MetricValue {
        key: m.key,
        value: m.value,
        step: m.step.unwrap_or(0),
        ts_ms: m.timestamp,
        dataset,
    }
}

#[derive(Deserialize)]
pub(crate) struct LogMetric {
    run_id: Option<String>,
    run_uuid: Option<String>,
    key: String,
    #[serde(deserialize_with = "dto::de_f64")]
    value: f64,
    #[serde(default, deserialize_with = "de_opt_i64")]
    timestamp: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    step: Option<i64>,
    /// MLflow 3: the logged model the value measured, and the dataset it was measured on.
    #[serde(default)]
    model_id: Option<String>,
    #[serde(default)]
    dataset_name: Option<String>,
    #[serde(default)]
    dataset_digest: Option<String>,
}

pub(crate) async fn log_metric(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogMetric = parse(b).await?;
    let run = RunRef::new(req.run_id, req.run_uuid);
    let metric = MetricIn {
        key: req.key,
        value: req.value,
        timestamp: req.timestamp,
        step: req.step,
        model_id: req.model_id,
        dataset_name: req.dataset_name,
        dataset_digest: req.dataset_digest,
    };
    let models = super::logged_models::model_metrics(std::slice::from_ref(&metric))?;
    let batch = LogBatch {
        metrics: vec![metric_value(metric)],
        ..Default::default()
    };
    write_run(&st, &run, move |ws, id| {
        super::logged_models::check_models(ws, &models)?;
        ws.log_batch(id, &batch)?;
        ws.log_model_metrics(id, &models)
    })
    .await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct LogBatchRequest {
    run_id: Option<String>,
    run_uuid: Option<String>,
    // MLflow's batch limits, checked while the body is decoded: a batch of a million metrics is
    // refused at the 1,001st, before it is held in memory (the workspace checks them again, with
    // everything else, before it stores anything).
    #[serde(default, deserialize_with = "batch_metrics")]
    metrics: Vec<MetricIn>,
    #[serde(default, deserialize_with = "batch_params")]
    params: Vec<KeyValue>,
    #[serde(default, deserialize_with = "batch_tags")]
    tags: Vec<KeyValue>,
}

fn batch_metrics<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<MetricIn>, D::Error> {
    dto::de_at_most(d, cairn_core::MAX_BATCH_METRICS, "metrics")
}

fn batch_params<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<KeyValue>, D::Error> {
    dto::de_at_most(d, cairn_core::MAX_BATCH_PARAMS, "params")
}

fn batch_tags<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<KeyValue>, D::Error> {
    dto::de_at_most(d, cairn_core::MAX_BATCH_TAGS, "tags")
}

pub(crate) async fn log_batch(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LogBatchRequest = parse(b).await?;
    let run = RunRef::new(req.run_id, req.run_uuid);
    let total = req.metrics.len() + req.params.len() + req.tags.len();
    if total > cairn_core::MAX_BATCH_ENTITIES {
        return Err(MlflowError::invalid(dto::batch_limit(
            "metrics, params, and tags",
            cairn_core::MAX_BATCH_ENTITIES,
            total,
        )));
    }
    let models = super::logged_models::model_metrics(&req.metrics)?;
    let batch = LogBatch {
        params: req.params.into_iter().map(|p| (p.key, p.value)).collect(),
        metrics: req.metrics.into_iter().map(metric_value).collect(),
        tags: req.tags.into_iter().map(|t| (t.key, t.value)).collect(),
    };
    write_run(&st, &run, move |ws, id| {
        super::logged_models::check_models(ws, &models)?;
        ws.log_batch(id, &batch)?;
        ws.log_model_metrics(id, &models)
    })
    .await?;
    json(json!({}))
}

#[derive(Deserialize)]
pub(crate) struct HistoryQuery {
    run_id: Option<String>,
    run_uuid: Option<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    page_token: Option<String>,
}

pub(crate) async fn get_history(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: HistoryQuery = query(&uri)?;
    let id = RunRef::new(q.run_id, q.run_uuid).id()?;
    let key = super::required(q.metric_key, "metric_key")?;
    let offset = dto::parse_page_token(q.page_token.as_deref())?;
    // Any positive page size, as MLflow takes it (the page streams); without one the whole
    // history comes.
    let limit = match q.max_results {
        Some(n) if n < 1 => {
            return Err(MlflowError::invalid(format!(
                "Invalid value {n} for parameter 'max_results' supplied. It must be a positive \
                 integer."
            )));
        }
        n => n.map(|n| n as usize),
    };
    let shown = id.clone();
    let k = key.clone();
    let (run, len) = st
        .call(move |ws| {
            let rid = parse_run_id(&id)?;
            ws.run(rid)?;
            match ws.metric_len(rid, &k) {
                Ok(n) => Ok((rid, n)),
                Err(cairn_core::Error::UnknownMetric { .. }) => Ok((rid, 0)),
                Err(e) => Err(e),
            }
        })
        .await
        .map_err(run_not_found(&shown))?;
    let key_json = Value::String(key.clone()).to_string();
    let write: stream::PointWriter = std::sync::Arc::new(move |out, p| {
        use std::fmt::Write;
        // Writing to a String cannot fail.
        write!(
            out,
            r#"{{"key":{key_json},"value":{},"timestamp":{},"step":{}}}"#,
            dto::f64_json(p.value),
            p.ts_ms,
            p.step
        )
        .unwrap_or(());
    });
    let (to, close) = match limit {
        // A page: what is left of it, and the token of the next one.
        Some(l) if len.saturating_sub(offset) > l as u64 => {
            let next = offset + l as u64;
            let token = dto::page_token(Some(next));
            (next, format!(r#"],"next_page_token":{token}}}"#))
        }
        _ => (len, r#"],"next_page_token":null}"#.to_owned()),
    };
    let body = stream::History {
        st,
        run,
        key,
        from: offset,
        to,
        open: r#"{"metrics":["#,
        close,
        write,
    }
    .into_body();
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}
