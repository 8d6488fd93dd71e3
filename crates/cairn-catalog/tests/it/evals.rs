//! Evaluations in the run's doc (one key per evaluation header and per slice row, so two
//! writers merge; the layout before slices still reads) and their projections: fairness figures,
//! and each run's compliance with its schema, checked again when the schema changes and when
//! runs or the schema arrive from another device.

use std::collections::BTreeMap;

use automerge::transaction::Transactable;
use automerge::{AutoCommit, ObjType, ReadDoc};
use cairn_catalog::{Catalog, RunEdit, RunFilter};
use cairn_model::{ComplianceState, Enforcement, Evaluation, Num, RunSchema, RunStatus, fairness};

use crate::{experiment, run_in};

fn nums(pairs: &[(&str, f64)]) -> BTreeMap<String, Num> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Num(*v)))
        .collect()
}

fn evaluation() -> Evaluation {
    Evaluation {
        dataset: Some("blake3:00ff".into()),
        metrics: nums(&[("acc", 0.9)]),
        slices: BTreeMap::from([
            (
                "sex=female".to_owned(),
                nums(&[("acc", 0.85), ("selection_rate", 0.3)]),
            ),
            (
                "sex=male".to_owned(),
                nums(&[("acc", 0.91), ("selection_rate", 0.45)]),
            ),
        ]),
        reports: vec!["eval/report.html".into()],
        logged_ms: Some(7),
        logged_by: Some("alice".into()),
    }
}

fn shard_of(cat: &Catalog) -> String {
    cat.doc_names()
        .unwrap()
        .into_iter()
        .find(|d| d != "team")
        .unwrap()
}

#[test]
fn an_evaluation_round_trips_and_its_fairness_is_projected() {
    let mut cat = Catalog::open_in_memory("t").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let mut run = run_in(&exp, 1);
    run.lineage.evaluations.insert("test".into(), evaluation());
    cat.create_runs(std::slice::from_ref(&run)).unwrap();
    assert_eq!(cat.run_from_doc(run.id).unwrap().lineage, run.lineage);
    assert_eq!(cat.run(run.id).unwrap().unwrap().lineage, run.lineage);
    assert_eq!(
        cat.fairness(run.id).unwrap(),
        fairness("test", &evaluation())
    );

    // Logged again, the evaluation is replaced whole: a slice it no longer has is gone.
    let mut again = evaluation();
    again.slices.remove("sex=male");
    cat.update_run(run.id, &[RunEdit::Evaluation("test".into(), again.clone())])
        .unwrap();
    assert_eq!(
        cat.run_from_doc(run.id).unwrap().lineage.evaluations["test"],
        again
    );
    let figures = cat.fairness(run.id).unwrap();
    assert!(figures.iter().all(|f| f.groups == 1), "{figures:?}");
}

#[test]
fn two_devices_adding_slices_to_one_evaluation_keep_both() {
    let mut laptop = Catalog::open_in_memory("alice").unwrap();
    let exp = experiment("e");
    laptop.create_experiment(&exp).unwrap();
    let run = run_in(&exp, 2);
    laptop.create_runs(std::slice::from_ref(&run)).unwrap();
    let shard = shard_of(&laptop);
    let mut gpu_box = Catalog::open_in_memory("bob").unwrap();
    for doc in ["team", shard.as_str()] {
        gpu_box
            .import_changes(doc, &laptop.export_doc(doc).unwrap())
            .unwrap();
    }
    let add = |slice: &str, v: f64| RunEdit::EvalMetrics {
        benchmark: "test".into(),
        slice: Some(slice.into()),
        metrics: vec![("acc".into(), v)],
        dataset: None,
    };
    laptop
        .update_run(run.id, &[add("sex=female", 0.8)])
        .unwrap();
    gpu_box.update_run(run.id, &[add("sex=male", 0.9)]).unwrap();
    let from_box = gpu_box.export_doc(&shard).unwrap();
    laptop.import_changes(&shard, &from_box).unwrap();
    let merged = laptop.run(run.id).unwrap().unwrap();
    assert_eq!(
        merged.lineage.evaluations["test"]
            .slices
            .keys()
            .collect::<Vec<_>>(),
        ["sex=female", "sex=male"]
    );
    assert!(merged.conflicts.is_empty(), "{:?}", merged.conflicts);
    let f = laptop.fairness(run.id).unwrap();
    assert!((f[0].difference.0 - 0.1).abs() < 1e-12, "{f:?}");
}

#[test]
fn an_evaluation_written_before_slices_existed_still_reads() {
    let mut cat = Catalog::open_in_memory("t").unwrap();
    let exp = experiment("e");
    cat.create_experiment(&exp).unwrap();
    let run = run_in(&exp, 3);
    cat.create_runs(std::slice::from_ref(&run)).unwrap();
    let shard = shard_of(&cat);
    // What an older Cairn wrote: one JSON value per evaluation, {metrics, report}.
    let mut doc = AutoCommit::load(&cat.export_doc(&shard).unwrap()).unwrap();
    let (_, obj) = doc
        .get(automerge::ROOT, format!("run/{}", run.id).as_str())
        .unwrap()
        .unwrap();
    let evals = match doc.get(&obj, "evaluations").unwrap() {
        Some((_, id)) => id,
        None => doc.put_object(&obj, "evaluations", ObjType::Map).unwrap(),
    };
    doc.put(
        &evals,
        "val",
        r#"{"metrics":{"acc":0.91},"report":"eval/old.html"}"#,
    )
    .unwrap();
    cat.import_changes(&shard, &doc.save()).unwrap();
    let e = &cat.run(run.id).unwrap().unwrap().lineage.evaluations["val"];
    assert_eq!(e.metrics, nums(&[("acc", 0.91)]));
    assert_eq!(e.reports, ["eval/old.html"]);
    // Adding to it keeps what it had.
    cat.update_run(
        run.id,
        &[RunEdit::EvalMetrics {
            benchmark: "val".into(),
            slice: None,
            metrics: vec![("f1".into(), 0.5)],
            dataset: Some("d1".into()),
        }],
    )
    .unwrap();
    let e = &cat.run_from_doc(run.id).unwrap().lineage.evaluations["val"];
    assert_eq!(e.metrics, nums(&[("acc", 0.91), ("f1", 0.5)]));
    assert_eq!(e.reports, ["eval/old.html"]);
    assert_eq!(e.dataset.as_deref(), Some("d1"));
}

fn refusing(fields: &[&str]) -> RunSchema {
    RunSchema {
        required: fields.iter().map(|f| f.parse().unwrap()).collect(),
        enforcement: Enforcement::Refuse,
    }
}

#[test]
fn compliance_is_checked_again_when_the_schema_changes() {
    let mut cat = Catalog::open_in_memory("t").unwrap();
    let exp = experiment("e");
    let other = experiment("other");
    cat.create_experiment(&exp).unwrap();
    cat.create_experiment(&other).unwrap();
    let mut a = run_in(&exp, 4);
    a.status = RunStatus::Finished;
    let mut b = run_in(&other, 5);
    b.status = RunStatus::Finished;
    let c = run_in(&exp, 6);
    cat.create_runs(&[a.clone(), b.clone(), c.clone()]).unwrap();
    let state = |cat: &Catalog, id| cat.run(id).unwrap().unwrap().compliance.state;
    assert_eq!(state(&cat, a.id), ComplianceState::Compliant);

    cat.set_project_schema(&refusing(&["owner", "params.missing_param"]))
        .unwrap();
    let ended = cat.run(a.id).unwrap().unwrap().compliance;
    assert_eq!(ended.state, ComplianceState::Refused);
    assert_eq!(ended.missing, ["params.missing_param is missing"]);
    // Still running: judged when it ends.
    assert_eq!(state(&cat, c.id), ComplianceState::Pending);
    let rows = cat.list_runs(&RunFilter::default()).unwrap();
    assert!(rows.iter().all(|r| r.incomplete), "{rows:?}");
    assert_eq!(
        rows.iter().find(|r| r.id == a.id).unwrap().compliance,
        ComplianceState::Refused
    );

    // An experiment's own schema takes over for its runs only.
    let mut relaxed = other.clone();
    relaxed.schema = Some(RunSchema {
        required: vec!["owner".parse().unwrap()],
        enforcement: Enforcement::MarkIncomplete,
    });
    cat.update_experiment(&relaxed).unwrap();
    assert_eq!(state(&cat, b.id), ComplianceState::Compliant);
    assert_eq!(state(&cat, a.id), ComplianceState::Refused);

    // Ending the running run with the field turns it compliant.
    cat.update_run(
        c.id,
        &[
            RunEdit::Param("missing_param".into(), "1".into()),
            RunEdit::Status {
                status: RunStatus::Finished,
                end_ms: Some(9),
            },
        ],
    )
    .unwrap();
    assert_eq!(state(&cat, c.id), ComplianceState::Compliant);
}

#[test]
fn runs_and_a_schema_arriving_from_a_peer_are_checked() {
    let mut peer = Catalog::open_in_memory("peer").unwrap();
    let exp = experiment("e");
    peer.create_experiment(&exp).unwrap();
    let mut lacking = run_in(&exp, 7);
    lacking.params.clear();
    lacking.status = RunStatus::Finished;
    peer.create_runs(std::slice::from_ref(&lacking)).unwrap();
    peer.set_project_schema(&refusing(&["params.lr"])).unwrap();
    let shard = shard_of(&peer);

    // The shard first (checked against the default schema), then the team doc with the schema.
    let mut me = Catalog::open_in_memory("me").unwrap();
    me.import_changes(&shard, &peer.export_doc(&shard).unwrap())
        .unwrap();
    assert_eq!(
        me.run(lacking.id).unwrap().unwrap().compliance.state,
        ComplianceState::Compliant
    );
    me.import_changes("team", &peer.export_doc("team").unwrap())
        .unwrap();
    let c = me.run(lacking.id).unwrap().unwrap().compliance;
    assert_eq!(c.state, ComplianceState::Refused);
    assert_eq!(c.missing, ["params.lr is missing"]);
}

#[test]
fn a_catalog_from_before_compliance_and_slices_is_projected_again_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("catalog.db");
    let exp = experiment("e");
    let mut run = run_in(&exp, 8);
    run.lineage.evaluations.insert("test".into(), evaluation());
    {
        let mut cat = Catalog::open(&path, "t").unwrap();
        cat.create_experiment(&exp).unwrap();
        cat.create_runs(std::slice::from_ref(&run)).unwrap();
        cat.set_project_schema(&refusing(&["params.absent"]))
            .unwrap();
    }
    {
        // Revision 7 had neither the columns' meaning nor the tables.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE run_fairness; DROP TABLE project_schema;
             UPDATE runs SET incomplete = 0, compliance = 'compliant',
                 json = json_remove(json, '$.compliance');
             UPDATE meta SET value = '7' WHERE key = 'schema';",
        )
        .unwrap();
    }
    let cat = Catalog::open(&path, "t").unwrap();
    assert_eq!(
        cat.fairness(run.id).unwrap(),
        fairness("test", &evaluation())
    );
    assert_eq!(
        cat.run(run.id).unwrap().unwrap().compliance.state,
        ComplianceState::Pending
    );
}
