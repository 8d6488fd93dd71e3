//! The audit trail through the workspace: every governed change is a signed event on this
//! device's chain, a version's trail answers where its data came from, who approved it and why
//! it was deployed, and a raw edit of a governed record, an edited chain or a changed bundle is
//! caught.

use cairn_core::audit::{AuditFormat, AuditLogRequest};
use cairn_core::{NewRun, Workspace};
use cairn_model::{
    CodeVersion, DatasetSnapshot, Evaluation, FeatureSetVersion, Lineage, Num, RunId,
};

use super::registry::register;

/// A run with a dataset, feature set and code commit, evaluated on `val`, holding a model.
pub(crate) fn lineage_run(ws: &Workspace, acc: f64) -> RunId {
    let mut lineage = Lineage::default();
    lineage.datasets.insert(
        "train".into(),
        DatasetSnapshot {
            name: Some("churn-2026-11".into()),
            digest: Some("blake3:7f3a".into()),
            source: Some("s3://lake/churn/2026-11".into()),
            ..Default::default()
        },
    );
    lineage.feature_set = Some(FeatureSetVersion {
        name: "churn-features".into(),
        version: "v12".into(),
    });
    lineage.code = Some(CodeVersion {
        commit: Some("4b825dc642cb6eb9a060e54bf8d69288fbee4904".into()),
        ..Default::default()
    });
    lineage.evaluations.insert(
        "val".into(),
        Evaluation {
            metrics: [("acc".to_owned(), Num(acc))].into_iter().collect(),
            ..Default::default()
        },
    );
    let run = ws
        .start_run(NewRun {
            experiment_name: Some("train".into()),
            lineage,
            ..Default::default()
        })
        .unwrap()
        .id;
    ws.add_artifact_reader(run, "model/weights.bin", &mut &b"w"[..])
        .unwrap();
    run
}

fn kinds(ws: &Workspace, req: AuditLogRequest) -> Vec<String> {
    let mut k: Vec<String> = ws
        .audit_log(&req)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    k.reverse();
    k
}

#[test]
fn a_deployed_versions_trail_answers_the_auditors_three_questions() {
    let (_dir, ws) = super::workspace();
    let run = lineage_run(&ws, 0.91);
    let v = register(&ws, "churn", run);
    ws.promote("churn", v.version, "champion", Some("best val acc"))
        .unwrap();
    let d = ws
        .deploy(
            "churn",
            None,
            Some("champion"),
            "prod-eu",
            "beats the rules baseline by 6 points",
        )
        .unwrap();
    assert_eq!((d.number, d.target.as_str()), (1, "prod-eu"));

    let trail = ws.audit_trail("churn", 1).unwrap();
    assert!(trail.verified, "{:?}", trail.findings);
    // Where the data came from.
    let r = &trail.runs[0];
    assert_eq!(r.id, run);
    assert_eq!(r.datasets[0].digest, "blake3:7f3a");
    assert_eq!(r.datasets[0].source, "s3://lake/churn/2026-11");
    assert_eq!(r.feature_set, "churn-features@v12");
    assert_eq!(r.code_commit, "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
    assert_eq!(r.steps[0].kind, "run.created");
    assert_eq!(r.steps[0].member, "alice");
    assert_eq!(
        r.steps[0].fields.get("datasets").map(String::as_str),
        Some("[\"train=churn-2026-11@blake3:7f3a\"]")
    );
    // Who approved (the gate check that moved the alias) and why it was deployed.
    let kinds: Vec<&str> = trail.steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["version.registered", "alias.moved", "version.deployed"]
    );
    let moved = &trail.steps[1];
    assert_eq!(moved.fields["verdict"], "passed");
    assert_eq!(moved.fields["rationale"], "best val acc");
    let deployed = &trail.steps[2];
    assert_eq!(deployed.fields["target"], "prod-eu");
    assert_eq!(
        deployed.fields["rationale"],
        "beats the rules baseline by 6 points"
    );
    assert_eq!(ws.deployments("churn").unwrap(), vec![d]);

    let v = ws.audit_verify().unwrap();
    assert!(v.ok, "{:?}", v.findings);
    assert!(v.records >= 4, "{v:?}");
}

#[test]
fn every_governed_change_is_an_event_naming_who() {
    let (_dir, ws) = super::workspace();
    let run = lineage_run(&ws, 0.9);
    register(&ws, "churn", run);
    ws.log_evaluation(
        run,
        "holdout",
        Evaluation {
            metrics: [("auc".to_owned(), Num(0.8))].into_iter().collect(),
            ..Default::default()
        },
    )
    .unwrap();
    ws.check_gate("churn", 1, "champion").unwrap();
    ws.promote("churn", 1, "staging", None).unwrap();
    ws.delete_model_alias("churn", "staging").unwrap();
    ws.delete_model_version("churn", 1, "leaked labels")
        .unwrap();
    ws.delete_run(run).unwrap();
    let all = kinds(&ws, AuditLogRequest::default());
    assert_eq!(
        all,
        [
            "run.created",
            "model.created",
            "version.registered",
            "evaluation.logged",
            "gate.evaluated",
            "alias.moved",
            "alias.deleted",
            "version.deleted",
            "run.deleted",
        ]
    );
    let by_run = kinds(
        &ws,
        AuditLogRequest {
            run: Some(run.to_string()[..8].to_owned()),
            ..Default::default()
        },
    );
    assert_eq!(
        by_run,
        [
            "run.created",
            "version.registered",
            "evaluation.logged",
            "run.deleted"
        ]
    );
    let by_member = ws
        .audit_log(&AuditLogRequest {
            member: Some("bob".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(by_member.is_empty());
    assert!(ws.audit_verify().unwrap().ok);
}

#[test]
fn a_raw_edit_of_a_governed_record_is_flagged_until_attested() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws");
    let key;
    {
        let ws = Workspace::create(&path, "alice").unwrap();
        let run = lineage_run(&ws, 0.9);
        register(&ws, "churn", run);
        ws.promote("churn", 1, "champion", Some("ok")).unwrap();
        assert!(ws.audit_verify().unwrap().ok);
        key = "alias/churn/champion".to_owned();
    }
    // Someone edits the alias record in the catalog directly (as a raw automerge edit from a
    // peer would arrive): no event attests the new value.
    {
        let mut cat = cairn_catalog::Catalog::open(&path.join("catalog.db"), "mallory").unwrap();
        let text = cat.team_entry(&key).unwrap().unwrap();
        let edited = text.replace("\"ok\"", "\"approved by the board\"");
        assert_ne!(edited, text);
        cat.put_team_entry(&key, Some(&edited)).unwrap();
    }
    let ws = Workspace::open(&path, "alice").unwrap();
    let v = ws.audit_verify().unwrap();
    assert!(!v.ok);
    assert_eq!(v.counts.get("unattested change"), Some(&1), "{v:?}");
    assert!(
        v.findings[0].detail.contains("alias/churn/champion"),
        "{v:?}"
    );
    // Attesting it as it stands is a signed, visible act, and settles the check.
    assert_eq!(ws.audit_baseline().unwrap(), 1);
    assert!(ws.audit_verify().unwrap().ok);
    let last = ws.audit_log(&AuditLogRequest::default()).unwrap();
    assert_eq!(last[0].kind, "audit.baseline");
}

#[test]
fn an_edited_chain_and_a_changed_bundle_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws");
    {
        let ws = Workspace::create(&path, "alice").unwrap();
        let run = lineage_run(&ws, 0.9);
        register(&ws, "churn", run);
        // The export verifies on a machine with no workspace.
        let bundle = dir.path().join("audit.html");
        assert_eq!(ws.audit_export(AuditFormat::Html, &bundle).unwrap(), 3);
        let check = cairn_core::audit::verify_bundle(&bundle).unwrap();
        assert!(check.ok(), "{check:?}");
        assert_eq!(check.header.roster[0].member, "alice");
        let text = std::fs::read_to_string(&bundle).unwrap();
        std::fs::write(&bundle, text.replacen("churn", "chern", 1)).unwrap();
        // The first "churn" is in the readable table: the embedded bundle is untouched.
        assert!(cairn_core::audit::verify_bundle(&bundle).unwrap().ok());
        let i = text.find("{\"event\"").unwrap();
        let tampered = format!("{}{}", &text[..i], text[i..].replacen("alice", "mallo", 1));
        std::fs::write(&bundle, tampered).unwrap();
        let check = cairn_core::audit::verify_bundle(&bundle).unwrap();
        assert!(check.sealed.is_err());
        assert!(!check.report.ok());
    }
    {
        let db = rusqlite::Connection::open(path.join("catalog.db")).unwrap();
        db.execute("UPDATE events SET member = 'mallory' WHERE seq = 0", [])
            .unwrap();
    }
    let ws = Workspace::open(&path, "alice").unwrap();
    let v = ws.audit_verify().unwrap();
    assert_eq!(v.counts.get("bad signature"), Some(&1), "{v:?}");
    assert_eq!(v.counts.get("broken link"), Some(&1), "{v:?}");
    let trail = ws.audit_trail("churn", 1).unwrap();
    assert!(!trail.verified);
}

#[test]
fn deployments_need_a_target_and_a_rationale() {
    let (_dir, ws) = super::workspace();
    register(&ws, "churn", lineage_run(&ws, 0.9));
    let e = ws.deploy("churn", Some(1), None, "prod", " ").unwrap_err();
    assert!(e.to_string().contains("rationale"), "{e}");
    let e = ws.deploy("churn", Some(1), None, "", "why").unwrap_err();
    assert!(e.to_string().contains("target"), "{e}");
    let e = ws
        .deploy("churn", Some(9), None, "prod", "why")
        .unwrap_err();
    assert_eq!(e.code(), cairn_core::Code::NotFound, "{e}");
    let e = ws
        .deploy("churn", None, Some("champion"), "prod", "why")
        .unwrap_err();
    assert_eq!(e.code(), cairn_core::Code::NotFound, "{e}");
    assert!(ws.deployments("churn").unwrap().is_empty());
}

#[test]
fn a_run_and_the_event_that_attests_it_commit_together() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws");
    let ws = Workspace::create(&path, "alice").unwrap();
    let first = lineage_run(&ws, 0.9);
    // The chains are tables of the catalog: a store that refuses the event refuses the run.
    let db = rusqlite::Connection::open(path.join("catalog.db")).unwrap();
    db.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'no events'); END;",
    )
    .unwrap();
    let err = ws
        .start_run(NewRun {
            experiment_name: Some("train".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("no events"), "{err}");
    let page = ws.runs_page(&Default::default()).unwrap();
    assert_eq!(
        page.runs.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![first],
        "the refused run must not be stored"
    );
    db.execute_batch("DROP TRIGGER refuse").unwrap();
    let second = ws
        .start_run(NewRun {
            experiment_name: Some("train".into()),
            ..Default::default()
        })
        .unwrap()
        .id;
    assert_eq!(ws.runs_page(&Default::default()).unwrap().total, 2);
    let created = kinds(
        &ws,
        AuditLogRequest {
            run: Some(second.to_string()),
            ..Default::default()
        },
    );
    assert!(created.contains(&"run.created".to_owned()), "{created:?}");
    // Two runs stored, two creations on the chain: the refused one left no event either.
    let all = kinds(&ws, AuditLogRequest::default());
    assert_eq!(
        all.iter().filter(|k| *k == "run.created").count(),
        2,
        "{all:?}"
    );
    assert!(ws.audit_verify().unwrap().ok);
}

#[test]
fn chains_kept_in_audit_db_by_older_builds_move_into_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws");
    let run;
    {
        let ws = Workspace::create(&path, "alice").unwrap();
        run = lineage_run(&ws, 0.9);
        register(&ws, "churn", run);
        ws.promote("churn", 1, "champion", Some("ok")).unwrap();
    }
    // The layout an older build left: the chains in `audit.db`, none in the catalog.
    let held: i64 = {
        drop(cairn_audit::AuditStore::open(&path.join("audit.db")).unwrap());
        let db = rusqlite::Connection::open(path.join("catalog.db")).unwrap();
        db.execute(
            "ATTACH DATABASE ?1 AS old",
            [path.join("audit.db").to_str().unwrap()],
        )
        .unwrap();
        db.execute_batch(
            "INSERT INTO old.events SELECT * FROM main.events;
             INSERT INTO old.subjects SELECT * FROM main.subjects;
             INSERT INTO old.heads SELECT * FROM main.heads;
             DELETE FROM main.events; DELETE FROM main.subjects; DELETE FROM main.heads;",
        )
        .unwrap();
        db.query_row("SELECT count(*) FROM old.events", [], |r| r.get(0))
            .unwrap()
    };
    assert!(held >= 4, "{held}");
    let ws = Workspace::open(&path, "alice").unwrap();
    let v = ws.audit_verify().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.events, held as u64);
    assert!(!path.join("audit.db").exists());
    // New events follow the moved chain.
    ws.promote("churn", 1, "prod", Some("ok")).unwrap();
    let v = ws.audit_verify().unwrap();
    assert!(v.ok, "{v:?}");
    assert_eq!(v.events, held as u64 + 1);
    let trail = ws.audit_trail("churn", 1).unwrap();
    assert!(trail.verified);
}
