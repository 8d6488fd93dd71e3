//! Runs that MLflow clients create carry no machine profile: the server records its own for a
//! client on its machine, so the run is costed from the team's price for that machine, and none
//! for a client elsewhere, whose run is then unpriced — never costed at 0.

use serde_json::{Value, json};

use crate::http::Request;
use crate::server::TestServer;

const START_MS: i64 = 1_700_000_000_000;
/// Half an hour.
const HELD_MS: i64 = 30 * 60 * 1000;

/// Creates a run over MLflow's API (with `extra` headers), ends it half an hour after its start
/// and returns its id.
fn mlflow_run(server: &TestServer, name: &str, extra: &[(&str, &str)]) -> String {
    let mut req = Request::post(
        "/api/2.0/mlflow/runs/create",
        &json!({ "experiment_id": "0", "run_name": name, "start_time": START_MS }),
    );
    for (k, v) in extra {
        req = req.header(k, v);
    }
    let id = server.send(&req).ok()["run"]["info"]["run_id"]
        .as_str()
        .expect("run id")
        .to_owned();
    server.mlflow(
        "runs/update",
        &json!({ "run_id": id, "status": "FINISHED", "end_time": START_MS + HELD_MS }),
    );
    id
}

fn cost(server: &TestServer, id: &str) -> Value {
    server.get(&format!("/api/v1/runs/{id}/cost")).ok()
}

#[test]
fn a_run_from_this_machine_is_costed_from_its_profile_and_one_from_elsewhere_is_unpriced() {
    let server = TestServer::start();
    let here = cairn_core::this_machine();
    let host = here.host.clone().expect("this machine has a host name");
    // The machine at $3.60 an hour, for every run it ever served.
    server
        .post(
            "/api/v1/cost/prices",
            &json!({ "target": host, "usd": 3.6, "per": "hour", "from": "always" }),
        )
        .ok();

    let local = mlflow_run(&server, "local", &[]);
    let relayed_local = mlflow_run(
        &server,
        "proxied-local",
        &[("X-Forwarded-For", "127.0.0.1")],
    );
    let remote = mlflow_run(&server, "remote", &[("X-Forwarded-For", "10.1.2.3")]);

    for id in [&local, &relayed_local] {
        let c = cost(&server, id);
        let c = &c["cost"];
        assert_eq!(c["source"], "table", "{c}");
        assert_eq!(c["hours"], 0.5, "{c}");
        assert!(
            (c["machine_usd"].as_f64().unwrap() - 1.8).abs() < 1e-9,
            "{c}"
        );
        assert!(c["usd"].as_f64().unwrap() >= 1.8 - 1e-9, "{c}");
    }
    let c = cost(&server, &remote);
    let c = &c["cost"];
    assert_eq!(c["source"], "unpriced", "{c}");
    assert!(
        c.get("usd").is_none(),
        "an unpriced run has no amount, not 0: {c}"
    );
    assert!(
        c["note"].as_str().unwrap().contains("no machine profile"),
        "{c}"
    );

    // What was recorded, read back from disk.
    let stopped = server.stop();
    assert_eq!(stopped.run(&local).lineage.infra.as_ref(), Some(&here));
    assert_eq!(
        stopped.run(&relayed_local).lineage.infra.as_ref(),
        Some(&here)
    );
    assert_eq!(stopped.run(&remote).lineage.infra, None);
    let report = stopped
        .ws
        .cost_report(&cairn_core::cost::CostRequest::default())
        .expect("cost report");
    assert_eq!(report.total.runs, 3);
    assert_eq!(report.total.unpriced_runs, 1);
}
