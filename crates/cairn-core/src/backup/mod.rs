//! Backup, restore and verify (issue #18): a whole workspace in one file while it is being
//! written, brought back whole or not at all, and checked end to end.
//!
//! A backup is a consistent cut taken in the order the stores refer to each other: the catalog
//! first (SQLite's online backup API, in one step, so it is one read transaction: every
//! acknowledged write before it is in; the audit chains are tables of the catalog, so every
//! governed record comes with the event that attests it), then the metric and trace stores (so
//! every run the catalog snapshot holds has every point acknowledged before the catalog was
//! copied) and the `audit.db` of a workspace not opened since the chains moved into the
//! catalog (moved in when the restored workspace opens), then the blobs (immutable,
//! stored before they are bound, so every blob the catalog snapshot binds is there). The
//! search index and the digest cache are derived and left out; a restore rebuilds the index.
//! The device key is left out unless asked for: it is the device's identity on its team, and
//! a key restored on two machines makes two devices one (their audit chains fork, their peers
//! cannot tell them apart). The peer ledger (`sync.db`) goes with the key.

pub mod container;
mod verify;

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use container::{ContainerError, Manifest, Member, Step};
pub use verify::{Problem, VerifyReport};

use crate::Error;

/// The databases of a workspace a backup copies, in the order it copies them (see the module
/// doc for why this order).
const DATABASES: [&str; 4] = ["catalog.db", "metrics.db", "traces.db", "audit.db"];
/// The workspace's own file: format, id, whether it holds demo data.
const MARKER: &str = "workspace.json";
const DEVICE_KEY: &str = "device.key";
const SYNC_DB: &str = "sync.db";

/// What a backup includes beyond the workspace's data.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackupOptions {
    /// Also the device key and the peer ledger (see the module doc before you do).
    pub include_key: bool,
}

/// Where a backup or restore is, for a progress display.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress<'a> {
    /// A database is being copied (`backup`) or the backup is checked (`restore`).
    Stage(&'a str),
    /// Member bytes done of the whole.
    Bytes { done: u64, total: u64 },
}

/// What `backup` wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupReport {
    pub file: PathBuf,
    pub workspace: String,
    pub members: u64,
    pub databases: Vec<String>,
    pub blobs: u64,
    /// Blobs listed but removed (by `gc` or a purge) before they were copied.
    pub blobs_gone: u64,
    /// The members' bytes, and the backup file's.
    pub bytes: u64,
    pub file_bytes: u64,
    pub includes_key: bool,
    pub seconds: f64,
}

/// What `restore` did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RestoreReport {
    pub workspace_dir: PathBuf,
    pub workspace: String,
    pub members: u64,
    pub bytes: u64,
    pub includes_key: bool,
    /// Whether a workspace that was there was replaced (`--force`).
    pub replaced: bool,
    /// Runs in the rebuilt search index.
    pub indexed_runs: u64,
    pub seconds: f64,
}

/// A directory removed when dropped (the staging area of a backup or restore).
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.0.exists()
            && let Err(e) = fs::remove_dir_all(&self.0)
        {
            tracing::warn!(path = %self.0.display(), error = %e, "could not remove a scratch directory");
        }
    }
}

fn sibling(path: &Path, tag: &str) -> Result<PathBuf, Error> {
    let name = path
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} names no file", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    Ok(parent.join(format!(
        ".{}.{tag}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Copies the database at `src` into `dst` with SQLite's online backup API, in one step: one
/// read transaction, so the copy is the database as of one commit, while writers go on (WAL).
pub(crate) fn snapshot_db(src: &Path, dst: &Path) -> Result<(), Error> {
    use rusqlite::{Connection, OpenFlags};
    let sql = |e: rusqlite::Error| Error::Invalid(format!("copying {}: {e}", src.display()));
    let from = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    from.busy_timeout(Duration::from_secs(30)).map_err(sql)?;
    let mut to = Connection::open(dst).map_err(sql)?;
    {
        use rusqlite::backup::{Backup, StepResult};
        let b = Backup::new(&from, &mut to).map_err(sql)?;
        // Every page in one step (-1): one read transaction, never restarted by a writer. Busy
        // (a checkpoint holding a lock) is retried for as long as the busy timeout would.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match b.step(-1).map_err(sql)? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked
                    if Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => {
                    return Err(Error::Invalid(format!(
                        "copying {}: the database stayed busy ({other:?})",
                        src.display()
                    )));
                }
            }
        }
    }
    // A self-contained file: no -wal beside it.
    to.pragma_update(None, "journal_mode", "DELETE")
        .map_err(sql)?;
    Ok(())
}

/// Backs up the workspace in `dir` into the new file `out` (refused if it exists): written to
/// a temporary file beside it and renamed into place once complete, so `out` is either a whole
/// backup or absent.
#[tracing::instrument(skip(progress), err)]
pub fn backup(
    dir: &Path,
    out: &Path,
    options: BackupOptions,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<BackupReport, Error> {
    let started = Instant::now();
    let marker = fs::read(dir.join(MARKER)).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::NotAWorkspace(dir.to_owned()),
        _ => Error::io(dir.join(MARKER))(e),
    })?;
    let info: crate::WorkspaceInfo =
        serde_json::from_slice(&marker).map_err(|e| Error::BadWorkspaceFile {
            path: dir.join(MARKER),
            reason: e.to_string(),
        })?;
    if out.exists() {
        return Err(Error::Invalid(format!(
            "{} already exists; a backup never overwrites a file",
            out.display()
        )));
    }
    let scratch = Scratch(sibling(out, "parts")?);
    fs::create_dir_all(&scratch.0).map_err(Error::io(&scratch.0))?;

    // The cut: the catalog first, then what it refers to (see the module doc).
    let mut databases = Vec::new();
    let mut names: Vec<&str> = DATABASES.to_vec();
    if options.include_key {
        names.push(SYNC_DB);
    }
    for name in names {
        let src = dir.join(name);
        if !src.is_file() {
            continue;
        }
        progress(Progress::Stage(name));
        snapshot_db(&src, &scratch.0.join(name))?;
        databases.push(name.to_owned());
    }
    let store = cairn_artifacts::ArtifactStore::open(&dir.join("artifacts"))?;
    let blobs = store.list()?;

    // Members: name, where to read, size.
    let mut members: Vec<(String, PathBuf)> = Vec::new();
    if options.include_key {
        let key = dir.join(DEVICE_KEY);
        if key.is_file() {
            members.push((DEVICE_KEY.to_owned(), key));
        }
    }
    for db in &databases {
        members.push((db.clone(), scratch.0.join(db)));
    }
    let mut total: u64 = marker.len() as u64;
    for (_, p) in &members {
        total += fs::metadata(p).map_err(Error::io(p))?.len();
    }
    total += blobs.iter().map(|(_, n)| n).sum::<u64>();

    let tmp = sibling(out, "partial")?;
    let file = File::create(&tmp).map_err(Error::io(&tmp))?;
    let partial = Partial(Some(tmp.clone()));
    let mut w = container::Writer::new(BufWriter::with_capacity(1 << 20, file))?;
    let mut done = 0u64;
    let mut tick = |n: u64, progress: &mut dyn FnMut(Progress<'_>)| {
        done += n;
        progress(Progress::Bytes { done, total });
    };
    progress(Progress::Stage("writing"));
    w.add(MARKER, marker.len() as u64, &mut &marker[..], &mut |n| {
        tick(n, progress)
    })?;
    for (name, path) in &members {
        let mut f = File::open(path).map_err(Error::io(path))?;
        let len = f.metadata().map_err(Error::io(path))?.len();
        w.add(name, len, &mut f, &mut |n| tick(n, progress))?;
    }
    let mut gone = 0u64;
    let mut copied = 0u64;
    for (hash, _) in &blobs {
        let hex = hash.to_hex();
        let name = format!("artifacts/blobs/{}/{hex}", &hex[..2]);
        let path = dir.join(&name);
        let mut f = match File::open(&path) {
            Ok(f) => f,
            // Removed since it was listed: unbound and past its grace, or purged.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                gone += 1;
                continue;
            }
            Err(e) => return Err(Error::io(&path)(e)),
        };
        let len = f.metadata().map_err(Error::io(&path))?.len();
        w.add(&name, len, &mut f, &mut |n| tick(n, progress))?;
        copied += 1;
    }
    let (buf, manifest) = w.finish(Manifest {
        format: container::FORMAT,
        created_ms: crate::stores::now_ms(),
        workspace: info.id.clone(),
        cairn: env!("CARGO_PKG_VERSION").to_owned(),
        includes_key: options.include_key,
        members: Vec::new(),
    })?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::io(&tmp)(e.into_error()))?;
    file.sync_all().map_err(Error::io(&tmp))?;
    let file_bytes = file.metadata().map_err(Error::io(&tmp))?.len();
    drop(file);
    restrict(&tmp, 0o600)?;
    // Never over a file that appeared meanwhile: link, then drop the temporary name.
    fs::hard_link(&tmp, out).map_err(Error::io(out))?;
    drop(partial);
    Ok(BackupReport {
        file: out.to_owned(),
        workspace: info.id,
        members: manifest.members.len() as u64,
        databases,
        blobs: copied,
        blobs_gone: gone,
        bytes: manifest.total_bytes(),
        file_bytes,
        includes_key: options.include_key,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// A file removed when dropped unless it was taken.
struct Partial(Option<PathBuf>);

impl Drop for Partial {
    fn drop(&mut self) {
        if let Some(p) = self.0.take()
            && let Err(e) = fs::remove_file(&p)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %p.display(), error = %e, "could not remove a partial file");
        }
    }
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(Error::io(path))
}

#[cfg(not(unix))]
fn restrict(_path: &Path, _mode: u32) -> Result<(), Error> {
    Ok(())
}

/// Whether `dir` is missing or an empty directory.
fn is_empty_dir(dir: &Path) -> Result<bool, Error> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Ok(false),
        Err(e) => Err(Error::io(dir)(e)),
    }
}

/// Restores the backup `file` into the workspace directory `dir` (`user` opens it to rebuild
/// the search index).
///
/// Every member is checked against the manifest before anything is written; then the members
/// are written into a new directory beside `dir` (checked again as they are written), the
/// search index is rebuilt there, and only then is it renamed into place. So a damaged backup
/// writes nothing, and a restore that fails or is killed leaves `dir` as it was (a killed one
/// may leave its staging directory, `.NAME.restore-PID`, beside it). A non-empty `dir` is
/// replaced only with `force`. `progress` returning false stops the restore (nothing changes).
#[tracing::instrument(skip(progress), err)]
pub fn restore(
    file: &Path,
    dir: &Path,
    force: bool,
    user: &str,
    progress: &mut dyn FnMut(Progress<'_>) -> bool,
) -> Result<RestoreReport, Error> {
    let started = Instant::now();
    let stopped = || Error::Invalid("the restore was stopped; nothing was changed".into());
    let empty = is_empty_dir(dir)?;
    if !empty && !force {
        return Err(Error::Invalid(format!(
            "{} is not empty; restore into an empty or new directory, or pass --force to replace what is there",
            dir.display()
        )));
    }
    let input = File::open(file).map_err(Error::io(file))?;
    let mut reader = container::Reader::open(std::io::BufReader::with_capacity(1 << 20, input))?;
    let manifest = reader.manifest().clone();
    let total = manifest.total_bytes();
    if !manifest.members.iter().any(|m| m.path == MARKER) {
        return Err(ContainerError::Manifest(format!("it holds no {MARKER}")).into());
    }

    // Pass 1: every member's hash, nothing written.
    if !progress(Progress::Stage("checking")) {
        return Err(stopped());
    }
    let mut done = 0u64;
    let mut halt = false;
    reader
        .walk(&mut |step| {
            if let Step::Bytes(bytes) = step {
                done += bytes.len() as u64;
                if !progress(Progress::Bytes { done, total }) {
                    halt = true;
                    return Err(ContainerError::Trailer("stopped".into()));
                }
            }
            Ok(())
        })
        .map_err(|e| if halt { stopped() } else { e.into() })?;

    // Pass 2: into a staging directory beside the target.
    if !progress(Progress::Stage("writing")) {
        return Err(stopped());
    }
    let stage = Scratch(sibling(dir, "restore")?);
    if stage.0.exists() {
        fs::remove_dir_all(&stage.0).map_err(Error::io(&stage.0))?;
    }
    fs::create_dir_all(&stage.0).map_err(Error::io(&stage.0))?;
    restrict(&stage.0, 0o700)?;
    let mut done = 0u64;
    let mut current: Option<BufWriter<File>> = None;
    let mut halt = false;
    let io = |op: &'static str| move |source: std::io::Error| ContainerError::Io { op, source };
    reader
        .walk(&mut |step| {
            match step {
                Step::Start(m) => {
                    let path = stage.0.join(&m.path);
                    if let Some(parent) = path.parent() {
                        fs::create_dir_all(parent).map_err(io("create directory"))?;
                    }
                    let f = File::create(&path).map_err(io("create file"))?;
                    current = Some(BufWriter::with_capacity(1 << 20, f));
                }
                Step::Bytes(bytes) => {
                    if let Some(w) = current.as_mut() {
                        w.write_all(bytes).map_err(io("write"))?;
                    }
                    done += bytes.len() as u64;
                    if !progress(Progress::Bytes { done, total }) {
                        halt = true;
                        return Err(ContainerError::Trailer("stopped".into()));
                    }
                }
                Step::End(_) => {
                    if let Some(w) = current.take() {
                        let f = w.into_inner().map_err(|e| ContainerError::Io {
                            op: "write",
                            source: e.into_error(),
                        })?;
                        f.sync_all().map_err(io("sync"))?;
                    }
                }
            }
            Ok(())
        })
        .map_err(|e| if halt { stopped() } else { e.into() })?;
    for entry in [
        "catalog.db",
        "metrics.db",
        "traces.db",
        "audit.db",
        SYNC_DB,
        DEVICE_KEY,
    ] {
        let p = stage.0.join(entry);
        if p.exists() {
            restrict(&p, 0o600)?;
        }
    }

    // Derived state, rebuilt before the workspace is in place.
    if !progress(Progress::Stage("indexing")) {
        return Err(stopped());
    }
    let indexed_runs = {
        let ws = crate::Workspace::open(&stage.0, user)?;
        ws.rebuild_index()?
    };
    if !progress(Progress::Stage("moving into place")) {
        return Err(stopped());
    }
    sync_dir(&stage.0)?;
    let replaced = !empty;
    if replaced {
        let old = Scratch(sibling(dir, "replaced")?);
        fs::rename(dir, &old.0).map_err(Error::io(dir))?;
        if let Err(e) = fs::rename(&stage.0, dir) {
            // Put back what was there.
            fs::rename(&old.0, dir).map_err(Error::io(dir))?;
            return Err(Error::io(dir)(e));
        }
    } else {
        if dir.exists() {
            fs::remove_dir(dir).map_err(Error::io(dir))?;
        }
        fs::rename(&stage.0, dir).map_err(Error::io(dir))?;
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(RestoreReport {
        workspace_dir: dir.to_owned(),
        workspace: manifest.workspace.clone(),
        members: manifest.members.len() as u64,
        bytes: total,
        includes_key: manifest.includes_key,
        replaced,
        indexed_runs,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Checks a backup file whole without restoring it; answers its manifest.
pub fn check_backup(file: &Path, progress: &mut dyn FnMut(u64)) -> Result<Manifest, Error> {
    let input = File::open(file).map_err(Error::io(file))?;
    let mut reader = container::Reader::open(std::io::BufReader::with_capacity(1 << 20, input))?;
    reader.verify(progress)?;
    Ok(reader.manifest().clone())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), Error> {
    Ok(())
}
