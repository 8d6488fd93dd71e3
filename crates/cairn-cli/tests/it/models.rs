//! `cairn model register|list|show|versions|download|alias|delete`: the registry from the
//! command line, and `artifact add` refused over a registered path.

use crate::{Ws, array, assert_mentions, str_of};

/// A run whose `model` directory holds two files.
pub(crate) fn trained(ws: &Ws, weights: &str) -> String {
    let run = ws.start_run(&[]);
    ws.file(&format!("{run}/model/weights.bin"), weights);
    ws.file(&format!("{run}/model/MLmodel"), "flavors: {}\n");
    let dir = ws.tmp().join(&run).join("model");
    ws.ok(&[
        "artifact",
        "add",
        &run,
        dir.to_str().unwrap(),
        "--as",
        "model",
    ]);
    run
}

#[test]
fn register_list_show_download_alias_and_delete() {
    let ws = Ws::new();
    let run = trained(&ws, "v1 weights");
    let out = ws.ok(&["model", "register", "churn", &run[..8]]);
    assert_mentions(&out, &["registered churn version 1", "blake3:", "locked"]);
    let v2 = ws.json(&["model", "register", "churn", &run, "model", "--tag", "k=v"]);
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["tags"]["k"], "v");

    let list = array(ws.json(&["model", "list"]));
    assert_eq!(list.len(), 1);
    assert_eq!(str_of(&list[0], "/name"), "churn");

    // The path backs both versions: `artifact add` over it is refused, saying why.
    let other = ws.file("other.bin", "other");
    let err = ws.fail(&[
        "artifact",
        "add",
        &run,
        other.to_str().unwrap(),
        "--as",
        "model/weights.bin",
    ]);
    assert_mentions(
        &err,
        &[
            "backs registered model 'churn' version",
            "cannot be written or deleted",
        ],
    );

    ws.ok(&[
        "model",
        "alias",
        "churn",
        "champion",
        "1",
        "--rationale",
        "best auc",
    ]);
    let shown = ws.ok(&["model", "show", "churn"]);
    assert_mentions(&shown, &["@champion:", "version 1", "best auc"]);
    let alias = ws.json(&["model", "alias", "churn", "champion"]);
    assert_eq!(alias["targets"][0]["number"], 1);

    let out = ws.tmp().join("dl");
    ws.ok(&[
        "model",
        "download",
        "churn",
        "@champion",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(out.join("weights.bin")).unwrap(),
        "v1 weights"
    );

    let err = ws.fail(&["model", "delete", "churn", "2"]);
    assert_mentions(&err, &["--reason"]);
    ws.ok(&["model", "delete", "churn", "2", "--reason", "duplicate"]);
    let versions = array(ws.json(&["model", "versions", "churn", "--all"]));
    assert_eq!(versions.len(), 2);
    assert_eq!(str_of(&versions[1], "/deleted/reason"), "duplicate");
    assert_eq!(array(ws.json(&["model", "versions", "churn"])).len(), 1);

    ws.ok(&["model", "alias", "churn", "champion", "--delete"]);
    let err = ws.fail(&["model", "download", "churn", "@champion"]);
    assert_mentions(&err, &["@champion"]);
    ws.ok(&["model", "delete", "churn", "--reason", "retired"]);
    assert!(array(ws.json(&["model", "list"])).is_empty());
    // Nothing backs the path any more.
    ws.ok(&[
        "artifact",
        "add",
        &run,
        other.to_str().unwrap(),
        "--as",
        "model/weights.bin",
    ]);
}

#[test]
fn promotion_goes_through_the_gate_listing_every_check() {
    let ws = Ws::new();
    let run = trained(&ws, "v1 weights");
    ws.ok(&["model", "register", "churn", &run]);
    let set = ws.ok(&[
        "model",
        "gate",
        "set",
        "churn",
        "--require",
        "val",
        "--metric",
        "val.acc>=0.9",
        "--fairness",
        "val.acc.sex.difference<=0.03",
        "--approvals",
        "1",
    ]);
    assert_mentions(
        &set,
        &["gate of every alias of churn set", "val.acc >= 0.9"],
    );
    let shown = ws.ok(&["model", "gate", "show", "churn"]);
    assert_mentions(
        &shown,
        &[
            "guarded by the gate of the model",
            "difference over sex <= 0.03",
        ],
    );

    // Refused: every failed check named, with value and threshold; the alias does not move.
    let err = ws.fail(&[
        "model",
        "promote",
        "churn",
        "1",
        "--to",
        "champion",
        "--rationale",
        "first",
    ]);
    assert_mentions(
        &err,
        &[
            "refused by its gate (4 failed)",
            "no evaluation on benchmark 'val'",
            "needs >= 0.9",
            "needs difference <= 0.03",
            "0 valid signed approvals",
        ],
    );
    let err = ws.fail(&["model", "alias", "churn", "champion", "1"]);
    assert_mentions(&err, &["refused by its gate"]);
    assert!(
        ws.json(&["model", "show", "churn"])["aliases"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A check shows the verdict and is kept, like the refusals.
    let checked = ws.ok(&["model", "check", "churn", "1"]);
    assert_mentions(&checked, &["FAIL", "would not move"]);
    let history = array(ws.json(&["model", "gate", "history", "churn"]));
    assert_eq!(history.len(), 3);
    assert_eq!(history[2]["rationale"], "first");
    assert!(history.iter().all(|e| e["passed"] == false));

    // Approving one's own version, with no team, is signed and kept but does not count.
    let approved = ws.ok(&["model", "approve", "churn", "1", "--comment", "mine"]);
    assert_mentions(&approved, &["signed by device", "does not count"]);
    let listed = array(
        ws.json(&["model", "approvals", "churn", "1"])
            .pointer("/approvals")
            .cloned()
            .unwrap(),
    );
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["counts"], false);

    // Lifting the gate lets the move through (checked and kept all the same).
    ws.ok(&["model", "gate", "set", "churn"]);
    let moved = ws.ok(&[
        "model",
        "promote",
        "churn",
        "1",
        "--rationale",
        "no gate now",
    ]);
    assert_mentions(
        &moved,
        &["no gate guards @champion", "@champion of churn → version 1"],
    );
    let history = array(ws.json(&["model", "gate", "history", "churn"]));
    assert_eq!(history[0]["promoted"], true);

    // Malformed thresholds are refused, saying what was expected.
    let err = ws.fail(&["model", "gate", "set", "churn", "--metric", "acc>=0.9"]);
    assert_mentions(&err, &["BENCH.METRIC"]);
}
