//! Freeing the artifact store: `gc` removes the blobs no run keeps any more, `purge_artifact`
//! removes a leaked secret here at once and, through a signed tombstone, from every teammate's
//! device that syncs afterwards.
//!
//! What `gc` keeps is what sync offers (`cairn_sync::live`): blobs bound to a path of a run that
//! is not deleted (directly, or as a file of a bound directory), and registered model versions'
//! content. A soft-deleted run keeps its blobs until `gc` runs — deleting a run, like MLflow's,
//! is undoable, and `gc` is the step that makes it final for its artifacts (MLflow's `gc`
//! likewise collects the runs in the deleted stage). A run restored after `gc` shows its
//! artifact paths; their content comes back from a teammate who still holds it, if one does.
//!
//! Collecting is safe next to writers: a blob stored (or stored again) within the grace period
//! is kept, since a writer stores a blob first and binds it to its run right after.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use cairn_artifacts::{ArtifactStore, Collected, Manifest, ManifestEntry};
use cairn_catalog::RunEdit;
use cairn_model::{ArtifactKind, ArtifactRef, BlobHash, RunId};
use cairn_sync::live::{self, ManifestCache};
use cairn_sync::purge::{self, Tombstone};
use serde::Serialize;
use tracing::instrument;

use crate::stores::now_ms;
use crate::{Error, Stores};

/// How long a blob nothing references is kept after it was stored, by default: a writer binds
/// what it stored within seconds, so an hour is generous.
pub const GC_GRACE: Duration = Duration::from_secs(3600);

/// What `gc` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    pub dry_run: bool,
    pub grace_s: u64,
    /// Blobs removed and their bytes.
    pub removed: usize,
    pub removed_bytes: u64,
    /// Of those, the ones only deleted runs bound.
    pub removed_of_deleted_runs: usize,
    /// Blobs nothing references, kept because they were stored within the grace period.
    pub recent: usize,
    /// Blobs kept because they are live.
    pub kept: usize,
    pub kept_bytes: u64,
    /// Files crashed writers left in the store's `tmp/`, removed.
    pub tmp_files: usize,
    pub tmp_bytes: u64,
}

/// What purging one artifact did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PurgeReport {
    pub run: String,
    pub path: String,
    /// Every blob purged, with the bytes removed here (none when it was not here).
    pub blobs: Vec<PurgedBlob>,
    /// (run, path) bindings removed, in any run that bound the same content.
    pub unbound: Vec<(String, String)>,
    /// The directory artifact rebound to a manifest without the purged file, when the path was
    /// a file inside one: (directory path, new manifest).
    pub rebound: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PurgedBlob {
    pub hash: String,
    pub path: String,
    pub removed_bytes: Option<u64>,
}

impl Stores {
    fn artifact_store(&self) -> Result<ArtifactStore, Error> {
        Ok(ArtifactStore::open(&self.dir().join("artifacts"))?)
    }

    /// Removes the blobs no run keeps (see the module doc) that were stored longer than `grace`
    /// ago, and what crashed writers left in the store's `tmp/`. With `dry_run`, removes
    /// nothing and reports what it would remove.
    #[instrument(skip(self), err)]
    pub(crate) fn gc(&mut self, grace: Duration, dry_run: bool) -> Result<GcReport, Error> {
        let store = self.artifact_store()?;
        // This device's own tombstones count without a team (a purge made before joining one).
        let me = if self.dir().join("device.key").is_file() {
            Some(self.device_id()?)
        } else {
            None
        };
        let live = live::liveness(
            self.catalog_mut(),
            &store,
            &mut ManifestCache::default(),
            me.as_deref(),
        )?;
        if !live.unreadable.is_empty() {
            return Err(Error::Invalid(format!(
                "not collecting: what these name is unknown, so a blob they keep could be taken: {}",
                live.unreadable.join("; ")
            )));
        }
        let mut report = GcReport {
            dry_run,
            grace_s: grace.as_secs(),
            ..GcReport::default()
        };
        for (hash, size) in store.list()? {
            if live.is_live(&hash) {
                report.kept += 1;
                report.kept_bytes += size;
                continue;
            }
            let removed = if dry_run {
                let age = store
                    .stored_at(&hash)?
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                match age {
                    Some(age) if age >= grace => Collected::Removed(size),
                    Some(_) | None => Collected::Recent,
                }
            } else {
                store.collect(&hash, grace)?
            };
            match removed {
                Collected::Removed(bytes) => {
                    report.removed += 1;
                    report.removed_bytes += bytes;
                    if live.deleted_runs_only.contains(&hash) {
                        report.removed_of_deleted_runs += 1;
                    }
                }
                Collected::Recent => report.recent += 1,
                Collected::Absent => {}
            }
        }
        let (files, bytes) = store.sweep_tmp(grace, dry_run)?;
        report.tmp_files = files;
        report.tmp_bytes = bytes;
        tracing::info!(
            removed = report.removed,
            bytes = report.removed_bytes,
            dry_run,
            "collected the artifact store"
        );
        Ok(report)
    }

    /// Purges the run's artifact `path` (a leaked secret): its content is deleted here at once,
    /// with every binding of the same content in any run, and a tombstone signed by this
    /// device's key is recorded in the team doc, so every teammate's device that syncs
    /// afterwards deletes it too and refuses it from then on.
    ///
    /// `path` may be a file artifact, a directory artifact (every file in it and its manifest
    /// are purged) or a file inside a directory artifact (that file is purged and the
    /// directory is bound to a manifest without it).
    #[instrument(skip(self), err)]
    pub(crate) fn purge_artifact(
        &mut self,
        run: RunId,
        path: &str,
        reason: &str,
    ) -> Result<PurgeReport, Error> {
        let store = self.artifact_store()?;
        let view = self.run(run)?.run;
        let path = path.trim_matches('/');
        let unknown = || Error::UnknownArtifact {
            run: run.to_string(),
            path: path.to_owned(),
        };
        let mut report = PurgeReport {
            run: run.to_string(),
            path: path.to_owned(),
            ..PurgeReport::default()
        };
        // (blob, the path it is purged as)
        let mut doomed: Vec<(BlobHash, String)> = Vec::new();
        let mut rebind = None;
        match view.artifacts.get(path) {
            Some(r) if r.kind == ArtifactKind::File => doomed.push((r.hash, path.to_owned())),
            Some(r) => {
                if store.contains(&r.hash) {
                    for e in store.manifest(&r.hash)?.entries {
                        doomed.push((e.hash, format!("{path}/{}", e.path)));
                    }
                }
                doomed.push((r.hash, path.to_owned()));
            }
            None => {
                // A file inside a directory artifact.
                let (root, r, entry, manifest) = view
                    .artifacts
                    .iter()
                    .filter(|(_, r)| r.kind == ArtifactKind::Dir)
                    .find_map(|(root, r)| {
                        let rest = path.strip_prefix(root.as_str())?.strip_prefix('/')?;
                        let m = store.manifest(&r.hash).ok()?;
                        let e = m.entries.iter().find(|e| e.path == rest)?.clone();
                        Some((root.clone(), r.clone(), e, m))
                    })
                    .ok_or_else(unknown)?;
                let rest: Vec<ManifestEntry> = manifest
                    .entries
                    .into_iter()
                    .filter(|e| e.path != entry.path)
                    .collect();
                let edit = if rest.is_empty() {
                    RunEdit::DeleteArtifact(root.clone())
                } else {
                    let m = Manifest::from_entries(rest);
                    let put = store.put_bytes(&m.to_bytes())?;
                    report.rebound = Some((root.clone(), put.hash.to_hex()));
                    RunEdit::Artifact(
                        root.clone(),
                        ArtifactRef {
                            hash: put.hash,
                            size: m.total_size(),
                            kind: ArtifactKind::Dir,
                        },
                    )
                };
                tracing::debug!(dir = root, old = %r.hash, "rebinding a directory without the purged file");
                rebind = Some(edit);
                doomed.push((entry.hash, path.to_owned()));
            }
        }
        let mut seen = BTreeSet::new();
        doomed.retain(|(blob, _)| seen.insert(*blob));
        // Signed before anything is erased: who purged what, from which run, and why.
        self.record_event(purge_event(
            self.draft(cairn_audit::kind::ARTIFACT_PURGED),
            run,
            path,
            reason,
            &doomed,
        ))?;
        if let Some(edit) = rebind {
            self.catalog_mut().update_run(run, &[edit])?;
        }
        let key = self.device_key()?;
        let user = self.user().to_owned();
        let at = now_ms();
        for (blob, as_path) in doomed {
            let (_, erased) = purge::purge(
                self.catalog_mut(),
                &store,
                &key,
                Tombstone::new(blob, &user, at, &run.to_string(), &as_path, reason),
            )?;
            report.unbound.extend(erased.unbound);
            report.blobs.push(PurgedBlob {
                hash: blob.to_hex(),
                path: as_path,
                removed_bytes: erased.removed_bytes,
            });
        }
        report.unbound.sort();
        report.unbound.dedup();
        Ok(report)
    }
}

/// Blobs an `artifact.purged` event lists one by one (`blob.N`: `hash path`); a directory
/// with more is listed by count and the BLAKE3 of the whole list.
const PURGE_LISTED: usize = 100;
/// Blobs it names as subjects (an event holds at most `cairn_audit::event::MAX_SUBJECTS`).
const PURGE_SUBJECTS: usize = 32;

/// The event of a purge: the run, the path, the reason, every blob erased (the first ones as
/// `blob:<hash>` subjects too, so the store finds a blob's purge by its hash).
fn purge_event(
    draft: cairn_audit::Draft,
    run: RunId,
    path: &str,
    reason: &str,
    doomed: &[(BlobHash, String)],
) -> cairn_audit::Draft {
    let all: Vec<String> = doomed
        .iter()
        .map(|(h, p)| format!("{} {p}", h.to_hex()))
        .collect();
    let mut draft = draft
        .subject(format!("run:{run}"))
        .field("run", run.to_string())
        .field("path", path)
        .field("reason", reason)
        .field("blobs", doomed.len().to_string())
        .field(
            "blobs.digest",
            blake3::hash(all.join("\n").as_bytes()).to_hex().to_string(),
        );
    for (i, line) in all.iter().take(PURGE_LISTED).enumerate() {
        draft = draft.field(&format!("blob.{i}"), line.clone());
    }
    for (h, _) in doomed.iter().take(PURGE_SUBJECTS) {
        draft = draft.subject(format!("blob:{}", h.to_hex()));
    }
    draft
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::NewRun;

    const HOUR: Duration = Duration::from_secs(3600);

    struct Ws {
        _tmp: tempfile::TempDir,
        ws: Stores,
    }

    fn ws() -> Ws {
        let tmp = tempfile::tempdir().unwrap();
        let ws = Stores::create(&tmp.path().join("ws"), "ada").unwrap();
        Ws { _tmp: tmp, ws }
    }

    impl Ws {
        fn run(&mut self) -> RunId {
            self.ws.start_run(NewRun::default()).unwrap().id
        }
        fn add(&mut self, run: RunId, path: &str, bytes: &[u8]) -> BlobHash {
            self.ws
                .add_artifact_reader(run, path, &mut &bytes[..])
                .unwrap()
                .hash
        }
        fn add_dir(&mut self, run: RunId, path: &str, files: &[(&str, &[u8])]) -> BlobHash {
            let src = self._tmp.path().join(format!("src-{}", files.len()));
            for (name, bytes) in files {
                std::fs::create_dir_all(src.join(name).parent().unwrap()).unwrap();
                std::fs::write(src.join(name), bytes).unwrap();
            }
            self.ws.add_artifact(run, &src, Some(path)).unwrap().1.hash
        }
        fn store(&self) -> ArtifactStore {
            self.ws.artifact_store().unwrap()
        }
        fn holds(&self, bytes: &[u8]) -> bool {
            self.store().contains(&hash(bytes))
        }
        /// Makes every stored blob look two hours old.
        fn age_all(&self) {
            let store = self.store();
            for (h, _) in store.list().unwrap() {
                let hex = h.to_hex();
                let path = store.root().join("blobs").join(&hex[..2]).join(&hex);
                std::fs::File::open(path)
                    .unwrap()
                    .set_modified(SystemTime::now() - 2 * HOUR)
                    .unwrap();
            }
        }
    }

    fn hash(bytes: &[u8]) -> BlobHash {
        BlobHash(*blake3::hash(bytes).as_bytes())
    }

    #[test]
    fn gc_frees_what_no_live_run_keeps_and_spares_the_rest() {
        let mut w = ws();
        let run = w.run();
        w.add(run, "model.bin", b"weights");
        w.add(run, ".env", b"SECRET=1");
        w.ws.delete_artifact(run, ".env").unwrap();
        w.add_dir(
            run,
            "plots",
            &[("a.svg", b"<svg>a</svg>"), ("b.svg", b"<svg>b</svg>")],
        );
        let gone = w.run();
        w.add(gone, "old.bin", b"an old checkpoint");
        w.ws.delete_run(gone).unwrap();
        // A model version's content outlives the run artifact it came from.
        let champ = w.run();
        w.add(champ, "champion.bin", b"the champion");
        w.ws.create_registered_model("m", None, BTreeMap::new())
            .unwrap();
        w.ws.create_model_version(
            "m",
            &format!("runs:/{champ}/champion.bin"),
            Some(champ),
            None,
            BTreeMap::new(),
        )
        .unwrap();
        // The path is locked while the version lives; a deleted version keeps its content.
        assert!(w.ws.delete_artifact(champ, "champion.bin").is_err());
        w.ws.delete_model_version("m", 1, "superseded").unwrap();
        w.ws.delete_artifact(champ, "champion.bin").unwrap();
        w.age_all();
        // Just stored, not bound yet: a writer between its put and its binding.
        w.store().put_bytes(b"being written right now").unwrap();

        let dry = w.ws.gc(HOUR, true).unwrap();
        assert_eq!(
            (dry.removed, dry.removed_of_deleted_runs, dry.recent),
            (2, 1, 1),
            "{dry:?}"
        );
        assert!(
            w.holds(b"SECRET=1") && w.holds(b"an old checkpoint"),
            "a dry run removed"
        );

        let done = w.ws.gc(HOUR, false).unwrap();
        assert_eq!(done.removed, 2, "{done:?}");
        assert_eq!(
            done.removed_bytes,
            (b"SECRET=1".len() + b"an old checkpoint".len()) as u64
        );
        assert_eq!(done.removed_of_deleted_runs, 1);
        assert_eq!(done.recent, 1);
        // model.bin, the manifest and its two files, the champion.
        assert_eq!(done.kept, 5, "{done:?}");
        assert!(!w.holds(b"SECRET=1") && !w.holds(b"an old checkpoint"));
        for kept in [
            &b"weights"[..],
            b"<svg>a</svg>",
            b"<svg>b</svg>",
            b"the champion",
            b"being written right now",
        ] {
            assert!(w.holds(kept), "{}", String::from_utf8_lossy(kept));
        }
        assert_eq!(
            w.ws.read_artifact_path(run, "plots/a.svg").unwrap(),
            b"<svg>a</svg>"
        );
        // Nothing left to do the second time.
        let again = w.ws.gc(HOUR, false).unwrap();
        assert_eq!(again.removed, 0);
    }

    #[test]
    fn a_model_versions_directory_keeps_its_files_when_no_run_binds_it_any_more() {
        let mut w = ws();
        let run = w.run();
        w.add_dir(
            run,
            "model",
            &[("weights.bin", b"w"), ("config.json", b"{}")],
        );
        w.ws.create_registered_model("m", None, BTreeMap::new())
            .unwrap();
        w.ws.create_model_version(
            "m",
            &format!("runs:/{run}/model"),
            Some(run),
            None,
            BTreeMap::new(),
        )
        .unwrap();
        w.ws.delete_model_version("m", 1, "superseded").unwrap();
        w.ws.delete_artifact(run, "model").unwrap();
        w.age_all();
        let r = w.ws.gc(HOUR, false).unwrap();
        assert_eq!((r.removed, r.kept), (0, 3), "{r:?}");
        assert!(w.holds(b"w") && w.holds(b"{}"));
    }

    #[test]
    fn storing_content_again_before_binding_it_is_safe_from_a_concurrent_gc() {
        // An old unbound blob (a deleted artifact) uploaded again: the writer's put finds it
        // already stored, then binds it. A gc that read the bindings before the binding must
        // not take it.
        let mut w = ws();
        let run = w.run();
        w.add(run, "a.bin", b"content");
        w.ws.delete_artifact(run, "a.bin").unwrap();
        w.age_all();
        let put = w.store().put_bytes(b"content").unwrap();
        assert!(!put.new);
        let r = w.ws.gc(HOUR, false).unwrap();
        assert_eq!((r.removed, r.recent), (0, 1));
        w.add(run, "a.bin", b"content");
        assert_eq!(w.ws.read_artifact_path(run, "a.bin").unwrap(), b"content");
    }

    #[test]
    fn purging_removes_the_content_and_every_binding_and_records_a_signed_tombstone() {
        let mut w = ws();
        let run = w.run();
        let other = w.run();
        w.add(run, ".env", b"AWS_SECRET_ACCESS_KEY=x");
        w.add(run, "model.bin", b"weights");
        w.add(other, "copy/.env", b"AWS_SECRET_ACCESS_KEY=x");
        let r = w.ws.purge_artifact(run, ".env", "leaked key").unwrap();
        assert_eq!(r.blobs.len(), 1);
        assert_eq!(r.blobs[0].removed_bytes, Some(23));
        assert_eq!(r.unbound, {
            let mut v = vec![
                (run.to_string(), ".env".to_owned()),
                (other.to_string(), "copy/.env".to_owned()),
            ];
            v.sort();
            v
        });
        assert!(!w.holds(b"AWS_SECRET_ACCESS_KEY=x"));
        assert!(w.holds(b"weights"));
        assert!(w.ws.read_artifact_path(run, ".env").is_err());
        let me = w.ws.device_id().unwrap();
        let t = purge::tombstones(w.ws.catalog_mut(), Some(&me)).unwrap();
        assert!(t.ignored.is_empty());
        assert_eq!(t.valid.len(), 1);
        let t = &t.valid[0];
        assert_eq!((t.device.as_str(), t.user.as_str()), (me.as_str(), "ada"));
        assert_eq!((t.path.as_str(), t.reason.as_str()), (".env", "leaked key"));
        assert_eq!(t.run, run.to_string());
        assert_eq!(t.verify(), Ok(()));
        // An unknown path is an error naming it, and changes nothing.
        let e = w.ws.purge_artifact(run, "nope", "").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn purging_a_file_inside_a_directory_rebinds_the_directory_without_it() {
        let mut w = ws();
        let run = w.run();
        w.add_dir(
            run,
            "config",
            &[
                ("app.toml", b"debug = true"),
                ("secrets/.env", b"TOKEN=abc"),
            ],
        );
        let r =
            w.ws.purge_artifact(run, "config/secrets/.env", "token")
                .unwrap();
        assert!(r.rebound.is_some());
        assert!(!w.holds(b"TOKEN=abc"));
        let listed: Vec<String> =
            w.ws.list_artifacts(run, "config")
                .unwrap()
                .into_iter()
                .map(|e| e.path)
                .collect();
        assert_eq!(listed, vec!["config/app.toml".to_owned()]);
        assert_eq!(
            w.ws.read_artifact_path(run, "config/app.toml").unwrap(),
            b"debug = true"
        );
        // Purging a whole directory takes every file and the manifest.
        let r = w.ws.purge_artifact(run, "config", "all of it").unwrap();
        assert_eq!(r.blobs.len(), 2);
        assert!(!w.holds(b"debug = true"));
        assert!(w.ws.list_artifacts(run, "").unwrap().is_empty());
    }
}
