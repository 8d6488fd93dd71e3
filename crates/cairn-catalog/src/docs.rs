//! The catalog's automerge documents and their persistence in SQLite.
//!
//! Each doc is a row of `docs` (its last snapshot) plus rows of `changes` (incremental saves
//! since). A process keeps the docs it touched in memory with a cursor: the highest change row
//! it has applied. Before every read of a doc and inside every write transaction it applies the
//! rows past its cursor, so two processes writing one catalog converge on the same docs.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use automerge::transaction::CommitOptions;
use automerge::transaction::Transactable;
use automerge::{ActorId, Author, AutoCommit, ChangeHash, ReadDoc, ScalarValue, Value};
use cairn_model::notebook::{Notebook, NotebookMeta};
use cairn_model::{Experiment, ExperimentId, NotebookId, Run, RunId, RunSchema, ShardId};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use crate::Error;
use crate::notebook_doc::{self, NotebookEdit, NotebookHit};
use crate::project;

mod history;
mod logged_models;
mod sync;
use crate::run_doc::{RunEdit, RunReader, apply_edit, run_key, run_value};
pub use history::{FieldChange, MAX_HISTORY_VALUE};
pub use sync::{DocHeads, DocSyncState, SyncReceipt};

/// The team-doc entries under one prefix: each key with every value concurrent writers left.
pub type TeamRange = Vec<(String, Vec<String>)>;

/// A run and the edits it takes.
pub type RunEdits = (RunId, Vec<RunEdit>);

/// What a set of edits changes, for the counters: metric summaries alone, or more.
fn change_of(edits: &[RunEdit]) -> project::Change {
    if edits.iter().all(|e| matches!(e, RunEdit::Metric(..))) {
        project::Change::Summaries
    } else {
        project::Change::Doc
    }
}

/// Runs per shard doc before a new shard is started (measured: ~30 ms to load, 26 KB to sync).
pub const SHARD_CAPACITY: u32 = 1000;

/// The doc holding experiments, the schema and the shard registry.
pub(crate) const TEAM_DOC: &str = "team";

/// Changes a doc accumulates before it is compacted into a fresh snapshot.
const COMPACT_AFTER_CHANGES: i64 = 256;

const FORMAT_VERSION: i64 = 1;
/// Revision of the SQL tables and indexes; an older catalog gets the new ones at open.
/// (7 added `artifact_refs`, see `blob_refs.rs`; 8 the logged models' tables; 9 `run_costs` and
/// `cost_state`, see `cost.rs`; 10 the runs' compliance, `project_schema`, `run_evals` and
/// `run_fairness`, and evaluations stored as several keys, which an older catalog gets by
/// rebuilding its projections once; 11 the `run_costs_rollup` index in place of
/// `run_costs_idle`, built at open from the rows already there; 12 `notebooks`, see
/// `notebook_doc.rs`: an older catalog holds no notebook docs, so the empty table is all; 13
/// `notebook_text`, the notebooks' search index, filled at open from the notebook docs; 14 the
/// compact projections, see `project.rs`: `runs` keyed by `rid`, params, tags and summaries by
/// `rid` and an interned key, `runs.json` without what those hold; rebuilt once.)
const SCHEMA_REVISION: i64 = 14;
/// The revision from which `notebook_text` indexes every notebook.
const NOTEBOOK_TEXT_SINCE: i64 = 13;
/// The revision from which the projections hold what this build derives from the docs.
const PROJECTIONS_SINCE: i64 = 14;
/// The revision from which the projections are compact (an older catalog's file is vacuumed).
const COMPACT_PROJECTIONS_SINCE: i64 = 14;

struct LoadedDoc {
    doc: AutoCommit,
    /// Highest `changes.seq` applied to `doc`.
    cursor: i64,
}

/// The catalog of one workspace: experiments, runs and the project schema.
pub struct Catalog {
    conn: Connection,
    actor: ActorId,
    docs: HashMap<String, LoadedDoc>,
    /// Who writes through this handle; recorded against its actor with its first write (a
    /// read-only command takes no write lock).
    writer: String,
    actor_recorded: bool,
    /// The device every change written through this handle names as its author (see
    /// [`Catalog::set_author`]).
    author: Option<Author<'static>>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("actor", &self.actor.to_hex_string())
            .field("loaded_docs", &self.docs.len())
            .finish()
    }
}

impl Catalog {
    /// Opens (creating when absent) the catalog database at `path`. `writer` names who writes
    /// through this handle (a person or device); it is recorded against this handle's automerge
    /// actor for the audit trail.
    pub fn open(path: &Path, writer: &str) -> Result<Catalog, Error> {
        let conn = Connection::open(path)?;
        Self::init(conn, writer)
    }

    pub fn open_in_memory(writer: &str) -> Result<Catalog, Error> {
        Self::init(Connection::open_in_memory()?, writer)
    }

    fn init(conn: Connection, writer: &str) -> Result<Catalog, Error> {
        conn.busy_timeout(Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // 64 MiB of page cache: listing and search at 100k runs stay in memory.
        conn.pragma_update(None, "cache_size", -65536)?;
        let mut cat = Catalog {
            conn,
            actor: ActorId::random(),
            docs: HashMap::new(),
            writer: writer.to_owned(),
            actor_recorded: false,
            author: None,
        };
        // An existing catalog of this format needs no schema work, and so no write lock: read-only
        // commands stay out of writers' way.
        // (`schema` counts revisions of the tables and indexes, which only ever get added.)
        let current: Option<String> = cat
            .conn
            .query_row(
                "SELECT group_concat(value, '/') FROM (SELECT value FROM meta WHERE key IN ('format', 'schema') ORDER BY key)",
                [],
                |r| r.get(0),
            )
            .optional()
            .unwrap_or(None);
        if current.as_deref() == Some(format!("{FORMAT_VERSION}/{SCHEMA_REVISION}").as_str()) {
            return Ok(cat);
        }
        let tx = cat
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        let revision: Option<i64> = tx
            .query_row("SELECT value FROM meta WHERE key = 'schema'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|v| v.parse().ok());
        // Revision 5 added `docs.heads` (what sync's manifest reads without loading docs).
        let has_heads: i64 = tx.query_row(
            "SELECT count(*) FROM pragma_table_info('docs') WHERE name = 'heads'",
            [],
            |r| r.get(0),
        )?;
        if has_heads == 0 {
            tx.execute_batch("ALTER TABLE docs ADD COLUMN heads BLOB")?;
        }
        project::create_tables(&tx)?;
        notebook_doc::create_table(&tx)?;
        let found: Option<i64> = tx
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .and_then(|v| v.parse().ok());
        match found {
            Some(v) if v > FORMAT_VERSION => {
                return Err(Error::NewerFormat {
                    found: v,
                    supported: FORMAT_VERSION,
                });
            }
            Some(_) => {}
            None => {
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES ('format', ?1)",
                    [FORMAT_VERSION.to_string()],
                )?;
            }
        }
        tx.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('schema', ?1)",
            [SCHEMA_REVISION.to_string()],
        )?;
        tx.commit()?;
        if revision.is_some_and(|r| r < PROJECTIONS_SINCE) {
            let runs = cat.rebuild_projections()?;
            tracing::info!(
                runs,
                "projections rebuilt for this build's catalog revision"
            );
            if revision.is_some_and(|r| r < COMPACT_PROJECTIONS_SINCE) {
                // The old tables' pages are free but still in the file (759 MB at 100k runs):
                // give them back once. A reader holding the file open makes it wait or fail,
                // which leaves the catalog whole, only larger.
                if let Err(e) = cat.conn.execute_batch("VACUUM") {
                    tracing::warn!(error = %e, "could not vacuum the catalog after its upgrade");
                }
            }
        } else if revision.is_some_and(|r| r < NOTEBOOK_TEXT_SINCE) {
            let notebooks = cat.reindex_notebooks()?;
            tracing::info!(notebooks, "notebooks indexed for search");
        }
        Ok(cat)
    }

    /// The connection, for the projections' own read queries (`blob_refs.rs`).
    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection for a projection's own write transactions (`cost.rs`).
    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Names the device (its ed25519 public key) as the author of every change written through
    /// this handle from now on. Automerge keeps the author in each change, so the change carries
    /// it to every peer: any of them can name who wrote it from the roster (a run's history).
    pub fn set_author(&mut self, device: [u8; 32]) {
        self.author = Some(Author::from(device.to_vec()));
    }

    /// This handle's automerge actor id (hex).
    pub fn actor(&self) -> String {
        self.actor.to_hex_string()
    }

    // ---- docs ---------------------------------------------------------------------------

    /// Brings the in-memory copy of `doc` up to date with what is in the database.
    fn catch_up(
        docs: &mut HashMap<String, LoadedDoc>,
        actor: &ActorId,
        conn: &Connection,
        name: &str,
    ) -> Result<(), Error> {
        let row: Option<(Option<Vec<u8>>, i64)> = conn
            .query_row(
                "SELECT snapshot, snapshot_seq FROM docs WHERE id = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let loaded = match docs.get_mut(name) {
            Some(l) => l,
            None => {
                let doc = AutoCommit::new().with_actor(actor.clone());
                docs.entry(name.to_owned())
                    .or_insert(LoadedDoc { doc, cursor: 0 })
            }
        };
        if let Some((snapshot, snapshot_seq)) = row
            && loaded.cursor < snapshot_seq
        {
            // Changes past our cursor were folded into the snapshot: take it whole.
            if let Some(bytes) = snapshot {
                loaded
                    .doc
                    .load_incremental(&bytes)
                    .map_err(|e| Error::Corrupt {
                        doc: name.to_owned(),
                        reason: format!("snapshot: {e}"),
                    })?;
            }
            loaded.cursor = snapshot_seq;
        }
        let mut stmt = conn.prepare_cached(
            "SELECT seq, data FROM changes WHERE doc = ?1 AND seq > ?2 ORDER BY seq",
        )?;
        let mut rows = stmt.query(params![name, loaded.cursor])?;
        // Every change past the cursor applied in one batch: applying them one by one costs a
        // pass over the doc each (a reader behind a writer by 250 changes of a team doc with
        // 10,000 records took 1.8 s; in one batch, milliseconds).
        let mut batch: Vec<u8> = Vec::new();
        let (mut first, mut last) = (None, loaded.cursor);
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let data: Vec<u8> = r.get(1)?;
            batch.extend_from_slice(&data);
            first.get_or_insert(seq);
            last = seq;
        }
        if let Some(first) = first {
            loaded
                .doc
                .load_incremental(&batch)
                .map_err(|e| Error::Corrupt {
                    doc: name.to_owned(),
                    reason: format!("changes {first}..={last}: {e}"),
                })?;
            loaded.cursor = last;
        }
        Ok(())
    }

    /// Runs `edit` on doc `name` in one IMMEDIATE transaction: catches up, edits, appends the
    /// change, lets `project` update projections, commits. On any error, and on a panic in the
    /// middle (which a server thread survives), the in-memory doc is dropped — it may hold an
    /// edit the database does not, which the next write would otherwise save — and nothing is
    /// stored: the transaction rolls back when it is dropped.
    fn write<T>(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut AutoCommit) -> Result<T, Error>,
        project: impl FnOnce(&Transaction<'_>, &AutoCommit, &T) -> Result<(), Error>,
    ) -> Result<T, Error> {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.write_inner(name, edit, project)
        }));
        match result {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => {
                self.docs.remove(name);
                Err(e)
            }
            Err(panic) => {
                self.docs.remove(name);
                std::panic::resume_unwind(panic)
            }
        }
    }

    fn write_inner<T>(
        &mut self,
        name: &str,
        edit: impl FnOnce(&mut AutoCommit) -> Result<T, Error>,
        project: impl FnOnce(&Transaction<'_>, &AutoCommit, &T) -> Result<(), Error>,
    ) -> Result<T, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !self.actor_recorded {
            tx.execute(
                "INSERT OR IGNORE INTO actors(actor, writer, opened_ms) VALUES (?1, ?2, ?3)",
                params![self.actor.to_hex_string(), self.writer, now_ms()],
            )?;
        }
        Self::catch_up(&mut self.docs, &self.actor, &tx, name)?;
        let loaded = self.docs.get_mut(name).ok_or_else(|| Error::Corrupt {
            doc: name.to_owned(),
            reason: "not loaded".into(),
        })?;
        if self.author.is_some() && loaded.doc.get_author() != self.author.as_ref() {
            // Setting an author picks a fresh actor: this handle keeps its own.
            loaded.doc.set_author(self.author.clone());
            loaded.doc.set_actor(self.actor.clone());
        }
        let before: Vec<ChangeHash> = loaded.doc.get_heads();
        let out = edit(&mut loaded.doc)?;
        // The time (ms) goes into the change: a run's history says when each edit was made.
        loaded
            .doc
            .commit_with(CommitOptions::default().with_time(now_ms()));
        let bytes = loaded.doc.save_after(&before);
        if !bytes.is_empty() {
            tx.execute("INSERT OR IGNORE INTO docs(id) VALUES (?1)", [name])?;
            tx.execute(
                "INSERT INTO changes(doc, data) VALUES (?1, ?2)",
                params![name, bytes],
            )?;
            loaded.cursor = tx.last_insert_rowid();
            tx.execute(
                "UPDATE docs SET heads = ?2 WHERE id = ?1",
                params![name, encode_heads(&loaded.doc.get_heads())],
            )?;
            let pending: i64 = tx.query_row(
                "UPDATE docs SET changes = changes + 1 WHERE id = ?1 RETURNING changes",
                [name],
                |r| r.get(0),
            )?;
            if pending >= COMPACT_AFTER_CHANGES {
                compact(&tx, name, loaded)?;
            }
        }
        project(&tx, &loaded.doc, &out)?;
        tx.commit()?;
        self.actor_recorded = true;
        Ok(out)
    }

    /// Read access to an up-to-date doc.
    fn read<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&AutoCommit) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let tx = self.conn.transaction()?;
        Self::catch_up(&mut self.docs, &self.actor, &tx, name)?;
        tx.commit()?;
        let loaded = self.docs.get(name).ok_or_else(|| Error::Corrupt {
            doc: name.to_owned(),
            reason: "not loaded".into(),
        })?;
        f(&loaded.doc)
    }

    /// Compacts every doc that has changes past its snapshot.
    pub fn compact_all(&mut self) -> Result<usize, Error> {
        let names: Vec<String> = self
            .conn
            .prepare("SELECT id FROM docs WHERE changes > 0")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for name in &names {
            self.compact_doc(name)?;
        }
        Ok(names.len())
    }

    /// Folds the changes of doc `name` into a fresh snapshot.
    fn compact_doc(&mut self, name: &str) -> Result<(), Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        Self::catch_up(&mut self.docs, &self.actor, &tx, name)?;
        if let Some(loaded) = self.docs.get_mut(name) {
            compact(&tx, name, loaded)?;
        }
        tx.commit()?;
        // A compacted doc need not stay in memory.
        self.docs.remove(name);
        Ok(())
    }

    /// The whole doc as automerge bytes (for sync and for tests that play a second writer).
    pub fn export_doc(&mut self, name: &str) -> Result<Vec<u8>, Error> {
        self.read(name, |d| Ok(d.clone().save()))
    }

    /// Names of every doc (the team doc and the shards).
    pub fn doc_names(&self) -> Result<Vec<String>, Error> {
        Ok(self
            .conn
            .prepare("SELECT id FROM docs ORDER BY id")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?)
    }

    /// Merges automerge changes from elsewhere (another device's copy of `name`) and refreshes
    /// the projections of everything they touched.
    pub fn import_changes(&mut self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let is_team = name == TEAM_DOC;
        self.write(
            name,
            |doc| {
                doc.load_incremental(bytes).map_err(|e| Error::Corrupt {
                    doc: name.to_owned(),
                    reason: format!("incoming changes: {e}"),
                })?;
                Ok(())
            },
            |tx, doc, _| {
                if is_team {
                    project_team(tx, doc)
                } else if notebook_doc::notebook_of(name).is_some() {
                    notebook_doc::project(tx, doc, name)
                } else {
                    let mut reader = RunReader::new(doc, name);
                    for id in reader.run_ids()? {
                        if let Some(run) = reader.run(id)? {
                            project::upsert_run(tx, &run, name)?;
                        }
                    }
                    logged_models::project_shard(tx, doc, name).map(drop)
                }
            },
        )
    }

    // ---- experiments and schema (team doc) -----------------------------------------------

    /// Creates an experiment; its name must be unique among live experiments.
    pub fn create_experiment(&mut self, exp: &Experiment) -> Result<(), Error> {
        // A deleted experiment keeps its name (MLflow's rule): restore it or pick another.
        if let Some(other) = self.experiment_any_by_name(&exp.name)? {
            return Err(if other.deleted {
                Error::DeletedExperimentName(exp.name.clone())
            } else {
                Error::DuplicateExperiment(exp.name.clone())
            });
        }
        let key = format!("exp/{}", exp.id);
        let text = serde_json::to_string(exp).unwrap_or_default();
        self.write(
            TEAM_DOC,
            |doc| {
                doc.put(automerge::ROOT, key.as_str(), text.as_str())
                    .map_err(Error::automerge(TEAM_DOC))
            },
            |tx, _, _| project::upsert_experiment(tx, exp),
        )
    }

    /// Replaces an experiment's record (rename, description, tags, schema, deletion).
    pub fn update_experiment(&mut self, exp: &Experiment) -> Result<(), Error> {
        if self.experiment(exp.id)?.is_none() {
            return Err(Error::UnknownExperiment(exp.id));
        }
        if let Some(other) = self.experiment_any_by_name(&exp.name)?
            && other.id != exp.id
        {
            return Err(Error::DuplicateExperiment(exp.name.clone()));
        }
        let key = format!("exp/{}", exp.id);
        let text = serde_json::to_string(exp).unwrap_or_default();
        self.write(
            TEAM_DOC,
            |doc| {
                doc.put(automerge::ROOT, key.as_str(), text.as_str())
                    .map_err(Error::automerge(TEAM_DOC))
            },
            |tx, _, _| project::upsert_experiment(tx, exp),
        )
    }

    pub fn experiments(&self) -> Result<Vec<Experiment>, Error> {
        project::experiments(&self.conn)
    }

    pub fn experiment(&self, id: ExperimentId) -> Result<Option<Experiment>, Error> {
        project::experiment_where(&self.conn, "id = ?1", &id.to_string())
    }

    /// The experiment with this name, deleted or not.
    pub fn experiment_any_by_name(&self, name: &str) -> Result<Option<Experiment>, Error> {
        project::experiment_where(&self.conn, "name = ?1", name)
    }

    /// The live experiment with this name.
    pub fn experiment_by_name(&self, name: &str) -> Result<Option<Experiment>, Error> {
        project::experiment_where(&self.conn, "name = ?1 AND deleted = 0", name)
    }

    /// The project's run schema (the default until one is set).
    pub fn project_schema(&mut self) -> Result<RunSchema, Error> {
        let text = self.read(TEAM_DOC, |doc| {
            Ok(
                match doc
                    .get(automerge::ROOT, "schema")
                    .map_err(Error::automerge(TEAM_DOC))?
                {
                    Some((Value::Scalar(s), _)) => s.as_str().map(str::to_owned),
                    _ => None,
                },
            )
        })?;
        match text {
            Some(t) => serde_json::from_str(&t).map_err(|e| Error::Corrupt {
                doc: TEAM_DOC.into(),
                reason: format!("schema: {e}"),
            }),
            None => Ok(RunSchema::default()),
        }
    }

    /// Sets the project's schema; every run's compliance is checked again against it in the
    /// same transaction (experiments with a schema of their own keep theirs).
    pub fn set_project_schema(&mut self, schema: &RunSchema) -> Result<(), Error> {
        let text = serde_json::to_string(schema).unwrap_or_default();
        self.write(
            TEAM_DOC,
            |doc| {
                doc.put(automerge::ROOT, "schema", text.as_str())
                    .map_err(Error::automerge(TEAM_DOC))
            },
            |tx, _, _| project::set_project_schema(tx, Some(schema)).map(drop),
        )
    }

    /// A JSON entry of the team doc (registered models, saved views, …) by key.
    pub fn team_entry(&mut self, key: &str) -> Result<Option<String>, Error> {
        self.read(TEAM_DOC, |doc| {
            Ok(
                match doc
                    .get(automerge::ROOT, key)
                    .map_err(Error::automerge(TEAM_DOC))?
                {
                    Some((Value::Scalar(s), _)) => s.as_str().map(str::to_owned),
                    _ => None,
                },
            )
        })
    }

    /// Every team-doc entry whose key starts with `prefix`, sorted by key (of concurrent values,
    /// the one [`Catalog::team_entry`] reads). A range read: only the keys under `prefix` are
    /// visited, however many records the doc holds (the roster is read on every sync
    /// connection and every approval check).
    pub fn team_entries(&mut self, prefix: &str) -> Result<Vec<(String, String)>, Error> {
        self.read(TEAM_DOC, |doc| {
            let mut out = Vec::new();
            for item in doc.map_range(automerge::ROOT, prefix.to_owned()..) {
                if !item.key.starts_with(prefix) {
                    break;
                }
                if let Some(text) = item.value.into_value().as_str() {
                    out.push((item.key.to_string(), text.to_owned()));
                }
            }
            Ok(out)
        })
    }

    /// For each of `prefixes`, every team-doc entry whose key starts with it, sorted by key,
    /// each with *all* the values concurrent writers left under it (automerge keeps them as a
    /// conflict until a later write supersedes them). The last value is the one
    /// [`Catalog::team_entry`] reads; entries that are not text are left out. Range reads of one
    /// up-to-date doc: only the keys under each prefix are visited.
    pub fn team_ranges(&mut self, prefixes: &[&str]) -> Result<Vec<TeamRange>, Error> {
        self.read(TEAM_DOC, |doc| {
            let mut all = Vec::with_capacity(prefixes.len());
            for prefix in prefixes {
                let mut out = Vec::new();
                for item in doc.map_range(automerge::ROOT, (*prefix).to_owned()..) {
                    if !item.key.starts_with(prefix) {
                        break;
                    }
                    let key = item.key.to_string();
                    let values: Vec<String> = if item.conflict {
                        doc.get_all(automerge::ROOT, key.as_str())
                            .map_err(Error::automerge(TEAM_DOC))?
                            .into_iter()
                            .filter_map(|(v, _)| v.as_str().map(str::to_owned))
                            .collect()
                    } else {
                        item.value
                            .into_value()
                            .as_str()
                            .map(str::to_owned)
                            .into_iter()
                            .collect()
                    };
                    if !values.is_empty() {
                        out.push((key, values));
                    }
                }
                all.push(out);
            }
            Ok(all)
        })
    }

    /// The last `n` team-doc entries whose key starts with `prefix` (by key, ascending), each with
    /// all its concurrent values, as [`Catalog::team_ranges`] gives them: for records keyed by
    /// a time-ordered id, the newest `n`, without reading the values of the others.
    pub fn team_range_tail(&mut self, prefix: &str, n: usize) -> Result<TeamRange, Error> {
        self.read(TEAM_DOC, |doc| {
            let mut keys: std::collections::VecDeque<String> = std::collections::VecDeque::new();
            for item in doc.map_range(automerge::ROOT, prefix.to_owned()..) {
                if !item.key.starts_with(prefix) {
                    break;
                }
                if keys.len() == n {
                    keys.pop_front();
                }
                if n > 0 {
                    keys.push_back(item.key.to_string());
                }
            }
            let mut out = Vec::with_capacity(keys.len());
            for key in keys {
                let values: Vec<String> = doc
                    .get_all(automerge::ROOT, key.as_str())
                    .map_err(Error::automerge(TEAM_DOC))?
                    .into_iter()
                    .filter_map(|(v, _)| v.as_str().map(str::to_owned))
                    .collect();
                if !values.is_empty() {
                    out.push((key, values));
                }
            }
            Ok(out)
        })
    }

    /// Writes (or, with `None`, removes) several team-doc entries in one change: a record and
    /// its index entries arrive at every peer together or not at all.
    pub fn put_team_entries(&mut self, entries: &[(String, Option<String>)]) -> Result<(), Error> {
        for (key, _) in entries {
            check_team_key(key)?;
        }
        self.write(
            TEAM_DOC,
            |doc| {
                for (key, value) in entries {
                    match value {
                        Some(v) => doc.put(automerge::ROOT, key.as_str(), v.as_str()),
                        None => doc.delete(automerge::ROOT, key.as_str()),
                    }
                    .map_err(Error::automerge(TEAM_DOC))?;
                }
                Ok(())
            },
            |_, _, _| Ok(()),
        )
    }

    /// Writes (or, with `None`, removes) a team-doc entry.
    pub fn put_team_entry(&mut self, key: &str, value: Option<&str>) -> Result<(), Error> {
        check_team_key(key)?;
        self.write(
            TEAM_DOC,
            |doc| match value {
                Some(v) => doc
                    .put(automerge::ROOT, key, v)
                    .map_err(Error::automerge(TEAM_DOC)),
                None => doc
                    .delete(automerge::ROOT, key)
                    .map_err(Error::automerge(TEAM_DOC)),
            },
            |_, _, _| Ok(()),
        )
    }

    // ---- notebooks (a doc each, see `notebook_doc.rs`) -------------------------------------

    /// Creates a notebook in a doc of its own; its id must be new.
    pub fn create_notebook(&mut self, nb: &Notebook) -> Result<(), Error> {
        let id = nb.meta.id;
        if notebook_doc::exists(&self.conn, id)? {
            return Err(Error::DuplicateNotebook(id));
        }
        let name = notebook_doc::doc_name(id);
        self.write(
            &name,
            |doc| {
                // Another process may have created it since the check above.
                if doc.get(automerge::ROOT, "id").ok().flatten().is_some() {
                    return Err(Error::DuplicateNotebook(id));
                }
                notebook_doc::write_new(doc, &name, nb)
            },
            |tx, doc, _| notebook_doc::project(tx, doc, &name),
        )
    }

    /// Applies `edits` to a notebook as `by` at `at_ms` (a text edit splices the difference),
    /// in one change; answers the notebook as it then is.
    pub fn edit_notebook(
        &mut self,
        id: NotebookId,
        edits: &[NotebookEdit],
        by: &str,
        at_ms: i64,
    ) -> Result<Notebook, Error> {
        if !notebook_doc::exists(&self.conn, id)? {
            return Err(Error::UnknownNotebook(id));
        }
        let name = notebook_doc::doc_name(id);
        self.write(
            &name,
            |doc| notebook_doc::apply(doc, &name, edits, by, at_ms),
            |tx, doc, _| notebook_doc::project(tx, doc, &name),
        )?;
        self.notebook(id)?.ok_or(Error::UnknownNotebook(id))
    }

    /// A notebook with its text, as its doc now holds it.
    pub fn notebook(&mut self, id: NotebookId) -> Result<Option<Notebook>, Error> {
        if !notebook_doc::exists(&self.conn, id)? {
            return Ok(None);
        }
        self.with_doc_mut(&notebook_doc::doc_name(id), |doc| {
            let mut nb = notebook_doc::read(doc, id)?;
            nb.heads = doc.get_heads().iter().map(|h| h.to_string()).collect();
            Ok(Some(nb))
        })
    }

    /// Every notebook without its text, most recently updated first (one indexed query).
    pub fn notebooks(&self) -> Result<Vec<NotebookMeta>, Error> {
        notebook_doc::list(&self.conn)
    }

    /// The name of the doc that holds a notebook (for sync and tests).
    pub fn notebook_doc_name(id: NotebookId) -> String {
        notebook_doc::doc_name(id)
    }

    // ---- runs ------------------------------------------------------------------------------

    /// Creates runs (in any experiments) — each one `batch_create_object` — with one automerge
    /// change per shard touched and one SQLite transaction per shard.
    pub fn create_runs(&mut self, runs: &[Run]) -> Result<(), Error> {
        self.create_runs_attested(runs, |_| Ok::<(), Error>(()))
    }

    /// [`Catalog::create_runs`], with `attest` called inside the first shard's transaction
    /// before it commits (the audit events that attest the runs: the chains live in this
    /// database, so a run and its event land together or not at all). An error of `attest`
    /// stores nothing of that shard and is returned as is.
    pub fn create_runs_attested<E: From<Error>>(
        &mut self,
        runs: &[Run],
        attest: impl FnOnce(&Transaction<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut attest = Some(attest);
        let mut refused: Option<E> = None;
        let mut by_exp: Vec<(ExperimentId, Vec<&Run>)> = Vec::new();
        for run in runs {
            if self.experiment(run.experiment)?.is_none() {
                return Err(Error::UnknownExperiment(run.experiment).into());
            }
            match by_exp.iter_mut().find(|(e, _)| *e == run.experiment) {
                Some((_, v)) => v.push(run),
                None => by_exp.push((run.experiment, vec![run])),
            }
        }
        for (exp, mut pending) in by_exp {
            while !pending.is_empty() {
                let (shard, room) = self.shard_with_room(exp)?;
                let take = pending.len().min(room as usize);
                let batch: Vec<&Run> = pending.drain(..take).collect();
                let name = shard.to_string();
                let written = self.write(
                    &name,
                    |doc| {
                        for run in &batch {
                            let key = run_key(run.id);
                            doc.batch_create_object(
                                automerge::ROOT,
                                key.as_str(),
                                &run_value(run),
                                false,
                            )
                            .map_err(Error::automerge(&name))?;
                        }
                        Ok(())
                    },
                    |tx, _, _| {
                        tx.execute(
                            "UPDATE docs SET experiment = ?2, runs = runs + ?3 WHERE id = ?1",
                            params![name, exp.to_string(), batch.len() as i64],
                        )?;
                        for run in &batch {
                            project::upsert_run(tx, run, &name)?;
                        }
                        if let Some(attest) = attest.take()
                            && let Err(e) = attest(tx)
                        {
                            refused = Some(e);
                            return Err(Error::EditRefused);
                        }
                        Ok(())
                    },
                );
                match (written, refused.take()) {
                    (Err(_), Some(e)) => return Err(e),
                    (Err(e), None) => return Err(e.into()),
                    (Ok(()), _) => {}
                }
            }
        }
        Ok(())
    }

    /// The newest shard of `exp` with room, or a new one registered in the team doc.
    fn shard_with_room(&mut self, exp: ExperimentId) -> Result<(ShardId, u32), Error> {
        let found: Option<(String, i64)> = self
            .conn
            .query_row(
                "SELECT id, runs FROM docs WHERE experiment = ?1 AND runs < ?2 ORDER BY id DESC LIMIT 1",
                params![exp.to_string(), SHARD_CAPACITY],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((id, runs)) = found {
            let shard = id.parse().map_err(|e| Error::Corrupt {
                doc: id.clone(),
                reason: format!("shard id: {e}"),
            })?;
            return Ok((shard, SHARD_CAPACITY - runs as u32));
        }
        let shard = ShardId::new();
        let key = format!("shard/{shard}");
        self.write(
            TEAM_DOC,
            |doc| {
                doc.put(automerge::ROOT, key.as_str(), exp.to_string())
                    .map_err(Error::automerge(TEAM_DOC))
            },
            |tx, _, _| {
                tx.execute(
                    "INSERT OR IGNORE INTO docs(id, experiment) VALUES (?1, ?2)",
                    params![shard.to_string(), exp.to_string()],
                )?;
                Ok(())
            },
        )?;
        // The experiment's full shards take no new runs: their changes are folded into their
        // snapshots now (a save per shard filled), rather than kept as rows until 256 more
        // edits arrive (at 100k runs they were a quarter of the catalog).
        let full: Vec<String> = self
            .conn
            .prepare_cached(
                "SELECT id FROM docs WHERE experiment = ?1 AND runs >= ?2 AND changes > 0",
            )?
            .query_map(params![exp.to_string(), SHARD_CAPACITY], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        for name in &full {
            self.compact_doc(name)?;
        }
        Ok((shard, SHARD_CAPACITY))
    }

    fn shard_of(&self, run: RunId) -> Result<String, Error> {
        self.conn
            .query_row(
                "SELECT shard FROM runs WHERE id = ?1",
                [run.to_string()],
                |r| r.get(0),
            )
            .optional()?
            .ok_or(Error::UnknownRun(run))
    }

    /// Applies edits to one run in one change, and returns the run as it now is.
    ///
    /// Edits of metric summaries alone do not raise the counter of doc changes (see
    /// [`Catalog::change_counters`]).
    pub fn update_run(&mut self, id: RunId, edits: &[RunEdit]) -> Result<Run, Error> {
        let shard = self.shard_of(id)?;
        let key = run_key(id);
        self.write(
            &shard,
            |doc| {
                let obj = match doc
                    .get(automerge::ROOT, key.as_str())
                    .map_err(Error::automerge(&shard))?
                {
                    Some((Value::Object(_), obj)) => obj,
                    _ => return Err(Error::UnknownRun(id)),
                };
                for e in edits {
                    apply_edit(doc, &obj, e, &shard)?;
                }
                Ok(())
            },
            |tx, doc, _| {
                let run = RunReader::new(doc, &shard)
                    .run(id)?
                    .ok_or(Error::UnknownRun(id))?;
                project::upsert_run_as(tx, &run, &shard, change_of(edits))
            },
        )?;
        self.run(id)?.ok_or(Error::UnknownRun(id))
    }

    /// Applies edits to many runs: one change and one transaction per shard touched.
    pub fn update_runs(&mut self, edits: &[RunEdits]) -> Result<(), Error> {
        let mut by_shard: Vec<(String, Vec<&RunEdits>)> = Vec::new();
        for e in edits {
            let shard = self.shard_of(e.0)?;
            match by_shard.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, v)) => v.push(e),
                None => by_shard.push((shard, vec![e])),
            }
        }
        for (shard, group) in by_shard {
            self.write(
                &shard,
                |doc| {
                    for (id, run_edits) in &group {
                        let key = run_key(*id);
                        let obj = match doc
                            .get(automerge::ROOT, key.as_str())
                            .map_err(Error::automerge(&shard))?
                        {
                            Some((Value::Object(_), obj)) => obj,
                            _ => return Err(Error::UnknownRun(*id)),
                        };
                        for e in run_edits {
                            apply_edit(doc, &obj, e, &shard)?;
                        }
                    }
                    Ok(())
                },
                |tx, doc, _| {
                    let mut reader = RunReader::new(doc, &shard);
                    for (id, run_edits) in &group {
                        let run = reader.run(*id)?.ok_or(Error::UnknownRun(*id))?;
                        project::upsert_run_as(tx, &run, &shard, change_of(run_edits))?;
                    }
                    Ok(())
                },
            )?;
        }
        Ok(())
    }

    /// A run as last projected (fast: no automerge doc is loaded). Conflicts included.
    pub fn run(&self, id: RunId) -> Result<Option<Run>, Error> {
        project::run(&self.conn, id)
    }

    /// A run read from its shard doc (catches up with other writers first).
    pub fn run_from_doc(&mut self, id: RunId) -> Result<Run, Error> {
        let shard = self.shard_of(id)?;
        self.read(&shard, |doc| {
            RunReader::new(doc, &shard)
                .run(id)?
                .ok_or(Error::UnknownRun(id))
        })
    }

    /// The unique run whose id starts with `prefix` (a full id is a prefix of itself).
    pub fn resolve_run(&self, prefix: &str) -> Result<RunId, Error> {
        project::resolve_run(&self.conn, prefix)
    }

    pub fn list_runs(&self, filter: &crate::RunFilter) -> Result<Vec<crate::RunRow>, Error> {
        project::list_runs(&self.conn, filter)
    }

    /// Updates the summary-metric projection rows of a run (not its doc): the metric store's
    /// live values, so filters and sorts on metrics see every append at once. The doc gets the
    /// summaries too, less often (see `cairn-core`).
    pub fn project_metric_summaries(
        &mut self,
        run: RunId,
        summaries: &[(String, cairn_model::MetricSummary)],
    ) -> Result<(), Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        project::upsert_metric_rows(&tx, run, summaries)?;
        tx.commit()?;
        Ok(())
    }

    /// The change counter (raised by every write of any process) and the runs whose projection
    /// changed after `since` — what a derived index catches up from. The counter is read first,
    /// so nothing written meanwhile is missed (it may be seen twice).
    pub fn changes_since(&self, since: i64) -> Result<(i64, Vec<Run>), Error> {
        let seq = project::change_seq(&self.conn)?;
        Ok((seq, project::runs_changed_since(&self.conn, since)?))
    }

    /// Marks `runs` changed for derived indexes (search) without touching their docs: what the
    /// index holds of them beyond their docs (their reviews) changed.
    pub fn restamp_runs(&mut self, runs: &[RunId]) -> Result<(), Error> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        project::restamp_runs(&tx, runs)?;
        tx.commit()?;
        Ok(())
    }

    /// The fairness figures of the run's evaluations, as projected when it last changed.
    pub fn fairness(&self, run: RunId) -> Result<Vec<cairn_model::FairnessFigure>, Error> {
        project::fairness(&self.conn, run)
    }

    /// The change counters, (any run row, runs' docs): when only the first moved, only live
    /// metric summaries changed.
    pub fn change_counters(&self) -> Result<(i64, i64), Error> {
        project::change_counters(&self.conn)
    }

    pub fn count_runs(&self, filter: &crate::RunFilter) -> Result<u64, Error> {
        project::count_runs(&self.conn, filter)
    }

    /// Live runs per experiment, in one pass over an index.
    pub fn run_counts(&self) -> Result<HashMap<ExperimentId, u64>, Error> {
        project::run_counts(&self.conn)?
            .into_iter()
            .map(|(id, n)| {
                id.parse().map(|id| (id, n)).map_err(|_| Error::Corrupt {
                    doc: "runs".into(),
                    reason: format!("experiment id '{id}' in the runs table is malformed"),
                })
            })
            .collect()
    }

    /// Recomputes every projection table from the docs.
    pub fn rebuild_projections(&mut self) -> Result<u64, Error> {
        let names = self.doc_names()?;
        let mut runs = 0;
        for name in names {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            Self::catch_up(&mut self.docs, &self.actor, &tx, &name)?;
            let doc = &self
                .docs
                .get(&name)
                .ok_or_else(|| Error::Corrupt {
                    doc: name.clone(),
                    reason: "not loaded".into(),
                })?
                .doc;
            if name == TEAM_DOC {
                project_team(&tx, doc)?;
            } else if notebook_doc::notebook_of(&name).is_some() {
                notebook_doc::project(&tx, doc, &name)?;
            } else {
                let mut reader = RunReader::new(doc, &name);
                let ids = reader.run_ids()?;
                project::delete_shard(&tx, &name)?;
                tx.execute(
                    "UPDATE docs SET runs = ?2 WHERE id = ?1",
                    params![name, ids.len() as i64],
                )?;
                for id in ids {
                    if let Some(run) = reader.run(id)? {
                        project::upsert_run(&tx, &run, &name)?;
                        runs += 1;
                    }
                }
                logged_models::project_shard(&tx, doc, &name)?;
            }
            tx.commit()?;
            self.docs.remove(&name);
        }
        Ok(runs)
    }
}

impl Catalog {
    /// Projects every notebook doc again (its listing row and its search text), one
    /// transaction each; answers how many.
    pub fn reindex_notebooks(&mut self) -> Result<u64, Error> {
        let names: Vec<String> = self
            .doc_names()?
            .into_iter()
            .filter(|n| notebook_doc::notebook_of(n).is_some())
            .collect();
        for name in &names {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            Self::catch_up(&mut self.docs, &self.actor, &tx, name)?;
            let doc = &self
                .docs
                .get(name)
                .ok_or_else(|| Error::Corrupt {
                    doc: name.clone(),
                    reason: "not loaded".into(),
                })?
                .doc;
            notebook_doc::project(&tx, doc, name)?;
            tx.commit()?;
            self.docs.remove(name);
        }
        Ok(names.len() as u64)
    }

    /// The notebooks whose title, tags, owners or text match `query` (words as prefixes,
    /// `"phrases"`, `title:`, `tag:`, `owner:`), best first, at most `limit`; an empty query
    /// lists the most recently updated.
    pub fn search_notebooks(&self, query: &str, limit: usize) -> Result<Vec<NotebookHit>, Error> {
        notebook_doc::search(&self.conn, query, limit)
    }
}

/// Rewrites the experiments projection and the project's schema from the team doc (runs whose
/// schema changed are checked again).
fn project_team(tx: &Transaction<'_>, doc: &AutoCommit) -> Result<(), Error> {
    let schema: Option<RunSchema> = match doc
        .get(automerge::ROOT, "schema")
        .map_err(Error::automerge(TEAM_DOC))?
    {
        Some((Value::Scalar(s), _)) => match s.as_str() {
            Some(t) => Some(serde_json::from_str(t).map_err(|e| Error::Corrupt {
                doc: TEAM_DOC.into(),
                reason: format!("schema: {e}"),
            })?),
            None => None,
        },
        _ => None,
    };
    let keys: Vec<String> = doc
        .keys(automerge::ROOT)
        .filter(|k| k.starts_with("exp/") || k.starts_with("shard/"))
        .collect();
    for key in keys {
        let text = match doc
            .get(automerge::ROOT, key.as_str())
            .map_err(Error::automerge(TEAM_DOC))?
        {
            Some((Value::Scalar(s), _)) => match s.as_ref() {
                ScalarValue::Str(t) => t.to_string(),
                _ => continue,
            },
            _ => continue,
        };
        if key.starts_with("exp/") {
            let exp: Experiment = serde_json::from_str(&text).map_err(|e| Error::Corrupt {
                doc: TEAM_DOC.into(),
                reason: format!("{key}: {e}"),
            })?;
            project::upsert_experiment(tx, &exp)?;
        } else if let Some(shard) = key.strip_prefix("shard/") {
            // A shard that arrived from a peer before its registry entry has no experiment yet.
            tx.execute(
                "INSERT INTO docs(id, experiment) VALUES (?1, ?2)
                 ON CONFLICT(id) DO UPDATE SET experiment = excluded.experiment WHERE experiment IS NULL",
                params![shard, text],
            )?;
        }
    }
    project::set_project_schema(tx, schema.as_ref())?;
    Ok(())
}

/// Keys of the team doc that only the catalog itself writes (experiments, shards, the schema).
fn check_team_key(key: &str) -> Result<(), Error> {
    if key.starts_with("exp/") || key.starts_with("shard/") || key == "schema" {
        return Err(Error::Corrupt {
            doc: TEAM_DOC.into(),
            reason: format!("'{key}' is reserved"),
        });
    }
    Ok(())
}

/// Heads as stored in `docs.heads`: the 32-byte hashes, concatenated, sorted.
fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    let mut sorted: Vec<&ChangeHash> = heads.iter().collect();
    sorted.sort();
    sorted.iter().flat_map(|h| h.0).collect()
}

/// Replaces the doc's snapshot with a fresh save and drops the changes it folds in.
fn compact(tx: &Transaction<'_>, name: &str, loaded: &mut LoadedDoc) -> Result<(), Error> {
    let snapshot = loaded.doc.save();
    tx.execute(
        "UPDATE docs SET snapshot = ?2, snapshot_seq = ?3, changes = 0 WHERE id = ?1",
        params![name, snapshot, loaded.cursor],
    )?;
    tx.execute(
        "DELETE FROM changes WHERE doc = ?1 AND seq <= ?2",
        params![name, loaded.cursor],
    )?;
    Ok(())
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS actors (actor TEXT PRIMARY KEY, writer TEXT NOT NULL, opened_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    id TEXT PRIMARY KEY,
    experiment TEXT,
    snapshot BLOB,
    snapshot_seq INTEGER NOT NULL DEFAULT 0,
    changes INTEGER NOT NULL DEFAULT 0,
    runs INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS docs_experiment ON docs(experiment, id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    doc TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS changes_doc ON changes(doc, seq);
CREATE TABLE IF NOT EXISTS sync_state (
    peer TEXT NOT NULL,
    doc TEXT NOT NULL,
    state BLOB NOT NULL,
    PRIMARY KEY (peer, doc)
) WITHOUT ROWID;
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_the_middle_of_a_write_leaves_nothing_behind() {
        let mut cat = Catalog::open_in_memory("alice").unwrap();
        cat.put_team_entry("kept", Some("1")).unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            cat.write(
                TEAM_DOC,
                |doc| {
                    doc.put(automerge::ROOT, "half-written", "x")
                        .map_err(Error::automerge(TEAM_DOC))?;
                    panic!("a bug in the middle of an edit");
                },
                |_, _, _: &()| Ok(()),
            )
        }));
        assert!(panicked.is_err());
        // Neither this handle's next read nor its next write carries the half-made edit.
        assert_eq!(cat.team_entry("half-written").unwrap(), None);
        cat.put_team_entry("after", Some("2")).unwrap();
        // What the database holds, as another handle would load it.
        cat.docs.clear();
        assert_eq!(cat.team_entry("half-written").unwrap(), None);
        assert_eq!(cat.team_entry("kept").unwrap().as_deref(), Some("1"));
        assert_eq!(cat.team_entry("after").unwrap().as_deref(), Some("2"));
    }
}
