//! `cairn exec`: runs a training command as a Cairn run.
//!
//! Before the command starts: the run is created with its lineage — the git state of the working
//! directory, this machine's infrastructure profile (GPUs from `nvidia-smi` when present), and a
//! digest of each dataset path — and the project's schema is checked like on every other path.
//! While it runs: an embedded tracking server serves the workspace on loopback and the child gets
//! `MLFLOW_TRACKING_URI` and `MLFLOW_RUN_ID`, so its MLflow calls land in this run; system
//! metrics are sampled; stdout and stderr pass through and are kept. After: the output is stored
//! as the artifact `logs/output.log` and the exit status becomes the run's status.
//!
//! A training job must never die because tracking failed: once the child has started, every
//! tracking error is reported and skipped, never fatal to the child.
//!
//! Not here: parsing command lines (cairn-cli), the HTTP API (cairn-server), any rule about runs
//! (cairn-core).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_core::{LineageRequest, MetricPoint as Point, NewRun, Workspace};
use cairn_model::{Run, RunId, RunStatus};
use cairn_probe::SystemSampler;

/// What to run and what to record about it.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub experiment: Option<String>,
    pub name: Option<String>,
    pub params: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    /// Dataset role → local path, hashed (with a cache) before the command starts.
    pub datasets: Vec<(String, PathBuf)>,
    /// Record the git state of `cwd`.
    pub git: bool,
    pub instance_type: Option<String>,
    pub hourly_price_usd: Option<f64>,
    /// How often system metrics are sampled.
    pub interval: Duration,
    pub cwd: PathBuf,
    /// The command and its arguments.
    pub command: Vec<String>,
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    pub run: RunId,
    pub status: RunStatus,
    /// The command's exit code, or `128 + signal` when a signal ended it (as shells report).
    pub exit_code: i32,
    pub samples: u64,
    /// Tracking problems met while the command ran (none of them stopped it).
    pub warnings: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("nothing to run: give a command after --")]
    NoCommand,
    #[error(transparent)]
    Core(#[from] cairn_core::Error),
    #[error("cannot start the tracking server: {0}")]
    Server(#[from] cairn_server::Error),
    #[error("cannot start '{command}': {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn exit_code(status: ExitStatus) -> i32 {
    if let Some(c) = status.code() {
        return c;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128 + sig;
        }
    }
    1
}

fn status_of(status: ExitStatus) -> RunStatus {
    match status.code() {
        Some(0) => RunStatus::Finished,
        Some(_) => RunStatus::Failed,
        None => RunStatus::Killed,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Creates the run with its lineage (the schema decides whether it may start).
fn create_run(ws: &Workspace, opts: &ExecOptions) -> Result<Run, Error> {
    let mut new = NewRun {
        experiment_name: opts.experiment.clone(),
        name: opts.name.clone(),
        params: opts.params.clone(),
        tags: opts.tags.clone(),
        ..Default::default()
    };
    new.tags
        .insert("cairn.command".into(), opts.command.join(" "));
    new.lineage = ws.lineage_here(&LineageRequest {
        cwd: opts.cwd.clone(),
        git: opts.git.then(|| PathBuf::from(".")),
        datasets: opts
            .datasets
            .iter()
            .map(|(role, path)| (role.clone(), path.display().to_string()))
            .collect(),
        infra: true,
        instance_type: opts.instance_type.clone(),
        hourly_price_usd: opts.hourly_price_usd,
        ..Default::default()
    })?;
    Ok(ws.start_run(new)?)
}

/// Copies a child's output stream to our own and into the shared log.
fn pump(
    mut from: impl Read + Send + 'static,
    mut to: impl Write + Send + 'static,
    log: Arc<Mutex<std::fs::File>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Our own terminal going away must not stop the copy into the log, nor the child.
            if to.write_all(&buf[..n]).and_then(|()| to.flush()).is_err() {
                tracing::debug!("the output stream closed; keeping the log only");
            }
            let mut f = log.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(e) = f.write_all(&buf[..n]) {
                tracing::warn!(error = %e, "could not keep the command's output");
            }
        }
    })
}

/// Runs the command as a tracked run. `started` is told the run and the embedded server's
/// address once the command is about to start.
pub fn exec(
    ws: Workspace,
    opts: &ExecOptions,
    started: impl FnOnce(&Run, SocketAddr),
) -> Result<ExecOutcome, Error> {
    let program = opts.command.first().ok_or(Error::NoCommand)?.clone();
    let run = create_run(&ws, opts)?;
    // The id MLflow clients know the experiment by, as the embedded server answers it.
    let mlflow_experiment = ws.mlflow_experiment_id(&ws.experiment_by_id(run.experiment)?)?;
    let log_path = ws.dir().join("cache").join(format!("exec-{}.log", run.id));
    if let Some(dir) = log_path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let config = cairn_server::ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        token: None,
        allowed_hosts: Vec::new(),
        ui_dir: None,
    };
    let server = rt.block_on(cairn_server::Server::bind(ws.clone(), config))?;
    let addr = server.local_addr()?;
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server_task = rt.spawn(server.run(async {
        // Dropping the sender stops the server as well as sending on it.
        drop(server_stopped.await);
    }));

    started(&run, addr);
    let spawned = Command::new(&program)
        .args(&opts.command[1..])
        .current_dir(&opts.cwd)
        .env("MLFLOW_TRACKING_URI", format!("http://{addr}"))
        .env("MLFLOW_RUN_ID", run.id.to_string())
        .env("MLFLOW_EXPERIMENT_ID", &mlflow_experiment)
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(source) => {
            // The run exists; record that its command never started.
            ws.set_status(run.id, RunStatus::Failed, None)?;
            if stop_server.send(()).is_err() {
                tracing::debug!("the tracking server had already stopped");
            }
            return Err(Error::Spawn {
                command: program,
                source,
            });
        }
    };

    let log = Arc::new(Mutex::new(std::fs::File::create(&log_path)?));
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(pump(out, std::io::stdout(), log.clone()));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(pump(err, std::io::stderr(), log.clone()));
    }

    // System metrics until the child exits.
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (ws, done, interval, id) = (ws.clone(), done.clone(), opts.interval, run.id);
        std::thread::spawn(move || {
            let has_gpu = !cairn_probe::gpu_snapshots().is_empty();
            let mut sampler = SystemSampler::new(has_gpu);
            let mut warnings = Vec::new();
            let mut step = 0i64;
            let tick = Duration::from_millis(50);
            loop {
                let mut waited = Duration::ZERO;
                while waited < interval && !done.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    waited += tick;
                }
                if done.load(Ordering::Relaxed) {
                    break;
                }
                let ts = now_ms();
                let reading = sampler.sample();
                let points: Vec<(String, [Point; 1])> = reading
                    .into_iter()
                    .map(|(k, v)| {
                        (
                            k,
                            [Point {
                                step,
                                ts_ms: ts,
                                value: v,
                            }],
                        )
                    })
                    .collect();
                let batches: Vec<(&str, &[Point])> =
                    points.iter().map(|(k, p)| (k.as_str(), &p[..])).collect();
                if let Err(e) = ws.log_metrics(id, &batches) {
                    warnings.push(format!("system metrics at step {step}: {e}"));
                }
                step += 1;
            }
            (step as u64, warnings)
        })
    };

    let status = child.wait()?;
    done.store(true, Ordering::Relaxed);
    for p in pumps {
        if p.join().is_err() {
            tracing::warn!("an output copier stopped early");
        }
    }
    let (samples, mut warnings) = sampler
        .join()
        .unwrap_or_else(|_| (0, vec!["the system sampler stopped early".into()]));

    let outcome_status = status_of(status);
    if let Err(e) = ws.add_artifact(run.id, &log_path, Some("logs/output.log")) {
        warnings.push(format!("keeping the output log: {e}"));
    } else if let Err(e) = std::fs::remove_file(&log_path) {
        tracing::debug!(error = %e, "could not remove the stored log's copy");
    }
    if let Err(e) = ws.set_status(run.id, outcome_status, None) {
        warnings.push(format!("recording the end of the run: {e}"));
    }
    if stop_server.send(()).is_err() {
        tracing::debug!("the tracking server had already stopped");
    }
    if let Err(e) = rt.block_on(server_task) {
        warnings.push(format!("stopping the tracking server: {e}"));
    }
    Ok(ExecOutcome {
        run: run.id,
        status: outcome_status,
        exit_code: exit_code(status),
        samples,
        warnings,
    })
}
