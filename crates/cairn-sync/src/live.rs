//! Which blobs are *live*: bound to a path of a run that is not deleted (directly, or as a file
//! of a directory whose manifest is bound), or named as the content of a registered model
//! version — and not purged by a valid tombstone.
//!
//! Only live blobs are offered to peers in a session and served by `cairn/blob/1`: a deleted
//! artifact (unbound), a deleted run's artifacts and a purged secret travel nowhere. The same
//! set is what `cairn gc` keeps. What lives in the artifact store is artifact content and
//! directory manifests only (sealed metric chunks are in `metrics.db`), so this is the whole
//! story of what a blob is kept for.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use cairn_artifacts::ArtifactStore;
use cairn_catalog::Catalog;
use cairn_model::registry::{LegacyModel, VersionRecord, keys};
use cairn_model::{ArtifactKind, BlobHash};

use crate::Error;
use crate::purge;

/// The files a directory manifest lists, remembered per manifest: manifests are immutable, so
/// an entry never goes stale, and a device reads each one once instead of once per session.
#[derive(Debug, Default)]
pub struct ManifestCache {
    entries: HashMap<BlobHash, Arc<[BlobHash]>>,
    /// Blobs of unknown kind found not to be manifests (they are not read again).
    not_manifests: HashSet<BlobHash>,
}

/// A blob of unknown kind larger than this is taken for a file without reading it (a model's
/// weights, say); a manifest this large would list some 100,000 files.
const MAX_GUESSED_MANIFEST: u64 = 16 << 20;

impl ManifestCache {
    fn entries(
        &mut self,
        artifacts: &ArtifactStore,
        manifest: &BlobHash,
    ) -> Result<Option<Arc<[BlobHash]>>, cairn_artifacts::Error> {
        if let Some(e) = self.entries.get(manifest) {
            return Ok(Some(e.clone()));
        }
        if !artifacts.contains(manifest) {
            return Ok(None);
        }
        let m = artifacts.manifest(manifest)?;
        let e: Arc<[BlobHash]> = m.entries.iter().map(|e| e.hash).collect();
        self.entries.insert(*manifest, e.clone());
        Ok(Some(e))
    }

    /// The files `blob` lists when it is a (small enough) manifest; `None` for anything else.
    fn entries_if_manifest(
        &mut self,
        artifacts: &ArtifactStore,
        blob: &BlobHash,
    ) -> Option<Arc<[BlobHash]>> {
        if self.not_manifests.contains(blob) {
            return None;
        }
        // Not here (yet): nothing to learn.
        let size = artifacts.size(blob).ok()?;
        let found = (size <= MAX_GUESSED_MANIFEST)
            .then(|| self.entries(artifacts, blob).ok().flatten())
            .flatten();
        if found.is_none() {
            self.not_manifests.insert(*blob);
        }
        found
    }

    /// Forgets a blob (it was erased).
    pub fn forget(&mut self, blob: &BlobHash) {
        self.entries.remove(blob);
        self.not_manifests.remove(blob);
    }
}

/// What the catalog keeps blobs for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Liveness {
    /// Live blobs (see the module doc), purged ones taken out.
    pub live: BTreeSet<BlobHash>,
    /// Blobs only deleted runs bind (restoring a run makes them live again).
    pub deleted_runs_only: BTreeSet<BlobHash>,
    /// Blobs purged by valid tombstones: refused, never live.
    pub purged: BTreeSet<BlobHash>,
    /// Bound directory manifests that are not here (their files cannot be here either, unless
    /// bound on their own).
    pub missing_manifests: BTreeSet<BlobHash>,
    /// Bound manifests or registry entries that could not be read, with why: what they name is
    /// unknown, so a collector must not guess.
    pub unreadable: Vec<String>,
}

impl Liveness {
    /// Whether `blob` may be offered, served or kept.
    pub fn is_live(&self, blob: &BlobHash) -> bool {
        self.live.contains(blob)
    }
}

/// Computes what is live from the catalog's bindings and registry and the manifests held in
/// `artifacts`. `me` is this device's id, whose own tombstones count without a roster.
pub fn liveness(
    catalog: &mut Catalog,
    artifacts: &ArtifactStore,
    manifests: &mut ManifestCache,
    me: Option<&str>,
) -> Result<Liveness, Error> {
    let mut out = Liveness {
        purged: purge::tombstones(catalog, me)?.blobs(),
        ..Default::default()
    };
    // Per blob: bound by a live run? And its kind (a directory's manifest lists more blobs);
    // unknown for a model version's content that no run binds any more.
    let mut bound: BTreeMap<BlobHash, (bool, Option<ArtifactKind>)> = BTreeMap::new();
    for b in catalog.bound_blobs()? {
        let kind = if b.dir {
            ArtifactKind::Dir
        } else {
            ArtifactKind::File
        };
        bound.insert(b.hash, (b.live, Some(kind)));
    }
    // Every registered version's content, deleted versions included: a version record is
    // never rewritten, so what it pins stays (and the format before records, until migrated).
    let ranges = catalog.team_ranges(&[keys::VERSION, keys::LEGACY])?;
    let mut contents: Vec<BlobHash> = Vec::new();
    for (i, range) in ranges.into_iter().enumerate() {
        for (key, values) in range {
            for text in values {
                let found = if i == 0 {
                    serde_json::from_str::<VersionRecord>(&text)
                        .map(|v| v.content.into_iter().collect())
                } else {
                    serde_json::from_str::<LegacyModel>(&text).map(|m| {
                        m.versions
                            .iter()
                            .filter_map(|v| v.content)
                            .collect::<Vec<_>>()
                    })
                };
                match found {
                    Ok(hashes) => contents.extend(hashes),
                    Err(e) => out.unreadable.push(format!("{key}: {e}")),
                }
            }
        }
    }
    for hash in contents {
        bound.entry(hash).or_insert((true, None)).0 = true;
    }
    let mut live = BTreeSet::new();
    let mut dead = BTreeSet::new();
    for (hash, (is_live, kind)) in &bound {
        let set = if *is_live { &mut live } else { &mut dead };
        set.insert(*hash);
        match kind {
            Some(ArtifactKind::File) => {}
            Some(ArtifactKind::Dir) => match manifests.entries(artifacts, hash) {
                Ok(Some(entries)) => set.extend(entries.iter().copied()),
                Ok(None) => {
                    out.missing_manifests.insert(*hash);
                }
                Err(e) => out.unreadable.push(format!("manifest {hash}: {e}")),
            },
            // A model's content of unknown kind: a directory if it reads as a manifest.
            None => {
                if let Some(entries) = manifests.entries_if_manifest(artifacts, hash) {
                    set.extend(entries.iter().copied());
                }
            }
        }
    }
    out.deleted_runs_only = dead.difference(&live).copied().collect();
    out.live = live.difference(&out.purged).copied().collect();
    for why in &out.unreadable {
        tracing::warn!("what a blob is kept for is unknown: {why}");
    }
    Ok(out)
}
