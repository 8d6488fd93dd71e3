//! Notebooks (issue #17): each one its own automerge doc, `notebook/<id>`, beside the team doc
//! and the shards, so peer sync carries it like them and a session sends only the changes a
//! peer lacks of the notebooks that differ — an edit costs its own size, not the notebook's.
//!
//! The doc's root: `title`, `experiment` (absent when free-standing), `created_ms`,
//! `created_by`, `updated_ms`, `updated_by` (scalars: concurrent writes keep one, the same on
//! every peer), `owners` and `tags` (maps of name → true, so two people adding a tag each keep
//! both) and `text`, an automerge Text: an edit applies the difference between the old and new
//! text (`update_text`), so two people typing in one notebook offline both keep their words.
//!
//! The `notebooks` table projects every notebook without its text (what a listing reads), and
//! `notebook_text` (SQLite FTS5) indexes its title, tags, owners and text for search; both are
//! written in the transaction that writes the doc, or that receives a peer's changes, so a
//! notebook is findable by its words the moment it is stored, wherever it was written.

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ChangeHash, ObjId, ObjType, ReadDoc, ScalarValue, Value};
use cairn_model::ExperimentId;
use cairn_model::NotebookId;
use cairn_model::notebook::{Notebook, NotebookMeta};
use rusqlite::{OptionalExtension, Transaction, params};

use crate::Error;

const PREFIX: &str = "notebook/";

/// The doc that holds notebook `id`.
pub(crate) fn doc_name(id: NotebookId) -> String {
    format!("{PREFIX}{id}")
}

/// The notebook a doc name names, when it names one (in its one spelling).
pub(crate) fn notebook_of(name: &str) -> Option<NotebookId> {
    let id: NotebookId = name.strip_prefix(PREFIX)?.parse().ok()?;
    (id.to_string() == name[PREFIX.len()..]).then_some(id)
}

/// One change to a notebook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotebookEdit {
    Title(String),
    /// The whole new text: what differs from the stored text is spliced in.
    Text(String),
    /// The whole new text as edited from the version `base` (heads, hex): what differs from
    /// the text at `base` is spliced in there and merged, so what others wrote since stays.
    TextFrom {
        base: Vec<String>,
        text: String,
    },
    AddTag(String),
    RemoveTag(String),
    AddOwner(String),
    RemoveOwner(String),
    Experiment(Option<ExperimentId>),
}

pub(crate) fn create_table(tx: &Transaction<'_>) -> Result<(), Error> {
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS notebooks(
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            experiment TEXT,
            owners TEXT NOT NULL,
            tags TEXT NOT NULL,
            created_ms INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            updated_ms INTEGER NOT NULL,
            updated_by TEXT NOT NULL,
            bytes INTEGER NOT NULL
        );
        CREATE INDEX IF NOT EXISTS notebooks_updated ON notebooks(updated_ms DESC);
        CREATE VIRTUAL TABLE IF NOT EXISTS notebook_text USING fts5(
            id UNINDEXED, title, tags, owners, body,
            tokenize = 'unicode61 remove_diacritics 2'
        );",
    )?;
    Ok(())
}

/// Writes a fresh notebook into an empty doc.
pub(crate) fn write_new(doc: &mut AutoCommit, name: &str, nb: &Notebook) -> Result<(), Error> {
    let err = Error::automerge(name);
    let m = &nb.meta;
    let root = automerge::ROOT;
    (|| {
        doc.put(&root, "id", m.id.to_string())?;
        doc.put(&root, "title", m.title.as_str())?;
        if let Some(e) = m.experiment {
            doc.put(&root, "experiment", e.to_string())?;
        }
        doc.put(&root, "created_ms", m.created_ms)?;
        doc.put(&root, "created_by", m.created_by.as_str())?;
        doc.put(&root, "updated_ms", m.updated_ms)?;
        doc.put(&root, "updated_by", m.updated_by.as_str())?;
        let owners = doc.put_object(&root, "owners", ObjType::Map)?;
        for o in &m.owners {
            doc.put(&owners, o.as_str(), true)?;
        }
        let tags = doc.put_object(&root, "tags", ObjType::Map)?;
        for t in &m.tags {
            doc.put(&tags, t.as_str(), true)?;
        }
        let text = doc.put_object(&root, "text", ObjType::Text)?;
        doc.splice_text(&text, 0, 0, &nb.text)?;
        Ok(())
    })()
    .map_err(err)
}

/// Applies `edits` and stamps who and when.
pub(crate) fn apply(
    doc: &mut AutoCommit,
    name: &str,
    edits: &[NotebookEdit],
    by: &str,
    at_ms: i64,
) -> Result<(), Error> {
    let root = automerge::ROOT;
    for edit in edits {
        match edit {
            NotebookEdit::Title(t) => doc.put(&root, "title", t.as_str()),
            NotebookEdit::Text(t) => {
                let text = text_obj(doc, name)?;
                doc.update_text(&text, t.as_str())
            }
            NotebookEdit::TextFrom { base, text } => {
                let heads = base
                    .iter()
                    .map(|h| h.parse::<ChangeHash>())
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|_| Error::UnknownVersion {
                        doc: name.to_owned(),
                        heads: base.join(","),
                    })?;
                if heads.iter().any(|h| doc.get_change_by_hash(h).is_none()) {
                    return Err(Error::UnknownVersion {
                        doc: name.to_owned(),
                        heads: base.join(","),
                    });
                }
                let mut sorted = heads.clone();
                sorted.sort();
                if sorted == doc.get_heads() {
                    // Nothing arrived since it was read (the usual case): no fork needed.
                    let obj = text_obj(doc, name)?;
                    doc.update_text(&obj, text.as_str())
                        .map_err(Error::automerge(name))?;
                    continue;
                }
                // The edit is made on the version it was made from, under a fresh actor (a
                // fork at older heads cannot continue this handle's sequence), then merged.
                let mut fork = doc.fork_at(&heads).map_err(Error::automerge(name))?;
                fork.set_author(doc.get_author().cloned());
                let obj = match fork.get(&root, "text").map_err(Error::automerge(name))? {
                    Some((Value::Object(ObjType::Text), id)) => id,
                    _ => fork
                        .put_object(&root, "text", ObjType::Text)
                        .map_err(Error::automerge(name))?,
                };
                fork.update_text(&obj, text.as_str())
                    .map_err(Error::automerge(name))?;
                fork.commit_with(automerge::transaction::CommitOptions::default().with_time(at_ms));
                doc.merge(&mut fork).map(drop)
            }
            NotebookEdit::AddTag(t) => {
                let m = map(doc, name, "tags")?;
                doc.put(&m, t.as_str(), true)
            }
            NotebookEdit::RemoveTag(t) => match existing_map(doc, "tags") {
                Some(m) => doc.delete(&m, t.as_str()),
                None => Ok(()),
            },
            NotebookEdit::AddOwner(o) => {
                let m = map(doc, name, "owners")?;
                doc.put(&m, o.as_str(), true)
            }
            NotebookEdit::RemoveOwner(o) => match existing_map(doc, "owners") {
                Some(m) => doc.delete(&m, o.as_str()),
                None => Ok(()),
            },
            NotebookEdit::Experiment(Some(e)) => doc.put(&root, "experiment", e.to_string()),
            NotebookEdit::Experiment(None) => doc.delete(&root, "experiment"),
        }
        .map_err(Error::automerge(name))?;
    }
    doc.put(&root, "updated_ms", at_ms)
        .and_then(|()| doc.put(&root, "updated_by", by))
        .map_err(Error::automerge(name))
}

/// The text object, made when a doc lacks one (a peer's doc of another shape).
fn text_obj(doc: &mut AutoCommit, name: &str) -> Result<ObjId, Error> {
    match doc
        .get(automerge::ROOT, "text")
        .map_err(Error::automerge(name))?
    {
        Some((Value::Object(ObjType::Text), id)) => Ok(id),
        _ => doc
            .put_object(automerge::ROOT, "text", ObjType::Text)
            .map_err(Error::automerge(name)),
    }
}

fn existing_map(doc: &AutoCommit, key: &str) -> Option<ObjId> {
    match doc.get(automerge::ROOT, key) {
        Ok(Some((Value::Object(ObjType::Map), id))) => Some(id),
        _ => None,
    }
}

fn map(doc: &mut AutoCommit, name: &str, key: &str) -> Result<ObjId, Error> {
    match existing_map(doc, key) {
        Some(id) => Ok(id),
        None => doc
            .put_object(automerge::ROOT, key, ObjType::Map)
            .map_err(Error::automerge(name)),
    }
}

fn scalar(doc: &AutoCommit, key: &str) -> Option<ScalarValue> {
    match doc.get(automerge::ROOT, key) {
        Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
        _ => None,
    }
}

fn string(doc: &AutoCommit, key: &str) -> String {
    scalar(doc, key)
        .and_then(|s| s.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn int(doc: &AutoCommit, key: &str) -> i64 {
    match scalar(doc, key) {
        Some(ScalarValue::Int(i)) => i,
        Some(ScalarValue::Uint(u)) => i64::try_from(u).unwrap_or(i64::MAX),
        Some(ScalarValue::Timestamp(t)) => t,
        _ => 0,
    }
}

fn keys(doc: &AutoCommit, key: &str) -> Vec<String> {
    // Map keys come sorted.
    existing_map(doc, key)
        .map(|m| doc.keys(&m).collect())
        .unwrap_or_default()
}

/// The notebook as the doc holds it. A doc that came from a peer is read leniently: a missing
/// or mistyped field reads as empty rather than failing every listing.
pub(crate) fn read(doc: &AutoCommit, id: NotebookId) -> Result<Notebook, Error> {
    let text = match doc.get(automerge::ROOT, "text") {
        Ok(Some((Value::Object(ObjType::Text), obj))) => {
            doc.text(&obj).map_err(Error::automerge(&doc_name(id)))?
        }
        _ => String::new(),
    };
    let meta = NotebookMeta {
        id,
        title: string(doc, "title"),
        owners: keys(doc, "owners"),
        tags: keys(doc, "tags"),
        experiment: string(doc, "experiment").parse().ok(),
        created_ms: int(doc, "created_ms"),
        created_by: string(doc, "created_by"),
        updated_ms: int(doc, "updated_ms"),
        updated_by: string(doc, "updated_by"),
        bytes: text.len() as u64,
    };
    // The heads are the caller's to fill in: reading them takes `&mut` (automerge closes an
    // open transaction first).
    Ok(Notebook {
        meta,
        text,
        heads: Vec::new(),
    })
}

/// Rewrites the notebook's row from its doc.
pub(crate) fn project(tx: &Transaction<'_>, doc: &AutoCommit, name: &str) -> Result<(), Error> {
    let Some(id) = notebook_of(name) else {
        return Ok(());
    };
    let nb = read(doc, id)?;
    let m = nb.meta;
    let json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    tx.prepare_cached("DELETE FROM notebook_text WHERE id = ?1")?
        .execute([id.to_string()])?;
    tx.prepare_cached(
        "INSERT INTO notebook_text(id, title, tags, owners, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id.to_string(),
        m.title,
        m.tags.join(" "),
        m.owners.join(" "),
        nb.text
    ])?;
    tx.prepare_cached(
        "INSERT OR REPLACE INTO notebooks(id, title, experiment, owners, tags, created_ms,
            created_by, updated_ms, updated_by, bytes) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        id.to_string(),
        m.title,
        m.experiment.map(|e| e.to_string()),
        json(&m.owners),
        json(&m.tags),
        m.created_ms,
        m.created_by,
        m.updated_ms,
        m.updated_by,
        m.bytes as i64,
    ])?;
    Ok(())
}

fn meta_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(String, NotebookMeta)> {
    let id: String = r.get(0)?;
    let experiment: Option<String> = r.get(2)?;
    let owners: String = r.get(3)?;
    let tags: String = r.get(4)?;
    Ok((
        id.clone(),
        NotebookMeta {
            id: id.parse().unwrap_or_default(),
            title: r.get(1)?,
            experiment: experiment.and_then(|e| e.parse().ok()),
            owners: serde_json::from_str(&owners).unwrap_or_default(),
            tags: serde_json::from_str(&tags).unwrap_or_default(),
            created_ms: r.get(5)?,
            created_by: r.get(6)?,
            updated_ms: r.get(7)?,
            updated_by: r.get(8)?,
            bytes: r.get::<_, i64>(9)?.max(0) as u64,
        },
    ))
}

const COLUMNS: &str =
    "id, title, experiment, owners, tags, created_ms, created_by, updated_ms, updated_by, bytes";

/// Every notebook, most recently updated first.
pub(crate) fn list(conn: &rusqlite::Connection) -> Result<Vec<NotebookMeta>, Error> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM notebooks ORDER BY updated_ms DESC, id DESC"
    ))?;
    let rows = stmt.query_map([], meta_row)?;
    let mut out = Vec::new();
    for row in rows {
        let (raw, meta) = row?;
        if meta.id.to_string() != raw {
            return Err(Error::Corrupt {
                doc: "notebooks".into(),
                reason: format!("notebook id '{raw}' in the notebooks table is malformed"),
            });
        }
        out.push(meta);
    }
    Ok(out)
}

/// The longest search query for notebooks, in bytes.
pub const MAX_NOTEBOOK_QUERY: usize = 1_000;
/// The most terms a notebook search query holds.
pub const MAX_NOTEBOOK_QUERY_TERMS: usize = 32;

/// One notebook a search found: its listing and a few words of its text around a match.
#[derive(Debug, Clone, PartialEq)]
pub struct NotebookHit {
    pub meta: NotebookMeta,
    pub snippet: String,
}

/// A user's notebook query as an FTS5 expression: words (each a prefix, all required), quoted
/// phrases (`"learning rate"`), and `title:`, `tag:`, `owner:` to look in one field only. Every
/// term is quoted for FTS5, so no character of the query is FTS5 syntax; a query with no term
/// (empty, or only punctuation) is `None`.
pub fn notebook_match(query: &str) -> Result<Option<String>, Error> {
    if query.len() > MAX_NOTEBOOK_QUERY {
        return Err(Error::BadQuery(format!(
            "a notebook search is at most {MAX_NOTEBOOK_QUERY} bytes; this one is {}",
            query.len()
        )));
    }
    let mut terms = Vec::new();
    let mut rest = query.trim();
    while !rest.is_empty() {
        let (field, after) = match rest.split_once(':') {
            Some((f, a)) if matches!(f, "title" | "tag" | "owner") => (Some(f), a),
            _ => (None, rest),
        };
        let (words, exact, tail) = if let Some(quoted) = after.strip_prefix('"') {
            match quoted.split_once('"') {
                Some((phrase, tail)) => (phrase, true, tail),
                None => (quoted, true, ""),
            }
        } else {
            match after.split_once(char::is_whitespace) {
                Some((w, tail)) => (w, false, tail),
                None => (after, false, ""),
            }
        };
        rest = tail.trim_start();
        // What FTS5's tokenizer would keep of it: letters and digits, joined by spaces.
        let cleaned: Vec<&str> = words
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        if cleaned.is_empty() {
            continue;
        }
        let column = match field {
            Some("title") => "title : ",
            Some("tag") => "tags : ",
            Some("owner") => "owners : ",
            _ => "",
        };
        let phrase = cleaned.join(" ");
        // A bare word matches as a prefix (`warm` finds `warmup`); a phrase matches as written.
        let star = if exact { "" } else { "*" };
        terms.push(format!("{column}\"{phrase}\"{star}"));
        if terms.len() > MAX_NOTEBOOK_QUERY_TERMS {
            return Err(Error::BadQuery(format!(
                "a notebook search holds at most {MAX_NOTEBOOK_QUERY_TERMS} terms"
            )));
        }
    }
    Ok((!terms.is_empty()).then(|| terms.join(" AND ")))
}

/// The notebooks whose title, tags, owners or text match `query`, best first (BM25, the
/// title weighing most), at most `limit`.
pub(crate) fn search(
    conn: &rusqlite::Connection,
    query: &str,
    limit: usize,
) -> Result<Vec<NotebookHit>, Error> {
    let Some(expr) = notebook_match(query)? else {
        return Ok(list(conn)?
            .into_iter()
            .take(limit)
            .map(|meta| NotebookHit {
                meta,
                snippet: String::new(),
            })
            .collect());
    };
    let columns: String = COLUMNS
        .split(", ")
        .map(|c| format!("n.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {columns}, snippet(notebook_text, 4, '', '', '…', 16)
         FROM notebook_text t JOIN notebooks n ON n.id = t.id
         WHERE notebook_text MATCH ?1
         ORDER BY bm25(notebook_text, 0.0, 10.0, 5.0, 2.0, 1.0), n.updated_ms DESC
         LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![expr, limit as i64], |r| {
        let (_, meta) = meta_row(r)?;
        Ok(NotebookHit {
            meta,
            snippet: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether the notebook's doc exists.
pub(crate) fn exists(conn: &rusqlite::Connection, id: NotebookId) -> Result<bool, Error> {
    Ok(conn
        .query_row("SELECT 1 FROM docs WHERE id = ?1", [doc_name(id)], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_names_round_trip_in_one_spelling() {
        let id = NotebookId::new();
        assert_eq!(notebook_of(&doc_name(id)), Some(id));
        assert_eq!(notebook_of(&doc_name(id).to_uppercase()), None);
        assert_eq!(notebook_of("notebook/"), None);
        assert_eq!(notebook_of("team"), None);
        assert_eq!(notebook_of(&id.to_string()), None);
    }
}
