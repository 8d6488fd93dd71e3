//! A run's history, read from its shard doc's automerge changes: each field a change touched,
//! the value before and after, the change's author (the device that wrote it) and its time.
//!
//! Every change Cairn commits names its author, the writing device's ed25519 key, in the change
//! itself ([`Catalog::set_author`]), so a peer that receives the change can name its writer from
//! the roster, however it got the change. Changes written before authors were recorded fall
//! back to this workspace's local `actors` table (which names only the handles opened here).

use std::collections::HashMap;

use automerge::legacy::{ObjectId as LegacyObjectId, OpId};
use automerge::{Automerge, ChangeHash, ObjId, PatchAction, Prop, ReadDoc, ScalarValue, Value};
use cairn_model::RunId;

use super::Catalog;
use crate::Error;
use crate::run_doc::run_key;

/// The most of one value a history entry carries (a long note is cut, marked with `…`).
pub const MAX_HISTORY_VALUE: usize = 2048;

/// The run maps whose entries change as data flows rather than by anyone's edit: a metric's
/// summary follows its series (whose own history is the series).
const UNTRACKED_MAPS: [&str; 1] = ["metrics"];

/// The run's notes: a text (a string in runs written before notes were text).
const NOTES: &str = "notes";

/// One field one change set or removed.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldChange {
    /// When the change was committed (ms since the epoch); 0 when it did not say.
    pub at_ms: i64,
    /// The change's automerge actor (hex).
    pub actor: String,
    /// The device (its key, hex) the change names as its author.
    pub device: Option<String>,
    /// Who opened the writing handle, from this workspace's `actors` table, when the change
    /// names no author.
    pub writer: Option<String>,
    /// `name`, `status`, `notes`, …; an entry of a map as `params.lr`, `tags.team`; `run` for
    /// the change that created the run.
    pub field: String,
    /// The value before the change (`None`: the field was not set).
    pub old: Option<String>,
    /// The value after it (`None`: removed).
    pub new: Option<String>,
    /// Another change set the same field concurrently: this value is one side of a conflict.
    pub conflict: bool,
}

impl Catalog {
    /// Every field change of run `id`, oldest first (the changes in causal order): what was
    /// set, from what, by which device, when. Metric summaries are left out.
    pub fn run_history(&mut self, id: RunId) -> Result<Vec<FieldChange>, Error> {
        let shard = self.shard_of(id)?;
        let tx = self.conn.transaction()?;
        Self::catch_up(&mut self.docs, &self.actor, &tx, &shard)?;
        tx.commit()?;
        let writers: HashMap<String, String> = self
            .conn
            .prepare("SELECT actor, writer FROM actors")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let loaded = self.docs.get_mut(&shard).ok_or_else(|| Error::Corrupt {
            doc: shard.clone(),
            reason: "not loaded".into(),
        })?;
        history_of(loaded.doc.document(), &shard, &run_key(id), &writers)
    }
}

fn history_of(
    doc: &Automerge,
    shard: &str,
    key: &str,
    writers: &HashMap<String, String>,
) -> Result<Vec<FieldChange>, Error> {
    let run = match doc
        .get(automerge::ROOT, key)
        .map_err(Error::automerge(shard))?
    {
        Some((Value::Object(_), obj)) => obj,
        _ => return Ok(Vec::new()),
    };
    let created = doc.hash_for_opid(&run);
    // The objects a change must touch to change a field: the run and its maps (metric
    // summaries apart). Diffing the run at every change of the shard costs a pass over the
    // change graph each (a shard of 4,000 changes: ~1 s); reading each change's ops first
    // leaves the diff to the changes that touched the run.
    let mut watched = vec![legacy_id(&run)];
    for key in doc.keys(&run) {
        if UNTRACKED_MAPS.contains(&key.as_str()) {
            continue;
        }
        // Every value, not only the shown one: two devices that made a run's notes text
        // concurrently left two texts under `notes`.
        for (value, id) in doc
            .get_all(&run, key.as_str())
            .map_err(Error::automerge(shard))?
        {
            if let Value::Object(_) = value {
                watched.push(legacy_id(&id));
            }
        }
    }
    let touched: std::collections::HashSet<ChangeHash> = doc
        .get_changes(&[])
        .into_iter()
        .filter(|c| {
            c.decode()
                .operations
                .iter()
                .any(|op| watched.contains(&op.obj))
        })
        .map(|c| c.hash())
        .collect();
    let mut out = Vec::new();
    for meta in doc.get_changes_meta(&[]) {
        if Some(meta.hash) != created && !touched.contains(&meta.hash) {
            continue;
        }
        let actor = meta.actor.to_hex_string();
        let device = meta.author.as_ref().map(|a| hex(a.as_bytes()));
        let writer = match device {
            Some(_) => None,
            None => writers.get(&actor).cloned(),
        };
        let entry = |field: String, old, new, conflict| FieldChange {
            at_ms: meta.timestamp,
            actor: actor.clone(),
            device: device.clone(),
            writer: writer.clone(),
            field,
            old,
            new,
            conflict,
        };
        if Some(meta.hash) == created {
            out.push(entry("run".into(), None, Some("created".into()), false));
            continue;
        }
        let after = [meta.hash];
        let patches = doc
            .diff_obj(&run, &meta.deps, &after, true)
            .map_err(Error::automerge(shard))?;
        let mut notes_seen = false;
        for patch in patches {
            // The path from the run down to the patched object: empty for the run's own fields.
            let within: Vec<String> = patch
                .path
                .iter()
                .skip_while(|(obj, _)| *obj != run)
                .map(|(_, prop)| match prop {
                    Prop::Map(k) => k.clone(),
                    Prop::Seq(i) => i.to_string(),
                })
                .collect();
            let (key, new, conflict) = match patch.action {
                PatchAction::PutMap {
                    key,
                    value,
                    conflict,
                } => (key, Some(show(&value.0)), conflict),
                PatchAction::DeleteMap { key } => (key, None, false),
                // Splices of the notes' text.
                _ if within.first().is_some_and(|k| k == NOTES) => (NOTES.into(), None, false),
                _ => continue,
            };
            // Notes (a text, or a string before notes were text) are one entry per change:
            // the whole notes before it and after it, however many splices it made.
            if within.first().is_some_and(|k| k == NOTES) || (within.is_empty() && key == NOTES) {
                if !notes_seen {
                    notes_seen = true;
                    let old = notes_at(doc, &run, &meta.deps);
                    let new = notes_at(doc, &run, &after);
                    if old != new {
                        out.push(entry(NOTES.into(), old, new, conflict));
                    }
                }
                continue;
            }
            if within
                .first()
                .is_some_and(|m| UNTRACKED_MAPS.contains(&m.as_str()))
            {
                continue;
            }
            let old = old_value(doc, &patch.obj, &key, &meta.deps);
            if old == new {
                continue;
            }
            let mut field = within;
            field.push(key);
            // An evaluation's slice keys hold a unit separator: shown as ` / `.
            out.push(entry(
                field.join(".").replace('\u{1f}', " / "),
                old,
                new,
                conflict,
            ));
        }
    }
    Ok(out)
}

/// An object's id as a decoded change names it.
fn legacy_id(obj: &ObjId) -> LegacyObjectId {
    match obj {
        ObjId::Root => LegacyObjectId::Root,
        ObjId::Id(counter, actor, _) => LegacyObjectId::Id(OpId(*counter, actor.clone())),
    }
}

fn old_value(doc: &Automerge, obj: &ObjId, key: &str, heads: &[ChangeHash]) -> Option<String> {
    if heads.is_empty() {
        return None;
    }
    match doc.get_at(obj, key, heads) {
        Ok(Some((value, _))) => Some(show(&value)),
        _ => None,
    }
}

/// The run's notes as of `heads` (`None`: the run had none then).
fn notes_at(doc: &Automerge, run: &ObjId, heads: &[ChangeHash]) -> Option<String> {
    if heads.is_empty() {
        return None;
    }
    match doc.get_at(run, NOTES, heads) {
        Ok(Some((Value::Object(automerge::ObjType::Text), id))) => {
            doc.text_at(&id, heads).ok().map(clip)
        }
        Ok(Some((value, _))) => Some(show(&value)),
        _ => None,
    }
}

fn show(value: &Value<'_>) -> String {
    let text = match value {
        Value::Object(t) => format!("({t})"),
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(s) => s.to_string(),
            ScalarValue::Bytes(b) => format!("({} bytes)", b.len()),
            ScalarValue::Null => "null".into(),
            other => other.to_string(),
        },
    };
    clip(text)
}

fn clip(mut text: String) -> String {
    if text.len() > MAX_HISTORY_VALUE {
        let mut end = MAX_HISTORY_VALUE;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}
