//! Structured reviews (see `cairn_model::review` for the records and their validation): written
//! against the team's template, kept in the team doc so they sync between peers, each creation
//! and each change of a next action's state attested by a signed audit event.
//!
//! A review is written once under its own key; a next action's state is the latest of its
//! changes, each its own key, so two people closing different actions offline both land, and a
//! closed action says who closed it and when. Reviews of runs are search fields of those runs
//! (`review.decision`, `review.confidence`, `is:reviewed`, `has:open-action`, and their text):
//! writing one restamps its runs so the search index looks at them again.

use std::collections::{BTreeMap, HashMap};

use cairn_model::review::{
    ActionChange, ActionState, Confidence, Decision, NextAction, Review, ReviewTemplate,
    TemplateRecord, keys,
};
use cairn_model::{ExperimentId, RecordId, RunId};
use cairn_sync::roster;
use serde::{Deserialize, Serialize};

use crate::stores::now_ms;
use crate::{Error, Stores, Workspace};

/// Most reviews one listing returns (newest first).
pub const MAX_REVIEWS: usize = 10_000;

/// The team's template, or the default when none is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TemplateView {
    pub template: ReviewTemplate,
    /// True when the team set none and this is Cairn's default.
    pub default: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub set_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub set_ms: Option<i64>,
}

/// A next action with its state now, and who set that state and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ActionView {
    /// Its index in the review.
    pub index: u32,
    pub text: String,
    pub owner: String,
    pub state: ActionState,
    /// Who last changed its state (absent while it was never changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub changed_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub changed_ms: Option<i64>,
    #[serde(default)]
    pub note: String,
}

/// A review as front ends show it: the record, its author as a member, its actions' states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ReviewView {
    pub review: Review,
    /// The author: the roster's name for the device that wrote it, else the workspace user.
    pub author: String,
    /// The experiment's name, for an experiment's review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub experiment_name: Option<String>,
    pub actions: Vec<ActionView>,
}

impl ReviewView {
    pub fn open_actions(&self) -> impl Iterator<Item = &ActionView> {
        self.actions.iter().filter(|a| a.state == ActionState::Open)
    }
}

/// A review to write (`/api/v1`, `cairn review new`): runs by id or prefix, an experiment by
/// name or id, and the fields.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct NewReview {
    #[serde(default)]
    pub runs: Vec<String>,
    pub experiment: Option<String>,
    pub objective: Option<String>,
    pub method: Option<String>,
    pub result: Option<String>,
    pub confidence: Option<Confidence>,
    pub decision: Option<Decision>,
    #[serde(default)]
    pub actions: Vec<NextAction>,
    pub text: Option<String>,
    #[serde(default)]
    pub extra: BTreeMap<String, String>,
}

/// Which reviews to list (`/api/v1`, `cairn review list`); every filter given must hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct ReviewFilter {
    /// Reviews of this run (id or prefix).
    pub run: Option<String>,
    /// Reviews of this experiment, or of its runs (name or id).
    pub experiment: Option<String>,
    /// Reviews with a next action owned by this member (open ones only with `open_actions`).
    pub owner: Option<String>,
    pub decision: Option<Decision>,
    /// Only reviews with an open next action.
    pub open_actions: Option<bool>,
    /// At most this many, newest first (default and most: 10,000).
    pub limit: Option<u32>,
}

/// A review by id or unique id prefix.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ReviewRef {
    pub id: String,
}

/// A change of a next action's state (`/api/v1`, `cairn review close-action`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct SetActionState {
    /// The review, by id or unique prefix.
    pub id: String,
    /// The action's index in the review.
    pub action: u32,
    pub state: ActionState,
    pub note: Option<String>,
}

/// The largest review text [`parse_review_text`] reads.
pub const MAX_REVIEW_FILE: usize = 1 << 20;

/// A confidence as typed: `low`, `medium`, `high`, or a probability 0-1 (which needs `reason`).
pub fn parse_confidence(text: &str, reason: Option<&str>) -> Result<Confidence, Error> {
    let reason = reason.map(str::to_owned);
    if let Ok(p) = text.trim().parse::<f64>() {
        return Ok(Confidence {
            level: None,
            p: Some(p),
            reason,
        });
    }
    Ok(Confidence {
        level: Some(text.parse()?),
        p: None,
        reason,
    })
}

/// A next action as typed: `OWNER:TEXT`.
pub fn parse_action(spec: &str) -> Result<NextAction, Error> {
    match spec.split_once(':') {
        Some((owner, text)) if !owner.trim().is_empty() && !text.trim().is_empty() => {
            Ok(NextAction {
                owner: owner.trim().to_owned(),
                text: text.trim().to_owned(),
            })
        }
        _ => Err(Error::Invalid(format!(
            "a next action is OWNER:TEXT (e.g. 'alice:rerun with seed 2'), not '{}'",
            spec.chars().take(200).collect::<String>()
        ))),
    }
}

/// A review written in a file (`cairn review new --file`): JSON (a [`NewReview`]), or
/// `field: value` lines — objective, method, result, text (repeated lines join), confidence,
/// reason, decision, `action: OWNER: TEXT`, `run: ID`, `experiment: NAME`, `extra.NAME: VALUE`;
/// `#` starts a comment. Bounded to [`MAX_REVIEW_FILE`] bytes; errors name the line.
pub fn parse_review_text(text: &str) -> Result<NewReview, Error> {
    if text.len() > MAX_REVIEW_FILE {
        return Err(Error::Invalid(format!(
            "a review file is at most {MAX_REVIEW_FILE} bytes, this one is {}",
            text.len()
        )));
    }
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("the review is not a review as JSON: {e}")));
    }
    let mut r = NewReview::default();
    let (mut conf, mut reason) = (None, None);
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |e: Error| Error::Invalid(format!("line {}: {e}", i + 1));
        let Some((key, value)) = line.split_once(':') else {
            return Err(Error::Invalid(format!(
                "line {}: expected `field: value`, found '{}'",
                i + 1,
                line.chars().take(200).collect::<String>()
            )));
        };
        let (key, value) = (key.trim(), value.trim().to_owned());
        let join = |slot: &mut Option<String>| {
            *slot = Some(match slot.take() {
                Some(old) => format!("{old}\n{value}"),
                None => value.clone(),
            });
        };
        match key {
            "objective" => join(&mut r.objective),
            "method" => join(&mut r.method),
            "result" => join(&mut r.result),
            "text" => join(&mut r.text),
            "run" => r.runs.push(value),
            "experiment" | "exp" => r.experiment = Some(value),
            "decision" => {
                r.decision = Some(
                    value
                        .parse()
                        .map_err(|e: cairn_model::ModelError| at(e.into()))?,
                )
            }
            "confidence" => conf = Some(value),
            "reason" => reason = Some(value),
            "action" => r.actions.push(parse_action(&value).map_err(at)?),
            k => match k.strip_prefix("extra.") {
                Some(name) if !name.is_empty() => {
                    r.extra.insert(name.to_owned(), value);
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "line {}: unknown field '{}' (objective, method, result, confidence, \
                         reason, decision, action, text, run, experiment, extra.NAME)",
                        i + 1,
                        k.chars().take(100).collect::<String>()
                    )));
                }
            },
        }
    }
    if let Some(c) = conf {
        r.confidence = Some(parse_confidence(&c, reason.as_deref())?);
    }
    Ok(r)
}

/// What the search index holds of a run's reviews.
pub(crate) type RunReviews = HashMap<RunId, cairn_search::IndexedReview>;

fn json<T: Serialize>(v: &T) -> String {
    // Records are strings, numbers and ids: nothing serde_json can fail on.
    serde_json::to_string(v).unwrap_or_default()
}

/// Every review and every action change stored, as read from the team doc (unreadable or
/// misfiled records skipped and logged).
struct Stored {
    reviews: Vec<Review>,
    changes: HashMap<(RecordId, u32), ActionChange>,
}

impl Stores {
    fn stored_reviews(&mut self) -> Result<Stored, Error> {
        let mut ranges = self
            .catalog_mut()
            .team_ranges(&[keys::REVIEW, keys::ACTION])?
            .into_iter();
        let (reviews_range, actions_range) = (
            ranges.next().unwrap_or_default(),
            ranges.next().unwrap_or_default(),
        );
        let mut reviews = Vec::new();
        for (key, values) in reviews_range {
            // Written once under a fresh id: concurrent values can only be a raw edit; the
            // first that reads is kept.
            let found = values.iter().find_map(|text| {
                serde_json::from_str::<Review>(text)
                    .ok()
                    .filter(|r| key == format!("{}{}", keys::REVIEW, r.id))
            });
            match found {
                Some(r) => reviews.push(r),
                None => tracing::warn!(key, "ignoring an unreadable review"),
            }
        }
        let mut changes: HashMap<(RecordId, u32), ActionChange> = HashMap::new();
        for (key, values) in actions_range {
            for text in values {
                let c = match serde_json::from_str::<ActionChange>(&text) {
                    Ok(c)
                        if key == format!("{}{}/{}/{}", keys::ACTION, c.review, c.action, c.id) =>
                    {
                        c
                    }
                    _ => {
                        tracing::warn!(key, "ignoring an unreadable review action change");
                        continue;
                    }
                };
                let slot = changes
                    .entry((c.review, c.action))
                    .or_insert_with(|| c.clone());
                if (c.at_ms, c.id) > (slot.at_ms, slot.id) {
                    *slot = c;
                }
            }
        }
        reviews.sort_by_key(|r| std::cmp::Reverse((r.at_ms, r.id)));
        Ok(Stored { reviews, changes })
    }

    /// The roster's names by device, for authors and closers.
    fn member_names(&mut self) -> Result<HashMap<String, String>, Error> {
        Ok(roster::members(self.catalog_mut())?
            .into_iter()
            .map(|m| (m.id, m.name))
            .collect())
    }

    fn review_view(
        &mut self,
        r: Review,
        stored: &Stored,
        names: &HashMap<String, String>,
        experiments: &mut HashMap<ExperimentId, Option<String>>,
    ) -> Result<ReviewView, Error> {
        let who = |user: &str, device: Option<&str>| {
            device
                .and_then(|d| names.get(d).cloned())
                .unwrap_or_else(|| user.to_owned())
        };
        let actions = r
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let change = stored.changes.get(&(r.id, i as u32));
                ActionView {
                    index: i as u32,
                    text: a.text.clone(),
                    owner: a.owner.clone(),
                    state: change.map_or(ActionState::Open, |c| c.state),
                    changed_by: change.map(|c| who(&c.user, c.device.as_deref())),
                    changed_ms: change.map(|c| c.at_ms),
                    note: change.map(|c| c.note.clone()).unwrap_or_default(),
                }
            })
            .collect();
        let experiment_name = match r.experiment {
            Some(id) => match experiments.get(&id) {
                Some(n) => n.clone(),
                None => {
                    let n = self.catalog().experiment(id)?.map(|e| e.name);
                    experiments.insert(id, n.clone());
                    n
                }
            },
            None => None,
        };
        Ok(ReviewView {
            author: who(&r.user, r.device.as_deref()),
            experiment_name,
            actions,
            review: r,
        })
    }

    /// The team's review template, or the default (objective, confidence and decision
    /// required) when none is set.
    pub fn review_template(&mut self) -> Result<TemplateView, Error> {
        let stored = self.catalog_mut().team_ranges(&[keys::TEMPLATE])?;
        let mut best: Option<TemplateRecord> = None;
        for (key, values) in stored.into_iter().flatten() {
            if key != keys::TEMPLATE {
                continue;
            }
            for text in values {
                match serde_json::from_str::<TemplateRecord>(&text) {
                    Ok(t) if t.template.validate().is_ok() => {
                        if best
                            .as_ref()
                            .is_none_or(|b| (t.at_ms, &t.user) > (b.at_ms, &b.user))
                        {
                            best = Some(t);
                        }
                    }
                    _ => tracing::warn!("ignoring an unreadable review template"),
                }
            }
        }
        Ok(match best {
            Some(t) => TemplateView {
                template: t.template,
                default: false,
                set_by: Some(t.user),
                set_ms: Some(t.at_ms),
            },
            None => TemplateView {
                template: ReviewTemplate::default(),
                default: true,
                set_by: None,
                set_ms: None,
            },
        })
    }

    /// Sets the team's review template (an attested record in the team doc).
    pub fn set_review_template(&mut self, template: ReviewTemplate) -> Result<TemplateView, Error> {
        template.validate()?;
        let record = TemplateRecord {
            template,
            user: self.user().to_owned(),
            at_ms: now_ms(),
            device: self.device_id().ok(),
        };
        let draft = self
            .draft(cairn_audit::kind::REVIEW_TEMPLATE_SET)
            .field("required", record.template.required.join(", "))
            .field(
                "extra",
                record
                    .template
                    .extra
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
        self.put_attested(draft, &[(keys::TEMPLATE.to_owned(), Some(json(&record)))])?;
        tracing::info!("review template set");
        Ok(TemplateView {
            template: record.template,
            default: false,
            set_by: Some(record.user),
            set_ms: Some(record.at_ms),
        })
    }

    /// Writes a review: its runs and experiment resolved, checked against the team's template
    /// (every missing required field named), attested, and its runs restamped for search.
    pub fn create_review(&mut self, new: &NewReview) -> Result<ReviewView, Error> {
        if new.runs.len() > cairn_model::review::MAX_REVIEW_RUNS {
            return Err(Error::Invalid(format!(
                "a review covers at most {} runs",
                cairn_model::review::MAX_REVIEW_RUNS
            )));
        }
        let mut runs = Vec::with_capacity(new.runs.len());
        for prefix in &new.runs {
            let id = self.resolve_run(prefix)?;
            if !runs.contains(&id) {
                runs.push(id);
            }
        }
        let experiment = match new.experiment.as_deref().filter(|e| !e.trim().is_empty()) {
            Some(e) => Some(self.experiment(e)?.id),
            None => None,
        };
        let trim = |t: &Option<String>| {
            t.as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
        };
        let review = Review {
            id: RecordId::new(),
            runs,
            experiment,
            objective: trim(&new.objective),
            method: trim(&new.method),
            result: trim(&new.result),
            confidence: new.confidence.clone(),
            decision: new.decision,
            actions: new
                .actions
                .iter()
                .map(|a| NextAction {
                    text: a.text.trim().to_owned(),
                    owner: a.owner.trim().to_owned(),
                })
                .collect(),
            text: trim(&new.text),
            extra: new
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), v.trim().to_owned()))
                .filter(|(_, v)| !v.is_empty())
                .collect(),
            user: self.user().to_owned(),
            device: self.device_id().ok(),
            at_ms: now_ms(),
        };
        let template = self.review_template()?.template;
        review.validate(&template)?;
        let mut draft = self
            .draft(cairn_audit::kind::REVIEW_CREATED)
            .subject(format!("review:{}", review.id))
            .field("review", review.id.to_string())
            .field_opt("decision", review.decision.map(|d| d.as_str().to_owned()))
            .field_opt(
                "confidence",
                review
                    .confidence
                    .as_ref()
                    .and_then(Confidence::effective_level)
                    .map(|l| l.as_str().to_owned()),
            );
        for run in &review.runs {
            draft = draft.subject(format!("run:{run}"));
        }
        if let Some(e) = review.experiment {
            draft = draft.subject(format!("experiment:{e}"));
        }
        self.put_attested(
            draft,
            &[(
                format!("{}{}", keys::REVIEW, review.id),
                Some(json(&review)),
            )],
        )?;
        self.catalog_mut().restamp_runs(&review.runs)?;
        tracing::info!(review = %review.id, runs = review.runs.len(), "review written");
        self.review(&review.id.to_string())
    }

    /// The reviews `filter` selects, newest first.
    pub fn reviews(&mut self, filter: &ReviewFilter) -> Result<Vec<ReviewView>, Error> {
        let run = match filter.run.as_deref().filter(|r| !r.is_empty()) {
            Some(p) => Some(self.resolve_run(p)?),
            None => None,
        };
        let experiment = match filter.experiment.as_deref().filter(|e| !e.is_empty()) {
            Some(e) => Some(self.experiment(e)?.id),
            None => None,
        };
        let limit = filter
            .limit
            .map_or(MAX_REVIEWS, |l| l as usize)
            .min(MAX_REVIEWS);
        let open_only = filter.open_actions.unwrap_or(false);
        let stored = self.stored_reviews()?;
        let names = self.member_names()?;
        let mut experiments = HashMap::new();
        let mut out = Vec::new();
        for r in stored.reviews.clone() {
            if out.len() == limit {
                break;
            }
            if run.is_some_and(|id| !r.runs.contains(&id)) {
                continue;
            }
            if let Some(e) = experiment {
                let of_runs = r.experiment.is_none() && {
                    let mut any = false;
                    for id in &r.runs {
                        if self.catalog().run(*id)?.is_some_and(|x| x.experiment == e) {
                            any = true;
                            break;
                        }
                    }
                    any
                };
                if r.experiment != Some(e) && !of_runs {
                    continue;
                }
            }
            if filter.decision.is_some() && r.decision != filter.decision {
                continue;
            }
            let view = self.review_view(r, &stored, &names, &mut experiments)?;
            let owner = filter.owner.as_deref().filter(|o| !o.is_empty());
            let matches = |a: &&ActionView| {
                owner.is_none_or(|o| a.owner == o) && (!open_only || a.state == ActionState::Open)
            };
            if (owner.is_some() || open_only) && !view.actions.iter().any(|a| matches(&a)) {
                continue;
            }
            out.push(view);
        }
        Ok(out)
    }

    /// One review by id or unique id prefix.
    pub fn review(&mut self, prefix: &str) -> Result<ReviewView, Error> {
        let prefix = prefix.trim().to_ascii_lowercase();
        if prefix.is_empty() || prefix.len() > 32 || !prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::Invalid(format!(
                "'{prefix}' is not a review id (hex digits, or a unique prefix of them)"
            )));
        }
        let stored = self.stored_reviews()?;
        let mut found = stored
            .reviews
            .iter()
            .filter(|r| r.id.to_string().starts_with(&prefix));
        let r = match (found.next(), found.next()) {
            (Some(r), None) => r.clone(),
            (None, _) => return Err(Error::UnknownReview(prefix)),
            (Some(_), Some(_)) => {
                return Err(Error::Invalid(format!(
                    "review id prefix '{prefix}' is ambiguous: give more digits"
                )));
            }
        };
        let names = self.member_names()?;
        self.review_view(r, &stored, &names, &mut HashMap::new())
    }

    /// Sets a next action's state (done, dropped, open again): a record of its own, attested,
    /// naming who and when.
    pub fn set_action_state(&mut self, req: &SetActionState) -> Result<ReviewView, Error> {
        let note = req.note.as_deref().unwrap_or("").trim().to_owned();
        if note.len() > cairn_model::review::MAX_REVIEW_FIELD {
            return Err(Error::Invalid(format!(
                "an action's note is at most {} bytes",
                cairn_model::review::MAX_REVIEW_FIELD
            )));
        }
        let view = self.review(&req.id)?;
        let Some(action) = view.actions.get(req.action as usize) else {
            return Err(Error::Invalid(format!(
                "review {} has {} next actions: there is no action {}",
                view.review.id,
                view.actions.len(),
                req.action
            )));
        };
        let change = ActionChange {
            id: RecordId::new(),
            review: view.review.id,
            action: req.action,
            state: req.state,
            user: self.user().to_owned(),
            device: self.device_id().ok(),
            at_ms: now_ms(),
            note,
        };
        let mut draft = self
            .draft(cairn_audit::kind::REVIEW_ACTION_CHANGED)
            .subject(format!("review:{}", view.review.id))
            .field("review", view.review.id.to_string())
            .field("action", req.action.to_string())
            .field("text", action.text.clone())
            .field("owner", action.owner.clone())
            .field("from", action.state.as_str())
            .field("to", req.state.as_str());
        for run in &view.review.runs {
            draft = draft.subject(format!("run:{run}"));
        }
        self.put_attested(
            draft,
            &[(
                format!(
                    "{}{}/{}/{}",
                    keys::ACTION,
                    change.review,
                    change.action,
                    change.id
                ),
                Some(json(&change)),
            )],
        )?;
        self.catalog_mut().restamp_runs(&view.review.runs)?;
        self.review(&view.review.id.to_string())
    }

    /// What the search index holds of each reviewed run: its reviews' ids, decisions,
    /// confidence levels, authors, open actions' owners, and their text.
    pub(crate) fn run_reviews(&mut self) -> Result<RunReviews, Error> {
        let stored = self.stored_reviews()?;
        let names = self.member_names()?;
        let mut out: RunReviews = HashMap::new();
        for r in &stored.reviews {
            if r.runs.is_empty() {
                continue;
            }
            let author = r
                .device
                .as_deref()
                .and_then(|d| names.get(d).cloned())
                .unwrap_or_else(|| r.user.clone());
            let open: Vec<String> = r
                .actions
                .iter()
                .enumerate()
                .filter(|(i, _)| {
                    stored
                        .changes
                        .get(&(r.id, *i as u32))
                        .is_none_or(|c| c.state == ActionState::Open)
                })
                .map(|(_, a)| a.owner.clone())
                .collect();
            let mut text = Vec::new();
            for t in [&r.objective, &r.method, &r.result, &r.text]
                .into_iter()
                .flatten()
            {
                text.push(t.clone());
            }
            text.extend(r.actions.iter().map(|a| a.text.clone()));
            if let Some(reason) = r.confidence.as_ref().and_then(|c| c.reason.clone()) {
                text.push(reason);
            }
            for run in &r.runs {
                let e = out.entry(*run).or_default();
                e.ids.push(r.id.to_string());
                e.decisions
                    .extend(r.decision.map(|d| d.as_str().to_owned()));
                e.confidences.extend(
                    r.confidence
                        .as_ref()
                        .and_then(Confidence::effective_level)
                        .map(|l| l.as_str().to_owned()),
                );
                e.authors.push(author.clone());
                e.open_action_owners.extend(open.iter().cloned());
                e.text.extend(text.iter().cloned());
            }
        }
        Ok(out)
    }

    /// The newest review with decision adopt of `run`, if any (what a gate requiring one
    /// reads).
    pub(crate) fn adopting_review(&mut self, run: RunId) -> Result<Option<RecordId>, Error> {
        Ok(self
            .stored_reviews()?
            .reviews
            .into_iter()
            .find(|r| r.runs.contains(&run) && r.decision == Some(Decision::Adopt))
            .map(|r| r.id))
    }
}

impl Workspace {
    /// The team's review template (or the default).
    pub fn review_template(&self) -> Result<TemplateView, Error> {
        self.read("review_template", Stores::review_template)
    }

    /// Sets the team's review template.
    pub fn set_review_template(&self, template: ReviewTemplate) -> Result<TemplateView, Error> {
        self.write("set_review_template", |s| s.set_review_template(template))
    }

    /// Writes a review; refused naming every field the template requires and it lacks.
    pub fn create_review(&self, new: &NewReview) -> Result<ReviewView, Error> {
        self.write("create_review", |s| s.create_review(new))
    }

    /// The reviews a filter selects, newest first.
    pub fn reviews(&self, filter: &ReviewFilter) -> Result<Vec<ReviewView>, Error> {
        self.read("reviews", |s| s.reviews(filter))
    }

    /// One review by id or unique prefix.
    pub fn review(&self, id: &str) -> Result<ReviewView, Error> {
        self.read("review", |s| s.review(id))
    }

    /// Sets a next action's state (done, dropped, or open again).
    pub fn set_action_state(&self, req: &SetActionState) -> Result<ReviewView, Error> {
        self.write("set_action_state", |s| s.set_action_state(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_review_file_reads_as_json_or_field_lines() {
        let r = parse_review_text(
            "objective: beat the baseline\nconfidence: 0.85\nreason: 5 seeds\ndecision: adopt\n\
             action: alice: rerun with seed 2\nextra.risk: low\n# a comment\ntext: a\ntext: b\n",
        )
        .unwrap();
        assert_eq!(r.objective.as_deref(), Some("beat the baseline"));
        assert_eq!(r.decision, Some(Decision::Adopt));
        assert_eq!(r.confidence.as_ref().and_then(|c| c.p), Some(0.85));
        assert_eq!(r.actions[0].owner, "alice");
        assert_eq!(r.actions[0].text, "rerun with seed 2");
        assert_eq!(r.extra["risk"], "low");
        assert_eq!(r.text.as_deref(), Some("a\nb"));
        let j = parse_review_text(r#"{"objective": "x", "decision": "iterate"}"#).unwrap();
        assert_eq!(j.decision, Some(Decision::Iterate));
        let e = parse_review_text("colour: red").unwrap_err().to_string();
        assert!(e.contains("line 1: unknown field 'colour'"), "{e}");
        let e = parse_review_text("\ndecision: maybe")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 2") && e.contains("adopt, iterate or abandon"),
            "{e}"
        );
        assert!(parse_review_text("action: nobody").is_err());
    }
}
