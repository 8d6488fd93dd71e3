//! One sync session between two devices over any ordered byte stream. Both sides run the same
//! code (the protocol is symmetric), so either may dial:
//!
//! 1. `Hello`: version and five digests (catalog heads, metric and trace high-water marks,
//!    audit chain heads, eager blobs).
//!    Equal digests skip that part: peers already in sync exchange two small frames and `Done`.
//! 2. Catalog: `Heads` (each doc's 8-byte heads digest), then rounds of automerge sync messages
//!    for the docs that differ only. In each round each side sends one `Doc` per active doc (a
//!    message or nothing) and `RoundEnd`, then reads the other's; a doc is finished in the
//!    round where neither side had anything to say. Both sides see both messages, so both agree.
//! 3. Metrics: `Marks` (every series and its count); each side sends the points the other lacks
//!    as `Points` continuing at the other's count, then `RoundEnd`.
//! 4. Traces: `TraceMarks` (every trace log, one per device that wrote traces, and its entry
//!    count); each side sends the entries the other lacks — sealed chunks as stored
//!    (`TraceChunk`, verified against their BLAKE3 and every entry decoded before anything is
//!    stored), the rest as `TraceEntries` — continuing at the other's count, then `RoundEnd`.
//!    A log has one writer, so what another session brought meanwhile is passed over.
//! 5. Audit chains: `AuditMarks` (every chain held: device, event count, hash of the last
//!    event as stored). For each chain this side holds at least as far as the peer: if the
//!    peer's head is this side's event at the peer's count (or the peer lacks the chain), the
//!    events after it go as `AuditEvents` frames (at most [`AUDIT_EVENTS_PER_FRAME`] events or
//!    [`AUDIT_BYTES_PER_FRAME`] bytes each); if not, the chains diverge (a fork, or an event
//!    edited in place on one side) and only this side's event at that place goes, as
//!    evidence. The receiver hands every event to [`cairn_audit::AuditStore::receive`], which
//!    stores what follows its chain and keeps what forks it, mis-signs or skips ahead as a
//!    conflict for `audit verify`; then `RoundEnd`.
//! 6. Blobs: first each side acts on purge tombstones the catalog brought (see [`crate::purge`]);
//!    then `BlobList` (the *live* blobs this side holds, see [`crate::live`]: a deleted
//!    artifact's, a deleted run's or a purged blob is never offered), `BlobWant` (the blobs up
//!    to the eager limit this side lacks, never a purged one), then the wanted `Blob`s, each
//!    verified against its BLAKE3 before it is stored.
//! 7. `Done`.
//!
//! Outgoing frames go through a writer task so a side never blocks on writing while the other
//! is writing too; in the bulk phases (metrics, traces, blobs) each side sends while it reads the
//! other's frames, paced to at most [`SEND_BUDGET`] queued, so memory does not grow with what
//! the peer lacks. Store access (SQLite, automerge, blob files) runs on tokio's blocking pool. Anything malformed, unexpected or unverifiable ends the session with an
//! error; what was already stored was valid and stays (and the per-doc sync state persisted with
//! it is what lets the next session resume rather than start over).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use cairn_catalog::{Catalog, DocSyncState};
use cairn_metrics::Point;
use cairn_model::{BlobHash, RunId};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::Error;
use crate::idle::{IdleReader, is_idle_timeout};
use crate::store::{EAGER_BLOB_LIMIT, SharedStores};
use crate::wire::{
    AUDIT_BYTES_PER_FRAME, AUDIT_EVENTS_PER_FRAME, MAX_FRAME, Msg, POINTS_PER_FRAME,
    TRACE_BYTES_PER_FRAME, VERSION, audit_event_len, read_frame, write_frame,
};

/// Rounds of automerge messages before a session gives up on a peer that never settles.
const MAX_ROUNDS: usize = 64;
/// Docs a peer may list: 100 million runs' worth of shards. More is an attack on our memory
/// (each doc it names that we lack gets an empty doc to sync into).
const MAX_DOCS: usize = 100_000;
/// Audit chains a peer may list (one per device that ever wrote an event).
const MAX_AUDIT_CHAINS: usize = 100_000;
/// Refused audit events (forks, bad signatures, gaps) a peer may offer in one session, in
/// number and in bytes, before the session ends: refused events are stored as evidence, so a
/// hostile peer must not fill the disk.
const MAX_AUDIT_REFUSED: u64 = 10_000;
const MAX_AUDIT_REFUSED_BYTES: u64 = 64 << 20;
/// How long a peer may stay silent in the middle of a session (per read: a slow link that
/// keeps sending is never cut off).
const IDLE: Duration = Duration::from_secs(60);
/// Bytes of bulk frames (metric chunks and points, blobs) a side queues for the connection
/// before it waits for the connection to take them: what a phase holds in memory, however much
/// the peer lacks.
pub const SEND_BUDGET: usize = 32 << 20;

/// What one session did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SessionReport {
    /// Bytes written and read, frame headers included.
    pub sent: u64,
    pub received: u64,
    /// Docs whose heads differed, and how many of them changed here.
    pub docs_differing: usize,
    pub docs_changed: usize,
    pub rounds: usize,
    pub points_received: u64,
    /// Trace log entries (spans, trace fields, tags, assessments, links) stored here.
    pub trace_entries_received: u64,
    /// Audit events stored here (following chains held here, or new chains).
    pub audit_events_received: u64,
    /// Audit events the peer offered that were refused and kept as conflicts (a fork, an
    /// edited or forged event, a gap): `audit verify` reports them.
    pub audit_refused: u64,
    pub blobs_received: usize,
    /// Purged blobs (valid tombstones) erased here during the session.
    pub purges_applied: usize,
    /// This side's stamp at the end (what "in sync with this peer" meant; see
    /// [`crate::Stores::stamp`]).
    #[serde(skip)]
    pub stamp: Vec<u8>,
}

impl SessionReport {
    /// Whether this side's stores changed (refused audit events are kept as evidence, but
    /// change nothing a peer would sync: a fork offered at every session is not news).
    pub fn changed(&self) -> bool {
        self.docs_changed > 0
            || self.points_received > 0
            || self.trace_entries_received > 0
            || self.audit_events_received > 0
            || self.blobs_received > 0
            || self.purges_applied > 0
    }
}

/// A frame on its way to the writer task, holding its share of the send budget (if paced)
/// until it is written.
#[derive(Debug)]
struct Frame {
    bytes: Vec<u8>,
    _budget: Option<OwnedSemaphorePermit>,
}

/// The sending half of a [`Link`]: frames go to a writer task.
#[derive(Debug)]
pub struct LinkTx {
    out: Option<mpsc::UnboundedSender<Frame>>,
    budget: Arc<Semaphore>,
    sent: Arc<AtomicU64>,
}

/// The receiving half of a [`Link`].
#[derive(Debug)]
pub struct LinkRx<R> {
    reader: IdleReader<R>,
    received: u64,
}

/// A framed, counted connection: reads inline, writes through a task.
#[derive(Debug)]
pub struct Link<R> {
    tx: LinkTx,
    rx: LinkRx<R>,
    writer: Option<JoinHandle<Result<(), Error>>>,
}

impl LinkTx {
    fn encode(msg: &Msg) -> Result<Vec<u8>, Error> {
        let payload = msg.encode();
        if payload.len() > MAX_FRAME {
            return Err(Error::Protocol(format!(
                "a {} message of {} bytes exceeds the frame limit",
                msg.kind(),
                payload.len()
            )));
        }
        Ok(payload)
    }

    fn push(&self, frame: Frame) -> Result<(), Error> {
        self.out
            .as_ref()
            .and_then(|o| o.send(frame).ok())
            .ok_or_else(|| Error::Protocol("the connection's writer has stopped".into()))
    }

    /// Queues a small control message (never waits).
    pub fn send(&self, msg: &Msg) -> Result<(), Error> {
        self.push(Frame {
            bytes: Self::encode(msg)?,
            _budget: None,
        })
    }

    /// Queues a bulk message, first waiting until the frames queued before it are within
    /// [`SEND_BUDGET`]: memory stays bounded however much there is to send. Only call it while
    /// the other side's frames are being read too, or two senders can wait on each other.
    pub async fn send_paced(&self, msg: &Msg) -> Result<(), Error> {
        let bytes = Self::encode(msg)?;
        let need = u32::try_from(bytes.len().min(SEND_BUDGET)).unwrap_or(u32::MAX);
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(need)
            .await
            .map_err(|_| Error::Protocol("the connection's writer has stopped".into()))?;
        self.push(Frame {
            bytes,
            _budget: Some(permit),
        })
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

impl<R: AsyncRead + Unpin + Send> LinkRx<R> {
    pub async fn recv(&mut self) -> Result<Msg, Error> {
        let frame = read_frame(&mut self.reader)
            .await
            .map_err(|e| match e {
                Error::Io(io) if is_idle_timeout(&io) => {
                    Error::Protocol(format!("the peer was silent for {IDLE:?}"))
                }
                other => other,
            })?
            .ok_or_else(|| Error::Protocol("the peer closed the connection mid-session".into()))?;
        self.received += 4 + frame.len() as u64;
        Msg::decode(&frame)
    }

    pub fn received(&self) -> u64 {
        self.received
    }
}

impl<R: AsyncRead + Unpin + Send> Link<R> {
    pub fn new<W: AsyncWrite + Unpin + Send + 'static>(reader: R, mut writer: W) -> Link<R> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Frame>();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let task = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                let n = write_frame(&mut writer, &frame.bytes).await?;
                counter.fetch_add(n, Ordering::Relaxed);
                // The frame and its budget are released here, once written.
            }
            writer.shutdown().await?;
            Ok(())
        });
        Link {
            tx: LinkTx {
                out: Some(tx),
                budget: Arc::new(Semaphore::new(SEND_BUDGET)),
                sent,
            },
            rx: LinkRx {
                reader: IdleReader::new(reader, IDLE),
                received: 0,
            },
            writer: Some(task),
        }
    }

    /// Both halves, to send and receive at once.
    pub fn parts(&mut self) -> (&LinkTx, &mut LinkRx<R>) {
        (&self.tx, &mut self.rx)
    }

    pub fn send(&self, msg: &Msg) -> Result<(), Error> {
        self.tx.send(msg)
    }

    pub async fn recv(&mut self) -> Result<Msg, Error> {
        self.rx.recv().await
    }

    /// Flushes and closes the sending side; returns (bytes sent, bytes received).
    pub async fn finish(mut self) -> Result<(u64, u64), Error> {
        self.tx.out.take();
        if let Some(w) = self.writer.take() {
            w.await
                .map_err(|e| Error::Protocol(format!("writer task: {e}")))??;
        }
        Ok((self.tx.sent(), self.rx.received))
    }

    pub fn sent(&self) -> u64 {
        self.tx.sent()
    }
    pub fn received(&self) -> u64 {
        self.rx.received
    }
}

impl<R> Drop for Link<R> {
    fn drop(&mut self) {
        // A session that failed: stop writing to a peer we are done with.
        if let Some(w) = self.writer.take() {
            w.abort();
        }
    }
}

/// Runs one whole session with `peer` (its endpoint id, the key of its sync state) over `link`,
/// then closes the link. Every store access runs on tokio's blocking pool
/// ([`SharedStores::run`]), never on the async workers.
pub async fn run_session<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    peer: &str,
    mut link: Link<R>,
) -> Result<SessionReport, Error> {
    let mut report = SessionReport::default();
    let (docs, cat_digest, marks, met_digest, trace_marks, trace_digest) = stores
        .run(|s| {
            let (docs, cd) = s.catalog_manifest()?;
            let (marks, md) = s.metrics_manifest()?;
            let (trace_marks, td) = s.traces_manifest()?;
            Ok((docs, cd, marks, md, trace_marks, td))
        })
        .await?;
    let (audit_marks, audit_digest, blob_digest) = stores
        .run(|s| {
            let (audit_marks, ad) = s.audit_manifest()?;
            let (_, bd) = s.blobs_manifest()?;
            Ok((audit_marks, ad, bd))
        })
        .await?;
    link.send(&Msg::Hello {
        version: VERSION,
        catalog: cat_digest,
        metrics: met_digest,
        traces: trace_digest,
        audit: audit_digest,
        blobs: blob_digest,
    })?;
    let (their_cat, their_met, their_traces, their_audit, their_blobs) = match link.recv().await? {
        Msg::Hello {
            version,
            catalog,
            metrics,
            traces,
            audit,
            blobs,
        } => {
            if version != VERSION {
                return Err(crate::wire::version_mismatch(version));
            }
            (catalog, metrics, traces, audit, blobs)
        }
        other => return Err(unexpected("Hello", &other)),
    };
    if their_cat != cat_digest {
        sync_catalog(stores, peer, &mut link, docs, &mut report).await?;
    }
    // What the catalog phase brought may purge blobs (a tombstone) or unbind them: act on
    // tombstones before any blob moves, and list the blobs to offer afresh.
    let applied = stores.run(|s| s.apply_purges()).await?;
    report.purges_applied = applied.erased;
    if their_met != met_digest {
        report.points_received = sync_metrics(stores, &mut link, marks).await?;
    }
    if their_traces != trace_digest {
        report.trace_entries_received = sync_traces(stores, &mut link, trace_marks).await?;
    }
    if their_audit != audit_digest {
        let (stored, refused) = sync_audit(stores, peer, &mut link, audit_marks).await?;
        report.audit_events_received = stored;
        report.audit_refused = refused;
    }
    if their_blobs != blob_digest {
        let (blobs, _) = stores.run(|s| s.blobs_manifest()).await?;
        report.blobs_received = sync_blobs(stores, &mut link, blobs, applied.purged).await?;
    }
    link.send(&Msg::Done)?;
    match link.recv().await? {
        Msg::Done => {}
        other => return Err(unexpected("Done", &other)),
    }
    report.stamp = stores.run(|s| s.stamp()).await?;
    let (sent, received) = link.finish().await?;
    report.sent = sent;
    report.received = received;
    Ok(report)
}

async fn sync_catalog<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    peer: &str,
    link: &mut Link<R>,
    mine: BTreeMap<String, [u8; 8]>,
    report: &mut SessionReport,
) -> Result<(), Error> {
    link.send(&Msg::Heads(
        mine.iter().map(|(n, d)| (n.clone(), *d)).collect(),
    ))?;
    let theirs = match link.recv().await? {
        Msg::Heads(docs) => docs,
        other => return Err(unexpected("Heads", &other)),
    };
    if theirs.len() > MAX_DOCS {
        return Err(Error::Protocol(format!(
            "the peer lists {} docs (at most {MAX_DOCS})",
            theirs.len()
        )));
    }
    let mut their_map = BTreeMap::new();
    for (name, digest) in theirs {
        if !Catalog::is_doc_name(&name) {
            return Err(Error::Protocol(format!("'{name}' is not a catalog doc")));
        }
        if their_map.insert(name.clone(), digest).is_some() {
            return Err(Error::Protocol(format!("doc '{name}' listed twice")));
        }
    }
    let names: BTreeSet<&String> = mine.keys().chain(their_map.keys()).collect();
    // The team doc first: it registers the shards that follow.
    let mut differing: Vec<String> = names
        .into_iter()
        .filter(|n| mine.get(*n) != their_map.get(*n))
        .cloned()
        .collect();
    differing.sort_by_key(|n| (n.as_str() != Catalog::team_doc_name(), n.clone()));
    report.docs_differing = differing.len();
    let mut states: BTreeMap<String, DocSyncState> = {
        let (peer, differing) = (peer.to_owned(), differing.clone());
        stores
            .run(move |s| {
                let mut states = BTreeMap::new();
                for name in differing {
                    let state = s.catalog.sync_state(&peer, &name)?;
                    states.insert(name, state);
                }
                Ok(states)
            })
            .await?
    };
    let mut changed: BTreeSet<String> = BTreeSet::new();
    let mut active: Vec<String> = differing;
    let mut round = 0;
    while !active.is_empty() {
        round += 1;
        if round > MAX_ROUNDS {
            return Err(Error::Protocol(format!(
                "{} docs still differ after {MAX_ROUNDS} rounds",
                active.len()
            )));
        }
        // This round's messages, generated in one trip to the blocking pool. (A round holds
        // one automerge message per active doc in memory, as automerge itself does.)
        let (msgs, back) = {
            let names = active.clone();
            stores
                .run(move |s| {
                    let mut msgs = Vec::with_capacity(names.len());
                    for name in names {
                        let state = states
                            .get_mut(&name)
                            .ok_or_else(|| Error::Team(format!("no sync state for {name}")))?;
                        let msg = s.catalog.sync_generate(&name, state)?;
                        msgs.push((name, msg));
                    }
                    Ok((msgs, states))
                })
                .await?
        };
        states = back;
        let mut said: BTreeSet<String> = BTreeSet::new();
        for (name, msg) in msgs {
            if msg.is_some() {
                said.insert(name.clone());
            }
            link.send(&Msg::Doc { name, msg })?;
        }
        link.send(&Msg::RoundEnd)?;
        let mut heard: BTreeSet<String> = BTreeSet::new();
        loop {
            match link.recv().await? {
                Msg::Doc { name, msg } => {
                    let Some(mut state) = states.remove(&name).filter(|_| active.contains(&name))
                    else {
                        return Err(Error::Protocol(format!(
                            "a message about doc '{name}', which is not being synced"
                        )));
                    };
                    if let Some(m) = msg {
                        heard.insert(name.clone());
                        let (peer, doc) = (peer.to_owned(), name.clone());
                        let (receipt, state_back) = stores
                            .run(move |s| {
                                let receipt = s
                                    .catalog
                                    .sync_receive(&peer, &doc, &mut state, &m)
                                    .map_err(|e| Error::Protocol(e.to_string()))?;
                                Ok((receipt, state))
                            })
                            .await?;
                        state = state_back;
                        if receipt.changed {
                            changed.insert(name.clone());
                        }
                    }
                    states.insert(name, state);
                }
                Msg::RoundEnd => break,
                other => return Err(unexpected("Doc or RoundEnd", &other)),
            }
        }
        active.retain(|n| said.contains(n) || heard.contains(n));
    }
    report.rounds = round;
    report.docs_changed = changed.len();
    Ok(())
}

/// Phase 3. Both sides send what the other lacks while reading what the other sends, so the
/// sending is paced to the connection ([`LinkTx::send_paced`]) and never queues the whole
/// phase. Returns the points stored here.
async fn sync_metrics<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    link: &mut Link<R>,
    mine: Vec<(String, String, u64)>,
) -> Result<u64, Error> {
    link.send(&Msg::Marks(mine.clone()))?;
    let theirs = match link.recv().await? {
        Msg::Marks(m) => m,
        other => return Err(unexpected("Marks", &other)),
    };
    let their_counts: BTreeMap<(String, String), u64> =
        theirs.into_iter().map(|(r, k, c)| ((r, k), c)).collect();
    let (tx, rx) = link.parts();
    let send = async {
        for (run, key, count) in &mine {
            let have = their_counts
                .get(&(run.clone(), key.clone()))
                .copied()
                .unwrap_or(0);
            if have >= *count {
                continue;
            }
            send_series(stores, tx, run, key, have, *count).await?;
        }
        tx.send(&Msg::RoundEnd)
    };
    let receive = async {
        let mut stored = 0u64;
        loop {
            match rx.recv().await? {
                msg @ (Msg::Points { .. } | Msg::Chunk { .. }) => {
                    stored += stores.run(move |s| store_points(s, msg)).await?;
                }
                Msg::RoundEnd => break,
                other => return Err(unexpected("Points, Chunk or RoundEnd", &other)),
            }
        }
        Ok(stored)
    };
    let ((), stored) = tokio::try_join!(send, receive)?;
    Ok(stored)
}

/// Sends points `from..count` of a series: sealed chunks as stored (4-8 bytes a point); what
/// lies before the first of them and after the last as points (24 bytes).
async fn send_series(
    stores: &SharedStores,
    tx: &LinkTx,
    run: &str,
    key: &str,
    have: u64,
    count: u64,
) -> Result<(), Error> {
    let chunks = {
        let (run, key) = (run.to_owned(), key.to_owned());
        stores
            .run(move |s| Ok(s.metrics.sealed_chunks(&run, &key, have)?))
            .await?
    };
    let mut from = have;
    for chunk in chunks {
        send_points(stores, tx, run, key, from, chunk.first_seq).await?;
        let Ok(hash) = <[u8; 32]>::try_from(chunk.hash.as_slice()) else {
            return Err(Error::Team(format!(
                "chunk of {run}/{key} has a malformed hash"
            )));
        };
        tx.send_paced(&Msg::Chunk {
            run: run.to_owned(),
            key: key.to_owned(),
            from: chunk.first_seq,
            count: chunk.count,
            hash,
            data: chunk.data,
        })
        .await?;
        from = chunk.first_seq + chunk.count;
    }
    send_points(stores, tx, run, key, from, count).await
}

/// Validates and stores one `Points` or `Chunk` message from the peer (on the blocking pool:
/// decoding a chunk is work too). Returns the points stored.
fn store_points(s: &mut crate::Stores, msg: Msg) -> Result<u64, Error> {
    let (run, key, from, points) = match msg {
        Msg::Points {
            run,
            key,
            from,
            points,
        } => (run, key, from, points),
        Msg::Chunk {
            run,
            key,
            from,
            count,
            hash,
            data,
        } => {
            let pts = cairn_metrics::decode_peer_chunk(
                &format!("{run}/{key} from the peer"),
                from,
                count,
                &hash,
                &data,
            )
            .map_err(|e| Error::Protocol(e.to_string()))?;
            let wire = pts
                .iter()
                .map(|p| (p.step, p.ts_ms, p.value.to_bits()))
                .collect();
            (run, key, from, wire)
        }
        _ => return unreachable_msg(),
    };
    if run.parse::<RunId>().is_err() {
        return Err(Error::Protocol(format!("points for '{run}', not a run id")));
    }
    cairn_model::validate_key("metric", &key)
        .map_err(|e| Error::Protocol(format!("points for a bad key: {e}")))?;
    let pts: Vec<Point> = points
        .iter()
        .map(|&(step, ts_ms, bits)| Point {
            step,
            ts_ms,
            value: f64::from_bits(bits),
        })
        .collect();
    let at = s.metrics.series_info(&run, &key)?.map_or(0, |i| i.count);
    if from > at {
        return Err(Error::Protocol(format!(
            "points for {run}/{key} from {from}, but this side holds {at}"
        )));
    }
    // A series has one writer, so what overlaps what is here (another session brought it
    // meanwhile) is the same: append only the rest.
    let skip = usize::try_from(at - from).unwrap_or(usize::MAX);
    if skip < pts.len() {
        s.metrics.append_at(&run, &key, at, &pts[skip..])?;
        return Ok((pts.len() - skip) as u64);
    }
    Ok(0)
}

/// Phase 4: trace logs, as metric series travel. Returns the entries stored here.
async fn sync_traces<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    link: &mut Link<R>,
    mine: Vec<(String, u64)>,
) -> Result<u64, Error> {
    link.send(&Msg::TraceMarks(mine.clone()))?;
    let theirs = match link.recv().await? {
        Msg::TraceMarks(m) => m,
        other => return Err(unexpected("TraceMarks", &other)),
    };
    let their_counts: BTreeMap<String, u64> = theirs.into_iter().collect();
    let (tx, rx) = link.parts();
    let send = async {
        for (source, count) in &mine {
            let have = their_counts.get(source).copied().unwrap_or(0);
            if have < *count {
                send_trace_log(stores, tx, source, have, *count).await?;
            }
        }
        tx.send(&Msg::RoundEnd)
    };
    let receive = async {
        let mut stored = 0u64;
        loop {
            match rx.recv().await? {
                msg @ (Msg::TraceChunk { .. } | Msg::TraceEntries { .. }) => {
                    stored += stores.run(move |s| store_trace_entries(s, msg)).await?;
                }
                Msg::RoundEnd => break,
                other => return Err(unexpected("TraceChunk, TraceEntries or RoundEnd", &other)),
            }
        }
        Ok(stored)
    };
    let ((), stored) = tokio::try_join!(send, receive)?;
    Ok(stored)
}

/// Sends entries `have..count` of a trace log: its sealed chunks as stored, what lies before
/// the first of them and after the last as entries.
async fn send_trace_log(
    stores: &SharedStores,
    tx: &LinkTx,
    source: &str,
    have: u64,
    count: u64,
) -> Result<(), Error> {
    let chunks = {
        let source = source.to_owned();
        stores
            .run(move |s| Ok(s.traces.sealed_chunks(&source, have)?))
            .await?
    };
    let mut from = have;
    for chunk in chunks {
        send_trace_entries(stores, tx, source, from, chunk.first_seq).await?;
        let Ok(hash) = <[u8; 32]>::try_from(chunk.hash.as_slice()) else {
            return Err(Error::Team(format!(
                "a chunk of trace log {source} has a malformed hash"
            )));
        };
        let next = chunk.first_seq + chunk.count;
        // A chunk that does not fit a frame (its entries hold megabytes of inputs) goes as
        // entries instead.
        if chunk.data.len() + source.len() + 64 > MAX_FRAME {
            send_trace_entries(stores, tx, source, chunk.first_seq, next).await?;
        } else {
            tx.send_paced(&Msg::TraceChunk {
                source: source.to_owned(),
                from: chunk.first_seq,
                count: chunk.count,
                hash,
                data: chunk.data,
            })
            .await?;
        }
        from = next;
    }
    send_trace_entries(stores, tx, source, from, count).await
}

/// Sends entries `from..to` of a trace log as `TraceEntries` frames of at most
/// [`TRACE_BYTES_PER_FRAME`] (one entry at least).
async fn send_trace_entries(
    stores: &SharedStores,
    tx: &LinkTx,
    source: &str,
    mut from: u64,
    to: u64,
) -> Result<(), Error> {
    while from < to {
        let page = {
            let source = source.to_owned();
            stores
                .run(move |s| {
                    let mut page = Vec::new();
                    let mut bytes = 0;
                    let mut at = from;
                    // Read a few entries at a time so a page stops near the byte bound.
                    while at < to && bytes < TRACE_BYTES_PER_FRAME {
                        let want = usize::try_from(to - at).unwrap_or(usize::MAX).min(64);
                        let got = s.traces.entries(&source, at, want)?;
                        if got.is_empty() {
                            break;
                        }
                        for e in got {
                            if !page.is_empty() && bytes + e.len() > TRACE_BYTES_PER_FRAME {
                                return Ok(page);
                            }
                            bytes += e.len();
                            at += 1;
                            page.push(e);
                        }
                    }
                    Ok(page)
                })
                .await?
        };
        if page.is_empty() {
            break;
        }
        let n = page.len() as u64;
        tx.send_paced(&Msg::TraceEntries {
            source: source.to_owned(),
            from,
            entries: page,
        })
        .await?;
        from += n;
    }
    Ok(())
}

/// Validates and stores one `TraceChunk` or `TraceEntries` message from the peer (on the
/// blocking pool). Returns the entries stored.
fn store_trace_entries(s: &mut crate::Stores, msg: Msg) -> Result<u64, Error> {
    let peer = |e: cairn_traces::Error| match e {
        e @ (cairn_traces::Error::Peer { .. }
        | cairn_traces::Error::CorruptChunk { .. }
        | cairn_traces::Error::Invalid(_)) => Error::Protocol(e.to_string()),
        other => Error::Traces(other),
    };
    match msg {
        Msg::TraceChunk {
            source,
            from,
            count,
            hash,
            data,
        } => s
            .traces
            .receive_chunk(
                &source,
                &cairn_traces::SealedChunk {
                    first_seq: from,
                    count,
                    hash: hash.to_vec(),
                    data,
                },
            )
            .map_err(peer),
        Msg::TraceEntries {
            source,
            from,
            entries,
        } => s
            .traces
            .receive_entries(&source, from, &entries)
            .map_err(peer),
        _ => unreachable_msg(),
    }
}

/// Phase 5: audit chains. Returns the events stored here and the events refused (kept as
/// conflicts).
async fn sync_audit<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    peer: &str,
    link: &mut Link<R>,
    mine: crate::store::AuditMarks,
) -> Result<(u64, u64), Error> {
    link.send(&Msg::AuditMarks(mine.clone()))?;
    let theirs = match link.recv().await? {
        Msg::AuditMarks(m) => m,
        other => return Err(unexpected("AuditMarks", &other)),
    };
    if theirs.len() > MAX_AUDIT_CHAINS {
        return Err(Error::Protocol(format!(
            "the peer lists {} audit chains (at most {MAX_AUDIT_CHAINS})",
            theirs.len()
        )));
    }
    let mut their_marks: BTreeMap<[u8; 32], (u64, [u8; 32])> = BTreeMap::new();
    for (device, count, head) in theirs {
        if their_marks.insert(device, (count, head)).is_some() {
            return Err(Error::Protocol(format!(
                "audit chain {} listed twice",
                cairn_audit::event::short(&cairn_audit::event::hex(&device))
            )));
        }
    }
    let (tx, rx) = link.parts();
    let send = async {
        for (device, count, _) in &mine {
            let device_hex = cairn_audit::event::hex(device);
            let (from, to) = match their_marks.get(device) {
                None | Some((0, _)) => (0, *count),
                // The peer is ahead: it checks our head against its chain, and sends.
                Some((have, _)) if have > count => continue,
                Some((have, head)) => {
                    let at = {
                        let (d, have) = (device_hex.clone(), *have);
                        stores.run(move |s| s.audit_hash_at(&d, have)).await?
                    };
                    if at.as_ref() == Some(head) {
                        (*have, *count)
                    } else {
                        // Diverged at or before the peer's last event: ours there is the
                        // evidence; what follows it cannot follow the peer's chain.
                        (have - 1, *have)
                    }
                }
            };
            send_audit_events(stores, tx, &device_hex, from, to).await?;
        }
        tx.send(&Msg::RoundEnd)
    };
    let receive = async {
        let (mut stored, mut refused, mut refused_bytes) = (0u64, 0u64, 0u64);
        loop {
            match rx.recv().await? {
                Msg::AuditEvents(events) => {
                    if events.len() > AUDIT_EVENTS_PER_FRAME {
                        return Err(Error::Protocol(format!(
                            "{} audit events in one frame (at most {AUDIT_EVENTS_PER_FRAME})",
                            events.len()
                        )));
                    }
                    let source = peer.to_owned();
                    let (got, offered, bytes) = stores
                        .run(move |s| store_audit_events(s, &events, &source))
                        .await?;
                    stored += got.stored;
                    // Each event offered is stored, a duplicate, or refused (a conflict or a gap).
                    let not_kept = offered.saturating_sub(got.stored + got.duplicates);
                    refused += not_kept;
                    if not_kept > 0 {
                        // Counted per frame: a frame with a refusal counts whole.
                        refused_bytes += bytes;
                    }
                    for c in &got.conflicts {
                        tracing::warn!(
                            peer,
                            device = c.device,
                            seq = c.seq,
                            problem = c.problem.as_str(),
                            "refused an audit event: {}",
                            c.why
                        );
                    }
                    if refused > MAX_AUDIT_REFUSED || refused_bytes > MAX_AUDIT_REFUSED_BYTES {
                        return Err(Error::Protocol(format!(
                            "the peer offered {refused} refused audit events in frames of \
                             {refused_bytes} bytes (at most {MAX_AUDIT_REFUSED} events or \
                             {MAX_AUDIT_REFUSED_BYTES} bytes a session)"
                        )));
                    }
                }
                Msg::RoundEnd => break,
                other => return Err(unexpected("AuditEvents or RoundEnd", &other)),
            }
        }
        Ok((stored, refused))
    };
    let ((), got) = tokio::try_join!(send, receive)?;
    Ok(got)
}

/// Hands one `AuditEvents` frame to the audit store (on the blocking pool). Returns what it
/// did, how many events were offered and the frame's bytes.
fn store_audit_events(
    s: &mut crate::Stores,
    events: &[cairn_audit::Event],
    source: &str,
) -> Result<(cairn_audit::Received, u64, u64), Error> {
    let got = s.audit.receive(events, source)?;
    let bytes = events.iter().map(|e| audit_event_len(e) as u64).sum();
    Ok((got, events.len() as u64, bytes))
}

/// Sends events `from..to` of `device`'s chain as `AuditEvents` frames of at most
/// [`AUDIT_EVENTS_PER_FRAME`] events and [`AUDIT_BYTES_PER_FRAME`] bytes (one event at least).
/// An event too large for any frame ends what is sent of the chain (the peer gets the events
/// before it; a warning says why).
async fn send_audit_events(
    stores: &SharedStores,
    tx: &LinkTx,
    device: &str,
    mut from: u64,
    to: u64,
) -> Result<(), Error> {
    while from < to {
        let want = usize::try_from(to - from)
            .unwrap_or(usize::MAX)
            .min(AUDIT_EVENTS_PER_FRAME);
        let events = {
            let device = device.to_owned();
            stores
                .run(move |s| Ok(s.audit.chain(&device, from, want)?))
                .await?
        };
        let mut page = Vec::new();
        let mut bytes = 0;
        for e in events {
            let len = audit_event_len(&e);
            if len + 16 > MAX_FRAME {
                tracing::warn!(
                    device,
                    seq = e.seq,
                    bytes = len,
                    "an audit event too large for a sync frame: the chain is sent up to it"
                );
                if !page.is_empty() {
                    tx.send_paced(&Msg::AuditEvents(page)).await?;
                }
                return Ok(());
            }
            if !page.is_empty() && bytes + len > AUDIT_BYTES_PER_FRAME {
                break;
            }
            bytes += len;
            page.push(e);
        }
        if page.is_empty() {
            break;
        }
        let n = page.len() as u64;
        tx.send_paced(&Msg::AuditEvents(page)).await?;
        from += n;
    }
    Ok(())
}

/// Phase 6. Returns the blobs stored here. The asked-for blobs are read from the store one at
/// a time and sent paced, while the peer's are read and stored: a fresh peer that lacks
/// every blob costs the sender [`SEND_BUDGET`] of memory, not the sum of the blobs.
async fn sync_blobs<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    link: &mut Link<R>,
    mine: Vec<([u8; 32], u64)>,
    purged: BTreeSet<BlobHash>,
) -> Result<usize, Error> {
    link.send(&Msg::BlobList(mine.clone()))?;
    let theirs = match link.recv().await? {
        Msg::BlobList(b) => b,
        other => return Err(unexpected("BlobList", &other)),
    };
    let mine_set: BTreeSet<[u8; 32]> = mine.iter().map(|(h, _)| *h).collect();
    // Never a purged blob; never one held here already (stored but not live: not offered).
    let want: BTreeSet<[u8; 32]> = {
        let offered: Vec<[u8; 32]> = theirs
            .iter()
            .filter(|(h, size)| *size <= EAGER_BLOB_LIMIT && !mine_set.contains(h))
            .map(|(h, _)| *h)
            .collect();
        stores
            .run(move |s| {
                Ok(offered
                    .into_iter()
                    .filter(|h| {
                        !purged.contains(&BlobHash(*h)) && !s.artifacts.contains(&BlobHash(*h))
                    })
                    .collect())
            })
            .await?
    };
    link.send(&Msg::BlobWant(want.iter().copied().collect()))?;
    let asked = match link.recv().await? {
        Msg::BlobWant(h) => h,
        other => return Err(unexpected("BlobWant", &other)),
    };
    let (tx, rx) = link.parts();
    let send = async {
        for hash in asked {
            if !mine_set.contains(&hash) {
                continue;
            }
            let bytes = stores
                .run(move |s| Ok(s.artifacts.read(&BlobHash(hash))?))
                .await?;
            if bytes.len() as u64 > EAGER_BLOB_LIMIT {
                continue;
            }
            tx.send_paced(&Msg::Blob { hash, bytes }).await?;
        }
        tx.send(&Msg::RoundEnd)
    };
    let receive = async {
        let mut stored = 0;
        loop {
            match rx.recv().await? {
                Msg::Blob { hash, bytes } => {
                    if !want.contains(&hash) {
                        return Err(Error::Protocol(format!(
                            "blob {} was not asked for",
                            BlobHash(hash)
                        )));
                    }
                    stores
                        .run(move |s| {
                            s.artifacts
                                .put_verified(&BlobHash(hash), &bytes)
                                .map_err(|e| Error::Protocol(format!("blob from peer: {e}")))
                        })
                        .await?;
                    stored += 1;
                }
                Msg::RoundEnd => break,
                other => return Err(unexpected("Blob or RoundEnd", &other)),
            }
        }
        Ok(stored)
    };
    let ((), stored) = tokio::try_join!(send, receive)?;
    Ok(stored)
}

/// Sends points `from..to` of a series as `Points` frames, a page at a time.
async fn send_points(
    stores: &SharedStores,
    tx: &LinkTx,
    run: &str,
    key: &str,
    mut from: u64,
    to: u64,
) -> Result<(), Error> {
    while from < to {
        let want = usize::try_from(to - from)
            .unwrap_or(usize::MAX)
            .min(POINTS_PER_FRAME);
        let page = {
            let (run, key) = (run.to_owned(), key.to_owned());
            stores
                .run(move |s| Ok(s.metrics.history_page(&run, &key, from, want)?))
                .await?
        };
        if page.is_empty() {
            break;
        }
        let n = page.len() as u64;
        tx.send_paced(&Msg::Points {
            run: run.to_owned(),
            key: key.to_owned(),
            from,
            points: page
                .iter()
                .map(|p| (p.step, p.ts_ms, p.value.to_bits()))
                .collect(),
        })
        .await?;
        from += n;
    }
    Ok(())
}

fn unreachable_msg<T>() -> Result<T, Error> {
    Err(Error::Team("a metrics message matched no arm".into()))
}

fn unexpected(wanted: &str, got: &Msg) -> Error {
    Error::Protocol(format!("expected {wanted}, got {}", got.kind()))
}
