//! `cairn plot` and `cairn compare`: charts and reports from the runs' real series.

use super::*;

/// A run whose loss curve has one spike in 5,000 steps.
fn spiky_run(ws: &Ws, name: &str, optimizer: &str, spike_at: usize) -> String {
    let id = ws.start_run(&["-n", name, "-p", &format!("optimizer={optimizer}")]);
    let mut csv = String::from("step,loss\n");
    for s in 0..5000 {
        let v = if s == spike_at {
            97.5
        } else {
            1.0 / (1.0 + s as f64 / 100.0)
        };
        csv.push_str(&format!("{s},{v}\n"));
    }
    let file = ws.file(&format!("{name}.csv"), csv);
    ws.ok(&["run", "log", &id, "--csv", arg(&file)]);
    id
}

#[test]
fn plot_writes_an_svg_that_keeps_a_single_spike_and_groups_runs() {
    let ws = Ws::new();
    let a = spiky_run(&ws, "a", "adam", 3217);
    let b = spiky_run(&ws, "b", "sgd", 10);
    let out = ws.tmp().join("loss.svg");
    let drawn = ws.json(&[
        "plot",
        &a,
        &b,
        "--metric",
        "loss",
        "--group-by",
        "params.optimizer",
        "--smooth",
        "0.6",
        "-o",
        arg(&out),
    ]);
    let svg = std::fs::read_to_string(&out).unwrap();
    assert!(svg.contains("<svg"), "{}", &svg[..80.min(svg.len())]);
    // The y axis reaches the spike's value: it was not sampled away among 5,000 points.
    assert_eq!(drawn["map"]["kind"], "line");
    let y_hi = drawn["map"]["y"]["hi"].as_f64().unwrap();
    assert!(y_hi >= 97.5, "the y axis ends at {y_hi}, below the spike");
    assert_eq!(drawn["runs"], 2);
    for legend in ["adam", "sgd", "params.optimizer"] {
        assert!(svg.contains(legend), "legend lacks {legend}");
    }
}

#[test]
fn plot_zooms_into_an_x_range_at_full_resolution() {
    let ws = Ws::new();
    let a = spiky_run(&ws, "a", "adam", 3217);
    let out = ws.tmp().join("zoom.svg");
    let drawn = ws.json(&[
        "plot",
        &a,
        "--metric",
        "loss",
        "--x-range",
        "3200..3300",
        "-o",
        arg(&out),
    ]);
    let series = &drawn["map"]["series"][0];
    // Every step of the range, one per column: the spike at 3217 among them, nothing outside.
    assert_eq!(series["points"], 101);
    let columns = series["columns"].as_array().unwrap();
    assert!(columns.iter().all(|c| c["count"] == 1));
    assert!(
        columns
            .iter()
            .any(|c| c["x_lo"] == 3217.0 && c["max"] == 97.5)
    );
    assert!(drawn["map"]["x"]["lo"].as_f64().unwrap() >= 3199.0);
    assert!(drawn["map"]["x"]["hi"].as_f64().unwrap() <= 3301.0);
    for bad in ["3300..3200", "3200-3300", "a..b"] {
        let err = ws.fail(&[
            "plot",
            &a,
            "--metric",
            "loss",
            "--x-range",
            bad,
            "-o",
            arg(&out),
        ]);
        assert!(err.contains(bad) || err.contains("range"), "{bad}: {err}");
    }
}

#[test]
fn plot_writes_png_by_extension_and_refuses_unknown_ones() {
    let ws = Ws::new();
    let a = spiky_run(&ws, "a", "adam", 100);
    let png = ws.tmp().join("loss.png");
    ws.ok(&["plot", &a, "--metric", "loss", "--log", "-o", arg(&png)]);
    assert_eq!(&std::fs::read(&png).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    let err = ws.fail(&[
        "plot",
        &a,
        "--metric",
        "loss",
        "-o",
        arg(&ws.tmp().join("loss.gif")),
    ]);
    assert_mentions(&err, &["loss.gif", ".svg or .png"]);
    let err = ws.fail(&["plot", &a, "--metric", "nope", "-o", arg(&png)]);
    assert_mentions(&err, &["nope"]);
}

#[test]
fn compare_writes_a_report_with_the_differing_params_first() {
    let ws = Ws::new();
    let a = spiky_run(&ws, "run-a", "adam", 100);
    let b = spiky_run(&ws, "run-b", "sgd", 200);
    let out = ws.tmp().join("report.html");
    ws.ok(&["compare", &a, &b, "-o", arg(&out)]);
    let html = std::fs::read_to_string(&out).unwrap();
    for needle in ["run-a", "run-b", "optimizer", "adam", "sgd", "<svg"] {
        assert!(html.contains(needle), "report lacks {needle}");
    }
    let err = ws.fail(&["compare", &a, "-o", arg(&out)]);
    assert!(!err.is_empty());
}

#[test]
fn search_finds_runs_with_the_query_language_and_says_where_a_typo_is() {
    let ws = Ws::new();
    let a = ws.start_run(&[
        "-n",
        "smooth-adam",
        "-p",
        "optimizer=adam",
        "--owner",
        "alice",
        "--notes",
        "Tried label smoothing 0.1",
    ]);
    ws.ok(&["run", "log", &a, "-m", "acc=0.93"]);
    let b = ws.start_run(&["-n", "plain-sgd", "-p", "optimizer=sgd", "--owner", "bob"]);
    ws.ok(&["run", "log", &b, "-m", "acc=0.95"]);
    let c = ws.start_run(&[
        "-n",
        "low-adam",
        "-p",
        "optimizer=adam",
        "--owner",
        "alice",
        "--notes",
        "label smoothing again",
    ]);
    ws.ok(&["run", "log", &c, "-m", "acc=0.5"]);

    let page = ws.json(&[
        "search",
        "owner:alice and params.optimizer = 'adam' and metrics.acc > 0.9 and \"label smoothing\"",
    ]);
    let names: Vec<&str> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["smooth-adam"]);
    let page = ws.json(&[
        "search",
        "params.optimizer = 'sgd' or metrics.acc < 0.6",
        "--sort",
        "metrics.acc DESC",
    ]);
    let names: Vec<&str> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["plain-sgd", "low-adam"]);
    assert_eq!(page["total"], 2);

    let csv = ws.ok(&["search", "owner:bob", "--csv", "--columns", "metrics.acc"]);
    assert_eq!(
        csv.lines().next().unwrap(),
        "id,experiment,name,owner,status,started,metrics.acc"
    );
    assert!(csv.contains(&b) && csv.contains("0.9500"), "{csv}");

    let err = ws.fail(&["search", "metrics.acc > 0.9 and )"]);
    assert_mentions(&err, &["')'", "column 23"]);
    let err = ws.fail(&["search", "metrics.acc > 0.9 and colour:red"]);
    assert_mentions(&err, &["colour"]);
    ws.ok(&["index", "rebuild"]);
    assert_eq!(ws.json(&["search", "owner:alice"])["total"], 2);
}

#[test]
fn bulk_tags_owners_and_saved_views_work_on_a_query() {
    let ws = Ws::new();
    let a = ws.start_run(&["-n", "a", "-p", "optimizer=adam", "--owner", "alice"]);
    ws.ok(&["run", "log", &a, "-m", "acc=0.95"]);
    let b = ws.start_run(&["-n", "b", "-p", "optimizer=sgd", "--owner", "bob"]);
    ws.ok(&["run", "log", &b, "-m", "acc=0.85"]);
    let c = ws.start_run(&["-n", "c", "-p", "optimizer=adam", "--owner", "bob"]);
    ws.ok(&["run", "log", &c, "-m", "acc=0.91"]);

    assert_mentions(
        &ws.ok(&["tag", "add", "metrics.acc > 0.9", "shortlist"]),
        &["tagged 2 runs"],
    );
    assert_eq!(ws.show(&a)["tags"]["shortlist"], "true");
    assert!(ws.show(&b)["tags"].get("shortlist").is_none());
    assert_eq!(ws.json(&["search", "tag:shortlist"])["total"], 2);

    assert_mentions(
        &ws.ok(&["owner", "set", "params.optimizer = 'adam'", "carol"]),
        &["2 runs"],
    );
    assert_eq!(ws.show(&c)["owner"], "carol");
    assert_eq!(ws.json(&["search", "owner:carol"])["total"], 2);

    ws.ok(&[
        "view",
        "save",
        "good-adam",
        "params.optimizer = 'adam' and metrics.acc > 0.9",
        "--sort",
        "metrics.acc DESC",
        "--columns",
        "metrics.acc",
    ]);
    let page = ws.json(&["search", "--view", "good-adam"]);
    let names: Vec<&str> = page["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(array(ws.json(&["view", "list"]))[0]["name"], "good-adam");
    let err = ws.fail(&["view", "save", "broken", "metrics.acc >"]);
    assert_mentions(&err, &["column"]);
    ws.ok(&["view", "rm", "good-adam"]);
    assert_mentions(
        &ws.fail(&["search", "--view", "good-adam"]),
        &["no saved view 'good-adam'"],
    );
}
