//! What one request may cost: bodies over their limit refused before they are read, MLflow's
//! batch and page limits, replies and artifacts streamed (and a corrupt artifact cut off, never
//! served whole), pathological LIKE patterns, a time budget for requests and a deadline for
//! request heads. After every hostile request the server is still running and `/health`
//! answers at once.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cairn_server::Limits;
use serde_json::{Value, json};

use crate::http::{Request, assert_api_error, assert_mlflow_error};
use crate::server::{Seeded, TestServer};

/// Writes `head`, then (from another thread, as a client that keeps sending whatever the server
/// answers) `body`; reads until the server closes. Returns the raw response.
fn exchange(
    addr: SocketAddr,
    head: &[u8],
    body: impl FnOnce(&mut TcpStream) + Send + 'static,
) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    stream.write_all(head).expect("write the head");
    let mut writer = stream.try_clone().expect("clone the stream");
    let sender = std::thread::spawn(move || body(&mut writer));
    let mut raw = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            // A reset after the answer (the server closed with our body unread) ends it too.
            Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the response: {e} after {} bytes", raw.len()),
        }
    }
    // The sender stops when the server stops reading; its outcome is not the point.
    sender.join().expect("the sender thread");
    raw
}

/// The status and the body of a raw response (headers and body split at the blank line).
fn status_and_body(raw: &[u8]) -> (u16, String, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head}"));
    (status, head, raw[split + 4..].to_vec())
}

/// Sends chunks of `size` bytes of JSON-looking filler until `total` bytes went or the server
/// stopped reading.
fn chunked_filler(total: usize) -> impl FnOnce(&mut TcpStream) + Send + 'static {
    move |w| {
        let piece = vec![b' '; 256 * 1024];
        let mut sent = 0;
        while sent < total {
            let frame = [format!("{:x}\r\n", piece.len()).as_bytes(), &piece, b"\r\n"].concat();
            if w.write_all(&frame).is_err() {
                return;
            }
            sent += piece.len();
        }
        drop(w.write_all(b"0\r\n\r\n"));
    }
}

fn small_bodies() -> Limits {
    Limits {
        json_body: 64 * 1024,
        ..Limits::default()
    }
}

#[test]
fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let server = TestServer::limited(small_bodies());
    let seed = Seeded::new(&server);
    let port = server.addr.port();
    // A length over the limit: answered from the head alone (the body is never sent).
    for (path, shape) in [
        ("/api/2.0/mlflow/runs/log-batch", "error_code"),
        ("/api/v1/views/big", "code"),
    ] {
        let method = if shape == "code" { "PUT" } else { "POST" };
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Content-Length: 104857600\r\n\r\n"
        );
        let raw = exchange(server.addr, head.as_bytes(), |_| {});
        let (status, _, body) = status_and_body(&raw);
        assert_eq!(status, 413, "{path}: {}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).expect("a JSON error");
        assert!(v.get(shape).is_some(), "{path}: {v}");
        let msg = v["message"].as_str().expect("message");
        assert!(msg.contains("104857600") && msg.contains("65536"), "{msg}");
        server.assert_alive(&format!("a 100 MB Content-Length to {path}"));
    }
    // Sent in chunks: cut off at the limit.
    for (method, path, shape) in [
        ("POST", "/api/2.0/mlflow/runs/log-batch", "error_code"),
        ("POST", "/api/2.0/mlflow/experiments/create", "error_code"),
        ("PUT", "/api/v1/views/big", "code"),
    ] {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\n\r\n"
        );
        let raw = exchange(server.addr, head.as_bytes(), chunked_filler(20 << 20));
        let (status, _, body) = status_and_body(&raw);
        assert_eq!(status, 413, "{path}: {}", String::from_utf8_lossy(&body));
        let v: Value = serde_json::from_slice(&body).expect("a JSON error");
        assert!(v.get(shape).is_some(), "{path}: {v}");
        server.assert_alive(&format!("a chunked 20 MB body to {path}"));
    }
    // An upload is not a JSON body: it may be larger.
    let big = vec![7u8; 200 * 1024];
    let target = format!(
        "/api/2.0/mlflow-artifacts/artifacts/0/{}/artifacts/big.bin",
        seed.id
    );
    server.send(&Request::new("PUT", &target).body(&big)).ok();
    assert_eq!(server.get(&target).body, big);
    seed.assert_unharmed(&server);
}

#[test]
fn batch_limits_are_checked_while_decoding() {
    let server = TestServer::start();
    let seed = Seeded::new(&server);
    let metric = json!({ "key": "m", "value": 1.0, "timestamp": 1, "step": 0 });
    let kv = json!({ "key": "k", "value": "v" });
    for (field, item, n, limit) in [
        ("metrics", &metric, 1001, 1000),
        ("metrics", &metric, 200_000, 1000),
        ("params", &kv, 101, 100),
        ("tags", &kv, 101, 100),
    ] {
        let body = json!({ "run_id": seed.id, field: vec![item.clone(); n] });
        let resp = server.mlflow("runs/log-batch", &body);
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert_eq!(
            msg,
            format!(
                "A batch logging request can contain at most {limit} {field}. Got {n} {field}. \
                 Please split up {field} across multiple requests and try again."
            ),
            "{field} x{n}"
        );
        server.assert_alive(&format!("a batch of {n} {field}"));
    }
    seed.assert_unharmed(&server);
}

#[test]
fn max_results_is_capped_as_mlflows_server_caps_it() {
    let server = TestServer::start();
    let seed = Seeded::new(&server);
    let id = &seed.id;
    // MLflow's words, from its request check or its store; a history page of any positive
    // size is taken (it streams).
    let zero =
        "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer";
    for (target, says) in [
        (
            format!(
                "/api/2.0/mlflow/metrics/get-history?run_id={id}&metric_key=loss&max_results=0"
            ),
            format!("{zero}."),
        ),
        (
            "/api/2.0/mlflow/experiments/search?max_results=50001".to_owned(),
            "Invalid value 50001 for parameter 'max_results' supplied. It must be at most 50000"
                .to_owned(),
        ),
        (
            "/api/2.0/mlflow/experiments/search?max_results=0".to_owned(),
            zero.to_owned(),
        ),
        (
            "/api/2.0/mlflow/experiments/search?max_results=ten".to_owned(),
            "Invalid value \"ten\" for parameter 'max_results' supplied:  Hint: Value was of type \
             'str'. See the API docs for more information about request parameters."
                .to_owned(),
        ),
    ] {
        let resp = server.get(&target);
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert_eq!(msg, says, "{target}");
    }
    let resp = server.get(&format!(
        "/api/2.0/mlflow/metrics/get-history?run_id={id}&metric_key=loss&max_results=1000000"
    ));
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = server.get("/api/2.0/mlflow/registered-models/search?max_results=1001");
    let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert!(msg.contains("1000"), "{msg}");
    let resp = server.mlflow("runs/search", &json!({ "max_results": 50_001 }));
    assert_eq!(
        assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE"),
        "Invalid value 50001 for parameter 'max_results' supplied:  Hint: Value was of type 'int'. \
         See the API docs for more information about request parameters."
    );
    for (path, body, max) in [
        (
            "experiments/search",
            json!({ "max_results": 50_001 }),
            "50000",
        ),
        (
            "registered-models/search",
            json!({ "max_results": 1001 }),
            "1000",
        ),
    ] {
        let resp = server.mlflow(path, &body);
        let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
        assert!(msg.contains(max), "{path}: {msg}");
    }
    // At the cap, a page.
    let page = server
        .get(&format!(
            "/api/2.0/mlflow/metrics/get-history?run_id={id}&metric_key=loss&max_results=25000"
        ))
        .ok();
    assert_eq!(page["metrics"].as_array().map(Vec::len), Some(3));
}

/// A run with `n` points of `loss` (value = step / 8), logged in MLflow batches.
fn long_run(server: &TestServer, n: usize) -> String {
    let id = server.create_run();
    for start in (0..n).step_by(1000) {
        let batch: Vec<Value> = (start..(start + 1000).min(n))
            .map(|i| json!({ "key": "loss", "value": i as f64 / 8.0, "timestamp": i, "step": i }))
            .collect();
        server
            .mlflow("runs/log-batch", &json!({ "run_id": id, "metrics": batch }))
            .ok();
    }
    id
}

#[test]
fn whole_histories_are_streamed_in_order() {
    let server = TestServer::start();
    let n = 30_123;
    let id = long_run(&server, n);
    // MLflow: without max_results, every point, in one reply sent in pieces.
    let resp = server.get(&format!(
        "/api/2.0/mlflow/metrics/get-history?run_id={id}&metric_key=loss"
    ));
    assert_eq!(
        resp.header("transfer-encoding"),
        Some("chunked"),
        "streamed"
    );
    let v = resp.ok();
    let metrics = v["metrics"].as_array().expect("metrics");
    assert_eq!(metrics.len(), n);
    for (i, m) in metrics.iter().enumerate() {
        assert_eq!(m["step"], i as i64);
        assert_eq!(m["timestamp"], i as i64);
        assert_eq!(m["value"], i as f64 / 8.0);
        assert_eq!(m["key"], "loss");
    }
    assert_eq!(v["next_page_token"], Value::Null);
    // Cairn's API: `[step, ts, value]` triples, streamed the same way.
    let resp = server.get(&format!("/api/v1/runs/{id}/metrics/loss"));
    assert_eq!(
        resp.header("transfer-encoding"),
        Some("chunked"),
        "streamed"
    );
    let points = resp.ok();
    let points = points.as_array().expect("points");
    assert_eq!(points.len(), n);
    assert_eq!(points[n - 1], json!([n - 1, n - 1, (n - 1) as f64 / 8.0]));
    // Unknown runs and series are errors before anything streams.
    let resp = server.get("/api/v1/runs/ffffffffffffffffffffffffffffffff/metrics/loss");
    assert_api_error(&resp, 404, "NOT_FOUND");
    let resp = server.get(&format!("/api/v1/runs/{id}/metrics/never"));
    assert_api_error(&resp, 404, "NOT_FOUND");
    let resp = server.get(
        "/api/2.0/mlflow/metrics/get-history?run_id=ffffffffffffffffffffffffffffffff&metric_key=loss",
    );
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
}

#[test]
fn artifacts_stream_both_ways_and_a_corrupt_one_is_cut_off() {
    // 3 MiB is a whole number of the server's read pieces, 3,000,000 is not: the end of the
    // file falls on a piece boundary or inside a piece.
    for size in [3 << 20, 3_000_000usize] {
        let server = TestServer::start();
        let id = server.create_run();
        let target = format!("/api/2.0/mlflow-artifacts/artifacts/0/{id}/artifacts/data/big.bin");
        let content: Vec<u8> = (0..size as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        // As the MLflow client uploads: a guessed content type, the file as the body.
        server
            .send(
                &Request::new("PUT", &target)
                    .header("Content-Type", "application/octet-stream")
                    .body(&content),
            )
            .ok();
        let resp = server.get(&target);
        assert_eq!(
            resp.header("content-length"),
            Some(size.to_string().as_str())
        );
        assert!(resp.body == content, "the download differs from the upload");
        let api = server.get(&format!("/api/v1/runs/{id}/artifacts/data/big.bin"));
        assert!(
            api.body == content,
            "the API download differs from the upload"
        );

        // Damage the stored blob near its end (same length): both downloads stop short of
        // their announced length.
        let blobs = server.dir().join("artifacts").join("blobs");
        let blob = std::fs::read_dir(&blobs)
            .expect("blobs")
            .flat_map(|d| std::fs::read_dir(d.expect("fan-out").path()).expect("blob dir"))
            .map(|e| e.expect("blob").path())
            .find(|p| std::fs::metadata(p).is_ok_and(|m| m.len() == size as u64))
            .expect("the stored blob");
        let mut damaged = content.clone();
        damaged[size - 10] ^= 0x55;
        // The blob is read-only; its directory is not.
        std::fs::remove_file(&blob).expect("remove the blob");
        std::fs::write(&blob, &damaged).expect("damage the blob");
        for path in [
            target.clone(),
            format!("/api/v1/runs/{id}/artifacts/data/big.bin"),
        ] {
            let head = format!(
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n",
                server.addr.port()
            );
            let raw = exchange(server.addr, head.as_bytes(), |_| {});
            let (status, head, body) = status_and_body(&raw);
            assert_eq!(
                status, 200,
                "{path}: the head went out before the damage was found"
            );
            assert!(
                head.to_ascii_lowercase()
                    .contains(&format!("content-length: {size}")),
                "{head}"
            );
            assert!(
                body.len() < size,
                "{path}: a corrupt artifact of {size} bytes was served whole"
            );
            assert!(
                damaged[..body.len()] == body[..],
                "{path}: what was sent is the file's start"
            );
            server.assert_alive("a download of a corrupt artifact");
        }
    }
}

#[test]
fn an_upload_that_breaks_off_stores_nothing() {
    let server = TestServer::limited(Limits {
        upload_idle: Duration::from_secs(1),
        ..Limits::default()
    });
    let seed = Seeded::new(&server);
    let port = server.addr.port();
    let path = format!(
        "/api/2.0/mlflow-artifacts/artifacts/0/{}/artifacts/half.bin",
        seed.id
    );
    // The client goes away after half its body.
    {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        let head = format!(
            "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 1000000\r\n\r\n"
        );
        s.write_all(head.as_bytes()).expect("head");
        s.write_all(&vec![1u8; 500_000]).expect("half the body");
    }
    // The client stalls after half its body: abandoned after `upload_idle`.
    let head =
        format!("PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 1000000\r\n\r\n");
    let raw = exchange(server.addr, head.as_bytes(), |w| {
        drop(w.write_all(&vec![1u8; 500_000]));
    });
    let (status, _, body) = status_and_body(&raw);
    assert!(
        status >= 400,
        "a stalled upload was accepted: {}",
        String::from_utf8_lossy(&body)
    );
    server.assert_alive("abandoned uploads");
    // An unknown run is refused before the body is read.
    let resp = server.send(
        &Request::new(
            "PUT",
            "/api/2.0/mlflow-artifacts/artifacts/0/ffffffffffffffffffffffffffffffff/artifacts/x.bin",
        )
        .body("x"),
    );
    assert_mlflow_error(&resp, 404, "RESOURCE_DOES_NOT_EXIST");
    let resp = server.get(&path);
    assert_eq!(resp.status, 404, "a half upload was bound: {}", resp.text());
    seed.assert_unharmed(&server);
    let tmp = server.dir().join("artifacts").join("tmp");
    assert_eq!(
        std::fs::read_dir(&tmp).expect("tmp").count(),
        0,
        "a temporary file of an abandoned upload was left"
    );
}

#[test]
fn pathological_like_patterns_answer_at_once() {
    let server = TestServer::start();
    server
        .mlflow(
            "experiments/create",
            &json!({ "name": "a".repeat(400), "tags": [{ "key": "k", "value": "b".repeat(5000) }] }),
        )
        .ok();
    let search = |filter: String| server.mlflow("experiments/search", &json!({ "filter": filter }));
    // 18 s with the recursive matcher, and two requests with 30 `%` froze both workers.
    let std_threads: Vec<_> = (0..2)
        .map(|_| {
            let addr = server.addr;
            std::thread::spawn(move || {
                Request::post(
                    "/api/2.0/mlflow/experiments/search",
                    &json!({ "filter": format!("name LIKE '{}x'", "%".repeat(30)) }),
                )
                .send(addr)
                .status
            })
        })
        .collect();
    for t in std_threads {
        assert_eq!(t.join().expect("request thread"), 200);
    }
    let v = search("name LIKE '%%%%%%%%%%%%%x'".into()).ok();
    assert_eq!(v["experiments"], json!([]), "nothing ends in x");
    let v = search(format!("name ILIKE '{}A'", "%_".repeat(100))).ok();
    assert_eq!(v["experiments"].as_array().map(Vec::len), Some(1));
    let v = search(format!("tags.k LIKE '{}b'", "%".repeat(900))).ok();
    assert_eq!(v["experiments"].as_array().map(Vec::len), Some(1));
    server.assert_alive("LIKE patterns of 30 `%`");
    // 50,000 `%` aborted the process (stack overflow); now a pattern over the limit is refused.
    let resp = search(format!("name LIKE '{}'", "%".repeat(50_000)));
    let msg = assert_mlflow_error(&resp, 400, "INVALID_PARAMETER_VALUE");
    assert!(msg.contains("1000"), "the message names the limit: {msg}");
    server.assert_alive("a LIKE pattern of 50,000 `%`");
    // Run search goes through the same matcher.
    let resp = server.mlflow(
        "runs/search",
        &json!({ "filter": format!("tags.k LIKE '{}x'", "%".repeat(1500)) }),
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    server.assert_alive("a run search with a long LIKE pattern");
}

/// Keeps the workspace's writer busy — a long write in another thread, as a big import or a
/// demo would — until the returned sender is dropped or sent to.
fn hold_the_writer(
    ws: cairn_core::Workspace,
) -> (std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let mut first = true;
        ws.generate_demo(
            &cairn_core::DemoOptions {
                runs: 30,
                steps: Some(5),
                seed: 1,
            },
            &mut |_, _| {
                if first {
                    first = false;
                    entered_tx.send(()).unwrap_or(());
                    // A dropped sender releases it too.
                    released.recv().unwrap_or(());
                }
            },
        )
        .expect("the demo write");
    });
    entered
        .recv_timeout(Duration::from_secs(60))
        .expect("the long write started");
    (release, thread)
}

#[test]
fn a_write_past_its_budget_is_answered_503_one_still_queued_never_runs_and_reads_go_on() {
    let server = TestServer::limited(Limits {
        request_budget: Duration::from_secs(1),
        ..Limits::default()
    });
    let (release, writer) = hold_the_writer(server.workspace());
    let create = |name: &str| {
        let addr = server.addr;
        let body = json!({ "name": name });
        std::thread::spawn(move || {
            Request::post("/api/2.0/mlflow/experiments/create", &body).send(addr)
        })
    };
    // `first` starts (and waits for the writer); `second` waits for its turn behind it.
    let first = create("first");
    std::thread::sleep(Duration::from_millis(200));
    let second = create("second");
    // Meanwhile the server answers, and reads do not wait for the writer.
    server.assert_alive("requests waiting for a busy writer");
    for t in [first, second] {
        let resp = t.join().expect("request thread");
        let msg = assert_mlflow_error(&resp, 503, "TEMPORARILY_UNAVAILABLE");
        assert!(msg.contains("busy"), "{msg}");
        assert_eq!(resp.header("retry-after"), Some("1"));
    }
    let resp = server.get("/api/v1/experiments");
    assert_eq!(
        resp.status,
        200,
        "a read while the writer is busy: {}",
        resp.text()
    );
    let resp = server.get("/api/2.0/mlflow/experiments/get?experiment_id=0");
    assert_eq!(
        resp.status,
        200,
        "an MLflow read while the writer is busy: {}",
        resp.text()
    );
    release.send(()).expect("release the writer");
    writer.join().expect("the long write");
    server.assert_alive("the writer freed");
    // Stopping waits for calls that had started: then the workspace on disk tells which ran.
    let stopped = server.stop();
    let names: Vec<String> = stopped
        .ws
        .experiments_all()
        .expect("experiments")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert!(names.contains(&"first".to_owned()), "{names:?}");
    assert!(!names.contains(&"second".to_owned()), "{names:?}");
}

#[test]
fn a_half_sent_request_head_is_closed() {
    let server = TestServer::limited(Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    });
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("read timeout");
    let partial = format!(
        "GET /api/v1/health HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nX-Slow: ",
        server.addr.port()
    );
    s.write_all(partial.as_bytes()).expect("half a head");
    let mut buf = [0u8; 1024];
    match s.read(&mut buf) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the half-sent request was still open after 20 s: {e}"),
    }
    server.assert_alive("a half-sent request");
    // Whole requests on a kept-alive connection still work.
    assert_eq!(server.get("/api/v1/health").status, 200);
}
