//! What peer sync needs of the catalog: each doc's heads without loading it, and automerge's
//! sync protocol run inside the catalog's write transaction, so a received change is persisted,
//! projected and acknowledged (the per-peer sync state) in one commit or not at all.

use std::collections::{BTreeSet, HashMap};

use automerge::legacy::{Key as LegacyKey, ObjectId as LegacyObjectId};
use automerge::sync::{Message, State, SyncDoc};
use automerge::{AutoCommit, ChangeHash, Prop, ReadDoc};
use cairn_model::{LoggedModelId, RunId, ShardId};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::{Catalog, TEAM_DOC, encode_heads, logged_models, project_team};
use crate::Error;
use crate::notebook_doc;
use crate::project;
use crate::run_doc::RunReader;

/// One doc and its current heads (sorted 32-byte change hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocHeads {
    pub name: String,
    pub heads: Vec<[u8; 32]>,
}

/// Automerge's sync state for one (peer, doc): what this device believes the peer has. Only
/// the part automerge persists (the heads both sides share) outlives a session.
#[derive(Debug)]
pub struct DocSyncState(State);

/// What one received sync message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncReceipt {
    /// True when the doc changed (new changes were applied and stored).
    pub changed: bool,
    /// Runs whose projection was rewritten.
    pub runs_projected: usize,
}

impl Catalog {
    /// Whether `name` can be a doc of a catalog: the team doc, a shard id or a notebook
    /// (`notebook/<id>`). Checked before a peer's message about a doc touches anything.
    pub fn is_doc_name(name: &str) -> bool {
        name == TEAM_DOC
            || name.parse::<ShardId>().is_ok_and(|s| s.to_string() == name)
            || notebook_doc::notebook_of(name).is_some()
    }

    /// The name of the team doc (roster, experiments, shard registry).
    pub fn team_doc_name() -> &'static str {
        TEAM_DOC
    }

    /// Every doc with its heads, sorted by name, read from `docs.heads` (a doc stored before
    /// heads were recorded is loaded once and its heads written back).
    pub fn doc_heads(&mut self) -> Result<Vec<DocHeads>, Error> {
        let rows: Vec<(String, Option<Vec<u8>>, bool)> = self
            .conn
            .prepare_cached(
                "SELECT id, heads, snapshot IS NOT NULL OR EXISTS (SELECT 1 FROM changes WHERE changes.doc = docs.id)
                 FROM docs ORDER BY id",
            )?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(rows.len());
        for (name, heads, has_data) in rows {
            let heads = match heads {
                Some(bytes) => decode_heads(&name, &bytes)?,
                None if !has_data => Vec::new(),
                None => {
                    let heads = self.with_doc_mut(&name, |doc| Ok(doc.get_heads()))?;
                    let encoded = encode_heads(&heads);
                    self.conn.execute(
                        "UPDATE docs SET heads = ?2 WHERE id = ?1",
                        params![name, encoded],
                    )?;
                    decode_heads(&name, &encoded)?
                }
            };
            out.push(DocHeads { name, heads });
        }
        Ok(out)
    }

    /// SQLite's `data_version`: changes whenever another connection commits to the catalog.
    /// A cheap poll for "someone wrote" (this handle's own writes do not change it).
    pub fn data_version(&self) -> Result<i64, Error> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }

    /// The persisted sync state of (`peer`, `doc`), or a fresh one.
    pub fn sync_state(&self, peer: &str, doc: &str) -> Result<DocSyncState, Error> {
        let bytes: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT state FROM sync_state WHERE peer = ?1 AND doc = ?2",
                params![peer, doc],
                |r| r.get(0),
            )
            .optional()?;
        Ok(DocSyncState(
            bytes
                .and_then(|b| State::decode(&b).ok())
                .unwrap_or_default(),
        ))
    }

    /// Forgets what this device believed `peer` has (every doc): the next sync starts from
    /// heads exchange again. Used when a peer's store was reset.
    pub fn forget_sync_state(&mut self, peer: &str) -> Result<(), Error> {
        self.conn
            .execute("DELETE FROM sync_state WHERE peer = ?1", [peer])?;
        Ok(())
    }

    /// The next automerge sync message for `doc` towards the peer `state` describes, if there
    /// is anything to say. An unknown doc is an empty one (its message asks for everything).
    pub fn sync_generate(
        &mut self,
        doc: &str,
        state: &mut DocSyncState,
    ) -> Result<Option<Vec<u8>>, Error> {
        if !Self::is_doc_name(doc) {
            return Err(bad_name(doc));
        }
        self.with_doc_mut(doc, |d| {
            Ok(d.sync()
                .generate_sync_message(&mut state.0)
                .map(Message::encode))
        })
    }

    /// Applies a sync message from `peer` about `doc`: merges its changes, stores them,
    /// re-projects the runs they touched (or the experiments and shard registry, for the team
    /// doc) and persists the sync state — one transaction. A message that does not decode or
    /// apply is an error and changes nothing.
    pub fn sync_receive(
        &mut self,
        peer: &str,
        doc: &str,
        state: &mut DocSyncState,
        message: &[u8],
    ) -> Result<SyncReceipt, Error> {
        if !Self::is_doc_name(doc) {
            return Err(bad_name(doc));
        }
        let message = Message::decode(message).map_err(|e| Error::Corrupt {
            doc: doc.to_owned(),
            reason: format!("sync message from {peer}: {e}"),
        })?;
        let is_team = doc == TEAM_DOC;
        let is_notebook = notebook_doc::notebook_of(doc).is_some();
        // Work on a copy of the state: automerge may have advanced it before failing.
        let mut next = state.0.clone();
        let (receipt, next) = self.write(
            doc,
            |d| {
                let before = d.get_heads();
                d.sync()
                    .receive_sync_message(&mut next, message)
                    .map_err(|e| Error::Corrupt {
                        doc: doc.to_owned(),
                        reason: format!("sync message from {peer}: {e}"),
                    })?;
                let after = d.get_heads();
                let changed = before != after;
                let (runs, models) = if !changed || is_team || is_notebook {
                    (None, Vec::new())
                } else if before.is_empty() {
                    // A doc that arrived whole: every model is projected below.
                    (Some(RunReader::new(d, doc).run_ids()?.into_iter().collect()), Vec::new())
                } else {
                    let (runs, models) = changed_keys(d, &before);
                    (Some(runs), models)
                };
                let whole = changed && !is_team && !is_notebook && before.is_empty();
                Ok((changed, runs, next, models, whole))
            },
            |tx, d, (changed, runs, next, models, whole)| {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO sync_state(peer, doc, state) VALUES (?1, ?2, ?3)",
                )?
                .execute(params![peer, doc, next.encode()])?;
                if !changed {
                    return Ok(());
                }
                if is_team {
                    return project_team(tx, d);
                }
                if is_notebook {
                    return notebook_doc::project(tx, d, doc);
                }
                let mut reader = RunReader::new(d, doc);
                let mut first_exp = None;
                for id in runs.iter().flatten() {
                    if let Some(run) = reader.run(*id)? {
                        first_exp.get_or_insert(run.experiment);
                        project::upsert_run(tx, &run, doc)?;
                    }
                }
                if *whole {
                    logged_models::project_shard(tx, d, doc)?;
                } else {
                    logged_models::project_models(tx, d, doc, models)?;
                }
                let count = d
                    .keys(automerge::ROOT)
                    .filter(|k| k.starts_with("run/"))
                    .count();
                tx.execute(
                    "UPDATE docs SET runs = ?2, experiment = coalesce(experiment, ?3) WHERE id = ?1",
                    params![doc, count as i64, first_exp.map(|e| e.to_string())],
                )?;
                Ok(())
            },
        )
        .map(|(changed, runs, next, _, _)| {
            (
                SyncReceipt {
                    changed,
                    runs_projected: runs.map_or(0, |r: BTreeSet<RunId>| r.len()),
                },
                next,
            )
        })?;
        state.0 = next;
        Ok(receipt)
    }

    /// Mutable access to an up-to-date doc outside a write (automerge's sync generator wants
    /// `&mut`; it does not change the doc's content).
    pub(crate) fn with_doc_mut<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut AutoCommit) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Deferred)?;
        Self::catch_up(&mut self.docs, &self.actor, &tx, name)?;
        tx.commit()?;
        let loaded = self.docs.get_mut(name).ok_or_else(|| Error::Corrupt {
            doc: name.to_owned(),
            reason: "not loaded".into(),
        })?;
        f(&mut loaded.doc)
    }
}

/// The runs (root keys `run/<id>`) and logged models (`lmodel/<id>`) that the changes since
/// `before` touched: every root key an op of theirs sits under. (Not the diff's patches: a
/// patch shows what became visible, and an op that arrives concurrent with a key already in
/// conflict, and loses, shows nothing new — yet the run's conflicts changed.)
fn changed_keys(
    doc: &mut AutoCommit,
    before: &[ChangeHash],
) -> (BTreeSet<RunId>, Vec<LoggedModelId>) {
    let mut out = BTreeSet::new();
    let mut models = BTreeSet::new();
    let mut roots: HashMap<LegacyObjectId, Option<String>> = HashMap::new();
    for change in doc.get_changes(before) {
        for op in change.decode().operations {
            let key = match (&op.obj, &op.key) {
                (LegacyObjectId::Root, LegacyKey::Map(k)) => Some(k.to_string()),
                (LegacyObjectId::Root, LegacyKey::Seq(_)) => None,
                (obj, _) => roots
                    .entry(obj.clone())
                    .or_insert_with(|| root_key(doc, obj))
                    .clone(),
            };
            if let Some(key) = key {
                note(&key, &mut out, &mut models);
            }
        }
    }
    (out, models.into_iter().collect())
}

/// Adds the run or logged model a root key names.
fn note(key: &str, runs: &mut BTreeSet<RunId>, models: &mut BTreeSet<LoggedModelId>) {
    if let Some(id) = key.strip_prefix("run/").and_then(|i| i.parse().ok()) {
        runs.insert(id);
    } else if let Some(id) = key.strip_prefix("lmodel/").and_then(|i| i.parse().ok()) {
        models.insert(id);
    }
}

/// The root key `obj` sits under (`run/<id>` for a run's maps and its notes' text).
fn root_key(doc: &AutoCommit, obj: &LegacyObjectId) -> Option<String> {
    let id = doc.import_obj(&obj.to_string()).ok()?;
    doc.object_type(&id).ok()?;
    match doc.parents(&id).ok()?.last()?.prop {
        Prop::Map(k) => Some(k),
        Prop::Seq(_) => None,
    }
}

fn decode_heads(doc: &str, bytes: &[u8]) -> Result<Vec<[u8; 32]>, Error> {
    if !bytes.len().is_multiple_of(32) {
        return Err(Error::Corrupt {
            doc: doc.to_owned(),
            reason: format!(
                "stored heads are {} bytes, not a multiple of 32",
                bytes.len()
            ),
        });
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

fn bad_name(doc: &str) -> Error {
    Error::Corrupt {
        doc: doc.to_owned(),
        reason: "not a catalog doc name (the team doc, a shard id or notebook/<id>)".into(),
    }
}
