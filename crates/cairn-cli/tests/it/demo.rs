//! The demo catalog (`demo`, `start`) and browsing it: listing, sorting, filtering, lineage, and
//! rebuilding the catalog's projections.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::{Ws, array, assert_mentions, parse_json};

/// A workspace holding `cairn demo --runs 300`.
fn demo() -> Ws {
    let ws = Ws::uninit();
    let report = ws.json(&["demo", "--runs", "300"]);
    assert_eq!(report["runs"], 300);
    ws
}

fn acc(row: &Value) -> Option<f64> {
    row["metrics"].get("acc").and_then(Value::as_f64)
}

#[test]
fn demo_fills_300_runs_across_experiments_with_owners_and_failures() {
    let ws = demo();
    let rows = array(ws.json(&["runs", "list", "--limit", "1000"]));
    assert_eq!(rows.len(), 300);
    let ids: BTreeSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 300, "run ids are unique");

    let mut per_exp: BTreeMap<String, u64> = BTreeMap::new();
    for r in &rows {
        *per_exp
            .entry(r["experiment_name"].as_str().unwrap().to_owned())
            .or_default() += 1;
        let owner = r["owner"].as_str().unwrap_or_default();
        assert!(!owner.is_empty(), "run without an owner: {r:#}");
    }
    assert!(per_exp.len() > 1, "{per_exp:?}");
    let listed: BTreeMap<String, u64> = array(ws.json(&["exp", "list"]))
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap().to_owned(),
                e["runs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(listed, per_exp);

    let failed = rows.iter().filter(|r| r["status"] == "failed").count();
    assert!(failed > 0, "no failed runs in the demo");
    let only_failed = array(ws.json(&["runs", "list", "--status", "failed", "--limit", "1000"]));
    assert_eq!(only_failed.len(), failed);
    assert!(only_failed.iter().all(|r| r["status"] == "failed"));

    let marker = parse_json(&std::fs::read_to_string(ws.dir.join("workspace.json")).unwrap());
    assert_eq!(marker["demo"], true);
}

#[test]
fn demo_runs_show_their_lineage_and_parents() {
    let ws = demo();
    let rows = array(ws.json(&["runs", "list", "--limit", "1000"]));
    let ids: BTreeSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let mut with_parent = 0;
    for r in rows.iter().step_by(7) {
        let run = ws.show(r["id"].as_str().unwrap());
        let lineage = &run["lineage"];
        let train = &lineage["datasets"]["train"];
        assert!(train["uri"].is_string(), "{run:#}");
        assert!(train["rows"].as_u64().unwrap() > 0, "{run:#}");
        let commit = lineage["code"]["commit"].as_str().unwrap();
        assert_eq!(commit.len(), 40, "{run:#}");
        assert!(lineage["code"]["repo"].is_string(), "{run:#}");
        if let Some(parent) = run.get("parent") {
            with_parent += 1;
            assert!(ids.contains(parent.as_str().unwrap()), "{run:#}");
            assert!(run["parent_kind"].is_string(), "{run:#}");
        }
    }
    assert!(with_parent > 0, "no sampled run has a parent");
}

#[test]
fn runs_sorted_by_acc_come_best_first() {
    let ws = demo();
    let top = array(ws.json(&["runs", "list", "--sort", "metrics.acc DESC", "--limit", "5"]));
    assert_eq!(top.len(), 5);
    let values: Vec<f64> = top
        .iter()
        .map(|r| acc(r).unwrap_or_else(|| panic!("no acc: {r:#}")))
        .collect();
    assert!(
        values.windows(2).all(|w| w[0] >= w[1]),
        "not descending: {values:?}"
    );
    let best = array(ws.json(&["runs", "list", "--limit", "1000"]))
        .iter()
        .filter_map(acc)
        .fold(f64::NEG_INFINITY, f64::max);
    assert_eq!(values[0], best);

    let bottom = array(ws.json(&["runs", "list", "--sort", "metrics.acc ASC", "--limit", "5"]));
    let values: Vec<f64> = bottom.iter().map(|r| acc(r).unwrap()).collect();
    assert!(
        values.windows(2).all(|w| w[0] <= w[1]),
        "not ascending: {values:?}"
    );
}

#[test]
fn the_owner_filter_lists_only_that_owners_runs() {
    let ws = demo();
    let all = array(ws.json(&["runs", "list", "--limit", "1000"]));
    let alices = all.iter().filter(|r| r["owner"] == "alice").count();
    assert!(alices > 0);
    let listed = array(ws.json(&["runs", "list", "--owner", "alice", "--limit", "1000"]));
    assert_eq!(listed.len(), alices);
    assert!(listed.iter().all(|r| r["owner"] == "alice"));
    assert!(array(ws.json(&["runs", "list", "--owner", "nobody"])).is_empty());
}

#[test]
fn catalog_rebuild_keeps_runs_list_identical() {
    let ws = demo();
    let before = ws.ok(&["runs", "list", "--limit", "1000", "--json"]);
    let sample = array(parse_json(&before))[17]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let shown_before = ws.show(&sample);

    let out = ws.ok(&["catalog", "rebuild"]);
    assert_mentions(&out, &["300 runs"]);
    assert_eq!(
        ws.ok(&["runs", "list", "--limit", "1000", "--json"]),
        before
    );
    assert_eq!(ws.show(&sample), shown_before);
}

#[test]
fn start_on_a_fresh_directory_creates_demo_data_and_prints_the_experiments() {
    let ws = Ws::uninit();
    let out = ws.ok(&["start"]);
    let exps = array(ws.json(&["exp", "list"]));
    assert!(exps.len() > 1);
    for e in &exps {
        assert!(e["runs"].as_u64().unwrap() > 0, "{e:#}");
        assert_mentions(&out, &[e["name"].as_str().unwrap()]);
    }
    assert_mentions(&out, &["demo data", "latest runs"]);
    let total: u64 = exps.iter().map(|e| e["runs"].as_u64().unwrap()).sum();
    assert_eq!(ws.list().len() as u64, total);
}

#[test]
fn start_on_an_existing_workspace_adds_no_demo_data() {
    let ws = Ws::new();
    ws.start_run(&["--exp", "mine"]);
    let out = ws.json(&["start"]);
    let exps = array(out);
    assert_eq!(exps.len(), 1);
    assert_eq!(exps[0]["name"], "mine");
    assert_eq!(exps[0]["runs"], 1);
    assert_eq!(ws.list().len(), 1);
}
