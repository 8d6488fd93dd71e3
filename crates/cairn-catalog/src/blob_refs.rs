//! Which blobs the runs bind: `artifact_refs` (run, logical path, blob hash, file or directory),
//! a projection of every run's `artifacts` map written with the run's other projections.
//!
//! It answers "is this blob still referenced?" without loading a doc or parsing every run's
//! JSON: what sync offers to peers, what `cairn gc` may collect and which bindings a purge
//! tombstone unbinds. Like every projection it is derived from the docs and rebuilt with them.

use std::str::FromStr;

use cairn_model::{ArtifactKind, BlobHash, Run, RunId};
use rusqlite::{Connection, Transaction, params};

use crate::{Catalog, Error};

/// One binding of a blob to a run's logical path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobBinding {
    pub run: RunId,
    pub path: String,
    pub hash: BlobHash,
    pub kind: ArtifactKind,
    /// Whether the run is deleted (soft: it can be restored, and its bindings with it).
    pub run_deleted: bool,
}

pub(crate) fn create_table(tx: &Transaction<'_>) -> Result<(), Error> {
    let existed: bool = tx.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'artifact_refs'",
        [],
        |r| r.get::<_, i64>(0),
    )? > 0;
    tx.execute_batch(
        "
CREATE TABLE IF NOT EXISTS artifact_refs (
    run TEXT NOT NULL, path TEXT NOT NULL, hash TEXT NOT NULL, kind TEXT NOT NULL,
    live INTEGER NOT NULL,
    PRIMARY KEY (run, path)
) WITHOUT ROWID;
-- Covers `bound_blobs`: one pass over the index, no table row read.
CREATE INDEX IF NOT EXISTS artifact_refs_hash ON artifact_refs(hash, kind, live);
",
    )?;
    if !existed {
        // A catalog from before this table: fill it from the runs projection, once (the same
        // content `upsert` writes, read from the run JSON the projection already holds).
        tx.execute_batch(
            "
INSERT OR REPLACE INTO artifact_refs(run, path, hash, kind, live)
SELECT r.id, a.key, json_extract(a.value, '$.hash'), json_extract(a.value, '$.kind'),
       r.deleted = 0
FROM runs r, json_each(r.json, '$.artifacts') a
WHERE json_extract(a.value, '$.hash') IS NOT NULL;
",
        )?;
    }
    Ok(())
}

/// Rewrites `run`'s bindings (called wherever its projection row is written).
pub(crate) fn upsert(tx: &Transaction<'_>, run: &Run) -> Result<(), Error> {
    let id = run.id.to_string();
    tx.prepare_cached("DELETE FROM artifact_refs WHERE run = ?1")?
        .execute([&id])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO artifact_refs(run, path, hash, kind, live) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (path, r) in &run.artifacts {
        insert.execute(params![
            id,
            path,
            r.hash.to_hex(),
            kind_name(r.kind),
            !run.deleted
        ])?;
    }
    Ok(())
}

fn kind_name(kind: ArtifactKind) -> &'static str {
    match kind {
        ArtifactKind::File => "file",
        ArtifactKind::Dir => "dir",
    }
}

fn bindings(conn: &Connection, sql: &str, arg: Option<&str>) -> Result<Vec<BlobBinding>, Error> {
    let mut stmt = conn.prepare_cached(sql)?;
    let map = |r: &rusqlite::Row<'_>| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, bool>(4)?,
        ))
    };
    let rows = match arg {
        Some(a) => stmt.query_map([a], map)?.collect::<Result<Vec<_>, _>>()?,
        None => stmt.query_map([], map)?.collect::<Result<Vec<_>, _>>()?,
    };
    rows.into_iter()
        .map(|(run, path, hash, kind, run_deleted)| {
            let corrupt = |what: &str, value: &str| Error::Corrupt {
                doc: "artifact_refs".into(),
                reason: format!("{what} '{value}' of run {run} is malformed"),
            };
            Ok(BlobBinding {
                run: RunId::from_str(&run).map_err(|_| corrupt("run id", &run))?,
                hash: BlobHash::from_str(&hash).map_err(|_| corrupt("blob hash", &hash))?,
                kind: match kind.as_str() {
                    "file" => ArtifactKind::File,
                    "dir" => ArtifactKind::Dir,
                    other => return Err(corrupt("artifact kind", other)),
                },
                path,
                run_deleted,
            })
        })
        .collect()
}

const SELECT: &str = "SELECT run, path, hash, kind, live = 0 FROM artifact_refs";

/// One bound blob, over all its bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoundBlob {
    pub hash: BlobHash,
    /// Bound as a directory (its manifest) somewhere.
    pub dir: bool,
    /// Bound by a run that is not deleted.
    pub live: bool,
}

impl Catalog {
    /// Every artifact binding of every run (deleted runs included, flagged), sorted by hash.
    pub fn blob_bindings(&self) -> Result<Vec<BlobBinding>, Error> {
        bindings(
            self.conn(),
            &format!("{SELECT} ORDER BY hash, run, path"),
            None,
        )
    }

    /// The bindings of one blob, in any run (deleted runs included, flagged).
    pub fn bindings_of_blob(&self, hash: &BlobHash) -> Result<Vec<BlobBinding>, Error> {
        bindings(
            self.conn(),
            &format!("{SELECT} WHERE hash = ?1 ORDER BY run, path"),
            Some(&hash.to_hex()),
        )
    }

    /// Every bound blob once, sorted by hash: whether a live run binds it and whether it is
    /// bound as a directory. (What sync offers and `gc` keeps is computed from this.)
    pub fn bound_blobs(&self) -> Result<Vec<BoundBlob>, Error> {
        // Logged models' files count as the runs' do.
        let mut stmt = self.conn().prepare_cached(&format!(
            "SELECT hash, max(dir), max(live) FROM (
                SELECT hash, kind = 'dir' AS dir, live FROM artifact_refs
                UNION ALL {}
             ) GROUP BY hash ORDER BY hash",
            crate::logged_model_project::BOUND_BLOBS_SQL
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, bool>(2)?,
            ))
        })?;
        rows.map(|row| {
            let (hash, dir, live) = row?;
            Ok(BoundBlob {
                hash: BlobHash::from_str(&hash).map_err(|_| Error::Corrupt {
                    doc: "artifact_refs".into(),
                    reason: format!("blob hash '{hash}' is malformed"),
                })?,
                dir,
                live,
            })
        })
        .collect()
    }
}
