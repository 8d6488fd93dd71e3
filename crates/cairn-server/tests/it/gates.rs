//! Promotion gates over HTTP: `/api/v1` sets a gate, checks, promotes (refused with every
//! failed check named) and approves; MLflow's `registered-models/alias` goes through the same
//! gate and is refused in MLflow's error shape.

use std::collections::BTreeMap;

use cairn_core::{NewRun, Workspace};
use cairn_model::{Evaluation, Lineage, Num};
use serde_json::json;

use crate::http::{Request, assert_api_error};
use crate::server::{Guard, TestServer};

/// Model `churn` with version 1 (val acc 0.80) and version 2 (val acc 0.95).
fn seed(ws: &Workspace) {
    ws.create_registered_model("churn", None, BTreeMap::new())
        .unwrap();
    for (i, acc) in [0.80, 0.95].into_iter().enumerate() {
        let mut lineage = Lineage::default();
        lineage.evaluations.insert(
            "val".into(),
            Evaluation {
                metrics: [("acc".to_owned(), Num(acc))].into_iter().collect(),
                ..Default::default()
            },
        );
        let run = ws
            .start_run(NewRun {
                lineage,
                ..Default::default()
            })
            .unwrap()
            .id;
        ws.add_artifact_reader(run, "model/weights.bin", &mut format!("w{i}").as_bytes())
            .unwrap();
        ws.create_model_version(
            "churn",
            &format!("runs:/{run}/model"),
            Some(run),
            None,
            BTreeMap::new(),
        )
        .unwrap();
    }
}

#[test]
fn api_v1_and_mlflow_alias_moves_go_through_the_gate() {
    let server = TestServer::start_with(Guard::default(), seed);
    let models = server.get("/api/v1/models").ok();
    assert_eq!(models[0]["name"], "churn");
    assert_eq!(models[0]["versions"].as_array().unwrap().len(), 2);
    assert_eq!(server.get("/api/v1/models/churn/gate").ok(), json!(null));

    let set = server
        .send(&Request::new("PUT", "/api/v1/gates").json_bytes(
            json!({"model": "churn", "policy": {"metrics": [
                {"benchmark": "val", "metric": "acc", "threshold": 0.9, "greater_is_better": true}
            ]}})
            .to_string(),
        ))
        .ok();
    assert!(set["hash"].as_str().unwrap().starts_with("blake3:"));
    assert_eq!(
        server.get("/api/v1/models/churn/gate?alias=champion").ok()["hash"],
        set["hash"]
    );

    // Version 1 is below the threshold: refused, every failed check in the message.
    let message = assert_api_error(
        &server.post(
            "/api/v1/models/churn/versions/1/promote",
            &json!({"rationale": "try"}),
        ),
        409,
        "CONFLICT",
    );
    assert!(
        message.contains("refused by its gate") && message.contains("val acc = 0.8, needs >= 0.9"),
        "{message}"
    );
    // MLflow's client sees the same refusal in MLflow's shape.
    let r = server.mlflow(
        "registered-models/alias",
        &json!({"name": "churn", "alias": "champion", "version": "1"}),
    );
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(
        body["message"].as_str().unwrap().contains("needs >= 0.9"),
        "{body}"
    );

    // A check does not move; version 2 passes and moves.
    let checked = server
        .post("/api/v1/models/churn/versions/v2/check", &json!({}))
        .ok();
    assert_eq!(
        (checked["passed"].clone(), checked["promoted"].clone()),
        (json!(true), json!(false))
    );
    let moved = server
        .post(
            "/api/v1/models/churn/versions/2/promote",
            &json!({"alias": "champion", "rationale": "better"}),
        )
        .ok();
    assert_eq!(moved["promoted"], true);
    let model = server.get("/api/v1/models/churn").ok();
    assert_eq!(model["aliases"][0]["targets"][0]["number"], 2);
    let kept = server.get("/api/v1/models/churn/gate-evaluations").ok();
    assert_eq!(kept.as_array().unwrap().len(), 4);
    assert_eq!(kept[0]["rationale"], "better");

    // An approval is signed and listed with its verdict (no team here: it does not count).
    let a = server
        .post(
            "/api/v1/models/churn/versions/2/approve",
            &json!({"comment": "ok"}),
        )
        .ok();
    assert_eq!(a["counts"], false);
    assert_eq!(a["approval"]["signature"].as_str().unwrap().len(), 128);
    let listed = server.get("/api/v1/models/churn/versions/2/approvals").ok();
    assert_eq!(listed["approvals"].as_array().unwrap().len(), 1);

    assert_api_error(
        &server.post("/api/v1/models/churn/versions/x/promote", &json!({})),
        400,
        "INVALID_ARGUMENT",
    );
    assert_api_error(
        &server.post("/api/v1/models/nope/versions/1/promote", &json!({})),
        404,
        "NOT_FOUND",
    );
}
