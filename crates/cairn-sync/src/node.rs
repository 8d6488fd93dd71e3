//! The iroh adapter: one endpoint per device (its key is the device's identity), with the sync
//! and join protocols by ALPN on one router, and a watcher that rings peers when something
//! changed here (the doorbell: a sync session pushed at once, so an online peer sees a new run
//! within a poll interval and a round trip) and pulls from every peer periodically.
//!
//! Endpoints are built offline: no relay, no address lookup, no port mapping, no net report
//! probes; peers are dialled at the direct addresses the ledger, the roster or a ticket gives.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use iroh::endpoint::{Connection, PortmapperConfig, presets};
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{
    Endpoint, EndpointAddr, EndpointId, NetReportConfig, RelayMode, SecretKey, TransportAddr,
};
use tokio::sync::Notify;
use tokio::task::JoinSet;

use crate::Error;
use crate::roster;
use crate::session::{Link, SessionReport, run_session};
use crate::store::SharedStores;
use crate::ticket::Ticket;
use crate::wire::Msg;

/// Catalog, metrics and blob sync between team members.
pub const SYNC_ALPN: &[u8] = b"cairn/sync/1";
/// Joining with an invitation ticket (the one protocol a non-member may speak).
pub const JOIN_ALPN: &[u8] = b"cairn/join/1";
/// Blobs fetched on demand (large artifacts).
pub const BLOB_ALPN: &[u8] = b"cairn/blob/1";

/// The most addresses an always-on node bound to every interface announces.
pub const MAX_ANNOUNCED: usize = 8;

/// How long a dial may take before the peer counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Where to listen: loopback by default; `0.0.0.0:PORT` on a LAN.
    pub bind: SocketAddr,
    /// Addresses to announce in this device's roster entry and tickets (default: the bound
    /// address, unless it is unspecified).
    pub advertise: Vec<SocketAddr>,
    /// Watch the stores and push changes to peers (an always-on peer); off for one-shot use.
    pub watch: bool,
    /// How often the stores are polled for changes by other processes.
    pub poll_every: Duration,
    /// How often every peer is pulled from even when nothing rang.
    pub resync_every: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            advertise: Vec::new(),
            watch: false,
            poll_every: Duration::from_millis(100),
            resync_every: Duration::from_secs(30),
        }
    }
}

/// Builds an endpoint that reaches nothing it was not told to dial.
pub async fn offline_endpoint(secret: SecretKey, bind: SocketAddr) -> Result<Endpoint, Error> {
    Endpoint::builder(presets::Minimal)
        .secret_key(secret)
        .relay_mode(RelayMode::Disabled)
        .clear_address_lookup()
        .portmapper_config(PortmapperConfig::Disabled)
        .net_report_config(NetReportConfig::minimal())
        .clear_ip_transports()
        .bind_addr(bind)
        .map_err(|e| Error::Net(format!("bind address {bind}: {e}")))?
        .bind()
        .await
        .map_err(|e| Error::Net(format!("binding {bind}: {e}")))
}

struct Inner {
    stores: SharedStores,
    endpoint: Endpoint,
    me: String,
    /// This device's key as it signs audit events (the member it admits through a join).
    audit_key: cairn_audit::DeviceKey,
    /// Rung when this device's stores changed through a session (so other peers hear of it).
    bell: Notify,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner").field("me", &self.me).finish()
    }
}

/// A running sync node.
#[derive(Debug)]
pub struct Node {
    inner: Arc<Inner>,
    router: Router,
    watcher: Option<tokio::task::JoinHandle<()>>,
    /// Where teammates reach this node (an always-on node's; empty for a one-shot one).
    advertised: Vec<SocketAddr>,
}

impl Node {
    /// Binds the endpoint and starts accepting; with `config.watch`, also the watcher.
    pub async fn spawn(
        stores: SharedStores,
        secret: SecretKey,
        config: NodeConfig,
    ) -> Result<Node, Error> {
        let audit_key = cairn_audit::DeviceKey::from_secret(&secret.to_bytes());
        let endpoint = offline_endpoint(secret, config.bind).await?;
        let me = endpoint.id().to_string();
        let inner = Arc::new(Inner {
            stores,
            endpoint: endpoint.clone(),
            me,
            audit_key,
            bell: Notify::new(),
        });
        let router = Router::builder(endpoint)
            .accept(SYNC_ALPN, SyncProtocol(inner.clone()))
            .accept(JOIN_ALPN, JoinProtocol(inner.clone()))
            .accept(BLOB_ALPN, BlobProtocol(inner.clone()))
            .spawn();
        let mut node = Node {
            inner,
            router,
            watcher: None,
            advertised: Vec::new(),
        };
        if config.watch {
            // Only an always-on node says where it listens: a one-shot `sync now` would put a
            // port that is gone a second later into tickets and the roster.
            node.advertised = node.advertise_from(&config).await;
            node.publish_addrs(&node.advertised).await?;
            let inner = node.inner.clone();
            let handle = tokio::spawn(watch(inner, config));
            return Ok(Node {
                watcher: Some(handle),
                ..node
            });
        }
        Ok(node)
    }

    /// This device's endpoint id (hex).
    pub fn id(&self) -> String {
        self.inner.me.clone()
    }

    /// The socket addresses the endpoint is bound to.
    pub fn bound(&self) -> Vec<SocketAddr> {
        self.inner.endpoint.bound_sockets()
    }

    /// Where an always-on node told teammates it listens (what its invitations carry); empty
    /// for a one-shot node.
    pub fn advertised(&self) -> &[SocketAddr] {
        &self.advertised
    }

    /// Announces this node's addresses again — in the roster entry once this device is on the
    /// roster (after a join through this node) — and rings the teammates so they hear of it.
    pub async fn announce(&self) -> Result<(), Error> {
        self.publish_addrs(&self.advertised).await?;
        self.inner.bell.notify_one();
        Ok(())
    }

    /// What an always-on node announces: the configured addresses; else the bound ones, where
    /// a socket bound to every interface (`0.0.0.0:PORT`) stands for the addresses the endpoint
    /// found on this machine's interfaces at that port (at most [`MAX_ANNOUNCED`], loopback
    /// last, IPv6 link-local left out: a ticket cannot carry its scope).
    async fn advertise_from(&self, config: &NodeConfig) -> Vec<SocketAddr> {
        if !config.advertise.is_empty() {
            return config.advertise.clone();
        }
        let bound = self.bound();
        let mut out: Vec<SocketAddr> = bound
            .iter()
            .copied()
            .filter(|a| !a.ip().is_unspecified())
            .collect();
        let any: Vec<u16> = bound
            .iter()
            .filter(|a| a.ip().is_unspecified())
            .map(SocketAddr::port)
            .collect();
        if any.is_empty() {
            return out;
        }
        // The endpoint lists its interfaces' addresses shortly after it binds.
        let found = |ep: &Endpoint| -> Vec<SocketAddr> {
            ep.addr()
                .ip_addrs()
                .copied()
                .filter(|a| any.contains(&a.port()) && !a.ip().is_unspecified())
                .filter(|a| match a.ip() {
                    std::net::IpAddr::V6(v6) => !v6.is_unicast_link_local(),
                    std::net::IpAddr::V4(_) => true,
                })
                .collect()
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut addrs = found(&self.inner.endpoint);
        while addrs.is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
            addrs = found(&self.inner.endpoint);
        }
        addrs.sort_by_key(|a| (a.ip().is_loopback(), a.is_ipv6(), *a));
        addrs.dedup();
        for a in addrs {
            if out.len() >= MAX_ANNOUNCED {
                break;
            }
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }

    /// Records where this device listens in the ledger (for tickets) and in its roster entry
    /// (when it is on the roster).
    async fn publish_addrs(&self, addrs: &[SocketAddr]) -> Result<(), Error> {
        let (addrs, me) = (addrs.to_vec(), self.inner.me.clone());
        self.inner
            .stores
            .run(move |s| {
                s.ledger.set_advertised(&addrs)?;
                if let Some(mut m) = roster::member(&mut s.catalog, &me)? {
                    let text: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
                    if m.addrs != text {
                        m.addrs = text;
                        roster::put(&mut s.catalog, &m)?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// Syncs once with `peer` at `addrs` (it must be an active member).
    pub async fn sync_with(
        &self,
        peer: &str,
        addrs: &[SocketAddr],
    ) -> Result<SessionReport, Error> {
        sync_with(&self.inner, peer, addrs, false).await
    }

    /// Syncs once with every active member this device knows an address for.
    pub async fn sync_all(&self) -> Vec<(String, Result<SessionReport, Error>)> {
        sync_all(&self.inner).await
    }

    /// Joins a team with an invitation ticket: proves the secret to the inviter, which adds
    /// this device to its roster, then syncs with it on the same stream.
    pub async fn join(
        &self,
        ticket: &Ticket,
        name: &str,
        email: &str,
    ) -> Result<(String, SessionReport), Error> {
        let inviter = EndpointId::from_bytes(&ticket.inviter)
            .map_err(|e| Error::BadTicket(format!("inviter id: {e}")))?;
        let peer = inviter.to_string();
        let addr =
            EndpointAddr::from_parts(inviter, ticket.addrs.iter().copied().map(TransportAddr::Ip));
        let conn = connect(&self.inner, addr, JOIN_ALPN, &peer).await?;
        let (send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| Error::Net(format!("opening a stream to {peer}: {e}")))?;
        // Remember the inviter first: a join cut short is finished by the next `sync now`.
        {
            let addrs: Vec<String> = ticket.addrs.iter().map(|a| a.to_string()).collect();
            let peer = peer.clone();
            self.inner
                .stores
                .run(move |s| s.ledger.note_addrs(&peer, &addrs))
                .await?;
        }
        let mut link = Link::new(recv, send);
        link.send(&Msg::Join {
            secret: ticket.secret,
            name: name.to_owned(),
            email: email.to_owned(),
        })?;
        let team = match link.recv().await? {
            Msg::Welcome { team } => team,
            Msg::Refused(why) => return Err(Error::Refused(why)),
            other => {
                return Err(Error::Protocol(format!(
                    "expected Welcome, got {}",
                    other.kind()
                )));
            }
        };
        let report = run_session(&self.inner.stores, &peer, link).await;
        conn.close(0u32.into(), b"done");
        let report = report?;
        note_synced(&self.inner, &peer, &report).await?;
        Ok((team, report))
    }

    /// Fetches blobs on demand (large artifacts, which sessions do not send eagerly) from the
    /// team members this device can reach, each verified before it is stored.
    pub async fn fetch_blobs(
        &self,
        hashes: &[cairn_model::BlobHash],
    ) -> Result<crate::FetchReport, Error> {
        let mut left: Vec<cairn_model::BlobHash> = {
            let hashes = hashes.to_vec();
            self.inner
                .stores
                .run(move |s| {
                    // A purged blob is never asked for (nor stored) again.
                    let purged = s.apply_purges()?.purged;
                    Ok(hashes
                        .into_iter()
                        .filter(|h| !s.artifacts.contains(h) && !purged.contains(h))
                        .collect())
                })
                .await?
        };
        let mut report = crate::FetchReport::default();
        let mut last_error = None;
        for (peer, addrs) in targets(&self.inner).await? {
            if left.is_empty() {
                break;
            }
            match fetch_from(&self.inner, &peer, &addrs, &left).await {
                Ok(r) => {
                    report.bytes += r.bytes;
                    left.retain(|h| !r.fetched.contains(&h.to_hex()));
                    report.fetched.extend(r.fetched);
                }
                Err(e) => {
                    tracing::debug!(peer, "fetching blobs failed: {e}");
                    last_error = Some(e);
                }
            }
        }
        report.missing = left.iter().map(|h| h.to_hex()).collect();
        match last_error {
            Some(e) if report.fetched.is_empty() && !report.missing.is_empty() => Err(e),
            _ => Ok(report),
        }
    }

    /// Stops accepting and closes the endpoint.
    pub async fn shutdown(mut self) {
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
        if let Err(e) = self.router.shutdown().await {
            tracing::warn!("router shutdown: {e}");
        }
    }
}

async fn sync_all(inner: &Arc<Inner>) -> Vec<(String, Result<SessionReport, Error>)> {
    let targets = match targets(inner).await {
        Ok(t) => t,
        Err(e) => return vec![(String::new(), Err(e))],
    };
    let mut set = JoinSet::new();
    for (peer, addrs) in targets {
        let inner = inner.clone();
        set.spawn(async move {
            let r = sync_with(&inner, &peer, &addrs, false).await;
            (peer, r)
        });
    }
    let mut out = Vec::new();
    while let Some(done) = set.join_next().await {
        match done {
            Ok(r) => out.push(r),
            Err(e) => out.push((String::new(), Err(Error::Net(format!("sync task: {e}"))))),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Records a finished session in the ledger.
async fn note_synced(inner: &Inner, peer: &str, report: &SessionReport) -> Result<(), Error> {
    let (peer, sent, received, stamp) = (
        peer.to_owned(),
        report.sent,
        report.received,
        report.stamp.clone(),
    );
    inner
        .stores
        .run(move |s| s.ledger.note_synced(&peer, sent, received, &stamp))
        .await
}

/// Records a failed session in the ledger.
async fn note_failure(inner: &Inner, peer: &str, e: &Error) -> Result<(), Error> {
    let (peer, why) = (peer.to_owned(), e.to_string());
    inner
        .stores
        .run(move |s| s.ledger.note_failure(&peer, &why))
        .await
}

/// Whether this device joined through `peer` and has not received the roster yet (a join cut
/// short): its roster is empty and its ledger holds the inviter from the ticket.
fn joined_through(s: &mut crate::Stores, peer: &str) -> Result<bool, Error> {
    Ok(roster::members(&mut s.catalog)?.is_empty() && s.ledger.peer(peer)?.is_some())
}

/// Active members other than this device, with the addresses known for them (the ledger's
/// first, then what they announced on the roster). With no roster yet, the inviter.
async fn targets(inner: &Inner) -> Result<Vec<(String, Vec<SocketAddr>)>, Error> {
    let me = inner.me.clone();
    inner.stores.run(move |s| targets_in(s, &me)).await
}

fn targets_in(s: &mut crate::Stores, me: &str) -> Result<Vec<(String, Vec<SocketAddr>)>, Error> {
    let members = roster::members(&mut s.catalog)?;
    if members.is_empty() {
        let mut out = Vec::new();
        for p in s.ledger.peers()? {
            let addrs: Vec<SocketAddr> = p.addrs.iter().filter_map(|a| a.parse().ok()).collect();
            if !addrs.is_empty() {
                out.push((p.id, addrs));
            }
        }
        return Ok(out);
    }
    let mut out = Vec::new();
    for m in members {
        if m.removed || m.id == me {
            continue;
        }
        let mut addrs: Vec<SocketAddr> = Vec::new();
        if let Some(p) = s.ledger.peer(&m.id)? {
            addrs.extend(p.addrs.iter().filter_map(|a| a.parse::<SocketAddr>().ok()));
        }
        for a in m.addrs.iter().filter_map(|a| a.parse().ok()) {
            if !addrs.contains(&a) {
                addrs.push(a);
            }
        }
        if !addrs.is_empty() {
            out.push((m.id, addrs));
        }
    }
    Ok(out)
}

async fn sync_with(
    inner: &Arc<Inner>,
    peer: &str,
    addrs: &[SocketAddr],
    trusted: bool,
) -> Result<SessionReport, Error> {
    let result = dial_and_sync(inner, peer, addrs, trusted).await;
    match &result {
        Ok(report) => {
            note_synced(inner, peer, report).await?;
            if report.changed() {
                inner.bell.notify_one();
            }
        }
        Err(e) => note_failure(inner, peer, e).await?,
    }
    result
}

async fn dial_and_sync(
    inner: &Arc<Inner>,
    peer: &str,
    addrs: &[SocketAddr],
    trusted: bool,
) -> Result<SessionReport, Error> {
    if !trusted {
        let who = peer.to_owned();
        let allowed = inner
            .stores
            .run(move |s| {
                Ok(roster::is_active_member(&mut s.catalog, &who)? || joined_through(s, &who)?)
            })
            .await?;
        if !allowed {
            return Err(Error::NotAMember(peer.to_owned()));
        }
    }
    let id: EndpointId = peer
        .parse()
        .map_err(|e| Error::Net(format!("peer id '{peer}': {e}")))?;
    let addr = EndpointAddr::from_parts(id, addrs.iter().copied().map(TransportAddr::Ip));
    let conn = connect(inner, addr, SYNC_ALPN, peer).await?;
    let (send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| Error::Net(format!("opening a stream to {peer}: {e}")))?;
    let report = run_session(&inner.stores, peer, Link::new(recv, send)).await;
    conn.close(0u32.into(), b"done");
    report
}

async fn connect(
    inner: &Inner,
    addr: EndpointAddr,
    alpn: &[u8],
    peer: &str,
) -> Result<Connection, Error> {
    tokio::time::timeout(CONNECT_TIMEOUT, inner.endpoint.connect(addr, alpn))
        .await
        .map_err(|_| Error::Net(format!("{peer} did not answer within {CONNECT_TIMEOUT:?}")))?
        .map_err(|e| Error::Net(format!("connecting to {peer}: {e}")))
}

async fn fetch_from(
    inner: &Arc<Inner>,
    peer: &str,
    addrs: &[SocketAddr],
    hashes: &[cairn_model::BlobHash],
) -> Result<crate::FetchReport, Error> {
    let id: EndpointId = peer
        .parse()
        .map_err(|e| Error::Net(format!("peer id '{peer}': {e}")))?;
    let addr = EndpointAddr::from_parts(id, addrs.iter().copied().map(TransportAddr::Ip));
    let conn = connect(inner, addr, BLOB_ALPN, peer).await?;
    let (send, recv) = conn
        .open_bi()
        .await
        .map_err(|e| Error::Net(format!("opening a stream to {peer}: {e}")))?;
    let r = crate::fetch::fetch_blobs(
        &inner.stores,
        peer,
        recv,
        send,
        hashes,
        crate::fetch::FETCH_IDLE,
    )
    .await;
    conn.close(0u32.into(), b"done");
    r
}

/// SQLite's `data_version` of the catalog, the metric store and the trace store: it changes
/// when another process writes.
async fn versions(inner: &Inner) -> Option<(i64, i64, i64)> {
    inner
        .stores
        .run(|s| {
            Ok((
                s.catalog.data_version()?,
                s.metrics.data_version()?,
                s.traces.data_version()?,
            ))
        })
        .await
        .ok()
}

/// The doorbell and the periodic pull.
async fn watch(inner: Arc<Inner>, config: NodeConfig) {
    let mut seen = versions(&inner).await;
    let mut poll = tokio::time::interval(config.poll_every);
    let mut resync = tokio::time::interval(config.resync_every);
    // One worker per peer, so a teammate who is offline (a connect that times out) never
    // delays the ring for the others.
    let mut workers: std::collections::HashMap<String, Arc<Notify>> = Default::default();
    loop {
        tokio::select! {
            _ = poll.tick() => {
                let now = versions(&inner).await;
                if now == seen {
                    continue;
                }
                seen = now;
            }
            _ = resync.tick() => {}
            _ = inner.bell.notified() => {}
        }
        let peers = match targets(&inner).await {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!("listing peers to sync with: {e}");
                continue;
            }
        };
        for (peer, _) in peers {
            let ring = workers.entry(peer.clone()).or_insert_with(|| {
                let ring = Arc::new(Notify::new());
                tokio::spawn(peer_worker(inner.clone(), peer, ring.clone()));
                ring
            });
            ring.notify_one();
        }
    }
}

/// Syncs with one peer each time it is rung (rings that arrive during a session collapse into
/// one more session), at the addresses known for it at that moment.
async fn peer_worker(inner: Arc<Inner>, peer: String, ring: Arc<Notify>) {
    loop {
        ring.notified().await;
        let addrs = match targets(&inner).await {
            Ok(t) => t.into_iter().find(|(p, _)| *p == peer).map(|(_, a)| a),
            Err(_) => None,
        };
        // Removed from the roster, or no address any more: nothing to do until rung again.
        let Some(addrs) = addrs else { continue };
        if let Err(e) = sync_with(&inner, &peer, &addrs, false).await {
            tracing::debug!(peer, "sync failed: {e}");
        }
    }
}

/// Access control, before anything else on a connection: a device not (or no longer) on the
/// roster gets no stream read, no byte written, just the close. `Some(peer)` when admitted.
async fn admit(inner: &Inner, conn: &Connection) -> Result<Option<String>, AcceptError> {
    let peer = conn.remote_id().to_string();
    let allowed = {
        let who = peer.clone();
        inner
            .stores
            .run(move |s| roster::is_active_member(&mut s.catalog, &who))
            .await
            .map_err(AcceptError::from_err)?
    };
    if allowed {
        Ok(Some(peer))
    } else {
        tracing::info!(peer, "refused a device that is not on the roster");
        conn.close(403u32.into(), b"not a member of this team");
        Ok(None)
    }
}

#[derive(Debug, Clone)]
struct SyncProtocol(Arc<Inner>);

impl ProtocolHandler for SyncProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let Some(peer) = admit(&self.0, &conn).await? else {
            return Ok(());
        };
        let (send, recv) = conn.accept_bi().await?;
        let result = run_session(&self.0.stores, &peer, Link::new(recv, send)).await;
        match result {
            Ok(report) => {
                note_synced(&self.0, &peer, &report)
                    .await
                    .map_err(AcceptError::from_err)?;
                if report.changed() {
                    self.0.bell.notify_one();
                }
                tokio::time::timeout(Duration::from_secs(5), conn.closed())
                    .await
                    .ok();
            }
            Err(e) => {
                tracing::warn!(peer, "sync session failed: {e}");
                note_failure(&self.0, &peer, &e)
                    .await
                    .map_err(AcceptError::from_err)?;
                conn.close(400u32.into(), b"protocol error");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct BlobProtocol(Arc<Inner>);

impl ProtocolHandler for BlobProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let Some(peer) = admit(&self.0, &conn).await? else {
            return Ok(());
        };
        let (send, recv) = conn.accept_bi().await?;
        match crate::fetch::serve_blobs(&self.0.stores, recv, send).await {
            Ok(()) => {
                tokio::time::timeout(Duration::from_secs(5), conn.closed())
                    .await
                    .ok();
            }
            Err(e) => {
                tracing::warn!(peer, "serving blobs failed: {e}");
                conn.close(400u32.into(), b"protocol error");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
struct JoinProtocol(Arc<Inner>);

impl ProtocolHandler for JoinProtocol {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let peer = conn.remote_id().to_string();
        let (send, recv) = conn.accept_bi().await?;
        let mut link = Link::new(recv, send);
        let (secret, name, email) = match link.recv().await {
            Ok(Msg::Join {
                secret,
                name,
                email,
            }) => (secret, name, email),
            _ => {
                conn.close(400u32.into(), b"expected a join request");
                return Ok(());
            }
        };
        let welcome = {
            let (peer, me, key) = (peer.clone(), self.0.me.clone(), self.0.audit_key.clone());
            self.0
                .stores
                .run(move |s| {
                    let max = cairn_audit::event::MAX_TEXT_LEN;
                    if name.len() > max || email.len() > max {
                        return Ok(Err(format!(
                            "a member's name and email are at most {max} bytes each"
                        )));
                    }
                    if let Some(why) = s
                        .ledger
                        .take_invite(blake3::hash(&secret).as_bytes())?
                        .refusal()
                    {
                        return Ok(Err(why));
                    }
                    let team = roster::team(&mut s.catalog)?
                        .map(|t| t.name)
                        .unwrap_or_default();
                    // The inviter admits the member: its device signs the event, before the
                    // roster changes.
                    let by = roster::members(&mut s.catalog)?
                        .into_iter()
                        .find(|m| m.id == me)
                        .map_or_else(|| me.clone(), |m| m.name);
                    s.audit.append(
                        &key,
                        cairn_audit::Draft::new(
                            &by,
                            cairn_audit::kind::MEMBER_ADDED,
                            crate::ledger::now_ms(),
                        )
                        .subject(format!("member:{peer}"))
                        .field("member", name.clone())
                        .field("device", peer.clone())
                        .field("email", email.clone())
                        .field("team", team.clone())
                        .field("added_by", me.clone())
                        .field("through", "invitation"),
                    )?;
                    roster::add(&mut s.catalog, &peer, &name, &email, &me)?;
                    Ok(Ok(team))
                })
                .await
                .map_err(AcceptError::from_err)?
        };
        let team = match welcome {
            Ok(team) => team,
            Err(why) => {
                tracing::info!(peer, "refused a join: {why}");
                if link.send(&Msg::Refused(why)).is_ok() {
                    link.finish().await.ok();
                }
                tokio::time::timeout(Duration::from_secs(5), conn.closed())
                    .await
                    .ok();
                return Ok(());
            }
        };
        link.send(&Msg::Welcome { team })
            .map_err(AcceptError::from_err)?;
        let result = run_session(&self.0.stores, &peer, link).await;
        match result {
            Ok(report) => {
                note_synced(&self.0, &peer, &report)
                    .await
                    .map_err(AcceptError::from_err)?;
                tokio::time::timeout(Duration::from_secs(5), conn.closed())
                    .await
                    .ok();
            }
            Err(e) => {
                tracing::warn!(peer, "sync after join failed: {e}");
                conn.close(400u32.into(), b"protocol error");
            }
        }
        // The roster changed: tell the others.
        self.0.bell.notify_one();
        Ok(())
    }
}
