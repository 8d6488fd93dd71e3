//! The audit trail (issue #15) over `cairn-audit`'s chains: which changes become events, what
//! they attest, and the questions an auditor asks.
//!
//! Every governed change writes one signed event to this device's chain *before* its records
//! (so a crash leaves at most an event whose records never landed, never a record no event
//! attests): `put_attested` names each team-doc record it writes and its BLAKE3, and the event
//! carries the record itself, so a bundle answers questions with no workspace at hand. Runs
//! (created with their lineage), evaluations, deployments and roster removals write events of
//! their own.
//!
//! `verify` checks every chain (signatures, links, gaps, forks, signers against the roster and
//! their removal times), then every governed record of the team doc against the events: a
//! record whose current value no event attests was changed by a raw automerge edit (or before
//! this device's workspace kept an audit trail: `audit_baseline` attests those once, signed by
//! whoever runs it). `trail` walks back from a model version: the version, its run and the
//! run's lineage (datasets with digests, feature set, code commit, parents), evaluations, gate
//! checks, approvals, alias moves and deployments, each step with who, when and why.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use cairn_audit::{AuditStore, DeviceKey, Draft, Event, Finding, Problem, Query, Signer, kind};
use cairn_model::gate::keys as gate_keys;
use cairn_model::registry::keys;
use cairn_model::review::keys as review_keys;
use cairn_model::{
    DatasetSnapshot, Enforcement, Experiment, RecordId, RunId, RunSchema, SchemaViolation,
    VersionId,
};
use serde::{Deserialize, Serialize};

use crate::stores::{Stores, now_ms};
use crate::{Error, Workspace};

pub use cairn_audit::bundle::{BundleCheck, Format as AuditFormat};
pub use cairn_audit::{Event as AuditEvent, Report as AuditReport};

/// The team-doc ranges whose every record an event must attest.
const GOVERNED: &[&str] = &[
    keys::MODEL,
    keys::VERSION,
    keys::MODEL_DELETION,
    keys::VERSION_DELETION,
    keys::ALIAS,
    gate_keys::POLICY,
    gate_keys::DEFAULT_POLICY,
    gate_keys::EVALUATION,
    gate_keys::APPROVAL,
    DEPLOY_PREFIX,
    PROJECT_SCHEMA_KEY,
    review_keys::REVIEW,
    review_keys::ACTION,
    review_keys::TEMPLATE,
];

/// The team-doc key of the project's run schema (`Catalog::set_project_schema` writes the
/// schema's JSON there, as `serde_json` prints it). An experiment's own schema lives in its
/// experiment record, beside fields no event governs: its changes are events, not attested
/// records.
const PROJECT_SCHEMA_KEY: &str = "schema";

/// The file that holds the chains: the catalog's own.
pub(crate) const AUDIT_FILE: &str = "catalog.db";
/// Where workspaces made before the chains moved into the catalog kept them.
pub(crate) const LEGACY_AUDIT_FILE: &str = "audit.db";

/// `deploy/<model>/<record id>` → [`Deployment`].
pub const DEPLOY_PREFIX: &str = "deploy/";

/// Longest deployment target and rationale.
const MAX_TARGET: usize = 256;

/// A deployment as recorded: what went where and why. Cairn does not deploy; it records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Deployment {
    pub id: RecordId,
    pub model: String,
    pub version: VersionId,
    pub number: u32,
    /// The alias it was deployed by, when it was named by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub alias: Option<String>,
    /// The version's content hash at deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub content: Option<String>,
    pub target: String,
    pub rationale: String,
    pub user: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub device: Option<String>,
    pub at_ms: i64,
}

/// One step of a trail: an event, as a person reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TrailStep {
    pub at_ms: i64,
    pub kind: String,
    pub member: String,
    pub device: String,
    /// Which chain event it is (`<device>#<seq>`).
    pub event: String,
    pub fields: BTreeMap<String, String>,
}

/// A dataset as the run recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TrailDataset {
    pub role: String,
    pub name: String,
    pub digest: String,
    pub source: String,
}

/// A run on the trail and its lineage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TrailRun {
    pub id: RunId,
    pub name: String,
    pub owner: String,
    pub started_ms: i64,
    pub datasets: Vec<TrailDataset>,
    pub feature_set: String,
    pub code_commit: String,
    pub infra: String,
    pub evaluations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub parent: Option<RunId>,
    /// The run's own events (its creation, evaluations, deletion).
    pub steps: Vec<TrailStep>,
}

/// `cairn audit trail NAME@VERSION`: where a version's data came from, who approved it on what
/// evidence and why it was deployed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct Trail {
    pub model: String,
    pub version: u32,
    pub version_id: VersionId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub content: Option<String>,
    /// The version's run first, then its parents (nearest first).
    pub runs: Vec<TrailRun>,
    /// The version's own events, oldest first: registration, gate checks, approvals, alias
    /// moves, deployments.
    pub steps: Vec<TrailStep>,
    /// Whether every chain verifies and every record on the trail is attested.
    pub verified: bool,
    /// What does not hold, if anything (from `verify`).
    pub findings: Vec<String>,
}

/// `cairn audit verify`: the chains' report and the records no event attests.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct AuditVerification {
    pub ok: bool,
    pub events: u64,
    pub chains: u64,
    /// Governed team-doc records checked against the events.
    pub records: u64,
    /// Problem → how many.
    pub counts: BTreeMap<String, u64>,
    /// The first findings (at most 1,000), each `problem: chain#seq: detail`.
    pub findings: Vec<AuditFindingView>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct AuditFindingView {
    pub problem: String,
    /// The chain (a device id) or record key it concerns.
    pub subject: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub seq: Option<u64>,
    pub detail: String,
}

/// A listed event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct AuditEventView {
    pub device: String,
    pub seq: u64,
    pub at_ms: i64,
    pub member: String,
    pub kind: String,
    pub subjects: Vec<String>,
    pub fields: BTreeMap<String, String>,
    pub hash: String,
}

impl From<&Event> for AuditEventView {
    fn from(e: &Event) -> AuditEventView {
        AuditEventView {
            device: e.device.clone(),
            seq: e.seq,
            at_ms: e.at_ms,
            member: e.member.clone(),
            kind: e.kind.clone(),
            subjects: e.subjects.clone(),
            fields: e.fields.clone(),
            hash: e.hash(),
        }
    }
}

/// Records a deployment (`/api/v1`): a version by number, or the one an alias names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct DeployRequest {
    pub name: String,
    pub version: Option<u32>,
    pub alias: Option<String>,
    pub target: String,
    pub rationale: String,
}

/// What `cairn audit log` filters on.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AuditLogRequest {
    /// `NAME` or `NAME@VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub model: Option<String>,
    /// A run id or unique prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub run: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub member: Option<String>,
    /// Events at or after this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub since_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub limit: Option<u32>,
}

pub(crate) fn record_digest(value: Option<&str>) -> String {
    match value {
        Some(v) => blake3::hash(v.as_bytes()).to_hex().to_string(),
        None => "deleted".to_owned(),
    }
}

/// `role=name@digest` for each dataset, as `run.created` and `run.datasets_logged` list them.
fn dataset_list<'a>(datasets: impl Iterator<Item = (&'a str, &'a DatasetSnapshot)>) -> Vec<String> {
    datasets
        .map(|(role, d)| {
            format!(
                "{role}={}@{}",
                d.name.as_deref().unwrap_or(role),
                d.digest.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// Longest source an event quotes per dataset (the digest is what identifies the data).
const MAX_SOURCE_QUOTED: usize = 512;

/// Datasets logged to a run after its creation: each as `role=name@digest`, and where each
/// came from (`sources`, in the same order, each cut to [`MAX_SOURCE_QUOTED`] bytes).
pub(crate) fn datasets_logged(
    draft: Draft,
    run: RunId,
    logged: &[(&str, &DatasetSnapshot)],
) -> Draft {
    let sources: Vec<&str> = logged
        .iter()
        .map(|(_, d)| {
            let s = d.source.as_deref().or(d.uri.as_deref()).unwrap_or("");
            let mut end = s.len().min(MAX_SOURCE_QUOTED);
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            &s[..end]
        })
        .collect();
    draft
        .subject(format!("run:{run}"))
        .field(
            "datasets",
            serde_json::to_string(&dataset_list(logged.iter().copied())).unwrap_or_default(),
        )
        .field(
            "sources",
            serde_json::to_string(&sources).unwrap_or_default(),
        )
}

/// A run's creation: its experiment, owner, and lineage as it was recorded (datasets with
/// their digests, feature set, code commit, infrastructure), and a digest of its params.
pub(crate) fn run_created(draft: Draft, run: &cairn_model::Run) -> Draft {
    let l = &run.lineage;
    let datasets = dataset_list(l.datasets.iter().map(|(r, d)| (r.as_str(), d)));
    let draft = draft
        .subject(format!("run:{}", run.id))
        .subject(format!("experiment:{}", run.experiment))
        .field("name", run.name.clone())
        .field_opt("owner", run.owner.clone())
        .field("params", run.params.len().to_string())
        .field(
            "params.blake3",
            blake3::hash(
                serde_json::to_string(&run.params)
                    .unwrap_or_default()
                    .as_bytes(),
            )
            .to_hex()
            .to_string(),
        );
    let draft = if datasets.is_empty() {
        draft
    } else {
        draft.field(
            "datasets",
            serde_json::to_string(&datasets).unwrap_or_default(),
        )
    };
    draft
        .field_opt(
            "feature_set",
            l.feature_set
                .as_ref()
                .map(|f| format!("{}@{}", f.name, f.version)),
        )
        .field_opt(
            "code_commit",
            l.code.as_ref().and_then(|c| c.commit.clone()),
        )
        .field_opt("code_repo", l.code.as_ref().and_then(|c| c.repo.clone()))
        .field_opt(
            "infra",
            l.infra.as_ref().and_then(|i| serde_json::to_string(i).ok()),
        )
        .field_opt("parent", run.parent.map(|p| p.to_string()))
}

/// The digest a schema is known by in events (`schema.set`'s `old.digest`/`new.digest`, a
/// violation's `schema.digest`): the BLAKE3 of its JSON.
pub(crate) fn schema_digest(schema: &RunSchema) -> String {
    blake3::hash(serde_json::to_string(schema).unwrap_or_default().as_bytes())
        .to_hex()
        .to_string()
}

/// A schema as a person reads it: `owner, params.lr: float (refuse)`.
fn schema_text(schema: &RunSchema) -> String {
    let fields: Vec<String> = schema.required.iter().map(ToString::to_string).collect();
    format!(
        "{} ({})",
        if fields.is_empty() {
            "nothing required".to_owned()
        } else {
            fields.join(", ")
        },
        enforcement_text(schema.enforcement)
    )
}

fn enforcement_text(e: Enforcement) -> &'static str {
    match e {
        Enforcement::Refuse => "refuse",
        Enforcement::MarkIncomplete => "mark-incomplete",
    }
}

/// A schema set or changed: the project's (`experiment` none) or one experiment's own, which
/// overrides the project's for its runs. `old` is the schema that was in force for that scope
/// before (for an experiment without its own, the project's, named as such).
pub(crate) fn schema_set(
    draft: Draft,
    experiment: Option<&Experiment>,
    old: &RunSchema,
    old_scope: &str,
    new: &RunSchema,
) -> Draft {
    let draft = match experiment {
        Some(e) => draft
            .subject(format!("experiment:{}", e.id))
            .field("scope", "experiment")
            .field("experiment", e.name.clone()),
        // The record the catalog writes, attested like every governed record.
        None => attesting(
            draft.subject("schema:project").field("scope", "project"),
            &[(
                PROJECT_SCHEMA_KEY.to_owned(),
                Some(serde_json::to_string(new).unwrap_or_default()),
            )],
        ),
    };
    draft
        .field("old", schema_text(old))
        .field("old.scope", old_scope)
        .field("old.digest", schema_digest(old))
        .field("new", schema_text(new))
        .field("new.digest", schema_digest(new))
        .field("enforcement", enforcement_text(new.enforcement))
}

/// A run that falls short of its schema: every violated field, which schema was in force (the
/// project's, or the experiment's own overriding it) and what became of the run (`outcome`:
/// `refused` — not created, or, once it ended, kept but unpromotable — or `incomplete`). The
/// caller names the experiment as a subject once it is stored (a new one has no id before).
pub(crate) fn schema_violation(
    draft: Draft,
    run: &cairn_model::Run,
    experiment: &Experiment,
    own_schema: bool,
    schema: &RunSchema,
    violations: &[SchemaViolation],
    stage: &str,
) -> Draft {
    let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
    let mut fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
    fields.dedup();
    let outcome = match schema.enforcement {
        Enforcement::Refuse => "refused",
        Enforcement::MarkIncomplete => "incomplete",
    };
    draft
        .subject(format!("run:{}", run.id))
        .field("run", run.id.to_string())
        .field("name", run.name.clone())
        .field("experiment", experiment.name.clone())
        .field("stage", stage)
        .field("outcome", outcome)
        .field(
            "schema",
            if own_schema {
                "experiment (overrides the project's)"
            } else {
                "project"
            },
        )
        .field("schema.digest", schema_digest(schema))
        .field("enforcement", enforcement_text(schema.enforcement))
        .field("fields", fields.join(", "))
        .field(
            "violations",
            serde_json::to_string(&listed).unwrap_or_default(),
        )
}

/// `draft` naming each record it attests: its key, value and BLAKE3 (`record.N`,
/// `record.N.value`, `record.N.blake3`), and `record:<key>` as a subject.
fn attesting(mut draft: Draft, entries: &[(String, Option<String>)]) -> Draft {
    for (i, (key, value)) in entries.iter().enumerate() {
        draft = draft
            .subject(format!("record:{key}"))
            .field(&format!("record.{i}"), key.clone())
            .field(
                &format!("record.{i}.blake3"),
                record_digest(value.as_deref()),
            )
            .field_opt(&format!("record.{i}.value"), value.clone());
    }
    draft
}

pub(crate) fn version_subject(model: &str, id: VersionId) -> String {
    format!("version:{model}/{id}")
}

fn step(e: &Event) -> TrailStep {
    TrailStep {
        at_ms: e.at_ms,
        kind: e.kind.clone(),
        member: e.member.clone(),
        device: e.device.clone(),
        event: format!("{}#{}", e.device, e.seq),
        // The attested records' digests are for `verify`; the record itself stays.
        fields: e
            .fields
            .iter()
            .filter(|(k, _)| !k.ends_with(".blake3"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    }
}

impl Stores {
    /// The audit store, opened on first use. The chains live in `catalog.db` (so a run and the
    /// event that attests it commit in one transaction); a workspace made before that keeps
    /// them in `audit.db`, moved in here on first open.
    pub(crate) fn audit(&mut self) -> Result<&mut AuditStore, Error> {
        if self.audit.is_none() {
            let mut store = AuditStore::open(&self.dir().join(AUDIT_FILE))?;
            store.adopt(&self.dir().join(LEGACY_AUDIT_FILE))?;
            self.audit = Some(store);
        }
        Ok(self.audit.as_mut().expect("opened above"))
    }

    fn audit_key(&mut self) -> Result<DeviceKey, Error> {
        if let Some(k) = &self.audit_key {
            return Ok(k.clone());
        }
        let secret = self.device_key()?;
        let key = DeviceKey::from_secret(&secret.to_bytes());
        self.audit_key = Some(key.clone());
        // The key may be new: catalog changes from now on name this device as their author.
        self.catalog_mut().set_author(*secret.public().as_bytes());
        Ok(key)
    }

    /// Appends an event to this device's chain, by the workspace user, now.
    pub(crate) fn record_event(&mut self, draft: Draft) -> Result<Event, Error> {
        let key = self.audit_key()?;
        Ok(self.audit()?.append(&key, draft)?)
    }

    /// Creates `runs` in the catalog with the events that attest them in the same transaction.
    pub(crate) fn create_runs_attested(
        &mut self,
        runs: &[cairn_model::Run],
        drafts: Vec<Draft>,
    ) -> Result<(), Error> {
        let key = self.audit_key()?;
        self.audit()?; // the chains' tables exist before the catalog's connection writes them
        self.catalog_mut()
            .create_runs_attested(runs, |tx| -> Result<(), Error> {
                cairn_audit::store::append_in(tx, &key, drafts)?;
                Ok(())
            })
    }

    /// Appends several events in one commit (bulk imports).
    pub(crate) fn record_events(&mut self, drafts: Vec<Draft>) -> Result<(), Error> {
        if drafts.is_empty() {
            return Ok(());
        }
        let key = self.audit_key()?;
        self.audit()?.append_all(&key, drafts)?;
        Ok(())
    }

    /// A draft by this workspace's user, now.
    pub(crate) fn draft(&self, kind: &str) -> Draft {
        Draft::new(self.user(), kind, now_ms())
    }

    /// Writes governed team-doc records, first appending the event that attests them: each
    /// record's key, value and BLAKE3 (`record.N`, `record.N.value`, `record.N.blake3`).
    pub(crate) fn put_attested(
        &mut self,
        draft: Draft,
        entries: &[(String, Option<String>)],
    ) -> Result<(), Error> {
        self.record_event(attesting(draft, entries))?;
        Ok(self.catalog_mut().put_team_entries(entries)?)
    }

    /// The devices that may sign: the roster (with removal times), or this device alone for
    /// a workspace that is in no team.
    pub(crate) fn audit_roster(&mut self) -> Result<Vec<Signer>, Error> {
        let members = cairn_sync::roster::members(self.catalog_mut())?;
        if members.is_empty() {
            return Ok(vec![Signer {
                device: self.device_id()?,
                member: self.user().to_owned(),
                removed_ms: None,
            }]);
        }
        Ok(members
            .into_iter()
            .map(|m| Signer {
                device: m.id,
                member: m.name,
                removed_ms: if m.removed {
                    Some(m.removed_ms.unwrap_or(0))
                } else {
                    None
                },
            })
            .collect())
    }

    /// Every chain, then every governed record against the events.
    pub fn audit_verify(&mut self) -> Result<AuditVerification, Error> {
        let roster = self.audit_roster()?;
        let mut v = cairn_audit::verify_store(self.audit()?, Some(&roster))?;
        let ranges = self.catalog_mut().team_ranges(GOVERNED)?;
        let mut records = 0u64;
        for range in ranges {
            for (key, values) in range {
                records += 1;
                let events = self.audit()?.about(&format!("record:{key}"), 10_000)?;
                let attested: HashSet<&str> = events
                    .iter()
                    .flat_map(|e| {
                        e.fields
                            .iter()
                            .filter(|(k, v)| {
                                k.starts_with("record.")
                                    && !k.ends_with(".blake3")
                                    && !k.ends_with(".value")
                                    && v.as_str() == key
                            })
                            .filter_map(|(k, _)| e.fields.get(&format!("{k}.blake3")))
                            .map(String::as_str)
                    })
                    .collect();
                for value in &values {
                    let digest = record_digest(Some(value));
                    if !attested.contains(digest.as_str()) {
                        v.add(Finding {
                            problem: Problem::Unattested,
                            device: key.clone(),
                            seq: None,
                            detail: if events.is_empty() {
                                format!("record {key} has no signed event (a raw edit, or written before this workspace kept an audit trail: `cairn audit baseline`)")
                            } else {
                                format!("record {key} holds a value no signed event attests (changed by a raw edit after {} event(s) about it)", events.len())
                            },
                        });
                    }
                }
            }
        }
        let report = v.finish();
        Ok(AuditVerification {
            ok: report.ok(),
            events: report.events,
            chains: report.chains.len() as u64,
            records,
            counts: report.counts,
            findings: report
                .findings
                .into_iter()
                .map(|f| AuditFindingView {
                    problem: f.problem.as_str().to_owned(),
                    subject: f.device,
                    seq: f.seq,
                    detail: f.detail,
                })
                .collect(),
        })
    }

    /// Attests, signed by this device, every governed record no event attests yet (records
    /// written before the workspace kept an audit trail). Returns how many it attested.
    pub fn audit_baseline(&mut self) -> Result<u64, Error> {
        let ranges = self.catalog_mut().team_ranges(GOVERNED)?;
        let mut pending: Vec<(String, Option<String>)> = Vec::new();
        for range in ranges {
            for (key, values) in range {
                let events = self.audit()?.about(&format!("record:{key}"), 10_000)?;
                let attested: HashSet<String> = events
                    .iter()
                    .flat_map(|e| e.fields.values().cloned())
                    .collect();
                for value in values {
                    if !attested.contains(&record_digest(Some(&value))) {
                        pending.push((key.clone(), Some(value)));
                    }
                }
            }
        }
        let n = pending.len() as u64;
        for chunk in pending.chunks(20) {
            let draft = attesting(self.draft(kind::BASELINE), chunk);
            self.record_event(draft)?;
        }
        Ok(n)
    }

    /// Events matching `req`, newest first.
    pub fn audit_log(&mut self, req: &AuditLogRequest) -> Result<Vec<AuditEventView>, Error> {
        let mut q = Query {
            member: req.member.clone(),
            since_ms: req.since_ms,
            limit: req.limit.unwrap_or(100).clamp(1, 10_000) as usize,
            ..Query::default()
        };
        if let Some(m) = &req.model {
            match m.rsplit_once('@') {
                Some((name, v)) => {
                    let number: u32 = v.parse().map_err(|_| {
                        Error::Invalid(format!("'{m}' is not NAME@VERSION (a version number)"))
                    })?;
                    let version = self.model_version(name, number)?;
                    q.subjects.push(version_subject(name, version.id));
                    if let Some(run) = version.run {
                        q.subjects.push(format!("run:{run}"));
                    }
                }
                None => {
                    let model = self.registered_model(m)?;
                    q.subjects.push(format!("model:{m}"));
                    for v in &model.versions {
                        q.subjects.push(version_subject(m, v.id));
                    }
                }
            }
        }
        if let Some(r) = &req.run {
            let id = self.resolve_run(r)?;
            q.subjects.push(format!("run:{id}"));
        }
        Ok(self
            .audit()?
            .log(&q)?
            .iter()
            .map(AuditEventView::from)
            .collect())
    }

    /// The trail of `model` version `version`.
    pub fn audit_trail(&mut self, model: &str, version: u32) -> Result<Trail, Error> {
        let v = self.model_version(model, version)?;
        let steps: Vec<TrailStep> = self
            .audit()?
            .about(&version_subject(model, v.id), 10_000)?
            .iter()
            .map(step)
            .collect();
        let mut runs = Vec::new();
        let mut next = v.run;
        let mut seen = HashSet::new();
        while let Some(id) = next {
            if !seen.insert(id) || runs.len() >= 16 {
                break;
            }
            let Ok(run) = self.run_record(id) else { break };
            let run_steps: Vec<TrailStep> = self
                .audit()?
                .about(&format!("run:{id}"), 10_000)?
                .iter()
                .map(step)
                .collect();
            let l = &run.lineage;
            next = run.parent;
            runs.push(TrailRun {
                id,
                name: run.name.clone(),
                owner: run.owner.clone().unwrap_or_default(),
                started_ms: run.start_ms,
                datasets: l
                    .datasets
                    .iter()
                    .map(|(role, d)| TrailDataset {
                        role: role.clone(),
                        name: d.name.clone().unwrap_or_default(),
                        digest: d.digest.clone().unwrap_or_default(),
                        source: d
                            .source
                            .clone()
                            .or_else(|| d.uri.clone())
                            .unwrap_or_default(),
                    })
                    .collect(),
                feature_set: l
                    .feature_set
                    .as_ref()
                    .map(|f| format!("{}@{}", f.name, f.version))
                    .unwrap_or_default(),
                code_commit: l
                    .code
                    .as_ref()
                    .and_then(|c| c.commit.clone())
                    .unwrap_or_default(),
                infra: l
                    .infra
                    .as_ref()
                    .and_then(|i| serde_json::to_string(i).ok())
                    .unwrap_or_default(),
                evaluations: l.evaluations.keys().cloned().collect(),
                parent: next,
                steps: run_steps,
            });
        }
        // Each event on the trail must verify, and its chain hold no fork or forgery here.
        let mut findings = Vec::new();
        let conflicts = self.audit()?.conflicts()?;
        let mut events = self.audit()?.about(&version_subject(model, v.id), 10_000)?;
        for r in &runs {
            events.extend(self.audit()?.about(&format!("run:{}", r.id), 10_000)?);
        }
        for e in &events {
            if let Err(err) = e.verify_signature() {
                findings.push(format!("bad signature: {err}"));
            }
        }
        let devices: HashSet<&str> = events.iter().map(|e| e.device.as_str()).collect();
        for c in conflicts
            .iter()
            .filter(|c| devices.contains(c.device.as_str()))
        {
            findings.push(format!(
                "{}: chain {}#{}: {}",
                c.problem.as_str(),
                c.device,
                c.seq,
                c.why
            ));
        }
        let on_trail = findings;
        Ok(Trail {
            model: model.to_owned(),
            version,
            version_id: v.id,
            content: v.content.map(|c| c.to_string()),
            runs,
            steps,
            verified: on_trail.is_empty(),
            findings: on_trail,
        })
    }

    /// Records a deployment of `model` version `version` (or the version `alias` names).
    pub fn deploy(
        &mut self,
        model: &str,
        version: Option<u32>,
        alias: Option<&str>,
        target: &str,
        rationale: &str,
    ) -> Result<Deployment, Error> {
        let target = target.trim();
        if target.is_empty() || target.len() > MAX_TARGET {
            return Err(Error::Invalid(format!(
                "a deployment target must be 1 to {MAX_TARGET} bytes"
            )));
        }
        if rationale.trim().is_empty() {
            return Err(Error::Invalid(
                "a deployment needs a rationale (--rationale \"why\")".into(),
            ));
        }
        crate::registry::text_bound("rationale", Some(rationale))?;
        let v = match (version, alias) {
            (Some(n), None) => self.model_version(model, n)?,
            (None, Some(a)) => self.model_version_by_alias(model, a)?,
            _ => {
                return Err(Error::Invalid(
                    "deploy names a version (NAME/3) or an alias (NAME@champion)".into(),
                ));
            }
        };
        let d = Deployment {
            id: RecordId::new(),
            model: model.to_owned(),
            version: v.id,
            number: v.version,
            alias: alias.map(str::to_owned),
            content: v.content.map(|c| c.to_string()),
            target: target.to_owned(),
            rationale: rationale.to_owned(),
            user: self.user().to_owned(),
            device: self.record_device(),
            at_ms: now_ms(),
        };
        let draft = self
            .draft(kind::DEPLOYED)
            .subject(format!("model:{model}"))
            .subject(version_subject(model, v.id))
            .field("model", model)
            .field("version", v.version.to_string())
            .field("target", target)
            .field("rationale", rationale)
            .field_opt("alias", alias)
            .field_opt("content", d.content.clone());
        self.put_attested(
            draft,
            &[(
                format!("{DEPLOY_PREFIX}{}/{}", keys::esc(model), d.id),
                Some(serde_json::to_string(&d).unwrap_or_default()),
            )],
        )?;
        Ok(d)
    }

    /// The deployments of `model`, newest first.
    pub fn deployments(&mut self, model: &str) -> Result<Vec<Deployment>, Error> {
        self.registered_model(model)?;
        let prefix = format!("{DEPLOY_PREFIX}{}/", keys::esc(model));
        let mut out: Vec<Deployment> = self
            .catalog_mut()
            .team_entries(&prefix)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_str(&v).ok())
            .collect();
        out.sort_by(|a: &Deployment, b| b.at_ms.cmp(&a.at_ms).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// Writes every chain held here to `out` as a signed bundle.
    pub fn audit_export(&mut self, format: AuditFormat, out: &Path) -> Result<u64, Error> {
        let key = self.audit_key()?;
        let header = cairn_audit::Header {
            format: cairn_audit::bundle::BUNDLE_FORMAT.to_owned(),
            workspace: self.workspace_info().id.clone(),
            device: key.id().to_owned(),
            member: self.user().to_owned(),
            exported_ms: now_ms(),
            roster: self.audit_roster()?,
        };
        let tmp = out.with_extension("partial");
        let file = std::fs::File::create(&tmp).map_err(Error::io(&tmp))?;
        let mut w = std::io::BufWriter::new(file);
        let n = cairn_audit::export(self.audit()?, &key, header, format, &mut w)?;
        drop(w);
        std::fs::rename(&tmp, out).map_err(Error::io(out))?;
        Ok(n)
    }
}

impl Workspace {
    pub fn audit_verify(&self) -> Result<AuditVerification, Error> {
        self.read("audit_verify", |s| s.audit_verify())
    }

    pub fn audit_baseline(&self) -> Result<u64, Error> {
        self.write("audit_baseline", |s| s.audit_baseline())
    }

    pub fn audit_log(&self, req: &AuditLogRequest) -> Result<Vec<AuditEventView>, Error> {
        self.read("audit_log", |s| s.audit_log(req))
    }

    pub fn audit_trail(&self, model: &str, version: u32) -> Result<Trail, Error> {
        self.read("audit_trail", |s| s.audit_trail(model, version))
    }

    pub fn audit_export(&self, format: AuditFormat, out: &Path) -> Result<u64, Error> {
        self.read("audit_export", |s| s.audit_export(format, out))
    }

    pub fn deploy(
        &self,
        model: &str,
        version: Option<u32>,
        alias: Option<&str>,
        target: &str,
        rationale: &str,
    ) -> Result<Deployment, Error> {
        self.write("deploy", |s| {
            s.deploy(model, version, alias, target, rationale)
        })
    }

    pub fn deployments(&self, model: &str) -> Result<Vec<Deployment>, Error> {
        self.read("deployments", |s| s.deployments(model))
    }
}

/// Checks a bundle file on a machine with no workspace.
pub fn verify_bundle(path: &Path) -> Result<BundleCheck, Error> {
    Ok(cairn_audit::verify_bundle(path)?)
}
