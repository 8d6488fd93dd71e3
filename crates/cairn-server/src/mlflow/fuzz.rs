//! The fuzzing entry into the MLflow handlers' decoding: what each endpoint does with a request
//! before it reaches the workspace (a body as JSON, a GET's query string), without a server.
//!
//! Only `cairn-fuzz` calls it (re-exported `#[doc(hidden)]` at the crate root); it lives here,
//! beside the request types, because they are private to the handlers.

use axum::body::Bytes;
use axum::http::Uri;
use serde::de::DeserializeOwned;

use super::{experiments, inputs, logged_models, metrics, registry, runs};

/// Each endpoint the decoder knows: its path under `/api/2.0/mlflow/` and whether it reads a
/// JSON body (POST) or a query string (GET). Fuzz inputs pick one by index.
pub const ENDPOINTS: &[(&str, Input)] = &[
    ("experiments/create", Input::Body),
    ("experiments/get", Input::Query),
    ("experiments/get-by-name", Input::Query),
    ("experiments/search", Input::Body),
    ("experiments/search", Input::Query),
    ("experiments/update", Input::Body),
    ("experiments/delete", Input::Body),
    ("experiments/set-experiment-tag", Input::Body),
    ("runs/create", Input::Body),
    ("runs/get", Input::Query),
    ("runs/update", Input::Body),
    ("runs/delete", Input::Body),
    ("runs/search", Input::Body),
    ("runs/log-metric", Input::Body),
    ("runs/log-parameter", Input::Body),
    ("runs/set-tag", Input::Body),
    ("runs/delete-tag", Input::Body),
    ("runs/log-batch", Input::Body),
    ("runs/log-inputs", Input::Body),
    ("metrics/get-history", Input::Query),
    ("artifacts/list", Input::Query),
    ("registered-models/create", Input::Body),
    ("registered-models/get", Input::Query),
    ("registered-models/delete", Input::Body),
    ("registered-models/search", Input::Body),
    ("registered-models/alias", Input::Body),
    ("model-versions/create", Input::Body),
    ("model-versions/get", Input::Query),
    ("mlflow-artifacts/artifacts", Input::Query),
    // Added after the corpus was seeded: new entries go last, so its indexes keep their meaning.
    ("model-versions/search", Input::Query),
    ("registered-models/search", Input::Query),
    ("model-versions/search", Input::Body),
    ("experiments/delete-experiment-tag", Input::Body),
    ("metrics/get-history-bulk", Input::Query),
    ("metrics/get-history-bulk-interval", Input::Query),
    ("upload-artifact", Input::Query),
    ("experiments/search-datasets", Input::Body),
    ("datasets/create", Input::Body),
    ("datasets/search", Input::Body),
    ("datasets/search", Input::Query),
    ("datasets/tags", Input::Body),
    ("datasets/records", Input::Body),
    ("datasets/records", Input::Query),
    ("datasets/delete-records", Input::Body),
    ("datasets/add-experiments", Input::Body),
    ("graphql", Input::Body),
    ("logged-models", Input::Body),
    ("logged-models/search", Input::Body),
    ("logged-models/{model_id}", Input::Body),
    ("logged-models/{model_id}/tags", Input::Body),
    ("logged-models/{model_id}/params", Input::Body),
    ("runs/outputs", Input::Body),
];

/// Where an endpoint reads its request from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Body,
    Query,
}

/// Decodes `input` as endpoint `ENDPOINTS[endpoint]` does (an index past the end wraps). `Ok`
/// when the handler would go on to the workspace, `Err` with the message a client would get.
pub fn decode_request(endpoint: usize, input: &[u8]) -> Result<(), String> {
    let (path, how) = ENDPOINTS[endpoint % ENDPOINTS.len()];
    match how {
        Input::Body => decode_body(path, &Bytes::copy_from_slice(input)),
        Input::Query => {
            // A query string the HTTP layer let through is a valid URI; others never get here.
            let text = std::str::from_utf8(input).map_err(|e| e.to_string())?;
            let uri: Uri = format!("/api/2.0/mlflow/{path}?{text}")
                .parse()
                .map_err(|e: axum::http::uri::InvalidUri| e.to_string())?;
            decode_query(path, &uri)
        }
    }
}

fn body<T: DeserializeOwned>(b: &Bytes) -> Result<(), String> {
    super::body::<T>(b).map(drop).map_err(|e| e.message)
}

fn query<T: DeserializeOwned>(uri: &Uri) -> Result<(), String> {
    super::query::<T>(uri).map(drop).map_err(|e| e.message)
}

fn decode_body(path: &str, b: &Bytes) -> Result<(), String> {
    match path {
        "experiments/create" => body::<experiments::CreateExperiment>(b),
        "experiments/search" => body::<experiments::SearchExperiments>(b),
        "experiments/update"
        | "experiments/delete"
        | "experiments/set-experiment-tag"
        | "experiments/delete-experiment-tag" => body::<experiments::ExperimentEdit>(b),
        "experiments/search-datasets" => body::<super::inputs::SearchDatasets>(b),
        "datasets/create" => body::<super::datasets::CreateDataset>(b),
        "datasets/search" => body::<super::datasets::SearchDatasets>(b),
        "datasets/tags" => body::<super::datasets::TagsBody>(b),
        "datasets/records" => body::<super::datasets::RecordsBody>(b),
        "datasets/delete-records" => body::<super::datasets::DeleteRecords>(b),
        "datasets/add-experiments" => body::<super::datasets::Experiments>(b),
        "graphql" => super::graphql::fuzz_decode(b),
        "runs/create" => body::<runs::CreateRun>(b),
        "runs/update" => body::<runs::UpdateRun>(b),
        "runs/delete" => body::<super::RunRef>(b),
        "runs/search" => body::<runs::SearchRuns>(b),
        "runs/log-metric" => body::<metrics::LogMetric>(b),
        "runs/log-parameter" | "runs/set-tag" => body::<runs::LogParam>(b),
        "runs/delete-tag" => body::<runs::DeleteTag>(b),
        "runs/log-batch" => body::<metrics::LogBatchRequest>(b),
        "runs/log-inputs" => body::<inputs::LogInputs>(b),
        "registered-models/create" => body::<registry::CreateModel>(b),
        "registered-models/delete" => body::<registry::NameQuery>(b),
        "registered-models/search" | "model-versions/search" => registry::fuzz_search_body(b),
        "registered-models/alias" => body::<registry::AliasReq>(b),
        "model-versions/create" => body::<registry::CreateVersion>(b),
        "logged-models" => body::<logged_models::CreateReq>(b),
        "logged-models/search" => body::<logged_models::SearchReq>(b),
        "logged-models/{model_id}" => body::<logged_models::FinalizeReq>(b),
        "logged-models/{model_id}/tags" => body::<logged_models::TagsReq>(b),
        "logged-models/{model_id}/params" => body::<logged_models::ParamsReq>(b),
        "runs/outputs" => body::<logged_models::OutputsReq>(b),
        other => Err(format!("no body decoder for {other}")),
    }
}

fn decode_query(path: &str, uri: &Uri) -> Result<(), String> {
    match path {
        "experiments/get" | "experiments/get-by-name" => {
            query::<experiments::ExperimentIdQuery>(uri)
        }
        "experiments/search" => {
            super::query_lists::<experiments::SearchExperiments>(uri, experiments::SEARCH_LISTS)
                .map(drop)
                .map_err(|e| e.message)
        }
        "runs/get" => query::<super::RunRef>(uri),
        "metrics/get-history" => query::<metrics::HistoryQuery>(uri),
        "metrics/get-history-bulk" => {
            super::query_lists::<super::bulk::BulkQuery>(uri, super::bulk::BULK_LISTS)
                .map(drop)
                .map_err(|e| e.message)
        }
        "metrics/get-history-bulk-interval" => {
            super::query_lists::<super::bulk::IntervalQuery>(uri, super::bulk::INTERVAL_LISTS)
                .map(drop)
                .map_err(|e| e.message)
        }
        "upload-artifact" => query::<super::webui::UploadQuery>(uri),
        "datasets/search" => super::query_lists::<super::datasets::SearchDatasets>(
            uri,
            super::datasets::SEARCH_LISTS,
        )
        .map(drop)
        .map_err(|e| e.message),
        "datasets/records" => query::<super::datasets::RecordsQuery>(uri),
        "artifacts/list" => query::<super::artifacts::ListQuery>(uri),
        "registered-models/get" | "model-versions/get" => query::<registry::NameQuery>(uri),
        "mlflow-artifacts/artifacts" => query::<super::artifacts::PathQuery>(uri),
        "registered-models/search" | "model-versions/search" => registry::fuzz_search_query(uri),
        other => Err(format!("no query decoder for {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_has_a_decoder() {
        for (i, (path, _)) in ENDPOINTS.iter().enumerate() {
            let err = decode_request(i, b"").err().unwrap_or_default();
            assert!(!err.starts_with("no "), "{path}: {err}");
        }
    }

    #[test]
    fn bodies_decode_as_the_handlers_decode_them() {
        let batch = ENDPOINTS
            .iter()
            .position(|(p, _)| *p == "runs/log-batch")
            .unwrap();
        assert_eq!(
            decode_request(
                batch,
                br#"{"run_id":"r","metrics":[{"key":"loss","value":"NaN","timestamp":"5","step":1}]}"#
            ),
            Ok(())
        );
        let err =
            decode_request(batch, br#"{"metrics":[{"key":"loss","value":"x"}]}"#).unwrap_err();
        assert!(
            err.starts_with(r#"Invalid value "x" for parameter 'metrics[0].value' supplied"#),
            "{err}"
        );
        let get = ENDPOINTS
            .iter()
            .position(|(p, _)| *p == "metrics/get-history")
            .unwrap();
        assert_eq!(decode_request(get, b"run_id=r&max_results=10"), Ok(()));
        assert!(decode_request(get, b"max_results=ten").is_err());
    }
}
