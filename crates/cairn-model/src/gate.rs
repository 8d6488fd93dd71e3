//! Promotion gates: the policy that guards moving an alias (`@champion`) to a version, the
//! verdict of checking a version against it, and the signed approvals a policy may require.
//!
//! A policy ([`GatePolicy`]) holds thresholds on evaluation metrics (a value to reach, and a
//! change against the alias's current holder, absolute and relative, higher- or lower-is-better:
//! what MLflow's `MetricThreshold` expresses), thresholds on fairness figures (a metric's
//! difference or ratio over the slices of a sensitive attribute), required evaluations (on a
//! named benchmark, optionally on one dataset digest), schema compliance, and a number of
//! approvals by members other than the version's author.
//!
//! [`evaluate`] is pure: the version's and the holder's figures ([`Facts`]) in, one [`Check`]
//! per threshold out, each with the value it saw, the threshold and the verdict. Where the
//! figures come from (the run's evaluations, the roster, signatures) is `cairn-core`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{BlobHash, ModelError, RecordId, VersionId};

/// Most thresholds of each kind one policy holds.
pub const MAX_POLICY_ENTRIES: usize = 200;
/// Most approvals a policy may require.
pub const MAX_APPROVALS: u32 = 100;
/// Longest benchmark, metric, attribute or dataset name in a policy, in bytes.
pub const MAX_POLICY_TEXT: usize = 500;

/// The team-doc keys of gates. Model names and aliases are escaped as the registry's
/// ([`crate::registry::keys::esc`]).
pub mod keys {
    /// `gate/<model>/<alias or *>` → [`super::PolicyRecord`]: the model's policy for moving
    /// that alias (`*`: any alias without its own).
    pub const POLICY: &str = "gate/";
    /// `gatedefault/<alias or *>` → [`super::PolicyRecord`]: the project's default, for
    /// models with no policy of their own.
    pub const DEFAULT_POLICY: &str = "gatedefault/";
    /// `gateeval/<model>/<record id>` → [`super::GateEvaluation`]: every check of a gate,
    /// kept (append-only).
    pub const EVALUATION: &str = "gateeval/";
    /// `approval/<model>/<version id>/<record id>` → [`super::Approval`], signed.
    pub const APPROVAL: &str = "approval/";
    /// The alias part of a policy that applies to every alias.
    pub const ANY_ALIAS: &str = "*";
}

/// What a gate requires before an alias may point at a version.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct GatePolicy {
    /// Evaluations the version's run must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evaluations: Vec<RequiredEvaluation>,
    /// Thresholds on evaluation metrics: a value, and a change against the current holder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricThreshold>,
    /// Thresholds on fairness figures (a metric's spread over one attribute's slices).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fairness: Vec<FairnessThreshold>,
    /// The version's run must comply with the project's schema.
    #[serde(default)]
    pub compliant: bool,
    /// Valid signed approvals needed, by members other than the version's author.
    #[serde(default)]
    pub approvals: u32,
    /// The version's run must have a review whose decision is adopt. Left out of the JSON
    /// while false, so the hash of every policy written before it stays what it was.
    #[serde(default, skip_serializing_if = "is_false")]
    pub review: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An evaluation the version's run must have: on `benchmark`, and on the dataset whose digest
/// is `dataset` when given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RequiredEvaluation {
    pub benchmark: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub dataset: Option<String>,
}

/// A threshold on one metric of one benchmark, as MLflow's `MetricThreshold`: the value must
/// reach `threshold`, and improve on the current holder's by `min_absolute_change` and by
/// `min_relative_change` (a fraction of the holder's value), in the direction
/// `greater_is_better` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct MetricThreshold {
    pub benchmark: String,
    pub metric: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub threshold: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub min_absolute_change: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub min_relative_change: Option<f64>,
    #[serde(default = "yes")]
    pub greater_is_better: bool,
}

fn yes() -> bool {
    true
}

/// A threshold on a fairness figure: `metric`'s difference (max − min) over the slices of
/// `attribute` at most `max_difference`, its ratio (min / max) at least `min_ratio`.
/// `metric` may be a derived figure (`demographic_parity`, `equalized_odds`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct FairnessThreshold {
    pub benchmark: String,
    pub metric: String,
    pub attribute: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub max_difference: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub min_ratio: Option<f64>,
}

impl GatePolicy {
    /// Checks bounds and that every threshold says something.
    pub fn validate(&self) -> Result<(), ModelError> {
        let bad = |value: &str, reason: String| {
            Err(ModelError::InvalidField {
                value: value.to_owned(),
                reason,
            })
        };
        if self.evaluations.len() > MAX_POLICY_ENTRIES
            || self.metrics.len() > MAX_POLICY_ENTRIES
            || self.fairness.len() > MAX_POLICY_ENTRIES
        {
            return bad(
                "gate policy",
                format!("a policy holds at most {MAX_POLICY_ENTRIES} thresholds of each kind"),
            );
        }
        if self.approvals > MAX_APPROVALS {
            return bad(
                &self.approvals.to_string(),
                format!("a policy requires at most {MAX_APPROVALS} approvals"),
            );
        }
        let text = |what: &str, t: &str| {
            if t.trim().is_empty() || t.len() > MAX_POLICY_TEXT || t.chars().any(char::is_control) {
                bad(
                    t,
                    format!("a {what} in a gate is 1-{MAX_POLICY_TEXT} printable bytes"),
                )
            } else {
                Ok(())
            }
        };
        let finite = |what: &str, v: Option<f64>| match v {
            Some(x) if !x.is_finite() => bad(&x.to_string(), format!("{what} must be finite")),
            _ => Ok(()),
        };
        for e in &self.evaluations {
            text("benchmark", &e.benchmark)?;
            if let Some(d) = &e.dataset {
                text("dataset digest", d)?;
            }
        }
        for m in &self.metrics {
            text("benchmark", &m.benchmark)?;
            text("metric", &m.metric)?;
            finite("a threshold", m.threshold)?;
            finite("a minimum absolute change", m.min_absolute_change)?;
            finite("a minimum relative change", m.min_relative_change)?;
            if m.threshold.is_none()
                && m.min_absolute_change.is_none()
                && m.min_relative_change.is_none()
            {
                return bad(
                    &format!("{}.{}", m.benchmark, m.metric),
                    "a metric threshold needs a value, an absolute or a relative change".into(),
                );
            }
        }
        for f in &self.fairness {
            text("benchmark", &f.benchmark)?;
            text("metric", &f.metric)?;
            text("attribute", &f.attribute)?;
            finite("a maximum difference", f.max_difference)?;
            finite("a minimum ratio", f.min_ratio)?;
            if f.max_difference.is_none() && f.min_ratio.is_none() {
                return bad(
                    &format!("{}.{} over {}", f.benchmark, f.metric, f.attribute),
                    "a fairness threshold needs a maximum difference or a minimum ratio".into(),
                );
            }
        }
        Ok(())
    }

    /// Whether it requires nothing.
    pub fn is_empty(&self) -> bool {
        self.evaluations.is_empty()
            && self.metrics.is_empty()
            && self.fairness.is_empty()
            && !self.compliant
            && !self.review
            && self.approvals == 0
    }

    /// The policy's identity: BLAKE3 of its canonical JSON (fields in declaration order,
    /// thresholds in the order given), which approvals sign.
    pub fn hash(&self) -> String {
        // A policy is strings, numbers and bools: nothing serde_json can fail on.
        let text = serde_json::to_string(self).unwrap_or_default();
        format!(
            "blake3:{}",
            blake3::hash(format!("cairn/gate-policy/1\0{text}").as_bytes()).to_hex()
        )
    }
}

/// A policy as stored: who set it and when. The latest write wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    pub policy: GatePolicy,
    pub user: String,
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// The figures of one evaluation a gate reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EvalFacts {
    pub dataset: Option<String>,
    pub metrics: BTreeMap<String, f64>,
    /// (metric, attribute) → (difference, ratio).
    pub fairness: BTreeMap<(String, String), (f64, f64)>,
}

/// What a gate knows of one version: its run's evaluations by benchmark and its compliance.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Facts {
    pub version: u32,
    pub evaluations: BTreeMap<String, EvalFacts>,
    /// `None` when the version has no run to check; else the missing fields (empty: compliant).
    pub missing_fields: Option<Vec<String>>,
    /// The newest review of the version's run that decided adopt (its id). Not part of the
    /// digest: an approval attests figures, and a review is an attested record of its own.
    pub adopt_review: Option<String>,
}

impl Facts {
    /// A digest of the figures, which an approval signs: approving means approving these.
    pub fn digest(&self) -> String {
        let mut text = String::new();
        for (b, e) in &self.evaluations {
            text.push_str(&format!("e\0{b}\0{}\0", e.dataset.as_deref().unwrap_or("")));
            for (m, v) in &e.metrics {
                text.push_str(&format!("m\0{m}\0{:016x}\0", v.to_bits()));
            }
            for ((m, a), (d, r)) in &e.fairness {
                text.push_str(&format!(
                    "f\0{m}\0{a}\0{:016x}\0{:016x}\0",
                    d.to_bits(),
                    r.to_bits()
                ));
            }
        }
        match &self.missing_fields {
            None => text.push_str("c\0none"),
            Some(m) => text.push_str(&format!("c\0{}", m.join("\0"))),
        }
        format!(
            "blake3:{}",
            blake3::hash(format!("cairn/gate-facts/1\0{text}").as_bytes()).to_hex()
        )
    }
}

/// What kind of threshold a check tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    Evaluation,
    Value,
    AbsoluteChange,
    RelativeChange,
    Difference,
    Ratio,
    Compliance,
    Approvals,
    Review,
}

/// One threshold checked: what, the value seen, the threshold, and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Check {
    pub kind: CheckKind,
    /// What was checked (`imagenet-val acc`, `imagenet-val acc over sex`).
    pub subject: String,
    /// The value seen, when there was one (a count for approvals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub value: Option<f64>,
    /// The threshold as a condition (`>= 0.9`, `<= 0.03`).
    pub threshold: String,
    pub passed: bool,
    /// Why, in words (what was missing, what it was compared with).
    pub detail: String,
}

impl std::fmt::Display for Check {
    /// `val acc = 0.84, needs >= 0.85 (higher is better)`; the verdict is `passed`'s.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.subject)?;
        match self.value {
            Some(v) => write!(f, " = {v}, needs")?,
            None => write!(f, ": needs")?,
        }
        write!(f, " {} ({})", self.threshold, self.detail)
    }
}

/// The approvals [`evaluate`] counts: those valid for this version, its policy and figures,
/// by members other than the author.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApprovalCount {
    pub valid: u32,
    /// Approvals that exist but do not count (bad signature, removed member, author, other
    /// content or policy): shown so a reviewer knows why.
    pub not_counted: u32,
}

fn cmp_text(greater: bool, t: f64) -> String {
    if greater {
        format!(">= {t}")
    } else {
        format!("<= {t}")
    }
}

fn reached(greater: bool, value: f64, t: f64) -> bool {
    if greater { value >= t } else { value <= t }
}

/// Checks `candidate` against `policy`: one [`Check`] per threshold, in the policy's order
/// (evaluations, metrics, fairness, compliance, approvals). Change thresholds compare with
/// `holder` (the alias's current holder); with none, or when the holder is the candidate or
/// lacks the metric, there is nothing to improve on and they pass, saying so.
pub fn evaluate(
    policy: &GatePolicy,
    candidate: &Facts,
    holder: Option<&Facts>,
    approvals: ApprovalCount,
) -> Vec<Check> {
    let mut out = Vec::new();
    for r in &policy.evaluations {
        let e = candidate.evaluations.get(&r.benchmark);
        let (passed, detail) = match (e, &r.dataset) {
            (None, _) => (
                false,
                format!(
                    "version {} has no evaluation on benchmark '{}'",
                    candidate.version, r.benchmark
                ),
            ),
            (Some(e), Some(want)) if e.dataset.as_deref() != Some(want.as_str()) => (
                false,
                format!(
                    "the evaluation ran on dataset {}, not {want}",
                    e.dataset.as_deref().unwrap_or("(not recorded)")
                ),
            ),
            (Some(e), _) => (
                true,
                format!(
                    "evaluated on dataset {}",
                    e.dataset.as_deref().unwrap_or("(not recorded)")
                ),
            ),
        };
        out.push(Check {
            kind: CheckKind::Evaluation,
            subject: r.benchmark.clone(),
            value: None,
            threshold: match &r.dataset {
                Some(d) => format!("an evaluation on {d}"),
                None => "an evaluation".into(),
            },
            passed,
            detail,
        });
    }
    for m in &policy.metrics {
        let subject = format!("{} {}", m.benchmark, m.metric);
        let value = candidate
            .evaluations
            .get(&m.benchmark)
            .and_then(|e| e.metrics.get(&m.metric))
            .copied()
            .filter(|v| !v.is_nan());
        let missing = || {
            format!(
                "version {} has no value of '{}' on benchmark '{}'",
                candidate.version, m.metric, m.benchmark
            )
        };
        let g = m.greater_is_better;
        if let Some(t) = m.threshold {
            out.push(Check {
                kind: CheckKind::Value,
                subject: subject.clone(),
                value,
                threshold: cmp_text(g, t),
                passed: value.is_some_and(|v| reached(g, v, t)),
                detail: match value {
                    None => missing(),
                    Some(_) => format!("{} is better", if g { "higher" } else { "lower" }),
                },
            });
        }
        let base = holder.filter(|h| h.version != candidate.version).map(|h| {
            (
                h.version,
                h.evaluations
                    .get(&m.benchmark)
                    .and_then(|e| e.metrics.get(&m.metric))
                    .copied()
                    .filter(|v| !v.is_nan()),
            )
        });
        // The improvement over the holder: positive when better, in the metric's direction.
        let gain = |v: f64, b: f64| if g { v - b } else { b - v };
        for (kind, min) in [
            (CheckKind::AbsoluteChange, m.min_absolute_change),
            (CheckKind::RelativeChange, m.min_relative_change),
        ] {
            let Some(min) = min else { continue };
            let relative = kind == CheckKind::RelativeChange;
            let threshold = if relative {
                format!("an improvement >= {}% over the current holder", min * 100.0)
            } else {
                format!("an improvement >= {min} over the current holder")
            };
            let (seen, passed, detail) = match (value, base) {
                (None, _) => (None, false, missing()),
                (Some(_), None) => (None, true, "no current holder to compare with".to_owned()),
                (Some(_), Some((n, None))) => (
                    None,
                    true,
                    format!("the current holder, version {n}, has no value to compare with"),
                ),
                (Some(v), Some((n, Some(b)))) => {
                    let change = if relative {
                        let d = gain(v, b);
                        if b == 0.0 {
                            if d > 0.0 {
                                f64::INFINITY
                            } else if d < 0.0 {
                                f64::NEG_INFINITY
                            } else {
                                0.0
                            }
                        } else {
                            d / b.abs()
                        }
                    } else {
                        gain(v, b)
                    };
                    (
                        Some(change),
                        change >= min,
                        format!(
                            "{} is better: {v} against {b} of the current holder, version {n}",
                            if g { "higher" } else { "lower" }
                        ),
                    )
                }
            };
            out.push(Check {
                kind,
                subject: subject.clone(),
                value: seen,
                threshold,
                passed,
                detail,
            });
        }
    }
    for f in &policy.fairness {
        let subject = format!("{} {} over {}", f.benchmark, f.metric, f.attribute);
        let figure = candidate
            .evaluations
            .get(&f.benchmark)
            .and_then(|e| e.fairness.get(&(f.metric.clone(), f.attribute.clone())))
            .copied();
        let missing = || {
            format!(
                "version {} has no slices of '{}' with '{}' on benchmark '{}'",
                candidate.version, f.attribute, f.metric, f.benchmark
            )
        };
        if let Some(max) = f.max_difference {
            let v = figure.map(|x| x.0).filter(|v| !v.is_nan());
            out.push(Check {
                kind: CheckKind::Difference,
                subject: subject.clone(),
                value: v,
                threshold: format!("difference <= {max}"),
                passed: v.is_some_and(|v| v <= max),
                detail: match v {
                    None => missing(),
                    Some(_) => "the largest gap between two groups".into(),
                },
            });
        }
        if let Some(min) = f.min_ratio {
            let v = figure.map(|x| x.1).filter(|v| !v.is_nan());
            out.push(Check {
                kind: CheckKind::Ratio,
                subject: subject.clone(),
                value: v,
                threshold: format!("ratio >= {min}"),
                passed: v.is_some_and(|v| v >= min),
                detail: match v {
                    None => missing(),
                    Some(_) => "the lowest group's value over the highest's".into(),
                },
            });
        }
    }
    if policy.compliant {
        let (passed, detail) = match &candidate.missing_fields {
            None => (
                false,
                format!(
                    "version {} has no run whose metadata could be checked",
                    candidate.version
                ),
            ),
            Some(m) if m.is_empty() => (true, "its run has every required field".into()),
            Some(m) => (false, format!("its run is incomplete: {}", m.join("; "))),
        };
        out.push(Check {
            kind: CheckKind::Compliance,
            subject: "schema".into(),
            value: None,
            threshold: "every required field".into(),
            passed,
            detail,
        });
    }
    if policy.review {
        out.push(Check {
            kind: CheckKind::Review,
            subject: "review".into(),
            value: None,
            threshold: "a review that decided adopt".into(),
            passed: candidate.adopt_review.is_some(),
            detail: match &candidate.adopt_review {
                Some(id) => format!("review {id} decided adopt"),
                None => format!(
                    "version {} has no review of its run that decided adopt",
                    candidate.version
                ),
            },
        });
    }
    if policy.approvals > 0 {
        out.push(Check {
            kind: CheckKind::Approvals,
            subject: "approvals".into(),
            value: Some(f64::from(approvals.valid)),
            threshold: format!(">= {}", policy.approvals),
            passed: approvals.valid >= policy.approvals,
            detail: format!(
                "{} valid signed approval{} by members other than the author{}",
                approvals.valid,
                if approvals.valid == 1 { "" } else { "s" },
                if approvals.not_counted > 0 {
                    format!(", {} more that do not count", approvals.not_counted)
                } else {
                    String::new()
                }
            ),
        });
    }
    out
}

/// One check of a gate, kept: who asked, when, for which version (its identity and content),
/// under which policy, the figures it read, every check, the verdict, and whether the alias
/// moved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct GateEvaluation {
    pub id: RecordId,
    pub model: String,
    pub alias: String,
    pub version: VersionId,
    /// Its number when checked.
    pub number: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub content: Option<BlobHash>,
    /// The version the alias pointed at, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub holder: Option<u32>,
    /// `None` when no policy guards the alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub policy: Option<GatePolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub policy_hash: Option<String>,
    /// [`Facts::digest`] of the figures read.
    pub inputs: String,
    pub checks: Vec<Check>,
    pub passed: bool,
    /// Whether this evaluation moved the alias (a promotion), or only checked.
    pub promoted: bool,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub device: Option<String>,
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub rationale: Option<String>,
}

impl GateEvaluation {
    /// The checks that failed.
    pub fn failed(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|c| !c.passed)
    }
}

/// A signed approval of one version: the approving device attests the version's identity and
/// content hash, the policy it was judged by, and the figures it saw ([`Facts::digest`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Approval {
    pub id: RecordId,
    pub model: String,
    pub version: VersionId,
    /// The version's content hash (`None` for a version with no content here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub content: Option<BlobHash>,
    /// The policy hash it was approved under (`None`: no policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub policy_hash: Option<String>,
    pub inputs: String,
    /// The approving device's endpoint id: the key that signed.
    pub device: String,
    /// The person, as the approving workspace's user.
    pub user: String,
    pub at_ms: i64,
    #[serde(default)]
    pub comment: String,
    /// Ed25519 over [`Approval::signed_bytes`], hex.
    pub signature: String,
}

/// What approval signatures cover first, so one can never be taken for another record's.
pub const APPROVAL_DOMAIN: &[u8] = b"cairn/approval/1\0";

impl Approval {
    /// What the signature covers: a domain tag, then every field but the signature, each
    /// length-prefixed so no two different approvals encode alike.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = APPROVAL_DOMAIN.to_vec();
        let id = self.id.to_string();
        let version = self.version.to_string();
        let content = self.content.map(|c| c.to_string()).unwrap_or_default();
        let policy = self.policy_hash.clone().unwrap_or_default();
        for text in [
            id.as_str(),
            &self.model,
            &version,
            &content,
            &policy,
            &self.inputs,
            &self.device,
            &self.user,
            &self.comment,
        ] {
            out.extend_from_slice(&(text.len() as u64).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        out
    }
}

/// Whether an approval counts, and if not, why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ApprovalView {
    pub approval: Approval,
    /// The member's name on the roster, when the device is on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub member: Option<String>,
    pub counts: bool,
    /// Why it does not count (empty when it does).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub problem: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(version: u32, metrics: &[(&str, f64)], fairness: &[(&str, &str, f64, f64)]) -> Facts {
        let mut e = EvalFacts {
            dataset: Some("blake3:aa".into()),
            ..EvalFacts::default()
        };
        for (m, v) in metrics {
            e.metrics.insert((*m).into(), *v);
        }
        for (m, a, d, r) in fairness {
            e.fairness.insert(((*m).into(), (*a).into()), (*d, *r));
        }
        Facts {
            version,
            evaluations: BTreeMap::from([("val".to_owned(), e)]),
            missing_fields: Some(Vec::new()),
            adopt_review: None,
        }
    }

    fn metric(
        threshold: Option<f64>,
        abs: Option<f64>,
        rel: Option<f64>,
        g: bool,
    ) -> MetricThreshold {
        MetricThreshold {
            benchmark: "val".into(),
            metric: "acc".into(),
            threshold,
            min_absolute_change: abs,
            min_relative_change: rel,
            greater_is_better: g,
        }
    }

    fn verdicts(checks: &[Check]) -> Vec<(CheckKind, bool)> {
        checks.iter().map(|c| (c.kind, c.passed)).collect()
    }

    #[test]
    fn value_thresholds_in_both_directions() {
        let p = GatePolicy {
            metrics: vec![metric(Some(0.9), None, None, true)],
            ..GatePolicy::default()
        };
        let pass = evaluate(
            &p,
            &facts(2, &[("acc", 0.9)], &[]),
            None,
            ApprovalCount::default(),
        );
        assert_eq!(verdicts(&pass), [(CheckKind::Value, true)]);
        assert_eq!(pass[0].value, Some(0.9));
        assert_eq!(pass[0].threshold, ">= 0.9");
        let fail = evaluate(
            &p,
            &facts(2, &[("acc", 0.89)], &[]),
            None,
            ApprovalCount::default(),
        );
        assert_eq!(verdicts(&fail), [(CheckKind::Value, false)]);
        let lower = GatePolicy {
            metrics: vec![metric(Some(0.2), None, None, false)],
            ..GatePolicy::default()
        };
        let c = evaluate(
            &lower,
            &facts(2, &[("acc", 0.25)], &[]),
            None,
            ApprovalCount::default(),
        );
        assert_eq!(verdicts(&c), [(CheckKind::Value, false)]);
        assert_eq!(c[0].threshold, "<= 0.2");
        // A metric the evaluation lacks fails, saying so.
        let none = evaluate(
            &p,
            &facts(2, &[("f1", 0.95)], &[]),
            None,
            ApprovalCount::default(),
        );
        assert!(!none[0].passed);
        assert!(
            none[0].detail.contains("no value of 'acc'"),
            "{}",
            none[0].detail
        );
    }

    #[test]
    fn change_thresholds_compare_with_the_holder() {
        let p = GatePolicy {
            metrics: vec![metric(None, Some(0.01), Some(0.05), true)],
            ..GatePolicy::default()
        };
        let holder = facts(1, &[("acc", 0.80)], &[]);
        // +0.05 absolute, +6.25% relative: both pass.
        let c = evaluate(
            &p,
            &facts(2, &[("acc", 0.85)], &[]),
            Some(&holder),
            ApprovalCount::default(),
        );
        assert_eq!(
            verdicts(&c),
            [
                (CheckKind::AbsoluteChange, true),
                (CheckKind::RelativeChange, true)
            ]
        );
        assert!((c[0].value.unwrap() - 0.05).abs() < 1e-12);
        assert!((c[1].value.unwrap() - 0.0625).abs() < 1e-12);
        // +0.02 absolute passes, 2.5% relative fails.
        let c = evaluate(
            &p,
            &facts(2, &[("acc", 0.82)], &[]),
            Some(&holder),
            ApprovalCount::default(),
        );
        assert_eq!(
            verdicts(&c),
            [
                (CheckKind::AbsoluteChange, true),
                (CheckKind::RelativeChange, false)
            ]
        );
        assert!(c[1].detail.contains("version 1"), "{}", c[1].detail);
        // Lower is better: a loss that went down by 0.1 from 0.5 improved by 20%.
        let lp = GatePolicy {
            metrics: vec![MetricThreshold {
                metric: "loss".into(),
                ..metric(None, Some(0.05), Some(0.25), false)
            }],
            ..GatePolicy::default()
        };
        let c = evaluate(
            &lp,
            &facts(2, &[("loss", 0.4)], &[]),
            Some(&facts(1, &[("loss", 0.5)], &[])),
            ApprovalCount::default(),
        );
        assert_eq!(
            verdicts(&c),
            [
                (CheckKind::AbsoluteChange, true),
                (CheckKind::RelativeChange, false)
            ]
        );
        // No holder, or the holder itself: nothing to improve on.
        let c = evaluate(
            &p,
            &facts(2, &[("acc", 0.5)], &[]),
            None,
            ApprovalCount::default(),
        );
        assert!(
            c.iter()
                .all(|c| c.passed && c.detail.contains("no current holder"))
        );
        let same = facts(1, &[("acc", 0.8)], &[]);
        let c = evaluate(&p, &same, Some(&holder), ApprovalCount::default());
        assert!(c.iter().all(|c| c.passed));
    }

    #[test]
    fn fairness_thresholds_and_missing_slices() {
        let p = GatePolicy {
            fairness: vec![
                FairnessThreshold {
                    benchmark: "val".into(),
                    metric: "acc".into(),
                    attribute: "sex".into(),
                    max_difference: Some(0.03),
                    min_ratio: None,
                },
                FairnessThreshold {
                    benchmark: "val".into(),
                    metric: "selection_rate".into(),
                    attribute: "sex".into(),
                    max_difference: None,
                    min_ratio: Some(0.8),
                },
            ],
            ..GatePolicy::default()
        };
        let f = facts(
            3,
            &[],
            &[
                ("acc", "sex", 0.04, 0.95),
                ("selection_rate", "sex", 0.1, 0.82),
            ],
        );
        let c = evaluate(&p, &f, None, ApprovalCount::default());
        assert_eq!(
            verdicts(&c),
            [(CheckKind::Difference, false), (CheckKind::Ratio, true)]
        );
        assert_eq!(c[0].value, Some(0.04));
        let c = evaluate(&p, &facts(3, &[], &[]), None, ApprovalCount::default());
        assert!(
            c.iter()
                .all(|c| !c.passed && c.detail.contains("no slices of 'sex'"))
        );
    }

    #[test]
    fn required_evaluations_compliance_and_approvals() {
        let p = GatePolicy {
            evaluations: vec![
                RequiredEvaluation {
                    benchmark: "val".into(),
                    dataset: Some("blake3:aa".into()),
                },
                RequiredEvaluation {
                    benchmark: "val".into(),
                    dataset: Some("blake3:bb".into()),
                },
                RequiredEvaluation {
                    benchmark: "holdout".into(),
                    dataset: None,
                },
            ],
            compliant: true,
            approvals: 2,
            ..GatePolicy::default()
        };
        let mut f = facts(4, &[], &[]);
        f.missing_fields = Some(vec!["dataset.digest is missing".into()]);
        let c = evaluate(
            &p,
            &f,
            None,
            ApprovalCount {
                valid: 1,
                not_counted: 1,
            },
        );
        assert_eq!(
            verdicts(&c),
            [
                (CheckKind::Evaluation, true),
                (CheckKind::Evaluation, false),
                (CheckKind::Evaluation, false),
                (CheckKind::Compliance, false),
                (CheckKind::Approvals, false),
            ]
        );
        assert!(c[1].detail.contains("not blake3:bb"), "{}", c[1].detail);
        assert!(c[2].detail.contains("no evaluation on benchmark 'holdout'"));
        assert!(c[3].detail.contains("dataset.digest is missing"));
        assert!(
            c[4].detail.contains("1 more that do not count"),
            "{}",
            c[4].detail
        );
        f.missing_fields = Some(Vec::new());
        let c = evaluate(
            &p,
            &f,
            None,
            ApprovalCount {
                valid: 2,
                not_counted: 0,
            },
        );
        assert!(c[3].passed && c[4].passed);
    }

    #[test]
    fn policies_are_validated_and_hashed_canonically() {
        let p = GatePolicy {
            metrics: vec![metric(Some(0.9), None, None, true)],
            approvals: 1,
            ..GatePolicy::default()
        };
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.hash(), p.clone().hash());
        let other = GatePolicy {
            approvals: 2,
            ..p.clone()
        };
        assert_ne!(p.hash(), other.hash());
        let empty = GatePolicy {
            metrics: vec![metric(None, None, None, true)],
            ..GatePolicy::default()
        };
        assert!(empty.validate().is_err());
        let nan = GatePolicy {
            metrics: vec![metric(Some(f64::NAN), None, None, true)],
            ..GatePolicy::default()
        };
        assert!(nan.validate().is_err());
    }

    #[test]
    fn an_approval_signs_every_field() {
        let a = Approval {
            id: RecordId::new(),
            model: "m".into(),
            version: VersionId::new(),
            content: None,
            policy_hash: Some("blake3:1".into()),
            inputs: "blake3:2".into(),
            device: "d".into(),
            user: "u".into(),
            at_ms: 5,
            comment: String::new(),
            signature: String::new(),
        };
        let base = a.signed_bytes();
        for changed in [
            Approval {
                model: "n".into(),
                ..a.clone()
            },
            Approval {
                inputs: "blake3:3".into(),
                ..a.clone()
            },
            Approval {
                at_ms: 6,
                ..a.clone()
            },
            Approval {
                comment: "ok".into(),
                ..a.clone()
            },
        ] {
            assert_ne!(changed.signed_bytes(), base);
        }
    }
}
