//! `exp create` and `exp list`.

use serde_json::Value;

use crate::{Ws, array, assert_mentions};

fn experiments(ws: &Ws) -> Vec<(String, u64)> {
    array(ws.json(&["exp", "list"]))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["runs"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn exp_list_shows_each_experiment_with_its_run_count() {
    let ws = Ws::new();
    let created = ws.json(&["exp", "create", "vision", "--description", "image models"]);
    ws.ok(&["exp", "create", "nlp"]);
    ws.ok(&["exp", "create", "idle"]);
    for exp in ["vision", "vision", "nlp"] {
        ws.start_run(&["--exp", exp]);
    }

    let mut got = experiments(&ws);
    got.sort();
    assert_eq!(
        got,
        [
            ("idle".to_owned(), 0),
            ("nlp".to_owned(), 1),
            ("vision".to_owned(), 2)
        ]
    );
    let vision: Value = array(ws.json(&["exp", "list"]))
        .into_iter()
        .find(|e| e["name"] == "vision")
        .unwrap();
    assert_eq!(vision["id"], created["id"]);
    assert_eq!(vision["description"], "image models");
}

#[test]
fn a_duplicate_experiment_name_is_refused() {
    let ws = Ws::new();
    ws.ok(&["exp", "create", "vision"]);
    let err = ws.fail(&["exp", "create", "vision"]);
    assert_mentions(&err, &["'vision'", "already exists"]);
    assert_eq!(experiments(&ws), [("vision".to_owned(), 0)]);
}

#[test]
fn run_start_creates_a_missing_experiment_and_reuses_an_existing_one() {
    let ws = Ws::new();
    ws.start_run(&["--exp", "fresh"]);
    ws.start_run(&["--exp", "fresh"]);
    ws.start_run(&[]);
    let mut got = experiments(&ws);
    got.sort();
    assert_eq!(got, [("Default".to_owned(), 1), ("fresh".to_owned(), 2)]);
}

/// Experiment names are stored trimmed, so `--exp " vision"` names the experiment `vision`.
#[test]
fn run_start_with_a_padded_experiment_name_uses_the_existing_experiment() {
    let ws = Ws::new();
    ws.ok(&["exp", "create", "vision"]);
    ws.start_run(&["--exp", " vision "]);
    assert_eq!(experiments(&ws), [("vision".to_owned(), 1)]);
}
