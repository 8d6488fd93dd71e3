//! MLflow's file store (an `mlruns` directory), read directly: `<experiment>/meta.yaml` and
//! `tags/`; `<experiment>/<run>/meta.yaml`, `params/`, `tags/`, `metrics/` (a line per point:
//! `timestamp value step`), `inputs/<id>/meta.yaml` pointing into `<experiment>/datasets/`;
//! `.trash/` for deleted experiments; `models/<name>/meta.yaml`, `tags/`, `aliases` and
//! `version-<n>/`. Keys holding `/` are nested directories, as MLflow writes them.
//!
//! Every file but the metric histories is read (and each metric file checked line by line)
//! when the runs are listed, before the import writes anything: a broken file stops it with the
//! file's path and line. Bounded: [`MAX_VALUE_BYTES`] for a param or tag file,
//! [`yaml::MAX_BYTES`] for a `meta.yaml`, [`MAX_METRIC_BYTES`] for one metric's history.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use cairn_metrics::Point;
use cairn_model::DatasetSnapshot;

use super::yaml::{self, Doc};
use super::{MlflowSource, SrcExperiment, SrcModel, SrcRun, SrcVersion};
use crate::Error;

/// The largest param or tag file read.
pub const MAX_VALUE_BYTES: u64 = 1 << 20;
/// The largest metric file read (one series' history, held while it is appended).
pub const MAX_METRIC_BYTES: u64 = 1 << 30;
/// Directory levels of a key (`a/b/c`) followed.
const MAX_KEY_DEPTH: usize = 16;

#[derive(Debug)]
pub struct FileStore {
    root: PathBuf,
    /// Each run's directory, by run id (filled by `runs`).
    dirs: HashMap<String, PathBuf>,
}

fn bad(path: &Path, what: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("{}: {what}", path.display()))
}

/// A file's text, refused past `max` bytes.
fn read_text(path: &Path, max: u64) -> Result<String, Error> {
    let len = std::fs::metadata(path).map_err(Error::io(path))?.len();
    if len > max {
        return Err(bad(path, format!("longer than {max} bytes")));
    }
    let bytes = std::fs::read(path).map_err(Error::io(path))?;
    String::from_utf8(bytes).map_err(|_| bad(path, "not UTF-8 text"))
}

fn meta(path: &Path) -> Result<Doc, Error> {
    let text = read_text(path, yaml::MAX_BYTES as u64)?;
    yaml::parse(&text).map_err(|e| bad(path, e))
}

/// The files under `dir` as `(key, path)`, a key's `/` a directory level, sorted by key.
fn keyed_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    fn walk(
        dir: &Path,
        prefix: &str,
        depth: usize,
        out: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), Error> {
        if depth > MAX_KEY_DEPTH {
            return Err(bad(dir, format!("keys nested deeper than {MAX_KEY_DEPTH}")));
        }
        for e in std::fs::read_dir(dir).map_err(Error::io(dir))? {
            let e = e.map_err(Error::io(dir))?;
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let key = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if e.file_type().map_err(Error::io(&path))?.is_dir() {
                walk(&path, &key, depth + 1, out)?;
            } else {
                out.push((key, path));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    if dir.is_dir() {
        walk(dir, "", 0, &mut out)?;
    }
    out.sort();
    Ok(out)
}

/// The `key → value` files under `dir` (params, tags).
fn values(dir: &Path) -> Result<Vec<(String, String)>, Error> {
    keyed_files(dir)?
        .into_iter()
        .map(|(k, p)| Ok((k, read_text(&p, MAX_VALUE_BYTES)?)))
        .collect()
}

/// MLflow's `RunStatus` numbers, as the file store writes them.
fn status_word(n: &str) -> &'static str {
    match n {
        "1" | "RUNNING" => "RUNNING",
        "2" | "SCHEDULED" => "SCHEDULED",
        "3" | "FINISHED" => "FINISHED",
        "4" | "FAILED" => "FAILED",
        "5" | "KILLED" => "KILLED",
        _ => "RUNNING",
    }
}

fn int(doc: &Doc, key: &str, path: &Path) -> Result<Option<i64>, Error> {
    match doc.text(key) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| bad(path, format!("{key} is {t:?}, not a whole number"))),
    }
}

/// One line of a metric file: `timestamp value step` (`step` absent in stores of MLflow < 1.0).
fn point(line: &str) -> Option<Point> {
    let mut it = line.split_whitespace();
    let ts_ms = it.next()?.parse().ok()?;
    let value = it.next()?.parse::<f64>().ok()?;
    let step = match it.next() {
        Some(s) => s.parse().ok()?,
        None => 0,
    };
    it.next().is_none().then_some(Point { step, ts_ms, value })
}

/// A metric file's points, ordered as the SQL store orders them (step, timestamp, value).
fn series(path: &Path) -> Result<Vec<Point>, Error> {
    let text = read_text(path, MAX_METRIC_BYTES)?;
    let mut pts = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        pts.push(point(line).ok_or_else(|| {
            bad(
                path,
                format!("line {}: {line:?} is not `timestamp value step`", n + 1),
            )
        })?);
    }
    pts.sort_by(|a, b| {
        (a.step, a.ts_ms)
            .cmp(&(b.step, b.ts_ms))
            .then(a.value.total_cmp(&b.value))
    });
    Ok(pts)
}

impl FileStore {
    /// Opens the `mlruns` directory `root`: refused when no experiment's `meta.yaml` is there.
    pub fn open(root: &Path) -> Result<FileStore, Error> {
        let root = root.canonicalize().map_err(Error::io(root))?;
        let store = FileStore {
            root,
            dirs: HashMap::new(),
        };
        if store.experiment_dirs()?.is_empty() {
            return Err(Error::Invalid(format!(
                "{} is not an MLflow file store: no experiment directory (with a meta.yaml) in it",
                store.root.display()
            )));
        }
        Ok(store)
    }

    /// The directories holding an experiment's `meta.yaml`: `(dir, deleted)`.
    fn experiment_dirs(&self) -> Result<Vec<(PathBuf, bool)>, Error> {
        let mut out = Vec::new();
        for (base, deleted) in [(self.root.clone(), false), (self.root.join(".trash"), true)] {
            if !base.is_dir() {
                continue;
            }
            for e in std::fs::read_dir(&base).map_err(Error::io(&base))? {
                let e = e.map_err(Error::io(&base))?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name == "models" {
                    continue;
                }
                let dir = e.path();
                if dir.join("meta.yaml").is_file() {
                    out.push((dir, deleted));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn run(&self, dir: &Path, experiment: &str) -> Result<SrcRun, Error> {
        let path = dir.join("meta.yaml");
        let doc = meta(&path)?;
        let id = doc
            .text("run_id")
            .or_else(|| doc.text("run_uuid"))
            .ok_or_else(|| bad(&path, "no run_id"))?
            .to_owned();
        let mut metric_keys = Vec::new();
        for (k, p) in keyed_files(&dir.join("metrics"))? {
            series(&p)?;
            metric_keys.push(k);
        }
        let mut datasets = Vec::new();
        let inputs = dir.join("inputs");
        if inputs.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&inputs)
                .map_err(Error::io(&inputs))?
                .map(|e| e.map(|e| e.path()).map_err(Error::io(&inputs)))
                .collect::<Result<_, _>>()?;
            entries.sort();
            for input in entries {
                let path = input.join("meta.yaml");
                if !path.is_file() {
                    continue;
                }
                let doc = meta(&path)?;
                if doc.text("source_type") != Some("DATASET") {
                    continue;
                }
                let source_id = doc
                    .text("source_id")
                    .ok_or_else(|| bad(&path, "no source_id"))?;
                let ds_path = dir
                    .parent()
                    .unwrap_or(dir)
                    .join("datasets")
                    .join(source_id)
                    .join("meta.yaml");
                if !ds_path.is_file() {
                    return Err(bad(&path, format!("its dataset {source_id} is missing")));
                }
                datasets.push(dataset(&meta(&ds_path)?, doc.pairs("tags")));
            }
        }
        Ok(SrcRun {
            experiment: doc.text("experiment_id").unwrap_or(experiment).to_owned(),
            name: doc.text("run_name").map(str::to_owned),
            user: doc.text("user_id").map(str::to_owned),
            status: status_word(doc.text("status").unwrap_or("")).to_owned(),
            start_ms: int(&doc, "start_time", &path)?,
            end_ms: int(&doc, "end_time", &path)?,
            deleted: doc.text("lifecycle_stage") == Some("deleted"),
            artifact_uri: doc.text("artifact_uri").map(str::to_owned),
            params: values(&dir.join("params"))?,
            tags: values(&dir.join("tags"))?,
            metric_keys,
            datasets,
            id,
        })
    }
}

/// A dataset's `meta.yaml` and the input's tags as a lineage snapshot (as `runs/log-inputs`
/// makes one).
fn dataset(d: &Doc, input_tags: Vec<(String, String)>) -> DatasetSnapshot {
    let mut context = None;
    let mut tags = std::collections::BTreeMap::new();
    for (k, v) in input_tags {
        if k == "mlflow.data.context" {
            context = Some(v);
        } else {
            tags.insert(k, v);
        }
    }
    let text = |k: &str| d.text(k).map(str::to_owned).filter(|t| !t.is_empty());
    let profile = text("profile");
    DatasetSnapshot {
        name: text("name"),
        context,
        uri: text("source").as_deref().map(super::sqlite::source_uri),
        digest: text("digest"),
        size_bytes: None,
        rows: profile
            .as_deref()
            .and_then(|p| serde_json::from_str::<serde_json::Value>(p).ok())
            .and_then(|p| p.get("num_rows").and_then(serde_json::Value::as_u64)),
        source_type: text("source_type"),
        schema: text("schema"),
        source: text("source"),
        profile,
        tags,
    }
}

impl MlflowSource for FileStore {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    fn base_dir(&self) -> Option<PathBuf> {
        self.root.parent().map(Path::to_owned)
    }

    fn experiments(&mut self) -> Result<Vec<SrcExperiment>, Error> {
        let mut out = Vec::new();
        for (dir, trashed) in self.experiment_dirs()? {
            let path = dir.join("meta.yaml");
            let doc = meta(&path)?;
            out.push(SrcExperiment {
                id: doc
                    .text("experiment_id")
                    .ok_or_else(|| bad(&path, "no experiment_id"))?
                    .to_owned(),
                name: doc
                    .text("name")
                    .ok_or_else(|| bad(&path, "no name"))?
                    .to_owned(),
                deleted: trashed || doc.text("lifecycle_stage") == Some("deleted"),
                tags: values(&dir.join("tags"))?,
            });
        }
        Ok(out)
    }

    fn runs(&mut self, experiments: &[String]) -> Result<Vec<SrcRun>, Error> {
        let mut out = Vec::new();
        for (dir, _) in self.experiment_dirs()? {
            let id = meta(&dir.join("meta.yaml"))?
                .text("experiment_id")
                .unwrap_or_default()
                .to_owned();
            if !experiments.contains(&id) {
                continue;
            }
            let mut runs: Vec<PathBuf> = std::fs::read_dir(&dir)
                .map_err(Error::io(&dir))?
                .map(|e| e.map(|e| e.path()).map_err(Error::io(&dir)))
                .collect::<Result<Vec<_>, _>>()?
                .into_iter()
                .filter(|p| p.join("meta.yaml").is_file())
                .collect();
            runs.sort();
            for run_dir in runs {
                let run = self.run(&run_dir, &id)?;
                self.dirs.insert(run.id.clone(), run_dir);
                out.push(run);
            }
        }
        out.sort_by(|a, b| (a.start_ms, &a.id).cmp(&(b.start_ms, &b.id)));
        Ok(out)
    }

    fn points(
        &mut self,
        run: &str,
        sink: &mut dyn FnMut(&str, Point) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let Some(dir) = self.dirs.get(run) else {
            return Ok(());
        };
        for (key, path) in keyed_files(&dir.join("metrics"))? {
            for p in series(&path)? {
                sink(&key, p)?;
            }
        }
        Ok(())
    }

    fn models(&mut self) -> Result<Vec<SrcModel>, Error> {
        let models = self.root.join("models");
        if !models.is_dir() {
            return Ok(Vec::new());
        }
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(&models)
            .map_err(Error::io(&models))?
            .map(|e| e.map(|e| e.path()).map_err(Error::io(&models)))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .filter(|p| p.join("meta.yaml").is_file())
            .collect();
        dirs.sort();
        let mut out = Vec::new();
        for dir in dirs {
            let path = dir.join("meta.yaml");
            let doc = meta(&path)?;
            let mut versions = Vec::new();
            for e in std::fs::read_dir(&dir).map_err(Error::io(&dir))? {
                let vdir = e.map_err(Error::io(&dir))?.path();
                let vpath = vdir.join("meta.yaml");
                let is_version = vdir
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("version-"));
                if !is_version || !vpath.is_file() {
                    continue;
                }
                let v = meta(&vpath)?;
                let number = int(&v, "version", &vpath)?
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| bad(&vpath, "no version number"))?;
                let stage = v.text("current_stage").map(str::to_owned);
                let deleted = stage.as_deref() == Some("Deleted_Internal");
                versions.push(SrcVersion {
                    version: number,
                    source: v.text("source").map(str::to_owned),
                    run_id: v
                        .text("run_id")
                        .map(str::to_owned)
                        .filter(|r| !r.is_empty()),
                    description: v
                        .text("description")
                        .map(str::to_owned)
                        .filter(|d| !d.is_empty()),
                    stage: stage
                        .filter(|s| !deleted && !s.is_empty() && !s.eq_ignore_ascii_case("none")),
                    deleted,
                    tags: values(&vdir.join("tags"))?,
                });
            }
            versions.sort_by_key(|v| v.version);
            let mut aliases = Vec::new();
            for (alias, version) in doc.pairs("aliases") {
                let n = version
                    .parse()
                    .map_err(|_| bad(&path, format!("alias {alias} names version {version:?}")))?;
                aliases.push((alias, n));
            }
            out.push(SrcModel {
                name: doc
                    .text("name")
                    .ok_or_else(|| bad(&path, "no name"))?
                    .to_owned(),
                description: doc
                    .text("description")
                    .map(str::to_owned)
                    .filter(|d| !d.is_empty()),
                tags: values(&dir.join("tags"))?,
                versions,
                aliases,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_lines_read_as_mlflow_writes_them() {
        let p = point("1700000200002 inf 2").unwrap();
        assert_eq!(
            (p.ts_ms, p.value, p.step),
            (1700000200002, f64::INFINITY, 2)
        );
        assert!(point("1 nan 1").unwrap().value.is_nan());
        assert_eq!(point("1 -inf 3").unwrap().value, f64::NEG_INFINITY);
        assert_eq!(point("5 0.5").unwrap().step, 0);
        assert!(point("5 x 1").is_none());
        assert!(point("5 1 2 3").is_none());
    }
}
