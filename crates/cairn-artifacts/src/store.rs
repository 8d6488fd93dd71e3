//! The store itself: blobs named by their BLAKE3 under `root/blobs/ab/<64 hex>`, written through
//! `root/tmp`, read back only after their content checked out against their name.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_model::BlobHash;

use crate::tree::{self, CopyError};
use crate::{Error, Manifest, VerifiedReader};

/// A content-addressed, immutable blob store rooted at one directory.
///
/// Any number of stores (threads or processes) may share a root: a blob appears under its name
/// atomically, complete and fsynced, or not at all, and once there it is never replaced by other
/// bytes.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

/// What storing one blob did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Put {
    pub hash: BlobHash,
    pub size: u64,
    /// False when the content was already stored: nothing was written.
    pub new: bool,
}

/// What storing a directory tree did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirPut {
    /// The hash of the manifest blob, which names the whole tree.
    pub hash: BlobHash,
    pub files: usize,
    pub total_size: u64,
    /// Symlinks and special files found under the directory: not followed, not stored.
    pub skipped: Vec<PathBuf>,
}

/// What [`ArtifactStore::collect`] did with one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collected {
    /// Removed; it held this many bytes.
    Removed(u64),
    /// Kept: stored (or stored again) within the grace period.
    Recent,
    /// Not stored.
    Absent,
}

static NEXT_ASIDE: AtomicU64 = AtomicU64::new(0);

impl ArtifactStore {
    /// Opens the store at `root`, creating `root/blobs` and `root/tmp` when missing.
    pub fn open(root: &Path) -> Result<Self, Error> {
        for dir in [root.join("blobs"), root.join("tmp")] {
            fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        }
        Ok(ArtifactStore {
            root: root.to_owned(),
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores `bytes`; nothing is written when they are already stored.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<Put, Error> {
        let hash = BlobHash(*blake3::hash(bytes).as_bytes());
        let size = bytes.len() as u64;
        if self.stored_len(&hash)? == Some(size) && self.refresh(&hash)? {
            return Ok(Put {
                hash,
                size,
                new: false,
            });
        }
        self.put_reader(&mut &bytes[..])
    }

    /// Stores the content of the file at `path`, streamed: memory use does not grow with its size.
    pub fn put_file(&self, path: &Path) -> Result<Put, Error> {
        let mut file = File::open(path).map_err(Error::io("open", path))?;
        self.put_stream(&mut file, |e| Error::Io {
            op: "read",
            path: path.to_owned(),
            source: e,
        })
    }

    /// Stores everything `reader` yields until its end, streamed.
    pub fn put_reader(&self, reader: &mut dyn Read) -> Result<Put, Error> {
        self.put_stream(reader, Error::Input)
    }

    /// Stores every regular file under `path`, recursively, then the tree's [`Manifest`].
    ///
    /// Symlinks below `path` are not followed: they are skipped and listed in
    /// [`DirPut::skipped`], as are FIFOs, sockets and devices. Empty directories are not kept.
    pub fn put_dir(&self, path: &Path) -> Result<DirPut, Error> {
        let tree = tree::walk(path)?;
        let manifest = tree::manifest_of(&tree, |file| {
            let put = self.put_file(file)?;
            Ok((put.hash, put.size))
        })?;
        let put = self.put_bytes(&manifest.to_bytes())?;
        tracing::debug!(manifest = %put.hash, files = manifest.entries.len(), dir = %path.display(), "stored directory");
        Ok(DirPut {
            hash: put.hash,
            files: manifest.entries.len(),
            total_size: manifest.total_size(),
            skipped: tree.skipped,
        })
    }

    /// Stores `bytes` a peer sent as blob `expected`, only if they hash to it: a mismatch is
    /// [`Error::Corrupt`] and nothing is written.
    pub fn put_verified(&self, expected: &BlobHash, bytes: &[u8]) -> Result<Put, Error> {
        let actual = BlobHash(*blake3::hash(bytes).as_bytes());
        check(expected, actual)?;
        self.put_bytes(bytes)
    }

    /// The stored blob opened for reading, unverified: for sending it to a peer, which verifies
    /// what it receives against the hash it asked for.
    pub fn open_unverified(&self, hash: &BlobHash) -> Result<File, Error> {
        self.open_blob(hash)
    }

    /// The stored blob opened for streaming to a client, verified as it is read (see
    /// [`VerifiedReader`]): memory use does not grow with the blob's size.
    pub fn open_verified(&self, hash: &BlobHash) -> Result<VerifiedReader, Error> {
        let file = self.open_blob(hash)?;
        VerifiedReader::new(file, self.blob_path(hash), *hash)
    }

    /// The directory for files being written before they are stored (`root/tmp`).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// Every stored blob with its size (from the filesystem, not verified), sorted by hash.
    /// Temporary files and anything not named like a blob are skipped.
    pub fn list(&self) -> Result<Vec<(BlobHash, u64)>, Error> {
        let blobs = self.root.join("blobs");
        let mut out = Vec::new();
        let dirs = match fs::read_dir(&blobs) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(Error::io("list", &blobs)(e)),
        };
        for dir in dirs {
            let dir = dir.map_err(Error::io("list", &blobs))?.path();
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(hash) = name.to_str().and_then(|n| n.parse::<BlobHash>().ok()) else {
                    continue;
                };
                if let Ok(meta) = entry.metadata()
                    && meta.is_file()
                {
                    out.push((hash, meta.len()));
                }
            }
        }
        out.sort_by_key(|(hash, _)| hash.0);
        Ok(out)
    }

    /// Whether a blob with this name is stored (its content is not checked; see [`Self::verify`]).
    pub fn contains(&self, hash: &BlobHash) -> bool {
        self.blob_path(hash).is_file()
    }

    /// The stored blob's size in bytes, from the filesystem (not verified).
    pub fn size(&self, hash: &BlobHash) -> Result<u64, Error> {
        self.stored_len(hash)?.ok_or(Error::NotFound(*hash))
    }

    /// The blob's content, after checking that it hashes to `hash`.
    pub fn read(&self, hash: &BlobHash) -> Result<Vec<u8>, Error> {
        let path = self.blob_path(hash);
        let mut file = self.open_blob(hash)?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut bytes = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        file.read_to_end(&mut bytes)
            .map_err(Error::io("read", &path))?;
        let actual = BlobHash(*blake3::hash(&bytes).as_bytes());
        check(hash, actual)?;
        Ok(bytes)
    }

    /// Copies the blob to `dest`, streamed and verified: it is written to a temporary file next to
    /// `dest` that is renamed onto `dest` only once its content hashed to `hash`, so `dest` never
    /// holds unverified bytes. Creates `dest`'s parent directories. Returns the size.
    pub fn copy_to(&self, hash: &BlobHash, dest: &Path) -> Result<u64, Error> {
        let mut blob = self.open_blob(hash)?;
        let Some(name) = dest.file_name() else {
            return Err(Error::UnsafeDestination {
                path: dest.to_owned(),
                reason: "it does not name a file",
            });
        };
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fs::create_dir_all(parent).map_err(Error::io("create directory", parent))?;
        let mut prefix = std::ffi::OsString::from(".");
        prefix.push(name);
        prefix.push(".cairn-tmp-");
        let mut tmp = TempFile::create_in(parent, &prefix.to_string_lossy())?;
        let (actual, size) =
            tree::copy_hashing(&mut blob, Some(&mut tmp.file)).map_err(|e| match e {
                CopyError::Read(source) => Error::Io {
                    op: "read",
                    path: self.blob_path(hash),
                    source,
                },
                CopyError::Write(source) => Error::Io {
                    op: "write",
                    path: tmp.path.clone(),
                    source,
                },
            })?;
        check(hash, actual)?;
        tmp.file.sync_all().map_err(Error::io("sync", &tmp.path))?;
        fs::rename(&tmp.path, dest).map_err(Error::io("rename into place", dest))?;
        tmp.disarm();
        Ok(size)
    }

    /// Recreates under `dest` the tree whose manifest blob is `manifest`, as `put_dir` stored it.
    ///
    /// Every entry path is checked before anything is written; a path with `..`, an absolute path
    /// or a NUL is refused with [`Error::UnsafePath`], and so is writing through a symlink that is
    /// already inside `dest`. Returns the number of bytes written.
    pub fn restore_dir(&self, manifest: &BlobHash, dest: &Path) -> Result<u64, Error> {
        let tree = self.manifest(manifest)?;
        // Restore next to `dest` and move it into place only when every file verified, so a
        // corrupt blob never leaves a half-restored tree that looks whole.
        if let Ok(mut entries) = fs::read_dir(dest)
            && entries.next().is_some()
        {
            return Err(Error::UnsafeDestination {
                path: dest.to_owned(),
                reason: "the directory exists and is not empty",
            });
        }
        let name = dest
            .file_name()
            .map_or_else(|| "restore".into(), |n| n.to_string_lossy().into_owned());
        let staging = dest.with_file_name(format!(".{name}.cairn-partial-{}", std::process::id()));
        let result = self.restore_into(&tree, manifest, &staging);
        match result {
            Ok(total) => {
                if dest.is_dir() {
                    fs::remove_dir(dest).map_err(Error::io("replace empty directory", dest))?;
                }
                fs::rename(&staging, dest)
                    .map_err(Error::io("move restored directory into", dest))?;
                Ok(total)
            }
            Err(e) => {
                // Best effort: the error that matters is `e`.
                drop(fs::remove_dir_all(&staging));
                Err(e)
            }
        }
    }

    fn restore_into(
        &self,
        tree: &Manifest,
        manifest: &BlobHash,
        dest: &Path,
    ) -> Result<u64, Error> {
        fs::create_dir_all(dest).map_err(Error::io("create directory", dest))?;
        let mut made: HashSet<PathBuf> = HashSet::new();
        let mut total = 0u64;
        for entry in &tree.entries {
            let mut target = dest.to_owned();
            let mut segments = entry.path.split('/').peekable();
            while let Some(segment) = segments.next() {
                target.push(segment);
                if segments.peek().is_some() && !made.contains(&target) {
                    ensure_real_dir(&target)?;
                    made.insert(target.clone());
                }
            }
            let size = self.copy_to(&entry.hash, &target)?;
            if size != entry.size {
                return Err(Error::BadManifest {
                    hash: *manifest,
                    reason: format!(
                        "entry {:?} says {} bytes but blob {} has {size}",
                        entry.path, entry.size, entry.hash
                    ),
                });
            }
            total += size;
        }
        Ok(total)
    }

    /// Reads, verifies and parses the manifest blob `hash`, with every entry path checked.
    pub fn manifest(&self, hash: &BlobHash) -> Result<Manifest, Error> {
        Manifest::from_bytes(hash, &self.read(hash)?)
    }

    /// Checks, streamed, that the blob's content hashes to its name.
    pub fn verify(&self, hash: &BlobHash) -> Result<(), Error> {
        let mut blob = self.open_blob(hash)?;
        let (actual, _) = tree::copy_hashing(&mut blob, None).map_err(|e| match e {
            CopyError::Read(source) | CopyError::Write(source) => Error::Io {
                op: "read",
                path: self.blob_path(hash),
                source,
            },
        })?;
        check(hash, actual)
    }

    /// Deletes a blob at once, whoever references it (a purge: the content must go). Returns
    /// its size when it was stored.
    pub fn remove(&self, hash: &BlobHash) -> Result<Option<u64>, Error> {
        let path = self.blob_path(hash);
        let Some(len) = self.stored_len(hash)? else {
            return Ok(None);
        };
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("remove", &path)(e)),
        }
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        tracing::debug!(blob = %hash, "removed blob");
        Ok(Some(len))
    }

    /// Removes a blob that nothing references any more, unless it was stored (or stored again:
    /// every `put` of content already here refreshes its modification time) within `grace`.
    ///
    /// The grace period is what makes collecting safe next to a writer: a writer stores a blob,
    /// then binds it to a run in the catalog, and a collector that listed the bindings in
    /// between must not take the blob. The blob is first moved aside and its time checked
    /// there: a writer that refreshed it before the move is seen (the blob goes back), and one
    /// that comes after finds it gone and stores it anew.
    pub fn collect(&self, hash: &BlobHash, grace: Duration) -> Result<Collected, Error> {
        let path = self.blob_path(hash);
        let recent = |meta: &fs::Metadata| {
            meta.modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_none_or(|age| age < grace)
        };
        match fs::symlink_metadata(&path) {
            Ok(meta) if recent(&meta) => return Ok(Collected::Recent),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Collected::Absent),
            Err(e) => return Err(Error::io("inspect", &path)(e)),
        }
        let aside = self.tmp_dir().join(format!(
            "gc-{}-{:x}-{:x}",
            hash.to_hex(),
            std::process::id(),
            NEXT_ASIDE.fetch_add(1, Ordering::Relaxed)
        ));
        match fs::rename(&path, &aside) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Collected::Absent),
            Err(e) => return Err(Error::io("move aside", &path)(e)),
        }
        let meta = fs::symlink_metadata(&aside).map_err(Error::io("inspect", &aside))?;
        if recent(&meta) {
            // Refreshed by a writer just before the move: put it back (unless it was stored
            // again meanwhile, which is the same content).
            match fs::hard_link(&aside, &path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("put back", &path)(e)),
            }
            fs::remove_file(&aside).map_err(Error::io("remove", &aside))?;
            return Ok(Collected::Recent);
        }
        fs::remove_file(&aside).map_err(Error::io("remove", &aside))?;
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        tracing::debug!(blob = %hash, size = meta.len(), "collected blob");
        Ok(Collected::Removed(meta.len()))
    }

    /// When the blob was last stored (its modification time: stored, or stored again), if it
    /// is here.
    pub fn stored_at(&self, hash: &BlobHash) -> Result<Option<SystemTime>, Error> {
        let path = self.blob_path(hash);
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(meta.modified().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("inspect", &path)(e)),
        }
    }

    /// Cleans `tmp/`: files older than `grace` are what crashed writers left (removed, with
    /// their bytes counted), and a blob a crashed collector had moved aside goes back in place.
    /// With `dry_run`, only counts. Returns (files removed, bytes).
    pub fn sweep_tmp(&self, grace: Duration, dry_run: bool) -> Result<(usize, u64), Error> {
        let tmp = self.tmp_dir();
        let entries = match fs::read_dir(&tmp) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(Error::io("list", &tmp)(e)),
        };
        let (mut files, mut bytes) = (0, 0);
        for entry in entries {
            let entry = entry.map_err(Error::io("list", &tmp))?;
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(hash) = name
                .strip_prefix("gc-")
                .and_then(|rest| rest.get(..64))
                .and_then(|hex| hex.parse::<BlobHash>().ok())
            {
                // Only the collector that moved it aside decides; a crashed one decided nothing.
                let age = meta
                    .modified()
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok());
                if !dry_run && age.is_some_and(|a| a >= grace.max(Duration::from_secs(60))) {
                    let dest = self.blob_path(&hash);
                    match fs::hard_link(&path, &dest) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                        Err(e) => return Err(Error::io("put back", &dest)(e)),
                    }
                    fs::remove_file(&path).map_err(Error::io("remove", &path))?;
                }
                continue;
            }
            let old = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age >= grace);
            if old && dry_run {
                files += 1;
                bytes += meta.len();
            } else if old {
                match fs::remove_file(&path) {
                    Ok(()) => {
                        files += 1;
                        bytes += meta.len();
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", &path)(e)),
                }
            }
        }
        Ok((files, bytes))
    }

    /// Marks a stored blob as just stored (its modification time), so a collector spares it
    /// for its grace period. False when it is not there (any more).
    fn refresh(&self, hash: &BlobHash) -> Result<bool, Error> {
        let path = self.blob_path(hash);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(Error::io("open", &path)(e)),
        };
        if let Err(e) = file.set_modified(SystemTime::now()) {
            // Not the owner (a store shared between users): the blob's age stays as it was.
            tracing::debug!(blob = %hash, "cannot refresh the blob's time: {e}");
        }
        // Still in place after the touch? A collector that moved it aside before the touch
        // removed it or put it back; after the touch, it sees the fresh time and puts it back.
        Ok(path.is_file())
    }

    fn blob_path(&self, hash: &BlobHash) -> PathBuf {
        let hex = hash.to_hex();
        self.root.join("blobs").join(&hex[..2]).join(hex)
    }

    fn open_blob(&self, hash: &BlobHash) -> Result<File, Error> {
        let path = self.blob_path(hash);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => Error::NotFound(*hash),
            _ => Error::Io {
                op: "open",
                path,
                source: e,
            },
        })
    }

    fn stored_len(&self, hash: &BlobHash) -> Result<Option<u64>, Error> {
        let path = self.blob_path(hash);
        match fs::symlink_metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io {
                op: "inspect",
                path,
                source: e,
            }),
        }
    }

    fn put_stream(
        &self,
        reader: &mut dyn Read,
        read_error: impl FnOnce(io::Error) -> Error,
    ) -> Result<Put, Error> {
        let mut tmp = TempFile::create_in(&self.root.join("tmp"), "put-")?;
        let (hash, size) =
            tree::copy_hashing(reader, Some(&mut tmp.file)).map_err(|e| match e {
                CopyError::Read(source) => read_error(source),
                CopyError::Write(source) => Error::Io {
                    op: "write",
                    path: tmp.path.clone(),
                    source,
                },
            })?;
        let dest = self.blob_path(&hash);
        let mut existing = self.stored_len(&hash)?;
        if existing == Some(size) {
            if self.refresh(&hash)? {
                return Ok(Put {
                    hash,
                    size,
                    new: false,
                });
            }
            // Collected between the look and the touch: store it again.
            existing = None;
        }
        tmp.file.sync_all().map_err(Error::io("sync", &tmp.path))?;
        set_read_only(&tmp.file).map_err(Error::io("make read-only", &tmp.path))?;
        let dir = dest.parent().unwrap_or(&self.root).to_owned();
        let fan_out_is_new = !dir.is_dir();
        fs::create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        if fan_out_is_new {
            sync_dir(&self.root.join("blobs"))?;
        }
        if let Some(len) = existing {
            // A blob whose length is wrong cannot hold this content (a crash mid-write on a
            // filesystem that lost the data, or a truncation): replace it with the checked bytes.
            tracing::warn!(blob = %hash, stored = len, expected = size, "replacing a damaged blob");
            fs::rename(&tmp.path, &dest).map_err(Error::io("rename into place", &dest))?;
            tmp.disarm();
        } else {
            // A hard link fails when the name exists, so a blob stored meanwhile by another writer
            // is never replaced; rename would silently replace it.
            match fs::hard_link(&tmp.path, &dest) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    // Stored meanwhile by another writer; keep it fresh for the collector. Gone
                    // again already (collected): link ours, once more.
                    if !self.refresh(&hash)? {
                        match fs::hard_link(&tmp.path, &dest) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                            Err(e) => return Err(Error::io("link into place", &dest)(e)),
                        }
                    }
                    return Ok(Put {
                        hash,
                        size,
                        new: false,
                    });
                }
                Err(e) => {
                    tracing::debug!(error = %e, "hard link refused; falling back to rename");
                    fs::rename(&tmp.path, &dest).map_err(Error::io("rename into place", &dest))?;
                    tmp.disarm();
                }
            }
        }
        sync_dir(&dir)?;
        tracing::debug!(blob = %hash, size, "stored blob");
        Ok(Put {
            hash,
            size,
            new: true,
        })
    }
}

fn check(hash: &BlobHash, actual: BlobHash) -> Result<(), Error> {
    if actual == *hash {
        Ok(())
    } else {
        tracing::warn!(blob = %hash, actual = %actual, "corrupt blob");
        Err(Error::Corrupt {
            hash: *hash,
            actual,
        })
    }
}

/// Makes sure `path` is a directory of its own (created if missing), not a symlink to elsewhere.
fn ensure_real_dir(path: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::UnsafeDestination {
            path: path.to_owned(),
            reason: "it is a symlink, which restoring does not write through",
        }),
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(Error::UnsafeDestination {
            path: path.to_owned(),
            reason: "it exists and is not a directory",
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(path) {
            Ok(()) => Ok(()),
            // Made meanwhile by someone else: check what it is.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                match fs::symlink_metadata(path) {
                    Ok(meta) if meta.is_dir() => Ok(()),
                    _ => Err(Error::UnsafeDestination {
                        path: path.to_owned(),
                        reason: "it appeared meanwhile and is not a directory",
                    }),
                }
            }
            Err(e) => Err(Error::Io {
                op: "create directory",
                path: path.to_owned(),
                source: e,
            }),
        },
        Err(e) => Err(Error::Io {
            op: "inspect",
            path: path.to_owned(),
            source: e,
        }),
    }
}

#[cfg(unix)]
fn set_read_only(file: &File) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(0o444))
}

#[cfg(not(unix))]
fn set_read_only(file: &File) -> io::Result<()> {
    let mut perms = file.metadata()?.permissions();
    perms.set_readonly(true);
    file.set_permissions(perms)
}

/// Makes a rename or link in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io("sync", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), Error> {
    Ok(())
}

/// A file being written that is removed again unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    file: File,
    armed: bool,
}

impl TempFile {
    fn create_in(dir: &Path, prefix: &str) -> Result<Self, Error> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let pid = std::process::id();
        let mut attempt = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!("{prefix}{pid:x}-{nanos:x}-{n:x}"));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        armed: true,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
                Err(e) => {
                    return Err(Error::Io {
                        op: "create temporary file",
                        path,
                        source: e,
                    });
                }
            }
        }
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed
            && let Err(e) = fs::remove_file(&self.path)
        {
            tracing::debug!(path = %self.path.display(), error = %e, "cannot remove temporary file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_files_vanish_unless_disarmed() {
        let dir = tempfile::tempdir().unwrap();
        let a = TempFile::create_in(dir.path(), "x-").unwrap();
        let b = TempFile::create_in(dir.path(), "x-").unwrap();
        assert_ne!(a.path, b.path);
        let kept = b.path.clone();
        let mut b = b;
        b.disarm();
        drop(a);
        drop(b);
        let left: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(left, vec![kept]);
    }

    #[test]
    fn blobs_live_under_a_two_hex_fan_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::open(dir.path()).unwrap();
        let put = store.put_bytes(b"hello").unwrap();
        let hex = put.hash.to_hex();
        assert_eq!(
            store.blob_path(&put.hash),
            dir.path().join("blobs").join(&hex[..2]).join(&hex)
        );
        assert_eq!(hex, blake3::hash(b"hello").to_hex().as_str());
        assert!(dir.path().join("tmp").is_dir());
        assert_eq!(
            fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0,
            "no temporary file left"
        );
    }
}
