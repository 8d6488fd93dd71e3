//! An MLflow history imported as it was (`cairn import mlflow SOURCE`): experiments, runs with
//! their status, times, user, params and tags, every metric point, datasets, artifacts and the
//! model registry. SOURCE is an MLflow SQL store (`sqlite:///path/mlflow.db`, read directly and
//! read-only, see [`sqlite`]), a file store (`./mlruns`, see [`file_store`]) or a running MLflow
//! server (`http://host:port`, through its REST API, see [`rest`]); each hands the importer the
//! same records.
//!
//! What becomes what:
//! - A run keeps its MLflow id (both are 32 hex digits), so links to it, `runs:/<id>/…` model
//!   sources and `mlflow.parentRunId` tags resolve unchanged; the id is also how a second import
//!   recognises it. Its system tags (`mlflow.*`) are kept as tags and become what they say in
//!   Cairn — name, notes, owner, parent, code version — exactly as on the live MLflow path.
//! - An experiment goes to the Cairn experiment of the same name (MLflow's `0`, the default
//!   experiment, to Cairn's default), created when there is none; its MLflow id is kept in the
//!   experiment tag [`EXPERIMENT_ID_TAG`], which the MLflow API reads as an alias, so
//!   `#/experiments/3` links resolve.
//! - Metric points keep step, timestamp and value; NaN stays NaN, and ±inf, which MLflow's SQL
//!   store writes as ±`f64::MAX`, becomes ±inf again.
//! - Dataset inputs become the run's lineage, as `runs/log-inputs` makes them; artifacts under a
//!   local `artifact_uri` (a path, `file://`), or whatever root a server serves, are stored
//!   content-addressed, file by file.
//! - Registered models, versions (numbered as in MLflow), version tags, stages and aliases go to
//!   Cairn's registry, each change a signed audit event; a version is pinned to its run's
//!   artifacts, so one whose files were not imported is skipped and said why.
//!
//! Everything is read and checked before anything is written, except metric points, which are
//! streamed run by run (they need no check beyond their keys, read first). Idempotent and
//! resumable: a run already here gains only the params, tags, points (past the number each series
//! holds), datasets and artifacts it lacks, so an import killed half way finishes on the next.

pub mod file_store;
pub mod rest;
pub mod sqlite;
pub mod yaml;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use cairn_catalog::RunEdit;
use cairn_metrics::Point;
use cairn_model::{DatasetSnapshot, Experiment, ExperimentId, Run, RunId, RunStatus, validate_key};
use serde::Serialize;

use crate::{Error, Stores, Workspace};

/// The experiment tag holding the id an experiment had in MLflow.
pub const EXPERIMENT_ID_TAG: &str = "mlflow.import.experiment_id";
/// Runs one import reads at most (their metadata is held in memory between reading and
/// writing); a bigger store is imported an experiment at a time (`--experiment`).
pub const MAX_RUNS: usize = 200_000;
/// Points appended in one write: a run's history is streamed in pieces of this size.
pub const POINTS_PER_WRITE: usize = 100_000;
/// Runs created in one write (one catalog transaction, schema and audit events included).
const RUNS_PER_WRITE: usize = 500;
/// Files of one run's artifact directory imported at most, and directory levels searched.
pub const MAX_ARTIFACT_FILES: usize = 100_000;
pub(crate) const MAX_ARTIFACT_DEPTH: usize = 32;

/// An experiment as the source holds it.
#[derive(Debug, Clone, Default)]
pub struct SrcExperiment {
    pub id: String,
    pub name: String,
    pub deleted: bool,
    pub tags: Vec<(String, String)>,
}

/// A run as the source holds it, without its points.
#[derive(Debug, Clone, Default)]
pub struct SrcRun {
    pub id: String,
    pub experiment: String,
    pub name: Option<String>,
    pub user: Option<String>,
    /// MLflow's status word (`FINISHED`, `RUNNING`…).
    pub status: String,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub deleted: bool,
    pub artifact_uri: Option<String>,
    pub params: Vec<(String, String)>,
    pub tags: Vec<(String, String)>,
    /// The keys of its metric series.
    pub metric_keys: Vec<String>,
    pub datasets: Vec<DatasetSnapshot>,
}

/// A registered model as the source holds it.
#[derive(Debug, Clone, Default)]
pub struct SrcModel {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<(String, String)>,
    /// By number, ascending.
    pub versions: Vec<SrcVersion>,
    pub aliases: Vec<(String, u32)>,
}

#[derive(Debug, Clone, Default)]
pub struct SrcVersion {
    pub version: u32,
    pub source: Option<String>,
    pub run_id: Option<String>,
    pub description: Option<String>,
    /// `Staging`, `Production`, `Archived` (`None` when it has none).
    pub stage: Option<String>,
    pub deleted: bool,
    pub tags: Vec<(String, String)>,
}

/// A readable MLflow store.
pub trait MlflowSource {
    /// What the report calls it.
    fn describe(&self) -> String;
    /// Where relative artifact paths start (the store's directory).
    fn base_dir(&self) -> Option<PathBuf>;
    fn experiments(&mut self) -> Result<Vec<SrcExperiment>, Error>;
    /// The runs of the given experiments, deleted ones included.
    fn runs(&mut self, experiments: &[String]) -> Result<Vec<SrcRun>, Error>;
    /// A run's metric points, series by series in key order, each ordered by step, timestamp,
    /// value (the order is the same on every read, so a second import can skip what it stored),
    /// handed to `sink` in pieces.
    fn points(
        &mut self,
        run: &str,
        sink: &mut dyn FnMut(&str, Point) -> Result<(), Error>,
    ) -> Result<(), Error>;
    fn models(&mut self) -> Result<Vec<SrcModel>, Error>;
    /// How many points each of a run's series holds, when the source can say without reading
    /// them (a re-import then skips reading the series already complete here).
    fn counts(&mut self, _run: &str) -> Result<Option<HashMap<String, u64>>, Error> {
        Ok(None)
    }
    /// The run's artifact files when the source serves them itself (a server), rather than
    /// leaving them at the run's `artifact_uri`.
    fn served_artifacts(&mut self, _run: &SrcRun) -> Result<Served, Error> {
        Ok(Served::NotServed)
    }
    /// The bytes of one file [`MlflowSource::served_artifacts`] listed.
    fn open_artifact<'a>(&'a mut self, run: &str, path: &str) -> Result<Box<dyn Read + 'a>, Error> {
        Err(Error::Invalid(format!(
            "{} serves no artifacts (run {run}, '{path}')",
            self.describe()
        )))
    }
}

/// What a source says of a run's artifacts.
#[derive(Debug, Clone, PartialEq)]
pub enum Served {
    /// They are where the run's `artifact_uri` says (a store's files).
    NotServed,
    /// The files it serves: path relative to the run's root, and size when known.
    Files(Vec<(String, Option<u64>)>),
    /// It cannot serve them, and why (counted as skipped).
    Unavailable(String),
}

/// Counts of what an import met: in the source, added by it, already here.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct MlflowCounts {
    pub experiments: u64,
    pub runs: u64,
    pub params: u64,
    pub tags: u64,
    pub points: u64,
    pub datasets: u64,
    pub artifacts: u64,
    pub models: u64,
    pub versions: u64,
    pub aliases: u64,
}

/// What an import did: counts on both sides (`source` = `added` + `present` + what `skipped`
/// names), and everything not imported with the reason.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct MlflowReport {
    pub source: String,
    /// What the source holds (of the experiments imported; deleted records included).
    pub in_source: MlflowCounts,
    /// What this import stored.
    pub added: MlflowCounts,
    /// What an earlier import (or the workspace) already held.
    pub present: MlflowCounts,
    pub runs_created: u64,
    /// Runs here before that gained something.
    pub runs_updated: u64,
    pub runs_unchanged: u64,
    /// Bytes of artifact files read.
    pub artifact_bytes: u64,
    /// What was not imported, and how many.
    pub skipped: BTreeMap<String, u64>,
}

/// Where an import stands, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum MlflowProgress {
    /// Reading the source's metadata (nothing written yet).
    Reading { runs: u64 },
    /// Writing runs: how many are done, their points and artifact bytes.
    Writing {
        runs: u64,
        of: u64,
        points: u64,
        bytes: u64,
    },
    /// Writing the registry.
    Models { models: u64, of: u64 },
}

/// A source named on the command line: `sqlite:///abs/path.db`, `sqlite:///rel.db`
/// (relative), a path to a store's SQLite file, a file store's directory (`./mlruns`,
/// `file:///…/mlruns`), or a server's URL (`http://host:5000`).
pub fn open_source(source: &str) -> Result<Box<dyn MlflowSource>, Error> {
    if let Some(rest) = source.strip_prefix("sqlite://") {
        // `sqlite:////abs` and `sqlite:///rel`, as SQLAlchemy reads them.
        let path = rest.strip_prefix('/').unwrap_or(rest);
        return Ok(Box::new(sqlite::SqliteStore::open(Path::new(path))?));
    }
    if source.starts_with("http://") || source.starts_with("https://") {
        return Ok(Box::new(rest::RestServer::open(source)?));
    }
    let path = Path::new(source.strip_prefix("file://").unwrap_or(source));
    if path.is_file() {
        return Ok(Box::new(sqlite::SqliteStore::open(path)?));
    }
    if path.is_dir() {
        return Ok(Box::new(file_store::FileStore::open(path)?));
    }
    Err(Error::Invalid(format!(
        "{source}: no such MLflow store (give sqlite:///path/to/mlflow.db or an mlruns directory)"
    )))
}

fn status_of(word: &str) -> RunStatus {
    match word {
        "FINISHED" => RunStatus::Finished,
        "FAILED" => RunStatus::Failed,
        "KILLED" => RunStatus::Killed,
        _ => RunStatus::Running,
    }
}

/// A run read and checked, with its id here.
struct Checked {
    src: SrcRun,
    id: RunId,
    experiment: ExperimentId,
}

impl Workspace {
    /// Imports the MLflow store `source` (see [`open_source`]), only the experiments named in
    /// `experiments` when it is not empty. See the module documentation.
    #[tracing::instrument(skip(self, progress), err)]
    pub fn import_mlflow(
        &self,
        source: &str,
        experiments: &[String],
        progress: &mut dyn FnMut(MlflowProgress),
    ) -> Result<MlflowReport, Error> {
        let mut src = open_source(source)?;
        self.import_mlflow_from(src.as_mut(), experiments, progress)
    }

    /// Imports from an opened source.
    pub fn import_mlflow_from(
        &self,
        src: &mut dyn MlflowSource,
        only: &[String],
        progress: &mut dyn FnMut(MlflowProgress),
    ) -> Result<MlflowReport, Error> {
        let mut report = MlflowReport {
            source: src.describe(),
            ..Default::default()
        };
        let skip = |report: &mut MlflowReport, what: &str, n: u64| {
            if n > 0 {
                *report.skipped.entry(what.to_owned()).or_default() += n;
            }
        };

        // 1. Read and check every record but the points.
        progress(MlflowProgress::Reading { runs: 0 });
        let mut exps = src.experiments()?;
        for name in only {
            if !exps.iter().any(|e| &e.name == name) {
                return Err(Error::Invalid(format!(
                    "{}: no experiment named '{name}' (it has {})",
                    report.source,
                    exps.iter()
                        .map(|e| format!("'{}'", e.name))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        if !only.is_empty() {
            exps.retain(|e| only.contains(&e.name));
        }
        report.in_source.experiments = exps.len() as u64;
        let deleted_exps = exps.iter().filter(|e| e.deleted).count() as u64;
        skip(
            &mut report,
            "deleted experiments (with their runs)",
            deleted_exps,
        );
        exps.retain(|e| !e.deleted);
        for e in &exps {
            let name = e.name.trim();
            if name.is_empty() || name.len() > 500 || name.chars().any(char::is_control) {
                return Err(Error::Invalid(format!(
                    "{}: experiment {} is named {:?}, which Cairn cannot hold (1-500 printable \
                     characters)",
                    report.source, e.id, e.name
                )));
            }
            for (k, v) in &e.tags {
                crate::runs::check_tag(k, v)
                    .map_err(|err| Error::Invalid(format!("experiment '{}': {err}", e.name)))?;
            }
        }
        let exp_ids: Vec<String> = exps.iter().map(|e| e.id.clone()).collect();
        let mut runs = src.runs(&exp_ids)?;
        if runs.len() > MAX_RUNS {
            return Err(Error::Invalid(format!(
                "{} holds {} runs, more than the {MAX_RUNS} one import takes: import it an \
                 experiment at a time (--experiment NAME)",
                report.source,
                runs.len()
            )));
        }
        progress(MlflowProgress::Reading {
            runs: runs.len() as u64,
        });
        report.in_source.runs = runs.len() as u64;
        let deleted_runs = runs.iter().filter(|r| r.deleted).count() as u64;
        skip(&mut report, "deleted runs", deleted_runs);
        runs.retain(|r| !r.deleted);
        for r in &mut runs {
            report.in_source.params += r.params.len() as u64;
            report.in_source.tags += r.tags.len() as u64;
            report.in_source.datasets += r.datasets.len() as u64;
            check_run(r, &mut report.skipped)?;
        }
        let models = src.models()?;
        report.in_source.models = models.len() as u64;
        report.in_source.versions = models.iter().map(|m| m.versions.len() as u64).sum();
        report.in_source.aliases = models.iter().map(|m| m.aliases.len() as u64).sum();
        for m in &models {
            crate::registry::text_bound("description", m.description.as_deref())?;
            for v in &m.versions {
                crate::registry::text_bound("description", v.description.as_deref())?;
            }
        }

        // 2. Experiments: found by name (MLflow's default is Cairn's), created when missing.
        let exp_map = self.write("import_mlflow", |s| {
            s.mlflow_experiments(&exps, &mut report)
        })?;

        // 3. Runs: the new ones created in batches (schema and `run.created` events), then
        //    each run's missing params, tags, points, datasets and artifacts.
        let mut checked = Vec::with_capacity(runs.len());
        for r in runs {
            let id = r.id.parse::<RunId>().map_err(|_| {
                Error::Invalid(format!(
                    "{}: run id '{}' is not 32 hex digits",
                    report.source, r.id
                ))
            })?;
            let Some(&experiment) = exp_map.get(&r.experiment) else {
                skip(&mut report, "runs of experiments not imported", 1);
                continue;
            };
            checked.push(Checked {
                src: r,
                id,
                experiment,
            });
        }
        let of = checked.len() as u64;
        let base = src.base_dir();
        let mut done = 0u64;
        let started = Instant::now();
        for batch in checked.chunks(RUNS_PER_WRITE) {
            let created: HashSet<RunId> = self.write("import_mlflow", |s| {
                s.mlflow_create_runs(batch, &mut report)
            })?;
            for c in batch {
                let fresh = created.contains(&c.id);
                let changed =
                    self.import_mlflow_run(src, c, fresh, base.as_deref(), &mut report)?;
                if created.contains(&c.id) {
                    report.runs_created += 1;
                } else if changed {
                    report.runs_updated += 1;
                } else {
                    report.runs_unchanged += 1;
                }
                done += 1;
                progress(MlflowProgress::Writing {
                    runs: done,
                    of,
                    points: report.added.points + report.present.points,
                    bytes: report.artifact_bytes,
                });
            }
        }
        tracing::debug!(
            runs = done,
            secs = started.elapsed().as_secs_f64(),
            "runs imported"
        );

        // 4. The registry.
        let of = models.len() as u64;
        for (n, m) in models.iter().enumerate() {
            self.write("import_mlflow", |s| s.mlflow_model(m, &mut report))?;
            progress(MlflowProgress::Models {
                models: n as u64 + 1,
                of,
            });
        }
        Ok(report)
    }

    /// Writes what one run lacks: params and tags, status, points, datasets, artifacts.
    fn import_mlflow_run(
        &self,
        src: &mut dyn MlflowSource,
        c: &Checked,
        fresh: bool,
        base: Option<&Path>,
        report: &mut MlflowReport,
    ) -> Result<bool, Error> {
        let (mut changed, present, stale) =
            self.write("import_mlflow", |s| s.mlflow_run_meta(c, fresh, report))?;
        // Nothing to read when every series holds all the source has.
        let added = if let Some(counts) = src.counts(&c.src.id)?
            && counts
                .iter()
                .all(|(k, n)| present.get(k).copied().unwrap_or(0) >= *n)
        {
            let n: u64 = counts.values().sum();
            report.in_source.points += n;
            report.present.points += n;
            false
        } else {
            self.import_mlflow_points(src, c, &present, report)?
        };
        // Points added, or added by an import killed before it finished the run: its series
        // sealed when it ended, its summaries from every point.
        if added || stale {
            let status = status_of(&c.src.status);
            self.write("import_mlflow", |s| {
                if status.is_final() {
                    s.metric_store().seal_run(&c.id.to_string())?;
                }
                s.flush_summaries(c.id)
            })?;
        }
        changed |= added;
        // Artifacts: what the source serves, or the files at the run's root.
        match src.served_artifacts(&c.src)? {
            Served::NotServed => {}
            Served::Files(files) => {
                changed |= self.mlflow_served_artifacts(src, c, files, report)?;
                return Ok(changed);
            }
            Served::Unavailable(why) => {
                *report.skipped.entry(why).or_default() += 1;
                return Ok(changed);
            }
        }
        if let Some(dir) = c
            .src
            .artifact_uri
            .as_deref()
            .and_then(|u| local_dir(u, base))
        {
            changed |= self.mlflow_artifacts(c.id, &dir, report)?;
        } else if let Some(uri) = &c.src.artifact_uri {
            *report
                .skipped
                .entry(format!(
                    "runs whose artifacts are not on this machine ({} URIs)",
                    uri.split(':').next().unwrap_or("?")
                ))
                .or_default() += 1;
        }
        Ok(changed)
    }

    /// Streams a run's points from the source, appending each series past what it holds;
    /// returns whether any was added.
    fn import_mlflow_points(
        &self,
        src: &mut dyn MlflowSource,
        c: &Checked,
        present: &HashMap<String, u64>,
        report: &mut MlflowReport,
    ) -> Result<bool, Error> {
        let mut seen: HashMap<String, u64> = HashMap::new();
        let mut pending: Vec<(String, Vec<Point>)> = Vec::new();
        let mut n_pending = 0usize;
        let mut added = 0u64;
        let flush = |pending: &mut Vec<(String, Vec<Point>)>| -> Result<(), Error> {
            let batches: Vec<(&str, &[Point])> = pending
                .iter()
                .filter(|(_, p)| !p.is_empty())
                .map(|(k, p)| (k.as_str(), p.as_slice()))
                .collect();
            if !batches.is_empty() {
                self.write("import_mlflow", |s| s.log_metrics(c.id, &batches))?;
            }
            pending.clear();
            Ok(())
        };
        let mut in_source = 0u64;
        let mut already = 0u64;
        src.points(&c.src.id, &mut |k, p| {
            in_source += 1;
            let n = seen.entry(k.to_owned()).or_default();
            *n += 1;
            if *n <= present.get(k).copied().unwrap_or(0) {
                already += 1;
                return Ok(());
            }
            if pending.last().is_none_or(|(last, _)| last != k) {
                pending.push((k.to_owned(), Vec::new()));
            }
            if let Some((_, pts)) = pending.last_mut() {
                pts.push(p);
            }
            n_pending += 1;
            added += 1;
            if n_pending >= POINTS_PER_WRITE {
                n_pending = 0;
                flush(&mut pending)?;
            }
            Ok(())
        })?;
        flush(&mut pending)?;
        report.in_source.points += in_source;
        report.present.points += already;
        report.added.points += added;
        Ok(added > 0)
    }

    /// Stores the files the source serves that the run does not hold yet at their path, each
    /// streamed from the source into the blob store with no store connection held meanwhile.
    fn mlflow_served_artifacts(
        &self,
        src: &mut dyn MlflowSource,
        c: &Checked,
        files: Vec<(String, Option<u64>)>,
        report: &mut MlflowReport,
    ) -> Result<bool, Error> {
        let id = c.id;
        let held = self.read("import_mlflow", |s| Ok(s.run_record(id)?.artifacts))?;
        let mut changed = false;
        for (rel, _) in files {
            report.in_source.artifacts += 1;
            if covered(&held, &rel) {
                report.present.artifacts += 1;
                continue;
            }
            let upload = self.write("import_mlflow", |s| s.artifact_upload(id, &rel))?;
            let stored = {
                let mut reader = src.open_artifact(&c.src.id, &rel)?;
                upload.store(&mut reader)?
            };
            let bound = self.write("import_mlflow", |s| s.bind_artifact(stored))?;
            report.added.artifacts += 1;
            report.artifact_bytes += bound.size;
            changed = true;
        }
        Ok(changed)
    }

    /// Stores the files under `dir` the run does not hold yet at their path.
    fn mlflow_artifacts(
        &self,
        id: RunId,
        dir: &Path,
        report: &mut MlflowReport,
    ) -> Result<bool, Error> {
        if !dir.is_dir() {
            return Ok(false);
        }
        let mut files = Vec::new();
        walk(dir, dir, 0, &mut files)?;
        let held = self.read("import_mlflow", |s| Ok(s.run_record(id)?.artifacts))?;
        let mut changed = false;
        for (path, rel) in files {
            report.in_source.artifacts += 1;
            if covered(&held, &rel) {
                report.present.artifacts += 1;
                continue;
            }
            let size = std::fs::metadata(&path).map_err(Error::io(&path))?.len();
            self.write("import_mlflow", |s| {
                s.add_artifact(id, &path, Some(&rel)).map(drop)
            })?;
            report.added.artifacts += 1;
            report.artifact_bytes += size;
            changed = true;
        }
        Ok(changed)
    }
}

/// Whether the run's artifacts hold `rel`: at that path, or inside a directory artifact.
fn covered(held: &BTreeMap<String, cairn_model::ArtifactRef>, rel: &str) -> bool {
    held.contains_key(rel)
        || held.iter().any(|(k, a)| {
            a.kind == cairn_model::ArtifactKind::Dir
                && rel
                    .strip_prefix(k.as_str())
                    .is_some_and(|r| r.starts_with('/'))
        })
}

/// Drops (and counts) what Cairn cannot hold, and refuses what no import should store.
fn check_run(r: &mut SrcRun, skipped: &mut BTreeMap<String, u64>) -> Result<(), Error> {
    let mut skip = |what: String| *skipped.entry(what).or_default() += 1;
    r.params
        .retain(|(k, v)| match crate::runs::check_param(k, v) {
            Ok(()) => true,
            Err(e) => {
                skip(format!("params Cairn cannot hold ({e})"));
                false
            }
        });
    r.tags.retain(|(k, v)| match crate::runs::check_tag(k, v) {
        Ok(()) => true,
        Err(e) => {
            skip(format!("tags Cairn cannot hold ({e})"));
            false
        }
    });
    for k in &r.metric_keys {
        validate_key("metric key", k).map_err(|e| {
            Error::Invalid(format!(
                "run {}: metric {k:?} cannot be imported: {e}",
                r.id
            ))
        })?;
    }
    r.datasets.retain(|d| {
        let ok = d.name.as_deref().is_some_and(|n| !n.trim().is_empty());
        if !ok {
            skip("dataset inputs without a name".into());
        }
        ok
    });
    Ok(())
}

/// The directory a local artifact URI names: an absolute path, `file://…`, or a path relative to
/// the store's directory.
fn local_dir(uri: &str, base: Option<&Path>) -> Option<PathBuf> {
    if let Some(rest) = uri.strip_prefix("file://") {
        let path = rest.strip_prefix("localhost").unwrap_or(rest);
        return Some(PathBuf::from(percent_decode(path)));
    }
    if uri.contains("://") || uri.starts_with("mlflow-artifacts:") || uri.starts_with("dbfs:") {
        return None;
    }
    let p = Path::new(uri);
    Some(if p.is_absolute() {
        p.to_owned()
    } else {
        base?.join(p)
    })
}

/// `%20` and friends in a `file://` URI.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(x) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Every file under `dir`, with its path relative to `root` (`/`-separated). Symlinks to
/// directories are not followed.
fn walk(
    root: &Path,
    dir: &Path,
    depth: usize,
    out: &mut Vec<(PathBuf, String)>,
) -> Result<(), Error> {
    if depth > MAX_ARTIFACT_DEPTH {
        return Err(Error::Invalid(format!(
            "{} is more than {MAX_ARTIFACT_DEPTH} directories deep",
            dir.display()
        )));
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(Error::io(dir))?
        .collect::<Result<_, _>>()
        .map_err(Error::io(dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let kind = e.file_type().map_err(Error::io(&path))?;
        if kind.is_dir() {
            walk(root, &path, depth + 1, out)?;
        } else if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            if out.len() >= MAX_ARTIFACT_FILES {
                return Err(Error::Invalid(format!(
                    "{} holds more than {MAX_ARTIFACT_FILES} artifact files",
                    root.display()
                )));
            }
            let rel = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            out.push((path, rel));
        }
    }
    Ok(())
}

impl Stores {
    /// The Cairn experiment of each MLflow experiment, by MLflow id: found by name (MLflow's
    /// `0` is the default experiment), created when missing, with the source's tags it lacks and
    /// the MLflow id as [`EXPERIMENT_ID_TAG`].
    fn mlflow_experiments(
        &mut self,
        exps: &[SrcExperiment],
        report: &mut MlflowReport,
    ) -> Result<HashMap<String, ExperimentId>, Error> {
        let mut map = HashMap::new();
        for e in exps {
            let found = if e.id == "0" {
                Some(self.default_experiment()?)
            } else {
                self.catalog().experiment_by_name(e.name.trim())?
            };
            let exp: Experiment = match found {
                Some(x) if x.deleted => {
                    return Err(Error::Conflict(format!(
                        "experiment '{}' is deleted here: restore it before importing into it",
                        e.name
                    )));
                }
                Some(x) => {
                    report.present.experiments += 1;
                    x
                }
                None => {
                    report.added.experiments += 1;
                    self.create_experiment_with_id(ExperimentId::new(), &e.name, &[])?
                }
            };
            let mut want: Vec<(String, String)> = e.tags.clone();
            if e.id != "0" {
                want.push((EXPERIMENT_ID_TAG.to_owned(), e.id.clone()));
            }
            for (k, v) in want {
                if exp.tags.get(&k) != Some(&v) && !exp.tags.contains_key(&k) {
                    self.set_experiment_tag(exp.id, &k, &v)?;
                }
            }
            map.insert(e.id.clone(), exp.id);
        }
        Ok(map)
    }

    /// Creates the runs of `batch` not here yet (schema and audit events as any import);
    /// returns their ids.
    fn mlflow_create_runs(
        &mut self,
        batch: &[Checked],
        report: &mut MlflowReport,
    ) -> Result<HashSet<RunId>, Error> {
        let mut new = Vec::new();
        for c in batch {
            if self.catalog().run(c.id)?.is_some() {
                continue;
            }
            new.push(new_run(c, self.user()));
            report.added.runs += 1;
            report.added.params += c.src.params.len() as u64;
            report.added.tags += c.src.tags.len() as u64;
        }
        let ids = new.iter().map(|r| r.id).collect();
        if !new.is_empty() {
            self.import_runs(new)?;
        }
        Ok(ids)
    }

    /// A run here before this batch: the params and tags it lacks, its status and end when the
    /// source's moved on, its datasets. Returns whether it changed, how many points each of
    /// its series holds, and whether a summary lags its series (an import was killed between
    /// appending points and summing them up).
    fn mlflow_run_meta(
        &mut self,
        c: &Checked,
        fresh: bool,
        report: &mut MlflowReport,
    ) -> Result<(bool, HashMap<String, u64>, bool), Error> {
        let run = self.run_record(c.id)?;
        let key = c.id.to_string();
        let mut present = HashMap::new();
        let mut stale = false;
        for k in &c.src.metric_keys {
            let n = self.metrics().series_info(&key, k)?.map_or(0, |s| s.count);
            stale |= n > 0 && run.metrics.get(k).map(|m| m.count) != Some(n);
            present.insert(k.clone(), n);
        }
        let mut edits = Vec::new();
        for (k, v) in &c.src.params {
            match run.params.get(k) {
                Some(old) if old == v => {}
                Some(old) => {
                    return Err(Error::ParamChanged {
                        run: c.id.to_string(),
                        key: k.clone(),
                        old: old.clone(),
                        new: v.clone(),
                    });
                }
                None => {
                    edits.push(RunEdit::Param(k.clone(), v.clone()));
                    report.added.params += 1;
                }
            }
        }
        let mut new_tags = Vec::new();
        for (k, v) in &c.src.tags {
            // MLflow's note tag is the run's notes: notes written here since are kept.
            let held = if k == crate::runs::NOTE_TAG {
                !run.notes.is_empty()
            } else {
                run.tags.contains_key(k)
            };
            if held {
                continue;
            }
            new_tags.push((k.clone(), v.clone()));
            if k != crate::runs::NOTE_TAG {
                edits.push(RunEdit::Tag(k.clone(), v.clone()));
            }
        }
        report.added.tags += new_tags.len() as u64;
        edits.extend(crate::runs::system_tag_edits(&run, &new_tags));
        let status = status_of(&c.src.status);
        if status != run.status && status.is_final() {
            edits.push(RunEdit::Status {
                status,
                end_ms: c.src.end_ms,
            });
        }
        // A run this import created a moment ago held nothing before it.
        if !fresh {
            let added_params = edits
                .iter()
                .filter(|e| matches!(e, RunEdit::Param(..)))
                .count();
            report.present.runs += 1;
            report.present.params += (c.src.params.len() - added_params) as u64;
            report.present.tags += (c.src.tags.len() - new_tags.len()) as u64;
        }
        let changed = !edits.is_empty();
        if changed {
            self.catalog_mut().update_run(c.id, &edits)?;
        }
        // Datasets not yet in the lineage (by name and digest, as MLflow's store counts them).
        let key_of = |d: &DatasetSnapshot| (d.name.clone(), d.digest.clone().unwrap_or_default());
        let held: HashSet<_> = run.lineage.datasets.values().map(key_of).collect();
        let missing: Vec<DatasetSnapshot> = c
            .src
            .datasets
            .iter()
            .filter(|d| !held.contains(&key_of(d)))
            .cloned()
            .collect();
        report.present.datasets += (c.src.datasets.len() - missing.len()) as u64;
        report.added.datasets += missing.len() as u64;
        let changed = changed || !missing.is_empty();
        if !missing.is_empty() {
            self.add_dataset_inputs(c.id, missing)?;
        }
        Ok((changed, present, stale))
    }

    /// One registered model: created when missing, with the tags it lacks; its versions in
    /// number order (so each keeps its MLflow number), their tags and stages; its aliases.
    fn mlflow_model(&mut self, m: &SrcModel, report: &mut MlflowReport) -> Result<(), Error> {
        let tags: BTreeMap<String, String> = m.tags.iter().cloned().collect();
        let model = match self.registered_model(&m.name) {
            Ok(existing) => {
                report.present.models += 1;
                for (k, v) in &tags {
                    if !existing.tags.contains_key(k) {
                        self.set_model_meta(&m.name, &format!("tag/{k}"), Some(v))?;
                    }
                }
                existing
            }
            Err(Error::UnknownModel(_)) => {
                report.added.models += 1;
                self.create_registered_model(&m.name, m.description.as_deref(), tags)?
            }
            Err(e) => return Err(e),
        };
        let mut numbers: HashMap<u32, cairn_model::VersionId> =
            model.versions.iter().map(|v| (v.version, v.id)).collect();
        let mut next = model.versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        let mut broken: Option<String> = None;
        for v in &m.versions {
            if let Some(here) = model.versions.iter().find(|x| x.version == v.version) {
                report.present.versions += 1;
                // What an import killed right after creating the version did not get to.
                if v.deleted && here.deleted.is_none() {
                    self.delete_model_version(&m.name, v.version, "deleted in MLflow")?;
                    continue;
                }
                if here.deleted.is_none() {
                    if let Some(stage) = &v.stage
                        && here.stage.is_none()
                    {
                        self.set_version_meta(&m.name, v.version, "stage", Some(stage))?;
                    }
                    for (k, val) in &v.tags {
                        if !here.tags.contains_key(k) {
                            self.set_version_meta(
                                &m.name,
                                v.version,
                                &format!("tag/{k}"),
                                Some(val),
                            )?;
                        }
                    }
                }
                continue;
            }
            if let Some(why) = &broken {
                *report.skipped.entry(why.clone()).or_default() += 1;
                continue;
            }
            if v.version != next {
                let why = format!(
                    "model versions whose MLflow number Cairn cannot keep (model '{}' here \
                     numbers its next version {next})",
                    m.name
                );
                *report.skipped.entry(why.clone()).or_default() += 1;
                broken = Some(why);
                continue;
            }
            let run = v.run_id.as_deref().and_then(|r| r.parse::<RunId>().ok());
            let source = v.source.clone().unwrap_or_default();
            let vtags: BTreeMap<String, String> = v.tags.iter().cloned().collect();
            match self.create_model_version(&m.name, &source, run, v.description.as_deref(), vtags)
            {
                Ok(created) => {
                    numbers.insert(created.version, created.id);
                    next += 1;
                    report.added.versions += 1;
                    if v.deleted {
                        self.delete_model_version(&m.name, created.version, "deleted in MLflow")?;
                    } else if let Some(stage) = &v.stage {
                        self.set_version_meta(&m.name, created.version, "stage", Some(stage))?;
                    }
                }
                Err(
                    e @ (Error::UnknownArtifact { .. }
                    | Error::Catalog(cairn_catalog::Error::UnknownRun(_))),
                ) => {
                    let why = format!(
                        "model versions whose files are not here ({e}), and the later versions \
                         of their model"
                    );
                    *report.skipped.entry(why.clone()).or_default() += 1;
                    broken = Some(why);
                }
                Err(e) => return Err(e),
            }
        }
        let model = self.registered_model(&m.name)?;
        for (alias, number) in &m.aliases {
            let Some(&vid) = numbers.get(number) else {
                *report
                    .skipped
                    .entry("aliases of versions not imported".into())
                    .or_default() += 1;
                continue;
            };
            let there = model
                .versions
                .iter()
                .any(|v| v.version == *number && v.aliases.contains(alias));
            if there {
                report.present.aliases += 1;
                continue;
            }
            self.put_alias(
                &m.name,
                alias,
                Some(vid),
                None,
                Some("imported from MLflow"),
            )?;
            report.added.aliases += 1;
        }
        Ok(())
    }
}

/// A run not here yet, as the source has it: its system tags applied as the live path applies
/// them.
fn new_run(c: &Checked, importer: &str) -> Run {
    let s = &c.src;
    let name = s
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| s.id.clone());
    let mut run = Run::new(c.id, c.experiment, name, s.start_ms.unwrap_or(0));
    run.owner = s
        .user
        .clone()
        .filter(|u| !u.is_empty())
        .or_else(|| Some(importer.to_owned()));
    run.status = status_of(&s.status);
    run.end_ms = s.end_ms.filter(|_| run.status.is_final());
    run.params = s.params.iter().cloned().collect();
    // MLflow's note tag is held as the notes (below), not among the tags.
    run.tags = s
        .tags
        .iter()
        .filter(|(k, _)| k != crate::runs::NOTE_TAG)
        .cloned()
        .collect();
    for e in crate::runs::system_tag_edits(&run, &s.tags) {
        match e {
            RunEdit::Name(n) => run.name = n,
            RunEdit::Notes(n) => run.notes = n,
            RunEdit::Owner(o) if run.owner.is_none() => run.owner = o,
            RunEdit::Parent(p, k) => {
                run.parent = p;
                run.parent_kind = k;
            }
            RunEdit::Code(code) => run.lineage.code = code,
            _ => {}
        }
    }
    run
}
