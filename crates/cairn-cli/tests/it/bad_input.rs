//! Bad input: each is refused with a non-zero exit and a message naming the offending value, and
//! leaves what was stored as it was.

use serde_json::{Value, json};

use crate::{Ws, arg, assert_mentions};

/// A workspace with one run holding a param, a tag and one `loss` point; returns the run id.
fn one_run() -> (Ws, String) {
    let ws = Ws::new();
    let id = ws.start_run(&["-p", "lr=0.1", "-t", "team=vision"]);
    ws.ok(&["run", "log", &id, "-m", "loss=0.5", "--step", "1"]);
    (ws, id)
}

/// Everything about the run that a command could harm, with the listing of all runs.
fn snapshot(ws: &Ws, id: &str) -> (Value, Vec<Value>, Value) {
    let history = ws.json(&["runs", "metric", id, "loss"]);
    (ws.show(id), ws.list(), history)
}

#[test]
fn an_unknown_run_id_is_refused_naming_it() {
    let (ws, id) = one_run();
    let file = ws.file("model.bin", "weights");
    let before = snapshot(&ws, &id);
    let unknown = "0fffffffffffffffffffffffffffffff";
    let commands: &[&[&str]] = &[
        &["runs", "show", unknown],
        &["runs", "metric", unknown, "loss"],
        &["run", "log", unknown, "-m", "loss=1"],
        &["run", "end", unknown],
        &["artifact", "add", unknown, arg(&file)],
        &["artifact", "get", unknown, "model.bin"],
        &["runs", "show", "not-hex"],
    ];
    for args in commands {
        let err = ws.fail(args);
        assert_mentions(&err, &["no run id starts with", args[2]]);
    }
    assert_eq!(snapshot(&ws, &id), before);
}

#[test]
fn a_malformed_param_is_refused_naming_it() {
    let (ws, id) = one_run();
    let before = snapshot(&ws, &id);

    let err = ws.fail(&["run", "start", "-p", "novalue"]);
    assert_mentions(&err, &["'novalue'", "KEY=VALUE"]);
    let err = ws.fail(&["run", "log", &id, "-p", "novalue", "-m", "loss=9"]);
    assert_mentions(&err, &["'novalue'", "KEY=VALUE"]);
    let err = ws.fail(&["run", "log", &id, "-t", "=vision"]);
    assert_mentions(&err, &["'=vision'", "KEY=VALUE"]);

    assert_eq!(snapshot(&ws, &id), before);
}

#[test]
fn a_non_numeric_metric_value_is_refused_naming_key_and_value() {
    let (ws, id) = one_run();
    let before = snapshot(&ws, &id);
    let err = ws.fail(&["run", "log", &id, "-m", "loss=abc", "--step", "2"]);
    assert_mentions(&err, &["'loss'", "'abc'", "not a number"]);
    assert_eq!(snapshot(&ws, &id), before);
}

#[test]
fn an_empty_metric_key_is_refused() {
    let (ws, id) = one_run();
    let before = snapshot(&ws, &id);
    let err = ws.fail(&["run", "log", &id, "-m", "=1"]);
    assert_mentions(&err, &["'=1'", "KEY=VALUE"]);
    let err = ws.fail(&["run", "log", &id, "-m", "  =1"]);
    assert_mentions(&err, &["'  =1'"]);
    assert_eq!(snapshot(&ws, &id), before);
}

#[test]
fn a_metric_key_longer_than_250_bytes_is_refused() {
    let (ws, id) = one_run();
    // 250 bytes is the limit (MLflow's): allowed, and counted in bytes, not characters.
    let at_limit = "k".repeat(250);
    ws.ok(&["run", "log", &id, "-m", &format!("{at_limit}=1")]);
    let before = snapshot(&ws, &id);

    let too_long = "k".repeat(251);
    let err = ws.fail(&["run", "log", &id, "-m", &format!("{too_long}=2")]);
    assert_mentions(&err, &[&format!("'{too_long}'"), "longer than 250 bytes"]);
    let wide = "é".repeat(126); // 252 bytes in 126 characters
    let err = ws.fail(&["run", "log", &id, "-m", &format!("{wide}=2")]);
    assert_mentions(&err, &[&wide, "longer than 250 bytes"]);

    assert_eq!(snapshot(&ws, &id), before);
    ws.fail(&["runs", "metric", &id, &too_long]);
}

#[test]
fn an_unknown_status_is_refused_and_the_run_keeps_running() {
    let (ws, id) = one_run();
    let before = snapshot(&ws, &id);
    let err = ws.fail(&["run", "end", &id, "--status", "done"]);
    assert_mentions(&err, &["'done'", "finished, failed or killed"]);
    let err = ws.fail(&["run", "end", &id, "--status", "running"]);
    assert_mentions(&err, &["finished, failed or killed"]);
    assert_eq!(snapshot(&ws, &id), before);

    let run = ws.show(&id);
    assert_eq!(run["status"], "running");
    assert!(run.get("end_ms").is_none());
    // Still open for metrics: the refused end sealed nothing.
    ws.ok(&["run", "log", &id, "-m", "loss=0.4", "--step", "2"]);
}

#[test]
fn an_ambiguous_run_prefix_is_refused_listing_the_matches() {
    let ws = Ws::new();
    let ids: Vec<String> = (0..3).map(|_| ws.start_run(&[])).collect();
    // Run ids are time-ordered (UUIDv7): runs made together share their first digits.
    let prefix = &ids[0][..1];
    assert!(ids.iter().all(|id| id.starts_with(prefix)));
    let before = ws.list();

    for args in [
        vec!["runs", "show", prefix],
        vec!["run", "end", prefix],
        vec!["run", "log", prefix, "-m", "loss=1"],
    ] {
        let err = ws.fail(&args);
        assert_mentions(&err, &[&format!("'{prefix}'"), "ambiguous"]);
        for id in &ids {
            assert_mentions(&err, &[id]);
        }
    }
    assert_eq!(ws.list(), before);
    assert!(ws.list().iter().all(|r| r["status"] == "running"));
}

#[test]
fn a_csv_with_a_non_numeric_cell_is_refused_naming_the_line() {
    let (ws, id) = one_run();
    let before = snapshot(&ws, &id);
    let csv = ws.file(
        "bad.csv",
        "step,loss,acc\n10,0.9,0.1\n20,0.8,0.2\n30,0.7x,0.3\n40,0.6,0.4\n",
    );
    let err = ws.fail(&["run", "log", &id, "--csv", arg(&csv)]);
    assert_mentions(&err, &["bad.csv", "line 4", "loss", "'0.7x'"]);
    // Nothing of the file is imported, not even the rows before the bad one.
    assert_eq!(snapshot(&ws, &id), before);
    ws.fail(&["runs", "metric", &id, "acc"]);
}

#[test]
fn a_csv_row_with_the_wrong_number_of_fields_is_refused_naming_the_line() {
    let (ws, id) = one_run();
    let before = snapshot(&ws, &id);
    let csv = ws.file("short.csv", "step,loss\n1,0.9\n2\n");
    let err = ws.fail(&["run", "log", &id, "--csv", arg(&csv)]);
    assert_mentions(&err, &["short.csv", "line 3"]);
    assert_eq!(snapshot(&ws, &id), before);
}

#[test]
fn a_missing_csv_file_is_refused_naming_it() {
    let (ws, id) = one_run();
    let missing = ws.tmp().join("nowhere.csv");
    let err = ws.fail(&["run", "log", &id, "--csv", arg(&missing)]);
    assert_mentions(&err, &[arg(&missing)]);
    assert_eq!(ws.show(&id)["params"], json!({"lr": "0.1"}));
}
