//! A run's life through the CLI: `run start` with its lineage, `run log` of metrics and params,
//! `run end`, and what `runs show` / `runs metric` give back.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::{FIXTURE_METRICS, Ws, arg, array, assert_mentions, exact_numbers, parse_json, str_of};

#[test]
fn run_start_records_every_value_given_and_runs_show_returns_it() {
    let ws = Ws::new();
    let data = ws.file("train.csv", "x,y\n1,2\n3,4\n5,6\n");
    let bytes = std::fs::read(&data).unwrap();
    let digest = format!("blake3:{}", blake3::hash(&bytes).to_hex());
    let dataset = format!("train={}", arg(&data));

    let id = ws.start_run(&[
        "--exp",
        "E",
        "-p",
        "lr=0.001",
        "-p",
        "optimizer=adam",
        "-t",
        "team=vision",
        "--dataset",
        &dataset,
        "--dataset-rows",
        "train=100",
        "--code-commit",
        "abc",
        "--code-branch",
        "main",
        "--feature-set",
        "feats@v3",
        "--instance-type",
        "p5",
        "--hourly-price",
        "12.5",
    ]);
    let run = ws.show(&id);

    assert_eq!(run["id"], id);
    assert_eq!(run["experiment_name"], "E");
    assert_eq!(run["owner"], "tester");
    assert_eq!(run["status"], "running");
    assert!(run.get("end_ms").is_none(), "{run:#}");
    assert_eq!(run["params"], json!({"lr": "0.001", "optimizer": "adam"}));
    assert_eq!(run["tags"], json!({"team": "vision"}));

    let lineage = &run["lineage"];
    let train = &lineage["datasets"]["train"];
    assert_eq!(train["digest"], digest.as_str());
    assert_eq!(train["rows"], 100);
    assert_eq!(train["size_bytes"], bytes.len());
    assert_eq!(
        Path::new(str_of(train, "/uri")),
        data.canonicalize().unwrap()
    );
    assert_eq!(
        lineage["feature_set"],
        json!({"name": "feats", "version": "v3"})
    );
    assert_eq!(lineage["code"]["commit"], "abc");
    assert_eq!(lineage["code"]["branch"], "main");
    assert_eq!(lineage["code"]["dirty"], false);
    let infra = &lineage["infra"];
    assert!(!str_of(infra, "/host").trim().is_empty(), "{infra:#}");
    assert_eq!(infra["instance_type"], "p5");
    assert_eq!(infra["hourly_price_usd"], 12.5);

    // The default schema (owner, code.commit, dataset.digest) is satisfied.
    assert!(run.get("incomplete").is_none(), "{run:#}");
}

#[test]
fn run_start_owner_overrides_the_user() {
    let ws = Ws::new();
    let id = ws.start_run(&["--owner", "alice"]);
    assert_eq!(ws.show(&id)["owner"], "alice");
}

#[test]
fn a_unique_id_prefix_names_the_run() {
    let ws = Ws::new();
    let id = ws.start_run(&["-n", "prefixed"]);
    assert_eq!(ws.show(&id[..12])["name"], "prefixed");
    assert_eq!(ws.show(&id.to_uppercase())["id"], id);
}

#[test]
fn run_start_parent_records_the_parent_and_its_kind() {
    let ws = Ws::new();
    let parent = ws.start_run(&["-n", "sweep"]);
    let child = ws.start_run(&["--parent", &parent[..12], "--parent-kind", "sweep"]);
    let run = ws.show(&child);
    assert_eq!(run["parent"], parent.as_str());
    assert_eq!(run["parent_kind"], "sweep");

    let err = ws.fail(&[
        "run",
        "start",
        "--parent",
        &parent,
        "--parent-kind",
        "adopted",
    ]);
    assert_mentions(&err, &["'adopted'"]);
    let err = ws.fail(&["run", "start", "--parent", "0fffffffffff"]);
    assert_mentions(&err, &["'0fffffffffff'"]);
    assert_eq!(ws.list().len(), 2);
}

#[test]
fn a_remote_dataset_keeps_its_uri_and_the_digest_given() {
    let ws = Ws::new();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let id = ws.start_run(&[
        "--dataset",
        "train=s3://bucket/train/",
        "--dataset-digest",
        &format!("train={digest}"),
        "--dataset",
        "eval=s3://bucket/eval/",
    ]);
    let datasets = ws.show(&id)["lineage"]["datasets"].clone();
    assert_eq!(
        datasets,
        json!({
            "train": {"uri": "s3://bucket/train/", "digest": digest},
            "eval": {"uri": "s3://bucket/eval/"},
        })
    );
    // The default schema wants a digest for every dataset: eval has none.
    assert_eq!(
        ws.show(&id)["compliance"],
        json!({
            "state": "incomplete",
            "missing": [
                "code.commit is missing",
                "dataset.digest is missing for dataset 'eval'"
            ]
        })
    );
}

// ---- git state ------------------------------------------------------------------------------

/// Runs git in `dir`, isolated from the machine's and the user's git config.
fn git(home: &Path, dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A repository at `<tmp>/repo` on branch `main` with one commit of `train.py`; returns its
/// path and the commit.
fn repo(ws: &Ws) -> (std::path::PathBuf, String) {
    let dir = ws.tmp().join("repo");
    std::fs::create_dir(&dir).unwrap();
    git(ws.tmp(), &dir, &["init", "-q", "-b", "main"]);
    git(ws.tmp(), &dir, &["config", "user.name", "Test Author"]);
    git(
        ws.tmp(),
        &dir,
        &["config", "user.email", "author@example.com"],
    );
    git(ws.tmp(), &dir, &["config", "commit.gpgsign", "false"]);
    std::fs::write(dir.join("train.py"), "print('train')\n").unwrap();
    git(ws.tmp(), &dir, &["add", "train.py"]);
    git(ws.tmp(), &dir, &["commit", "-q", "-m", "first"]);
    let commit = git(ws.tmp(), &dir, &["rev-parse", "HEAD"]);
    (dir, commit)
}

#[test]
fn run_start_git_records_the_commit_of_a_clean_tree() {
    let ws = Ws::new();
    let (dir, commit) = repo(&ws);
    let id = ws.start_run(&["--git", arg(&dir)]);
    let code = ws.show(&id)["lineage"]["code"].clone();
    assert_eq!(code["commit"], commit.as_str());
    assert_eq!(code["branch"], "main");
    assert_eq!(code["repo"], "repo");
    assert_eq!(code["dirty"], false);
    assert!(code.get("diff_digest").is_none(), "{code:#}");
}

#[test]
fn a_modified_tracked_file_makes_the_next_run_dirty_with_a_diff_digest() {
    let ws = Ws::new();
    let (dir, commit) = repo(&ws);
    let clean = ws.start_run(&["--git", arg(&dir)]);
    std::fs::write(dir.join("train.py"), "print('train harder')\n").unwrap();
    let dirty = ws.start_run(&["--git", arg(&dir)]);

    assert_eq!(ws.show(&clean)["lineage"]["code"]["dirty"], false);
    let code = ws.show(&dirty)["lineage"]["code"].clone();
    assert_eq!(code["commit"], commit.as_str());
    assert_eq!(code["dirty"], true);
    let digest = str_of(&code, "/diff_digest");
    let hex = digest.strip_prefix("blake3:").expect("blake3: prefix");
    assert!(
        hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        "{digest}"
    );
}

#[test]
fn the_diff_digest_tells_different_uncommitted_changes_apart() {
    let ws = Ws::new();
    let (dir, _) = repo(&ws);
    let digest = |id: &str| str_of(&ws.show(id), "/lineage/code/diff_digest").to_owned();

    std::fs::write(dir.join("train.py"), "print('a')\n").unwrap();
    let a1 = ws.start_run(&["--git", arg(&dir)]);
    let a2 = ws.start_run(&["--git", arg(&dir)]);
    std::fs::write(dir.join("train.py"), "print('bb')\n").unwrap();
    let b = ws.start_run(&["--git", arg(&dir)]);

    assert_eq!(digest(&a1), digest(&a2));
    assert_ne!(digest(&a1), digest(&b));
}

#[test]
fn run_start_git_outside_a_repository_fails_naming_the_directory() {
    let ws = Ws::new();
    let plain = ws.tmp().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let err = ws.fail(&["run", "start", "--git", arg(&plain)]);
    assert_mentions(&err, &[arg(&plain), "not inside a git work tree"]);
    assert!(ws.list().is_empty());
}

// ---- metrics ----------------------------------------------------------------------------------

#[test]
fn logged_metrics_come_back_in_order_with_nan_and_inf_preserved() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    for (value, step) in [("0.5", "1"), ("nan", "2"), ("inf", "3")] {
        ws.ok(&[
            "run",
            "log",
            &id,
            "-m",
            &format!("loss={value}"),
            "--step",
            step,
        ]);
    }
    let points = array(ws.json(&["runs", "metric", &id, "loss"]));
    let steps: Vec<i64> = points.iter().map(|p| p["step"].as_i64().unwrap()).collect();
    let values: Vec<&Value> = points.iter().map(|p| &p["value"]).collect();
    assert_eq!(steps, [1, 2, 3]);
    assert_eq!(values, [&json!(0.5), &json!("NaN"), &json!("Infinity")]);
    assert!(points.iter().all(|p| p["ts_ms"].as_i64().unwrap() > 0));

    let run = ws.show(&id);
    for summary in [&run["metrics"]["loss"], &run["live_metrics"]["loss"]] {
        assert_eq!(summary["last"], "Infinity", "{run:#}");
        assert_eq!(summary["step"], 3);
        assert_eq!(summary["count"], 3);
    }
}

/// The fixture's rows as (step, unix_ms, [loss, acc, lr]), parsed here independently of Cairn.
fn fixture_rows() -> Vec<(i64, i64, [f64; 3])> {
    let text = std::fs::read_to_string(FIXTURE_METRICS).expect("fixture metrics.csv");
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    assert_eq!(lines.next(), Some("step,unix_ms,loss,acc,lr"));
    lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            (
                c[0].parse().unwrap(),
                c[1].parse().unwrap(),
                [
                    c[2].parse().unwrap(),
                    c[3].parse().unwrap(),
                    c[4].parse().unwrap(),
                ],
            )
        })
        .collect()
}

#[test]
fn csv_import_brings_in_the_fixture_curves_exactly() {
    let ws = Ws::new();
    let rows = fixture_rows();
    assert_eq!(rows.len(), 300);
    let id = ws.start_run(&[]);
    let out = ws.ok(&["run", "log", &id, "--csv", FIXTURE_METRICS]);
    assert_mentions(&out, &["900 metric points"]);

    for (col, key) in ["loss", "acc", "lr"].into_iter().enumerate() {
        let text = ws.ok(&["runs", "metric", &id, key, "--json"]);
        let points = array(parse_json(&text));
        assert_eq!(points.len(), 300, "{key}");
        let values = exact_numbers(&text, "value");
        assert_eq!(values.len(), 300, "{key}: every value is a number");
        for (i, ((step, ts, expected), p)) in rows.iter().zip(&points).enumerate() {
            assert_eq!(p["step"], *step, "{key} point {i}");
            assert_eq!(p["ts_ms"], *ts, "{key} point {i}");
            assert_eq!(
                values[i].to_bits(),
                expected[col].to_bits(),
                "{key} point {i}: {} != {}",
                values[i],
                expected[col]
            );
        }
    }
    // Spot-check against the file's literal first and last rows.
    let text = ws.ok(&["runs", "metric", &id, "loss", "--json"]);
    let loss = exact_numbers(&text, "value");
    assert_eq!(loss[0], 2.30515718460083);
    assert_eq!(loss[299], 0.0008650334784761071);
    let points = array(parse_json(&text));
    assert_eq!(points[0]["ts_ms"], 1_795_752_388_045_i64);
    assert_eq!(points[299]["step"], 2990);
    assert_eq!(points[299]["ts_ms"], 1_795_752_396_388_i64);
}

/// `runs list` and `runs show` report a metric's latest value as it was logged, bit for bit.
#[test]
fn summary_metrics_in_the_catalog_are_bit_exact() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    // Values with 17 significant digits across the magnitudes training logs hold.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let values: Vec<f64> = (0..120)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let unit = (state >> 11) as f64 / (1u64 << 53) as f64;
            unit * 10f64.powi(i % 13 - 9)
        })
        .collect();
    let keys: Vec<String> = (0..values.len()).map(|i| format!("m{i:03}")).collect();
    let csv = format!(
        "step,{}\n0,{}\n",
        keys.join(","),
        values
            .iter()
            .map(|v| format!("{v:?}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    let path = ws.file("values.csv", csv);
    ws.ok(&["run", "log", &id, "--csv", arg(&path)]);
    ws.ok(&["run", "end", &id]);

    let listed = ws.ok(&["runs", "list", "--json"]);
    let shown = ws.ok(&["runs", "show", &id, "--json"]);
    // `runs show` prints the catalog's summaries (`metrics`), then the live ones.
    let lasts = exact_numbers(&shown, "last");
    assert_eq!(lasts.len(), 2 * values.len());
    let mut wrong = Vec::new();
    for (i, (key, v)) in keys.iter().zip(&values).enumerate() {
        let in_list = exact_numbers(&listed, key);
        for (source, got) in [
            ("runs list", in_list[0]),
            ("runs show metrics", lasts[i]),
            ("runs show live_metrics", lasts[values.len() + i]),
        ] {
            if got.to_bits() != v.to_bits() {
                wrong.push(format!("{source} {key}: logged {v:?}, got {got:?}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} values changed:\n{}",
        wrong.len(),
        3 * values.len(),
        wrong.join("\n")
    );
}

#[test]
fn run_end_failed_sets_the_status_and_end_time() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    let ended = ws.json(&["run", "end", &id, "--status", "failed"]);
    assert_eq!(ended["status"], "failed");

    let run = ws.show(&id);
    assert_eq!(run["status"], "failed");
    let start = run["start_ms"].as_i64().unwrap();
    let end = run["end_ms"].as_i64().expect("end_ms set");
    assert!(end >= start, "end {end} before start {start}");

    let row = ws
        .list()
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap();
    assert_eq!(row["status"], "failed");
    assert_eq!(row["end_ms"], end);
    assert_eq!(
        array(ws.json(&["runs", "list", "--status", "failed"])).len(),
        1
    );
}

/// As in MLflow, an ended run still takes metrics (an evaluation logged afterwards); its
/// status and end time stay as they were.
#[test]
fn a_metric_logged_after_the_end_is_kept_and_the_run_stays_ended() {
    let ws = Ws::new();
    let id = ws.start_run(&[]);
    ws.ok(&["run", "log", &id, "-m", "loss=0.5", "--step", "1"]);
    let ended = ws.json(&["run", "end", &id, "--status", "failed"]);

    ws.ok(&["run", "log", &id, "-m", "loss=0.1", "--step", "2"]);
    ws.ok(&["run", "log", &id, "-m", "eval_acc=0.9"]);

    let points = array(ws.json(&["runs", "metric", &id, "loss"]));
    assert_eq!(points.len(), 2);
    assert_eq!(points[1]["value"], 0.1);
    assert_eq!(
        array(ws.json(&["runs", "metric", &id, "eval_acc"])).len(),
        1
    );
    let run = ws.show(&id);
    assert_eq!(run["status"], "failed");
    assert_eq!(run["end_ms"], ended["end_ms"]);
}

/// A `run log` that fails writes nothing: not its params, tags or notes either.
#[test]
fn a_refused_run_log_stores_nothing_of_the_call() {
    let ws = Ws::new();
    let id = ws.start_run(&["-p", "lr=0.1"]);
    let long_key = format!("{}=1", "k".repeat(251));
    ws.fail(&[
        "run", "log", &id, "-p", "batch=32", "-t", "stage=x", "--notes", "n", "-m", &long_key,
    ]);
    let run = ws.show(&id);
    assert_eq!(run["params"], json!({"lr": "0.1"}), "{run:#}");
    assert_eq!(run["tags"], json!({}), "{run:#}");
    assert!(run.get("notes").is_none(), "{run:#}");

    ws.fail(&["run", "log", &id, "-p", "late=1", "-m", "loss=abc"]);
    assert_eq!(ws.show(&id)["params"], json!({"lr": "0.1"}));
}

#[test]
fn a_non_finite_hourly_price_is_refused() {
    let ws = Ws::new();
    // Both are valid f64 text, so they parse; stored, they turn into JSON null and vanish.
    for price in ["nan", "inf"] {
        let err = ws.fail(&["run", "start", "--hourly-price", price]);
        assert_mentions(&err.to_lowercase(), &["hourly", price]);
    }
    assert!(ws.list().is_empty());
}

// ---- params -----------------------------------------------------------------------------------

#[test]
fn a_param_cannot_change_once_logged() {
    let ws = Ws::new();
    let id = ws.start_run(&["-p", "lr=0.001"]);
    let err = ws.fail(&["run", "log", &id, "-p", "lr=0.01"]);
    assert_mentions(&err, &["'lr'", "'0.001'", "'0.01'"]);
    assert_eq!(ws.show(&id)["params"], json!({"lr": "0.001"}));

    // The same holds for params logged after the start, and nothing of a refused call is kept.
    ws.ok(&["run", "log", &id, "-p", "epochs=10"]);
    let err = ws.fail(&["run", "log", &id, "-p", "batch=64", "-p", "epochs=20"]);
    assert_mentions(&err, &["'epochs'", "'10'", "'20'"]);
    assert_eq!(
        ws.show(&id)["params"],
        json!({"lr": "0.001", "epochs": "10"})
    );
}

#[test]
fn relogging_a_param_with_the_same_value_succeeds() {
    let ws = Ws::new();
    let id = ws.start_run(&["-p", "lr=0.001", "-p", "optimizer=adam"]);
    ws.ok(&["run", "log", &id, "-p", "lr=0.001", "-p", "optimizer=adam"]);
    assert_eq!(
        ws.show(&id)["params"],
        json!({"lr": "0.001", "optimizer": "adam"})
    );
}
