//! Cairn's HTTP server: the MLflow tracking REST API (so unmodified `mlflow` clients log into a
//! Cairn workspace) and Cairn's own versioned JSON API under `/api/v1/`.
//!
//! Every handler is an adapter: it decodes the request, calls `cairn_core::Workspace`, and encodes
//! the answer. The workspace handle is shared by every request, no lock around it: calls run on
//! the blocking pool (its stores are SQLite), reads side by side and never waiting for a write,
//! each within a time budget. Cairn's own API (`/api/v1`) is the operations `cairn-core`
//! declares, mounted from that one list. The server listens on loopback
//! unless told otherwise, and then requires a bearer token; the Host header is checked against
//! DNS rebinding; a request that changes data is refused from another origin and, on a JSON
//! route, unless it is JSON; bodies are bounded; large replies and artifacts are streamed; no
//! CORS headers are sent.
//!
//! Not here: any rule about runs (cairn-core), HTML rendering (the UI is a static bundle).

mod api;
mod limits;
mod mlflow;
mod origin;
mod security;
mod stream;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use cairn_core::Workspace;

pub use security::Access;

/// Request decoding without a server, for `cairn-fuzz`.
#[doc(hidden)]
pub use mlflow::fuzz as mlflow_fuzz;

/// How the server is reached and guarded.
#[derive(Clone)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Required as `Authorization: Bearer …` when set; must be set to listen beyond loopback.
    pub token: Option<String>,
    /// Extra host names the Host header may carry (loopback names and the bind address always may).
    pub allowed_hosts: Vec<String>,
    /// A built web UI to serve at `/` instead of the one embedded in the binary (for working on
    /// the UI); `None` serves the embedded one.
    pub ui_dir: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allowed_hosts", &self.allowed_hosts)
            .field("ui_dir", &self.ui_dir)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error(
        "refusing to listen on {0} without a token: set one (--token-file or CAIRN_TOKEN) to serve beyond loopback"
    )]
    TokenRequired(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}

/// Bounds on what one request may cost: how large a body, how long a call, how long a client
/// may take to send its headers. The defaults suit a tracking server on a laptop; tests shorten
/// the times.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest body of a JSON route (MLflow's REST API, `/api/v1`). Artifact uploads are not
    /// limited in size: they are streamed to disk.
    pub json_body: usize,
    /// How long a request may wait for the workspace and work on it before it is answered 503.
    pub request_budget: std::time::Duration,
    /// A connection that has not sent a whole request head within this time is closed (also
    /// an idle keep-alive connection: clients reconnect).
    pub header_read_timeout: std::time::Duration,
    /// How long an upload may go without sending a byte before it is abandoned.
    pub upload_idle: std::time::Duration,
    /// How long a graceful shutdown waits for open responses (a long download) to finish.
    pub shutdown_grace: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        use std::time::Duration;
        Limits {
            json_body: 16 << 20,
            request_budget: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(5),
            upload_idle: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Reads running at once at most: each holds a thread of the blocking pool while it works, so a
/// flood of requests waits here (asynchronously) rather than taking every thread.
const CONCURRENT_READS: usize = 32;

/// The shared workspace every handler works on.
#[derive(Clone)]
pub(crate) struct AppState {
    ws: Workspace,
    reads: Arc<tokio::sync::Semaphore>,
    /// Writes take turns here, one at a time, queued without a thread: a write given up after
    /// its budget while it waits for its turn leaves the queue without ever running, so a 503
    /// for a write that never started means it was not done. (The workspace serialises writes
    /// too; this keeps the waiting out of the blocking pool.)
    writes: Arc<tokio::sync::Semaphore>,
    pub(crate) limits: Arc<Limits>,
}

/// Why a call did not run to an answer.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The workspace said no.
    Core(cairn_core::Error),
    /// The call could not run (the server is stopping, the thread was lost).
    Aborted(String),
}

impl From<cairn_core::Error> for CallError {
    fn from(e: cairn_core::Error) -> CallError {
        CallError::Core(e)
    }
}

impl AppState {
    pub(crate) fn new(ws: Workspace, limits: Limits) -> AppState {
        AppState {
            ws,
            reads: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_READS)),
            writes: Arc::new(tokio::sync::Semaphore::new(1)),
            limits: Arc::new(limits),
        }
    }

    /// Runs `f`, which only reads, on the blocking pool: reads run side by side and never wait
    /// for a write.
    ///
    /// Not bounded in time here: the request budget (see `limits.rs`) drops a request that runs
    /// past it. A call dropped while it waits for its turn never runs; one that has started runs
    /// to its end on its blocking thread (a thread cannot be stopped safely mid-write), and its
    /// answer is discarded.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce(&Workspace) -> Result<T, cairn_core::Error> + Send + 'static,
    {
        self.run(&self.reads, f).await
    }

    /// Runs `f`, which changes data, after the writes queued before it (see [`AppState::call`]).
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce(&Workspace) -> Result<T, cairn_core::Error> + Send + 'static,
    {
        self.run(&self.writes, f).await
    }

    async fn run<T, F>(&self, turns: &Arc<tokio::sync::Semaphore>, f: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce(&Workspace) -> Result<T, cairn_core::Error> + Send + 'static,
    {
        let turn = turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| CallError::Aborted(format!("the server is stopping: {e}")))?;
        let ws = self.ws.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            f(&ws).map_err(CallError::Core)
        })
        .await
        .unwrap_or_else(|e| Err(CallError::Aborted(format!("request aborted: {e}"))))
    }

    /// Runs `f`, which needs no workspace (decoding a large body, storing an upload), on the
    /// blocking pool.
    pub(crate) async fn off_loop<T, F>(f: F) -> Result<T, CallError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, CallError> + Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or_else(|e| Err(CallError::Aborted(format!("request aborted: {e}"))))
    }
}

/// The whole application with the default [`Limits`]: MLflow API, Cairn API, guards.
pub fn router(ws: Workspace, config: &ServerConfig) -> Router {
    router_with(ws, config, Limits::default())
}

/// The whole application under `limits`.
pub fn router_with(ws: Workspace, config: &ServerConfig, limits: Limits) -> Router {
    let access = Arc::new(Access::new(config));
    let state = AppState::new(ws, limits);
    Router::new()
        .merge(mlflow::routes(state.clone()))
        .nest("/api/v1", api::routes())
        .merge(ui::routes(config.ui_dir.clone()))
        .layer(DefaultBodyLimit::max(state.limits.json_body))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            limits::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(
            access,
            security::guard,
        ))
        .with_state(state)
}

/// A server bound to its address, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    ws: Workspace,
    config: ServerConfig,
    limits: Limits,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .field("limits", &self.limits)
            .finish()
    }
}

impl Server {
    /// Binds the listener (port 0 picks a free one) and checks the security settings.
    pub async fn bind(ws: Workspace, config: ServerConfig) -> Result<Server, Error> {
        // An empty token is no token.
        let mut config = config;
        config.token = config.token.filter(|t| !t.is_empty());
        if !config.bind.ip().is_loopback() && config.token.is_none() {
            return Err(Error::TokenRequired(config.bind));
        }
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .map_err(|source| Error::Bind {
                addr: config.bind,
                source,
            })?;
        config.bind = listener.local_addr()?;
        Ok(Server {
            listener,
            ws,
            config,
            limits: Limits::default(),
        })
    }

    /// The same server under other limits.
    pub fn with_limits(mut self, limits: Limits) -> Server {
        self.limits = limits;
        self
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves, then lets open responses finish (for at most
    /// `Limits::shutdown_grace`).
    ///
    /// hyper's HTTP/1 connection builder rather than `axum::serve`, which cannot bound how long
    /// a client takes to send its request head: a half-sent request would hold its connection
    /// open for ever.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        use hyper_util::rt::{TokioIo, TokioTimer};
        let grace = self.limits.shutdown_grace;
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(self.limits.header_read_timeout);
        // Probed now, off the loop, so the first run an MLflow client creates does not wait
        // for `nvidia-smi`.
        tokio::task::spawn_blocking(cairn_core::this_machine);
        let app = router_with(self.ws, &self.config, self.limits);
        let service = hyper_util::service::TowerToHyperService::new(app);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
            // Each request learns both ends of its connection (see `origin.rs`).
            let local = match stream.local_addr() {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "connection closed before it was served");
                    continue;
                }
            };
            let ends = origin::Peer {
                remote: peer,
                local,
            };
            let per_conn = service.clone();
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ends);
                hyper::service::Service::call(&per_conn, req)
            });
            let conn = http.serve_connection(TokioIo::new(stream), service);
            let watched = graceful.watch(conn);
            tokio::spawn(async move {
                if let Err(e) = watched.await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            });
        }
        drop(self.listener);
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!(?grace, "responses still open at shutdown were cut off");
        }
        Ok(())
    }
}
