//! The stores one device syncs (catalog, metric series, trace logs, audit chains, artifact blobs)
//! and the ledger of peers,
//! opened as their own handles: sync is one more writer of the workspace, like a training job.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use cairn_artifacts::ArtifactStore;
use cairn_audit::AuditStore;
use cairn_catalog::Catalog;
use cairn_metrics::MetricStore;
use cairn_traces::TraceStore;

use crate::Error;
use crate::ledger::Ledger;
use crate::live::{self, Liveness, ManifestCache};
use crate::purge;

/// Blobs up to this size are sent eagerly; larger ones stay where they are until asked for.
pub const EAGER_BLOB_LIMIT: u64 = 8 << 20;

/// A part's items and the digest over all of them.
pub type Manifest<T> = (T, [u8; 32]);
/// Per-doc short digests of the heads.
pub type DocDigests = BTreeMap<String, [u8; 8]>;
/// Every series: run, key, count.
pub type Marks = Vec<(String, String, u64)>;
/// Every trace log: its source name, its entry count.
pub type TraceMarks = Vec<(String, u64)>;
/// Every audit chain: its device (the public key), its event count, the BLAKE3 of its last
/// event as stored here (recomputed from the event, not read from the index of heads).
pub type AuditMarks = Vec<([u8; 32], u64, [u8; 32])>;
/// Every blob: hash, size.
pub type BlobSizes = Vec<([u8; 32], u64)>;

/// Where a device's stores live (the workspace layout is `cairn-core`'s business).
#[derive(Debug, Clone)]
pub struct StorePaths {
    pub catalog: PathBuf,
    pub metrics: PathBuf,
    /// The trace store (`traces.db`): each device's append-only log of trace entries.
    pub traces: PathBuf,
    /// The audit store: every device's hash chain of signed events held here (tables of
    /// `catalog.db`, so a change and the event that attests it commit together).
    pub audit: PathBuf,
    /// Where older workspaces kept the chains (`audit.db`), moved into `audit` on open.
    pub legacy_audit: PathBuf,
    pub artifacts: PathBuf,
    /// The peer ledger (`sync.db`): known peers, their addresses and sync history, invitations.
    pub ledger: PathBuf,
}

impl StorePaths {
    /// The layout of a Cairn workspace directory.
    pub fn in_workspace(dir: &Path) -> StorePaths {
        StorePaths {
            catalog: dir.join("catalog.db"),
            metrics: dir.join("metrics.db"),
            traces: dir.join("traces.db"),
            audit: dir.join("catalog.db"),
            legacy_audit: dir.join("audit.db"),
            artifacts: dir.join("artifacts"),
            ledger: dir.join("sync.db"),
        }
    }
}

/// Open handles on one device's stores.
#[derive(Debug)]
pub struct Stores {
    pub catalog: Catalog,
    pub metrics: MetricStore,
    pub traces: TraceStore,
    pub audit: AuditStore,
    pub artifacts: ArtifactStore,
    pub ledger: Ledger,
    /// The files of the directory manifests read so far (what makes a blob live).
    pub manifests: ManifestCache,
}

/// The stores shared by every session of a node.
#[derive(Debug, Clone)]
pub struct SharedStores(Arc<Mutex<Stores>>);

impl Stores {
    /// Opens the stores; `writer` names this device in the catalog's audit trail.
    pub fn open(paths: &StorePaths, writer: &str) -> Result<Stores, Error> {
        Ok(Stores {
            catalog: Catalog::open(&paths.catalog, writer)?,
            metrics: MetricStore::open(&paths.metrics)?,
            traces: TraceStore::open(&paths.traces)?,
            audit: {
                let mut audit = AuditStore::open(&paths.audit)?;
                audit.adopt(&paths.legacy_audit)?;
                audit
            },
            artifacts: ArtifactStore::open(&paths.artifacts)?,
            ledger: Ledger::open(&paths.ledger)?,
            manifests: ManifestCache::default(),
        })
    }

    /// Which blobs are live (bound by a run that is not deleted, or by a model version) and
    /// which are purged: only live ones are offered, served and sent.
    pub fn liveness(&mut self) -> Result<Liveness, Error> {
        live::liveness(
            &mut self.catalog,
            &self.artifacts,
            &mut self.manifests,
            None,
        )
    }

    /// Acts on the valid purge tombstones: every purged blob still held or bound here is
    /// erased. Invalid tombstones are reported (a warning each) and ignored.
    pub fn apply_purges(&mut self) -> Result<purge::Applied, Error> {
        let applied = purge::apply(&mut self.catalog, &self.artifacts, None)?;
        for blob in &applied.purged {
            self.manifests.forget(blob);
        }
        Ok(applied)
    }

    /// Per-doc short digests of the heads (docs with no content left out) and one digest of all.
    pub fn catalog_manifest(&mut self) -> Result<Manifest<DocDigests>, Error> {
        let mut all = blake3::Hasher::new();
        let mut docs = BTreeMap::new();
        for d in self.catalog.doc_heads()? {
            if d.heads.is_empty() {
                continue;
            }
            let mut h = blake3::Hasher::new();
            for head in &d.heads {
                h.update(head);
            }
            let digest = h.finalize();
            let mut short = [0u8; 8];
            short.copy_from_slice(&digest.as_bytes()[..8]);
            all.update(&(d.name.len() as u64).to_be_bytes());
            all.update(d.name.as_bytes());
            all.update(digest.as_bytes());
            docs.insert(d.name, short);
        }
        Ok((docs, *all.finalize().as_bytes()))
    }

    /// Every series with its count, and their digest.
    pub fn metrics_manifest(&self) -> Result<Manifest<Marks>, Error> {
        let mut h = blake3::Hasher::new();
        let mut marks = Vec::new();
        for m in self.metrics.series_marks()? {
            h.update(&(m.run.len() as u64).to_be_bytes());
            h.update(m.run.as_bytes());
            h.update(&(m.key.len() as u64).to_be_bytes());
            h.update(m.key.as_bytes());
            h.update(&m.count.to_be_bytes());
            marks.push((m.run, m.key, m.count));
        }
        Ok((marks, *h.finalize().as_bytes()))
    }

    /// Every trace log with its entry count (this device's own and its copies of peers'),
    /// and their digest.
    pub fn traces_manifest(&self) -> Result<Manifest<TraceMarks>, Error> {
        let mut h = blake3::Hasher::new();
        let mut marks = Vec::new();
        for m in self.traces.marks()? {
            h.update(&(m.source.len() as u64).to_be_bytes());
            h.update(m.source.as_bytes());
            h.update(&m.count.to_be_bytes());
            marks.push((m.source, m.count));
        }
        Ok((marks, *h.finalize().as_bytes()))
    }

    /// Every audit chain held here with its count and head, and their digest. The head is the
    /// hash of the last stored event as it reads now, so an event edited in place (a raw edit
    /// of `audit.db`) shows as a head the peers do not hold, and the session sends it to them
    /// as evidence (see [`crate::session`]). A chain whose device is not a 32-byte key in hex
    /// (never stored by [`AuditStore`]) is left out.
    pub fn audit_manifest(&self) -> Result<Manifest<AuditMarks>, Error> {
        let mut h = blake3::Hasher::new();
        let mut marks = Vec::new();
        for m in self.audit.marks()? {
            let Some(device) = cairn_audit::event::unhex::<32>(&m.device) else {
                continue;
            };
            let Some(head) = self.audit_hash_at(&m.device, m.count)? else {
                continue;
            };
            h.update(&device);
            h.update(&m.count.to_be_bytes());
            h.update(&head);
            marks.push((device, m.count, head));
        }
        Ok((marks, *h.finalize().as_bytes()))
    }

    /// The hash of event `count - 1` of `device`'s chain as stored now (`None` for an empty
    /// chain, or one whose event is missing).
    pub fn audit_hash_at(&self, device: &str, count: u64) -> Result<Option<[u8; 32]>, Error> {
        let Some(seq) = count.checked_sub(1) else {
            return Ok(None);
        };
        Ok(self
            .audit
            .chain(device, seq, 1)?
            .into_iter()
            .find(|e| e.seq == seq)
            .and_then(|e| cairn_audit::event::unhex::<32>(&e.hash())))
    }

    /// What this device holds, as a stamp that changes whenever it does: the catalog's doc
    /// heads, the metric store's generation (which every change of a series' mark bumps),
    /// every trace log's and audit chain's mark. Recorded at the end of a session; the status
    /// compares it with the stamp now to say what is pending, so it reads a few rows per doc,
    /// device and chain, never every series or every blob (seconds at 100k runs). Blobs are
    /// not in it: a blob is offered because the catalog binds it, so a new binding is a
    /// catalog change, and blobs arrive through sessions, which record a new stamp.
    pub fn stamp(&mut self) -> Result<Vec<u8>, Error> {
        let (_, catalog) = self.catalog_manifest()?;
        let metrics = self.metrics.generation()?;
        let (_, traces) = self.traces_manifest()?;
        let (_, audit) = self.audit_manifest()?;
        let mut h = blake3::Hasher::new();
        h.update(b"cairn-sync-stamp-v1");
        h.update(&catalog);
        h.update(&metrics.to_be_bytes());
        h.update(&traces);
        h.update(&audit);
        Ok(h.finalize().as_bytes().to_vec())
    }

    /// Every live blob held here that is sent eagerly (up to [`EAGER_BLOB_LIMIT`]), and their
    /// digest. A blob no live run binds (a deleted artifact, a deleted run's, a purged one) is
    /// not offered, even when it is still stored.
    pub fn blobs_manifest(&mut self) -> Result<Manifest<BlobSizes>, Error> {
        let live = self.liveness()?;
        let mut h = blake3::Hasher::new();
        let mut blobs = Vec::new();
        for hash in live.live {
            let size = match self.artifacts.size(&hash) {
                Ok(size) => size,
                Err(cairn_artifacts::Error::NotFound(_)) => continue,
                Err(e) => return Err(e.into()),
            };
            if size > EAGER_BLOB_LIMIT {
                continue;
            }
            h.update(&hash.0);
            h.update(&size.to_be_bytes());
            blobs.push((hash.0, size));
        }
        Ok((blobs, *h.finalize().as_bytes()))
    }
}

impl SharedStores {
    pub fn new(stores: Stores) -> SharedStores {
        SharedStores(Arc::new(Mutex::new(stores)))
    }

    /// The stores, locked. Held only for one store operation at a time, never across an await.
    /// Blocking: async code calls [`SharedStores::run`] instead.
    pub fn lock(&self) -> Result<MutexGuard<'_, Stores>, Error> {
        self.0
            .lock()
            .map_err(|_| Error::Team("the stores' lock was poisoned by a panic".into()))
    }

    /// Runs `f` on the locked stores on tokio's blocking pool: SQLite, automerge and blob file
    /// I/O (and waiting for the lock) never occupy the async workers, which the desktop shares
    /// with its HTTP server.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Stores) -> Result<T, Error> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&mut *this.lock()?))
            .await
            .map_err(|e| Error::Team(format!("a store task failed: {e}")))?
    }
}
