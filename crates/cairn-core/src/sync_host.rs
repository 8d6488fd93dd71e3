//! The sync node a long-running front end hosts for the API (`cairn serve --sync`, the desktop
//! app), so that the team operations a window calls can use it: an invitation carries where it
//! listens, creating a team starts it, and a join runs on it in the background while the window
//! polls the [`JoinState`].
//!
//! The front end lends a tokio runtime ([`Workspace::host_sync`]); the API's operations are
//! synchronous (they run on a transport's blocking pool), so they hand their async work to that
//! runtime and wait for it on a plain channel, never by entering the runtime themselves.

use std::sync::{Arc, Mutex, PoisonError};

use crate::stores::now_ms;
use crate::team::{Node, NodeConfig, Ticket};
use crate::{Code, Error, ErrorBody, Workspace};

/// Where a join through the API stands: what the window polls (in [`crate::team::TeamView`])
/// after asking for one.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum JoinState {
    /// No join was asked for since this process started.
    Idle,
    /// Dialling the inviter, proving the ticket, then the first sync with it.
    Joining {
        /// The inviter's device id (hex).
        inviter: String,
        since_ms: i64,
    },
    /// This device is on the team's roster and holds what the inviter held.
    Joined {
        team: String,
        inviter: String,
        at_ms: i64,
        /// What the first sync brought: docs changed here, metric points, blobs.
        docs_changed: u64,
        points_received: u64,
        blobs_received: u64,
    },
    /// The join did not happen; `message` says why (the inviter's refusal — an expired or used
    /// invitation —, an inviter that did not answer, …).
    Failed {
        inviter: String,
        at_ms: i64,
        code: Code,
        message: String,
    },
}

/// The hosted node, as the API shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct NodeView {
    /// Whether this process hosts the workspace's sync node (`cairn serve --sync`, the
    /// desktop app); without one, joining from here is refused.
    pub hosted: bool,
    /// Whether the node is running now (a host starts it once the workspace has a team).
    pub running: bool,
    /// Where teammates reach it: what an invitation carries.
    pub addrs: Vec<String>,
}

/// The sync node one process hosts for its workspace; see the module's doc.
#[derive(Debug)]
pub(crate) struct SyncHost {
    rt: tokio::runtime::Handle,
    config: NodeConfig,
    /// Serialises starts; the node is shared with a join in flight.
    node: tokio::sync::Mutex<Option<Arc<Node>>>,
    /// What a synchronous reader may see without waiting for a start.
    view: Mutex<NodeView>,
    join: Mutex<JoinState>,
}

impl SyncHost {
    pub(crate) fn new(rt: tokio::runtime::Handle, config: NodeConfig) -> SyncHost {
        SyncHost {
            rt,
            config: NodeConfig {
                watch: true,
                ..config
            },
            node: tokio::sync::Mutex::new(None),
            view: Mutex::new(NodeView {
                hosted: true,
                ..NodeView::default()
            }),
            join: Mutex::new(JoinState::Idle),
        }
    }

    pub(crate) fn view(&self) -> NodeView {
        self.view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn join_state(&self) -> JoinState {
        self.join
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_join(&self, state: JoinState) {
        *self.join.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// The running node, started first if need be (on the host's runtime: call it there).
    async fn node(&self, ws: &Workspace) -> Result<Arc<Node>, Error> {
        let mut slot = self.node.lock().await;
        if let Some(node) = slot.as_ref() {
            return Ok(node.clone());
        }
        let node = Arc::new(ws.start_sync_node(self.config.clone()).await?);
        *self.view.lock().unwrap_or_else(PoisonError::into_inner) = NodeView {
            hosted: true,
            running: true,
            addrs: node.advertised().iter().map(ToString::to_string).collect(),
        };
        *slot = Some(node.clone());
        Ok(node)
    }

    /// Runs `f` on the host's runtime and waits for it from this (synchronous) thread.
    fn wait<T: Send + 'static>(
        &self,
        f: impl Future<Output = Result<T, Error>> + Send + 'static,
    ) -> Result<T, Error> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.rt.spawn(async move {
            // The receiver is gone only if the caller is: nobody is left to tell.
            tx.send(f.await).ok();
        });
        rx.recv().unwrap_or_else(|_| {
            Err(Error::Invalid(
                "the sync node's runtime stopped before answering".into(),
            ))
        })
    }
}

impl Workspace {
    /// Hosts this workspace's sync node for the API, on `rt` (the front end's runtime for it)
    /// with `config` (always on: `watch` is set). Nothing starts yet: [`Workspace::start_hosted_sync`]
    /// starts it, and so do creating or joining a team through the API. Once per workspace
    /// handle.
    pub fn host_sync(&self, rt: tokio::runtime::Handle, config: NodeConfig) -> Result<(), Error> {
        self.sync_host_slot()
            .set(Arc::new(SyncHost::new(rt, config)))
            .map_err(|_| Error::Conflict("this workspace already hosts a sync node".into()))
    }

    /// Starts the hosted sync node now (if it is not running yet) and says where it listens.
    pub async fn start_hosted_sync(&self) -> Result<(String, Vec<std::net::SocketAddr>), Error> {
        let host = self.hosted_sync().ok_or_else(not_hosted)?;
        let ws = self.clone();
        let rt = host.rt.clone();
        rt.spawn(async move {
            let node = host.node(&ws).await?;
            Ok((node.id(), node.bound()))
        })
        .await
        .map_err(|e| Error::Invalid(format!("starting the sync node: {e}")))?
    }

    /// Stops the hosted sync node (a join still in flight keeps it until it ends).
    pub async fn stop_hosted_sync(&self) {
        let Some(host) = self.hosted_sync() else {
            return;
        };
        let node = host.node.lock().await.take();
        *host.view.lock().unwrap_or_else(PoisonError::into_inner) = NodeView {
            hosted: true,
            ..NodeView::default()
        };
        if let Some(node) = node.and_then(Arc::into_inner) {
            node.shutdown().await;
        }
    }

    /// The hosted node's view (not hosted when no front end lent one).
    pub(crate) fn hosted_node_view(&self) -> NodeView {
        self.hosted_sync().map(|h| h.view()).unwrap_or_default()
    }

    pub(crate) fn hosted_join_state(&self) -> JoinState {
        self.hosted_sync()
            .map(|h| h.join_state())
            .unwrap_or(JoinState::Idle)
    }

    /// Starts the hosted node if there is one, waiting for it; where it listens.
    pub(crate) fn ensure_hosted_node(&self) -> Result<Option<Vec<std::net::SocketAddr>>, Error> {
        let Some(host) = self.hosted_sync() else {
            return Ok(None);
        };
        let ws = self.clone();
        let h = host.clone();
        host.wait(async move { Ok(h.node(&ws).await?.advertised().to_vec()) })
            .map(Some)
    }

    /// Starts joining the team `ticket` invites to, in the background on the hosted node; the
    /// state is polled with [`Workspace::hosted_join_state`].
    pub(crate) fn start_join(&self, ticket: Ticket, email: String) -> Result<JoinState, Error> {
        let host = self.hosted_sync().ok_or_else(not_hosted)?;
        let inviter = hex(&ticket.inviter);
        let state = {
            let mut join = host.join.lock().unwrap_or_else(PoisonError::into_inner);
            if let JoinState::Joining { inviter, .. } = &*join {
                return Err(Error::Conflict(format!(
                    "a join is under way (through {}): wait for it to end",
                    short(inviter)
                )));
            }
            *join = JoinState::Joining {
                inviter: inviter.clone(),
                since_ms: now_ms(),
            };
            join.clone()
        };
        let ws = self.clone();
        let user = self.user().to_owned();
        let h = host.clone();
        host.rt.spawn(async move {
            let result = async {
                let node = h.node(&ws).await?;
                let (team, report) = node.join(&ticket, &user, &email).await?;
                // Now on the roster: say where teammates reach this device. The join itself
                // succeeded either way; the next start announces again.
                if let Err(e) = node.announce().await {
                    tracing::warn!(error = %e, "announcing this device's addresses failed");
                }
                Ok::<_, Error>((team, report))
            }
            .await;
            h.set_join(match result {
                Ok((team, r)) => {
                    tracing::info!(team, inviter, "joined the team");
                    JoinState::Joined {
                        team,
                        inviter,
                        at_ms: now_ms(),
                        docs_changed: r.docs_changed as u64,
                        points_received: r.points_received,
                        blobs_received: r.blobs_received as u64,
                    }
                }
                Err(e) => {
                    tracing::warn!(inviter, error = %e, "joining the team failed");
                    let body = ErrorBody::from(&e);
                    JoinState::Failed {
                        inviter,
                        at_ms: now_ms(),
                        code: body.code,
                        message: body.message,
                    }
                }
            });
        });
        Ok(state)
    }
}

fn not_hosted() -> Error {
    Error::Unavailable(
        "this server runs no sync node: start it with `cairn serve --sync` (the desktop app \
         runs one), or join from the command line with `cairn team join`"
            .into(),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn short(id: &str) -> &str {
    &id[..id.len().min(10)]
}
