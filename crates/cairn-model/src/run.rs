//! Experiments and runs: status lifecycle, typed params, tags, summary metrics, artifact references.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{BlobHash, Compliance, ExperimentId, Lineage, ModelError, RunId, RunSchema};

/// A family of runs: a sweep, a model line, a project's experiments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Experiment {
    pub id: ExperimentId,
    pub name: String,
    pub created_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Overrides the workspace's schema for this experiment's runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub schema: Option<RunSchema>,
    #[serde(default)]
    pub deleted: bool,
}

/// Where a run is in its life. `Running` is the only state that is not final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum RunStatus {
    Running,
    Finished,
    Failed,
    Killed,
}

impl RunStatus {
    pub const ALL: [RunStatus; 4] = [Self::Running, Self::Finished, Self::Failed, Self::Killed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
            Self::Killed => "killed",
        }
    }

    pub fn is_final(self) -> bool {
        self != Self::Running
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ModelError::UnknownStatus(s.to_owned()))
    }
}

/// Why a run has a parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum ParentKind {
    /// One trial of a sweep, under the sweep's run.
    Sweep,
    /// A new run that starts from another's state with changes.
    Fork,
    /// The same training continued after an interruption.
    Resume,
    /// A nested run (MLflow's `nested=True`).
    Child,
}

impl ParentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sweep => "sweep",
            Self::Fork => "fork",
            Self::Resume => "resume",
            Self::Child => "child",
        }
    }
}

impl FromStr for ParentKind {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Self::Sweep, Self::Fork, Self::Resume, Self::Child]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ModelError::InvalidKey {
                what: "parent kind",
                value: s.to_owned(),
                reason: "expected sweep, fork, resume or child",
            })
    }
}

/// The typed view of a hyperparameter. Params are stored as the text that was logged (what MLflow
/// clients read back, bit for bit); [`ParamValue::infer`] types that text for schema checks,
/// range filters and sorting.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl ParamValue {
    /// Types a value given as text: `true`/`false`, integers, finite floats (`1e-05` included),
    /// else a string.
    pub fn infer(text: &str) -> ParamValue {
        let t = text.trim();
        match t {
            "true" | "True" | "TRUE" => return ParamValue::Bool(true),
            "false" | "False" | "FALSE" => return ParamValue::Bool(false),
            _ => {}
        }
        if let Ok(i) = t.parse::<i64>() {
            return ParamValue::Int(i);
        }
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => ParamValue::Float(f),
            _ => ParamValue::Str(text.to_owned()),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            ParamValue::Bool(_) => "bool",
            ParamValue::Int(_) => "int",
            ParamValue::Float(_) => "float",
            ParamValue::Str(_) => "string",
        }
    }

    /// The value as a number, for range filters and sorting.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(f) => Some(*f),
            _ => None,
        }
    }
}

/// The latest value of a metric and its range, as the catalog keeps it for listing and search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct MetricSummary {
    /// The last value logged (in time order).
    #[serde(with = "crate::num")]
    #[cfg_attr(
        feature = "ts",
        ts(as = "crate::ts::Num"),
        schemars(with = "crate::Num")
    )]
    pub last: f64,
    pub step: i64,
    pub ts_ms: i64,
    #[serde(
        default,
        with = "crate::num::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "ts",
        ts(as = "Option<crate::ts::Num>", optional),
        schemars(with = "Option<crate::Num>")
    )]
    pub min: Option<f64>,
    #[serde(
        default,
        with = "crate::num::option",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(
        feature = "ts",
        ts(as = "Option<crate::ts::Num>", optional),
        schemars(with = "Option<crate::Num>")
    )]
    pub max: Option<f64>,
    pub count: u64,
}

/// What a logical artifact path refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum ArtifactKind {
    File,
    /// A directory tree; the hash is that of its manifest.
    Dir,
}

/// A run's artifact: a logical path (`model/weights.safetensors`) bound to content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ArtifactRef {
    pub hash: BlobHash,
    pub size: u64,
    pub kind: ArtifactKind,
}

/// Two or more values written concurrently to the same field by different writers.
/// Kept, not silently resolved: the catalog shows the winner and every other value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Conflict {
    /// Dotted field path, e.g. `params.lr` or `name`.
    pub field: String,
    /// Every concurrent value, the one shown first.
    #[cfg_attr(
        feature = "ts",
        ts(type = "Array<unknown>"),
        schemars(with = "Vec<serde_json::Value>")
    )]
    pub values: Vec<serde_json::Value>,
}

/// One run, as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Run {
    pub id: RunId,
    pub experiment: ExperimentId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub owner: Option<String>,
    pub status: RunStatus,
    pub start_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub end_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub parent: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub parent_kind: Option<ParentKind>,
    #[serde(default)]
    /// Hyperparameters as the text that was logged; [`ParamValue::infer`] gives the typed view.
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Summary metrics (latest value and range), keyed by metric name.
    #[serde(default)]
    pub metrics: BTreeMap<String, MetricSummary>,
    #[serde(default)]
    pub lineage: Lineage,
    #[serde(default)]
    pub artifacts: BTreeMap<String, ArtifactRef>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Where the run stands against its schema (a projection: the catalog recomputes it when
    /// the run or the schema changes, and from a peer's runs as they arrive).
    #[serde(default)]
    pub compliance: Compliance,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}

impl Run {
    /// A new running run with nothing logged yet.
    pub fn new(id: RunId, experiment: ExperimentId, name: impl Into<String>, start_ms: i64) -> Run {
        Run {
            id,
            experiment,
            name: name.into(),
            owner: None,
            status: RunStatus::Running,
            start_ms,
            end_ms: None,
            parent: None,
            parent_kind: None,
            params: BTreeMap::new(),
            tags: BTreeMap::new(),
            metrics: BTreeMap::new(),
            lineage: Lineage::default(),
            artifacts: BTreeMap::new(),
            notes: String::new(),
            compliance: Compliance::default(),
            deleted: false,
            conflicts: Vec::new(),
        }
    }
}

/// Longest metric, param or tag key, as MLflow allows.
pub const MAX_KEY_LEN: usize = 250;

/// Checks a metric, param or tag key: not empty, at most 250 bytes, no control characters,
/// no path traversal (`..` segments), not starting with `/`.
pub fn validate_key(what: &'static str, key: &str) -> Result<(), ModelError> {
    let bad = |reason| {
        Err(ModelError::InvalidKey {
            what,
            value: key.to_owned(),
            reason,
        })
    };
    if key.trim().is_empty() {
        return bad("must not be empty");
    }
    if key.len() > MAX_KEY_LEN {
        return bad("longer than 250 bytes");
    }
    if key.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    if key.starts_with('/') || key.split('/').any(|seg| seg == "..") {
        return bad("must be a relative name without '..'");
    }
    Ok(())
}

/// Longest artifact path (a logical path or a path inside a directory artifact), in bytes.
pub const MAX_ARTIFACT_PATH_LEN: usize = 4096;

/// Why `path` may not name an artifact, if it may not. The rules do not depend on the platform:
/// a path a peer or an upload gives on Linux is written to disk on Windows too. It is relative,
/// `/`-separated, of plain names: no empty, `.` or `..` segment, no `\`, no drive prefix
/// (`C:`), no control character.
pub fn artifact_path_problem(path: &str) -> Option<&'static str> {
    if path.is_empty() {
        return Some("must not be empty");
    }
    if path.len() > MAX_ARTIFACT_PATH_LEN {
        return Some("longer than 4096 bytes");
    }
    if path.chars().any(char::is_control) {
        return Some("contains a control character");
    }
    if path.contains('\\') {
        return Some("contains '\\' (the separator is '/')");
    }
    if path.starts_with('/') {
        return Some("must be relative (starts with '/')");
    }
    for segment in path.split('/') {
        match segment {
            "" => return Some("has an empty segment (a doubled or trailing '/')"),
            "." => return Some("has a '.' segment"),
            ".." => return Some("has a '..' segment (path traversal)"),
            _ => {}
        }
        let b = segment.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            return Some("has a drive prefix such as 'C:'");
        }
    }
    None
}

/// Checks an artifact path by [`artifact_path_problem`]'s rules.
pub fn validate_artifact_path(path: &str) -> Result<(), ModelError> {
    match artifact_path_problem(path) {
        None => Ok(()),
        Some(reason) => Err(ModelError::InvalidKey {
            what: "artifact path",
            value: path.to_owned(),
            reason,
        }),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn artifact_paths_are_plain_relative_names_on_every_platform() {
        for ok in [
            "a",
            "model/weights.bin",
            "..hidden",
            "a/.b",
            "x..y",
            "logs/output.log",
        ] {
            assert_eq!(artifact_path_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("..\\..\\x", "'\\'"),
            ("a\\b", "'\\'"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("a/./b", "'.' segment"),
            ("./a", "'.' segment"),
            ("../a", "'..'"),
            ("a/../../b", "'..'"),
            ("/etc/passwd", "relative"),
            ("C:x", "drive"),
            ("a/d:/x", "drive"),
            ("a\0b", "control"),
            ("a\nb", "control"),
        ] {
            let reason = artifact_path_problem(bad).unwrap_or_else(|| panic!("{bad:?} accepted"));
            assert!(reason.contains(why), "{bad:?}: {reason}");
        }
        let long = "a/".repeat(3000) + "b";
        assert!(artifact_path_problem(&long).is_some());
        let e = validate_artifact_path("a//b").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid artifact path 'a//b': has an empty segment (a doubled or trailing '/')"
        );
    }
    use super::*;

    #[test]
    fn params_are_typed_from_their_text() {
        assert_eq!(ParamValue::infer("0.001"), ParamValue::Float(0.001));
        assert_eq!(ParamValue::infer("1e-05"), ParamValue::Float(1e-5));
        assert_eq!(ParamValue::infer("64"), ParamValue::Int(64));
        assert_eq!(ParamValue::infer("True"), ParamValue::Bool(true));
        assert_eq!(ParamValue::infer("adam"), ParamValue::Str("adam".into()));
        assert_eq!(ParamValue::infer("nan"), ParamValue::Str("nan".into()));
        assert_eq!(ParamValue::infer("inf").as_f64(), None);
    }

    #[test]
    fn status_parses_case_insensitively_and_names_bad_input() {
        assert_eq!(
            "FINISHED".parse::<RunStatus>().unwrap(),
            RunStatus::Finished
        );
        let err = "done".parse::<RunStatus>().unwrap_err();
        assert!(err.to_string().contains("'done'"), "{err}");
    }

    #[test]
    fn keys_are_validated_with_the_reason() {
        assert!(validate_key("metric key", "train/loss").is_ok());
        let long = "x".repeat(251);
        for (key, reason) in [
            ("", "empty"),
            (long.as_str(), "250"),
            ("a\nb", "control"),
            ("../x", ".."),
        ] {
            let err = validate_key("metric key", key).unwrap_err().to_string();
            assert!(err.contains(reason), "{key:?}: {err}");
        }
    }

    #[test]
    fn non_finite_summaries_survive_json() {
        let s = MetricSummary {
            last: f64::NAN,
            step: 3,
            ts_ms: 9,
            min: Some(f64::NEG_INFINITY),
            max: Some(f64::INFINITY),
            count: 4,
        };
        let json = serde_json::to_string(&s).unwrap();
        assert!(
            json.contains("\"NaN\"") && json.contains("\"-Infinity\""),
            "{json}"
        );
        let back: MetricSummary = serde_json::from_str(&json).unwrap();
        assert!(back.last.is_nan());
        assert_eq!(back.min, Some(f64::NEG_INFINITY));
        assert_eq!(back.max, Some(f64::INFINITY));
    }
}
