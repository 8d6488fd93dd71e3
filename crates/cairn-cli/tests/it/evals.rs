//! `cairn eval log|list|show`: overall and per-slice metrics from the command line (each `-m`
//! belongs to the `--slice` before it), a by-group table as fairlearn writes it, the dataset
//! digest, and the fairness figures computed from the slices.

use serde_json::{Value, json};

use crate::{Ws, arg, assert_mentions};

fn close(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-12)
}

/// The fairness figure of `metric` over `attribute` in one `eval show --json` view.
fn figure<'a>(view: &'a Value, metric: &str, attribute: &str) -> &'a Value {
    view["fairness"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|f| f["metric"] == metric && f["attribute"] == attribute)
        })
        .unwrap_or_else(|| panic!("no figure for {metric} over {attribute} in {view:#}"))
}

/// Hand-computed: acc over sex {0.91, 0.85} → difference 0.06, ratio 0.85 / 0.91; selection
/// rate {0.30, 0.45} → demographic parity difference 0.15, ratio 0.30 / 0.45.
#[test]
fn metrics_after_a_slice_are_that_slices_and_fairness_is_computed_from_them() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let out = ws.ok(&[
        "eval",
        "log",
        &id,
        "--benchmark",
        "credit-test",
        "--dataset",
        "blake3:9f2c01",
        "-m",
        "acc=0.88",
        "--slice",
        "sex=female",
        "-m",
        "acc=0.85",
        "-m",
        "selection_rate=0.30",
        "--slice",
        "sex = male",
        "-m",
        "acc=0.91",
        "-m",
        "selection_rate=0.45",
    ]);
    assert_mentions(
        &out,
        &["evaluation credit-test", "2 slices", "demographic_parity"],
    );

    let views = ws.json(&["eval", "show", &id]);
    let view = &views[0];
    assert_eq!(view["benchmark"], "credit-test");
    assert_eq!(view["dataset"], "blake3:9f2c01");
    assert_eq!(view["metrics"], json!({"acc": 0.88}));
    assert_eq!(
        view["slices"],
        json!({
            "sex=female": {"acc": 0.85, "selection_rate": 0.30},
            "sex=male": {"acc": 0.91, "selection_rate": 0.45},
        }),
        "slices are keyed in their one spelling, each with the metrics that followed it"
    );
    assert_eq!(view["logged_by"], "tester");

    let acc = figure(view, "acc", "sex");
    assert!(close(&acc["difference"], 0.91 - 0.85), "{acc}");
    assert!(close(&acc["ratio"], 0.85 / 0.91), "{acc}");
    assert_eq!(
        (&acc["lowest"], &acc["highest"], &acc["groups"]),
        (&json!("sex=female"), &json!("sex=male"), &json!(2))
    );
    let dp = figure(view, "demographic_parity", "sex");
    assert!(close(&dp["difference"], 0.45 - 0.30), "{dp}");
    assert!(close(&dp["ratio"], 0.30 / 0.45), "{dp}");

    // The text forms name the same figures.
    let shown = ws.ok(&["eval", "show", &id, "credit-test"]);
    assert_mentions(
        &shown,
        &[
            "evaluation credit-test",
            "blake3:9f2c01",
            "acc=0.8800",
            "sex=female",
            "0.0600",
        ],
    );
    let listed = ws.ok(&["eval", "list", &id]);
    assert_mentions(&listed, &["credit-test", "selection_rate 0.1500 over sex"]);

    // Logging the benchmark again replaces it whole.
    ws.ok(&["eval", "log", &id, "-b", "credit-test", "-m", "acc=0.5"]);
    let views = ws.json(&["eval", "show", &id]);
    assert_eq!(views.as_array().map(Vec::len), Some(1));
    assert_eq!(views[0]["metrics"], json!({"acc": 0.5}));
    assert!(views[0].get("slices").is_none() && views[0]["fairness"] == json!([]));
}

/// fairlearn's `MetricFrame(...).by_group.to_csv()` over two sensitive features: the group
/// columns come first, so each row is an intersection slice of both.
#[test]
fn a_fairlearn_by_group_csv_becomes_intersection_slices() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let csv = ws.file(
        "by_group.csv",
        "race,sex,accuracy,true_positive_rate,false_positive_rate\n\
         a,f,0.8,0.75,0.10\n\
         a,m,0.9,0.80,0.20\n\
         b,f,0.7,0.50,0.05\n\
         b,m,,0.90,0.25\n",
    );
    let view = ws.json(&[
        "eval",
        "log",
        &id,
        "-b",
        "holdout",
        "--file",
        arg(&csv),
        "-m",
        "accuracy=0.82",
    ]);
    assert_eq!(view["metrics"], json!({"accuracy": 0.82}));
    assert_eq!(
        view["slices"]["race=a&sex=f"],
        json!({"accuracy": 0.8, "true_positive_rate": 0.75, "false_positive_rate": 0.10})
    );
    // An empty cell is NaN, as pandas writes it, and takes no part in the figures.
    assert_eq!(view["slices"]["race=b&sex=m"]["accuracy"], "NaN");
    let acc = figure(&view, "accuracy", "race&sex");
    assert_eq!(acc["groups"], 3);
    assert!(close(&acc["difference"], 0.9 - 0.7), "{acc}");
    // Equalized odds: the worse of TPR (0.90 - 0.50, 0.50 / 0.90) and FPR (0.25 - 0.05,
    // 0.05 / 0.25).
    let eo = figure(&view, "equalized_odds", "race&sex");
    assert!(close(&eo["difference"], 0.90 - 0.50), "{eo}");
    assert!(close(&eo["ratio"], 0.05 / 0.25), "{eo}");
}

#[test]
fn bad_evaluations_are_refused_naming_what_is_wrong_and_store_nothing() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    for (args, why) in [
        (
            vec!["-b", "t", "--slice", "sex=f"],
            "slice 'sex=f' has no metrics",
        ),
        (
            vec!["-b", "t", "--slice", "female", "-m", "acc=1"],
            "'female' has no '='",
        ),
        (vec!["-b", "t.v", "-m", "acc=1"], "benchmark name 't.v'"),
        (vec!["-b", "t", "-m", "acc=high"], "acc"),
        (vec!["-b", "t"], "has no metrics"),
        (
            vec!["-b", "t", "--attribute", "sex", "-m", "acc=1"],
            "--attribute names the groups of a --file",
        ),
        (
            vec!["-b", "t", "--dataset", "no such file", "-m", "acc=1"],
            "neither a file or directory here nor a digest",
        ),
    ] {
        let mut all = vec!["eval", "log", id.as_str()];
        all.extend(args);
        let err = ws.fail(&all);
        assert_mentions(&err, &[why]);
    }
    let bad = ws.file("bad.csv", "sex,acc\nf,0.9\nf,0.8\n");
    let err = ws.fail(&["eval", "log", &id, "-b", "t", "--file", arg(&bad)]);
    assert_mentions(&err, &["bad.csv", "appears twice"]);
    assert_eq!(ws.json(&["eval", "show", &id]), json!([]));
    assert_mentions(&ws.ok(&["eval", "list", &id]), &["no evaluations"]);
    assert_mentions(
        &ws.fail(&["eval", "show", &id, "other"]),
        &["has no evaluation 'other'"],
    );
}

/// `--dataset PATH` digests the file as a run's datasets are; `--report FILE` stores it as an
/// artifact of the run and lists it on the evaluation.
#[test]
fn a_dataset_path_is_digested_and_a_report_file_uploaded() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let data = ws.file("test.csv", "x,y\n1,0\n");
    let report = ws.file("report.html", "<p>fair enough</p>");
    let view = ws.json(&[
        "eval",
        "log",
        &id,
        "-b",
        "t",
        "--dataset",
        arg(&data),
        "--report",
        arg(&report),
        "-m",
        "acc=1",
    ]);
    let digest = view["dataset"].as_str().unwrap_or_default();
    assert!(digest.len() > 20, "a digest of the file: {view:#}");
    assert_eq!(view["reports"], json!(["eval/t/report.html"]));
    let run = ws.show(&id);
    assert!(
        run["artifacts"].get("eval/t/report.html").is_some(),
        "{run:#}"
    );
}
