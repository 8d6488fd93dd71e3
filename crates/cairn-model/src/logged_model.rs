//! Logged models (MLflow 3's `LoggedModel`): a model a run produced — or one made outside any
//! run — with its own id, params, tags, status, artifacts, and the metrics that measured it,
//! each linked to the run and the dataset it was measured with. Runs name the models they
//! produced (outputs, with a step) and the models they took as input.
//!
//! Deleting a logged model leaves a tombstone (who and when); it is never dropped.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use crate::{ArtifactRef, Conflict, ExperimentId, ModelError, RunId};

/// A logged model's id: `m-` and 32 lowercase hex digits, the form MLflow's server gives
/// (`m-{uuid hex}`). Made from a UUIDv7, so ids sort by creation.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(type = "string"))]
pub struct LoggedModelId(String);

#[cfg(feature = "ts")]
impl schemars::JsonSchema for LoggedModelId {
    fn inline_schema() -> bool {
        true
    }

    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LoggedModelId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^m-[0-9a-f]{32}$",
            "description": "A logged model: `m-` and 32 hex digits.",
        })
    }
}

impl LoggedModelId {
    /// A fresh id; ids made later sort after ids made earlier.
    pub fn new() -> LoggedModelId {
        LoggedModelId(format!("m-{}", Uuid::now_v7().simple()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for LoggedModelId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for LoggedModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LoggedModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LoggedModelId({})", self.0)
    }
}

impl FromStr for LoggedModelId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("m-").unwrap_or("");
        if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(ModelError::InvalidModelId(s.to_owned()));
        }
        Ok(LoggedModelId(s.to_owned()))
    }
}

impl Serialize for LoggedModelId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for LoggedModelId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Where a logged model is in its life: created `Pending` while its files upload, then `Ready`,
/// or `Failed` when saving or uploading them failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum LoggedModelStatus {
    Pending,
    Ready,
    Failed,
}

impl LoggedModelStatus {
    pub const ALL: [LoggedModelStatus; 3] = [Self::Pending, Self::Ready, Self::Failed];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }
}

impl fmt::Display for LoggedModelStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LoggedModelStatus {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ModelError::UnknownModelStatus(s.to_owned()))
    }
}

/// A metric value that measured a logged model (MLflow's `Metric` with a `model_id`): the run
/// that logged it and the dataset it was measured on, if any.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct LoggedModelMetric {
    pub key: String,
    #[serde(with = "crate::num")]
    #[cfg_attr(
        feature = "ts",
        ts(as = "crate::ts::Num"),
        schemars(with = "crate::Num")
    )]
    pub value: f64,
    pub step: i64,
    pub ts_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub run: Option<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub dataset_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub dataset_digest: Option<String>,
}

impl LoggedModelMetric {
    /// What one entry of a model's metrics stands for: the metric, the run that logged it and
    /// the dataset. A model keeps the latest value of each (its history is the run's series),
    /// so concurrent writers of different series never touch the same key.
    pub fn series_key(&self) -> String {
        serde_json::json!([
            self.key,
            self.run.map(|r| r.to_string()).unwrap_or_default(),
            self.dataset_name.as_deref().unwrap_or(""),
            self.dataset_digest.as_deref().unwrap_or(""),
        ])
        .to_string()
    }

    /// Whether this value supersedes `other` of the same series: logged later (by timestamp,
    /// then step), as MLflow's server picks a model's latest metric value.
    pub fn supersedes(&self, other: &LoggedModelMetric) -> bool {
        (self.ts_ms, self.step) >= (other.ts_ms, other.step)
    }
}

/// Who deleted a logged model and when: deleting is a tombstone, never a drop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Deletion {
    pub by: String,
    pub at_ms: i64,
}

/// One logged model, as the catalog holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct LoggedModel {
    pub id: LoggedModelId,
    pub experiment: ExperimentId,
    pub name: String,
    /// The run that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub source_run: Option<RunId>,
    pub status: LoggedModelStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub status_message: Option<String>,
    /// A user-defined kind (`agent`, `classifier`…) to search and compare by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub model_type: Option<String>,
    /// Where its files are, as MLflow clients address them (`mlflow-artifacts:/…`).
    pub artifact_location: String,
    /// Who created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub creator: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// The latest value of each (metric, run, dataset), sorted by key, run, dataset.
    #[serde(default)]
    pub metrics: Vec<LoggedModelMetric>,
    /// Its files, by path under the model's artifact root.
    #[serde(default)]
    pub artifacts: BTreeMap<String, ArtifactRef>,
    /// Runs that logged it as an output, with the step they logged it at.
    #[serde(default)]
    pub outputs: BTreeMap<RunId, i64>,
    /// Runs that took it as an input, with when they said so.
    #[serde(default)]
    pub inputs: BTreeMap<RunId, i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub deleted: Option<Deletion>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<Conflict>,
}

/// The characters MLflow refuses in a logged model's name.
pub const BAD_MODEL_NAME_CHARS: [char; 6] = ['/', ':', '.', '%', '"', '\''];

/// Longest logged model name (MLflow's column holds 500).
pub const MAX_MODEL_NAME_LEN: usize = 500;

/// Checks a logged model's name as MLflow's server does: not empty, none of `/ : . % " '`
/// (the name becomes part of `runs:/<run>/<name>` URIs), and at most 500 characters.
pub fn validate_logged_model_name(name: &str) -> Result<(), ModelError> {
    let reason = if name.is_empty() || name.contains(BAD_MODEL_NAME_CHARS) {
        None
    } else if name.chars().count() > MAX_MODEL_NAME_LEN {
        Some("longer than 500 characters")
    } else if name.chars().any(char::is_control) {
        Some("contains a control character")
    } else {
        return Ok(());
    };
    Err(ModelError::InvalidModelName {
        name: name.to_owned(),
        reason,
    })
}

/// `s` as Python's `repr` writes a string (MLflow's messages quote values that way).
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_mlflows_form_and_sort_by_creation() {
        let a = LoggedModelId::new();
        let b = LoggedModelId::new();
        assert!(a.as_str().starts_with("m-") && a.as_str().len() == 34);
        assert!(a <= b);
        assert_eq!(a.as_str().parse::<LoggedModelId>().unwrap(), a);
        for bad in [
            "m-nope",
            "6a095ab62c8e4a9899be5550f80407c3",
            "m-6A095AB62C8E4A9899BE5550F80407C3",
            "",
        ] {
            let err = bad.parse::<LoggedModelId>().unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn names_are_checked_as_mlflow_checks_them() {
        validate_logged_model_name("model").unwrap();
        validate_logged_model_name("my model-2").unwrap();
        for bad in ["", "a/b", "a.b", "a:b", "50%", "say \"hi\"", "it's"] {
            let err = validate_logged_model_name(bad).unwrap_err().to_string();
            assert!(err.starts_with("Invalid model name ("), "{err}");
        }
        assert_eq!(
            validate_logged_model_name("a/b").unwrap_err().to_string(),
            "Invalid model name ('a/b') provided. Model name must be a non-empty string and \
             cannot contain the following characters: ('/', ':', '.', '%', '\"', \"'\")"
        );
    }

    #[test]
    fn python_repr_picks_its_quotes() {
        assert_eq!(py_repr("a"), "'a'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("\"it's\""), "'\"it\\'s\"'");
        assert_eq!(py_repr("a\\b"), "'a\\\\b'");
    }

    #[test]
    fn a_later_value_of_a_series_supersedes_an_earlier_one() {
        let m = |ts_ms, step| LoggedModelMetric {
            key: "acc".into(),
            value: 0.5,
            step,
            ts_ms,
            run: None,
            dataset_name: Some("eval".into()),
            dataset_digest: None,
        };
        assert!(m(2, 0).supersedes(&m(1, 9)));
        assert!(m(1, 2).supersedes(&m(1, 1)));
        assert!(!m(1, 1).supersedes(&m(1, 2)));
        assert_eq!(m(1, 1).series_key(), m(5, 7).series_key());
        assert_eq!(m(1, 1).series_key(), r#"["acc","","eval",""]"#);
    }
}
