//! Dataset snapshots for lineage: a content digest (BLAKE3) of a file or a directory tree,
//! cached by path and the size and modification time of every file, so a 10 GB dataset is hashed
//! once and only re-hashed when something in it changed.

use std::collections::BTreeMap;
use std::path::Path;

use cairn_model::DatasetSnapshot;

use crate::{Error, Stores};

const CACHE_FILE: &str = "dataset-digests.json";

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct Cache {
    /// Canonical path → (fingerprint of the tree's metadata, digest, size).
    entries: BTreeMap<String, (String, String, u64)>,
}

/// BLAKE3 over every file's relative path, size and mtime: changes when any file changes.
fn fingerprint(path: &Path) -> Result<String, Error> {
    let mut h = blake3::Hasher::new();
    let mut stack = vec![path.to_owned()];
    let mut files: Vec<(String, u64, i128)> = Vec::new();
    while let Some(p) = stack.pop() {
        let meta = std::fs::metadata(&p).map_err(Error::io(&p))?;
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).map_err(Error::io(&p))? {
                stack.push(e.map_err(Error::io(&p))?.path());
            }
        } else {
            let mtime = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            let rel = p
                .strip_prefix(path)
                .unwrap_or(&p)
                .to_string_lossy()
                .into_owned();
            files.push((rel, meta.len(), mtime));
        }
    }
    files.sort();
    for (rel, size, mtime) in files {
        h.update(rel.as_bytes());
        h.update(&[0]);
        h.update(&size.to_le_bytes());
        h.update(&mtime.to_le_bytes());
    }
    Ok(h.finalize().to_hex().to_string())
}

impl Stores {
    /// A snapshot of the dataset at `path`: its digest (`blake3:…`), total size, and canonical
    /// path as its uri. Reuses the cached digest while no file's size or mtime changed.
    pub fn dataset_snapshot(&self, path: &Path) -> Result<DatasetSnapshot, Error> {
        let canonical = std::fs::canonicalize(path).map_err(Error::io(path))?;
        let key = canonical.to_string_lossy().into_owned();
        let cache_path = self.dir().join("cache").join(CACHE_FILE);
        let mut cache: Cache = std::fs::read(&cache_path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let fp = fingerprint(&canonical)?;
        let (digest, size) = match cache.entries.get(&key) {
            Some((f, d, s)) if *f == fp => (d.clone(), *s),
            _ => {
                let d = cairn_artifacts::digest_path(&canonical)?;
                let digest = format!("blake3:{}", d.hash);
                cache
                    .entries
                    .insert(key.clone(), (fp, digest.clone(), d.size));
                // The cache is an optimisation: failing to write it only costs a re-hash later.
                if let Err(e) = write_cache(&cache_path, &cache) {
                    tracing::warn!(error = %e, "could not write the dataset digest cache");
                }
                (digest, d.size)
            }
        };
        Ok(DatasetSnapshot {
            uri: Some(key),
            digest: Some(digest),
            size_bytes: Some(size),
            source_type: Some("local".into()),
            ..Default::default()
        })
    }
}

fn write_cache(path: &Path, cache: &Cache) -> Result<(), Error> {
    let dir = path.parent().unwrap_or(path);
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    // Unique per process and per write: the threads of one workspace handle may write at once.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(cache).unwrap_or_default()).map_err(Error::io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_cached_until_a_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Stores::create(&dir.path().join("ws"), "t").unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(data.join("part")).unwrap();
        std::fs::write(data.join("a.csv"), "x,y\n1,2\n").unwrap();
        std::fs::write(data.join("part/b.csv"), "x,y\n3,4\n").unwrap();
        let first = ws.dataset_snapshot(&data).unwrap();
        assert_eq!(first.size_bytes, Some(16));
        let expected = cairn_artifacts::digest_path(&data).unwrap();
        assert_eq!(first.digest, Some(format!("blake3:{}", expected.hash)));
        assert!(dir.path().join("ws/cache").join(CACHE_FILE).exists());
        assert_eq!(ws.dataset_snapshot(&data).unwrap(), first);
        // A changed file (new size) gives a new digest.
        std::fs::write(data.join("part/b.csv"), "x,y\n3,4\n5,6\n").unwrap();
        let second = ws.dataset_snapshot(&data).unwrap();
        assert_ne!(second.digest, first.digest);
        assert!(ws.dataset_snapshot(&dir.path().join("missing")).is_err());
    }
}
