//! Refusals worded as MLflow's server words them, whatever the endpoint: a field of the wrong
//! type names the parameter, its value as Python's `json.dumps` shows it and its Python type; a
//! missing one names the parameter; a missing tag and a local model source read as MLflow's.
//! (The real-client suite compares the same refusals with a live `mlflow server`.)

use serde_json::json;

use crate::http::assert_mlflow_error;
use crate::server::{Seeded, TestServer};

const DOCS: &str = " See the API docs for more information about request parameters.";

fn wrong(value: &str, param: &str, ty: &str) -> String {
    format!(
        "Invalid value {value} for parameter '{param}' supplied:  Hint: Value was of type '{ty}'.{DOCS}"
    )
}

#[test]
fn every_endpoint_names_the_field_of_the_wrong_type() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = seeded.id.as_str();
    let cases = [
        (
            "runs/log-parameter",
            json!({ "run_id": 31, "key": "k", "value": "v" }),
            wrong("31", "run_id", "int"),
        ),
        (
            "runs/set-tag",
            json!({ "run_id": 31, "key": "k", "value": "v" }),
            wrong("31", "run_id", "int"),
        ),
        (
            "runs/update",
            json!({ "run_id": 31 }),
            wrong("31", "run_id", "int"),
        ),
        (
            "runs/delete",
            json!({ "run_id": 31 }),
            wrong("31", "run_id", "int"),
        ),
        (
            "runs/log-batch",
            json!({ "run_id": id, "metrics": "foo" }),
            wrong("\"foo\"", "metrics", "str"),
        ),
        (
            "runs/log-batch",
            json!({ "run_id": id, "params": [{ "key": "a", "value": "1" }, { "key": 5 }] }),
            wrong("5", "params[1].key", "int"),
        ),
        (
            "runs/log-metric",
            json!({ "run_id": id, "key": "k", "value": [1], "timestamp": 1 }),
            wrong("[1]", "value", "list"),
        ),
        (
            "runs/log-metric",
            json!({ "run_id": id, "key": "k", "value": 1, "timestamp": "é" }),
            wrong("\"\\u00e9\"", "timestamp", "str"),
        ),
        (
            "runs/create",
            json!({ "experiment_id": 0 }),
            wrong("0", "experiment_id", "int"),
        ),
        (
            "runs/create",
            json!({ "tags": { "a": 1 } }),
            wrong("{\"a\":1}", "tags", "dict"),
        ),
        (
            "runs/search",
            json!({ "max_results": "many" }),
            wrong("\"many\"", "max_results", "str"),
        ),
        (
            "runs/search",
            json!({ "filter": false }),
            wrong("false", "filter", "bool"),
        ),
        (
            "experiments/create",
            json!({ "name": 123 }),
            wrong("123", "name", "int"),
        ),
        (
            "experiments/create",
            json!({ "name": { "b": 1, "a": [1.0, 1e20, null] } }),
            wrong("{\"a\":[1.0,1e+20,null],\"b\":1}", "name", "dict"),
        ),
        (
            "experiments/create",
            json!({ "name": "x", "tags": "x" }),
            wrong("\"x\"", "tags", "str"),
        ),
        (
            "experiments/update",
            json!({ "experiment_id": 0, "new_name": "n" }),
            wrong("0", "experiment_id", "int"),
        ),
        (
            "experiments/search",
            json!({ "max_results": 1.5 }),
            wrong("1.5", "max_results", "float"),
        ),
        (
            "runs/log-inputs",
            json!({ "run_id": id, "datasets": {} }),
            wrong("{}", "datasets", "dict"),
        ),
    ];
    for (path, body, says) in &cases {
        let resp = server.mlflow(path, body);
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert_eq!(&msg, says, "{path} {body}");
    }
    // A GET's query string: every value is text, as Flask gives it to MLflow.
    let resp = server.get("/api/2.0/mlflow/experiments/search?max_results=ten");
    let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert_eq!(msg, wrong("\"ten\"", "max_results", "str"));
    seeded.assert_unharmed(&server);
    seeded.assert_stored(&server.stop());
}

#[test]
fn missing_parameters_are_named_as_mlflow_names_them() {
    let server = TestServer::start();
    let missing = |p: &str| format!("Missing value for required parameter '{p}'.{DOCS}");
    for (path, body, param) in [
        (
            "runs/log-parameter",
            json!({ "key": "k", "value": "v" }),
            "run_id",
        ),
        (
            "runs/log-parameter",
            json!({ "run_id": "", "key": "k" }),
            "run_id",
        ),
        (
            "runs/log-metric",
            json!({ "run_id": "r", "value": 1 }),
            "key",
        ),
        (
            "runs/log-batch",
            json!({ "run_id": "r", "metrics": [{ "value": 1 }] }),
            "metrics[0].key",
        ),
        ("experiments/create", json!({}), "name"),
        (
            "experiments/update",
            json!({ "experiment_id": "0" }),
            "new_name",
        ),
    ] {
        let resp = server.mlflow(path, &body);
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert_eq!(msg, missing(param), "{path} {body}");
    }
    let resp = server.get("/api/2.0/mlflow/metrics/get-history?metric_key=m");
    let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert_eq!(msg, missing("run_id"));
}

#[test]
fn unknown_runs_and_tags_read_as_mlflows() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = seeded.id.as_str();
    let resp = server.mlflow(
        "runs/delete-tag",
        &json!({ "run_id": id, "key": "never-set" }),
    );
    let msg = assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(
        msg,
        format!("No tag with name: never-set in run with id {id}")
    );
    let resp = server.get("/api/2.0/mlflow/runs/get?run_id=31");
    let msg = assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    assert_eq!(msg, "Run with id=31 not found");
    seeded.assert_unharmed(&server);
}

#[test]
fn a_local_model_source_is_refused() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    server
        .mlflow("registered-models/create", &json!({ "name": "m" }))
        .ok();
    let resp = server.mlflow(
        "model-versions/create",
        &json!({ "name": "m", "source": "/tmp/model" }),
    );
    let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert_eq!(
        msg,
        "Invalid model version source: '/tmp/model'. To use a local path as a model version \
         source, the run_id request parameter has to be specified and the local path has to be \
         contained within the artifact directory of the run specified by the run_id."
    );
    let resp = server.mlflow(
        "model-versions/create",
        &json!({ "name": "m", "source": "file:///a/../b", "run_id": seeded.id }),
    );
    let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert!(
        msg.starts_with("Invalid model version source: '/b'."),
        "{msg}"
    );
    let got = server
        .get("/api/2.0/mlflow/registered-models/get?name=m")
        .ok();
    assert!(
        got["registered_model"]["latest_versions"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "{got}"
    );
}
