//! The server under test: `cairn_server::Server` bound to `127.0.0.1:0` over a fresh workspace,
//! run on its own tokio runtime in a background thread, and stopped gracefully at the end.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use cairn_core::{MetricPoint as Point, Workspace};
use cairn_model::RunId;
use cairn_server::{Limits, Server, ServerConfig};
use serde_json::{Value, json};

use crate::http::{Request, Response};

pub const USER: &str = "tester";

/// The one place the tests build a [`ServerConfig`]: no UI directory (`/` then says how to
/// build the UI).
pub fn config(bind: &str, token: Option<String>, allowed_hosts: Vec<String>) -> ServerConfig {
    ServerConfig {
        bind: bind.parse().expect("a socket address"),
        token,
        allowed_hosts,
        ui_dir: None,
    }
}

/// How the server is guarded, and what a request may cost.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    pub token: Option<String>,
    pub allowed_hosts: Vec<String>,
    pub limits: Limits,
}

/// A running server and the temporary directory of its workspace.
#[derive(Debug)]
pub struct TestServer {
    pub addr: SocketAddr,
    ws: Option<Workspace>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), cairn_server::Error>>>,
    dir: PathBuf,
    tmp: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server on an empty workspace, without a token.
    pub fn start() -> TestServer {
        TestServer::start_with(Guard::default(), |_| {})
    }

    /// A server guarded by `guard`, over a workspace that `seed` has filled first.
    pub fn start_with(guard: Guard, seed: impl FnOnce(&Workspace)) -> TestServer {
        let tmp = tempfile::Builder::new()
            .prefix("cairn-server-it-")
            .tempdir()
            .expect("temporary directory");
        let dir = tmp.path().join("ws");
        let ws = Workspace::create(&dir, USER).expect("create the workspace");
        seed(&ws);
        let config = config("127.0.0.1:0", guard.token, guard.allowed_hosts);
        let limits = guard.limits;
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = ws.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let server = Server::bind(shared, config).await?.with_limits(limits);
                addr_tx
                    .send(server.local_addr()?)
                    .expect("the test waits for the address");
                // A dropped sender (a panicking test) stops the server as well.
                server.run(async move { stop_rx.await.unwrap_or(()) }).await
            })
        });
        let Ok(addr) = addr_rx.recv() else {
            let outcome = thread.join();
            panic!("the server did not start: {outcome:?}")
        };
        TestServer {
            addr,
            ws: Some(ws),
            stop: Some(stop_tx),
            thread: Some(thread),
            dir,
            tmp: Some(tmp),
        }
    }

    /// A server on an empty workspace under `limits`.
    pub fn limited(limits: Limits) -> TestServer {
        TestServer::start_with(
            Guard {
                limits,
                ..Guard::default()
            },
            |_| {},
        )
    }

    /// The workspace the server works on (the same handle: a test may write through it, or keep
    /// its writer busy).
    pub fn workspace(&self) -> Workspace {
        self.ws.clone().expect("server is running")
    }

    /// Whether the server is still serving (its thread has not ended, by a crash or an error).
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Asserts that the server survived what was just sent: it is still running and answers
    /// `/health` within 100 ms (the best of three tries: an availability check, not a speed
    /// measurement).
    #[track_caller]
    pub fn assert_alive(&self, after: &str) {
        assert!(self.is_running(), "the server stopped after {after}");
        let mut best = std::time::Duration::MAX;
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let resp = self.get("/health");
            assert_eq!(resp.status, 200, "/health after {after}: {}", resp.text());
            best = best.min(started.elapsed());
        }
        assert!(
            best < std::time::Duration::from_millis(100),
            "/health took {best:?} after {after}"
        );
    }

    /// The workspace directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The directory that holds the workspace (and nothing else the server should write to).
    pub fn scratch(&self) -> &Path {
        self.tmp.as_ref().expect("server is running").path()
    }

    pub fn send(&self, req: &Request) -> Response {
        req.send(self.addr)
    }

    pub fn get(&self, target: &str) -> Response {
        self.send(&Request::get(target))
    }

    pub fn post(&self, target: &str, body: &Value) -> Response {
        self.send(&Request::post(target, body))
    }

    /// POST to `/api/2.0/mlflow/<path>`.
    pub fn mlflow(&self, path: &str, body: &Value) -> Response {
        self.post(&format!("/api/2.0/mlflow/{path}"), body)
    }

    /// Stops the server (gracefully) and reopens its workspace from disk.
    pub fn stop(mut self) -> Stopped {
        self.shutdown();
        let ws = Workspace::open(&self.dir, USER).expect("reopen the workspace");
        Stopped {
            ws,
            _tmp: self.tmp.take().expect("stopped once"),
        }
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone (it failed): joining tells.
            stop.send(()).unwrap_or(());
        }
        if let Some(thread) = self.thread.take() {
            let outcome = thread.join();
            if !std::thread::panicking() {
                match outcome {
                    Ok(Ok(())) => {}
                    other => panic!("the server did not stop cleanly: {other:?}"),
                }
            }
        }
        // The handlers' clones went with the runtime; this is the last handle.
        self.ws.take();
    }

    // ---- MLflow conveniences ------------------------------------------------------------

    /// Creates a run in the Default experiment and returns its id.
    pub fn create_run(&self) -> String {
        let v = self
            .mlflow(
                "runs/create",
                &json!({ "experiment_id": "0", "run_name": "seed", "start_time": 1_700_000_000_000_i64 }),
            )
            .ok();
        v["run"]["info"]["run_id"]
            .as_str()
            .expect("run id")
            .to_owned()
    }

    /// `runs/get` of `run`, as JSON.
    pub fn run(&self, run: &str) -> Value {
        self.get(&format!("/api/2.0/mlflow/runs/get?run_id={run}"))
            .ok()["run"]
            .clone()
    }

    /// Every point of a metric through `metrics/get-history`, as (step, timestamp, value JSON).
    pub fn history(&self, run: &str, key: &str) -> Vec<(i64, i64, Value)> {
        let v = self
            .get(&format!(
                "/api/2.0/mlflow/metrics/get-history?run_id={run}&metric_key={key}"
            ))
            .ok();
        v["metrics"]
            .as_array()
            .expect("metrics array")
            .iter()
            .map(|m| {
                assert_eq!(m["key"], key);
                (
                    m["step"].as_i64().expect("step"),
                    m["timestamp"].as_i64().expect("timestamp"),
                    m["value"].clone(),
                )
            })
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A stopped server's workspace, reopened from disk.
#[derive(Debug)]
pub struct Stopped {
    pub ws: Workspace,
    _tmp: tempfile::TempDir,
}

impl Stopped {
    pub fn run(&self, id: &str) -> cairn_model::Run {
        let id: RunId = id.parse().expect("a run id");
        let view = self.ws.run(id).expect("the run is in the workspace");
        let mut run = view.run;
        run.metrics.extend(view.live_metrics);
        run
    }

    pub fn points(&self, id: &str, key: &str) -> Vec<Point> {
        self.ws
            .metric_history(id.parse().expect("a run id"), key)
            .expect("metric history")
    }
}

/// A run with one of everything, and a snapshot of it to compare against after bad requests.
#[derive(Debug)]
pub struct Seeded {
    pub id: String,
    snapshot: Snapshot,
}

#[derive(Debug, PartialEq)]
struct Snapshot {
    data: Value,
    inputs: Value,
    history: Vec<(i64, i64, Value)>,
    artifacts: Value,
    artifact: Vec<u8>,
}

pub const SEED_ARTIFACT: &[u8] = b"weights \x00\x01\x02\xff";

impl Seeded {
    /// A run with a param, a tag, three points of `loss`, a dataset and an artifact.
    pub fn new(server: &TestServer) -> Seeded {
        let id = server.create_run();
        server
            .mlflow(
                "runs/log-batch",
                &json!({
                    "run_id": id,
                    "params": [{ "key": "lr", "value": "0.1" }],
                    "tags": [{ "key": "team", "value": "vision" }],
                    "metrics": [
                        { "key": "loss", "value": 0.9, "timestamp": 1000, "step": 0 },
                        { "key": "loss", "value": "NaN", "timestamp": 2000, "step": 1 },
                        { "key": "loss", "value": 0.5, "timestamp": 3000, "step": 2 },
                    ],
                }),
            )
            .ok();
        server
            .mlflow(
                "runs/log-inputs",
                &json!({
                    "run_id": id,
                    "datasets": [{
                        "tags": [{ "key": "mlflow.data.context", "value": "training" }],
                        "dataset": { "name": "iris", "digest": "d1g357", "source_type": "local",
                                     "source": "{\"uri\": \"data/iris.csv\"}", "profile": "{\"num_rows\": 150}" },
                    }],
                }),
            )
            .ok();
        server
            .send(
                &Request::new(
                    "PUT",
                    format!(
                        "/api/2.0/mlflow-artifacts/artifacts/0/{id}/artifacts/model/weights.bin"
                    ),
                )
                .body(SEED_ARTIFACT),
            )
            .ok();
        let snapshot = Seeded::snapshot(server, &id);
        Seeded { id, snapshot }
    }

    fn snapshot(server: &TestServer, id: &str) -> Snapshot {
        let run = server.run(id);
        let artifacts = server
            .get(&format!(
                "/api/2.0/mlflow/artifacts/list?run_id={id}&path=model"
            ))
            .ok();
        let artifact = server
            .get(&format!(
                "/api/2.0/mlflow-artifacts/artifacts/0/{id}/artifacts/model/weights.bin"
            ))
            .body;
        Snapshot {
            data: run["data"].clone(),
            inputs: run["inputs"].clone(),
            history: server.history(id, "loss"),
            artifacts: artifacts["files"].clone(),
            artifact,
        }
    }

    /// Asserts that the run reads back exactly as it did when seeded.
    #[track_caller]
    pub fn assert_unharmed(&self, server: &TestServer) {
        let now = Seeded::snapshot(server, &self.id);
        assert_eq!(now, self.snapshot, "the seeded run changed");
    }

    /// Asserts that the run, read from the workspace on disk, holds what was seeded.
    #[track_caller]
    pub fn assert_stored(&self, stopped: &Stopped) {
        let run = stopped.run(&self.id);
        assert_eq!(
            run.params,
            [("lr".to_owned(), "0.1".to_owned())].into_iter().collect()
        );
        assert_eq!(run.tags.get("team").map(String::as_str), Some("vision"));
        assert_eq!(run.metrics.keys().collect::<Vec<_>>(), ["loss"]);
        let points = stopped.points(&self.id, "loss");
        assert_eq!(points.len(), 3);
        assert!(points[1].value.is_nan());
        assert_eq!((points[2].step, points[2].value), (2, 0.5));
        assert_eq!(
            run.artifacts.keys().collect::<Vec<_>>(),
            ["model/weights.bin"]
        );
        assert_eq!(
            stopped
                .ws
                .read_artifact(run.id, "model/weights.bin")
                .expect("artifact"),
            SEED_ARTIFACT
        );
        let ds = &run.lineage.datasets["training"];
        assert_eq!(ds.digest.as_deref(), Some("d1g357"));
        assert_eq!(ds.rows, Some(150));
    }
}
