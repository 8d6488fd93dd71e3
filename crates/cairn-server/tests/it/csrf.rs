//! What a web page on another origin can make a browser send, refused: writes as `text/plain`,
//! forms or without a Content-Type (no CORS preflight needed for those), any write carrying a
//! foreign or opaque `Origin` or `Sec-Fetch-Site: cross-site`, and an unreadable or doubled Host
//! header. GET routes write nothing. Tracking clients (no Origin, JSON bodies) are unaffected.

use serde_json::json;

use crate::http::{Request, assert_api_error, assert_mlflow_error};
use crate::server::{Seeded, TestServer};

const EVIL: &str = "http://evil.example";

/// The experiments the workspace holds, by name, read from disk after the server stopped.
/// The experiments the workspace holds when the server has stopped, besides the default one
/// (MLflow's "0", which a workspace has from its creation).
fn experiment_names(server: TestServer) -> Vec<String> {
    let stopped = server.stop();
    let default = stopped
        .ws
        .default_experiment()
        .expect("the default experiment");
    let mut names: Vec<String> = stopped
        .ws
        .experiments_all()
        .expect("experiments")
        .into_iter()
        .filter(|e| e.id != default.id)
        .map(|e| e.name)
        .collect();
    names.sort();
    names
}

#[test]
fn writes_that_are_not_json_are_refused_and_change_nothing() {
    let server = TestServer::start();
    let seed = Seeded::new(&server);
    let id = seed.id.clone();
    let create = json!({ "name": "from-a-page" }).to_string();
    let run = json!({ "experiment_id": "0", "run_name": "from-a-page" }).to_string();
    let batch = json!({ "run_id": id, "params": [{ "key": "evil", "value": "1" }] }).to_string();
    let delete = json!({ "run_id": id }).to_string();
    let cases: Vec<(&str, Option<&str>, &str)> = vec![
        ("runs/create", Some("text/plain"), &run),
        ("runs/create", Some("text/plain;charset=UTF-8"), &run),
        (
            "experiments/create",
            Some("application/x-www-form-urlencoded"),
            &create,
        ),
        (
            "experiments/create",
            Some("multipart/form-data; boundary=x"),
            &create,
        ),
        ("experiments/create", None, &create),
        ("runs/log-batch", Some("text/plain"), &batch),
        ("runs/delete", Some("text/plain"), &delete),
        ("runs/delete", Some("application/jsonp"), &delete),
    ];
    for (path, content_type, body) in cases {
        let mut req = Request::new("POST", format!("/api/2.0/mlflow/{path}")).body(body);
        if let Some(t) = content_type {
            req = req.header("Content-Type", t);
        }
        let resp = server.send(&req);
        let msg = assert_mlflow_error(&resp, 415, "INVALID_PARAMETER_VALUE");
        assert!(msg.contains("application/json"), "{path}: {msg}");
        match content_type {
            Some(t) => assert!(msg.contains(t), "{path}: the message names '{t}': {msg}"),
            None => assert!(msg.contains("no Content-Type"), "{path}: {msg}"),
        }
        server.assert_alive(&format!("POST {path} as {content_type:?}"));
    }
    // An empty POST without a Content-Type (`fetch(url, {method: 'POST'})`) is refused too.
    let resp = server.send(&Request::new("POST", "/api/2.0/mlflow/runs/create"));
    assert_mlflow_error(&resp, 415, "INVALID_PARAMETER_VALUE");

    // Cairn's own API answers in its own shape.
    let resp = server.send(
        &Request::new("PUT", "/api/v1/views/sneaky")
            .header("Content-Type", "text/plain")
            .body(json!({ "query": "x" }).to_string()),
    );
    let msg = assert_api_error(&resp, 415, "INVALID_ARGUMENT");
    assert!(msg.contains("text/plain"), "{msg}");

    // JSON with a charset is JSON.
    let resp = server.send(
        &Request::new("POST", "/api/2.0/mlflow/runs/set-tag")
            .header("Content-Type", "application/json; charset=utf-8")
            .body(json!({ "run_id": id, "key": "ok", "value": "1" }).to_string()),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = server.send(
        &Request::new("POST", "/api/2.0/mlflow/runs/delete-tag")
            .header("Content-Type", "application/json")
            .body(json!({ "run_id": id, "key": "ok" }).to_string()),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());

    seed.assert_unharmed(&server);
    let run = server.run(&id);
    assert_eq!(run["info"]["lifecycle_stage"], "active");
    assert!(
        server
            .get("/api/v1/views")
            .ok()
            .as_array()
            .expect("views")
            .is_empty()
    );
    assert_eq!(experiment_names(server), Vec::<String>::new());
}

#[test]
fn writes_from_another_origin_are_refused_whatever_their_body() {
    let server = TestServer::start();
    let seed = Seeded::new(&server);
    let id = seed.id.clone();
    let own = format!("http://127.0.0.1:{}", server.addr.port());
    let artifact =
        format!("/api/2.0/mlflow-artifacts/artifacts/0/{id}/artifacts/model/weights.bin");
    let writes = || {
        vec![
            Request::post(
                "/api/2.0/mlflow/experiments/create",
                &json!({ "name": "from-a-page" }),
            ),
            Request::post(
                "/api/2.0/mlflow/runs/log-batch",
                &json!({ "run_id": id, "params": [{ "key": "evil", "value": "1" }] }),
            ),
            Request::post("/api/2.0/mlflow/runs/delete", &json!({ "run_id": id })),
            Request::new("PUT", "/api/v1/views/sneaky")
                .json_bytes(json!({ "query": "x" }).to_string()),
            Request::new("DELETE", "/api/v1/views/sneaky"),
            Request::new("PUT", &artifact)
                .header("Content-Type", "text/plain")
                .body("overwritten"),
            Request::new("DELETE", &artifact),
            Request::new("OPTIONS", "/api/2.0/mlflow/runs/create"),
        ]
    };
    let foreign: Vec<(&str, String)> = vec![
        ("Origin", EVIL.to_owned()),
        ("Origin", "null".to_owned()),
        (
            "Origin",
            format!("http://127.0.0.1:{}", server.addr.port() + 1),
        ),
        (
            "Origin",
            format!("https://127.0.0.1:{}", server.addr.port()),
        ),
        ("Origin", format!("http://localhost:{}", server.addr.port())),
        ("Sec-Fetch-Site", "cross-site".to_owned()),
    ];
    for (name, value) in &foreign {
        for req in writes() {
            let resp = server.send(&req.header(name, value));
            let msg = assert_mlflow_error(&resp, 403, "PERMISSION_DENIED");
            assert!(msg.contains("other origins"), "{name}: {value}: {msg}");
        }
        server.assert_alive(&format!("writes with {name}: {value}"));
    }
    // Reads from any origin are answered (the browser keeps the answer from the page: no CORS).
    let resp = server.send(
        &Request::get(format!("/api/2.0/mlflow/runs/get?run_id={id}")).header("Origin", EVIL),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    seed.assert_unharmed(&server);
    assert!(
        server
            .get("/api/v1/views")
            .ok()
            .as_array()
            .expect("views")
            .is_empty()
    );

    // The server's own pages may write (the UI saves views), as may clients without an Origin.
    let resp = server.send(
        &Request::new("PUT", "/api/v1/views/mine")
            .header("Origin", &own)
            .header("Sec-Fetch-Site", "same-origin")
            .json_bytes(json!({ "query": "x" }).to_string()),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = server.send(
        &Request::new("PUT", "/api/v1/views/mine")
            .host(format!("localhost:{}", server.addr.port()))
            .header("Origin", format!("http://LOCALHOST:{}", server.addr.port()))
            .json_bytes(json!({ "query": "y" }).to_string()),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(experiment_names(server), Vec::<String>::new());
}

#[test]
fn reads_create_nothing() {
    let server = TestServer::start();
    for target in [
        "/api/2.0/mlflow/experiments/get?experiment_id=0".to_owned(),
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default".to_owned(),
        "/api/2.0/mlflow/experiments/search?max_results=10".to_owned(),
        "/api/2.0/mlflow/registered-models/search".to_owned(),
        "/api/v1/experiments".to_owned(),
        "/api/v1/runs".to_owned(),
        "/api/v1/search?q=".to_owned(),
        "/api/v1/info".to_owned(),
        "/api/v1/views".to_owned(),
        "/api/v1/sync".to_owned(),
    ] {
        let resp = server.get(&target);
        assert_eq!(resp.status, 200, "{target}: {}", resp.text());
    }
    // Experiment "0" is MLflow's Default, there before anything was logged to it.
    let exp = server
        .get("/api/2.0/mlflow/experiments/get?experiment_id=0")
        .ok();
    assert_eq!(exp["experiment"]["experiment_id"], "0");
    assert_eq!(exp["experiment"]["name"], "Default");
    assert_eq!(exp["experiment"]["lifecycle_stage"], "active");
    let by_name = server
        .get("/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default")
        .ok();
    assert_eq!(by_name["experiment"]["experiment_id"], "0");
    let listed = server
        .get("/api/2.0/mlflow/experiments/search?max_results=10")
        .ok();
    assert_eq!(listed["experiments"][0]["experiment_id"], "0");
    // Searches are POSTs that read.
    let runs = server
        .mlflow("runs/search", &json!({ "experiment_ids": ["0"] }))
        .ok();
    assert!(
        runs.get("runs")
            .is_none_or(|r| r.as_array().is_some_and(Vec::is_empty))
    );
    server.mlflow("experiments/search", &json!({})).ok();
    assert!(
        experiment_names(server).is_empty(),
        "a read created an experiment"
    );
}

#[test]
fn the_default_experiment_is_experiment_0_and_takes_runs_without_an_experiment() {
    let server = TestServer::start();
    let id = server.create_run();
    let run = server.run(&id);
    assert_eq!(run["info"]["experiment_id"], "0");
    let exp = server
        .get("/api/2.0/mlflow/experiments/get?experiment_id=0")
        .ok();
    assert_eq!(exp["experiment"]["name"], "Default");
    let runs = server
        .mlflow("runs/search", &json!({ "experiment_ids": ["0"] }))
        .ok();
    assert_eq!(runs["runs"][0]["info"]["run_id"], id.as_str());
    assert_eq!(experiment_names(server), Vec::<String>::new());
}

#[test]
fn an_unreadable_or_doubled_host_header_is_refused() {
    let server = TestServer::start();
    let port = server.addr.port();
    let target = "/api/2.0/mlflow/experiments/get?experiment_id=0";
    let own = format!("127.0.0.1:{port}");
    let refusals = [
        // Non-ASCII: was read as "no Host" and let through.
        Request::get(target).host(b"caf\xc3\xa9.example"),
        Request::get(target).host(b"\xff\xfe"),
        // Only the first of two was checked.
        Request::get(target)
            .host(&own)
            .header("Host", "evil.example"),
        Request::get(target)
            .host("evil.example")
            .header("Host", &own),
        Request::get(target).host(&own).header("Host", &own),
    ];
    for req in &refusals {
        let resp = server.send(req);
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert!(msg.contains("Host"), "{msg}");
        server.assert_alive("a bad Host header");
    }
    let resp = server.send(
        &Request::post(
            "/api/2.0/mlflow/experiments/create",
            &json!({ "name": "rebound" }),
        )
        .host(&own)
        .header("Host", "evil.example"),
    );
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert_eq!(server.get(target).status, 200);
    assert!(experiment_names(server).is_empty());
}
