//! MLflow servers read over REST by `Workspace::import_mlflow("http://…")`: a scripted server on
//! loopback answers as MLflow's does (paged listings, NaN as text, a deleted version missing
//! from the search), fails as servers fail (5xx that pass, a 404 with a body, page tokens that
//! repeat). The real `mlflow server` is tested in tests/mlflow.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use cairn_core::Code;
use cairn_model::RunId;
use serde_json::json;

const RUN: &str = "0123456789abcdef0123456789abcdef";

type Answer = (u16, Vec<u8>);
type Route = dyn Fn(&str, &HashMap<String, String>, &str) -> Answer + Send + Sync;

/// A server on a loopback port answering each request with `route(path, query, body)`; it
/// counts the requests. Lives as long as the test process (its thread blocks in accept).
fn serve(route: Arc<Route>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let n = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            n.fetch_add(1, Ordering::SeqCst);
            let route = route.clone();
            std::thread::spawn(move || answer(stream, &*route));
        }
    });
    (url, count)
}

fn answer(stream: TcpStream, route: &Route) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let target = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let query: HashMap<String, String> = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), decode(v)))
        .collect();
    let (status, out) = route(path, &query, &String::from_utf8_lossy(&body));
    let mut stream = stream;
    let head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\
         Connection: close\r\n\r\n",
        out.len()
    );
    // A client that went away is the test's to notice, not the server's.
    if stream.write_all(head.as_bytes()).is_ok() {
        stream.write_all(&out).ok();
    }
}

fn decode(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn ok(v: serde_json::Value) -> Answer {
    (200, v.to_string().into_bytes())
}

/// MLflow's answers for one experiment, one run (two pages of a history with NaN and the SQL
/// store's infinity, a nested artifact), and a model whose version 2 was deleted.
fn mlflow(path: &str, q: &HashMap<String, String>, body: &str) -> Answer {
    let token = |t: &str| q.get("page_token").map(String::as_str) == Some(t);
    match path {
        "/api/2.0/mlflow/experiments/search" => {
            if body.contains("\"page_token\":\"e2\"") {
                ok(json!({"experiments": [
                    {"experiment_id": "0", "name": "Default", "lifecycle_stage": "active"}]}))
            } else {
                ok(
                    json!({"experiments": [{"experiment_id": "4", "name": "vision",
                    "lifecycle_stage": "active", "tags": [{"key": "team", "value": "cv"}]}],
                    "next_page_token": "e2"}),
                )
            }
        }
        "/api/2.0/mlflow/runs/search" if body.contains("\"4\"") => ok(json!({"runs": [{
            "info": {"run_id": RUN, "run_uuid": RUN, "experiment_id": "4", "run_name": "trial",
                     "user_id": "bob", "status": "FINISHED", "start_time": 1000,
                     "end_time": 2000, "artifact_uri": "mlflow-artifacts:/4/x/artifacts",
                     "lifecycle_stage": "active"},
            "data": {"metrics": [{"key": "loss", "value": 0.5, "timestamp": 3, "step": 3}],
                     "params": [{"key": "lr", "value": "0.1"}],
                     "tags": [{"key": "mlflow.runName", "value": "trial"}]}}]})),
        "/api/2.0/mlflow/runs/search" => ok(json!({})),
        "/api/2.0/mlflow/metrics/get-history" => {
            assert_eq!(q.get("metric_key").map(String::as_str), Some("loss"));
            if token("p2") {
                ok(json!({"metrics": [
                    {"key": "loss", "value": 1.7976931348623157e308, "timestamp": 2, "step": 2},
                    {"key": "loss", "value": 0.5, "timestamp": 3, "step": 3}]}))
            } else {
                // The server's order is by timestamp: the importer orders by step.
                ok(json!({"metrics": [
                    {"key": "loss", "value": "NaN", "timestamp": 0, "step": 1},
                    {"key": "loss", "value": 1.5, "timestamp": 1, "step": 0}],
                    "next_page_token": "p2"}))
            }
        }
        "/api/2.0/mlflow/artifacts/list" => match q.get("path").map(String::as_str) {
            None => ok(json!({"files": [{"path": "model", "is_dir": true},
                                        {"path": "notes.txt", "is_dir": false, "file_size": 5}]})),
            Some("model") => ok(json!({"files": [
                {"path": "model/weights.bin", "is_dir": false, "file_size": 7}]})),
            Some(other) => (404, format!("no {other}").into_bytes()),
        },
        "/get-artifact" => match q.get("path").map(String::as_str) {
            Some("notes.txt") => (200, b"notes".to_vec()),
            Some("model/weights.bin") => (200, b"weights".to_vec()),
            _ => (404, b"{}".to_vec()),
        },
        "/api/2.0/mlflow/registered-models/search" => ok(json!({"registered_models": [{
            "name": "clf", "creation_timestamp": 5, "description": "a model",
            "aliases": [{"alias": "champion", "version": "3"}]}]})),
        "/api/2.0/mlflow/model-versions/search" => {
            assert_eq!(q.get("filter").map(String::as_str), Some("name='clf'"));
            let v = |n: &str| {
                json!({"name": "clf", "version": n, "source": format!("runs:/{RUN}/model"),
                       "run_id": RUN, "current_stage": "None"})
            };
            ok(json!({"model_versions": [v("1"), v("3")]}))
        }
        _ => (404, format!("no route {path}").into_bytes()),
    }
}

#[test]
fn a_server_comes_page_by_page_as_a_store_does() {
    let (_dir, ws) = super::workspace();
    let (url, _) = serve(Arc::new(mlflow));
    let r = ws.import_mlflow(&url, &[], &mut |_| {}).unwrap();
    assert_eq!(r.source, url);
    assert_eq!((r.in_source.experiments, r.runs_created), (2, 1));
    assert_eq!((r.added.points, r.added.artifacts), (4, 2));
    assert_eq!(r.artifact_bytes, 12);
    // Version 2, deleted in MLflow, is not in its search: it comes as deleted, so 3 stays 3.
    assert_eq!((r.in_source.versions, r.added.aliases), (3, 1));
    assert!(r.skipped.is_empty(), "{:?}", r.skipped);

    let run: RunId = RUN.parse().unwrap();
    let pts = ws.metric_history(run, "loss").unwrap();
    assert_eq!(pts.iter().map(|p| p.step).collect::<Vec<_>>(), [0, 1, 2, 3]);
    assert!(pts[1].value.is_nan());
    assert_eq!(pts[2].value, f64::INFINITY);
    let files = ws.run(run).unwrap().run.artifacts;
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["model/weights.bin", "notes.txt"]
    );
    assert_eq!(ws.experiment_by_mlflow_id("4").unwrap().name, "vision");
    let m = ws.registered_model("clf").unwrap();
    let live: Vec<u32> = m
        .versions
        .iter()
        .filter(|v| v.deleted.is_none())
        .map(|v| v.version)
        .collect();
    assert_eq!(live, [1, 3]);
    let champion = m.versions.iter().find(|v| v.version == 3).unwrap();
    assert_eq!(champion.aliases, ["champion"]);

    let again = ws.import_mlflow(&url, &[], &mut |_| {}).unwrap();
    assert_eq!(again.added, Default::default(), "{again:?}");
    assert_eq!(again.present.points, 4);
}

#[test]
fn failures_that_pass_are_tried_again() {
    let (_dir, ws) = super::workspace();
    let failures = Arc::new(Mutex::new(2));
    let f = failures.clone();
    let (url, count) = serve(Arc::new(
        move |path: &str, q: &HashMap<String, String>, body: &str| {
            if path.ends_with("experiments/search") {
                let mut left = f.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    return (503, b"busy".to_vec());
                }
            }
            mlflow(path, q, body)
        },
    ));
    let r = ws.import_mlflow(&url, &[], &mut |_| {}).unwrap();
    assert_eq!(r.runs_created, 1);
    assert_eq!(*failures.lock().unwrap(), 0);
    assert!(count.load(Ordering::SeqCst) > 2);
}

#[test]
fn a_refusal_is_named_with_its_url_status_and_body_and_stores_nothing() {
    let (_dir, ws) = super::workspace();
    let (url, count) = serve(Arc::new(
        |path: &str, q: &HashMap<String, String>, body: &str| {
            if path.ends_with("runs/search") {
                return (
                    403,
                    br#"{"error_code": "PERMISSION_DENIED", "message": "who are you"}"#.to_vec(),
                );
            }
            mlflow(path, q, body)
        },
    ));
    let e = ws
        .import_mlflow(&format!("{url}/"), &[], &mut |_| {})
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("{url}/api/2.0/mlflow/runs/search")),
        "{msg}"
    );
    assert!(msg.contains("403") && msg.contains("who are you"), "{msg}");
    // A 4xx is not tried again: two experiment pages, one runs search.
    assert_eq!(count.load(Ordering::SeqCst), 3);
    assert!(ws.experiment("vision").is_err(), "nothing is written");
}

#[test]
fn a_page_token_handed_out_twice_ends_the_listing() {
    let (_dir, ws) = super::workspace();
    let (url, _) = serve(Arc::new(
        |path: &str, q: &HashMap<String, String>, body: &str| {
            if path.ends_with("experiments/search") {
                return ok(json!({"experiments": [], "next_page_token": "again"}));
            }
            mlflow(path, q, body)
        },
    ));
    let e = ws.import_mlflow(&url, &[], &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("\"again\""), "{e}");
    assert!(e.to_string().contains("twice"), "{e}");
}

#[test]
fn what_is_not_an_mlflow_answer_is_refused_by_url() {
    let (_dir, ws) = super::workspace();
    let (url, _) = serve(Arc::new(
        |path: &str, q: &HashMap<String, String>, body: &str| {
            if path.ends_with("get-history") {
                return ok(json!({"metrics": [{"key": "loss", "value": "plenty"}]}));
            }
            mlflow(path, q, body)
        },
    ));
    let e = ws.import_mlflow(&url, &[], &mut |_| {}).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("get-history") && msg.contains("not an MLflow answer"),
        "{msg}"
    );
    assert!(msg.contains("plenty"), "{msg}");
}

#[test]
fn a_url_that_is_not_a_server_is_refused() {
    let (_dir, ws) = super::workspace();
    for bad in ["http://", "https://:5000"] {
        let e = ws.import_mlflow(bad, &[], &mut |_| {}).unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{bad}: {e}");
    }
}
