//! Bad input to the MLflow API: malformed JSON, missing fields, oversized batches, unknown and
//! malformed run ids, invalid UTF-8. Each is refused with MLflow's `{"error_code","message"}` and
//! leaves what is stored as it was.

use serde_json::{Value, json};

use crate::http::{Request, assert_mlflow_error};
use crate::server::{Seeded, TestServer};

/// Endpoints that take a JSON body naming a run, with a body that is otherwise valid.
fn run_bodies(run: &str) -> Vec<(&'static str, Value)> {
    vec![
        (
            "runs/log-metric",
            json!({ "run_id": run, "key": "loss", "value": 0.1, "timestamp": 5000, "step": 9 }),
        ),
        (
            "runs/log-parameter",
            json!({ "run_id": run, "key": "new_param", "value": "1" }),
        ),
        (
            "runs/set-tag",
            json!({ "run_id": run, "key": "team", "value": "changed" }),
        ),
        ("runs/delete-tag", json!({ "run_id": run, "key": "team" })),
        (
            "runs/log-batch",
            json!({ "run_id": run, "params": [{ "key": "new_param", "value": "1" }] }),
        ),
        (
            "runs/log-inputs",
            json!({ "run_id": run, "datasets": [{ "dataset": { "name": "other", "digest": "x" } }] }),
        ),
        (
            "runs/update",
            json!({ "run_id": run, "status": "KILLED", "run_name": "renamed" }),
        ),
        ("runs/delete", json!({ "run_id": run })),
        ("runs/restore", json!({ "run_id": run })),
    ]
}

#[test]
fn malformed_json_is_refused_and_harms_nothing() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = &seeded.id;
    // Not JSON, or not a JSON object: refused by every endpoint.
    let syntax: Vec<Vec<u8>> = vec![
        format!(r#"{{"run_id": "{id}", "key": "new_param", "value": "1""#).into_bytes(),
        b"not json".to_vec(),
        b"{\"run_id\": }".to_vec(),
        format!(r#"{{"run_id": "{id}", "key": "new_param", "value": "1"}} trailing"#).into_bytes(),
        format!(r#"[{{"run_id": "{id}"}}]"#).into_bytes(),
        b"\"just a string\"".to_vec(),
        b"null".to_vec(),
        format!(r#"{{"run_id": "{id}", "key": "k", "value": NaN}}"#).into_bytes(),
    ];
    // Well-formed JSON with fields of the wrong type, and how MLflow words each refusal.
    let types: Vec<(Vec<u8>, String)> = vec![
        (
            format!(r#"{{"run_id": "{id}", "key": 7, "value": "1"}}"#).into_bytes(),
            "Invalid value 7 for parameter 'key' supplied:  Hint: Value was of type 'int'. See \
             the API docs for more information about request parameters."
                .to_owned(),
        ),
        (
            format!(r#"{{"run_id": ["{id}"], "key": "new_param", "value": "1"}}"#).into_bytes(),
            format!(
                r#"Invalid value ["{id}"] for parameter 'run_id' supplied:  Hint: Value was of type 'list'."#
            ),
        ),
        (
            format!(r#"{{"run_id": "{id}", "key": {{"k": 1}}, "value": "1"}}"#).into_bytes(),
            r#"Invalid value {"k":1} for parameter 'key' supplied:  Hint: Value was of type 'dict'."#
                .to_owned(),
        ),
        // Out of the range of a double (an ignored field may hold it; these fields are read):
        // not JSON a client could have meant.
        (
            format!(r#"{{"run_id": "{id}", "key": "k", "value": 1.5e999}}"#).into_bytes(),
            String::new(),
        ),
    ];
    let endpoints = [
        "runs/log-parameter",
        "runs/set-tag",
        "runs/log-metric",
        "runs/log-batch",
        "runs/update",
        "runs/create",
        "runs/search",
        "experiments/create",
        "runs/log-inputs",
        "registered-models/create",
    ];
    let keyed = ["runs/log-parameter", "runs/set-tag", "runs/log-metric"];
    for (path, body) in endpoints
        .iter()
        .flat_map(|p| syntax.iter().map(move |b| (*p, b)))
    {
        let resp =
            server.send(&Request::new("POST", format!("/api/2.0/mlflow/{path}")).json_bytes(body));
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert!(
            msg.contains("malformed"),
            "{path} {}: {msg}",
            String::from_utf8_lossy(body)
        );
    }
    // A field of the wrong type is refused in MLflow's words, naming the field and its value.
    for (path, body) in keyed
        .iter()
        .flat_map(|p| types.iter().map(move |(b, says)| (*p, (b, says))))
    {
        let (body, says) = body;
        let resp =
            server.send(&Request::new("POST", format!("/api/2.0/mlflow/{path}")).json_bytes(body));
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert!(
            if says.is_empty() {
                msg.contains("malformed")
            } else {
                msg.starts_with(says.as_str())
            },
            "{path} {}: {msg}",
            String::from_utf8_lossy(body)
        );
    }
    // A metric value that is neither a number nor one of MLflow's names for non-finite doubles.
    let resp = server.mlflow(
        "runs/log-metric",
        &json!({ "run_id": id, "key": "loss", "value": "fast", "timestamp": 1, "step": 1 }),
    );
    let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert!(
        msg.starts_with(r#"Invalid value "fast" for parameter 'value' supplied:  Hint: Value was of type 'str'."#),
        "{msg}"
    );
    let resp = server.mlflow(
        "runs/log-metric",
        &json!({ "run_id": id, "key": "loss", "value": 1.0, "timestamp": 1, "step": 1.5 }),
    );
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");

    seeded.assert_unharmed(&server);
    let experiments = server
        .mlflow("experiments/search", &json!({ "view_type": "ALL" }))
        .ok();
    assert_eq!(
        experiments["experiments"].as_array().map(Vec::len),
        Some(1),
        "only the Default experiment exists: {experiments}"
    );
    seeded.assert_stored(&server.stop());
}

#[test]
fn missing_required_fields_are_named() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = seeded.id.as_str();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("experiments/create", json!({}), "name"),
        ("experiments/create", json!({ "name": "  " }), "name"),
        (
            "experiments/update",
            json!({ "new_name": "x" }),
            "experiment_id",
        ),
        (
            "experiments/update",
            json!({ "experiment_id": "0" }),
            "new_name",
        ),
        ("experiments/delete", json!({}), "experiment_id"),
        (
            "experiments/set-experiment-tag",
            json!({ "experiment_id": "0", "value": "v" }),
            "key",
        ),
        (
            "runs/log-metric",
            json!({ "key": "loss", "value": 1.0 }),
            "run_id",
        ),
        (
            "runs/log-metric",
            json!({ "run_id": id, "value": 1.0 }),
            "key",
        ),
        (
            "runs/log-metric",
            json!({ "run_id": id, "key": "loss" }),
            "value",
        ),
        (
            "runs/log-parameter",
            json!({ "run_id": id, "value": "1" }),
            "key",
        ),
        (
            "runs/log-parameter",
            json!({ "key": "lr", "value": "1" }),
            "run_id",
        ),
        (
            "runs/log-parameter",
            json!({ "run_id": "", "key": "lr", "value": "1" }),
            "run_id",
        ),
        ("runs/set-tag", json!({ "run_id": id, "value": "1" }), "key"),
        ("runs/delete-tag", json!({ "run_id": id }), "key"),
        ("runs/log-batch", json!({ "metrics": [] }), "run_id"),
        (
            "runs/log-batch",
            json!({ "run_id": id, "metrics": [{ "key": "m" }] }),
            "value",
        ),
        (
            "runs/log-batch",
            json!({ "run_id": id, "params": [{ "value": "v" }] }),
            "key",
        ),
        ("runs/update", json!({ "status": "FINISHED" }), "run_id"),
        ("runs/delete", json!({}), "run_id"),
        ("runs/log-inputs", json!({ "datasets": [] }), "run_id"),
        (
            "runs/log-inputs",
            json!({ "run_id": id, "datasets": [{ "dataset": { "digest": "x" } }] }),
            "name",
        ),
        ("registered-models/create", json!({}), "name"),
        ("model-versions/create", json!({ "name": "m" }), "source"),
        (
            "registered-models/alias",
            json!({ "name": "m", "version": "1" }),
            "alias",
        ),
    ];
    for (path, body, field) in cases {
        let resp = server.mlflow(path, &body);
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert!(
            msg.contains(field),
            "{path} {body}: message does not name '{field}': {msg}"
        );
    }
    let gets = [
        ("runs/get", "run_id"),
        (&*format!("metrics/get-history?run_id={id}"), "metric_key"),
        ("metrics/get-history?metric_key=loss", "run_id"),
        ("experiments/get", "experiment_id"),
        ("experiments/get-by-name", "experiment_name"),
        ("artifacts/list", "run_id"),
        ("registered-models/get", "name"),
        ("model-versions/get?name=m&version=abc", "version"),
    ];
    for (path, field) in gets {
        let resp = server.get(&format!("/api/2.0/mlflow/{path}"));
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert!(
            msg.contains(field),
            "{path}: message does not name '{field}': {msg}"
        );
    }
    seeded.assert_unharmed(&server);
    seeded.assert_stored(&server.stop());
}

fn metrics(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({ "key": format!("m{}", i % 7), "value": i as f64, "timestamp": 1_000 + i, "step": i }))
        .collect()
}

fn kvs(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({ "key": format!("{prefix}{i:04}"), "value": format!("v{i}") }))
        .collect()
}

#[test]
fn oversized_batches_are_refused_whole() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = seeded.id.as_str();
    let refused = [
        (
            json!({ "run_id": id, "metrics": metrics(1001) }),
            "1000 metrics",
        ),
        (
            json!({ "run_id": id, "params": kvs("p", 101) }),
            "100 params",
        ),
        (json!({ "run_id": id, "tags": kvs("t", 101) }), "100 tags"),
        // Each within its own limit, over the limit of 1000 entities in all.
        (
            json!({ "run_id": id, "metrics": metrics(1000), "params": kvs("p", 1) }),
            "1000 metrics, params, and tags",
        ),
        (
            json!({ "run_id": id, "metrics": metrics(900), "params": kvs("p", 100), "tags": kvs("t", 100) }),
            "1000 metrics, params, and tags",
        ),
        // A value over MLflow's length limits.
        (
            json!({ "run_id": id, "params": [{ "key": "big", "value": "x".repeat(6001) }] }),
            "big",
        ),
        (
            json!({ "run_id": id, "tags": [{ "key": "big", "value": "x".repeat(8001) }] }),
            "big",
        ),
    ];
    for (body, says) in &refused {
        let resp = server.mlflow("runs/log-batch", body);
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert!(msg.contains(says), "message does not say '{says}': {msg}");
    }
    let resp = server.mlflow(
        "runs/log-parameter",
        &json!({ "run_id": id, "key": "big", "value": "x".repeat(6001) }),
    );
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    let resp = server.mlflow(
        "runs/set-tag",
        &json!({ "run_id": id, "key": "big", "value": "x".repeat(8001) }),
    );
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    seeded.assert_unharmed(&server);

    // At the limits, a batch goes through whole.
    let other = server.create_run();
    server
        .mlflow(
            "runs/log-batch",
            &json!({ "run_id": other, "metrics": metrics(1000) }),
        )
        .ok();
    server
        .mlflow(
            "runs/log-batch",
            &json!({ "run_id": other, "params": kvs("p", 100), "tags": kvs("t", 100) }),
        )
        .ok();
    server
        .mlflow(
            "runs/log-batch",
            &json!({ "run_id": other, "params": [{ "key": "edge", "value": "x".repeat(6000) }],
                     "tags": [{ "key": "edge", "value": "y".repeat(8000) }] }),
        )
        .ok();
    let run = server.run(&other);
    assert_eq!(run["data"]["params"].as_array().map(Vec::len), Some(101));
    assert_eq!(server.history(&other, "m3").len(), 143);

    let stopped = server.stop();
    seeded.assert_stored(&stopped);
    let stored = stopped.run(&other);
    assert_eq!(stored.params.len(), 101);
    assert_eq!(stored.params["edge"].len(), 6000);
    assert_eq!(stored.tags["edge"].len(), 8000);
    assert_eq!(stored.metrics.values().map(|m| m.count).sum::<u64>(), 1000);
}

#[test]
fn unknown_and_malformed_run_ids_are_resource_does_not_exist() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let unknown = [
        "0123456789abcdef0123456789abcdef".to_owned(),
        cairn_model::RunId::new().to_string(),
        "nope".to_owned(),
        "../../etc/passwd".to_owned(),
        format!("{}0", seeded.id),
        seeded.id[..16].to_owned(),
    ];
    for run in &unknown {
        for (path, body) in run_bodies(run) {
            let resp = server.mlflow(path, &body);
            assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
        }
        if run.contains('/') {
            // In a URL path such an "id" is a malformed artifact path instead; see artifacts.rs.
            continue;
        }
        for path in [
            format!("/api/2.0/mlflow/runs/get?run_id={run}"),
            format!("/api/2.0/mlflow/runs/get?run_uuid={run}"),
            format!("/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key=loss"),
            format!("/api/2.0/mlflow/artifacts/list?run_id={run}"),
            format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/model/weights.bin"),
            format!("/api/2.0/mlflow-artifacts/artifacts?path=0/{run}/artifacts"),
        ] {
            let resp = server.get(&path);
            assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
        }
        let resp = server.send(
            &Request::new(
                "PUT",
                format!("/api/2.0/mlflow-artifacts/artifacts/0/{run}/artifacts/x.txt"),
            )
            .body("x"),
        );
        assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    }
    // Searching an experiment that does not exist.
    let resp = server.mlflow(
        "runs/search",
        &json!({ "experiment_ids": ["01a2b3c4d5e6f70818293a4b5c6d7e8f"] }),
    );
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    let resp = server.mlflow(
        "runs/create",
        &json!({ "experiment_id": "12345", "run_name": "orphan" }),
    );
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    let resp = server.get("/api/2.0/mlflow/experiments/get?experiment_id=12345");
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    let resp = server.get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=nope");
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");

    seeded.assert_unharmed(&server);
    let stopped = server.stop();
    seeded.assert_stored(&stopped);
    let runs = stopped
        .ws
        .runs_page(&cairn_core::RunsQuery::default())
        .expect("count")
        .total;
    assert_eq!(runs, 1, "a request for an unknown run created one");
}

#[test]
fn invalid_utf8_in_a_body_is_refused() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = seeded.id.as_bytes();
    let with = |parts: &[&[u8]]| parts.concat();
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        // In a key, in a value, in a JSON member name, in a run id.
        (
            "runs/log-parameter",
            with(&[
                b"{\"run_id\": \"",
                id,
                b"\", \"key\": \"lr\xff\", \"value\": \"1\"}",
            ]),
        ),
        (
            "runs/log-parameter",
            with(&[
                b"{\"run_id\": \"",
                id,
                b"\", \"key\": \"fresh\", \"value\": \"\xc3\x28\"}",
            ]),
        ),
        (
            "runs/set-tag",
            with(&[
                b"{\"run_id\": \"",
                id,
                b"\", \"key\": \"team\", \"va\xfflue\": \"x\"}",
            ]),
        ),
        (
            "runs/set-tag",
            with(&[
                b"{\"run_id\": \"",
                id,
                b"\", \"key\": \"team\", \"value\": \"\xed\xa0\x80\"}",
            ]),
        ),
        (
            "runs/log-metric",
            with(&[
                b"{\"run_id\": \"",
                id,
                b"\xfe\", \"key\": \"loss\", \"value\": 1.0}",
            ]),
        ),
        (
            "runs/log-batch",
            with(&[
                b"{\"run_id\": \"",
                id,
                b"\", \"metrics\": [{\"key\": \"lo\x80ss\", \"value\": 1.0}]}",
            ]),
        ),
        // A lone surrogate escape is not a character either.
        (
            "runs/set-tag",
            with(&[
                b"{\"run_id\": \"",
                id,
                b"\", \"key\": \"team\", \"value\": \"\\ud800\"}",
            ]),
        ),
        ("experiments/create", b"{\"name\": \"exp\xff\"}".to_vec()),
    ];
    for (path, body) in &bodies {
        let resp =
            server.send(&Request::new("POST", format!("/api/2.0/mlflow/{path}")).json_bytes(body));
        assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    }
    // Percent-encoded invalid UTF-8 in a query names no run.
    let resp = server.get("/api/2.0/mlflow/runs/get?run_id=%FF%FE");
    assert!(
        matches!(resp.status, 400 | 404),
        "runs/get with %FF%FE: {} {}",
        resp.status,
        resp.text()
    );
    assert!(resp.json()["error_code"].is_string(), "{}", resp.text());

    seeded.assert_unharmed(&server);
    seeded.assert_stored(&server.stop());
}

#[test]
fn keys_that_are_not_keys_are_refused() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = seeded.id.as_str();
    for key in [
        "",
        "   ",
        "../escape",
        "/abs",
        "a\u{0}b",
        "line\nbreak",
        &"k".repeat(251),
    ] {
        for (path, body) in [
            (
                "runs/log-parameter",
                json!({ "run_id": id, "key": key, "value": "1" }),
            ),
            (
                "runs/set-tag",
                json!({ "run_id": id, "key": key, "value": "1" }),
            ),
            (
                "runs/log-metric",
                json!({ "run_id": id, "key": key, "value": 1.0 }),
            ),
        ] {
            let resp = server.mlflow(path, &body);
            assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        }
    }
    seeded.assert_unharmed(&server);
    seeded.assert_stored(&server.stop());
}
