//! Structured reviews through the API users call: refused naming each missing field, the
//! team's template (extra typed fields), next actions closed on two peers offline (both land),
//! search by review fields and text (here and after a sync), and a promotion gate that
//! requires a review deciding adopt.

use cairn_core::{
    Code, GateScope, NewReview, ReviewFilter, SearchRequest, SetActionState, Workspace,
};
use cairn_model::gate::GatePolicy;
use cairn_model::review::{
    ActionState, Confidence, Decision, ExtraField, ExtraKind, Level, NextAction, ReviewTemplate,
};

use super::registry::{peer, register, sync, trained};
use super::{start, workspace};

fn full(run: &str) -> NewReview {
    NewReview {
        runs: vec![run.to_owned()],
        objective: Some("beat the baseline on val".into()),
        method: Some("label smoothing 0.1, 3 seeds".into()),
        result: Some("+1.2 points, stable over seeds".into()),
        confidence: Some(Confidence {
            level: Some(Level::High),
            ..Default::default()
        }),
        decision: Some(Decision::Adopt),
        actions: vec![
            NextAction {
                text: "rerun on the new split".into(),
                owner: "alice".into(),
            },
            NextAction {
                text: "write the model card".into(),
                owner: "bob".into(),
            },
        ],
        text: Some("The calibration plot looks suspiciously flat.".into()),
        ..Default::default()
    }
}

fn found(ws: &Workspace, q: &str) -> Vec<String> {
    ws.search(&SearchRequest {
        q: Some(q.into()),
        ..Default::default()
    })
    .unwrap_or_else(|e| panic!("{q}: {e}"))
    .runs
    .into_iter()
    .map(|r| r.id.to_string())
    .collect()
}

#[test]
fn a_review_missing_required_fields_is_refused_naming_each() {
    let (_dir, ws) = workspace();
    let run = start(&ws, "exp", &[]).to_string();
    let e = ws
        .create_review(&NewReview {
            runs: vec![run.clone()],
            method: Some("grid search".into()),
            ..Default::default()
        })
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");
    assert!(
        e.to_string()
            .contains("missing required fields: objective, confidence, decision"),
        "{e}"
    );
    assert!(ws.reviews(&ReviewFilter::default()).unwrap().is_empty());

    // The team's template: a required typed extra field, and the method.
    ws.set_review_template(ReviewTemplate {
        required: vec!["method".into(), "risk".into()],
        extra: vec![ExtraField {
            name: "risk".into(),
            kind: ExtraKind::Choice,
            options: vec!["low".into(), "high".into()],
            help: String::new(),
        }],
    })
    .unwrap();
    let t = ws.review_template().unwrap();
    assert!(!t.default);
    assert_eq!(t.set_by.as_deref(), Some("alice"));
    let e = ws
        .create_review(&NewReview {
            runs: vec![run.clone()],
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("missing required fields: method, risk"),
        "{e}"
    );
    let mut ok = NewReview {
        runs: vec![run.clone()],
        method: Some("grid search".into()),
        ..Default::default()
    };
    ok.extra.insert("risk".into(), "medium".into());
    let e = ws.create_review(&ok).unwrap_err();
    assert!(e.to_string().contains("one of low, high"), "{e}");
    ok.extra.insert("risk".into(), "low".into());
    let v = ws.create_review(&ok).unwrap();
    assert_eq!(v.author, "alice");
    assert_eq!(v.review.extra["risk"], "low");
    // An audit event attests it.
    let events = ws
        .audit_log(&cairn_core::audit::AuditLogRequest {
            run: Some(run.clone()),
            ..Default::default()
        })
        .unwrap();
    assert!(
        events.iter().any(|e| e.kind == "review.created"),
        "{events:?}"
    );
}

#[test]
fn peers_closing_different_actions_offline_both_land() {
    let (dir, ada) = workspace();
    let bob = peer(&dir, "bob", "bob");
    let run = start(&ada, "exp", &[]).to_string();
    let id = ada
        .create_review(&full(&run))
        .unwrap()
        .review
        .id
        .to_string();
    sync(&ada, &bob);
    assert_eq!(bob.review(&id).unwrap().actions.len(), 2);

    // Offline: Ada closes action 0, Bob drops action 1.
    ada.set_action_state(&SetActionState {
        id: id.clone(),
        action: 0,
        state: ActionState::Done,
        note: Some("done on split v2".into()),
    })
    .unwrap();
    bob.set_action_state(&SetActionState {
        id: id[..8].to_owned(),
        action: 1,
        state: ActionState::Dropped,
        note: None,
    })
    .unwrap();
    sync(&ada, &bob);
    for ws in [&ada, &bob] {
        let v = ws.review(&id).unwrap();
        let states: Vec<_> = v.actions.iter().map(|a| a.state).collect();
        assert_eq!(states, [ActionState::Done, ActionState::Dropped]);
        assert_eq!(v.actions[0].changed_by.as_deref(), Some("alice"));
        assert_eq!(v.actions[0].note, "done on split v2");
        assert_eq!(v.actions[1].changed_by.as_deref(), Some("bob"));
        assert!(v.actions[1].changed_ms.is_some());
        assert!(
            ws.reviews(&ReviewFilter {
                open_actions: Some(true),
                ..Default::default()
            })
            .unwrap()
            .is_empty()
        );
    }
    // A bad action index is refused by name.
    let e = ada
        .set_action_state(&SetActionState {
            id: id.clone(),
            action: 7,
            state: ActionState::Done,
            note: None,
        })
        .unwrap_err();
    assert!(e.to_string().contains("no action 7"), "{e}");
}

#[test]
fn search_finds_runs_by_their_reviews_here_and_after_sync() {
    let (dir, ada) = workspace();
    let bob = peer(&dir, "bob", "bob");
    let reviewed = start(&ada, "exp", &[]).to_string();
    let other = start(&ada, "exp", &[]).to_string();
    // Search before the review: the index exists and must catch the review up.
    assert!(found(&ada, "is:reviewed").is_empty());
    let id = ada.create_review(&full(&reviewed)).unwrap().review.id;
    let mut iterate = full(&other);
    iterate.decision = Some(Decision::Iterate);
    iterate.confidence = Some(Confidence {
        p: Some(0.3),
        reason: Some("one seed".into()),
        ..Default::default()
    });
    iterate.actions.clear();
    iterate.text = None;
    ada.create_review(&iterate).unwrap();

    assert_eq!(found(&ada, "review.decision:adopt"), [reviewed.as_str()]);
    assert_eq!(found(&ada, "review.confidence:high"), [reviewed.as_str()]);
    assert_eq!(found(&ada, "review.confidence = 'low'"), [other.as_str()]);
    assert_eq!(found(&ada, "is:reviewed").len(), 2);
    assert_eq!(found(&ada, "has:open-action"), [reviewed.as_str()]);
    assert_eq!(found(&ada, "has:open-action=bob"), [reviewed.as_str()]);
    assert!(found(&ada, "has:open-action=carol").is_empty());
    assert_eq!(found(&ada, "suspiciously"), [reviewed.as_str()]);
    assert_eq!(
        found(&ada, "not is:reviewed and exp:exp").len(),
        0,
        "both runs are reviewed"
    );

    // Closing bob's action takes the run out of has:open-action=bob.
    ada.set_action_state(&SetActionState {
        id: id.to_string(),
        action: 1,
        state: ActionState::Done,
        note: None,
    })
    .unwrap();
    assert!(found(&ada, "has:open-action=bob").is_empty());
    assert_eq!(found(&ada, "has:open-action=alice"), [reviewed.as_str()]);

    // Bob's peer: the runs and reviews arrive by sync, and his search finds them; a review he
    // writes offline reaches Ada's search after the next sync.
    sync(&ada, &bob);
    assert_eq!(found(&bob, "review.decision:adopt"), [reviewed.as_str()]);
    let mut abandon = full(&other);
    abandon.decision = Some(Decision::Abandon);
    abandon.text = Some("overfits the holdout".into());
    bob.create_review(&abandon).unwrap();
    assert!(found(&ada, "review.decision:abandon").is_empty());
    sync(&ada, &bob);
    assert_eq!(found(&ada, "review.decision:abandon"), [other.as_str()]);
    assert_eq!(found(&ada, "holdout"), [other.as_str()]);
    assert_eq!(found(&ada, "review.author:bob"), [other.as_str()]);
}

#[test]
fn a_gate_requiring_an_adopting_review_fails_then_passes_naming_it() {
    let (_dir, ws) = workspace();
    let run = trained(&ws, b"weights");
    register(&ws, "churn", run);
    ws.set_gate(
        &GateScope {
            model: Some("churn".into()),
            alias: None,
        },
        GatePolicy {
            review: true,
            ..GatePolicy::default()
        },
    )
    .unwrap();
    let e = ws.check_gate("churn", 1, "champion").unwrap();
    assert!(!e.passed);
    assert!(
        e.checks[0]
            .detail
            .contains("no review of its run that decided adopt"),
        "{:?}",
        e.checks
    );
    // A review that says iterate does not pass it.
    let mut iterate = full(&run.to_string());
    iterate.decision = Some(Decision::Iterate);
    ws.create_review(&iterate).unwrap();
    assert!(!ws.check_gate("churn", 1, "champion").unwrap().passed);
    let id = ws.create_review(&full(&run.to_string())).unwrap().review.id;
    let e = ws
        .promote("churn", 1, "champion", Some("reviewed"))
        .unwrap();
    assert!(e.passed && e.promoted);
    assert_eq!(e.checks[0].detail, format!("review {id} decided adopt"));
}
