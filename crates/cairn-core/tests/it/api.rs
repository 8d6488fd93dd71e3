//! The declared operations, called as a transport calls them: by name, with a request to decode.

use cairn_core::api::{OPERATIONS, call};
use cairn_core::{Code, NewLoggedModel, SavedView};
use serde_json::json;

use crate::{start, workspace};

#[test]
fn every_declared_operation_answers_through_call() {
    let (dir, ws) = workspace();
    let id = start(&ws, "e", &[("lr", "0.1")]).to_string();
    let logdir = dir.path().join("tb");
    std::fs::create_dir_all(logdir.join("r")).unwrap();
    let mut events = cairn_tensorboard::write::EventFile::new(1.0);
    events.scalar(2.0, 1, "loss", 0.5);
    std::fs::write(logdir.join("r/x.tfevents"), events.bytes()).unwrap();
    // An MLflow store with one run of one point.
    let mlflow_db = dir.path().join("mlflow.db");
    let db = rusqlite::Connection::open(&mlflow_db).unwrap();
    db.execute_batch(cairn_core::mlflow_import::sqlite::SCHEMA)
        .unwrap();
    db.execute_batch(
        "INSERT INTO experiments VALUES (1, 'from-mlflow', NULL, 'active', 1, 1, 'default');
         INSERT INTO runs VALUES ('0123456789abcdef0123456789abcdef', 'r', 'LOCAL', '', '',
             'bob', 'FINISHED', 1, 2, '', 'active', NULL, 1, NULL);
         INSERT INTO metrics VALUES ('loss', 0.5, 1, '0123456789abcdef0123456789abcdef', 0, 0);
         INSERT INTO latest_metrics VALUES ('loss', 0.5, 1, 0, 0,
             '0123456789abcdef0123456789abcdef');",
    )
    .unwrap();
    drop(db);
    let mlflow_uri = format!("sqlite:///{}", mlflow_db.display());
    ws.log_metrics(
        id.parse().unwrap(),
        &[(
            "loss",
            &[cairn_core::MetricPoint {
                step: 0,
                ts_ms: 1,
                value: 1.0,
            }],
        )],
    )
    .unwrap();
    ws.save_view(&SavedView {
        name: "v".into(),
        query: "".into(),
        order: None,
        columns: vec![],
    })
    .unwrap();
    let run: cairn_model::RunId = id.parse().unwrap();
    ws.add_artifact_reader(run, "model/w.bin", &mut &b"w"[..])
        .unwrap();
    ws.create_registered_model("m", None, Default::default())
        .unwrap();
    ws.create_model_version(
        "m",
        &format!("runs:/{id}/model"),
        Some(run),
        None,
        Default::default(),
    )
    .unwrap();
    let trace = ws
        .start_trace(cairn_core::traces::TraceStart {
            experiment: "0".into(),
            ..Default::default()
        })
        .unwrap()
        .trace_id
        .to_string();
    let notebook = ws
        .notebook_create(&cairn_core::notebooks::NewNotebook {
            title: "N".into(),
            ..Default::default()
        })
        .unwrap()
        .meta
        .id
        .to_string();
    // A logged model the run produced, for `run_models` and `logged_model`.
    let model = ws
        .create_logged_model(NewLoggedModel {
            experiment: ws.run(run).unwrap().run.experiment,
            name: Some("m".into()),
            source_run: Some(run),
            ..Default::default()
        })
        .unwrap();
    ws.log_model_outputs(run, &[(model.id.clone(), 4)]).unwrap();
    // A review with a next action, for `review` and `set_action_state`.
    let review = ws
        .create_review(&cairn_core::NewReview {
            runs: vec![id.clone()],
            objective: Some("o".into()),
            confidence: Some(cairn_model::review::Confidence {
                level: Some(cairn_model::review::Level::Low),
                ..Default::default()
            }),
            decision: Some(cairn_model::review::Decision::Iterate),
            actions: vec![cairn_model::review::NextAction {
                text: "t".into(),
                owner: "alice".into(),
            }],
            ..Default::default()
        })
        .unwrap()
        .review
        .id
        .to_string();
    // The team operations use the sync node the workspace hosts (as `cairn serve --sync` and
    // the desktop app lend one).
    let rt = crate::audit_sync::runtime();
    ws.host_sync(rt.handle().clone(), cairn_core::team::NodeConfig::default())
        .unwrap();
    // One valid request per operation; the test fails when an operation is added without one.
    let requests = [
        ("info", json!({})),
        ("experiments", json!({})),
        ("runs", json!({"experiment": "e"})),
        ("search", json!({"q": "params.lr = '0.1'"})),
        ("run", json!({"id": &id[..12]})),
        ("buckets", json!({"id": id, "key": "loss", "buckets": 10})),
        ("chart", json!({"runs": [id], "metric": "loss"})),
        ("sync", json!({})),
        ("team", json!({})),
        (
            "team_create",
            json!({"name": "lab", "email": "alice@example.org"}),
        ),
        ("team_invite", json!({"ttl_s": 600})),
        ("team_members", json!({})),
        ("views", json!({})),
        (
            "save_view",
            json!({"name": "w", "query": "owner:alice", "columns": []}),
        ),
        ("delete_view", json!({"name": "v"})),
        (
            "cost",
            json!({"by": "exp", "metric": "loss", "every": "day"}),
        ),
        ("cost_dashboard", json!({"metric": "loss"})),
        ("run_cost", json!({"id": id})),
        ("prices", json!({})),
        ("set_price", json!({"target": "NVIDIA H200", "usd": 3.5})),
        ("budgets", json!({})),
        ("set_budget", json!({"family": "exp:e", "usd": 100.0})),
        ("set_cost_settings", json!({"idle_threshold_pct": 10.0})),
        ("registered_models", json!({})),
        ("registered_model", json!({"name": "m"})),
        ("gate", json!({"name": "m", "alias": "champion"})),
        (
            "set_gate",
            json!({"model": "m", "policy": {"approvals": 0, "compliant": false}}),
        ),
        ("gate_evaluations", json!({"name": "m"})),
        ("check_gate", json!({"name": "m", "version": "1"})),
        (
            "promote",
            json!({"name": "m", "version": "1", "alias": "staging", "rationale": "r"}),
        ),
        (
            "approve",
            json!({"name": "m", "version": "v1", "comment": "ok"}),
        ),
        ("approvals", json!({"name": "m", "version": "1"})),
        (
            "log_evaluation",
            json!({"id": id, "benchmark": "test", "metrics": {"acc": 0.9},
                   "slices": {"sex=f": {"acc": 0.8}, "sex=m": {"acc": 0.9}}}),
        ),
        ("evaluations", json!({"id": &id[..12]})),
        ("run_traces", json!({"id": id})),
        ("trace", json!({"id": trace})),
        ("run_models", json!({"id": id})),
        ("run_history", json!({"id": &id[..12]})),
        ("notebooks", json!({})),
        ("notebook_search", json!({"q": "hello tag:x"})),
        (
            "notebook_create",
            json!({"title": "T", "text": "see [[run:ID]]".replace("ID", &id)}),
        ),
        ("notebook", json!({"id": notebook})),
        (
            "notebook_edit",
            json!({"id": notebook, "text": "hello", "add_tags": ["x"]}),
        ),
        ("notebook_export", json!({"id": notebook, "format": "html"})),
        (
            "notebook_render",
            json!({"text": "{{query params.lr = 0.1}}"}),
        ),
        ("logged_model", json!({"id": model.id.as_str()})),
        ("audit_events", json!({"model": "m", "limit": 10})),
        ("audit_verify", json!({})),
        ("audit_trail", json!({"name": "m", "version": "1"})),
        (
            "deploy",
            json!({"name": "m", "version": 1, "target": "prod", "rationale": "why"}),
        ),
        ("deployments", json!({"name": "m"})),
        (
            "import_tensorboard",
            json!({"logdir": logdir.to_str().unwrap(), "experiment": "tb"}),
        ),
        ("import_mlflow", json!({"source": mlflow_uri})),
        ("verify", json!({})),
        ("repair", json!({})),
        ("reviews", json!({"run": &id[..12], "open_actions": true})),
        (
            "create_review",
            json!({"runs": [id], "objective": "o", "confidence": {"p": 0.7, "reason": "r"},
                   "decision": "adopt", "actions": [{"owner": "bob", "text": "t"}]}),
        ),
        ("review", json!({"id": review})),
        (
            "set_action_state",
            json!({"id": review, "action": 0, "state": "done", "note": "n"}),
        ),
        ("review_template", json!({})),
        (
            "set_review_template",
            json!({"required": ["objective", "risk"],
                   "extra": [{"name": "risk", "kind": "choice", "options": ["a", "b"]}]}),
        ),
    ];
    for op in OPERATIONS {
        if op.name == "artifact_text" {
            continue; // needs an artifact; covered by the server's tests
        }
        if op.name == "team_join" || op.name == "team_remove" {
            continue; // need a second device; covered by `team.rs`
        }
        let (_, req) = requests
            .iter()
            .find(|(n, _)| *n == op.name)
            .unwrap_or_else(|| panic!("no request for operation {}", op.name));
        call(&ws, op.name, req.clone()).unwrap_or_else(|e| panic!("{} failed: {e}", op.name));
    }
    // The logdir's one run was imported by the loop; again, it is found and nothing is added.
    let again = call(
        &ws,
        "import_tensorboard",
        json!({"logdir": logdir.to_str().unwrap(), "experiment": "tb"}),
    )
    .unwrap();
    assert_eq!(
        (again["runs_unchanged"].as_u64(), again["points"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(again["runs"][0]["dir"], "r");
    // The store's run came through the loop; again, nothing is added.
    let again = call(&ws, "import_mlflow", json!({"source": mlflow_uri})).unwrap();
    assert_eq!(
        (
            again["runs_unchanged"].as_u64(),
            again["present"]["points"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let models = call(&ws, "run_models", json!({"id": id})).unwrap();
    assert_eq!(models[0]["role"], "output");
    assert_eq!(models[0]["step"], 4);
    assert_eq!(models[0]["model"]["id"], model.id.as_str());
    let view = call(&ws, "logged_model", json!({"id": model.id.as_str()})).unwrap();
    assert_eq!(view["model"]["name"], "m");
    let page = call(&ws, "search", json!({"q": "params.lr = '0.1'"})).unwrap();
    assert_eq!(page["total"], 1);
    assert_eq!(page["runs"][0]["metrics"]["loss"], 1.0);
    let evals = call(&ws, "evaluations", json!({"id": id})).unwrap();
    assert_eq!(evals[0]["benchmark"], "test");
    assert_eq!(evals[0]["fairness"][0]["lowest"], "sex=f");
    // The run's history: its creation first, by the workspace's user on this device.
    let history = call(&ws, "run_history", json!({"id": id})).unwrap();
    assert_eq!(history[0]["field"], "run");
    assert_eq!(history[0]["member"], ws.user());
    assert_eq!(history[0]["device"], ws.device_id().unwrap().as_str());
}

#[test]
fn unknown_operations_and_malformed_requests_are_named() {
    let (_d, ws) = workspace();
    let e = call(&ws, "drop_everything", json!({})).unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.to_string().contains("'drop_everything'"), "{e}");
    let e = call(&ws, "run", json!({"id": 7})).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(
        e.to_string().starts_with("malformed request for run:"),
        "{e}"
    );
    let e = call(&ws, "buckets", json!({"id": "x", "key": "k", "lo": 5})).unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
}
