//! Promotion gates and signed approvals: every alias move checked against its gate, refused
//! naming each failed threshold, every check kept; approvals signed by a member's device key and
//! verified on read (a forged, a removed member's, an author's and another version's approval
//! do not count), here and on a peer after sync.

use cairn_core::{Code, Error, GateScope, NewRun, Workspace};
use cairn_model::gate::{
    Approval, FairnessThreshold, GatePolicy, MetricThreshold, RequiredEvaluation, keys,
};
use cairn_model::registry::keys::of_model;
use cairn_model::{Evaluation, Lineage, Num, RecordId, RunId};

use super::registry::{peer, register, sync};

/// A run evaluated on `val` with `metrics`, its `model/` holding `weights`.
fn evaluated(ws: &Workspace, metrics: &[(&str, f64)], weights: &[u8]) -> RunId {
    let mut lineage = Lineage::default();
    if !metrics.is_empty() {
        lineage.evaluations.insert(
            "val".into(),
            Evaluation {
                metrics: metrics
                    .iter()
                    .map(|(k, v)| ((*k).into(), Num(*v)))
                    .collect(),
                ..Default::default()
            },
        );
    }
    let run = ws
        .start_run(NewRun {
            experiment_name: Some("train".into()),
            lineage,
            ..Default::default()
        })
        .unwrap()
        .id;
    ws.add_artifact_reader(run, "model/weights.bin", &mut &weights[..])
        .unwrap();
    run
}

fn acc(threshold: Option<f64>, abs: Option<f64>) -> MetricThreshold {
    MetricThreshold {
        benchmark: "val".into(),
        metric: "acc".into(),
        threshold,
        min_absolute_change: abs,
        min_relative_change: None,
        greater_is_better: true,
    }
}

fn model_scope(model: &str) -> GateScope {
    GateScope {
        model: Some(model.into()),
        alias: None,
    }
}

fn champion(ws: &Workspace, model: &str) -> Option<u32> {
    let m = ws.registered_model(model).unwrap();
    m.alias("champion")
        .and_then(|a| a.holder())
        .map(|t| t.number)
}

fn refused(e: Error) -> Vec<String> {
    assert_eq!(e.code(), Code::Conflict, "{e}");
    match e {
        Error::GateRefused { failed, .. } => failed,
        other => panic!("expected a gate refusal, got {other}"),
    }
}

#[test]
fn a_promotion_is_refused_naming_each_failed_check_and_moves_once_they_pass() {
    let (_dir, ws) = super::workspace();
    let v1 = register(&ws, "churn", evaluated(&ws, &[("acc", 0.80)], b"v1"));
    // No gate yet: the move is free, and still kept as a check.
    let e = ws
        .promote("churn", 1, "champion", Some("baseline"))
        .unwrap();
    assert!(e.passed && e.promoted && e.policy.is_none());
    assert_eq!(champion(&ws, "churn"), Some(1));

    let view = ws
        .set_gate(
            &model_scope("churn"),
            GatePolicy {
                evaluations: vec![RequiredEvaluation {
                    benchmark: "val".into(),
                    dataset: None,
                }],
                metrics: vec![acc(Some(0.85), Some(0.01))],
                ..GatePolicy::default()
            },
        )
        .unwrap();
    assert!(view.hash.starts_with("blake3:"));
    assert_eq!(
        ws.gate_for("churn", "champion").unwrap().unwrap().hash,
        view.hash
    );

    // Below the value threshold: refused, the alias stays.
    register(&ws, "churn", evaluated(&ws, &[("acc", 0.84)], b"v2"));
    let failed = refused(ws.promote("churn", 2, "champion", None).unwrap_err());
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("val acc = 0.84, needs >= 0.85"),
        "{failed:?}"
    );
    assert_eq!(champion(&ws, "churn"), Some(1));
    // The same refusal through the MLflow-shaped alias call.
    let e = ws
        .set_model_alias("churn", "champion", 2, None)
        .unwrap_err();
    assert!(e.to_string().contains("refused by its gate"), "{e}");

    // No evaluation at all: the required evaluation and the metric both fail.
    register(&ws, "churn", evaluated(&ws, &[], b"v3"));
    let failed = refused(ws.promote("churn", 3, "champion", None).unwrap_err());
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed[0].contains("no evaluation on benchmark 'val'"));
    assert!(failed[1].contains("no value of 'acc'"));

    // 0.86 reaches the value and improves on the champion's 0.80 by more than 0.01.
    register(&ws, "churn", evaluated(&ws, &[("acc", 0.86)], b"v4"));
    let e = ws.check_gate("churn", 4, "champion").unwrap();
    assert!(e.passed && !e.promoted);
    assert_eq!(e.holder, Some(1));
    assert_eq!(champion(&ws, "churn"), Some(1), "a check moves nothing");
    let e = ws.promote("churn", 4, "champion", Some("better")).unwrap();
    assert!(e.promoted);
    assert_eq!(champion(&ws, "churn"), Some(4));
    let alias = ws.registered_model("churn").unwrap();
    let target = &alias.alias("champion").unwrap().targets[0];
    assert_eq!(
        target.evaluation,
        Some(e.id),
        "the alias names the check that moved it"
    );

    // Now the champion is 0.86: 0.865 reaches the value but not the change.
    register(&ws, "churn", evaluated(&ws, &[("acc", 0.865)], b"v5"));
    let failed = refused(ws.promote("churn", 5, "champion", None).unwrap_err());
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0].contains("an improvement >= 0.01 over the current holder")
            && failed[0].contains("version 4"),
        "{failed:?}"
    );

    // Every check is kept, newest first, passed or not.
    let kept = ws.gate_evaluations("churn", 100).unwrap();
    assert_eq!(kept.len(), 7);
    assert_eq!(kept[0].number, 5);
    assert!(!kept[0].passed && !kept[0].promoted);
    assert_eq!(kept.iter().filter(|e| e.promoted).count(), 2);
    assert!(kept.iter().all(|e| e.model == "churn"));
    assert_eq!(kept.last().unwrap().version, v1.id);
    // A page is the newest of them.
    let page = ws.gate_evaluations("churn", 3).unwrap();
    assert_eq!(page, kept[..3]);
}

#[test]
fn policies_apply_by_alias_then_model_then_the_project() {
    let (_dir, ws) = super::workspace();
    register(&ws, "churn", evaluated(&ws, &[("acc", 0.7)], b"c"));
    register(&ws, "fraud", evaluated(&ws, &[("acc", 0.7)], b"f"));
    // The project's default guards every model without a policy of its own.
    ws.set_gate(
        &GateScope {
            model: None,
            alias: None,
        },
        GatePolicy {
            metrics: vec![acc(Some(0.9), None)],
            ..GatePolicy::default()
        },
    )
    .unwrap();
    refused(ws.promote("fraud", 1, "champion", None).unwrap_err());
    // A model's own policy for one alias wins over it; other aliases keep the default.
    ws.set_gate(
        &GateScope {
            model: Some("churn".into()),
            alias: Some("staging".into()),
        },
        GatePolicy {
            metrics: vec![acc(Some(0.5), None)],
            ..GatePolicy::default()
        },
    )
    .unwrap();
    ws.promote("churn", 1, "staging", None).unwrap();
    refused(ws.promote("churn", 1, "champion", None).unwrap_err());
    // An empty policy lifts the gate where it is set.
    ws.set_gate(&model_scope("fraud"), GatePolicy::default())
        .unwrap();
    assert!(ws.gate_for("fraud", "champion").unwrap().is_none());
    ws.promote("fraud", 1, "champion", None).unwrap();
    // A policy that says nothing is refused.
    let e = ws
        .set_gate(
            &model_scope("churn"),
            GatePolicy {
                fairness: vec![FairnessThreshold {
                    benchmark: "val".into(),
                    metric: "acc".into(),
                    attribute: "sex".into(),
                    max_difference: None,
                    min_ratio: None,
                }],
                ..GatePolicy::default()
            },
        )
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
}

/// Opens `ws`'s sync stores, as the roster and raw team-doc writes need.
fn stores(ws: &Workspace) -> cairn_sync::Stores {
    cairn_sync::Stores::open(&cairn_sync::StorePaths::in_workspace(ws.dir()), ws.user())
        .expect("sync stores")
}

fn key_of(ws: &Workspace) -> cairn_sync::SecretKey {
    cairn_sync::identity::load_or_create_key(&ws.dir().join("device.key")).unwrap()
}

fn sign(mut a: Approval, key: &cairn_sync::SecretKey) -> Approval {
    a.signature = key
        .sign(&a.signed_bytes())
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    a
}

fn write_approval(ws: &Workspace, key: &str, a: &Approval) {
    stores(ws)
        .catalog
        .put_team_entry(key, Some(&serde_json::to_string(a).unwrap()))
        .unwrap();
}

#[test]
fn approvals_count_only_when_signed_by_another_active_member_for_this_content() {
    let dir = tempfile::tempdir().unwrap();
    let ada = peer(&dir, "ada", "ada");
    let bob = peer(&dir, "bob", "bob");
    let carol = peer(&dir, "carol", "carol");
    ada.team_create("lab", "ada@example.org").unwrap();
    let (ada_id, bob_id, carol_id) = (
        ada.device_id().unwrap(),
        bob.device_id().unwrap(),
        carol.device_id().unwrap(),
    );
    {
        let mut s = stores(&ada);
        cairn_sync::roster::add(&mut s.catalog, &bob_id, "bob", "", &ada_id).unwrap();
        cairn_sync::roster::add(&mut s.catalog, &carol_id, "carol", "", &ada_id).unwrap();
    }
    let v1 = register(&ada, "churn", evaluated(&ada, &[("acc", 0.9)], b"v1"));
    let v2 = register(&ada, "churn", evaluated(&ada, &[("acc", 0.91)], b"v2"));
    ada.set_gate(
        &model_scope("churn"),
        GatePolicy {
            approvals: 1,
            ..GatePolicy::default()
        },
    )
    .unwrap();

    // The author's own approval is kept but does not count.
    let own = ada.approve("churn", 1, "champion", "mine").unwrap();
    assert!(!own.counts);
    assert!(
        own.problem.contains("an author cannot approve"),
        "{}",
        own.problem
    );
    let failed = refused(ada.promote("churn", 1, "champion", None).unwrap_err());
    assert!(
        failed[0].contains("0 valid signed approvals") && failed[0].contains("1 more"),
        "{failed:?}"
    );

    // Ada forges Bob's approval: his device id, her signature.
    let policy_hash = ada.gate_for("churn", "champion").unwrap().unwrap().hash;
    let inputs = own.approval.inputs.clone();
    let forged = sign(
        Approval {
            id: RecordId::new(),
            model: "churn".into(),
            version: v1.id,
            content: v1.content,
            policy_hash: Some(policy_hash.clone()),
            inputs: inputs.clone(),
            device: bob_id.clone(),
            user: "bob".into(),
            at_ms: 1,
            comment: "lgtm".into(),
            signature: String::new(),
        },
        &key_of(&ada),
    );
    let forged_key = format!(
        "{}{}/{}",
        of_model(keys::APPROVAL, "churn"),
        v1.id,
        forged.id
    );
    write_approval(&ada, &forged_key, &forged);
    let seen = ada.approvals("churn", 1, "champion").unwrap();
    let f = seen
        .approvals
        .iter()
        .find(|a| a.approval.id == forged.id)
        .unwrap();
    assert!(!f.counts);
    assert!(f.problem.contains("does not verify"), "{}", f.problem);
    refused(ada.promote("churn", 1, "champion", None).unwrap_err());

    // Bob signs an approval for v2 that names v1's content: signed, but for other content.
    let mismatched = sign(
        Approval {
            id: RecordId::new(),
            version: v2.id,
            content: v1.content,
            device: bob_id.clone(),
            ..forged.clone()
        },
        &key_of(&bob),
    );
    let mismatched_key = format!(
        "{}{}/{}",
        of_model(keys::APPROVAL, "churn"),
        v2.id,
        mismatched.id
    );
    write_approval(&bob, &mismatched_key, &mismatched);

    // Bob and Carol receive everything; Bob approves v1 for real and Carol v2.
    sync(&ada, &bob);
    sync(&ada, &carol);
    let good = bob.approve("churn", 1, "champion", "lgtm").unwrap();
    assert!(good.counts, "{}", good.problem);
    assert_eq!(good.member.as_deref(), Some("bob"));
    sync(&bob, &ada);
    let on_ada = ada.approvals("churn", 1, "champion").unwrap();
    assert_eq!(on_ada.approvals.iter().filter(|a| a.counts).count(), 1);
    let m = on_ada
        .approvals
        .iter()
        .find(|a| a.approval.id == good.approval.id)
        .unwrap();
    assert!(
        m.counts,
        "verified on the author's peer after sync: {}",
        m.problem
    );
    let v2_seen = ada.approvals("churn", 2, "champion").unwrap();
    let mm = &v2_seen.approvals[0];
    assert!(!mm.counts);
    assert!(mm.problem.contains("other content"), "{}", mm.problem);
    ada.promote("churn", 1, "champion", Some("approved by bob"))
        .unwrap();

    // A changed policy invalidates approvals given under the old one.
    ada.set_gate(
        &model_scope("churn"),
        GatePolicy {
            approvals: 1,
            metrics: vec![acc(Some(0.5), None)],
            ..GatePolicy::default()
        },
    )
    .unwrap();
    let after = ada.approvals("churn", 1, "champion").unwrap();
    assert!(after.approvals.iter().all(|a| !a.counts));
    assert!(
        after
            .approvals
            .iter()
            .any(|a| a.problem.contains("another gate policy"))
    );

    // Carol approves v2; then she is removed from the team: her approval no longer counts,
    // on every peer that reads it.
    sync(&ada, &carol);
    let c = carol.approve("churn", 2, "champion", "ok").unwrap();
    assert!(c.counts, "{}", c.problem);
    sync(&carol, &ada);
    ada.team_remove("carol").unwrap();
    let on_ada = ada.approvals("churn", 2, "champion").unwrap();
    let gone = on_ada
        .approvals
        .iter()
        .find(|a| a.approval.id == c.approval.id)
        .unwrap();
    assert!(!gone.counts);
    assert!(
        gone.problem.contains("removed from the team"),
        "{}",
        gone.problem
    );
    refused(ada.promote("churn", 2, "champion", None).unwrap_err());
    sync(&ada, &bob);
    let on_bob = bob.approvals("churn", 2, "champion").unwrap();
    assert!(on_bob.approvals.iter().all(|a| !a.counts));
    assert_eq!(
        ada.registered_model("churn")
            .unwrap()
            .alias("champion")
            .unwrap()
            .targets[0]
            .number,
        1
    );
}

/// The gate reads what `log_evaluation` recorded: the fairness figures computed from the
/// slices (acc over sex: 0.91 - 0.85 = 0.06 fails "difference <= 0.03", 0.90 - 0.88 passes) and
/// the dataset digest a required evaluation names.
#[test]
fn fairness_thresholds_read_the_figures_of_logged_slices() {
    use std::collections::BTreeMap;

    let (_dir, ws) = super::workspace();
    let logged = |female: f64, male: f64, weights: &[u8]| {
        let run = evaluated(&ws, &[], weights);
        let slice = |v: f64| BTreeMap::from([("acc".to_owned(), Num(v))]);
        ws.log_evaluation(
            run,
            "val",
            Evaluation {
                dataset: Some("blake3:feed".into()),
                metrics: BTreeMap::from([("acc".to_owned(), Num(0.9))]),
                slices: BTreeMap::from([
                    ("sex=female".to_owned(), slice(female)),
                    ("sex=male".to_owned(), slice(male)),
                ]),
                ..Default::default()
            },
        )
        .unwrap();
        run
    };
    register(&ws, "credit", logged(0.85, 0.91, b"v1"));
    ws.set_gate(
        &model_scope("credit"),
        GatePolicy {
            evaluations: vec![RequiredEvaluation {
                benchmark: "val".into(),
                dataset: Some("blake3:feed".into()),
            }],
            fairness: vec![FairnessThreshold {
                benchmark: "val".into(),
                metric: "acc".into(),
                attribute: "sex".into(),
                max_difference: Some(0.03),
                min_ratio: Some(0.95),
            }],
            ..GatePolicy::default()
        },
    )
    .unwrap();
    let e = ws.check_gate("credit", 1, "champion").unwrap();
    assert!(!e.passed, "{e:?}");
    let fair: Vec<_> = e
        .checks
        .iter()
        .filter(|c| c.subject.contains("over sex"))
        .collect();
    assert!(!fair.is_empty(), "{e:?}");
    let difference = fair
        .iter()
        .find(|c| c.threshold.contains("0.03"))
        .unwrap_or_else(|| panic!("{fair:?}"));
    assert!(!difference.passed);
    assert!(
        (difference.value.unwrap() - 0.06).abs() < 1e-9,
        "{difference:?}"
    );
    let required = e
        .checks
        .iter()
        .find(|c| c.kind == cairn_model::gate::CheckKind::Evaluation)
        .unwrap_or_else(|| panic!("{e:?}"));
    assert!(
        required.passed,
        "the evaluation is on the required digest: {required:?}"
    );
    refused(ws.promote("credit", 1, "champion", None).unwrap_err());

    register(&ws, "credit", logged(0.88, 0.90, b"v2"));
    let e = ws.promote("credit", 2, "champion", Some("fair")).unwrap();
    assert!(e.passed && e.promoted, "{e:?}");
    assert_eq!(champion(&ws, "credit"), Some(2));
}
