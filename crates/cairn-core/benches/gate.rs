//! Promotion-gate benchmark (plain `fn main`, run with `cargo bench -p cairn-core --bench
//! gate`). Prints figures; asserts nothing about speed, only that the verdicts are the ones the
//! data implies (a bench that times refusals by mistake measures nothing).
//!
//! The registry it builds (the governance target in DESIGN.md: "gate check ≤ 10 ms (1,000
//! versions)", issue #14: "1,000 versions and 10,000 evaluations"):
//!
//! - a team of three members (ada, who registers everything, and bob and carol, who approve);
//! - one model, `churn`, with `VERSIONS` (1,000) versions, each registered from its own run
//!   whose `model/` holds distinct weights (so every version has its own content hash);
//! - each run carries `BENCHMARKS` (10) evaluations — 10,000 in all — on its own dataset
//!   digest, with 3 overall metrics and 5 slices over two attributes (`sex`, `age`), so every
//!   gate check computes fairness figures;
//! - a gate on `@champion` with every kind of check: two required evaluations (one pinned to a
//!   dataset digest), a value threshold plus an absolute and a relative change against the
//!   current holder, a lower-is-better threshold, two fairness thresholds (a difference and a
//!   selection-rate ratio over `sex`), schema compliance, and 2 signed approvals;
//! - 2 approvals (bob's and carol's, each signed by its device key) on every sampled version;
//! - 10,000 kept gate evaluations of the model (the history every check appends to).
//!
//! Timed: `Workspace::check_gate` on `SAMPLE` versions spread over the model (each a full
//! verdict with approval signatures verified; each check is kept, so the history grows), then
//! `Workspace::promote` moving `@champion` up through the same versions (a change threshold
//! against each new holder); and, for the registry screen, the reads it makes
//! (`registered_model`, `gate_evaluations`, `approvals`).
//!
//! `CAIRN_BENCH_VERSIONS` (default 1000), `CAIRN_BENCH_SAMPLE` (default 50) and
//! `CAIRN_BENCH_REPS` (default 3: rounds of checks over the sample) set the sizes;
//! `CAIRN_BENCH_KEEP=DIR` builds the workspace in `DIR/ada` and keeps it (the registry screen's
//! browser benchmark serves it: `ui/bench/registry.mjs`); run again with the same `DIR`, it times
//! the kept workspace without building it again.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use cairn_core::{GateScope, NewRun, Workspace};
use cairn_model::gate::{
    Approval, FairnessThreshold, GateEvaluation, GatePolicy, MetricThreshold, RequiredEvaluation,
    keys,
};
use cairn_model::registry::keys::of_model;
use cairn_model::{CodeVersion, DatasetSnapshot, Evaluation, Lineage, ModelVersion, Num, RecordId};

const MODEL: &str = "churn";
const BENCHMARKS: usize = 10;
const KEPT_EVALUATIONS: usize = 10_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn num_map(pairs: &[(&str, f64)]) -> BTreeMap<String, Num> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Num(*v)))
        .collect()
}

/// Version `i`'s evaluations: accuracy rising with `i` (so a later version beats an earlier
/// holder), slices close enough to pass the fairness thresholds.
fn lineage(i: usize) -> Lineage {
    // What the default schema requires (a dataset digest, a commit), so the runs comply.
    let mut lineage = Lineage {
        code: Some(CodeVersion {
            commit: Some(format!("{i:040x}")),
            ..Default::default()
        }),
        ..Default::default()
    };
    lineage.datasets.insert(
        "train".into(),
        DatasetSnapshot {
            digest: Some(format!("blake3:{:064x}", 1_000 + i)),
            ..Default::default()
        },
    );
    let base = 0.80 + 0.15 * i as f64 / 1_000.0;
    for b in 0..BENCHMARKS {
        let acc = base + b as f64 * 0.001;
        let slice = |d: f64, sel: f64| num_map(&[("acc", acc + d), ("selection_rate", sel)]);
        lineage.evaluations.insert(
            format!("bench-{b}"),
            Evaluation {
                dataset: Some(format!("blake3:{:064x}", b + 1)),
                metrics: num_map(&[("acc", acc), ("f1", acc - 0.05), ("loss", 1.0 - acc)]),
                slices: BTreeMap::from([
                    ("sex=female".to_owned(), slice(-0.01, 0.40)),
                    ("sex=male".to_owned(), slice(0.01, 0.42)),
                    ("age=18-39".to_owned(), slice(0.0, 0.41)),
                    ("age=40-59".to_owned(), slice(-0.005, 0.40)),
                    ("age=60+".to_owned(), slice(-0.02, 0.39)),
                ]),
                ..Default::default()
            },
        );
    }
    lineage
}

fn policy() -> GatePolicy {
    let metric = |metric: &str, threshold: f64, greater: bool| MetricThreshold {
        benchmark: "bench-0".into(),
        metric: metric.into(),
        threshold: Some(threshold),
        min_absolute_change: None,
        min_relative_change: None,
        greater_is_better: greater,
    };
    GatePolicy {
        evaluations: vec![
            RequiredEvaluation {
                benchmark: "bench-0".into(),
                dataset: Some(format!("blake3:{:064x}", 1)),
            },
            RequiredEvaluation {
                benchmark: "bench-1".into(),
                dataset: None,
            },
        ],
        metrics: vec![
            MetricThreshold {
                min_absolute_change: Some(0.000_1),
                min_relative_change: Some(0.000_01),
                ..metric("acc", 0.8, true)
            },
            metric("loss", 0.3, false),
        ],
        fairness: vec![
            FairnessThreshold {
                benchmark: "bench-0".into(),
                metric: "acc".into(),
                attribute: "sex".into(),
                max_difference: Some(0.03),
                min_ratio: None,
            },
            FairnessThreshold {
                benchmark: "bench-0".into(),
                metric: "selection_rate".into(),
                attribute: "sex".into(),
                max_difference: None,
                min_ratio: Some(0.8),
            },
        ],
        compliant: true,
        approvals: 2,
        review: false,
    }
}

fn sign(mut a: Approval, key: &cairn_sync::SecretKey) -> Approval {
    a.signature = key
        .sign(&a.signed_bytes())
        .to_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    a
}

fn sync_stores(ws: &Workspace) -> cairn_sync::Stores {
    cairn_sync::Stores::open(&cairn_sync::StorePaths::in_workspace(ws.dir()), ws.user())
        .expect("sync stores")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// p50, p95 and max of `times`, in ms.
fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let at = |q: f64| ms(times[((times.len() - 1) as f64 * q).round() as usize]);
    format!(
        "p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms (n = {})",
        at(0.5),
        at(0.95),
        at(1.0),
        times.len()
    )
}

struct Built {
    versions: Vec<ModelVersion>,
}

fn build(root: &Path, n: usize, sample: &[usize]) -> Built {
    let t = Instant::now();
    let ws = Workspace::create(&root.join("ada"), "ada").expect("workspace");
    ws.team_create("lab", "ada@example.org").expect("team");
    let ada_id = ws.device_id().expect("device id");
    let approvers: Vec<(String, cairn_sync::SecretKey)> = ["bob", "carol"]
        .iter()
        .map(|name| {
            let key = cairn_sync::identity::load_or_create_key(&root.join(format!("{name}.key")))
                .expect("key");
            ((*name).to_owned(), key)
        })
        .collect();
    {
        let mut s = sync_stores(&ws);
        for (name, key) in &approvers {
            cairn_sync::roster::add(&mut s.catalog, &key.public().to_string(), name, "", &ada_id)
                .expect("roster");
        }
    }
    ws.create_registered_model(MODEL, Some("benchmark model"), BTreeMap::new())
        .expect("model");
    let mut versions = Vec::with_capacity(n);
    for i in 0..n {
        let run = ws
            .start_run(NewRun {
                experiment_name: Some("train".into()),
                name: Some(format!("train-{i}")),
                lineage: lineage(i),
                ..Default::default()
            })
            .expect("run")
            .id;
        let weights = format!("weights of version {i}\n");
        ws.add_artifact_reader(run, "model/weights.bin", &mut weights.as_bytes())
            .expect("artifact");
        let v = ws
            .create_model_version(
                MODEL,
                &format!("runs:/{run}/model"),
                Some(run),
                None,
                BTreeMap::new(),
            )
            .expect("version");
        assert_eq!(v.version as usize, i + 1);
        versions.push(v);
        if (i + 1) % 100 == 0 {
            println!(
                "  built {} versions ({:.1} s)",
                i + 1,
                t.elapsed().as_secs_f64()
            );
        }
    }
    let scope = GateScope {
        model: Some(MODEL.into()),
        alias: Some("champion".into()),
    };
    let gate = ws.set_gate(&scope, policy()).expect("gate");

    // What each approval attests: the version's figures as the gate reads them (a check gives
    // their digest; it is kept like any check).
    let mut entries: Vec<(String, Option<String>)> = Vec::new();
    let mut template: Option<GateEvaluation> = None;
    for &i in sample {
        let v = &versions[i];
        let e = ws.check_gate(MODEL, v.version, "champion").expect("check");
        for (name, key) in &approvers {
            let a = sign(
                Approval {
                    id: RecordId::new(),
                    model: MODEL.into(),
                    version: v.id,
                    content: v.content,
                    policy_hash: Some(gate.hash.clone()),
                    inputs: e.inputs.clone(),
                    device: key.public().to_string(),
                    user: name.clone(),
                    at_ms: e.at_ms,
                    comment: "reviewed".into(),
                    signature: String::new(),
                },
                key,
            );
            entries.push((
                format!("{}{}/{}", of_model(keys::APPROVAL, MODEL), v.id, a.id),
                Some(serde_json::to_string(&a).expect("json")),
            ));
        }
        template = Some(e);
    }
    // The history: kept gate evaluations, written in one change.
    let template = template.expect("a sampled version");
    for k in 0..KEPT_EVALUATIONS.saturating_sub(sample.len()) {
        let mut e = template.clone();
        e.id = RecordId::new();
        e.at_ms -= k as i64;
        entries.push((
            format!("{}{}", of_model(keys::EVALUATION, MODEL), e.id),
            Some(serde_json::to_string(&e).expect("json")),
        ));
    }
    sync_stores(&ws)
        .catalog
        .put_team_entries(&entries)
        .expect("approvals and history");
    println!(
        "built: {n} versions, {} evaluations, {} approvals, {} kept gate evaluations in {:.1} s",
        n * BENCHMARKS,
        sample.len() * approvers.len(),
        KEPT_EVALUATIONS,
        t.elapsed().as_secs_f64()
    );
    Built { versions }
}

fn main() {
    let n = env_usize("CAIRN_BENCH_VERSIONS", 1_000).max(2);
    let sample_size = env_usize("CAIRN_BENCH_SAMPLE", 50).clamp(2, n);
    let reps = env_usize("CAIRN_BENCH_REPS", 3).max(1);
    // Versions spread over the whole model, in ascending order (promotions climb through them).
    let sample: Vec<usize> = (0..sample_size)
        .map(|k| k * (n - 1) / (sample_size - 1))
        .collect();
    let tmp = tempfile::tempdir().expect("temp dir");
    let root = match std::env::var_os("CAIRN_BENCH_KEEP") {
        Some(dir) => {
            let dir = std::path::PathBuf::from(dir);
            std::fs::create_dir_all(&dir).expect("keep dir");
            dir
        }
        None => tmp.path().to_owned(),
    };
    println!(
        "gate bench: {n} versions × {BENCHMARKS} evaluations, {sample_size} sampled versions, {reps} rounds"
    );
    let versions = if root.join("ada").exists() {
        // Kept from an earlier invocation: timed again as it is (its history longer).
        let ws = Workspace::open(&root.join("ada"), "ada").expect("reopen");
        if ws.model_version_by_alias(MODEL, "champion").is_ok() {
            ws.delete_model_alias(MODEL, "champion")
                .expect("reset @champion");
        }
        println!("reusing the workspace kept in {}", root.display());
        ws.registered_model(MODEL).expect("model").versions
    } else {
        build(&root, n, &sample).versions
    };
    assert_eq!(versions.len(), n, "the kept workspace has {n} versions");
    // Timed on a reopened workspace, as a later `cairn` process or server would find it.
    let ws = Workspace::open(&root.join("ada"), "ada").expect("reopen");

    // A first check warms the caches a long-lived server keeps (the doc is loaded on open).
    let first = Instant::now();
    let e = ws
        .check_gate(MODEL, versions[sample[0]].version, "champion")
        .expect("check");
    println!("first check after open: {:.2} ms", ms(first.elapsed()));
    assert!(
        e.passed,
        "the first sampled version passes: {:?}",
        e.failed().collect::<Vec<_>>()
    );

    let mut checks = Vec::new();
    for _ in 0..reps {
        for &i in &sample {
            let t = Instant::now();
            let e = ws
                .check_gate(MODEL, versions[i].version, "champion")
                .expect("check");
            checks.push(t.elapsed());
            assert!(
                e.passed,
                "version {} passes: {:?}",
                i + 1,
                e.failed().collect::<Vec<_>>()
            );
            assert_eq!(e.checks.len(), 10, "every kind of check ran");
        }
    }
    println!("check_gate (no holder): {}", summary(&mut checks));

    let mut promotions = Vec::new();
    for &i in &sample {
        let t = Instant::now();
        let e = ws
            .promote(MODEL, versions[i].version, "champion", Some("better"))
            .expect("promotion");
        promotions.push(t.elapsed());
        assert!(e.promoted);
    }
    println!(
        "promote (climbing, change vs holder): {}",
        summary(&mut promotions)
    );

    // Checks against a holder: the top version holds @champion now, so every earlier one is
    // refused by the change threshold (and a refusal is as much work as a pass).
    let mut refusals = Vec::new();
    for &i in &sample[..sample.len() - 1] {
        let t = Instant::now();
        let e = ws
            .check_gate(MODEL, versions[i].version, "champion")
            .expect("check");
        refusals.push(t.elapsed());
        assert!(!e.passed && e.holder.is_some());
    }
    println!("check_gate (holder, refused): {}", summary(&mut refusals));

    let mut reads = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        let m = ws.registered_model(MODEL).expect("model");
        reads.push(t.elapsed());
        assert_eq!(m.versions.len(), n);
    }
    println!("registered_model ({n} versions): {}", summary(&mut reads));
    for limit in [50, 10_000] {
        let mut history = Vec::new();
        for _ in 0..10 {
            let t = Instant::now();
            let h = ws.gate_evaluations(MODEL, limit).expect("history");
            history.push(t.elapsed());
            assert_eq!(h.len(), limit);
        }
        println!(
            "gate_evaluations, newest {limit} of ≥ {KEPT_EVALUATIONS} kept: {}",
            summary(&mut history)
        );
    }
    let mut approvals = Vec::new();
    for &i in &sample {
        let t = Instant::now();
        let a = ws
            .approvals(MODEL, versions[i].version, "champion")
            .expect("approvals");
        approvals.push(t.elapsed());
        assert_eq!(a.approvals.len(), 2);
    }
    println!("approvals (2, verified): {}", summary(&mut approvals));
}
