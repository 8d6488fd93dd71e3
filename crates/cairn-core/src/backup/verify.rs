//! `verify`: every stored thing checked against what it claims to be — each blob against its
//! BLAKE3 name, each metric series decoded (every sealed chunk against its BLAKE3) and counted,
//! each automerge doc loaded, the projection tables compared with a fresh projection of the
//! docs, the audit chains checked as `cairn audit verify` checks them. `repair` rebuilds what
//! is derived (projections, the search index) and never touches the source of truth.
//!
//! The projections are compared on a copy: the catalog is copied with SQLite's backup API,
//! the copy re-projected from its docs (and the metric store's live summaries, as
//! `rebuild_projections` does), and each projection table compared row by row with the stored
//! one. A workspace written to while it is verified may show rows that changed in between;
//! run it again on a quiet workspace before acting on a projection finding.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use cairn_catalog::{Catalog, RunFilter};
use cairn_model::MetricSummary;

use crate::{Error, Stores, Workspace};

/// The projection tables compared with the docs (run costs are caught up lazily, not compared).
const PROJECTIONS: &[&str] = &[
    "experiments",
    "runs",
    "params",
    "tags",
    "run_metrics",
    "project_schema",
    "run_evals",
    "run_fairness",
    "artifact_refs",
    "logged_models",
    "logged_model_params",
    "logged_model_tags",
    "logged_model_metrics",
    "logged_model_runs",
    "logged_model_artifacts",
];
/// Columns that are bookkeeping, not content: the change counter a projection write stamps, the
/// run's row id (`params`, `tags` and `run_metrics` are compared through their views, by run id
/// and key name).
const NOT_CONTENT: &[&str] = &["changed_seq", "rid"];
/// The most findings listed per projection table and direction (all are counted).
const MAX_ROWS_LISTED: usize = 20;
/// The most problems a report lists in all (all are counted).
const MAX_PROBLEMS: usize = 1_000;

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Problem {
    /// `blob`, `metrics`, `catalog`, `projection` or `audit`.
    pub area: String,
    /// What it concerns: a blob hash, `run/key`, a doc, `table (key)`, a chain or record.
    pub subject: String,
    pub detail: String,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct VerifyReport {
    /// No problem found.
    pub ok: bool,
    pub blobs: u64,
    /// Blobs a run or model binds that are not stored here (a teammate's large artifact not
    /// yet fetched, or lost): listed in `notes`, not a problem by themselves.
    pub blobs_missing: u64,
    pub series: u64,
    pub points: u64,
    /// Series of runs the catalog does not hold (a backup's metric store is copied after its
    /// catalog, so runs created in between leave these): a note, not a problem.
    pub orphan_series: u64,
    pub docs: u64,
    pub runs: u64,
    pub projection_rows: u64,
    pub audit_events: u64,
    pub audit_chains: u64,
    /// Problems by area → how many (the list below stops at 1,000).
    pub counts: std::collections::BTreeMap<String, u64>,
    pub problems: Vec<Problem>,
    pub notes: Vec<String>,
    /// What `repair` rebuilt (empty for a plain verify).
    pub repaired: Vec<String>,
    pub seconds: f64,
}

impl VerifyReport {
    fn problem(&mut self, area: &str, subject: impl Into<String>, detail: impl Into<String>) {
        *self.counts.entry(area.to_owned()).or_default() += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem {
                area: area.to_owned(),
                subject: subject.into(),
                detail: detail.into(),
            });
        }
    }

    fn finish(&mut self, started: Instant) {
        self.ok = self.counts.values().all(|n| *n == 0);
        self.seconds = started.elapsed().as_secs_f64();
    }
}

static SCRATCH: AtomicU64 = AtomicU64::new(0);

impl Stores {
    /// Checks everything stored; see the module doc.
    pub(crate) fn verify(&mut self) -> Result<VerifyReport, Error> {
        let started = Instant::now();
        let mut r = VerifyReport::default();
        self.verify_blobs(&mut r)?;
        self.verify_metrics(&mut r)?;
        self.verify_projections(&mut r)?;
        self.verify_audit(&mut r)?;
        r.finish(started);
        Ok(r)
    }

    fn verify_blobs(&mut self, r: &mut VerifyReport) -> Result<(), Error> {
        let store = self.blob_store();
        let listed = store.list()?;
        let stored: HashSet<_> = listed.iter().map(|(h, _)| *h).collect();
        for (hash, _) in &listed {
            r.blobs += 1;
            if let Err(e) = store.verify(hash) {
                r.problem("blob", hash.to_hex(), e.to_string());
            }
        }
        for bound in self.catalog().bound_blobs()? {
            if !stored.contains(&bound.hash) {
                r.blobs_missing += 1;
                if r.blobs_missing <= MAX_ROWS_LISTED as u64 {
                    r.notes.push(format!(
                        "blob {} is bound but not stored here",
                        bound.hash.to_hex()
                    ));
                }
            }
        }
        Ok(())
    }

    fn verify_metrics(&mut self, r: &mut VerifyReport) -> Result<(), Error> {
        let runs: HashSet<String> = self
            .catalog()
            .list_runs(&RunFilter {
                include_deleted: true,
                ..Default::default()
            })?
            .into_iter()
            .map(|row| row.id.to_string())
            .collect();
        for mark in self.metrics().series_marks()? {
            r.series += 1;
            if !runs.contains(&mark.run) {
                r.orphan_series += 1;
            }
            match self.metrics().history(&mark.run, &mark.key) {
                Ok(points) => {
                    r.points += points.len() as u64;
                    if points.len() as u64 != mark.count {
                        r.problem(
                            "metrics",
                            format!("{}/{}", mark.run, mark.key),
                            format!(
                                "the series says {} points, {} could be read",
                                mark.count,
                                points.len()
                            ),
                        );
                    }
                }
                Err(e) => r.problem(
                    "metrics",
                    format!("{}/{}", mark.run, mark.key),
                    e.to_string(),
                ),
            }
        }
        if r.orphan_series > 0 {
            r.notes.push(format!(
                "{} metric series belong to runs the catalog does not hold",
                r.orphan_series
            ));
        }
        Ok(())
    }

    fn verify_projections(&mut self, r: &mut VerifyReport) -> Result<(), Error> {
        r.docs = self.catalog().doc_names()?.len() as u64;
        let scratch = Scratch::new(self.dir())?;
        let copy = scratch.0.join("catalog.db");
        super::snapshot_db(&self.dir().join("catalog.db"), &copy)?;
        {
            let mut fresh = Catalog::open(&copy, "verify")?;
            match fresh.rebuild_projections() {
                Ok(n) => r.runs = n,
                Err(e) => {
                    r.problem(
                        "catalog",
                        "docs",
                        format!("a doc does not load or project: {e}"),
                    );
                    return Ok(());
                }
            }
            let rows = fresh.list_runs(&RunFilter {
                include_deleted: true,
                ..Default::default()
            })?;
            for row in rows {
                let live: Vec<(String, MetricSummary)> =
                    self.live_metrics(row.id)?.into_iter().collect();
                if !live.is_empty() {
                    fresh.project_metric_summaries(row.id, &live)?;
                }
            }
        }
        compare_projections(&copy, &self.dir().join("catalog.db"), r)
    }

    fn verify_audit(&mut self, r: &mut VerifyReport) -> Result<(), Error> {
        let v = self.audit_verify()?;
        r.audit_events = v.events;
        r.audit_chains = v.chains;
        for (problem, n) in &v.counts {
            *r.counts.entry("audit".into()).or_default() += n;
            if v.findings.is_empty() {
                r.problems.push(Problem {
                    area: "audit".into(),
                    subject: problem.clone(),
                    detail: format!("{n} findings"),
                });
            }
        }
        for f in v.findings {
            if r.problems.len() < MAX_PROBLEMS {
                let subject = match f.seq {
                    Some(seq) => format!("{}#{seq}", f.subject),
                    None => f.subject,
                };
                r.problems.push(Problem {
                    area: "audit".into(),
                    subject,
                    detail: format!("{}: {}", f.problem, f.detail),
                });
            }
        }
        Ok(())
    }
}

/// A scratch directory inside the workspace, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(dir: &Path) -> Result<Scratch, Error> {
        let n = SCRATCH.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".verify-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(Error::io(&path))?;
        Ok(Scratch(path))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::warn!(path = %self.0.display(), error = %e, "could not remove a scratch directory");
        }
    }
}

/// Compares each projection table of `fresh` (re-projected from the docs) with `stored`'s.
fn compare_projections(fresh: &Path, stored: &Path, r: &mut VerifyReport) -> Result<(), Error> {
    let sql = |e: rusqlite::Error| Error::Invalid(format!("comparing projections: {e}"));
    let conn = rusqlite::Connection::open(fresh).map_err(sql)?;
    conn.execute(
        "ATTACH DATABASE ?1 AS stored",
        [stored.to_string_lossy().as_ref()],
    )
    .map_err(sql)?;
    for table in PROJECTIONS {
        let cols: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .and_then(|mut s| {
                s.query_map([], |row| row.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql)?
            .into_iter()
            .filter(|c| !NOT_CONTENT.contains(&c.as_str()))
            .collect();
        let in_stored: bool = conn
            .query_row(
                "SELECT count(*) FROM stored.sqlite_master WHERE type IN ('table', 'view') AND name = ?1",
                [table],
                |row| row.get::<_, i64>(0),
            )
            .map_err(sql)?
            > 0;
        if cols.is_empty() || !in_stored {
            continue;
        }
        // The project's schema row is written when a schema is first projected: no row and the
        // default schema's row say the same.
        let only = if *table == "project_schema" {
            let default = serde_json::to_string(&cairn_model::RunSchema::default())
                .unwrap_or_default()
                .replace('\'', "''");
            format!(" WHERE json <> '{default}'")
        } else {
            String::new()
        };
        let list = cols
            .iter()
            .map(|c| format!("\"{c}\""))
            .collect::<Vec<_>>()
            .join(", ");
        r.projection_rows += conn
            .query_row(
                &format!("SELECT count(*) FROM stored.\"{table}\""),
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(sql)? as u64;
        let key = cols
            .iter()
            .take(2)
            .map(|c| format!("quote(\"{c}\")"))
            .collect::<Vec<_>>()
            .join(" || ', ' || ");
        for (a, b, what) in [
            (
                "main",
                "stored",
                "the docs give a row the stored projection lacks or holds otherwise",
            ),
            (
                "stored",
                "main",
                "the stored projection holds a row the docs do not give",
            ),
        ] {
            let diff = format!(
                "SELECT {list} FROM {a}.\"{table}\"{only} EXCEPT SELECT {list} FROM {b}.\"{table}\"{only}"
            );
            let n: i64 = conn
                .query_row(&format!("SELECT count(*) FROM ({diff})"), [], |row| {
                    row.get(0)
                })
                .map_err(sql)?;
            if n == 0 {
                continue;
            }
            let keys: Vec<String> = conn
                .prepare(&format!(
                    "SELECT {key} FROM ({diff}) LIMIT {MAX_ROWS_LISTED}"
                ))
                .and_then(|mut s| {
                    s.query_map([], |row| row.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(sql)?;
            for k in &keys {
                r.problem("projection", format!("{table} ({k})"), what);
            }
            let more = n as u64 - keys.len() as u64;
            if more > 0 {
                *r.counts.entry("projection".into()).or_default() += more;
                r.notes
                    .push(format!("{table}: {more} more rows differ ({what})"));
            }
        }
    }
    Ok(())
}

impl Workspace {
    /// Checks every blob, metric chunk, doc, projection and audit chain; see
    /// [`VerifyReport`]. Reads only (a copy of the catalog is re-projected in a scratch
    /// directory inside the workspace and removed).
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        self.read("verify", |s| s.verify())
    }

    /// Verifies, then rebuilds the derived state — every projection from the docs, the search
    /// index from the projections — and checks the projections again; the report says what
    /// was rebuilt and what is still wrong (the source of truth is never changed: a damaged
    /// blob, chunk, doc or audit chain stays reported).
    pub fn repair(&self) -> Result<VerifyReport, Error> {
        let started = Instant::now();
        let mut report = self.verify()?;
        let before = report.counts.get("projection").copied().unwrap_or(0);
        let runs = self.rebuild_projections()?;
        report.repaired.push(format!(
            "projections: {runs} runs re-projected from the docs ({before} rows were wrong)"
        ));
        let indexed = self.rebuild_index()?;
        report
            .repaired
            .push(format!("search index: rebuilt with {indexed} runs"));
        let after = self.read("verify", |s| {
            let mut r = VerifyReport::default();
            s.verify_projections(&mut r)?;
            Ok(r)
        })?;
        report
            .problems
            .retain(|p| p.area != "projection" && p.area != "catalog");
        report.counts.remove("projection");
        report.counts.remove("catalog");
        report.notes.retain(|n| !n.contains(" more rows differ "));
        for (area, n) in after.counts {
            *report.counts.entry(area).or_default() += n;
        }
        report.problems.extend(after.problems);
        report.notes.extend(after.notes);
        report.finish(started);
        Ok(report)
    }
}
