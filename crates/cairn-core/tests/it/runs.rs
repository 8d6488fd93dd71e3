//! The run rules: params never change, a batch is validated as a whole, the status lifecycle,
//! system tags, dataset roles.

use cairn_core::{Code, LogBatch, MetricValue};
use cairn_model::{DatasetSnapshot, RunStatus};

use crate::{start, workspace};

fn metric(key: &str, value: f64, step: i64) -> MetricValue {
    MetricValue {
        key: key.into(),
        value,
        step,
        ts_ms: Some(1_000 + step),
        dataset: None,
    }
}

#[test]
fn a_param_never_changes_through_any_operation() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[("lr", "0.1")]);
    // The same value again is fine (clients retry).
    ws.log_params(id, &[("lr".into(), "0.1".into())]).unwrap();
    let refusals = [
        ws.log_params(id, &[("lr".into(), "0.2".into())])
            .unwrap_err(),
        ws.log_batch(
            id,
            &LogBatch {
                params: vec![("lr".into(), "0.3".into())],
                ..Default::default()
            },
        )
        .unwrap_err(),
    ];
    for e in refusals {
        assert_eq!(e.code(), Code::Conflict, "{e}");
        assert!(e.to_string().contains("'lr'"), "{e}");
    }
    assert_eq!(ws.run(id).unwrap().run.params["lr"], "0.1");
}

#[test]
fn a_batch_with_one_bad_entry_stores_nothing() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[("lr", "0.1")]);
    let good = LogBatch {
        params: vec![("epochs".into(), "10".into())],
        metrics: vec![metric("loss", 0.5, 0), metric("loss", 0.4, 1)],
        tags: vec![("team".into(), "vision".into())],
    };
    let bad_batches = [
        // One metric with an empty key.
        LogBatch {
            metrics: vec![metric("loss", 0.3, 2), metric("", 1.0, 0)],
            ..good.clone()
        },
        // A param that would change.
        LogBatch {
            params: vec![("epochs".into(), "10".into()), ("lr".into(), "0.5".into())],
            ..good.clone()
        },
        // Over MLflow's metric limit.
        LogBatch {
            metrics: (0..1001).map(|i| metric("loss", 0.1, i)).collect(),
            ..good.clone()
        },
    ];
    for bad in &bad_batches {
        assert!(ws.log_batch(id, bad).is_err());
        let run = ws.run(id).unwrap();
        assert!(
            !run.run.params.contains_key("epochs"),
            "a refused batch stored its params"
        );
        assert!(
            !run.run.tags.contains_key("team"),
            "a refused batch stored its tags"
        );
        assert!(
            run.live_metrics.is_empty(),
            "a refused batch stored metrics"
        );
    }
    ws.log_batch(id, &good).unwrap();
    let run = ws.run(id).unwrap();
    assert_eq!(run.run.params["epochs"], "10");
    assert_eq!(run.run.tags["team"], "vision");
    assert_eq!(run.live_metrics["loss"].count, 2);
    assert_eq!(run.live_metrics["loss"].last, 0.4);
}

#[test]
fn a_deleted_run_takes_no_batch_and_no_status() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[]);
    ws.delete_run(id).unwrap();
    let e = ws
        .log_batch(
            id,
            &LogBatch {
                metrics: vec![metric("loss", 1.0, 0)],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::Conflict);
    assert!(e.to_string().contains("deleted"), "{e}");
    let e = ws.set_status(id, RunStatus::Finished, None).unwrap_err();
    assert_eq!(e.code(), Code::Conflict);
    ws.restore_run(id).unwrap();
    ws.set_status(id, RunStatus::Finished, None).unwrap();
}

#[test]
fn the_status_lifecycle_ends_resumes_and_rechecks_the_schema() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[]);
    ws.log_metrics(
        id,
        &[(
            "loss",
            &[cairn_core::MetricPoint {
                step: 0,
                ts_ms: 1,
                value: 2.0,
            }],
        )],
    )
    .unwrap();
    let ended = ws.set_status(id, RunStatus::Finished, Some(5_000)).unwrap();
    assert_eq!(ended.status, RunStatus::Finished);
    assert_eq!(ended.end_ms, Some(5_000));
    // Ending recorded the final summary in the catalog, and the schema's verdict.
    assert_eq!(ended.metrics["loss"].last, 2.0);
    assert!(
        ended
            .compliance
            .missing
            .iter()
            .any(|v| v.contains("code.commit")),
        "{:?}",
        ended.compliance
    );
    // An ended run may resume (MLflow's start_run(run_id=…)): running again, no end time.
    let resumed = ws.set_status(id, RunStatus::Running, None).unwrap();
    assert_eq!(resumed.status, RunStatus::Running);
    assert_eq!(resumed.end_ms, None);
    // And end otherwise.
    let failed = ws.set_status(id, RunStatus::Failed, None).unwrap();
    assert_eq!(failed.status, RunStatus::Failed);
    assert!(failed.end_ms.is_some());
}

#[test]
fn system_tags_carry_lineage_and_the_name_is_mirrored() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[]);
    ws.set_tags(
        id,
        &[
            ("mlflow.runName".into(), "sweep-7".into()),
            ("mlflow.source.git.commit".into(), "abc123".into()),
            ("mlflow.note.content".into(), "first try".into()),
        ],
    )
    .unwrap();
    let run = ws.run(id).unwrap().run;
    assert_eq!(run.name, "sweep-7");
    assert_eq!(run.notes, "first try");
    assert_eq!(run.lineage.code.unwrap().commit.as_deref(), Some("abc123"));
    let renamed = ws.rename_run(id, "sweep-8").unwrap();
    assert_eq!(renamed.name, "sweep-8");
    assert_eq!(renamed.tags["mlflow.runName"], "sweep-8");
    let e = ws.rename_run(id, "  ").unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}

#[test]
fn datasets_are_kept_by_role() {
    let (_d, ws) = workspace();
    let id = start(&ws, "e", &[]);
    let ds = |name: &str, context: Option<&str>| DatasetSnapshot {
        name: Some(name.into()),
        context: context.map(Into::into),
        digest: Some(format!("d-{name}")),
        ..Default::default()
    };
    ws.add_dataset_inputs(
        id,
        vec![
            ds("imagenet", Some("training")),
            ds("holdout", Some("eval")),
        ],
    )
    .unwrap();
    // A second, different dataset in a role already taken keeps both.
    ws.add_dataset_inputs(id, vec![ds("extra", Some("training")), ds("plain", None)])
        .unwrap();
    let roles: Vec<String> = ws
        .run(id)
        .unwrap()
        .run
        .lineage
        .datasets
        .keys()
        .cloned()
        .collect();
    assert_eq!(roles, ["eval", "plain", "training", "training:extra"]);
    let e = ws
        .add_dataset_inputs(id, vec![DatasetSnapshot::default()])
        .unwrap_err();
    assert!(e.to_string().contains("needs a name"), "{e}");
}

#[test]
fn the_listing_pages_and_orders_with_the_search_grammar() {
    let (_d, ws) = workspace();
    for (i, acc) in [0.3, 0.9, 0.5].iter().enumerate() {
        let id = start(&ws, "e", &[("i", &i.to_string())]);
        ws.log_batch(
            id,
            &LogBatch {
                metrics: vec![metric("acc", *acc, 0)],
                ..Default::default()
            },
        )
        .unwrap();
    }
    let page = ws
        .runs_page(&cairn_core::RunsQuery {
            experiment: Some("e".into()),
            order: Some("metrics.acc DESC".into()),
            limit: Some(2),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.total, 3);
    let accs: Vec<f64> = page.runs.iter().map(|r| r.metrics["acc"].0).collect();
    assert_eq!(accs, [0.9, 0.5]);
    let e = ws
        .runs_page(&cairn_core::RunsQuery {
            order: Some("params.i".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = ws
        .runs_page(&cairn_core::RunsQuery {
            experiment: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}
