//! `cairn cost`: prices, a run's cost, the report as JSON and CSV, budgets crossed (exit status
//! 3), an imported `nvidia-smi` utilisation trace, and bad input named.

use super::*;

/// The real H200 utilisation trace (`nvidia-smi --query-gpu=… -lms 250`).
const FIXTURE_TRACE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/gpu-box/util-trace.csv"
);

/// A finished run of `exp` priced by its own hourly price.
fn priced_run(ws: &Ws, exp: &str, hourly: &str) -> String {
    let id = ws.start_run(&["-e", exp, "--hourly-price", hourly]);
    ws.ok(&["run", "end", &id]);
    id
}

#[test]
fn a_runs_own_price_costs_it_and_the_report_sums_families() {
    let ws = Ws::new();
    let a = priced_run(&ws, "resnet", "36000");
    let b = priced_run(&ws, "resnet", "36000");
    let unpriced = ws.start_run(&["-e", "bert", "--no-infra"]);
    ws.ok(&["run", "end", &unpriced]);

    let cost_a = ws.json(&["cost", "run", &a]);
    assert_eq!(cost_a["cost"]["source"], "run");
    let usd_a = cost_a["cost"]["usd"].as_f64().unwrap();
    let hours_a = cost_a["cost"]["hours"].as_f64().unwrap();
    assert!((usd_a - hours_a * 36000.0).abs() < 1e-9, "{cost_a}");
    assert!(cost_a.get("chart").is_none(), "--json leaves the chart out");
    let un = ws.json(&["cost", "run", &unpriced]);
    assert_eq!(un["cost"]["source"], "unpriced");
    assert!(un["cost"].get("usd").is_none(), "unpriced is not $0: {un}");
    assert!(ws.ok(&["cost", "run", &unpriced]).contains("unpriced"));

    let usd_b = ws.json(&["cost", "run", &b])["cost"]["usd"]
        .as_f64()
        .unwrap();
    let report = ws.json(&["cost", "--by", "exp"]);
    let families = array(report["families"].clone());
    assert_eq!(families.len(), 2, "{report}");
    assert_eq!(families[0]["name"], "resnet");
    assert_eq!(families[0]["runs"], 2);
    let spent = families[0]["usd"].as_f64().unwrap();
    assert!((spent - (usd_a + usd_b)).abs() < 1e-9 * spent, "{spent}");
    assert_eq!(families[1]["name"], "bert");
    assert_eq!(families[1]["unpriced_runs"], 1);
    assert_eq!(families[1]["usd"], 0.0);

    let table = ws.ok(&["cost"]);
    assert_mentions(&table, &["resnet", "bert", "total", "spend", "idle"]);
    let csv = ws.ok(&["cost", "--csv", "--every", "day", "--periods", "3"]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(
        lines[0].starts_with("family,name,runs,unpriced_runs,usd,"),
        "{csv}"
    );
    assert_eq!(lines[0].split(',').count(), 12 + 3, "{}", lines[0]);
    assert!(lines[1].starts_with("exp:resnet,resnet,2,0,"), "{csv}");
    assert!(
        lines.last().unwrap().starts_with("all,all runs,3,1,"),
        "{csv}"
    );
}

#[test]
fn a_crossed_budget_warns_and_exits_with_status_3() {
    let ws = Ws::new();
    priced_run(&ws, "resnet", "1000000");
    ws.ok(&[
        "cost",
        "budget",
        "set",
        "exp:resnet",
        "100000",
        "--period",
        "month",
    ]);
    let under = ws.output(&["cost"]);
    assert_eq!(under.status.code(), Some(0), "{under:?}");
    ws.ok(&[
        "cost",
        "budget",
        "set",
        "exp:resnet",
        "0.01",
        "--period",
        "total",
    ]);
    for args in [&["cost"][..], &["cost", "budget", "list"]] {
        let over = ws.output(args);
        assert_eq!(over.status.code(), Some(3), "{over:?}");
        let stdout = String::from_utf8_lossy(&over.stdout);
        assert!(stdout.contains("OVER"), "{stdout}");
    }
    let stderr = String::from_utf8_lossy(&ws.output(&["cost"]).stderr).into_owned();
    assert!(
        stderr.contains("warning: exp:resnet spent") && stderr.contains("budget of $0.0100"),
        "{stderr}"
    );
    ws.ok(&["cost", "budget", "rm", "exp:resnet"]);
    assert_eq!(ws.output(&["cost"]).status.code(), Some(0));
    // A budget for an experiment that does not exist is refused.
    let err = ws.fail(&["cost", "budget", "set", "exp:nope", "10"]);
    assert!(err.contains("nope"), "{err}");
}

#[test]
fn prices_are_kept_with_their_dates_and_bad_ones_are_named() {
    let ws = Ws::new();
    ws.ok(&["cost", "price", "set", "NVIDIA H200", "3.50"]);
    ws.ok(&[
        "cost",
        "price",
        "set",
        "NVIDIA H200",
        "4",
        "--from",
        "2030-01-01",
    ]);
    ws.ok(&[
        "cost",
        "price",
        "set",
        "p5en.48xlarge",
        "20",
        "--per",
        "hour",
    ]);
    let list = ws.json(&["cost", "price", "list"]);
    let entries = array(list["entries"].clone());
    assert_eq!(entries.len(), 3, "{list}");
    assert_eq!(list["idle_threshold_pct"], 5.0);
    let text = ws.ok(&["cost", "price", "list"]);
    assert_mentions(
        &text,
        &[
            "NVIDIA H200",
            "$3.50",
            "2030-01-01",
            "p5en.48xlarge",
            "hour",
        ],
    );
    let err = ws.fail(&["cost", "price", "set", "NVIDIA H200", "--", "-1"]);
    assert!(err.contains("is negative"), "{err}");
    let err = ws.fail(&["cost", "price", "set", "x", "1", "--from", "yesterday"]);
    assert!(err.contains("'yesterday' is not a date"), "{err}");
    let err = ws.fail(&["cost", "price", "set", "x", "1", "--per", "fortnight"]);
    assert!(err.contains("fortnight"), "{err}");
    let err = ws.fail(&["cost", "threshold", "120"]);
    assert!(err.contains("120"), "{err}");
    ws.ok(&["cost", "threshold", "10"]);
    assert_eq!(
        ws.json(&["cost", "price", "list"])["idle_threshold_pct"],
        10.0
    );
    let err = ws.fail(&["cost", "--by", "colour"]);
    assert!(err.contains("colour"), "{err}");
}

#[test]
fn an_imported_nvidia_smi_trace_becomes_the_runs_gpu_utilisation() {
    let ws = Ws::new();
    let id = ws.start_run(&["-e", "h200"]);
    let out = ws.ok(&["run", "log", &id, "--util-trace", FIXTURE_TRACE]);
    assert!(out.contains("metric points"), "{out}");
    let shown = ws.show(&id);
    let metrics = shown["metrics"].as_object().expect("metrics").clone();
    for key in [
        "system/gpu_0_utilization_percentage",
        "system/gpu_0_memory_usage_megabytes",
        "system/gpu_0_power_usage_watts",
    ] {
        assert!(metrics.contains_key(key), "{key} missing: {metrics:?}");
    }
    let bad = ws.file(
        "bad.csv",
        "timestamp, index, utilization.gpu [%], utilization.memory [%], memory.used [MiB]\n\
         2026/11/27 04:06:11.781, 0, lots, 0, 0\n",
    );
    let err = ws.fail(&["run", "log", &id, "--util-trace", arg(&bad)]);
    assert!(err.contains("bad.csv") && err.contains("line 2"), "{err}");
}
