//! The mandatory metadata schema: which run fields a project requires, of which type, and
//! whether a run lacking them is refused or kept and marked incomplete.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{ModelError, ParamValue, Run};

/// What a project requires of every run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RunSchema {
    pub required: Vec<FieldRequirement>,
    pub enforcement: Enforcement,
}

impl Default for RunSchema {
    /// Who ran it, on which code, on which data: the minimum to reproduce a run. Kept but marked
    /// incomplete when missing, so a new team is told what is missing without losing runs.
    fn default() -> Self {
        RunSchema {
            required: ["owner", "code.commit", "dataset.digest"]
                .into_iter()
                .map(|f| FieldRequirement {
                    field: FieldPath(f.to_owned()),
                    ty: FieldType::Any,
                })
                .collect(),
            enforcement: Enforcement::MarkIncomplete,
        }
    }
}

/// What happens to a run that lacks required fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum Enforcement {
    /// The run is not created; the error lists every missing or mistyped field.
    Refuse,
    /// The run is created and carries the list of what it lacks.
    MarkIncomplete,
}

impl FromStr for Enforcement {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "refuse" => Ok(Self::Refuse),
            "mark" | "mark_incomplete" | "mark-incomplete" => Ok(Self::MarkIncomplete),
            _ => Err(ModelError::InvalidField {
                value: s.to_owned(),
                reason: "enforcement must be 'refuse' or 'mark-incomplete'".into(),
            }),
        }
    }
}

/// One required field and its type, written `params.learning_rate: float`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct FieldRequirement {
    pub field: FieldPath,
    pub ty: FieldType,
}

impl FromStr for FieldRequirement {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (field, ty) = match s.split_once(':') {
            Some((f, t)) => (f.trim(), t.trim().parse()?),
            None => (s.trim(), FieldType::Any),
        };
        Ok(FieldRequirement {
            field: field.parse()?,
            ty,
        })
    }
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ty {
            FieldType::Any => write!(f, "{}", self.field),
            ty => write!(f, "{}: {}", self.field, ty),
        }
    }
}

/// The type a required field must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum FieldType {
    Any,
    String,
    Float,
    Int,
    Bool,
    /// A content digest: hex of at least 32 digits, optionally prefixed `algo:`.
    Digest,
}

impl FieldType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::String => "string",
            Self::Float => "float",
            Self::Int => "int",
            Self::Bool => "bool",
            Self::Digest => "digest",
        }
    }

    /// Does `text` have this type? An int is a valid float.
    fn accepts(self, text: &str) -> bool {
        match self {
            Self::Any | Self::String => true,
            Self::Float => matches!(
                ParamValue::infer(text),
                ParamValue::Float(_) | ParamValue::Int(_)
            ),
            Self::Int => matches!(ParamValue::infer(text), ParamValue::Int(_)),
            Self::Bool => matches!(ParamValue::infer(text), ParamValue::Bool(_)),
            Self::Digest => {
                let hex = text.rsplit_once(':').map_or(text, |(_, h)| h);
                hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
            }
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for FieldType {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            Self::Any,
            Self::String,
            Self::Float,
            Self::Int,
            Self::Bool,
            Self::Digest,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| ModelError::InvalidField {
            value: s.to_owned(),
            reason: "type must be one of any, string, float, int, bool, digest".into(),
        })
    }
}

/// A run field a schema can require, written as a dotted path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct FieldPath(pub String);

/// Fields that stand alone; `params.*`, `tags.*`, `metrics.*` and `eval.*` take a name after the dot.
const PLAIN_FIELDS: &[&str] = &[
    "owner",
    "name",
    "parent",
    "notes",
    "dataset",
    "dataset.uri",
    "dataset.digest",
    "dataset.size",
    "dataset.rows",
    "feature_set",
    "feature_set.version",
    "code.repo",
    "code.commit",
    "code.branch",
    "infra.host",
    "infra.os",
    "infra.cpu",
    "infra.gpu",
    "infra.container",
    "infra.instance_type",
    "infra.hourly_price",
    "eval",
];
const NAMED_PREFIXES: &[&str] = &["params.", "tags.", "metrics.", "eval."];

impl FromStr for FieldPath {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let known = PLAIN_FIELDS.contains(&s)
            || NAMED_PREFIXES
                .iter()
                .any(|p| s.strip_prefix(p).is_some_and(|rest| !rest.is_empty()));
        if known {
            Ok(FieldPath(s.to_owned()))
        } else {
            Err(ModelError::InvalidField {
                value: s.to_owned(),
                reason: format!(
                    "not a run field; expected one of {}, or params.NAME, tags.NAME, metrics.NAME, eval.NAME",
                    PLAIN_FIELDS.join(", ")
                ),
            })
        }
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One way a run falls short of its schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaViolation {
    pub field: String,
    /// `None` when the field is missing; the type it should have had otherwise.
    pub expected: Option<FieldType>,
    /// The offending value, when there was one.
    pub found: Option<String>,
    /// For `dataset.*` fields, the dataset (role) that falls short: a run has several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.expected, &self.found) {
            (Some(ty), Some(v)) => write!(f, "{} must be {ty} (got '{v}')", self.field)?,
            _ => write!(f, "{} is missing", self.field)?,
        }
        match &self.dataset {
            Some(name) => write!(f, " for dataset '{name}'"),
            None => Ok(()),
        }
    }
}

/// Where a run stands against its schema. A projection: recomputed from the run and the schema
/// whenever either changes, never stored in the run's doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum ComplianceState {
    /// Has every field the schema requires.
    #[default]
    Compliant,
    /// Lacks required fields; the schema keeps such runs and marks them.
    Incomplete,
    /// Still running and lacking required fields under a refusing schema: judged when it ends
    /// (MLflow clients send datasets after creating the run).
    Pending,
    /// Ended without the fields a refusing schema requires: kept, but it cannot be registered
    /// or promoted.
    Refused,
}

impl ComplianceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compliant => "compliant",
            Self::Incomplete => "incomplete",
            Self::Pending => "pending",
            Self::Refused => "refused",
        }
    }
}

impl fmt::Display for ComplianceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A run's compliance with its schema: the state and every field it lacks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Compliance {
    pub state: ComplianceState,
    /// Each missing or mistyped field, as [`SchemaViolation`] says it (`dataset.digest is
    /// missing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

impl Compliance {
    /// Checks `run` against `schema`: compliant with nothing missing; else refused when the
    /// schema refuses and the run has ended, pending when it refuses and the run still runs,
    /// incomplete when the schema only marks.
    pub fn check(schema: &RunSchema, run: &Run) -> Compliance {
        let missing: Vec<String> = schema.check(run).iter().map(ToString::to_string).collect();
        let state = if missing.is_empty() {
            ComplianceState::Compliant
        } else {
            match schema.enforcement {
                Enforcement::MarkIncomplete => ComplianceState::Incomplete,
                Enforcement::Refuse if run.status.is_final() => ComplianceState::Refused,
                Enforcement::Refuse => ComplianceState::Pending,
            }
        };
        Compliance { state, missing }
    }

    pub fn is_compliant(&self) -> bool {
        self.state == ComplianceState::Compliant
    }

    /// One line saying where the run stands and why.
    pub fn explain(&self) -> String {
        let missing = self.missing.join("; ");
        match self.state {
            ComplianceState::Compliant => "compliant".into(),
            ComplianceState::Incomplete => format!("incomplete: {missing}"),
            ComplianceState::Pending => format!(
                "pending: {missing} so far; the schema refuses incomplete runs and judges this \
                 one when it ends"
            ),
            ComplianceState::Refused => format!(
                "refused: the run ended without what the schema requires ({missing}); it is \
                 kept, but cannot be registered or promoted"
            ),
        }
    }
}

impl RunSchema {
    /// Every missing or mistyped field of `run`, all at once (empty when it conforms).
    pub fn check(&self, run: &Run) -> Vec<SchemaViolation> {
        let mut out = Vec::new();
        for req in &self.required {
            let values = field_values(run, &req.field.0);
            let violation = |expected, found, dataset: &Option<String>| SchemaViolation {
                field: req.field.0.clone(),
                expected,
                found,
                dataset: dataset.clone(),
            };
            if values.is_empty() {
                out.push(violation(None, None, &None));
                continue;
            }
            for (dataset, v) in values {
                match v {
                    None => out.push(violation(None, None, &dataset)),
                    Some(text) if !req.ty.accepts(&text) => {
                        out.push(violation(Some(req.ty), Some(text), &dataset));
                    }
                    Some(_) => {}
                }
            }
        }
        out
    }

    /// The schema as `field: type` lines, the form `cairn schema set` reads back.
    pub fn describe(&self) -> Vec<String> {
        self.required.iter().map(|r| r.to_string()).collect()
    }
}

/// The values a field has in `run`: empty when absent, one entry per dataset for `dataset.*`
/// (named, with `None` for a dataset lacking the sub-field).
fn field_values(run: &Run, field: &str) -> Vec<(Option<String>, Option<String>)> {
    let one = |v: Option<String>| v.into_iter().map(|v| (None, Some(v))).collect::<Vec<_>>();
    let non_empty = |s: &str| (!s.trim().is_empty()).then(|| s.to_owned());
    let lin = &run.lineage;
    let code = lin.code.as_ref();
    let infra = lin.infra.as_ref();
    if let Some(key) = field.strip_prefix("params.") {
        return one(run.params.get(key).cloned());
    }
    if let Some(key) = field.strip_prefix("tags.") {
        return one(run.tags.get(key).cloned());
    }
    if let Some(key) = field.strip_prefix("metrics.") {
        return one(run.metrics.get(key).map(|m| m.last.to_string()));
    }
    if let Some(key) = field.strip_prefix("eval.") {
        return one(lin.evaluations.get(key).map(|_| key.to_owned()));
    }
    if let Some(sub) = field.strip_prefix("dataset") {
        return lin
            .datasets
            .iter()
            .map(|(name, d)| {
                let value = match sub {
                    "" => Some(name.clone()),
                    ".uri" => d.uri.clone(),
                    ".digest" => d.digest.clone(),
                    ".size" => d.size_bytes.map(|v| v.to_string()),
                    _ => d.rows.map(|v| v.to_string()),
                };
                (Some(name.clone()), value)
            })
            .collect();
    }
    let v = match field {
        "owner" => run.owner.as_deref().and_then(non_empty),
        "name" => non_empty(&run.name),
        "parent" => run.parent.map(|p| p.to_string()),
        "notes" => non_empty(&run.notes),
        "feature_set" => lin.feature_set.as_ref().map(|f| f.name.clone()),
        "feature_set.version" => lin.feature_set.as_ref().and_then(|f| non_empty(&f.version)),
        "code.repo" => code.and_then(|c| c.repo.clone()),
        "code.commit" => code.and_then(|c| c.commit.clone()),
        "code.branch" => code.and_then(|c| c.branch.clone()),
        "infra.host" => infra.and_then(|i| i.host.clone()),
        "infra.os" => infra.and_then(|i| i.os.clone()),
        "infra.cpu" => infra.and_then(|i| i.cpu_model.clone()),
        "infra.gpu" => infra.and_then(|i| i.gpus.first().map(|g| g.model.clone())),
        "infra.container" => infra.and_then(|i| i.container_image.clone()),
        "infra.instance_type" => infra.and_then(|i| i.instance_type.clone()),
        "infra.hourly_price" => infra.and_then(|i| i.hourly_price_usd.map(|p| p.to_string())),
        "eval" => lin.evaluations.keys().next().cloned(),
        _ => None,
    };
    one(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CodeVersion, DatasetSnapshot, ExperimentId, RunId};

    fn schema(fields: &[&str], enforcement: Enforcement) -> RunSchema {
        RunSchema {
            required: fields.iter().map(|f| f.parse().unwrap()).collect(),
            enforcement,
        }
    }

    fn bare_run() -> Run {
        Run::new(
            RunId::from_parts(1, 1),
            ExperimentId::from_parts(1, 2),
            "r",
            0,
        )
    }

    #[test]
    fn every_missing_and_mistyped_field_is_named_at_once() {
        let s = schema(
            &[
                "owner",
                "dataset.digest",
                "code.commit",
                "params.learning_rate: float",
                "params.epochs: int",
            ],
            Enforcement::Refuse,
        );
        let mut run = bare_run();
        run.params.insert("learning_rate".into(), "fast".into());
        run.params.insert("epochs".into(), "10".into());
        let v = s.check(&run);
        let text: Vec<String> = v.iter().map(|v| v.to_string()).collect();
        assert_eq!(
            text,
            [
                "owner is missing",
                "dataset.digest is missing",
                "code.commit is missing",
                "params.learning_rate must be float (got 'fast')",
            ]
        );
    }

    #[test]
    fn a_complete_run_conforms() {
        let s = schema(
            &[
                "owner",
                "dataset.digest: digest",
                "code.commit",
                "params.lr: float",
            ],
            Enforcement::Refuse,
        );
        let mut run = bare_run();
        run.owner = Some("alice".into());
        run.params.insert("lr".into(), "3".into());
        run.lineage.code = Some(CodeVersion {
            commit: Some("abc123".into()),
            ..Default::default()
        });
        run.lineage.datasets.insert(
            "train".into(),
            DatasetSnapshot {
                digest: Some(format!("blake3:{}", "a".repeat(64))),
                ..Default::default()
            },
        );
        assert_eq!(s.check(&run), vec![]);
    }

    #[test]
    fn each_dataset_must_carry_the_required_subfield() {
        let s = schema(&["dataset.digest"], Enforcement::MarkIncomplete);
        let mut run = bare_run();
        run.lineage.datasets.insert(
            "train".into(),
            DatasetSnapshot {
                digest: Some("d".into()),
                ..Default::default()
            },
        );
        run.lineage
            .datasets
            .insert("eval".into(), DatasetSnapshot::default());
        run.lineage
            .datasets
            .insert("test".into(), DatasetSnapshot::default());
        let text: Vec<String> = s.check(&run).iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "dataset.digest is missing for dataset 'eval'",
                "dataset.digest is missing for dataset 'test'",
            ]
        );
    }

    #[test]
    fn unknown_fields_and_types_are_refused_with_the_value() {
        let err = "dataset.checksum"
            .parse::<FieldRequirement>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("'dataset.checksum'"), "{err}");
        let err = "params.lr: decimal"
            .parse::<FieldRequirement>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("'decimal'"), "{err}");
        assert_eq!(
            "params.lr:float"
                .parse::<FieldRequirement>()
                .unwrap()
                .to_string(),
            "params.lr: float"
        );
    }

    #[test]
    fn compliance_refuses_only_an_ended_run_under_a_refusing_schema() {
        let mut run = bare_run();
        let refuse = schema(&["dataset.digest"], Enforcement::Refuse);
        let c = Compliance::check(&refuse, &run);
        assert_eq!(c.state, ComplianceState::Pending);
        assert_eq!(c.missing, ["dataset.digest is missing"]);
        run.status = crate::RunStatus::Finished;
        let c = Compliance::check(&refuse, &run);
        assert_eq!(c.state, ComplianceState::Refused);
        assert!(
            c.explain().contains("dataset.digest is missing"),
            "{}",
            c.explain()
        );
        let mark = schema(&["dataset.digest"], Enforcement::MarkIncomplete);
        assert_eq!(
            Compliance::check(&mark, &run).state,
            ComplianceState::Incomplete
        );
        run.lineage.datasets.insert(
            "train".into(),
            DatasetSnapshot {
                digest: Some("d".into()),
                ..Default::default()
            },
        );
        assert_eq!(Compliance::check(&refuse, &run), Compliance::default());
    }

    #[test]
    fn default_schema_marks_rather_than_refuses() {
        let s = RunSchema::default();
        assert_eq!(s.enforcement, Enforcement::MarkIncomplete);
        assert_eq!(s.describe(), ["owner", "code.commit", "dataset.digest"]);
    }
}
