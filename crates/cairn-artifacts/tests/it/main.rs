//! Integration tests of the artifact store against real files in temporary directories.

mod blobs;
mod collect;
mod trees;

use std::fs;
use std::path::{Path, PathBuf};

use cairn_artifacts::{ArtifactStore, BlobHash};

/// A store in a fresh temporary directory (kept alive by the returned guard).
fn store() -> (tempfile::TempDir, ArtifactStore) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = ArtifactStore::open(&dir.path().join("store")).expect("open store");
    (dir, store)
}

/// Where the store keeps a blob: the documented on-disk layout.
fn blob_file(store: &ArtifactStore, hash: &BlobHash) -> PathBuf {
    let hex = hash.to_hex();
    store.root().join("blobs").join(&hex[..2]).join(hex)
}

/// Every file under `dir`, relative, sorted, with its bytes.
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.is_dir() {
                pending.push(path);
            } else if meta.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .expect("under dir")
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, fs::read(&path).expect("read")));
            }
        }
    }
    out.sort();
    out
}

#[cfg(unix)]
fn make_writable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).expect("chmod");
}
