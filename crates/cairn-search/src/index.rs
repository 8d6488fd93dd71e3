//! The index on disk (or in RAM): opening it, checking it, rebuilding it, and writing runs.
//!
//! The schema version is stored in the payload of every commit (tantivy's `meta.json`), so it
//! changes atomically with the data. At open, an index that is missing, unreadable, of another
//! schema version, or whose files fail their checksums is wiped and reported as needing a
//! rebuild; opening only fails when the directory itself cannot be used.
//!
//! Several processes may share a workspace. tantivy allows one writer per index at a time, so
//! the writer is taken when there is something to write and released at commit (after any merge
//! that commit started has finished, so segments do not pile up); a process that finds the
//! lock taken waits for it for a while before reporting [`SearchError::Busy`]. Readers pick up
//! other processes' commits on their own.
//!
//! Opening holds an exclusive lock on `cairn.lock` in the directory while it checks the index,
//! and, when the index had to be wiped, until the rebuild that follows commits: otherwise a
//! second process opening meanwhile would find the half-built index unfinished and wipe it under
//! the first. The kernel releases the lock if the holder dies, and the next open starts over.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_model::RunId;
use serde::{Deserialize, Serialize};
use tantivy::directory::MmapDirectory;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, TantivyError};

use crate::schema::{Fields, IndexedRun, SCHEMA_VERSION};
use crate::{Page, SearchError, SearchRequest};

/// Memory of the writer for incremental writes (tantivy's minimum per thread is 15 MB).
const WRITER_BUDGET: usize = 32 << 20;
/// Memory of the writer for a rebuild.
const REBUILD_BUDGET: usize = 256 << 20;
/// How long a write waits for another process to release the index.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// The file whose lock serialises opening (and rebuilding) the index across processes.
const OPEN_LOCK: &str = "cairn.lock";

/// What [`SearchIndex::open`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Health {
    /// The index is usable as it is.
    Ready,
    /// The index was missing, outdated or corrupt and is now empty: feed it every run with
    /// [`SearchIndex::rebuild`]. The reason says which.
    NeedsRebuild(String),
}

/// Stored with every commit.
#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    format: String,
    schema_version: u32,
}

const FORMAT: &str = "cairn-search";

fn payload() -> String {
    serde_json::to_string(&Payload {
        format: FORMAT.into(),
        schema_version: SCHEMA_VERSION,
    })
    .unwrap_or_default()
}

/// A search index over runs.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    writer: Option<IndexWriter<TantivyDocument>>,
    /// Set between [`SearchIndex::clear`] and the next commit: runs need no delete first.
    fresh: bool,
    /// False from an open that wiped the index until a rebuild commits: until then commits
    /// do not record the schema version, so a crash mid-rebuild is caught at the next open.
    complete: bool,
    /// The directory, or `None` in RAM.
    dir: Option<PathBuf>,
    /// The open lock, held from an open that wiped the index until the rebuild commits.
    rebuilding: Option<std::fs::File>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("dir", &self.dir)
            .field("runs", &self.len())
            .field("writing", &self.writer.is_some())
            .finish()
    }
}

impl SearchIndex {
    /// An empty index in memory (for tests and throwaway searches).
    pub fn in_memory() -> Result<SearchIndex, SearchError> {
        let fields = Fields::new();
        let index = Index::create_in_ram(fields.schema.clone());
        Self::with_index(index, fields, None)
    }

    /// Opens the index in `dir` (created if needed). The directory belongs to the index: when
    /// the index in it is missing, of another schema version or corrupt, its files are deleted
    /// and an empty index is created, and [`Health::NeedsRebuild`] says so. Files that are not
    /// an index's are never deleted ([`SearchError::NotAnIndex`]).
    #[tracing::instrument(skip_all, fields(dir = %dir.display()), err)]
    pub fn open(dir: &Path) -> Result<(SearchIndex, Health), SearchError> {
        let io = |source| SearchError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(OPEN_LOCK))
            .map_err(io)?;
        // Blocks while another process checks or rebuilds the index.
        lock.lock().map_err(io)?;
        let fields = Fields::new();
        match Self::try_open(dir, &fields) {
            Ok(index) => Ok((
                Self::with_index(index, fields, Some(dir.to_owned()))?,
                Health::Ready,
            )),
            Err(reason) => {
                tracing::warn!(%reason, "search index will be rebuilt");
                wipe(dir)?;
                let index =
                    Index::create_in_dir(dir, fields.schema.clone()).map_err(SearchError::index)?;
                let mut me = Self::with_index(index, fields, Some(dir.to_owned()))?;
                me.complete = false;
                me.rebuilding = Some(lock);
                Ok((me, Health::NeedsRebuild(reason)))
            }
        }
    }

    /// Opens the index in `dir` and, if it needs it, rebuilds it from `all_runs` (called only
    /// then). Returns what [`SearchIndex::open`] found.
    pub fn open_or_rebuild<'a, I>(
        dir: &Path,
        all_runs: impl FnOnce() -> I,
    ) -> Result<(SearchIndex, Health), SearchError>
    where
        I: IntoIterator<Item = IndexedRun<'a>>,
    {
        let (mut index, health) = Self::open(dir)?;
        if health != Health::Ready {
            index.rebuild(all_runs())?;
        }
        Ok((index, health))
    }

    /// Why the index in `dir` cannot be used as it is, if it cannot.
    fn try_open(dir: &Path, fields: &Fields) -> Result<Index, String> {
        let mmap = MmapDirectory::open(dir).map_err(|e| format!("cannot open: {e}"))?;
        if !Index::exists(&mmap).map_err(|e| format!("cannot read: {e}"))? {
            return Err("no index yet".into());
        }
        let index = Index::open(mmap).map_err(|e| format!("unreadable: {e}"))?;
        let metas = index.load_metas().map_err(|e| format!("unreadable: {e}"))?;
        let stored: Option<Payload> = metas
            .payload
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok());
        match stored {
            Some(p) if p.format == FORMAT && p.schema_version == SCHEMA_VERSION => {}
            Some(p) => {
                return Err(format!(
                    "schema version {} (this build uses {SCHEMA_VERSION})",
                    p.schema_version
                ));
            }
            None => return Err("no schema version: not finished or not ours".into()),
        }
        if index.schema() != fields.schema {
            return Err("schema differs".into());
        }
        let damaged = index
            .validate_checksum()
            .map_err(|e| format!("unreadable: {e}"))?;
        if let Some(file) = damaged.iter().next() {
            return Err(format!("corrupt file {}", file.display()));
        }
        // Opening every segment opens all its files (a missing one fails here) and reads their
        // footers and fast-field headers.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()
            .map_err(|e: TantivyError| format!("unreadable: {e}"))?;
        let searcher = reader.searcher();
        for seg in searcher.segment_readers() {
            seg.fast_fields()
                .u64(crate::schema::ID_HI)
                .map_err(|e| format!("unreadable: {e}"))?;
        }
        Ok(index)
    }

    fn with_index(
        index: Index,
        fields: Fields,
        dir: Option<PathBuf>,
    ) -> Result<SearchIndex, SearchError> {
        crate::schema::register_tokenizers(&index);
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(SearchError::index)?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            writer: None,
            fresh: false,
            complete: true,
            dir,
            rebuilding: None,
        })
    }

    /// How many runs the index holds (deleted runs included), as of the last commit.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn path(&self) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(":memory:"))
    }

    fn writer(&mut self, budget: usize) -> Result<&mut IndexWriter<TantivyDocument>, SearchError> {
        if self.writer.is_none() {
            let deadline = Instant::now() + LOCK_WAIT;
            let threads = if budget > WRITER_BUDGET { 2 } else { 1 };
            let w = loop {
                match self.index.writer_with_num_threads(threads, budget) {
                    Ok(w) => break w,
                    Err(TantivyError::LockFailure(..)) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(25));
                    }
                    Err(TantivyError::LockFailure(..)) => {
                        return Err(SearchError::Busy { path: self.path() });
                    }
                    Err(e) => return Err(SearchError::index(e)),
                }
            };
            self.writer = Some(w);
        }
        self.writer
            .as_mut()
            .ok_or_else(|| SearchError::Index("no writer".into()))
    }

    /// Adds or replaces runs. Visible to searches after [`SearchIndex::commit`].
    pub fn upsert(&mut self, runs: &[IndexedRun<'_>]) -> Result<(), SearchError> {
        let fresh = self.fresh;
        let budget = if fresh { REBUILD_BUDGET } else { WRITER_BUDGET };
        let fields = self.fields.clone();
        let w = self.writer(budget)?;
        for r in runs {
            if !fresh {
                w.delete_term(fields.id_term(&r.run.id.to_hex()));
            }
            w.add_document(fields.document(*r))
                .map_err(SearchError::index)?;
        }
        Ok(())
    }

    /// Removes runs (purged from the catalog; a soft-deleted run is upserted with its flag).
    pub fn delete(&mut self, ids: &[RunId]) -> Result<(), SearchError> {
        let fields = self.fields.clone();
        let w = self.writer(WRITER_BUDGET)?;
        for id in ids {
            w.delete_term(fields.id_term(&id.to_hex()));
        }
        Ok(())
    }

    /// Removes every run; with the upserts that follow, the next commit replaces the index.
    pub fn clear(&mut self) -> Result<(), SearchError> {
        self.writer(REBUILD_BUDGET)?
            .delete_all_documents()
            .map_err(SearchError::index)?;
        self.fresh = true;
        Ok(())
    }

    /// Makes every change so far durable and visible to searches, and releases the writer.
    #[tracing::instrument(skip_all, err)]
    pub fn commit(&mut self) -> Result<(), SearchError> {
        let Some(mut w) = self.writer.take() else {
            return Ok(());
        };
        // `clear` then commit is a whole new index: it is complete from here on.
        self.complete |= self.fresh;
        let mut prepared = w.prepare_commit().map_err(SearchError::index)?;
        if self.complete {
            prepared.set_payload(&payload());
        }
        prepared.commit().map_err(SearchError::index)?;
        w.wait_merging_threads().map_err(SearchError::index)?;
        self.fresh = false;
        if self.complete {
            // The index is whole again: other processes may open it.
            self.rebuilding = None;
        }
        self.reader.reload().map_err(SearchError::index)
    }

    /// Replaces the whole index with `runs` and commits. Returns how many runs it indexed.
    #[tracing::instrument(skip_all, err)]
    pub fn rebuild<'a>(
        &mut self,
        runs: impl IntoIterator<Item = IndexedRun<'a>>,
    ) -> Result<u64, SearchError> {
        self.clear()?;
        let mut n = 0u64;
        let mut batch = Vec::with_capacity(1024);
        for r in runs {
            batch.push(r);
            if batch.len() == batch.capacity() {
                self.upsert(&batch)?;
                n += batch.len() as u64;
                batch.clear();
            }
        }
        self.upsert(&batch)?;
        n += batch.len() as u64;
        self.commit()?;
        tracing::info!(runs = n, "search index rebuilt");
        Ok(n)
    }

    /// Runs a search over what was last committed.
    pub fn search(&self, req: &SearchRequest) -> Result<Page, SearchError> {
        self.snapshot().search(req)
    }

    /// What was last committed, to search without holding the index: writers (catching up,
    /// rebuilding) and any number of searches of snapshots go on at once.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            fields: self.fields.clone(),
            searcher: self.reader.searcher(),
        }
    }
}

/// The index as of one commit, cheap to take and to clone, searchable from any thread.
#[derive(Clone)]
pub struct Snapshot {
    fields: Fields,
    searcher: tantivy::Searcher,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("runs", &self.searcher.num_docs())
            .finish()
    }
}

impl Snapshot {
    pub fn search(&self, req: &SearchRequest) -> Result<Page, SearchError> {
        crate::exec::search(&self.fields, &self.searcher, req)
    }
}

/// Whether `name` is a file tantivy (or this crate) keeps in an index directory.
fn is_index_file(name: &str) -> bool {
    let hex_prefix = name.len() >= 32 && name[..32].bytes().all(|b| b.is_ascii_hexdigit());
    hex_prefix
        || name == "meta.json"
        || name == ".managed.json"
        || name.starts_with(".tantivy")
        || name.starts_with(".tmp")
        || name.ends_with(".lock")
}

/// Deletes the index files in `dir`, refusing if anything else is there.
fn wipe(dir: &Path) -> Result<(), SearchError> {
    let io = |source| SearchError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut doomed = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == OPEN_LOCK {
            // Held by the caller; deleting it would let another process lock a fresh file.
            continue;
        }
        let is_file = entry.file_type().map_err(io)?.is_file();
        if !is_file || !is_index_file(&name) {
            return Err(SearchError::NotAnIndex {
                path: dir.to_owned(),
                file: name,
            });
        }
        doomed.push(entry.path());
    }
    for path in doomed {
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_can_move_between_threads() {
        fn check<T: Send + Sync>() {}
        check::<SearchIndex>();
    }

    #[test]
    fn only_index_files_count_as_index_files() {
        for name in [
            "meta.json",
            ".managed.json",
            ".tantivy-writer.lock",
            ".tmpAbC123",
            "0123456789abcdef0123456789abcdef.idx",
            "0123456789abcdef0123456789abcdef.12.del",
        ] {
            assert!(is_index_file(name), "{name}");
        }
        for name in ["notes.txt", "catalog.db", "meta.json.bak", "index"] {
            assert!(!is_index_file(name), "{name}");
        }
    }
}
