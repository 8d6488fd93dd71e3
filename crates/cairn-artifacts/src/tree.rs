//! Walking a directory tree into manifest order, streaming BLAKE3 hashing, and `digest_path`,
//! which hashes files and trees the way the store names them without storing anything.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use cairn_model::BlobHash;

use crate::{Error, Manifest, ManifestEntry};

/// Big enough to keep BLAKE3's SIMD lanes busy, small enough to never matter for memory.
pub(crate) const BUFFER: usize = 64 * 1024;

/// Which side of a streaming copy failed.
pub(crate) enum CopyError {
    Read(io::Error),
    Write(io::Error),
}

/// Streams `reader` to its end through BLAKE3 (and into `writer`, if any) in 64 KiB pieces.
pub(crate) fn copy_hashing(
    reader: &mut dyn Read,
    mut writer: Option<&mut dyn Write>,
) -> Result<(BlobHash, u64), CopyError> {
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(CopyError::Read(e)),
        };
        hasher.update(&buf[..n]);
        if let Some(w) = writer.as_mut() {
            w.write_all(&buf[..n]).map_err(CopyError::Write)?;
        }
        total += n as u64;
    }
    Ok((BlobHash(*hasher.finalize().as_bytes()), total))
}

/// BLAKE3 and size of one file, streamed.
pub(crate) fn hash_file(path: &Path) -> Result<(BlobHash, u64), Error> {
    let mut file = File::open(path).map_err(Error::io("open", path))?;
    copy_hashing(&mut file, None).map_err(|e| match e {
        CopyError::Read(source) | CopyError::Write(source) => Error::Io {
            op: "read",
            path: path.to_owned(),
            source,
        },
    })
}

/// The regular files under a directory, in manifest order, and what was left out.
pub(crate) struct Tree {
    /// (manifest path, path on disk), sorted by manifest path.
    pub files: Vec<(String, PathBuf)>,
    /// Symlinks and special files (FIFOs, sockets, devices): never followed, never read.
    pub skipped: Vec<PathBuf>,
}

/// Lists every regular file under `root`, recursively, without following symlinks below `root`.
pub(crate) fn walk(root: &Path) -> Result<Tree, Error> {
    let mut tree = Tree {
        files: Vec::new(),
        skipped: Vec::new(),
    };
    // An explicit stack: a deep tree must not overflow the thread's stack.
    let mut pending: Vec<(PathBuf, String)> = vec![(root.to_owned(), String::new())];
    while let Some((dir, prefix)) = pending.pop() {
        let entries = fs::read_dir(&dir).map_err(Error::io("read directory", &dir))?;
        for entry in entries {
            let entry = entry.map_err(Error::io("read directory", &dir))?;
            let path = entry.path();
            // `DirEntry::file_type` does not follow symlinks, which is the point.
            let kind = entry.file_type().map_err(Error::io("inspect", &path))?;
            if !kind.is_file() && !kind.is_dir() {
                tree.skipped.push(path);
                continue;
            }
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                return Err(Error::UnstorableName {
                    path,
                    reason: "its name is not valid UTF-8, which a manifest cannot hold",
                });
            };
            let rel = if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            };
            if crate::manifest::check_entry_path(&rel).is_err() {
                return Err(Error::UnstorableName {
                    path,
                    reason: "its name cannot be restored safely on this platform",
                });
            }
            if kind.is_dir() {
                pending.push((path, rel));
            } else {
                tree.files.push((rel, path));
            }
        }
    }
    tree.files.sort_by(|a, b| a.0.cmp(&b.0));
    tree.skipped.sort();
    Ok(tree)
}

/// Builds the manifest of `tree`, getting each file's hash and size from `per_file`.
pub(crate) fn manifest_of(
    tree: &Tree,
    mut per_file: impl FnMut(&Path) -> Result<(BlobHash, u64), Error>,
) -> Result<Manifest, Error> {
    let mut entries = Vec::with_capacity(tree.files.len());
    for (rel, path) in &tree.files {
        let (hash, size) = per_file(path)?;
        entries.push(ManifestEntry {
            path: rel.clone(),
            hash,
            size,
        });
    }
    Ok(Manifest::from_entries(entries))
}

/// What `digest_path` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathDigest {
    /// A file's BLAKE3, or a directory's manifest hash: the hash `put_file`/`put_dir` would give.
    /// Display it as `blake3:{hash}` in lineage.
    pub hash: BlobHash,
    /// Bytes of content (the sum of the files' sizes for a directory).
    pub size: u64,
    /// 1 for a file; the number of regular files for a directory.
    pub files: u64,
}

/// Hashes a file or a directory tree without storing it (dataset digests).
///
/// A file gives the BLAKE3 of its bytes; a directory gives the hash of its manifest, exactly as
/// [`ArtifactStore::put_dir`](crate::ArtifactStore::put_dir) would store it (symlinks below it are
/// not followed and not counted). A symlink given as `path` itself is followed.
pub fn digest_path(path: &Path) -> Result<PathDigest, Error> {
    let meta = fs::metadata(path).map_err(Error::io("inspect", path))?;
    if meta.is_file() {
        let (hash, size) = hash_file(path)?;
        Ok(PathDigest {
            hash,
            size,
            files: 1,
        })
    } else if meta.is_dir() {
        let tree = walk(path)?;
        let manifest = manifest_of(&tree, hash_file)?;
        Ok(PathDigest {
            hash: manifest.hash(),
            size: manifest.total_size(),
            files: manifest.entries.len() as u64,
        })
    } else {
        Err(Error::NotAFileOrDirectory {
            path: path.to_owned(),
        })
    }
}
