//! TensorBoard logdirs imported as runs (`cairn import tensorboard LOGDIR`): every directory
//! under the logdir that holds event files becomes a run of one experiment (named by the caller,
//! or after the logdir); scalars become metric series with their steps and wall times; the
//! hparams plugin's session start gives params and its session end the status; text summaries
//! become notes; the directory's path becomes tags. Event files are read by `cairn-tensorboard`.
//!
//! All or nothing against bad input: every event file is read and checked (CRCs, protobufs,
//! limits) and every param checked against what is stored before anything is written, so a
//! corrupt or truncated file stores nothing of the import and its error names the file and the
//! byte. Runs are created through [`Stores::import_runs`] (schema, `run.created` events, like
//! any import), metrics appended through [`Stores::log_metrics`].
//!
//! Idempotent: a run is recognised by the tags `tensorboard.logdir` (the logdir's absolute
//! path) and `tensorboard.run` (its directory relative to it). Importing it again appends only
//! what its event files gained: each series' points past the number already stored (event files
//! only grow, and a writer's new file sorts after its old ones, since their names carry the
//! time), params not yet logged, text entries not yet in the notes. A moved logdir imports as
//! new runs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cairn_catalog::{RunEdit, RunFilter};
use cairn_metrics::Point;
use cairn_model::{
    Experiment, ExperimentId, MetricSummary, ParentKind, Run, RunId, RunStatus, validate_key,
};
use cairn_tensorboard::{Data, HParamValue, HParams, SessionStatus, What};
use serde::Serialize;

use crate::{Error, Stores, Workspace};

/// Event files one import reads at most.
pub const MAX_EVENT_FILES: usize = 10_000;
/// Bytes of event files one import reads at most (everything is read before anything is
/// written, so this bounds the import's memory too).
pub const MAX_LOGDIR_BYTES: u64 = 4 << 30;
/// Directory levels under the logdir that are searched for event files.
pub const MAX_DEPTH: usize = 32;

/// The tag naming the logdir a run was imported from (its absolute path).
pub const LOGDIR_TAG: &str = "tensorboard.logdir";
/// The tag naming a run's directory relative to its logdir (`.` for the logdir itself).
pub const RUN_TAG: &str = "tensorboard.run";
/// Tags `tensorboard.dir.0`, `tensorboard.dir.1`…: each component of that directory.
pub const DIR_TAG_PREFIX: &str = "tensorboard.dir.";

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TensorboardReport {
    pub logdir: String,
    pub experiment: String,
    pub event_files: u64,
    pub bytes: u64,
    pub runs_created: u64,
    /// Runs seen before that gained something.
    pub runs_updated: u64,
    /// Runs seen before with nothing new.
    pub runs_unchanged: u64,
    /// Metric points stored by this import.
    pub points: u64,
    /// Points of the event files already stored by an earlier import.
    pub points_present: u64,
    pub params: u64,
    /// Text entries added to notes.
    pub notes: u64,
    /// What was not imported, and how many: summaries of other kinds (images, histograms…),
    /// tags that are not metric keys, hparams Cairn cannot hold.
    pub skipped: BTreeMap<String, u64>,
    pub runs: Vec<TensorboardRun>,
}

/// One run of an import.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TensorboardRun {
    /// The directory, relative to the logdir.
    pub dir: String,
    pub run: RunId,
    pub created: bool,
    pub status: RunStatus,
    pub series: u64,
    /// Points stored by this import.
    pub points: u64,
}

/// Where an import stands, for a progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorboardProgress {
    /// Reading and checking event files (nothing written yet).
    Reading { files: u64, of: u64, bytes: u64 },
    /// Writing runs.
    Writing { runs: u64, of: u64, points: u64 },
}

/// One directory's events, read and checked.
#[derive(Debug, Default)]
struct ParsedRun {
    dir: String,
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    /// Series in the order their tags first appear; points in file order.
    series: Vec<(String, Vec<Point>)>,
    params: BTreeMap<String, String>,
    status: Option<RunStatus>,
    /// Rendered text entries, in order.
    texts: Vec<String>,
}

/// What to write for one run.
#[derive(Debug)]
struct Planned {
    id: RunId,
    created: bool,
    parsed: ParsedRun,
    /// Per series: how many of its points are stored already.
    present: Vec<u64>,
}

impl Workspace {
    /// Imports the TensorBoard logdir `logdir` into experiment `experiment` (default: the
    /// logdir's name). See the module documentation for what becomes what.
    #[tracing::instrument(skip(self, progress), err)]
    pub fn import_tensorboard(
        &self,
        logdir: &Path,
        experiment: Option<&str>,
        progress: &mut dyn FnMut(TensorboardProgress),
    ) -> Result<TensorboardReport, Error> {
        let logdir = std::fs::canonicalize(logdir).map_err(Error::io(logdir))?;
        if !logdir.is_dir() {
            return Err(Error::Invalid(format!(
                "{} is not a directory (a TensorBoard logdir holds run directories of event files)",
                logdir.display()
            )));
        }
        let exp_name = match experiment {
            Some(e) if !e.trim().is_empty() => e.trim().to_owned(),
            _ => logdir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "tensorboard".into()),
        };
        let mut report = TensorboardReport {
            logdir: logdir.display().to_string(),
            experiment: exp_name.clone(),
            ..Default::default()
        };

        // 1. Read and check everything.
        let dirs = find_event_files(&logdir)?;
        let total_files: u64 = dirs.iter().map(|(_, f)| f.len() as u64).sum();
        let mut parsed = Vec::with_capacity(dirs.len());
        for (dir, files) in &dirs {
            let rel = relative(&logdir, dir);
            let mut run = ParsedRun {
                dir: rel,
                ..Default::default()
            };
            let mut reader = RunReader::default();
            for file in files {
                let bytes = std::fs::read(file).map_err(Error::io(file))?;
                report.event_files += 1;
                report.bytes += bytes.len() as u64;
                reader.read_file(file, &bytes, &mut run, &mut report.skipped)?;
                progress(TensorboardProgress::Reading {
                    files: report.event_files,
                    of: total_files,
                    bytes: report.bytes,
                });
            }
            if run.first_ms.is_none() {
                *report
                    .skipped
                    .entry("run directories without events".into())
                    .or_default() += 1;
                continue;
            }
            parsed.push(run);
        }

        // 2. Recognise runs imported before, check params, create the new runs (one call:
        //    the schema judges every one before any is recorded).
        let logdir_text = report.logdir.clone();
        let user = self.user().to_owned();
        let plan = self.write("import_tensorboard", |s| {
            s.plan_tensorboard(&exp_name, &logdir_text, &user, parsed, &mut report.skipped)
        })?;

        // 3. Write each run's new points, params, notes and status.
        let of = plan.len() as u64;
        progress(TensorboardProgress::Writing {
            runs: 0,
            of,
            points: 0,
        });
        for (n, p) in plan.into_iter().enumerate() {
            let (added, changed) =
                self.write("import_tensorboard", |s| s.write_tensorboard_run(&p))?;
            let present: u64 = p.present.iter().sum();
            report.points += added.points;
            report.points_present += present;
            report.params += added.params;
            report.notes += added.notes;
            if p.created {
                report.runs_created += 1;
            } else if changed {
                report.runs_updated += 1;
            } else {
                report.runs_unchanged += 1;
            }
            report.runs.push(TensorboardRun {
                dir: p.parsed.dir.clone(),
                run: p.id,
                created: p.created,
                status: added.status,
                series: p.parsed.series.len() as u64,
                points: added.points,
            });
            progress(TensorboardProgress::Writing {
                runs: n as u64 + 1,
                of,
                points: report.points,
            });
        }
        Ok(report)
    }
}

/// What writing one run stored.
#[derive(Debug)]
struct Added {
    points: u64,
    params: u64,
    notes: u64,
    status: RunStatus,
}

impl Stores {
    /// Finds the runs of `parsed` imported before (by their tags), checks their params against
    /// what is stored, and creates the others: nothing is written unless all of it passes.
    fn plan_tensorboard(
        &mut self,
        exp_name: &str,
        logdir: &str,
        user: &str,
        parsed: Vec<ParsedRun>,
        skipped: &mut BTreeMap<String, u64>,
    ) -> Result<Vec<Planned>, Error> {
        let mut known: HashMap<String, Run> = HashMap::new();
        if let Some(exp) = self.catalog().experiment_by_name(exp_name)? {
            let filter = RunFilter {
                experiment: Some(exp.id),
                include_deleted: true,
                ..Default::default()
            };
            for row in self.catalog().list_runs(&filter)? {
                if let Some(run) = self.catalog().run(row.id)?
                    && run.tags.get(LOGDIR_TAG).map(String::as_str) == Some(logdir)
                    && let Some(dir) = run.tags.get(RUN_TAG)
                {
                    known.insert(dir.clone(), run);
                }
            }
        }
        let mut kept = Vec::with_capacity(parsed.len());
        for p in parsed {
            for (k, v) in &p.params {
                crate::runs::check_param(k, v)?;
            }
            match known.get(&p.dir) {
                Some(run) if run.deleted => {
                    *skipped
                        .entry("runs deleted since an earlier import".into())
                        .or_default() += 1;
                    continue;
                }
                Some(run) => {
                    for (k, v) in &p.params {
                        if let Some(old) = run.params.get(k)
                            && old != v
                        {
                            return Err(Error::ParamChanged {
                                run: run.id.to_string(),
                                key: k.clone(),
                                old: old.clone(),
                                new: v.clone(),
                            });
                        }
                    }
                }
                None => {}
            }
            kept.push(p);
        }
        // Ids first, so a directory's run can name the run of the directory above as parent.
        let ids: HashMap<String, (RunId, bool)> = kept
            .iter()
            .map(|p| match known.get(&p.dir) {
                Some(run) => (p.dir.clone(), (run.id, false)),
                None => (p.dir.clone(), (RunId::new(), true)),
            })
            .collect();
        let existing = self.catalog().experiment_by_name(exp_name)?;
        if existing.is_none() && kept.iter().all(|p| known.contains_key(&p.dir)) {
            return Ok(Vec::new());
        }
        let exp_id = existing.as_ref().map_or_else(ExperimentId::new, |e| e.id);
        let mut new_runs = Vec::new();
        let mut plan = Vec::with_capacity(kept.len());
        for p in kept {
            let (id, created) = ids[&p.dir];
            let present = if created {
                vec![0; p.series.len()]
            } else {
                let key = id.to_string();
                let mut present = Vec::with_capacity(p.series.len());
                for (k, pts) in &p.series {
                    let n = self.metrics().series_info(&key, k)?.map_or(0, |s| s.count);
                    present.push(n.min(pts.len() as u64));
                }
                present
            };
            if created {
                new_runs.push(new_run(&p, id, exp_id, user, logdir, &ids));
            }
            plan.push(Planned {
                id,
                created,
                parsed: p,
                present,
            });
        }
        if existing.is_none() {
            // The experiment is created only for runs its schema (the project's) accepts: each
            // is judged first against the experiment as it will be.
            let draft = Experiment {
                id: exp_id,
                name: exp_name.to_owned(),
                created_ms: crate::stores::now_ms(),
                description: None,
                tags: BTreeMap::new(),
                schema: None,
                deleted: false,
            };
            for run in &new_runs {
                self.refuse_incomplete(run, &draft, "imported")?;
            }
            self.create_experiment_with_id(exp_id, exp_name, &[])?;
        }
        if !new_runs.is_empty() {
            self.import_runs(new_runs)?;
        }
        Ok(plan)
    }

    /// Stores what one planned run gained: its new points, params and notes; its status.
    fn write_tensorboard_run(&mut self, p: &Planned) -> Result<(Added, bool), Error> {
        let run = self.run_record(p.id)?;
        let key = p.id.to_string();
        let mut added = Added {
            points: 0,
            params: 0,
            notes: 0,
            status: run.status,
        };
        let mut edits = Vec::new();
        if p.created {
            added.params = p.parsed.params.len() as u64;
            added.notes = p.parsed.texts.len() as u64;
        } else {
            for (k, v) in &p.parsed.params {
                if !run.params.contains_key(k) {
                    edits.push(RunEdit::Param(k.clone(), v.clone()));
                    added.params += 1;
                }
            }
            let mut notes = run.notes.clone();
            for t in &p.parsed.texts {
                if !notes.contains(t.as_str()) {
                    if !notes.is_empty() {
                        notes.push_str("\n\n");
                    }
                    notes.push_str(t);
                    added.notes += 1;
                }
            }
            if notes != run.notes {
                edits.push(RunEdit::Notes(notes));
            }
        }
        let batches: Vec<(&str, &[Point])> = p
            .parsed
            .series
            .iter()
            .zip(&p.present)
            .filter(|((_, pts), n)| (**n as usize) < pts.len())
            .map(|((k, pts), &n)| (k.as_str(), &pts[n as usize..]))
            .collect();
        added.points = batches.iter().map(|(_, b)| b.len() as u64).sum();
        let status = p.parsed.status.unwrap_or(RunStatus::Finished);
        let last_ms = p.parsed.last_ms;
        if !p.created && status.is_final() && (added.points > 0 || status != run.status) {
            let end_ms = last_ms.max(run.end_ms);
            if end_ms != run.end_ms || status != run.status {
                edits.push(RunEdit::Status { status, end_ms });
                added.status = status;
            }
        }
        if !edits.is_empty() {
            self.catalog_mut().update_run(p.id, &edits)?;
        }
        if !batches.is_empty() {
            self.log_metrics(p.id, &batches)?;
            self.flush_summaries(p.id)?;
            if status.is_final() {
                self.metric_store().seal_run(&key)?;
            }
        }
        Ok((added, !edits.is_empty() || !batches.is_empty()))
    }
}

/// A run not imported before: its directory, times, status, params, notes and tags.
fn new_run(
    p: &ParsedRun,
    id: RunId,
    experiment: ExperimentId,
    user: &str,
    logdir: &str,
    ids: &HashMap<String, (RunId, bool)>,
) -> Run {
    let name = if p.dir == "." {
        Path::new(logdir)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into())
    } else {
        p.dir.clone()
    };
    let name: String = name.chars().filter(|c| !c.is_control()).take(500).collect();
    let start = p.first_ms.unwrap_or(0);
    let mut run = Run::new(id, experiment, name, start);
    run.owner = Some(user.to_owned());
    run.status = p.status.unwrap_or(RunStatus::Finished);
    if run.status.is_final() {
        run.end_ms = p.last_ms;
    }
    run.params = p.params.clone();
    run.tags = dir_tags(logdir, &p.dir);
    run.notes = p.texts.join("\n\n");
    // The run of the nearest directory above that is a run.
    let mut up = Path::new(&p.dir).parent();
    while let Some(d) = up.filter(|d| !d.as_os_str().is_empty()) {
        if let Some((parent, _)) = ids.get(d.to_string_lossy().as_ref()) {
            run.parent = Some(*parent);
            run.parent_kind = Some(ParentKind::Child);
            break;
        }
        up = d.parent();
    }
    if run.parent.is_none()
        && p.dir != "."
        && let Some((parent, _)) = ids.get(".")
    {
        run.parent = Some(*parent);
        run.parent_kind = Some(ParentKind::Child);
    }
    // Summaries now, so a schema that requires a metric sees it (the store's own replace them
    // once the points are appended).
    run.metrics = p
        .series
        .iter()
        .filter_map(|(k, pts)| summary(pts).map(|s| (k.clone(), s)))
        .collect();
    run
}

/// The tags naming a run's logdir and directory.
fn dir_tags(logdir: &str, dir: &str) -> BTreeMap<String, String> {
    let mut tags = BTreeMap::from([
        (LOGDIR_TAG.to_owned(), logdir.to_owned()),
        (RUN_TAG.to_owned(), dir.to_owned()),
    ]);
    if dir != "." {
        for (i, c) in dir.split('/').enumerate() {
            tags.insert(format!("{DIR_TAG_PREFIX}{i}"), c.to_owned());
        }
    }
    tags
}

fn summary(pts: &[Point]) -> Option<MetricSummary> {
    let last = pts.last()?;
    let finite = || pts.iter().map(|p| p.value).filter(|v| !v.is_nan());
    Some(MetricSummary {
        last: last.value,
        step: last.step,
        ts_ms: last.ts_ms,
        min: finite().reduce(f64::min),
        max: finite().reduce(f64::max),
        count: pts.len() as u64,
    })
}

/// The error of an event file: the file, the byte, what is wrong.
fn event_error(path: &Path, error: cairn_tensorboard::Error) -> Error {
    Error::EventFile {
        path: path.to_owned(),
        error,
    }
}

/// Reads a run directory's event files, one after another, into a [`ParsedRun`].
#[derive(Debug, Default)]
struct RunReader {
    /// Series index by metric key.
    series: HashMap<String, usize>,
    /// The plugin of each tag, from its first value that names one (TF2 names it once).
    plugins: HashMap<String, String>,
}

impl RunReader {
    fn read_file(
        &mut self,
        path: &Path,
        bytes: &[u8],
        run: &mut ParsedRun,
        skipped: &mut BTreeMap<String, u64>,
    ) -> Result<(), Error> {
        for record in cairn_tensorboard::records(bytes) {
            let record = record.map_err(|e| event_error(path, e))?;
            let malformed = |m: String| {
                event_error(
                    path,
                    cairn_tensorboard::Error {
                        offset: record.offset,
                        kind: cairn_tensorboard::ErrorKind::Malformed(m),
                    },
                )
            };
            let event = cairn_tensorboard::Event::decode(record.data).map_err(malformed)?;
            // Seconds since 1970 up to the year 5138: anything else is not a wall time.
            if !(0.0..1e11).contains(&event.wall_time) {
                return Err(malformed(format!(
                    "wall_time {} is not a time",
                    event.wall_time
                )));
            }
            let ms = (event.wall_time * 1000.0).round() as i64;
            run.first_ms = Some(run.first_ms.map_or(ms, |f| f.min(ms)));
            run.last_ms = Some(run.last_ms.map_or(ms, |l| l.max(ms)));
            let What::Summary(values) = event.what else {
                continue;
            };
            for v in values {
                let plugin = match &v.plugin {
                    Some(p) => {
                        self.plugins
                            .entry(v.tag.clone())
                            .or_insert_with(|| p.name.clone());
                        Some(p.name.clone())
                    }
                    None => self.plugins.get(&v.tag).cloned(),
                };
                let mut skip = |what: String| *skipped.entry(what).or_default() += 1;
                match (plugin.as_deref(), v.data) {
                    (Some("hparams"), _) => {
                        let Some(p) = v.plugin else { continue };
                        match cairn_tensorboard::decode_hparams(&p.content).map_err(malformed)? {
                            HParams::SessionStart { hparams, .. } => {
                                for (k, value) in hparams {
                                    match hparam_text(&value) {
                                        Some(t) => match crate::runs::check_param(&k, &t) {
                                            Ok(()) => {
                                                run.params.insert(k, t);
                                            }
                                            Err(e) => {
                                                skip(format!("hparams that are no param ({e})"))
                                            }
                                        },
                                        None => skip(format!(
                                            "hparams of type {}",
                                            match value {
                                                HParamValue::Other(kind) => kind,
                                                _ => "?",
                                            }
                                        )),
                                    }
                                }
                            }
                            HParams::SessionEnd { status, .. } => {
                                run.status = match status {
                                    SessionStatus::Success => Some(RunStatus::Finished),
                                    SessionStatus::Failure => Some(RunStatus::Failed),
                                    SessionStatus::Running => Some(RunStatus::Running),
                                    SessionStatus::Unknown => run.status,
                                };
                            }
                            _ => {}
                        }
                    }
                    (Some("text"), Data::Tensor(t)) => match t.strings() {
                        Some(strings) => run.texts.push(format!(
                            "{} (step {}): {}",
                            v.tag,
                            event.step,
                            strings.join("\n")
                        )),
                        None => skip("text summaries that are not strings".into()),
                    },
                    (_, Data::Simple(x)) => {
                        self.point(&v.tag, event.step, ms, f64::from(x), run, &mut skip);
                    }
                    (None | Some("scalars"), Data::Tensor(t)) => match t.scalar() {
                        Some(x) => self.point(&v.tag, event.step, ms, x, run, &mut skip),
                        None => skip("tensor summaries that are not scalars".into()),
                    },
                    (Some(p), Data::Tensor(_)) => skip(format!("{p} summaries")),
                    (_, Data::Other(kind)) => skip(format!("{kind} summaries")),
                    (_, Data::None) => {}
                }
            }
        }
        Ok(())
    }

    fn point(
        &mut self,
        tag: &str,
        step: i64,
        ts_ms: i64,
        value: f64,
        run: &mut ParsedRun,
        skip: &mut dyn FnMut(String),
    ) {
        let i = match self.series.get(tag) {
            Some(&i) => i,
            None => {
                if let Err(e) = validate_key("metric key", tag) {
                    skip(format!("scalars whose tag is no metric key ({e})"));
                    return;
                }
                run.series.push((tag.to_owned(), Vec::new()));
                self.series.insert(tag.to_owned(), run.series.len() - 1);
                run.series.len() - 1
            }
        };
        run.series[i].1.push(Point { step, ts_ms, value });
    }
}

/// An hparam as param text: whole numbers without a fraction (`4096`), others as the shortest
/// text that reads back the same (`0.0003`, `1e-10`); `None` for what a param cannot hold.
fn hparam_text(v: &HParamValue) -> Option<String> {
    match v {
        HParamValue::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => {
            Some(format!("{}", *n as i64))
        }
        HParamValue::Number(n) => Some(format!("{n:?}")),
        HParamValue::Text(t) => Some(t.clone()),
        HParamValue::Bool(b) => Some(b.to_string()),
        HParamValue::Other(_) => None,
    }
}

/// `dir` relative to `logdir`, `/`-separated; `.` for the logdir itself.
fn relative(logdir: &Path, dir: &Path) -> String {
    let rel = dir.strip_prefix(logdir).unwrap_or(dir);
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// The directories under `logdir` (itself included) holding event files (names containing
/// `tfevents`, as TensorBoard finds them), each with its files in name order, directories in
/// path order. Directory symlinks are not followed (no cycles); file symlinks are.
fn find_event_files(logdir: &Path) -> Result<Vec<(PathBuf, Vec<PathBuf>)>, Error> {
    let mut out = Vec::new();
    let mut files = 0usize;
    let mut bytes = 0u64;
    let mut stack = vec![(logdir.to_owned(), 0usize)];
    while let Some((dir, depth)) = stack.pop() {
        let mut here = Vec::new();
        let mut subdirs = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(Error::io(&dir))? {
            let entry = entry.map_err(Error::io(&dir))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(Error::io(&path))?;
            if kind.is_dir() {
                if depth + 1 > MAX_DEPTH {
                    return Err(Error::Invalid(format!(
                        "{} is more than {MAX_DEPTH} directories below the logdir",
                        path.display()
                    )));
                }
                subdirs.push(path);
            } else if entry.file_name().to_string_lossy().contains("tfevents") {
                let meta = std::fs::metadata(&path).map_err(Error::io(&path))?;
                if !meta.is_file() {
                    continue;
                }
                files += 1;
                bytes += meta.len();
                if files > MAX_EVENT_FILES {
                    return Err(Error::Invalid(format!(
                        "{} holds more than {MAX_EVENT_FILES} event files: import its \
                         subdirectories one at a time",
                        logdir.display()
                    )));
                }
                if bytes > MAX_LOGDIR_BYTES {
                    return Err(Error::Invalid(format!(
                        "{} holds more than {} GiB of event files: import its \
                         subdirectories one at a time",
                        logdir.display(),
                        MAX_LOGDIR_BYTES >> 30
                    )));
                }
                here.push(path);
            }
        }
        if !here.is_empty() {
            here.sort();
            out.push((dir, here));
        }
        subdirs.sort();
        stack.extend(subdirs.into_iter().rev().map(|d| (d, depth + 1)));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
