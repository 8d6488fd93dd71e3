//! Cairn's own JSON API under `/api/v1/`: health, experiments, run listings with sorting and
//! paging, one run, metric series whole and downsampled; errors as `{"code","message"}`.

use cairn_core::{MetricPoint as Point, NewRun, Workspace};
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

fn seed(ws: &Workspace) {
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
            ws.set_status(run.id, *status, None).expect("end run");
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
    // MLflow's experiment "0" is there from the start, listed once it holds runs.
    assert_eq!(counts, [("nlp".to_owned(), 2), ("vision".to_owned(), 5)]);
}

#[test]
fn runs_sort_by_a_metric_and_page() {
    let server = server();
    let page = server
        .get("/api/v1/runs?limit=2&order=metrics.acc+DESC")
        .ok();
    assert_eq!(page["total"], RUNS.len());
    assert_eq!(names(&page), by_acc(true)[..2]);
    let page = server
        .get("/api/v1/runs?limit=3&order=metrics.acc+ASC")
        .ok();
    assert_eq!(names(&page), by_acc(false)[..3]);
    let page = server.get("/api/v1/runs?order=metrics.acc+DESC").ok();
    assert_eq!(names(&page), by_acc(true));

    for limit in 1..=RUNS.len() + 1 {
        let mut seen = Vec::new();
        let mut offset = 0;
        loop {
            let page = server
                .get(&format!(
                    "/api/v1/runs?order=metrics.acc+DESC&limit={limit}&offset={offset}"
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

    let page = server
        .get("/api/v1/runs?experiment=nlp&order=metrics.acc+DESC")
        .ok();
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

fn ids(server: &TestServer) -> Vec<String> {
    RUNS.iter().map(|r| run_id(server, r.1)).collect()
}

#[test]
fn a_chart_comes_as_svg_with_the_map_of_what_was_drawn() {
    let server = server();
    let vb = run_id(&server, "v-b");
    let chart = server
        .get(&format!(
            "/api/v1/chart?runs={vb}&metric=train/loss&width=600&height=300"
        ))
        .ok();
    let svg = chart["svg"].as_str().expect("svg text");
    assert!(
        svg.starts_with("<svg") && svg.contains("</svg>"),
        "{svg:.200}"
    );
    let map = &chart["map"];
    assert_eq!(map["kind"], "line");
    let series = &map["series"][0];
    assert_eq!(series["id"], vb.as_str());
    assert_eq!(series["label"], "v-b");
    assert_eq!(series["points"], CURVE_POINTS);
    assert_eq!(series["nonfinite"], 3, "NaN, inf and -inf are marked");
    // Every point is in some column; no spike is dropped: the first step's 1.0 is the maximum.
    let columns = series["columns"].as_array().expect("columns");
    let counted: u64 = columns.iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, CURVE_POINTS as u64);
    let max = columns
        .iter()
        .filter_map(|c| c["max"].as_f64())
        .fold(f64::MIN, f64::max);
    assert_eq!(max, 1.0);

    // Zoom: the range alone, every point of it.
    let zoomed = server
        .get(&format!(
            "/api/v1/chart?runs={vb}&metric=train/loss&lo=500&hi=600&width=600&height=300"
        ))
        .ok();
    let map = &zoomed["map"];
    let columns = map["series"][0]["columns"].as_array().expect("columns");
    let counted: u64 = columns.iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(counted, 101, "steps 500..=600");
    assert!(columns.iter().all(|c| {
        let (lo, hi) = (c["x_lo"].as_f64().unwrap(), c["x_hi"].as_f64().unwrap());
        (500.0..=600.0).contains(&lo) && (500.0..=600.0).contains(&hi)
    }));
    assert!(map["x"]["lo"].as_f64().unwrap() >= 499.0);
    assert!(map["x"]["hi"].as_f64().unwrap() <= 601.0);

    // Smoothing, log y, dark theme and grouping are all accepted and reflected in the map.
    let all = ids(&server).join(",");
    let grouped = server
        .get(&format!(
            "/api/v1/chart?runs={all}&metric=acc&group_by=params.lr&smooth=0.5&dark=true"
        ))
        .ok();
    assert_eq!(grouped["map"]["smoothing"], 0.5);
    assert_eq!(
        grouped["map"]["groups"].as_array().expect("groups").len(),
        RUNS.len(),
        "each run has its own lr"
    );
}

#[test]
fn parallel_coordinates_default_to_the_params_that_differ_and_a_metric() {
    let server = server();
    let all = ids(&server).join(",");
    let chart = server
        .get(&format!("/api/v1/chart?kind=parallel&runs={all}"))
        .ok();
    let map = &chart["map"];
    assert_eq!(map["kind"], "parallel");
    let axes: Vec<&str> = map["axes"]
        .as_array()
        .expect("axes")
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(axes, ["params.lr", "metrics.acc"]);
    assert_eq!(map["rows"].as_array().expect("rows").len(), RUNS.len());

    let chosen = server
        .get(&format!(
            "/api/v1/chart?kind=parallel&runs={all}&fields=metrics.acc,params.lr"
        ))
        .ok();
    assert_eq!(chosen["map"]["axes"][0]["name"], "metrics.acc");
}

#[test]
fn chart_requests_that_cannot_be_drawn_say_why() {
    let server = server();
    let vb = run_id(&server, "v-b");
    let cases = [
        (
            "/api/v1/chart?metric=acc".to_owned(),
            400,
            "INVALID_ARGUMENT",
            "at least one run",
        ),
        (
            format!("/api/v1/chart?runs={vb}"),
            400,
            "INVALID_ARGUMENT",
            "needs a metric",
        ),
        (
            format!("/api/v1/chart?runs={vb}&metric=nope"),
            404,
            "NOT_FOUND",
            "nope",
        ),
        (
            format!("/api/v1/chart?runs={vb}&metric=acc&lo=3"),
            400,
            "INVALID_ARGUMENT",
            "both lo and hi",
        ),
        (
            format!("/api/v1/chart?runs={vb}&metric=acc&lo=3&hi=1"),
            400,
            "INVALID_ARGUMENT",
            "x range",
        ),
        (
            format!("/api/v1/chart?runs={vb}&metric=acc&width=3"),
            400,
            "INVALID_ARGUMENT",
            "3",
        ),
        (
            format!("/api/v1/chart?runs={vb}&metric=acc&smooth=2"),
            400,
            "INVALID_ARGUMENT",
            "smoothing",
        ),
        (
            format!("/api/v1/chart?runs={vb}&metric=acc&kind=pie"),
            400,
            "INVALID_ARGUMENT",
            "pie",
        ),
        (
            format!("/api/v1/chart?runs={vb}&metric=acc&colour=red"),
            400,
            "INVALID_ARGUMENT",
            "colour",
        ),
        (
            "/api/v1/chart?runs=ffffffff&metric=acc".to_owned(),
            404,
            "NOT_FOUND",
            "ffffffff",
        ),
        (
            format!("/api/v1/chart?kind=parallel&runs={vb}"),
            400,
            "INVALID_ARGUMENT",
            "two axes",
        ),
    ];
    for (target, status, code, needle) in cases {
        let message = assert_api_error(&server.get(&target), status, code);
        assert!(message.contains(needle), "{target}: {message}");
    }
}

#[test]
fn saved_views_are_created_listed_replaced_and_deleted() {
    use crate::http::Request;
    let server = server();
    let put = |name: &str, body: Value| {
        server.send(
            &Request::new("PUT", format!("/api/v1/views/{name}")).json_bytes(body.to_string()),
        )
    };
    let saved = put(
        "good%20runs",
        json!({"query": "metrics.acc > 0.6", "order": "metrics.acc desc", "columns": ["params.lr"]}),
    )
    .ok();
    assert_eq!(saved["name"], "good runs");
    let listed = server.get("/api/v1/views").ok();
    assert_eq!(listed, json!([saved]));
    // What the view finds: the query runs through /search like any other.
    let page = server.get("/api/v1/search?q=metrics.acc%20%3E%200.6").ok();
    assert_eq!(page["total"], 4);

    let message = assert_api_error(
        &put("broken", json!({"query": "metrics.acc >"})),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(message.contains("column"), "{message}");
    assert_api_error(&put("x", json!({"q": "a"})), 400, "INVALID_ARGUMENT");
    assert_api_error(
        &server.send(&Request::new("PUT", "/api/v1/views/x").json_bytes("{")),
        400,
        "INVALID_ARGUMENT",
    );
    assert_eq!(
        server.get("/api/v1/views").ok(),
        json!([saved]),
        "nothing else was saved"
    );

    put("good%20runs", json!({"query": "status:finished"})).ok();
    assert_eq!(
        server.get("/api/v1/views").ok()[0]["query"],
        "status:finished"
    );
    server
        .send(&Request::new("DELETE", "/api/v1/views/good%20runs"))
        .ok();
    assert_eq!(server.get("/api/v1/views").ok(), json!([]));
    assert_api_error(
        &server.send(&Request::new("DELETE", "/api/v1/views/good%20runs")),
        404,
        "NOT_FOUND",
    );
}

#[test]
fn sync_status_names_this_device_and_a_team_once_there_is_one() {
    let server = server();
    let alone = server.get("/api/v1/sync").ok();
    let device = alone["device"].as_str().expect("device id").to_owned();
    assert!(device.len() >= 52, "an iroh endpoint id: {device}");
    assert_eq!(alone["team"], Value::Null);
    assert_eq!(alone["peers"], json!([]));
    // The same device the next time: the key is kept in the workspace.
    assert_eq!(server.get("/api/v1/sync").ok()["device"], device.as_str());

    let ws = Workspace::open(server.dir(), "tester").expect("open the workspace");
    ws.team_create("vision", "tester@example.com")
        .expect("create a team");
    assert_eq!(server.get("/api/v1/sync").ok()["team"], "vision");
}

/// `POST /api/v1/import/tensorboard`: a logdir on this machine imported once, found again, and
/// a broken event file refused with its name and byte and nothing stored.
#[test]
fn a_tensorboard_logdir_imports_over_http() {
    use crate::http::Request;
    let server = TestServer::start();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let logdir = tmp.path().join("tb");
    std::fs::create_dir_all(logdir.join("gpu-box")).expect("run directory");
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/gpu-box/hparams.tfevents"
        ),
        logdir.join("gpu-box/hparams.tfevents"),
    )
    .expect("fixture");
    let body = json!({"logdir": logdir.to_str().expect("a UTF-8 path"), "experiment": "tb"});
    let report = server
        .send(&Request::post("/api/v1/import/tensorboard", &body))
        .ok();
    assert_eq!(report["runs_created"], 1);
    assert_eq!(report["params"], 5);
    assert_eq!(report["points"], 2);
    let again = server
        .send(&Request::post("/api/v1/import/tensorboard", &body))
        .ok();
    assert_eq!(
        (again["runs_unchanged"].clone(), again["points"].clone()),
        (json!(1), json!(0))
    );

    std::fs::write(logdir.join("gpu-box/z.tfevents"), b"0123456789abcdef").expect("a bad file");
    let message = assert_api_error(
        &server.send(&Request::post("/api/v1/import/tensorboard", &body)),
        400,
        "INVALID_ARGUMENT",
    );
    assert!(message.contains("z.tfevents: at byte 0: "), "{message}");
    let page = server.get("/api/v1/runs").ok();
    assert_eq!(page["runs"].as_array().map(Vec::len), Some(1));
}
