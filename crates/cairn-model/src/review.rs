//! Structured reviews of experiment outcomes: what a team concluded about one or more runs or an
//! experiment (objective, method, result, confidence, decision, next actions, free text and the
//! extra fields its template defines), and the template that says which fields a review must
//! have.
//!
//! Stored in the team doc as records that merge when two peers write offline: each review is its
//! own key, written once; each change of a next action's state (done, dropped, reopened) is its
//! own key too, so two people closing different actions offline both land, and a state is the
//! latest change (by time, then id). The template is one key, the latest write winning.
//!
//! Pure data and validation: the store and the audit events are `cairn-core`'s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{ExperimentId, ModelError, RecordId, RunId};

/// Longest free text of a review (its `text`), in bytes.
pub const MAX_REVIEW_TEXT: usize = 64 * 1024;
/// Longest other field of a review (objective, method, result, an action, an extra value).
pub const MAX_REVIEW_FIELD: usize = 8 * 1024;
/// Most runs one review covers.
pub const MAX_REVIEW_RUNS: usize = 1_000;
/// Most next actions one review holds.
pub const MAX_REVIEW_ACTIONS: usize = 100;
/// Most extra fields a template defines (and a review fills).
pub const MAX_EXTRA_FIELDS: usize = 50;
/// Longest field name, owner or choice in a template or an action, in bytes.
pub const MAX_REVIEW_NAME: usize = 64;

/// The team-doc keys of reviews.
pub mod keys {
    /// `review/<record id>` → [`super::Review`] (written once).
    pub const REVIEW: &str = "review/";
    /// `reviewaction/<review id>/<action index>/<record id>` → [`super::ActionChange`]
    /// (append-only).
    pub const ACTION: &str = "reviewaction/";
    /// `reviewtemplate` → [`super::TemplateRecord`]: the team's template (latest write wins).
    pub const TEMPLATE: &str = "reviewtemplate";
}

/// A confidence level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Level, ModelError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "low" => Ok(Level::Low),
            "medium" | "med" => Ok(Level::Medium),
            "high" => Ok(Level::High),
            _ => Err(invalid(
                s,
                "a confidence is low, medium or high, or a number 0-1",
            )),
        }
    }
}

/// How sure the reviewers are: a level, or a calibrated probability with the reason for it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Confidence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub level: Option<Level>,
    /// A calibrated probability in 0..=1; needs a `reason`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub reason: Option<String>,
}

impl Confidence {
    /// The level a search finds it by: the level given, else the probability's (below 0.5
    /// low, below 0.8 medium, else high).
    pub fn effective_level(&self) -> Option<Level> {
        self.level.or_else(|| {
            self.p.map(|p| {
                if p < 0.5 {
                    Level::Low
                } else if p < 0.8 {
                    Level::Medium
                } else {
                    Level::High
                }
            })
        })
    }

    fn is_empty(&self) -> bool {
        self.level.is_none() && self.p.is_none()
    }

    fn validate(&self) -> Result<(), ModelError> {
        if let Some(p) = self.p {
            if !(0.0..=1.0).contains(&p) {
                return Err(invalid(
                    &p.to_string(),
                    "a calibrated confidence is in 0..=1",
                ));
            }
            if self.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(invalid(
                    &p.to_string(),
                    "a calibrated confidence needs a reason (how it was calibrated)",
                ));
            }
        }
        bounded(
            "confidence reason",
            self.reason.as_deref(),
            MAX_REVIEW_FIELD,
        )
    }
}

/// What the team decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Adopt,
    Iterate,
    Abandon,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Adopt => "adopt",
            Decision::Iterate => "iterate",
            Decision::Abandon => "abandon",
        }
    }
}

impl std::str::FromStr for Decision {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Decision, ModelError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "adopt" => Ok(Decision::Adopt),
            "iterate" => Ok(Decision::Iterate),
            "abandon" => Ok(Decision::Abandon),
            _ => Err(invalid(s, "a decision is adopt, iterate or abandon")),
        }
    }
}

/// A next action's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ActionState {
    #[default]
    Open,
    Done,
    Dropped,
}

impl ActionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Open => "open",
            ActionState::Done => "done",
            ActionState::Dropped => "dropped",
        }
    }
}

impl std::str::FromStr for ActionState {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<ActionState, ModelError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "open" => Ok(ActionState::Open),
            "done" => Ok(ActionState::Done),
            "dropped" | "drop" => Ok(ActionState::Dropped),
            _ => Err(invalid(s, "an action's state is open, done or dropped")),
        }
    }
}

/// A next action as the review set it: what, and who owns it. Its state is kept apart
/// ([`ActionChange`]); it starts open.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct NextAction {
    pub text: String,
    /// The member (name) who owns it.
    pub owner: String,
}

/// The type of a template's extra field; values are kept as text and checked against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ExtraKind {
    Text,
    Number,
    Bool,
    /// One of the field's `options`.
    Choice,
}

/// A field a team adds to its reviews.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ExtraField {
    pub name: String,
    pub kind: ExtraKind,
    /// The choices of a `choice` field.
    #[serde(default)]
    pub options: Vec<String>,
    /// What to write there (shown in the form).
    #[serde(default)]
    pub help: String,
}

/// The standard fields of a review, by the names a template requires them by.
pub const STANDARD_FIELDS: [&str; 7] = [
    "objective",
    "method",
    "result",
    "confidence",
    "decision",
    "actions",
    "text",
];

/// Which fields a team's reviews must have, and the extra fields they carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ReviewTemplate {
    /// Standard field names ([`STANDARD_FIELDS`]) and extra field names a review must fill.
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub extra: Vec<ExtraField>,
}

impl Default for ReviewTemplate {
    /// Without a team template: objective, confidence and decision are required (a review
    /// that says neither what was tried, how sure we are nor what we do next is no review).
    fn default() -> ReviewTemplate {
        ReviewTemplate {
            required: vec!["objective".into(), "confidence".into(), "decision".into()],
            extra: Vec::new(),
        }
    }
}

fn invalid(value: &str, reason: &str) -> ModelError {
    ModelError::InvalidField {
        value: value.chars().take(200).collect(),
        reason: reason.to_owned(),
    }
}

fn bounded(what: &str, text: Option<&str>, max: usize) -> Result<(), ModelError> {
    match text {
        Some(t) if t.len() > max => Err(invalid(
            &t.chars().take(40).collect::<String>(),
            &format!("a review's {what} is at most {max} bytes"),
        )),
        _ => Ok(()),
    }
}

fn name_ok(what: &str, name: &str) -> Result<(), ModelError> {
    if name.trim().is_empty() || name.len() > MAX_REVIEW_NAME || name.chars().any(char::is_control)
    {
        return Err(invalid(
            name,
            &format!("{what} is 1-{MAX_REVIEW_NAME} printable bytes"),
        ));
    }
    Ok(())
}

impl ReviewTemplate {
    /// Checks bounds, that every required field exists, and that extra fields are unique,
    /// named apart from the standard ones, and that choices have options.
    pub fn validate(&self) -> Result<(), ModelError> {
        if self.extra.len() > MAX_EXTRA_FIELDS {
            return Err(invalid(
                "template",
                &format!("a template has at most {MAX_EXTRA_FIELDS} extra fields"),
            ));
        }
        if self.required.len() > STANDARD_FIELDS.len() + MAX_EXTRA_FIELDS {
            return Err(invalid("template", "too many required fields"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for f in &self.extra {
            name_ok("an extra field's name", &f.name)?;
            if STANDARD_FIELDS.contains(&f.name.as_str()) {
                return Err(invalid(
                    &f.name,
                    "an extra field cannot take a standard field's name",
                ));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(invalid(&f.name, "two extra fields have this name"));
            }
            if f.kind == ExtraKind::Choice && f.options.is_empty() {
                return Err(invalid(&f.name, "a choice field needs options"));
            }
            if f.options.len() > MAX_EXTRA_FIELDS {
                return Err(invalid(&f.name, "a choice field has at most 50 options"));
            }
            for o in &f.options {
                name_ok("a choice", o)?;
            }
            bounded("field help", Some(&f.help), MAX_REVIEW_FIELD)?;
        }
        for r in &self.required {
            if !STANDARD_FIELDS.contains(&r.as_str()) && !seen.contains(r.as_str()) {
                return Err(invalid(
                    r,
                    &format!(
                        "a required field is a standard field ({}) or one of the template's \
                         extra fields",
                        STANDARD_FIELDS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn extra_field(&self, name: &str) -> Option<&ExtraField> {
        self.extra.iter().find(|f| f.name == name)
    }
}

/// The template as stored: who set it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateRecord {
    pub template: ReviewTemplate,
    pub user: String,
    pub at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// A review as stored (written once; its actions' states are [`ActionChange`]s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Review {
    pub id: RecordId,
    /// The runs it reviews (may be empty for an experiment's review).
    #[serde(default)]
    pub runs: Vec<RunId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub experiment: Option<ExperimentId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub objective: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub method: Option<String>,
    /// The result, summarised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub result: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub confidence: Option<Confidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub decision: Option<Decision>,
    #[serde(default)]
    pub actions: Vec<NextAction>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub text: Option<String>,
    /// The template's extra fields, by name, as text.
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
    /// The workspace user who wrote it.
    pub user: String,
    /// The device that wrote it (its endpoint id), which names the member on the roster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub device: Option<String>,
    pub at_ms: i64,
}

fn filled(t: &Option<String>) -> bool {
    t.as_deref().is_some_and(|t| !t.trim().is_empty())
}

impl Review {
    /// Checks the review's own bounds and values, then the template: every field it requires
    /// and the review lacks is named in one [`ModelError::ReviewIncomplete`].
    pub fn validate(&self, template: &ReviewTemplate) -> Result<(), ModelError> {
        if self.runs.is_empty() && self.experiment.is_none() {
            return Err(invalid(
                "review",
                "a review is of one or more runs or of an experiment",
            ));
        }
        if self.runs.len() > MAX_REVIEW_RUNS {
            return Err(invalid(
                "review",
                &format!("a review covers at most {MAX_REVIEW_RUNS} runs"),
            ));
        }
        if self.actions.len() > MAX_REVIEW_ACTIONS {
            return Err(invalid(
                "review",
                &format!("a review holds at most {MAX_REVIEW_ACTIONS} next actions"),
            ));
        }
        for (what, t) in [
            ("objective", &self.objective),
            ("method", &self.method),
            ("result", &self.result),
        ] {
            bounded(what, t.as_deref(), MAX_REVIEW_FIELD)?;
        }
        bounded("text", self.text.as_deref(), MAX_REVIEW_TEXT)?;
        if let Some(c) = &self.confidence {
            c.validate()?;
        }
        for a in &self.actions {
            if a.text.trim().is_empty() {
                return Err(invalid("next action", "a next action says what to do"));
            }
            bounded("next action", Some(&a.text), MAX_REVIEW_FIELD)?;
            name_ok("a next action's owner", &a.owner)?;
        }
        for (name, value) in &self.extra {
            let Some(f) = template.extra_field(name) else {
                return Err(invalid(
                    name,
                    "the team's review template has no such field",
                ));
            };
            bounded(name, Some(value), MAX_REVIEW_FIELD)?;
            let ok = match f.kind {
                ExtraKind::Text => true,
                ExtraKind::Number => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
                ExtraKind::Bool => matches!(value.trim(), "true" | "false"),
                ExtraKind::Choice => f.options.iter().any(|o| o == value),
            };
            if !ok {
                let expected = match f.kind {
                    ExtraKind::Number => "a number".to_owned(),
                    ExtraKind::Bool => "true or false".to_owned(),
                    _ => format!("one of {}", f.options.join(", ")),
                };
                return Err(invalid(value, &format!("field '{name}' takes {expected}")));
            }
        }
        let missing: Vec<String> = template
            .required
            .iter()
            .filter(|r| !self.has(r))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(ModelError::ReviewIncomplete { missing });
        }
        Ok(())
    }

    /// Whether the field named `name` (standard or extra) is filled.
    pub fn has(&self, name: &str) -> bool {
        match name {
            "objective" => filled(&self.objective),
            "method" => filled(&self.method),
            "result" => filled(&self.result),
            "text" => filled(&self.text),
            "confidence" => self.confidence.as_ref().is_some_and(|c| !c.is_empty()),
            "decision" => self.decision.is_some(),
            "actions" => !self.actions.is_empty(),
            extra => self.extra.get(extra).is_some_and(|v| !v.trim().is_empty()),
        }
    }
}

/// A change of a next action's state: who, when, to what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ActionChange {
    pub id: RecordId,
    pub review: RecordId,
    /// The action's index in the review's `actions`.
    pub action: u32,
    pub state: ActionState,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub device: Option<String>,
    pub at_ms: i64,
    #[serde(default)]
    pub note: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn review() -> Review {
        Review {
            id: RecordId::new(),
            runs: vec![RunId::new()],
            experiment: None,
            objective: None,
            method: None,
            result: None,
            confidence: None,
            decision: None,
            actions: Vec::new(),
            text: None,
            extra: BTreeMap::new(),
            user: "ada".into(),
            device: None,
            at_ms: 0,
        }
    }

    #[test]
    fn the_default_template_names_every_missing_field() {
        let err = review().validate(&ReviewTemplate::default()).unwrap_err();
        assert_eq!(
            err,
            ModelError::ReviewIncomplete {
                missing: vec!["objective".into(), "confidence".into(), "decision".into()]
            }
        );
        let mut r = review();
        r.objective = Some("beat the baseline".into());
        r.confidence = Some(Confidence {
            level: Some(Level::High),
            ..Default::default()
        });
        r.decision = Some(Decision::Adopt);
        r.validate(&ReviewTemplate::default()).unwrap();
    }

    #[test]
    fn extra_fields_are_typed_and_required_by_name() {
        let t = ReviewTemplate {
            required: vec!["risk".into()],
            extra: vec![ExtraField {
                name: "risk".into(),
                kind: ExtraKind::Choice,
                options: vec!["low".into(), "high".into()],
                help: String::new(),
            }],
        };
        t.validate().unwrap();
        let mut r = review();
        assert_eq!(
            r.validate(&t).unwrap_err(),
            ModelError::ReviewIncomplete {
                missing: vec!["risk".into()]
            }
        );
        r.extra.insert("risk".into(), "medium".into());
        assert!(
            r.validate(&t)
                .unwrap_err()
                .to_string()
                .contains("one of low, high")
        );
        r.extra.insert("risk".into(), "low".into());
        r.validate(&t).unwrap();
        r.extra.insert("colour".into(), "red".into());
        assert!(
            r.validate(&t)
                .unwrap_err()
                .to_string()
                .contains("no such field")
        );
    }

    #[test]
    fn a_calibrated_confidence_needs_a_reason_and_maps_to_a_level() {
        let c = Confidence {
            level: None,
            p: Some(0.85),
            reason: None,
        };
        assert!(c.validate().is_err());
        assert_eq!(c.effective_level(), Some(Level::High));
        let c = Confidence {
            p: Some(1.5),
            reason: Some("holdout".into()),
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_template_refuses_unknown_required_fields_and_clashing_names() {
        let mut t = ReviewTemplate::default();
        t.required.push("colour".into());
        assert!(t.validate().is_err());
        let t = ReviewTemplate {
            required: vec![],
            extra: vec![ExtraField {
                name: "decision".into(),
                kind: ExtraKind::Text,
                options: vec![],
                help: String::new(),
            }],
        };
        assert!(t.validate().is_err());
    }
}
