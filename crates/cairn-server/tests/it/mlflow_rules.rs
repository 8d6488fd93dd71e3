//! MLflow's rules over the wire: non-finite doubles round-trip, params cannot change, a refused
//! batch stores nothing, metric histories and searches page without gaps or repeats.

use serde_json::{Value, json};

use crate::http::{Request, assert_mlflow_error};
use crate::server::{Seeded, TestServer};

#[test]
fn non_finite_metric_values_round_trip() {
    let server = TestServer::start();
    let id = server.create_run();
    // MLflow's protobuf JSON writes non-finite doubles as strings; int64 may come as strings.
    let sent: [(Value, &str); 8] = [
        (json!("NaN"), "NaN"),
        (json!("Infinity"), "Infinity"),
        (json!("-Infinity"), "-Infinity"),
        (json!(1.5), "1.5"),
        (json!("nan"), "NaN"),
        (json!("inf"), "Infinity"),
        (json!(-0.0), "-0.0"),
        (json!(f64::MAX), "1.7976931348623157e308"),
    ];
    for (step, (value, _)) in sent.iter().enumerate() {
        server
            .mlflow(
                "runs/log-metric",
                &json!({ "run_id": id, "key": "v", "value": value, "timestamp": (1000 + step).to_string(), "step": step.to_string() }),
            )
            .ok();
    }
    server
        .mlflow(
            "runs/log-batch",
            &json!({ "run_id": id, "metrics": [
                { "key": "b", "value": "NaN", "timestamp": 1, "step": 0 },
                { "key": "b", "value": "-Infinity", "timestamp": 2, "step": 1 },
                { "key": "b", "value": 2.25, "timestamp": 3, "step": 2 },
                { "key": "b", "value": "Infinity", "timestamp": 4, "step": 3 },
            ] }),
        )
        .ok();

    let history = server.history(&id, "v");
    assert_eq!(history.len(), sent.len());
    for (step, ((got_step, ts, got), (_, want))) in history.iter().zip(&sent).enumerate() {
        assert_eq!((*got_step, *ts), (step as i64, 1000 + step as i64));
        let text = match got {
            Value::String(s) => s.clone(),
            Value::Number(n) => {
                let f = n.as_f64().expect("a double");
                if f == 0.0 && f.is_sign_negative() {
                    "-0.0".to_owned()
                } else {
                    f.to_string()
                }
            }
            other => panic!("metric value {other}"),
        };
        let want = if *want == "1.7976931348623157e308" {
            f64::MAX.to_string()
        } else {
            (*want).to_owned()
        };
        assert_eq!(text, want, "step {step}");
    }
    let b: Vec<Value> = server
        .history(&id, "b")
        .into_iter()
        .map(|(_, _, v)| v)
        .collect();
    assert_eq!(
        b,
        [
            json!("NaN"),
            json!("-Infinity"),
            json!(2.25),
            json!("Infinity")
        ]
    );
    // The run's latest values carry the same encoding.
    let run = server.run(&id);
    let latest: Vec<(Value, Value)> = run["data"]["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|m| (m["key"].clone(), m["value"].clone()))
        .collect();
    assert_eq!(
        latest,
        [
            (json!("b"), json!("Infinity")),
            (json!("v"), json!(f64::MAX))
        ]
    );

    let stopped = server.stop();
    let v = stopped.points(&id, "v");
    assert!(v[0].value.is_nan());
    assert_eq!(v[1].value, f64::INFINITY);
    assert_eq!(v[2].value, f64::NEG_INFINITY);
    assert!(v[6].value == 0.0 && v[6].value.is_sign_negative());
    assert_eq!(v[7].value, f64::MAX);
}

#[test]
fn a_param_cannot_change_and_the_original_is_kept() {
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = seeded.id.as_str();
    // The same value again is accepted, as in MLflow.
    server
        .mlflow(
            "runs/log-parameter",
            &json!({ "run_id": id, "key": "lr", "value": "0.1" }),
        )
        .ok();
    let resp = server.mlflow(
        "runs/log-parameter",
        &json!({ "run_id": id, "key": "lr", "value": "0.2" }),
    );
    let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert!(
        msg.contains("lr") && msg.contains("0.1") && msg.contains("0.2"),
        "{msg}"
    );
    let resp = server.mlflow(
        "runs/log-parameter",
        &json!({ "run_uuid": id, "key": "lr", "value": "" }),
    );
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    // In a batch, the changed param refuses the whole batch: the new param, the metric and the
    // tag next to it are not stored.
    let resp = server.mlflow(
        "runs/log-batch",
        &json!({ "run_id": id,
                 "params": [{ "key": "fresh", "value": "1" }, { "key": "lr", "value": "0.3" }],
                 "metrics": [{ "key": "loss", "value": 0.1, "timestamp": 9, "step": 9 }],
                 "tags": [{ "key": "team", "value": "nlp" }] }),
    );
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    seeded.assert_unharmed(&server);
    seeded.assert_stored(&server.stop());
}

#[test]
fn a_batch_refused_for_any_reason_stores_nothing() {
    // MLflow validates the whole batch before it writes any of it.
    let server = TestServer::start();
    let seeded = Seeded::new(&server);
    let id = seeded.id.as_str();
    let bad_batches = [
        // A new param, then a metric whose key is not a key.
        json!({ "run_id": id,
                "params": [{ "key": "fresh", "value": "1" }],
                "metrics": [{ "key": "../loss", "value": 0.1, "timestamp": 9, "step": 9 }] }),
        // Good params and metrics, then a tag whose key is not a key.
        json!({ "run_id": id,
                "params": [{ "key": "fresh", "value": "1" }],
                "metrics": [{ "key": "loss", "value": 0.1, "timestamp": 9, "step": 9 }],
                "tags": [{ "key": "", "value": "x" }] }),
    ];
    for body in &bad_batches {
        let resp = server.mlflow("runs/log-batch", body);
        assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    }
    seeded.assert_unharmed(&server);
    seeded.assert_stored(&server.stop());
}

#[test]
fn one_batch_giving_a_param_two_values_is_refused() {
    // MLflow: "Duplicate parameter keys have been submitted" (INVALID_PARAMETER_VALUE).
    let server = TestServer::start();
    let id = server.create_run();
    let resp = server.mlflow(
        "runs/log-batch",
        &json!({ "run_id": id, "params": [
            { "key": "depth", "value": "3" },
            { "key": "depth", "value": "5" },
        ] }),
    );
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert_eq!(server.run(&id)["data"]["params"], json!([]));
}

#[test]
fn tags_overwrite_and_metrics_append() {
    let server = TestServer::start();
    let id = server.create_run();
    for v in ["a", "b", "c"] {
        server
            .mlflow(
                "runs/set-tag",
                &json!({ "run_id": id, "key": "stage", "value": v }),
            )
            .ok();
    }
    for (ts, v) in [(10, 1.0), (20, 2.0), (30, 3.0)] {
        server
            .mlflow(
                "runs/log-metric",
                &json!({ "run_id": id, "key": "m", "value": v, "timestamp": ts, "step": 7 }),
            )
            .ok();
    }
    let run = server.run(&id);
    let tags = run["data"]["tags"].as_array().expect("tags");
    let stage: Vec<&Value> = tags
        .iter()
        .filter(|t| t["key"] == "stage")
        .map(|t| &t["value"])
        .collect();
    assert_eq!(stage, [&json!("c")]);
    assert_eq!(
        server.history(&id, "m"),
        [
            (7, 10, json!(1.0)),
            (7, 20, json!(2.0)),
            (7, 30, json!(3.0))
        ]
    );
    server
        .mlflow("runs/delete-tag", &json!({ "run_id": id, "key": "stage" }))
        .ok();
    // A tag the run does not have is not found, as MLflow's own server answers.
    let resp = server.mlflow("runs/delete-tag", &json!({ "run_id": id, "key": "stage" }));
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    let stopped = server.stop();
    let run = stopped.run(&id);
    assert!(!run.tags.contains_key("stage"));
    assert_eq!(run.metrics["m"].count, 3);
}

#[test]
fn metric_history_pages_without_gaps_or_repeats() {
    let server = TestServer::start();
    let id = server.create_run();
    let n: usize = 2_345;
    for start in (0..n).step_by(1000) {
        let batch: Vec<Value> = (start..(start + 1000).min(n))
            .map(
                |i| json!({ "key": "loss", "value": (i as f64).sqrt(), "timestamp": i, "step": i }),
            )
            .collect();
        server
            .mlflow("runs/log-batch", &json!({ "run_id": id, "metrics": batch }))
            .ok();
    }
    for page_size in [1_usize, 7, 1000, 2_345, 5000] {
        let mut steps = Vec::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut target = format!(
                "/api/2.0/mlflow/metrics/get-history?run_id={id}&metric_key=loss&max_results={page_size}"
            );
            if let Some(t) = &token {
                target.push_str(&format!("&page_token={t}"));
            }
            let v = server.get(&target).ok();
            let page = v["metrics"].as_array().expect("metrics");
            assert!(page.len() <= page_size);
            steps.extend(page.iter().map(|m| m["step"].as_i64().expect("step")));
            pages += 1;
            match v["next_page_token"].as_str() {
                Some(t) if !t.is_empty() => {
                    assert_eq!(page.len(), page_size, "a short page before the last");
                    token = Some(t.to_owned());
                }
                _ => break,
            }
            assert!(pages <= n, "paging does not end");
        }
        assert_eq!(
            steps,
            (0..n as i64).collect::<Vec<_>>(),
            "page size {page_size}"
        );
        assert_eq!(pages, n.div_ceil(page_size).max(1), "page size {page_size}");
    }
    let resp = server.get(&format!(
        "/api/2.0/mlflow/metrics/get-history?run_id={id}&metric_key=loss&page_token=garbage"
    ));
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    // A metric never logged has an empty history, as in MLflow.
    let v = server
        .get(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={id}&metric_key=never"
        ))
        .ok();
    assert_eq!(v["metrics"], json!([]));
}

#[test]
fn search_pages_see_every_run_once_in_order() {
    let server = TestServer::start();
    let exp = server
        .mlflow("experiments/create", &json!({ "name": "paging" }))
        .ok()["experiment_id"]
        .as_str()
        .expect("experiment id")
        .to_owned();
    let mut ids = Vec::new();
    for i in 0..11 {
        let run = server
            .mlflow(
                "runs/create",
                &json!({ "experiment_id": exp, "start_time": 1_700_000_000_000_i64 + i % 3 }),
            )
            .ok()["run"]["info"]["run_id"]
            .as_str()
            .expect("run id")
            .to_owned();
        // Ties on purpose: four distinct scores for eleven runs.
        server
            .mlflow(
                "runs/log-metric",
                &json!({ "run_id": run, "key": "score", "value": (i % 4) as f64, "timestamp": 1, "step": 0 }),
            )
            .ok();
        ids.push(run);
    }
    let mut want: Vec<(i64, String)> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ((i % 4) as i64, id.clone()))
        .collect();
    want.sort_by_key(|w| std::cmp::Reverse(w.0));
    for page_size in [1, 2, 4, 11, 50] {
        let mut seen: Vec<(i64, String)> = Vec::new();
        let mut token = Value::Null;
        loop {
            let v = server
                .mlflow(
                    "runs/search",
                    &json!({ "experiment_ids": [exp], "max_results": page_size,
                             "order_by": ["metrics.score DESC"], "page_token": token }),
                )
                .ok();
            let runs = v["runs"].as_array().expect("runs");
            assert!(runs.len() <= page_size);
            for r in runs {
                let score = r["data"]["metrics"][0]["value"].as_f64().expect("score") as i64;
                seen.push((score, r["info"]["run_id"].as_str().expect("id").to_owned()));
            }
            token = v["next_page_token"].clone();
            if token.as_str().is_none_or(str::is_empty) {
                break;
            }
        }
        let scores: Vec<i64> = seen.iter().map(|s| s.0).collect();
        let want_scores: Vec<i64> = want.iter().map(|s| s.0).collect();
        assert_eq!(scores, want_scores, "page size {page_size}");
        let mut got_ids: Vec<&String> = seen.iter().map(|s| &s.1).collect();
        got_ids.sort();
        let mut all: Vec<&String> = ids.iter().collect();
        all.sort();
        assert_eq!(
            got_ids, all,
            "page size {page_size}: a run missing or repeated"
        );
    }
    for bad in [json!(0), json!(50_001), json!(-1)] {
        let resp = server.mlflow(
            "runs/search",
            &json!({ "experiment_ids": [exp], "max_results": bad }),
        );
        assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    }
    for body in [
        json!({ "experiment_ids": [exp], "page_token": "o-1" }),
        json!({ "experiment_ids": [exp], "filter": "metrics.score >>> 1" }),
        json!({ "experiment_ids": [exp], "order_by": ["metrics.score SIDEWAYS"] }),
    ] {
        let resp = server.mlflow("runs/search", &body);
        assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    }
}

#[test]
fn unknown_endpoints_answer_in_mlflows_error_shape() {
    // The client shows the body of a failed call; an empty 404 tells the user nothing.
    let server = TestServer::start();
    let resp = server.send(&Request::get("/api/2.0/mlflow/runs/create"));
    assert_eq!(resp.status, 405, "{}", resp.text());
    // A GET the server does not know must not answer 200 with the UI's HTML either: the
    // client would try to read it as the JSON of the call it made.
    let resp = server.get("/api/2.0/mlflow/runs/teleport?run_id=x");
    assert_mlflow_error(&resp, 404, "ENDPOINT_NOT_FOUND");
    let resp = server.mlflow("runs/teleport", &json!({}));
    assert_mlflow_error(&resp, 404, "ENDPOINT_NOT_FOUND");
}

#[test]
fn value_limits_count_characters_not_bytes() {
    // MLflow's limits (6000 for a param value, 8000 for a tag value) are `len(value)` in Python:
    // characters. Its client checks them before sending, so the server must not count bytes.
    let server = TestServer::start();
    let id = server.create_run();
    let param = "é".repeat(6000);
    let tag = "説".repeat(8000);
    server
        .mlflow(
            "runs/log-parameter",
            &json!({ "run_id": id, "key": "accented", "value": param }),
        )
        .ok();
    server
        .mlflow(
            "runs/log-batch",
            &json!({ "run_id": id, "tags": [{ "key": "cjk", "value": tag }] }),
        )
        .ok();
    // One character over is still refused.
    let resp = server.mlflow(
        "runs/log-parameter",
        &json!({ "run_id": id, "key": "over", "value": "é".repeat(6001) }),
    );
    assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    let stopped = server.stop();
    let run = stopped.run(&id);
    assert_eq!(run.params["accented"], param);
    assert_eq!(run.tags["cjk"], tag);
    assert!(!run.params.contains_key("over"));
}
