//! Evaluations through the handle: validated whole, reports bound to the run's artifacts, what
//! MLflow clients log against a dataset becoming an evaluation; and the schema checked at
//! creation or, for clients that send datasets afterwards, at the end.

use std::collections::BTreeMap;

use cairn_core::{Code, LogBatch, MetricDataset, MetricValue, NewRun};
use cairn_model::{
    ComplianceState, DatasetSnapshot, Enforcement, Evaluation, Num, RunSchema, RunStatus,
};

use crate::{start, workspace};

fn nums(pairs: &[(&str, f64)]) -> BTreeMap<String, Num> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Num(*v)))
        .collect()
}

#[test]
fn an_evaluation_is_validated_whole_and_answered_with_its_fairness() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[]);
    let eval = Evaluation {
        metrics: nums(&[("acc", 0.9)]),
        slices: BTreeMap::from([
            (" sex = female".to_owned(), nums(&[("acc", 0.8)])),
            ("sex=male".to_owned(), nums(&[("acc", 0.9)])),
        ]),
        ..Default::default()
    };
    let view = ws.log_evaluation(id, "test", eval.clone()).unwrap();
    assert_eq!(
        view.evaluation.slices.keys().collect::<Vec<_>>(),
        ["sex=female", "sex=male"],
        "slices are kept in their one spelling"
    );
    assert_eq!(view.evaluation.logged_by.as_deref(), Some("alice"));
    assert_eq!(view.fairness.len(), 1);
    assert!((view.fairness[0].difference.0 - 0.1).abs() < 1e-12);
    assert_eq!(ws.evaluations(id).unwrap(), vec![view]);

    let refuse = |e: Evaluation, bench: &str, code: Code, why: &str| {
        let err = ws.log_evaluation(id, bench, e).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(why), "{err}");
    };
    refuse(
        eval.clone(),
        "bad name",
        Code::InvalidArgument,
        "benchmark name 'bad name'",
    );
    let mut bad = eval.clone();
    bad.slices.insert("female".into(), nums(&[("acc", 1.0)]));
    refuse(bad, "test", Code::InvalidArgument, "'female' has no '='");
    let mut many = Evaluation::default();
    for i in 0..10_000 {
        many.slices.insert(format!("id={i}"), nums(&[("acc", 1.0)]));
    }
    refuse(many, "test", Code::InvalidArgument, "at most 1000 slices");
    let mut report = eval.clone();
    report.reports = vec!["eval/missing.html".into()];
    refuse(
        report,
        "test",
        Code::NotFound,
        "no artifact 'eval/missing.html'",
    );
    refuse(
        Evaluation::default(),
        "test",
        Code::InvalidArgument,
        "has no metrics",
    );
    // Nothing refused changed what was stored.
    assert_eq!(ws.evaluations(id).unwrap()[0].evaluation.slices.len(), 2);
}

#[test]
fn metrics_logged_against_a_dataset_become_its_evaluation() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[]);
    let on = |key: &str, value: f64| MetricValue {
        key: key.into(),
        value,
        dataset: Some(MetricDataset {
            name: "iris test".into(),
            digest: "a1b2c3d4".into(),
        }),
        ..Default::default()
    };
    ws.log_batch(
        id,
        &LogBatch {
            metrics: vec![
                on("accuracy_score", 0.9),
                on("f1_score", 0.8),
                MetricValue {
                    key: "loss".into(),
                    value: 0.1,
                    ..Default::default()
                },
            ],
            ..Default::default()
        },
    )
    .unwrap();
    let evals = ws.evaluations(id).unwrap();
    assert_eq!(evals.len(), 1);
    assert_eq!(evals[0].benchmark, "iris-test");
    assert_eq!(evals[0].evaluation.dataset.as_deref(), Some("a1b2c3d4"));
    assert_eq!(
        evals[0].evaluation.metrics,
        nums(&[("accuracy_score", 0.9), ("f1_score", 0.8)])
    );
    // They stay run metrics too, as MLflow clients read them back.
    let run = ws.run(id).unwrap();
    assert!(
        run.live_metrics.contains_key("accuracy_score") && run.live_metrics.contains_key("loss")
    );
}

fn refuse_dataset_digest(ws: &cairn_core::Workspace) {
    ws.set_schema(
        None,
        RunSchema {
            required: vec!["dataset.digest".parse().unwrap()],
            enforcement: Enforcement::Refuse,
        },
    )
    .unwrap();
}

#[test]
fn a_refusing_schema_refuses_at_creation_or_at_the_end_for_clients_that_send_datasets_later() {
    let (_d, ws) = workspace();
    refuse_dataset_digest(&ws);
    let err = ws.start_run(NewRun::default()).unwrap_err();
    assert_eq!(err.code(), Code::SchemaViolation);
    assert!(
        err.to_string().contains("dataset.digest is missing"),
        "{err}"
    );

    // An MLflow client: created, then sends its dataset, then ends: compliant.
    let deferred = || NewRun {
        defer_schema: true,
        ..Default::default()
    };
    let ok = ws.start_run(deferred()).unwrap();
    assert_eq!(ok.compliance.state, ComplianceState::Pending);
    ws.add_dataset_inputs(
        ok.id,
        vec![DatasetSnapshot {
            name: Some("train".into()),
            digest: Some("d0d0d0d0".into()),
            ..Default::default()
        }],
    )
    .unwrap();
    let ended = ws.set_status(ok.id, RunStatus::Finished, None).unwrap();
    assert_eq!(ended.compliance.state, ComplianceState::Compliant);

    // One that ends without it is kept, refused, and says why.
    let lacking = ws.start_run(deferred()).unwrap();
    let ended = ws
        .set_status(lacking.id, RunStatus::Finished, None)
        .unwrap();
    assert_eq!(ended.compliance.state, ComplianceState::Refused);
    assert!(
        ended
            .compliance
            .explain()
            .contains("dataset.digest is missing")
    );
}
