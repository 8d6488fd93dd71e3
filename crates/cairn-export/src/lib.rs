//! Runs and metric histories out of a workspace as Parquet or CSV tables (`cairn export`), for
//! pandas, polars and DuckDB without a client library.
//!
//! Two tables: `runs` (a row per run: ids, names, experiment, owner, status, times, lineage,
//! tags, cost, a typed column per param, the final value, minimum and maximum of each metric)
//! and `metrics` (a row per point: run, key, step, timestamp, value, in the order each series
//! was logged, series by series, runs in the order found). The runs are those a search query
//! matches (`cairn search`'s language; empty: every live run).
//!
//! It streams: a first pass over the matching runs chooses the columns (param keys and their
//! types, metric keys) and keeps only each run's id; the second reads one run, then its series
//! one sealed chunk at a time, and hands record batches of at most 64Ki points to the writer,
//! which keeps one encoded row group (1Mi rows). Memory does not grow with the points exported.
//! Files are written under temporary names beside their final ones and renamed only when both
//! tables are whole.
//!
//! What it is not: an API operation. It writes files on this machine, so it is a library the
//! CLI calls over `cairn_core::Workspace`'s reads; no web page can reach it. Only this crate
//! builds the `parquet` and `arrow` crates.

mod error;
mod metrics;
mod runs;
mod sink;
mod time;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cairn_core::cost::CostBrief;
use cairn_core::{SearchRequest, Workspace};
use cairn_model::RunId;

pub use error::ExportError;
pub use metrics::{MetricRows, schema as metrics_schema};
pub use runs::ParamType;
pub use sink::{Format, ROW_GROUP_ROWS, WrittenFile};
pub use time::rfc3339_ms;

use sink::TableFile;

/// What to export and where.
#[derive(Debug, Clone)]
pub struct ExportRequest {
    /// A search query (`cairn search`'s language); empty: every live run.
    pub query: String,
    /// The directory the tables go to, created if missing.
    pub dir: PathBuf,
    pub format: Format,
    /// Write into a directory that already holds files (replacing `runs.*`/`metrics.*`).
    pub force: bool,
}

/// Where an export stands, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum ExportProgress {
    /// Finding the matching runs and the columns they need (nothing written yet).
    Finding { runs: u64 },
    /// Writing: runs done of those found, and points written so far.
    Writing { runs: u64, of: u64, points: u64 },
}

/// What an export wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportReport {
    pub format: Format,
    pub dir: PathBuf,
    pub query: String,
    pub runs: u64,
    pub series: u64,
    pub points: u64,
    /// The runs table, then the metrics table.
    pub files: Vec<WrittenFile>,
    /// Each param's column type (see [`ParamType`]).
    pub params: std::collections::BTreeMap<String, ParamType>,
    /// The metric keys that have `metrics.`, `metrics_min.` and `metrics_max.` columns.
    pub metrics: Vec<String>,
}

/// Runs per search page in the first pass.
const PAGE: u64 = 5000;

/// Exports the runs `req.query` matches, and their metric histories, into `req.dir`.
pub fn export(
    ws: &Workspace,
    req: &ExportRequest,
    progress: &mut dyn FnMut(ExportProgress),
) -> Result<ExportReport, ExportError> {
    check_dir(&req.dir, req.force)?;

    // First pass: the runs and the columns they need. Oldest first, so a run started during
    // the export falls after the pages already read rather than shifting them.
    let mut ids: Vec<RunId> = Vec::new();
    let mut costs: HashMap<RunId, CostBrief> = HashMap::new();
    let mut columns = runs::Columns::default();
    let mut offset = 0;
    loop {
        let page = ws.search(&SearchRequest {
            q: Some(req.query.clone()),
            view: None,
            mine: None,
            order: Some("created".into()),
            experiment: None,
            limit: Some(PAGE),
            offset: Some(offset),
        })?;
        for r in &page.runs {
            let keys: Vec<&String> = r.metrics.keys().collect();
            columns.see(&r.params, &keys);
            if let Some(c) = r.cost {
                costs.insert(r.id, c);
            }
            ids.push(r.id);
        }
        progress(ExportProgress::Finding {
            runs: ids.len() as u64,
        });
        match page.next_offset {
            Some(next) if next > offset => offset = next,
            _ => break,
        }
    }
    // A run found on two pages (the order moved under the paging) is exported once.
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.retain(|id| seen.insert(*id));

    std::fs::create_dir_all(&req.dir).map_err(|source| ExportError::Io {
        what: "create the directory",
        path: req.dir.clone(),
        source,
    })?;
    let ext = req.format.extension();
    let mut run_rows = runs::RunRows::new(&columns);
    let mut point_rows = MetricRows::new();
    let mut runs_file = TableFile::create(
        req.dir.join(format!("runs.{ext}")),
        req.format,
        run_rows.schema(),
        parquet::file::properties::WriterProperties::builder(),
    )?;
    let mut metrics_file = TableFile::create(
        req.dir.join(format!("metrics.{ext}")),
        req.format,
        point_rows.schema(),
        sink::metrics_props(),
    )?;

    let of = ids.len() as u64;
    let (mut done, mut series, mut points) = (0u64, 0u64, 0u64);
    for id in &ids {
        let view = match ws.run(*id) {
            Ok(v) => v,
            // Deleted for good (purged) between the passes: nothing left to export.
            Err(e) if e.code() == cairn_core::Code::NotFound => continue,
            Err(e) => return Err(e.into()),
        };
        run_rows.push(&view, costs.get(id));
        if run_rows.len() >= runs::BATCH_RUNS {
            runs_file.write(&run_rows.take()?)?;
        }
        let run = id.to_string();
        let mut keys: Vec<&String> = view.live_metrics.keys().collect();
        keys.sort();
        for key in keys {
            // Up to the length now: points logged during the export are left for the next.
            let len = ws.metric_len(*id, key)?;
            let mut from = 0;
            while from < len {
                let chunk = ws.metric_history_chunk(*id, key, from, len)?;
                if chunk.is_empty() {
                    break;
                }
                from += chunk.len() as u64;
                points += chunk.len() as u64;
                point_rows.push(&run, key, &chunk);
                if point_rows.len() >= metrics::BATCH_POINTS {
                    metrics_file.write(&point_rows.take()?)?;
                }
                progress(ExportProgress::Writing {
                    runs: done,
                    of,
                    points,
                });
            }
            series += 1;
        }
        done += 1;
        progress(ExportProgress::Writing {
            runs: done,
            of,
            points,
        });
    }
    if run_rows.len() > 0 {
        runs_file.write(&run_rows.take()?)?;
    }
    if !point_rows.is_empty() {
        metrics_file.write(&point_rows.take()?)?;
    }
    // Both whole before either takes its final name.
    let runs_done = runs_file.finish()?;
    let metrics_done = metrics_file.finish()?;
    let files = vec![runs_done.commit()?, metrics_done.commit()?];
    tracing::info!(runs = done, series, points, dir = %req.dir.display(), "exported");
    Ok(ExportReport {
        format: req.format,
        dir: req.dir.clone(),
        query: req.query.clone(),
        runs: done,
        series,
        points,
        files,
        params: columns.params,
        metrics: columns.metrics.into_iter().collect(),
    })
}

/// Refuses an output path that is a file, or a directory that holds anything, unless `force`.
fn check_dir(dir: &Path, force: bool) -> Result<(), ExportError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(_) if dir.exists() && !dir.is_dir() => {
            return Err(ExportError::NotADirectory(dir.to_owned()));
        }
        Err(source) => {
            return Err(ExportError::Io {
                what: "read the directory",
                path: dir.to_owned(),
                source,
            });
        }
    };
    if force {
        return Ok(());
    }
    let mut names: Vec<String> = Vec::new();
    let mut more = 0;
    for entry in entries {
        let entry = entry.map_err(|source| ExportError::Io {
            what: "read the directory",
            path: dir.to_owned(),
            source,
        })?;
        if names.len() < 3 {
            names.push(entry.file_name().to_string_lossy().into_owned());
        } else {
            more += 1;
        }
    }
    if names.is_empty() {
        return Ok(());
    }
    names.sort();
    let mut found = names.join(", ");
    if more > 0 {
        found.push_str(&format!(" and {more} more"));
    }
    Err(ExportError::NotEmpty {
        dir: dir.to_owned(),
        found,
    })
}
