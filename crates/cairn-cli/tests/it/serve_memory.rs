//! Memory of a real `cairn serve` under large requests, read from its `/proc/PID/status`
//! (`VmHWM`, the peak resident set): a 100 MB log-batch body and a 200 MiB artifact go through
//! (or are refused) without the process ever holding them.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::Ws;

const MIB: u64 = 1 << 20;

/// A `cairn serve` child, killed when dropped, and the port it listens on.
struct Served {
    child: Child,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.kill().is_ok() {
            self.child.wait().ok();
        }
    }
}

impl Served {
    fn start(ws: &Ws) -> Served {
        let mut child = ws
            .cmd(&["serve", "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn cairn serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let mut port = None;
        for line in lines.by_ref() {
            let line = line.expect("read serve output");
            if let Some(uri) = line
                .trim()
                .strip_prefix("export MLFLOW_TRACKING_URI=http://")
            {
                port = uri.rsplit(':').next().and_then(|p| p.parse().ok());
                break;
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Served {
            child,
            port: port.expect("serve printed its address"),
        }
    }

    /// The peak resident set of the server so far, in bytes.
    fn peak_rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("the server is running");
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib * 1024
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(120)))
            .expect("read timeout");
        s
    }

    fn head(&self, method: &str, path: &str, extra: &str) -> String {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n{extra}\r\n",
            self.port
        )
    }

    /// A JSON POST; returns the status and the JSON body.
    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let body = body.to_string();
        let mut s = self.connect();
        let head = self.head(
            "POST",
            path,
            &format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ),
        );
        s.write_all(head.as_bytes()).expect("write head");
        s.write_all(body.as_bytes()).expect("write body");
        read_response(&mut s)
    }
}

/// Reads a whole response with a small body (by length or in chunks).
fn read_response(s: &mut TcpStream) -> (u16, Value) {
    let mut raw = Vec::new();
    match s.read_to_end(&mut raw) {
        Ok(_) => {}
        // The server closed with our body unread: what it answered first is what counts.
        Err(e) if !raw.is_empty() && e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("reading the response: {e}"),
    }
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(&String::from_utf8_lossy(&rest[..eol]), 16)
                .expect("chunk size");
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 4 + size..];
        }
        body = out;
    }
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, json)
}

fn run_id(server: &Served) -> String {
    let (status, v) = server.post(
        "/api/2.0/mlflow/runs/create",
        &json!({ "experiment_id": "0", "run_name": "big" }),
    );
    assert_eq!(status, 200, "{v}");
    v["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned()
}

/// `n` bytes of a deterministic pattern, a piece at a time.
fn pattern_piece(offset: u64, len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| ((offset + i).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[test]
fn a_100_mb_log_batch_body_never_reaches_memory() {
    let ws = Ws::new();
    let server = Served::start(&ws);
    let id = run_id(&server);
    let metric = |i: usize| json!({ "key": "loss", "value": i as f64, "timestamp": i, "step": i });
    let (status, v) = server.post(
        "/api/2.0/mlflow/runs/log-batch",
        &json!({ "run_id": id, "metrics": (0..1000).map(metric).collect::<Vec<_>>() }),
    );
    assert_eq!(status, 200, "{v}");
    let before = server.peak_rss();

    // 100 MB announced: refused from the head, the body never sent.
    let mut s = server.connect();
    let head = server.head(
        "POST",
        "/api/2.0/mlflow/runs/log-batch",
        "Content-Type: application/json\r\nContent-Length: 100000000\r\n",
    );
    s.write_all(head.as_bytes()).expect("write head");
    let (status, v) = read_response(&mut s);
    assert_eq!(status, 413, "{v}");

    // 100 MB of metrics sent in chunks: read up to the limit, then refused.
    let mut s = server.connect();
    let head = server.head(
        "POST",
        "/api/2.0/mlflow/runs/log-batch",
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n",
    );
    s.write_all(head.as_bytes()).expect("write head");
    let mut writer = s.try_clone().expect("clone");
    let id_json = Value::String(id.clone()).to_string();
    let sender = std::thread::spawn(move || {
        let mut send = |bytes: &[u8]| {
            let frame = [format!("{:x}\r\n", bytes.len()).as_bytes(), bytes, b"\r\n"].concat();
            writer.write_all(&frame).is_ok()
        };
        if !send(format!(r#"{{"run_id":{id_json},"metrics":["#).as_bytes()) {
            return;
        }
        let item = br#"{"key":"loss","value":1.5,"timestamp":1,"step":1},"#;
        let piece: Vec<u8> = item.repeat(1 << 20 >> 6);
        let mut sent = 0;
        while sent < 100_000_000 {
            if !send(&piece) {
                return;
            }
            sent += piece.len();
        }
        drop(writer.write_all(b"0\r\n\r\n"));
    });
    let (status, v) = read_response(&mut s);
    sender.join().expect("sender");
    assert_eq!(status, 413, "{v}");

    // Just under the limit, 200,000 metrics: refused at the 1,001st while decoding.
    let big: Vec<Value> = (0..200_000).map(metric).collect();
    let (status, v) = server.post(
        "/api/2.0/mlflow/runs/log-batch",
        &json!({ "run_id": id, "metrics": big }),
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 1000 metrics")),
        "{v}"
    );

    let after = server.peak_rss();
    assert!(
        after - before < 64 * MIB,
        "peak RSS grew by {} MiB for a 100 MB body (from {} to {} MiB)",
        (after - before) / MIB,
        before / MIB,
        after / MIB
    );
    // Still serving, and nothing of the refused batches was stored.
    let (status, v) = server.post(
        "/api/2.0/mlflow/runs/search",
        &json!({ "experiment_ids": ["0"] }),
    );
    assert_eq!(status, 200, "{v}");
    let history = ws.json(&["runs", "metric", &id, "loss"]);
    assert_eq!(history.as_array().map(Vec::len), Some(1000), "{history}");
}

#[test]
fn a_200_mib_artifact_streams_in_and_out_without_being_held() {
    const SIZE: u64 = 200 * MIB;
    const PIECE: usize = 1 << 20;
    let ws = Ws::new();
    let server = Served::start(&ws);
    let id = run_id(&server);
    let path = format!("/api/2.0/mlflow-artifacts/artifacts/0/{id}/artifacts/model.bin");
    // Warm up the upload and download paths with a small file.
    let small = format!("/api/2.0/mlflow-artifacts/artifacts/0/{id}/artifacts/small.bin");
    let mut s = server.connect();
    s.write_all(
        server
            .head("PUT", &small, "Content-Length: 5\r\n")
            .as_bytes(),
    )
    .expect("head");
    s.write_all(b"hello").expect("body");
    assert_eq!(read_response(&mut s).0, 200);
    let before = server.peak_rss();

    // Upload, generated a piece at a time (the test holds no more than the server should).
    let mut s = server.connect();
    let head = server.head(
        "PUT",
        &path,
        &format!("Content-Type: application/octet-stream\r\nContent-Length: {SIZE}\r\n"),
    );
    s.write_all(head.as_bytes()).expect("head");
    let mut expected = blake3::Hasher::new();
    let mut offset = 0;
    while offset < SIZE {
        let piece = pattern_piece(offset, PIECE);
        expected.update(&piece);
        s.write_all(&piece).expect("upload piece");
        offset += PIECE as u64;
    }
    let (status, v) = read_response(&mut s);
    assert_eq!(status, 200, "{v}");

    // Download, hashed as it arrives.
    let mut s = server.connect();
    s.write_all(server.head("GET", &path, "").as_bytes())
        .expect("head");
    let mut reader = BufReader::new(s);
    let mut line = String::new();
    let mut length = None;
    loop {
        line.clear();
        reader.read_line(&mut line).expect("header line");
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse::<u64>().ok();
        }
        if l.starts_with("http/1.1") {
            assert!(l.contains(" 200"), "{l}");
        }
    }
    assert_eq!(length, Some(SIZE));
    let mut got = blake3::Hasher::new();
    let mut total = 0u64;
    let mut buf = vec![0u8; PIECE];
    loop {
        let n = reader.read(&mut buf).expect("download");
        if n == 0 {
            break;
        }
        got.update(&buf[..n]);
        total += n as u64;
    }
    assert_eq!(total, SIZE);
    assert_eq!(got.finalize(), expected.finalize(), "the download differs");

    let after = server.peak_rss();
    assert!(
        after - before < 64 * MIB,
        "peak RSS grew by {} MiB for a {} MiB artifact (from {} to {} MiB)",
        (after - before) / MIB,
        SIZE / MIB,
        before / MIB,
        after / MIB
    );
}
