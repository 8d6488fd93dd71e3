//! Promotion gates and signed approvals over the registry (see `cairn_model::gate` for the
//! policy, the checks and the records).
//!
//! Every alias move goes through [`Stores::promote`]: the gate that guards the alias (the
//! model's policy for it, else the model's for any alias, else the project's default for it,
//! else the project's for any alias) is checked against the version's figures (its run's
//! evaluations and compliance), the current holder's, and the approvals that verify; the check
//! is kept as a record whether it passes or not, and the alias moves only when every check
//! passed.
//!
//! Approvals are signed by the approving device's ed25519 key (the iroh identity the roster
//! knows it by) over the version's identity and content hash, the policy's hash and the
//! figures' digest. Any member can write any team-doc key, so an approval is verified every
//! time it is read, here and on every peer after sync: it counts only when its signature
//! verifies for the device it names, that device is an active member of the team, the member is
//! not the version's author, and what it attests is what the version, its policy and its figures
//! are now.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use cairn_model::gate::{
    Approval, ApprovalCount, ApprovalView, EvalFacts, Facts, GateEvaluation, GatePolicy,
    PolicyRecord, evaluate, keys,
};
use cairn_model::registry::MAX_RECORD_TEXT;
use cairn_model::registry::keys::{esc, of_model};
use cairn_model::{ModelVersion, RecordId, Run, validate_alias, validate_model_name};
use cairn_sync::roster;
use iroh::{EndpointId, Signature};
use serde::{Deserialize, Serialize};

use crate::registry::text_bound;
use crate::stores::now_ms;
use crate::{Error, Stores, Workspace};

/// Most gate evaluations or approvals one read returns (newest first).
pub const MAX_GATE_RECORDS: usize = 10_000;

/// Where a policy applies: one model or the project, one alias or any.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct GateScope {
    /// `None`: the project's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub model: Option<String>,
    /// `None`: any alias without a policy of its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub alias: Option<String>,
}

impl GateScope {
    fn key(&self) -> Result<String, Error> {
        let alias = match &self.alias {
            Some(a) => {
                validate_alias(a)?;
                esc(a)
            }
            None => keys::ANY_ALIAS.to_owned(),
        };
        Ok(match &self.model {
            Some(m) => {
                validate_model_name(m)?;
                format!("{}{alias}", of_model(keys::POLICY, m))
            }
            None => format!("{}{alias}", keys::DEFAULT_POLICY),
        })
    }

    fn describe(&self) -> String {
        let alias = self
            .alias
            .as_deref()
            .map_or("any alias".to_owned(), |a| format!("@{a}"));
        match &self.model {
            Some(m) => format!("model '{m}', {alias}"),
            None => format!("the project's default, {alias}"),
        }
    }
}

/// A policy, where it applies, who set it and its hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct GateView {
    pub scope: GateScope,
    pub policy: GatePolicy,
    pub hash: String,
    pub set_by: String,
    pub set_ms: i64,
}

/// A version's approvals, each verified.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ApprovalsView {
    pub model: String,
    pub version: u32,
    pub alias: String,
    /// The policy they are judged against (its hash), if one guards the alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub policy_hash: Option<String>,
    pub approvals: Vec<ApprovalView>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Checks an approval's signature against the key its `device` names. Says why not.
pub fn verify_approval(a: &Approval) -> Result<(), String> {
    let id = EndpointId::from_str(&a.device)
        .map_err(|e| format!("device '{}' is not an endpoint id: {e}", a.device))?;
    let sig = unhex::<64>(&a.signature)
        .ok_or_else(|| "the signature is not 64 bytes of hex".to_owned())?;
    id.verify(&a.signed_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| format!("the signature does not verify for device {}", a.device))
}

/// A version's figures from its run: each evaluation's metrics, dataset and fairness figures,
/// and the fields its schema found missing.
fn facts_of(version: u32, run: Option<&Run>) -> Facts {
    let Some(run) = run else {
        return Facts {
            version,
            ..Facts::default()
        };
    };
    let mut evaluations = BTreeMap::new();
    for (benchmark, e) in &run.lineage.evaluations {
        // The fairness figures as the run page and `cairn eval show` give them.
        let fairness = cairn_model::fairness(benchmark, e)
            .into_iter()
            .map(|f| ((f.metric, f.attribute), (f.difference.0, f.ratio.0)))
            .collect();
        evaluations.insert(
            benchmark.clone(),
            EvalFacts {
                dataset: e.dataset.clone(),
                metrics: e.metrics.iter().map(|(k, v)| (k.clone(), v.0)).collect(),
                fairness,
            },
        );
    }
    // Not compliant (incomplete, pending or refused) is never an empty list of missing fields.
    let mut missing = run.compliance.missing.clone();
    if !run.compliance.is_compliant() && missing.is_empty() {
        missing.push(format!(
            "its compliance is {}",
            run.compliance.state.as_str()
        ));
    }
    Facts {
        version,
        evaluations,
        missing_fields: Some(missing),
        adopt_review: None,
    }
}

fn json<T: Serialize>(v: &T) -> String {
    // Records are strings, numbers, maps and ids: nothing serde_json can fail on.
    serde_json::to_string(v).unwrap_or_default()
}

impl Stores {
    /// The policy stored for `scope`, if any (of concurrent writes, the latest).
    fn policy_at(&mut self, scope: &GateScope) -> Result<Option<PolicyRecord>, Error> {
        let key = scope.key()?;
        let range = self
            .catalog_mut()
            .team_ranges(&[&key])?
            .into_iter()
            .next()
            .unwrap_or_default();
        let mut best: Option<PolicyRecord> = None;
        for (k, values) in range {
            if k != key {
                continue;
            }
            for text in values {
                match serde_json::from_str::<PolicyRecord>(&text) {
                    Ok(p) if p.policy.validate().is_ok() => {
                        if best
                            .as_ref()
                            .is_none_or(|b| (p.at_ms, &p.user) > (b.at_ms, &b.user))
                        {
                            best = Some(p);
                        }
                    }
                    _ => tracing::warn!(key = k, "ignoring an unreadable gate policy"),
                }
            }
        }
        Ok(best)
    }

    /// The policy that guards moving `alias` of `model`, and where it was set.
    pub fn gate_for(&mut self, model: &str, alias: &str) -> Result<Option<GateView>, Error> {
        for scope in [
            (Some(model), Some(alias)),
            (Some(model), None),
            (None, Some(alias)),
            (None, None),
        ] {
            let scope = GateScope {
                model: scope.0.map(str::to_owned),
                alias: scope.1.map(str::to_owned),
            };
            if let Some(p) = self.policy_at(&scope)? {
                if p.policy.is_empty() {
                    // An empty policy set here lifts the gate for this scope.
                    return Ok(None);
                }
                return Ok(Some(GateView {
                    hash: p.policy.hash(),
                    scope,
                    policy: p.policy,
                    set_by: p.user,
                    set_ms: p.at_ms,
                }));
            }
        }
        Ok(None)
    }

    /// Sets the policy of `scope` (an empty policy lifts the gate there).
    pub fn set_gate(&mut self, scope: &GateScope, policy: GatePolicy) -> Result<GateView, Error> {
        policy.validate()?;
        if let Some(m) = &scope.model {
            self.registered_model(m)?;
        }
        let record = PolicyRecord {
            policy,
            user: self.user().to_owned(),
            at_ms: now_ms(),
            device: self.device_id().ok(),
        };
        // The record is replaced; the policy it held stays readable as history in the event
        // that attested it (`record.N.value`), which this one names as the previous policy.
        let previous = self.policy_at(scope)?;
        let draft = self
            .draft(cairn_audit::kind::GATE_POLICY_SET)
            .field("scope", scope.describe())
            .field("policy_hash", record.policy.hash())
            .field_opt(
                "previous_policy_hash",
                previous.as_ref().map(|p| p.policy.hash()),
            )
            .field_opt("previous_set_by", previous.as_ref().map(|p| p.user.clone()))
            .field_opt(
                "previous_set_ms",
                previous.as_ref().map(|p| p.at_ms.to_string()),
            );
        let draft = match &scope.model {
            Some(m) => draft.subject(format!("model:{m}")),
            None => draft,
        };
        self.put_attested(draft, &[(scope.key()?, Some(json(&record)))])?;
        tracing::info!(scope = scope.describe(), "gate policy set");
        Ok(GateView {
            hash: record.policy.hash(),
            scope: scope.clone(),
            policy: record.policy,
            set_by: record.user,
            set_ms: record.at_ms,
        })
    }

    /// What the gate reads of a version.
    fn version_facts(&mut self, v: &ModelVersion) -> Result<Facts, Error> {
        let run = match v.run {
            Some(id) => match self.run_record(id) {
                Ok(r) => Some(r),
                // A run not (yet) synced here: no figures, every check that needs one fails.
                Err(e) if e.code() == crate::Code::NotFound => None,
                Err(e) => return Err(e),
            },
            None => None,
        };
        let mut facts = facts_of(v.version, run.as_ref());
        if let Some(run) = &run {
            facts.adopt_review = self.adopting_review(run.id)?.map(|id| id.to_string());
        }
        Ok(facts)
    }

    /// Every approval of version `v`, verified against what it must attest now.
    fn verified_approvals(
        &mut self,
        model: &str,
        v: &ModelVersion,
        policy_hash: Option<&str>,
        inputs: &str,
    ) -> Result<Vec<ApprovalView>, Error> {
        let prefix = format!("{}{}/", of_model(keys::APPROVAL, model), v.id);
        let range = self
            .catalog_mut()
            .team_ranges(&[&prefix])?
            .into_iter()
            .next()
            .unwrap_or_default();
        if range.is_empty() {
            return Ok(Vec::new());
        }
        let members = roster::members(self.catalog_mut())?;
        let me = self.device_id().ok();
        let name_of = |device: &str| {
            members
                .iter()
                .find(|m| m.id == device)
                .map(|m| m.name.clone())
        };
        // The author as a person: the registering device's member, else the user it named.
        let author = v
            .device
            .as_deref()
            .and_then(name_of)
            .unwrap_or_else(|| v.user.clone());
        let mut out = Vec::new();
        let mut counted: BTreeSet<String> = BTreeSet::new();
        for (key, values) in range.into_iter().take(MAX_GATE_RECORDS) {
            for text in values {
                let a = match serde_json::from_str::<Approval>(&text) {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(key, "ignoring an unreadable approval: {e}");
                        continue;
                    }
                };
                let member = members.iter().find(|m| m.id == a.device);
                let problem = if key != format!("{prefix}{}", a.id) || a.model != model {
                    "it is filed under another model, version or id".to_owned()
                } else if a.comment.len() > MAX_RECORD_TEXT || a.user.len() > MAX_RECORD_TEXT {
                    format!("a field is longer than {MAX_RECORD_TEXT} bytes")
                } else if let Err(why) = verify_approval(&a) {
                    why
                } else if member.is_none_or(|m| m.removed) {
                    if member.is_some() {
                        format!("device {} was removed from the team", a.device)
                    } else if me.as_deref() == Some(a.device.as_str()) {
                        "this device is on no team: approvals count from team members".to_owned()
                    } else {
                        format!("device {} is not a member of the team", a.device)
                    }
                } else if Some(a.device.as_str()) == v.device.as_deref()
                    || member.is_some_and(|m| m.name == author)
                {
                    format!("{author} registered this version: an author cannot approve it")
                } else if a.version != v.id || a.content != v.content {
                    "it approves other content than this version's".to_owned()
                } else if a.policy_hash.as_deref() != policy_hash {
                    "it was given under another gate policy".to_owned()
                } else if a.inputs != inputs {
                    "the version's evaluations changed since it was given".to_owned()
                } else if !counted.insert(member.map(|m| m.name.clone()).unwrap_or_default()) {
                    "the same member already approved".to_owned()
                } else {
                    String::new()
                };
                if !problem.is_empty() {
                    tracing::debug!(key, "an approval does not count: {problem}");
                }
                out.push(ApprovalView {
                    member: member.map(|m| m.name.clone()),
                    counts: problem.is_empty(),
                    problem,
                    approval: a,
                });
            }
        }
        out.sort_by(|a, b| {
            (a.approval.at_ms, a.approval.id).cmp(&(b.approval.at_ms, b.approval.id))
        });
        Ok(out)
    }

    /// A version's approvals as the gate of `alias` judges them.
    pub fn approvals(
        &mut self,
        model: &str,
        version: u32,
        alias: &str,
    ) -> Result<ApprovalsView, Error> {
        validate_alias(alias)?;
        let v = self.model_version(model, version)?;
        let gate = self.gate_for(model, alias)?;
        let facts = self.version_facts(&v)?;
        let policy_hash = gate.as_ref().map(|g| g.hash.clone());
        let approvals =
            self.verified_approvals(model, &v, policy_hash.as_deref(), &facts.digest())?;
        Ok(ApprovalsView {
            model: model.to_owned(),
            version,
            alias: alias.to_owned(),
            policy_hash,
            approvals,
        })
    }

    /// Approves a version for `alias`: a record signed by this device's key attesting the
    /// version's content, the policy that guards the alias and the version's figures now.
    pub fn approve(
        &mut self,
        model: &str,
        version: u32,
        alias: &str,
        comment: &str,
    ) -> Result<ApprovalView, Error> {
        validate_alias(alias)?;
        text_bound("comment", Some(comment))?;
        let v = self.model_version(model, version)?;
        let gate = self.gate_for(model, alias)?;
        let facts = self.version_facts(&v)?;
        let key = self.device_key()?;
        let mut a = Approval {
            id: RecordId::new(),
            model: model.to_owned(),
            version: v.id,
            content: v.content,
            policy_hash: gate.map(|g| g.hash),
            inputs: facts.digest(),
            device: key.public().to_string(),
            user: self.user().to_owned(),
            at_ms: now_ms(),
            comment: comment.to_owned(),
            signature: String::new(),
        };
        a.signature = hex(&key.sign(&a.signed_bytes()).to_bytes());
        let draft = self
            .draft(cairn_audit::kind::APPROVED)
            .subject(format!("model:{model}"))
            .subject(crate::audit::version_subject(model, v.id))
            .field("model", model)
            .field("version", v.version.to_string())
            .field("alias", alias)
            .field("inputs", a.inputs.clone())
            .field_opt("policy_hash", a.policy_hash.clone())
            .field_opt("content", a.content.map(|c| c.to_string()))
            .field("comment", comment);
        self.put_attested(
            draft,
            &[(
                format!("{}{}/{}", of_model(keys::APPROVAL, model), v.id, a.id),
                Some(json(&a)),
            )],
        )?;
        // As every peer will judge it (an author's or a non-member's approval is kept but
        // does not count).
        let view = self
            .approvals(model, version, alias)?
            .approvals
            .into_iter()
            .find(|x| x.approval.id == a.id)
            .ok_or_else(|| Error::Invalid(format!("approval {} vanished", a.id)))?;
        Ok(view)
    }

    /// Checks version `version` of `model` against the gate of `alias`, keeps the check as a
    /// record, and — `promote` — moves the alias when every check passed; a refused promotion
    /// is [`Error::GateRefused`] naming each failed check.
    pub fn gate_check(
        &mut self,
        model: &str,
        version: u32,
        alias: &str,
        rationale: Option<&str>,
        promote: bool,
    ) -> Result<GateEvaluation, Error> {
        validate_alias(alias)?;
        text_bound("rationale", rationale)?;
        // The model is assembled once (1,000 versions are 1,000 records to read).
        let m = self.registered_model(model)?;
        let v = crate::registry::live_version(&m, version)?;
        let holder = m
            .alias(alias)
            .and_then(|a| a.holder())
            .and_then(|t| m.version_by_id(t.version))
            .cloned();
        let gate = self.gate_for(model, alias)?;
        let facts = self.version_facts(&v)?;
        let inputs = facts.digest();
        let checks = match &gate {
            Some(g) => {
                let holder_facts = match &holder {
                    Some(h) => Some(self.version_facts(h)?),
                    None => None,
                };
                let approvals = if g.policy.approvals > 0 {
                    let all = self.verified_approvals(model, &v, Some(&g.hash), &inputs)?;
                    let valid = all.iter().filter(|a| a.counts).count() as u32;
                    ApprovalCount {
                        valid,
                        not_counted: all.len() as u32 - valid,
                    }
                } else {
                    ApprovalCount::default()
                };
                evaluate(&g.policy, &facts, holder_facts.as_ref(), approvals)
            }
            None => Vec::new(),
        };
        let passed = checks.iter().all(|c| c.passed);
        let e = GateEvaluation {
            id: RecordId::new(),
            model: model.to_owned(),
            alias: alias.to_owned(),
            version: v.id,
            number: v.version,
            content: v.content,
            holder: holder.as_ref().map(|h| h.version),
            policy_hash: gate.as_ref().map(|g| g.hash.clone()),
            policy: gate.map(|g| g.policy),
            inputs,
            checks,
            passed,
            promoted: promote && passed,
            user: self.user().to_owned(),
            device: self.device_id().ok(),
            at_ms: now_ms(),
            rationale: rationale.map(str::to_owned),
        };
        let mut entries = vec![(
            format!("{}{}", of_model(keys::EVALUATION, model), e.id),
            Some(json(&e)),
        )];
        if e.promoted {
            // The move and the check that allowed it, in one change: every peer gets both or
            // neither.
            entries.push(self.alias_entry(model, alias, Some(v.id), Some(e.id), rationale)?);
        }
        let draft = self
            .draft(if e.promoted {
                cairn_audit::kind::ALIAS_MOVED
            } else {
                cairn_audit::kind::GATE_EVALUATED
            })
            .subject(format!("model:{model}"))
            .subject(crate::audit::version_subject(model, v.id))
            .field("model", model)
            .field("version", v.version.to_string())
            .field("alias", alias)
            .field("verdict", if passed { "passed" } else { "failed" })
            .field("promoted", e.promoted.to_string())
            .field("inputs", e.inputs.clone())
            .field_opt("policy_hash", e.policy_hash.clone())
            .field_opt("rationale", rationale)
            .field(
                "failed_checks",
                serde_json::to_string(&e.failed().map(ToString::to_string).collect::<Vec<_>>())
                    .unwrap_or_default(),
            );
        self.put_attested(draft, &entries)?;
        if promote && !passed {
            return Err(Error::GateRefused {
                model: model.to_owned(),
                version,
                alias: alias.to_owned(),
                failed: e.failed().map(ToString::to_string).collect(),
            });
        }
        Ok(e)
    }

    /// The newest `limit` kept gate evaluations of `model` (at most [`MAX_GATE_RECORDS`]),
    /// newest first. They are keyed by their time-ordered ids, so only the newest are read: a
    /// model checked 10,000 times answers a page of 50 without parsing the other checks.
    pub fn gate_evaluations(
        &mut self,
        model: &str,
        limit: usize,
    ) -> Result<Vec<GateEvaluation>, Error> {
        let limit = limit.min(MAX_GATE_RECORDS);
        let prefix = of_model(keys::EVALUATION, model);
        let range = self.catalog_mut().team_range_tail(&prefix, limit)?;
        let mut out: Vec<GateEvaluation> = Vec::new();
        for (key, values) in range {
            for text in values {
                match serde_json::from_str::<GateEvaluation>(&text) {
                    Ok(e) if e.model == model && key == format!("{prefix}{}", e.id) => out.push(e),
                    _ => tracing::warn!(key, "ignoring an unreadable gate evaluation"),
                }
            }
        }
        out.sort_by_key(|e| std::cmp::Reverse((e.at_ms, e.id)));
        out.truncate(limit);
        Ok(out)
    }
}

impl Workspace {
    /// The policy that guards `alias` of `model` (`None`: moves are not gated).
    pub fn gate_for(&self, model: &str, alias: &str) -> Result<Option<GateView>, Error> {
        self.read("gate_for", |s| s.gate_for(model, alias))
    }

    /// Sets a gate policy (an empty one lifts the gate of its scope).
    pub fn set_gate(&self, scope: &GateScope, policy: GatePolicy) -> Result<GateView, Error> {
        self.write("set_gate", |s| s.set_gate(scope, policy))
    }

    /// Checks a version against the gate of `alias` without moving it (the check is kept).
    pub fn check_gate(
        &self,
        model: &str,
        version: u32,
        alias: &str,
    ) -> Result<GateEvaluation, Error> {
        self.write("check_gate", |s| {
            s.gate_check(model, version, alias, None, false)
        })
    }

    /// Moves `alias` to a version through its gate: refused ([`Error::GateRefused`]) unless
    /// every check passes; the check is kept either way.
    pub fn promote(
        &self,
        model: &str,
        version: u32,
        alias: &str,
        rationale: Option<&str>,
    ) -> Result<GateEvaluation, Error> {
        self.write("promote", |s| {
            s.gate_check(model, version, alias, rationale, true)
        })
    }

    /// Signs this device's approval of a version for `alias`.
    pub fn approve(
        &self,
        model: &str,
        version: u32,
        alias: &str,
        comment: &str,
    ) -> Result<ApprovalView, Error> {
        self.write("approve", |s| s.approve(model, version, alias, comment))
    }

    /// A version's approvals, each verified as the gate of `alias` judges it.
    pub fn approvals(
        &self,
        model: &str,
        version: u32,
        alias: &str,
    ) -> Result<ApprovalsView, Error> {
        self.read("approvals", |s| s.approvals(model, version, alias))
    }

    /// The newest `limit` kept gate evaluations of a model (at most [`MAX_GATE_RECORDS`]),
    /// newest first.
    pub fn gate_evaluations(
        &self,
        model: &str,
        limit: usize,
    ) -> Result<Vec<GateEvaluation>, Error> {
        self.read("gate_evaluations", |s| s.gate_evaluations(model, limit))
    }
}

/// A registered model by name (`/api/v1`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ModelRef {
    pub name: String,
}

/// A page of a model's kept gate evaluations (`/api/v1`), newest first: `limit` of them
/// (default [`DEFAULT_GATE_HISTORY`], at most [`MAX_GATE_RECORDS`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct GateHistory {
    pub name: String,
    pub limit: Option<u32>,
}

/// How many gate evaluations a history request gives when it names no limit.
pub const DEFAULT_GATE_HISTORY: usize = 100;

impl GateHistory {
    pub fn limit(&self) -> usize {
        self.limit
            .map_or(DEFAULT_GATE_HISTORY, |l| l as usize)
            .min(MAX_GATE_RECORDS)
    }
}

/// The gate of one alias of a model (`/api/v1`); the alias defaults to `champion`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct GateQuery {
    pub name: String,
    pub alias: Option<String>,
}

impl GateQuery {
    pub fn alias(&self) -> &str {
        self.alias.as_deref().unwrap_or(DEFAULT_ALIAS)
    }
}

/// The alias a promotion, a check or an approval is for when none is named.
pub const DEFAULT_ALIAS: &str = "champion";

/// A version of a model and what to do with it for an alias (`/api/v1`: check, promote,
/// approve, approvals). `version` is a number (`3` or `v3`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct VersionAction {
    pub name: String,
    pub version: String,
    /// Defaults to `champion`.
    pub alias: Option<String>,
    /// Why (a promotion's).
    pub rationale: Option<String>,
    /// An approval's comment.
    pub comment: Option<String>,
}

impl VersionAction {
    pub fn alias(&self) -> &str {
        self.alias.as_deref().unwrap_or(DEFAULT_ALIAS)
    }

    /// The version's number.
    pub fn number(&self) -> Result<u32, Error> {
        self.version
            .trim_start_matches(['v', 'V'])
            .parse()
            .map_err(|_| {
                Error::Invalid(format!(
                    "'{}' is not a version number of model '{}'",
                    self.version, self.name
                ))
            })
    }
}

/// Sets a gate policy (`/api/v1`): for one model or (`model` absent) the project, one alias or
/// (`alias` absent) any.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct SetGate {
    pub model: Option<String>,
    pub alias: Option<String>,
    pub policy: GatePolicy,
}

impl SetGate {
    pub fn scope(&self) -> GateScope {
        GateScope {
            model: self.model.clone(),
            alias: self.alias.clone(),
        }
    }
}
