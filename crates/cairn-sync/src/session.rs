//! One sync session between two devices over any ordered byte stream. Both sides run the same
//! code (the protocol is symmetric), so either may dial:
//!
//! 1. `Hello`: version and three digests (catalog heads, metric high-water marks, eager blobs).
//!    Equal digests skip that part: peers already in sync exchange two small frames and `Done`.
//! 2. Catalog: `Heads` (each doc's 8-byte heads digest), then rounds of automerge sync messages
//!    for the docs that differ only. In each round each side sends one `Doc` per active doc (a
//!    message or nothing) and `RoundEnd`, then reads the other's; a doc is finished in the
//!    round where neither side had anything to say. Both sides see both messages, so both agree.
//! 3. Metrics: `Marks` (every series and its count); each side sends the points the other lacks
//!    as `Points` continuing at the other's count, then `RoundEnd`.
//! 4. Blobs: first each side acts on purge tombstones the catalog brought (see [`crate::purge`]);
//!    then `BlobList` (the *live* blobs this side holds, see [`crate::live`]: a deleted
//!    artifact's, a deleted run's or a purged blob is never offered), `BlobWant` (the blobs up
//!    to the eager limit this side lacks, never a purged one), then the wanted `Blob`s, each
//!    verified against its BLAKE3 before it is stored.
//! 5. `Done`.
//!
//! Outgoing frames go through a writer task so a side never blocks on writing while the other
//! is writing too. Anything malformed, unexpected or unverifiable ends the session with an
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
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Error;
use crate::store::{EAGER_BLOB_LIMIT, SharedStores};
use crate::wire::{MAX_FRAME, Msg, POINTS_PER_FRAME, VERSION, read_frame, write_frame};

/// Rounds of automerge messages before a session gives up on a peer that never settles.
const MAX_ROUNDS: usize = 64;
/// Docs a peer may list: 100 million runs' worth of shards. More is an attack on our memory
/// (each doc it names that we lack gets an empty doc to sync into).
const MAX_DOCS: usize = 100_000;
/// How long a peer may stay silent in the middle of a session.
const IDLE: Duration = Duration::from_secs(60);

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
    pub blobs_received: usize,
    /// Purged blobs (valid tombstones) erased here during the session.
    pub purges_applied: usize,
    /// This side's digests at the end (what "in sync with this peer" meant).
    #[serde(skip)]
    pub digest: Vec<u8>,
}

impl SessionReport {
    /// Whether this side's stores changed.
    pub fn changed(&self) -> bool {
        self.docs_changed > 0
            || self.points_received > 0
            || self.blobs_received > 0
            || self.purges_applied > 0
    }
}

/// A framed, counted connection: reads inline, writes through a task.
#[derive(Debug)]
pub struct Link<R> {
    reader: R,
    out: Option<mpsc::UnboundedSender<Vec<u8>>>,
    writer: Option<JoinHandle<Result<(), Error>>>,
    sent: Arc<AtomicU64>,
    received: u64,
}

impl<R: AsyncRead + Unpin + Send> Link<R> {
    pub fn new<W: AsyncWrite + Unpin + Send + 'static>(reader: R, mut writer: W) -> Link<R> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let sent = Arc::new(AtomicU64::new(0));
        let counter = sent.clone();
        let task = tokio::spawn(async move {
            while let Some(frame) = rx.recv().await {
                let n = write_frame(&mut writer, &frame).await?;
                counter.fetch_add(n, Ordering::Relaxed);
            }
            writer.shutdown().await?;
            Ok(())
        });
        Link {
            reader,
            out: Some(tx),
            writer: Some(task),
            sent,
            received: 0,
        }
    }

    pub fn send(&self, msg: &Msg) -> Result<(), Error> {
        let payload = msg.encode();
        if payload.len() > MAX_FRAME {
            return Err(Error::Protocol(format!(
                "a {} message of {} bytes exceeds the frame limit",
                msg.kind(),
                payload.len()
            )));
        }
        self.out
            .as_ref()
            .and_then(|o| o.send(payload).ok())
            .ok_or_else(|| Error::Protocol("the connection's writer has stopped".into()))
    }

    pub async fn recv(&mut self) -> Result<Msg, Error> {
        let frame = tokio::time::timeout(IDLE, read_frame(&mut self.reader))
            .await
            .map_err(|_| Error::Protocol(format!("the peer was silent for {IDLE:?}")))??
            .ok_or_else(|| Error::Protocol("the peer closed the connection mid-session".into()))?;
        self.received += 4 + frame.len() as u64;
        Msg::decode(&frame)
    }

    /// Flushes and closes the sending side; returns (bytes sent, bytes received).
    pub async fn finish(mut self) -> Result<(u64, u64), Error> {
        self.out.take();
        if let Some(w) = self.writer.take() {
            w.await
                .map_err(|e| Error::Protocol(format!("writer task: {e}")))??;
        }
        Ok((self.sent.load(Ordering::Relaxed), self.received))
    }

    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
    pub fn received(&self) -> u64 {
        self.received
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
/// then closes the link.
pub async fn run_session<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    peer: &str,
    mut link: Link<R>,
) -> Result<SessionReport, Error> {
    let mut report = SessionReport::default();
    let (docs, cat_digest, marks, met_digest, blob_digest) = {
        let mut s = stores.lock()?;
        let (docs, cd) = s.catalog_manifest()?;
        let (marks, md) = s.metrics_manifest()?;
        let (_, bd) = s.blobs_manifest()?;
        (docs, cd, marks, md, bd)
    };
    link.send(&Msg::Hello {
        version: VERSION,
        catalog: cat_digest,
        metrics: met_digest,
        blobs: blob_digest,
    })?;
    let (their_cat, their_met, their_blobs) = match link.recv().await? {
        Msg::Hello {
            version,
            catalog,
            metrics,
            blobs,
        } => {
            if version != VERSION {
                return Err(Error::Protocol(format!(
                    "the peer speaks sync version {version}, this build {VERSION}"
                )));
            }
            (catalog, metrics, blobs)
        }
        other => return Err(unexpected("Hello", &other)),
    };
    if their_cat != cat_digest {
        sync_catalog(stores, peer, &mut link, docs, &mut report).await?;
    }
    // What the catalog phase brought may purge blobs (a tombstone) or unbind them: act on
    // tombstones before any blob moves, and list the blobs to offer afresh.
    let purged = {
        let mut s = stores.lock()?;
        let applied = s.apply_purges()?;
        report.purges_applied = applied.erased;
        applied.purged
    };
    if their_met != met_digest {
        sync_metrics(stores, &mut link, marks, &mut report).await?;
    }
    if their_blobs != blob_digest {
        let (blobs, _) = stores.lock()?.blobs_manifest()?;
        sync_blobs(stores, &mut link, blobs, &purged, &mut report).await?;
    }
    link.send(&Msg::Done)?;
    match link.recv().await? {
        Msg::Done => {}
        other => return Err(unexpected("Done", &other)),
    }
    report.digest = {
        let mut s = stores.lock()?;
        let (_, cd) = s.catalog_manifest()?;
        let (_, md) = s.metrics_manifest()?;
        let (_, bd) = s.blobs_manifest()?;
        [cd, md, bd].concat()
    };
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
    let mut states: BTreeMap<String, DocSyncState> = BTreeMap::new();
    {
        let s = stores.lock()?;
        for name in &differing {
            states.insert(name.clone(), s.catalog.sync_state(peer, name)?);
        }
    }
    let mut changed: BTreeSet<String> = BTreeSet::new();
    let mut active: BTreeSet<String> = differing.iter().cloned().collect();
    let mut round = 0;
    while !active.is_empty() {
        round += 1;
        if round > MAX_ROUNDS {
            return Err(Error::Protocol(format!(
                "{} docs still differ after {MAX_ROUNDS} rounds",
                active.len()
            )));
        }
        let mut said: BTreeSet<String> = BTreeSet::new();
        for name in &active {
            let msg = {
                let mut s = stores.lock()?;
                let state = states
                    .get_mut(name)
                    .ok_or_else(|| Error::Team(format!("no sync state for {name}")))?;
                s.catalog.sync_generate(name, state)?
            };
            if msg.is_some() {
                said.insert(name.clone());
            }
            link.send(&Msg::Doc {
                name: name.clone(),
                msg,
            })?;
        }
        link.send(&Msg::RoundEnd)?;
        let mut heard: BTreeSet<String> = BTreeSet::new();
        loop {
            match link.recv().await? {
                Msg::Doc { name, msg } => {
                    if !active.contains(&name) {
                        return Err(Error::Protocol(format!(
                            "a message about doc '{name}', which is not being synced"
                        )));
                    }
                    if let Some(m) = msg {
                        heard.insert(name.clone());
                        let mut s = stores.lock()?;
                        let state = states
                            .get_mut(&name)
                            .ok_or_else(|| Error::Team(format!("no sync state for {name}")))?;
                        let receipt = s
                            .catalog
                            .sync_receive(peer, &name, state, &m)
                            .map_err(|e| Error::Protocol(e.to_string()))?;
                        if receipt.changed {
                            changed.insert(name);
                        }
                    }
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

async fn sync_metrics<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    link: &mut Link<R>,
    mine: Vec<(String, String, u64)>,
    report: &mut SessionReport,
) -> Result<(), Error> {
    link.send(&Msg::Marks(mine.clone()))?;
    let theirs = match link.recv().await? {
        Msg::Marks(m) => m,
        other => return Err(unexpected("Marks", &other)),
    };
    let their_counts: BTreeMap<(String, String), u64> =
        theirs.into_iter().map(|(r, k, c)| ((r, k), c)).collect();
    for (run, key, count) in &mine {
        let have = their_counts
            .get(&(run.clone(), key.clone()))
            .copied()
            .unwrap_or(0);
        if have >= *count {
            continue;
        }
        // Sealed chunks travel as stored (4-8 bytes a point); what lies before the first of
        // them and after the last goes as points (24 bytes).
        let chunks = {
            let s = stores.lock()?;
            s.metrics.sealed_chunks(run, key, have)?
        };
        let mut from = have;
        for chunk in chunks {
            send_points(stores, link, run, key, from, chunk.first_seq)?;
            let Ok(hash) = <[u8; 32]>::try_from(chunk.hash.as_slice()) else {
                return Err(Error::Team(format!(
                    "chunk of {run}/{key} has a malformed hash"
                )));
            };
            link.send(&Msg::Chunk {
                run: run.clone(),
                key: key.clone(),
                from: chunk.first_seq,
                count: chunk.count,
                hash,
                data: chunk.data,
            })?;
            from = chunk.first_seq + chunk.count;
        }
        send_points(stores, link, run, key, from, *count)?;
    }
    link.send(&Msg::RoundEnd)?;
    loop {
        match link.recv().await? {
            msg @ (Msg::Points { .. } | Msg::Chunk { .. }) => {
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
                    _ => unreachable_msg()?,
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
                let mut s = stores.lock()?;
                let at = s.metrics.series_info(&run, &key)?.map_or(0, |i| i.count);
                if from > at {
                    return Err(Error::Protocol(format!(
                        "points for {run}/{key} from {from}, but this side holds {at}"
                    )));
                }
                // A series has one writer, so what overlaps what is here (another session
                // brought it meanwhile) is the same: append only the rest.
                let skip = usize::try_from(at - from).unwrap_or(usize::MAX);
                if skip < pts.len() {
                    s.metrics.append_at(&run, &key, at, &pts[skip..])?;
                    report.points_received += (pts.len() - skip) as u64;
                }
            }
            Msg::RoundEnd => break,
            other => return Err(unexpected("Points, Chunk or RoundEnd", &other)),
        }
    }
    Ok(())
}

async fn sync_blobs<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    link: &mut Link<R>,
    mine: Vec<([u8; 32], u64)>,
    purged: &BTreeSet<BlobHash>,
    report: &mut SessionReport,
) -> Result<(), Error> {
    link.send(&Msg::BlobList(mine.clone()))?;
    let theirs = match link.recv().await? {
        Msg::BlobList(b) => b,
        other => return Err(unexpected("BlobList", &other)),
    };
    let mine_set: BTreeSet<[u8; 32]> = mine.iter().map(|(h, _)| *h).collect();
    // Never a purged blob; never one held here already (stored but not live: not offered).
    let want: BTreeSet<[u8; 32]> = {
        let s = stores.lock()?;
        theirs
            .iter()
            .filter(|(h, size)| {
                *size <= EAGER_BLOB_LIMIT
                    && !mine_set.contains(h)
                    && !purged.contains(&BlobHash(*h))
                    && !s.artifacts.contains(&BlobHash(*h))
            })
            .map(|(h, _)| *h)
            .collect()
    };
    link.send(&Msg::BlobWant(want.iter().copied().collect()))?;
    let asked = match link.recv().await? {
        Msg::BlobWant(h) => h,
        other => return Err(unexpected("BlobWant", &other)),
    };
    for hash in asked {
        if !mine_set.contains(&hash) {
            continue;
        }
        let bytes = {
            let s = stores.lock()?;
            s.artifacts.read(&BlobHash(hash))?
        };
        if bytes.len() as u64 > EAGER_BLOB_LIMIT {
            continue;
        }
        link.send(&Msg::Blob { hash, bytes })?;
    }
    link.send(&Msg::RoundEnd)?;
    loop {
        match link.recv().await? {
            Msg::Blob { hash, bytes } => {
                if !want.contains(&hash) {
                    return Err(Error::Protocol(format!(
                        "blob {} was not asked for",
                        BlobHash(hash)
                    )));
                }
                let s = stores.lock()?;
                s.artifacts
                    .put_verified(&BlobHash(hash), &bytes)
                    .map_err(|e| Error::Protocol(format!("blob from peer: {e}")))?;
                report.blobs_received += 1;
            }
            Msg::RoundEnd => break,
            other => return Err(unexpected("Blob or RoundEnd", &other)),
        }
    }
    Ok(())
}

/// Sends points `from..to` of a series as `Points` frames.
fn send_points<R: AsyncRead + Unpin + Send>(
    stores: &SharedStores,
    link: &Link<R>,
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
            let s = stores.lock()?;
            s.metrics.history_page(run, key, from, want)?
        };
        if page.is_empty() {
            break;
        }
        let n = page.len() as u64;
        link.send(&Msg::Points {
            run: run.to_owned(),
            key: key.to_owned(),
            from,
            points: page
                .iter()
                .map(|p| (p.step, p.ts_ms, p.value.to_bits()))
                .collect(),
        })?;
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
