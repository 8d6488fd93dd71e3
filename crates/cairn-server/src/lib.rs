//! Cairn's HTTP server: the MLflow tracking REST API (so unmodified `mlflow` clients log into a
//! Cairn workspace) and Cairn's own versioned JSON API under `/api/v1/`.
//!
//! Every handler is an adapter: it decodes the request, calls `cairn_core::Workspace`, and encodes
//! the answer. The workspace sits behind a mutex and is called on the blocking pool (its stores
//! are SQLite). The server listens on loopback unless told otherwise, and then requires a bearer
//! token; the Host header is checked against DNS rebinding; no CORS headers are sent.
//!
//! Not here: any rule about runs (cairn-core), HTML rendering (the UI is a static bundle).

mod api;
mod mlflow;
mod security;
mod ui;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

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
    /// The built web UI (`ui/dist`), served at `/`; without it `/` says how to build it.
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

/// The shared workspace every handler works on.
#[derive(Clone)]
pub(crate) struct AppState {
    ws: Arc<Mutex<Workspace>>,
}

impl AppState {
    /// Runs `f` on the workspace on the blocking pool.
    pub(crate) async fn call<T, F>(&self, f: F) -> Result<T, cairn_core::Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Workspace) -> Result<T, cairn_core::Error> + Send + 'static,
    {
        let ws = self.ws.clone();
        tokio::task::spawn_blocking(move || {
            // A panic in another request must not take the server down with it.
            let mut guard = ws.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .unwrap_or_else(|e| Err(cairn_core::Error::Invalid(format!("request aborted: {e}"))))
    }
}

/// Largest request body: MLflow's artifact uploads go through the proxy in one PUT.
const MAX_BODY: usize = 1 << 30;

/// The whole application: MLflow API, Cairn API, guards.
pub fn router(ws: Arc<Mutex<Workspace>>, config: &ServerConfig) -> Router {
    let access = Arc::new(Access::new(config));
    let state = AppState { ws };
    Router::new()
        .merge(mlflow::routes())
        .nest("/api/v1", api::routes())
        .merge(ui::routes(config.ui_dir.clone()))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(
            access,
            security::guard,
        ))
        .with_state(state)
}

/// A server bound to its address, ready to run.
pub struct Server {
    listener: tokio::net::TcpListener,
    app: Router,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.listener.local_addr().ok())
            .finish()
    }
}

impl Server {
    /// Binds the listener (port 0 picks a free one) and checks the security settings.
    pub async fn bind(ws: Arc<Mutex<Workspace>>, config: ServerConfig) -> Result<Server, Error> {
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
        let app = router(ws, &config);
        Ok(Server { listener, app })
    }

    pub fn local_addr(&self) -> Result<SocketAddr, Error> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        axum::serve(self.listener, self.app)
            .with_graceful_shutdown(shutdown)
            .await?;
        Ok(())
    }
}
