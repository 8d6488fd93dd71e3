//! Cairn's own JSON API under `/api/v1/`: health, experiments, run listings with sorting and
//! paging, one run, metric series whole and downsampled; errors as `{"code","message"}`.

use cairn_core::{NewRun, Point, Workspace};
use cairn_model::RunStatus;
use serde_json::{Value, json};

use crate::http::assert_api_error;
use crate::server::{Guard, TestServer};

/// (experiment, run name, final acc, status).
const RUNS: [(&str, &str, f64, RunStatus); 7] = [
    ("vision", "v-a", 0.61, RunStatus::Finished),
    ("vision", "v-b", 0.93, RunStatus::Finished),
    ("vision", "v-c", 0.42, RunStatus::Failed),
    ("vision", "v-d", 0.77, RunStatus::Running),
    ("vision", "v-e", 0.58, RunStatus::Finished),
    ("nlp", "n-a", 0.88, RunStatus::Finished),
    ("nlp", "n-b", 0.35, RunStatus::Killed),
];

const CURVE_POINTS: i64 = 1_000;

fn seed(ws: &mut Workspace) {
    for (i, (exp, name, acc, status)) in RUNS.iter().enumerate() {
        let run = ws
            .start_run(NewRun {
                experiment_name: Some((*exp).into()),
                name: Some((*name).into()),
                start_ms: Some(1_700_000_000_000 + i as i64 * 1000),
                params: [("lr".to_owned(), format!("0.0{i}"))].into_iter().collect(),
                ..Default::default()
            })
            .expect("start run");
        ws.log_metric(
            run.id,
            "acc",
            &[
                Point {
                    step: 0,
                    ts_ms: 1,
                    value: acc / 2.0,
                },
                Point {
                    step: 1,
                    ts_ms: 2,
                    value: *acc,
                },
            ],
        )
        .expect("log acc");
        if *name == "v-b" {
            let curve: Vec<Point> = (0..CURVE_POINTS)
                .map(|s| Point {
                    step: s,
                    ts_ms: 10_000 + s,
                    value: match s {
                        100 => f64::NAN,
                        200 => f64::INFINITY,
                        300 => f64::NEG_INFINITY,
                        _ => 1.0 / (s + 1) as f64,
                    },
                })
                .collect();
            ws.log_metric(run.id, "train/loss", &curve)
                .expect("log curve");
            ws.log_metric(
                run.id,
                "grad",
                &[Point {
                    step: 0,
                    ts_ms: 1,
                    value: f64::INFINITY,
                }],
            )
            .expect("log grad");
        }
        if status.is_final() {
            ws.end_run(run.id, *status, None).expect("end run");
        }
    }
}

fn server() -> TestServer {
    TestServer::start_with(Guard::default(), seed)
}

fn names(page: &Value) -> Vec<String> {
    page["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .map(|r| r["name"].as_str().expect("name").to_owned())
        .collect()
}

fn by_acc(descending: bool) -> Vec<String> {
    let mut runs: Vec<_> = RUNS.iter().collect();
    runs.sort_by(|a, b| a.2.total_cmp(&b.2));
    if descending {
        runs.reverse();
    }
    runs.iter().map(|r| r.1.to_owned()).collect()
}

fn run_id(server: &TestServer, name: &str) -> String {
    let page = server.get("/api/v1/runs?limit=100").ok();
    page["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["name"] == name)
        .and_then(|r| r["id"].as_str())
        .expect("the run is listed")
        .to_owned()
}

#[test]
fn health_and_experiments() {
    let server = server();
    let health = server.get("/api/v1/health").ok();
    assert_eq!(health["status"], "ok");
    assert!(health["version"].is_string());
    let exps = server.get("/api/v1/experiments").ok();
    let mut counts: Vec<(String, u64)> = exps
        .as_array()
        .expect("experiments")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name").to_owned(),
                e["runs"].as_u64().expect("runs"),
            )
        })
        .collect();
    counts.sort();
    assert_eq!(counts, [("nlp".to_owned(), 2), ("vision".to_owned(), 5)]);
}

#[test]
fn runs_sort_by_a_metric_and_page() {
    let server = server();
    let page = server.get("/api/v1/runs?limit=2&sort=acc").ok();
    assert_eq!(page["total"], RUNS.len());
    assert_eq!(names(&page), by_acc(true)[..2]);
    let page = server.get("/api/v1/runs?limit=3&sort=acc:asc").ok();
    assert_eq!(names(&page), by_acc(false)[..3]);
    let page = server.get("/api/v1/runs?sort=acc:desc").ok();
    assert_eq!(names(&page), by_acc(true));

    for limit in 1..=RUNS.len() + 1 {
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = server
                .get(&format!(
                    "/api/v1/runs?sort=acc&limit={limit}&offset={offset}"
                ))
                .ok();
            assert_eq!(page["total"], RUNS.len());
            let got = names(&page);
            assert!(got.len() <= limit);
            if got.is_empty() {
                break;
            }
            offset += got.len();
            seen.extend(got);
        }
        assert_eq!(seen, by_acc(true), "limit {limit}");
    }

    // Newest first without a sort.
    let page = server.get("/api/v1/runs").ok();
    let newest: Vec<String> = RUNS.iter().rev().map(|r| r.1.to_owned()).collect();
    assert_eq!(names(&page), newest);

    let page = server.get("/api/v1/runs?experiment=nlp&sort=acc").ok();
    assert_eq!(page["total"], 2);
    assert_eq!(names(&page), ["n-a", "n-b"]);
    let page = server.get("/api/v1/runs?status=running").ok();
    assert_eq!(names(&page), ["v-d"]);
    let page = server.get("/api/v1/runs?owner=tester&limit=0").ok();
    assert_eq!(page["total"], RUNS.len());
    assert_eq!(names(&page), Vec::<String>::new());
}

#[test]
fn a_listing_keeps_non_finite_latest_values() {
    // /api/v1/runs/{id} writes non-finite values as "NaN"/"Infinity"; the listing must not turn
    // them into null (the UI could not tell NaN from infinity from "not logged").
    let server = server();
    let page = server.get("/api/v1/runs?limit=100").ok();
    let vb = page["runs"]
        .as_array()
        .expect("runs")
        .iter()
        .find(|r| r["name"] == "v-b")
        .expect("v-b")
        .clone();
    assert_eq!(vb["metrics"]["grad"], json!("Infinity"), "{vb}");
}

#[test]
fn one_run_by_id_and_by_prefix() {
    let server = server();
    let id = run_id(&server, "v-b");
    let run = server.get(&format!("/api/v1/runs/{id}")).ok();
    assert_eq!(run["id"], id.as_str());
    assert_eq!(run["name"], "v-b");
    assert_eq!(run["experiment_name"], "vision");
    assert_eq!(run["status"], "finished");
    assert_eq!(run["owner"], "tester");
    assert_eq!(run["params"], json!({ "lr": "0.01" }));
    assert_eq!(run["metrics"]["acc"]["last"], 0.93);
    assert_eq!(run["metrics"]["acc"]["count"], 2);
    assert_eq!(run["metrics"]["grad"]["last"], "Infinity");
    assert_eq!(run["metrics"]["train/loss"]["count"], CURVE_POINTS);
    let by_prefix = server.get(&format!("/api/v1/runs/{}", &id[..26])).ok();
    assert_eq!(by_prefix["id"], id.as_str());

    let resp = server.get("/api/v1/runs/ffffffffffffffffffffffffffffffff");
    assert_api_error(&resp, 404, "NOT_FOUND");
    let resp = server.get("/api/v1/runs/not-an-id");
    assert!(
        matches!(resp.status, 400 | 404),
        "{} {}",
        resp.status,
        resp.text()
    );
    assert!(resp.json()["code"].is_string(), "{}", resp.text());
    // Every run id starts with "0": ambiguous.
    let resp = server.get("/api/v1/runs/0");
    assert_api_error(&resp, 400, "INVALID_ARGUMENT");
}

#[test]
fn metric_series_whole_and_downsampled() {
    let server = server();
    let id = run_id(&server, "v-b");
    let points = server
        .get(&format!("/api/v1/runs/{id}/metrics/train/loss"))
        .ok();
    let points = points.as_array().expect("points");
    assert_eq!(points.len(), CURVE_POINTS as usize);
    assert_eq!(points[0], json!([0, 10_000, 1.0]));
    assert_eq!(points[100], json!([100, 10_100, "NaN"]));
    assert_eq!(points[200], json!([200, 10_200, "Infinity"]));
    assert_eq!(points[300], json!([300, 10_300, "-Infinity"]));
    assert_eq!(points[999], json!([999, 10_999, 0.001]));

    for n in [1_usize, 7, 10, 100, 5_000] {
        let buckets = server
            .get(&format!("/api/v1/runs/{id}/metrics/train/loss?buckets={n}"))
            .ok();
        let buckets = buckets.as_array().expect("buckets");
        assert!(
            !buckets.is_empty() && buckets.len() <= n,
            "{n}: {} buckets",
            buckets.len()
        );
        let count: u64 = buckets
            .iter()
            .map(|b| b["count"].as_u64().expect("count"))
            .sum();
        assert_eq!(count, CURVE_POINTS as u64, "buckets={n}");
        let nonfinite: u64 = buckets
            .iter()
            .map(|b| b["nonfinite"].as_u64().expect("nonfinite"))
            .sum();
        assert_eq!(nonfinite, 3, "buckets={n}");
        assert_eq!(buckets[0]["step_lo"], 0);
        assert_eq!(buckets[buckets.len() - 1]["step_hi"], CURVE_POINTS - 1);
        for b in buckets {
            let keys: Vec<&String> = b.as_object().expect("bucket").keys().collect();
            assert_eq!(
                keys,
                [
                    "count",
                    "first",
                    "last",
                    "max",
                    "min",
                    "nonfinite",
                    "step_hi",
                    "step_lo"
                ]
            );
        }
        let max = buckets
            .iter()
            .filter_map(|b| b["max"].as_f64())
            .fold(f64::MIN, f64::max);
        assert_eq!(max, 1.0, "buckets={n}: max skips the non-finite values");
    }
    let ranged = server
        .get(&format!(
            "/api/v1/runs/{id}/metrics/train/loss?buckets=10&lo=500&hi=599"
        ))
        .ok();
    let count: u64 = ranged
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(count, 100);
}

#[test]
fn errors_are_code_and_message() {
    let server = server();
    let id = run_id(&server, "v-b");
    let cases = [
        (
            "/api/v1/runs?status=sideways".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/api/v1/runs?limit=many".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
        ("/api/v1/runs?limit=-1".to_owned(), 400, "INVALID_ARGUMENT"),
        (
            "/api/v1/runs?offset=%FF".to_owned(),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            "/api/v1/runs?experiment=no-such".to_owned(),
            404,
            "NOT_FOUND",
        ),
        (
            format!("/api/v1/runs/{id}/metrics/never-logged"),
            404,
            "NOT_FOUND",
        ),
        (
            format!("/api/v1/runs/{id}/metrics/acc?buckets=lots"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            format!("/api/v1/runs/{id}/metrics/acc?buckets=-3"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            format!("/api/v1/runs/{id}/metrics/acc?buckets=4&lo=1"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            format!("/api/v1/runs/{id}/artifacts/none.bin"),
            404,
            "NOT_FOUND",
        ),
        (
            "/api/v1/runs/ffffffffffffffffffffffffffffffff/metrics/acc".to_owned(),
            404,
            "NOT_FOUND",
        ),
    ];
    for (target, status, code) in &cases {
        let resp = server.get(target);
        assert_api_error(&resp, *status, code);
        assert_eq!(
            resp.header("content-type"),
            Some("application/json"),
            "{target}"
        );
    }
    // The listing is unharmed by all of that.
    assert_eq!(server.get("/api/v1/runs").ok()["total"], RUNS.len());
}

#[test]
fn an_unknown_api_path_is_code_and_message() {
    let server = server();
    let resp = server.get("/api/v1/no-such-thing");
    assert_api_error(&resp, 404, "NOT_FOUND");
}
