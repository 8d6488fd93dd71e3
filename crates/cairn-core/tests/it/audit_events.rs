//! The audit events of the mandatory schema, gate policies and purges: a run that falls short of
//! its schema (kept incomplete, refused at creation, refused when it ends), a schema set for
//! the project or overridden by an experiment, a gate policy replaced (the old one still
//! readable), an artifact purged — each a signed event naming who, on which device, and what,
//! with the chains still verifying.

use cairn_core::audit::{AuditEventView, AuditLogRequest};
use cairn_core::{Code, GateScope, NewRun, Workspace};
use cairn_model::gate::{GatePolicy, MetricThreshold};
use cairn_model::{DatasetSnapshot, Enforcement, Lineage, RunSchema, RunStatus};

use super::registry::register;

fn schema(fields: &[&str], enforcement: Enforcement) -> RunSchema {
    RunSchema {
        required: fields.iter().map(|f| f.parse().unwrap()).collect(),
        enforcement,
    }
}

/// Every event, oldest first.
fn events(ws: &Workspace) -> Vec<AuditEventView> {
    let mut all = ws.audit_log(&AuditLogRequest::default()).unwrap();
    all.reverse();
    all
}

fn of_kind(ws: &Workspace, kind: &str) -> Vec<AuditEventView> {
    events(ws).into_iter().filter(|e| e.kind == kind).collect()
}

fn field<'a>(e: &'a AuditEventView, key: &str) -> &'a str {
    e.fields
        .get(key)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("event {} has no field {key}: {:?}", e.kind, e.fields))
}

fn assert_verifies(ws: &Workspace) {
    let v = ws.audit_verify().unwrap();
    assert!(v.ok, "{v:?}");
}

#[test]
fn schema_changes_and_violations_are_signed_events_naming_the_fields() {
    let (_dir, ws) = super::workspace();
    let me = ws.device_id().unwrap();
    let default = ws.schema(None).unwrap();

    // The project's schema: marks incomplete runs.
    let project = schema(&["owner", "params.lr: float"], Enforcement::MarkIncomplete);
    ws.set_schema(None, project.clone()).unwrap();
    let set = of_kind(&ws, "schema.set");
    assert_eq!(set.len(), 1);
    let e = &set[0];
    assert_eq!(
        (e.member.as_str(), e.device.as_str()),
        ("alice", me.as_str())
    );
    assert_eq!(e.subjects, ["schema:project", "record:schema"]);
    assert_eq!(field(e, "scope"), "project");
    assert_eq!(
        field(e, "old"),
        "owner, code.commit, dataset.digest (mark-incomplete)"
    );
    assert_eq!(field(e, "new"), "owner, params.lr: float (mark-incomplete)");
    assert_ne!(field(e, "old.digest"), field(e, "new.digest"));
    let project_digest = field(e, "new.digest").to_owned();
    assert_eq!(ws.schema(None).unwrap(), project);
    assert_ne!(default, project);

    // A run lacking a field is kept, and its violation is signed with its creation.
    let run = ws
        .start_run(NewRun {
            experiment_name: Some("train".into()),
            params: [("lr".to_owned(), "fast".to_owned())].into(),
            ..Default::default()
        })
        .unwrap();
    let v = of_kind(&ws, "run.schema_violation");
    assert_eq!(v.len(), 1);
    let e = &v[0];
    assert_eq!(e.member, "alice");
    assert!(e.subjects.contains(&format!("run:{}", run.id)), "{e:?}");
    assert!(
        e.subjects
            .contains(&format!("experiment:{}", run.experiment)),
        "{e:?}"
    );
    assert_eq!(field(e, "stage"), "created");
    assert_eq!(field(e, "outcome"), "incomplete");
    assert_eq!(field(e, "schema"), "project");
    assert_eq!(field(e, "schema.digest"), project_digest);
    assert_eq!(field(e, "fields"), "params.lr");
    assert_eq!(
        field(e, "violations"),
        "[\"params.lr must be float (got 'fast')\"]"
    );
    // It is on the run's own log, right after its creation.
    let by_run: Vec<String> = ws
        .audit_log(&AuditLogRequest {
            run: Some(run.id.to_string()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.kind)
        .collect();
    assert_eq!(by_run, ["run.created", "run.schema_violation"]);

    // An experiment overrides the project's schema with a refusing one.
    let strict = ws.create_experiment("strict", None, &[]).unwrap();
    let refuse = schema(&["owner", "dataset.digest"], Enforcement::Refuse);
    ws.set_schema(Some(strict.id), refuse.clone()).unwrap();
    let set = of_kind(&ws, "schema.set");
    let e = &set[1];
    assert_eq!(field(e, "scope"), "experiment");
    assert_eq!(field(e, "experiment"), "strict");
    assert_eq!(field(e, "old.scope"), "project");
    assert_eq!(field(e, "old.digest"), project_digest);
    assert_eq!(field(e, "new"), "owner, dataset.digest (refuse)");
    assert_eq!(e.subjects, [format!("experiment:{}", strict.id)]);

    // A run it refuses is not created, and the refusal is signed: who tried, lacking what.
    let err = ws
        .start_run(NewRun {
            experiment: Some(strict.id),
            name: Some("no-data".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), Code::SchemaViolation, "{err}");
    let v = of_kind(&ws, "run.schema_violation");
    assert_eq!(v.len(), 2);
    let e = &v[1];
    assert_eq!(field(e, "name"), "no-data");
    assert_eq!(field(e, "experiment"), "strict");
    assert_eq!(field(e, "stage"), "created");
    assert_eq!(field(e, "outcome"), "refused");
    assert_eq!(field(e, "schema"), "experiment (overrides the project's)");
    assert_eq!(field(e, "fields"), "dataset.digest");

    // A deferred run (as MLflow clients create them) is judged when it ends.
    let deferred = ws
        .start_run(NewRun {
            experiment: Some(strict.id),
            defer_schema: true,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(of_kind(&ws, "run.schema_violation").len(), 2);
    ws.set_status(deferred.id, RunStatus::Finished, None)
        .unwrap();
    // Ending it again (another final status) judges nothing new.
    ws.set_status(deferred.id, RunStatus::Failed, None).unwrap();
    let v = of_kind(&ws, "run.schema_violation");
    assert_eq!(v.len(), 3);
    let e = &v[2];
    assert!(e.subjects.contains(&format!("run:{}", deferred.id)));
    assert_eq!(field(e, "stage"), "ended");
    assert_eq!(field(e, "outcome"), "refused");
    // A compliant run has no violation.
    ws.start_run(NewRun {
        experiment: Some(strict.id),
        lineage: Lineage {
            datasets: [(
                "train".to_owned(),
                DatasetSnapshot {
                    digest: Some("blake3:7f3a".into()),
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    assert_eq!(of_kind(&ws, "run.schema_violation").len(), 3);
    assert_verifies(&ws);
}

#[test]
fn changing_a_gate_policy_keeps_the_old_one_readable_as_history() {
    let (_dir, ws) = super::workspace();
    register(&ws, "churn", super::audit::lineage_run(&ws, 0.9));
    let scope = GateScope {
        model: Some("churn".into()),
        alias: None,
    };
    let policy = |threshold: f64| GatePolicy {
        metrics: vec![MetricThreshold {
            benchmark: "val".into(),
            metric: "acc".into(),
            threshold: Some(threshold),
            min_absolute_change: None,
            min_relative_change: None,
            greater_is_better: true,
        }],
        ..GatePolicy::default()
    };
    let first = ws.set_gate(&scope, policy(0.8)).unwrap();
    let second = ws.set_gate(&scope, policy(0.85)).unwrap();
    assert_ne!(first.hash, second.hash);

    // `audit log --model churn` shows both, the later naming the earlier.
    let mut log = ws
        .audit_log(&AuditLogRequest {
            model: Some("churn".into()),
            ..Default::default()
        })
        .unwrap();
    log.retain(|e| e.kind == "gate.policy_set");
    log.reverse();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(field(&log[0], "policy_hash"), first.hash);
    assert!(!log[0].fields.contains_key("previous_policy_hash"));
    assert_eq!(field(&log[1], "policy_hash"), second.hash);
    assert_eq!(field(&log[1], "previous_policy_hash"), first.hash);
    assert_eq!(field(&log[1], "previous_set_by"), "alice");
    // Each event carries the record as it wrote it: the old policy reads back from the first.
    let old: serde_json::Value = serde_json::from_str(field(&log[0], "record.0.value")).unwrap();
    assert_eq!(old["policy"]["metrics"][0]["threshold"], 0.8);
    let new: serde_json::Value = serde_json::from_str(field(&log[1], "record.0.value")).unwrap();
    assert_eq!(new["policy"]["metrics"][0]["threshold"], 0.85);
    assert_eq!(field(&log[0], "record.0"), field(&log[1], "record.0"));
    // Only the current one is in force, and the replaced record is not an unattested change.
    assert_eq!(
        ws.gate_for("churn", "champion").unwrap().unwrap().hash,
        second.hash
    );
    assert_verifies(&ws);
}

#[test]
fn a_purge_is_signed_before_anything_is_erased() {
    let (_dir, ws) = super::workspace();
    let me = ws.device_id().unwrap();
    let run = super::start(&ws, "train", &[]);
    ws.add_artifact_reader(run, ".env", &mut &b"TOKEN=leaked"[..])
        .unwrap();
    ws.add_artifact_reader(run, "config/a.txt", &mut &b"a"[..])
        .unwrap();
    ws.add_artifact_reader(run, "config/b.txt", &mut &b"b"[..])
        .unwrap();
    let hash = blake3::hash(b"TOKEN=leaked").to_hex().to_string();

    ws.purge_artifact(run, ".env", "leaked key").unwrap();
    let purged = of_kind(&ws, "artifact.purged");
    assert_eq!(purged.len(), 1);
    let e = &purged[0];
    assert_eq!(
        (e.member.as_str(), e.device.as_str()),
        ("alice", me.as_str())
    );
    assert_eq!(field(e, "run"), run.to_string());
    assert_eq!(field(e, "path"), ".env");
    assert_eq!(field(e, "reason"), "leaked key");
    assert_eq!(field(e, "blobs"), "1");
    assert_eq!(field(e, "blob.0"), format!("{hash} .env"));
    assert_eq!(
        e.subjects,
        [format!("run:{run}"), format!("blob:{hash}")],
        "{e:?}"
    );

    // A file inside a directory: the event names it, then the directory is rebound.
    ws.purge_artifact(run, "config/a.txt", "personal data")
        .unwrap();
    let e = &of_kind(&ws, "artifact.purged")[1];
    assert_eq!(field(e, "path"), "config/a.txt");
    assert_eq!(
        field(e, "blob.0"),
        format!("{} config/a.txt", blake3::hash(b"a").to_hex())
    );
    // A path that is not there is refused before any event.
    assert!(ws.purge_artifact(run, "nope", "why").is_err());
    assert_eq!(of_kind(&ws, "artifact.purged").len(), 2);
    let kinds: Vec<String> = ws
        .audit_log(&AuditLogRequest {
            run: Some(run.to_string()),
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .rev()
        .map(|e| e.kind)
        .filter(|k| k != "run.schema_violation")
        .collect();
    assert_eq!(kinds, ["run.created", "artifact.purged", "artifact.purged"]);
    assert_verifies(&ws);
}

#[test]
fn a_raw_edit_of_the_project_schema_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws");
    {
        let ws = Workspace::create(&path, "alice").unwrap();
        ws.set_schema(None, schema(&["owner"], Enforcement::Refuse))
            .unwrap();
        let v = ws.audit_verify().unwrap();
        assert!(v.ok, "{v:?}");
        assert!(v.records >= 1, "{v:?}");
    }
    // Someone relaxes the schema in the catalog directly: no event attests it.
    {
        let mut cat = cairn_catalog::Catalog::open(&path.join("catalog.db"), "mallory").unwrap();
        let relaxed = schema(&["owner"], Enforcement::MarkIncomplete);
        cat.set_project_schema(&relaxed).unwrap();
    }
    let ws = Workspace::open(&path, "alice").unwrap();
    let v = ws.audit_verify().unwrap();
    assert_eq!(v.counts.get("unattested change"), Some(&1), "{v:?}");
    assert_eq!(v.findings[0].subject, "schema", "{v:?}");
    // Setting it through Cairn is a signed change again.
    ws.set_schema(None, schema(&["owner"], Enforcement::Refuse))
        .unwrap();
    assert_verifies(&ws);
}
