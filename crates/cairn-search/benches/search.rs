//! Search benchmark (plain `fn main`, run with `cargo bench -p cairn-search --bench search`).
//! Prints figures; asserts nothing about speed.
//!
//! 1. Generates 100,000 runs shaped like `cairn demo` (8 model families, their owners, deep
//!    nets with optimizer adam/adamw/sgd and tabular models, 4 summary metrics, tags, notes of
//!    which some mention "label smoothing", dataset and code lineage, hosts and GPUs).
//! 2. Full rebuild of an on-disk index from them, then a reopen (the check `cairn-core` pays
//!    at every open: meta, schema version, checksums of every file).
//! 3. p50/p99 over `ITERS` searches (after a warm-up) of each query: the three (a
//!    filtered + sorted first page of 100, a full-text query, an owner query) and a few more.
//! 4. Incremental: one new run upserted and committed into the 100k index, until searchable.
//!
//! `CAIRN_BENCH_RUNS` (default 100000) and `CAIRN_BENCH_ITERS` (default 200) change the sizes.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_model::{
    CodeVersion, DatasetSnapshot, ExperimentId, GpuGroup, InfraProfile, MetricSummary, Run, RunId,
    RunStatus,
};
use cairn_search::{IndexedRun, SearchIndex, SearchRequest, parse, parse_sort};

struct Family {
    name: &'static str,
    team: &'static str,
    owners: &'static [&'static str],
    dataset: &'static str,
    deep: bool,
}

const FAMILIES: &[Family] = &[
    Family {
        name: "resnet50-imagenet",
        team: "vision",
        owners: &["alice", "bob"],
        dataset: "imagenet-1k",
        deep: true,
    },
    Family {
        name: "bert-base-sentiment",
        team: "nlp",
        owners: &["carol", "dave"],
        dataset: "sst2",
        deep: true,
    },
    Family {
        name: "xgboost-churn",
        team: "growth",
        owners: &["erin", "frank"],
        dataset: "churn-events",
        deep: false,
    },
    Family {
        name: "vit-small-cifar",
        team: "vision",
        owners: &["alice", "gina"],
        dataset: "cifar100",
        deep: true,
    },
    Family {
        name: "gpt2-distill",
        team: "nlp",
        owners: &["hank", "carol"],
        dataset: "openwebtext",
        deep: true,
    },
    Family {
        name: "lightgbm-fraud",
        team: "risk",
        owners: &["ivan", "frank"],
        dataset: "transactions",
        deep: false,
    },
    Family {
        name: "whisper-small-finetune",
        team: "speech",
        owners: &["ivan", "chen"],
        dataset: "common-voice-en",
        deep: true,
    },
    Family {
        name: "yolov8-retail-detection",
        team: "vision",
        owners: &["dana", "alice"],
        dataset: "shelf-images",
        deep: true,
    },
];

const NOTES: &[&str] = &[
    "Baseline with label smoothing 0.1 and a cosine schedule.",
    "Warmup for 5% of steps; loss spikes disappear with gradient clipping at 1.0.",
    "Tried label smoothing 0.2: slightly worse calibration, same accuracy.",
    "Mixed precision (bf16); throughput up 1.8x, no accuracy change.",
    "Data loader was the bottleneck: GPU idle 30% of the time. Fixed with 16 workers.",
    "Lower learning rate after divergence in the previous trial.",
    "Ablation: no augmentation. Overfits after epoch 40.",
    "",
    "",
    "",
];

const GPUS: &[&str] = &[
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA H100 80GB HBM3",
    "NVIDIA L4",
    "NVIDIA RTX A6000",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[(self.next() % xs.len() as u64) as usize]
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    fn hex(&mut self, n: usize) -> String {
        (0..n.div_ceil(16))
            .map(|_| format!("{:016x}", self.next()))
            .collect::<String>()[..n]
            .to_owned()
    }
}

fn summary(last: f64) -> MetricSummary {
    MetricSummary {
        last,
        step: 100,
        ts_ms: 0,
        min: None,
        max: None,
        count: 100,
    }
}

/// `n` runs spread over families and over the last 90 days; experiment names per run.
fn generate(n: usize) -> (Vec<Run>, Vec<String>) {
    let mut rng = Rng(42);
    let now = 1_760_000_000_000i64;
    let span = 90 * 86_400_000i64;
    let mut runs = Vec::with_capacity(n);
    let mut exps = Vec::with_capacity(n);
    let exp_ids: Vec<ExperimentId> = (0..FAMILIES.len() * 16)
        .map(|_| ExperimentId::new())
        .collect();
    for i in 0..n {
        let fi = i % FAMILIES.len();
        let fam = &FAMILIES[fi];
        let nth = i / FAMILIES.len();
        let sweep = nth / 2000;
        let start = now - span + (span as f64 * i as f64 / n as f64) as i64;
        let id = RunId::from_parts(
            start as u64,
            (u128::from(rng.next()) << 64) | u128::from(rng.next()),
        );
        let exp = exp_ids[(fi * 16 + sweep % 16) % exp_ids.len()];
        let mut run = Run::new(id, exp, format!("trial-{nth:05}"), start);
        run.owner = Some((*rng.pick(fam.owners)).to_owned());
        run.status = if i + 20 > n {
            RunStatus::Running
        } else if rng.chance(0.04) {
            RunStatus::Failed
        } else {
            RunStatus::Finished
        };
        run.end_ms = run.status.is_final().then_some(start + 3_600_000);
        run.tags.insert("team".into(), fam.team.into());
        run.tags.insert(
            "stage".into(),
            (*rng.pick(&["baseline", "candidate", "candidate", "exploration"])).into(),
        );
        if rng.chance(0.05) {
            run.tags.insert("champion".into(), "true".into());
        }
        run.notes = (*rng.pick(NOTES)).to_owned();
        let mut quality;
        if fam.deep {
            let lr = 10f64.powf(-5.0 + 4.0 * rng.unit());
            let opt = *rng.pick(&["adam", "adamw", "sgd", "adam"]);
            let ls = *rng.pick(&[0.0, 0.0, 0.1, 0.2]);
            run.params
                .insert("learning_rate".into(), format!("{lr:.6}"));
            run.params.insert("optimizer".into(), opt.into());
            run.params.insert(
                "batch_size".into(),
                rng.pick(&[64, 128, 256, 512]).to_string(),
            );
            run.params.insert(
                "weight_decay".into(),
                (*rng.pick(&["0.0", "0.0001", "0.01", "0.05"])).into(),
            );
            run.params.insert("label_smoothing".into(), ls.to_string());
            run.params
                .insert("epochs".into(), (*rng.pick(&["10", "30", "90"])).into());
            run.params
                .insert("dropout".into(), format!("{:.2}", rng.unit() * 0.5));
            run.params.insert(
                "scheduler".into(),
                (*rng.pick(&["cosine", "linear", "step"])).into(),
            );
            let best = if opt == "sgd" { 0.05f64 } else { 3e-4 };
            quality = (1.0 - (lr.ln() - best.ln()).abs() / 6.0).clamp(0.0, 1.0);
            quality += if opt == "sgd" { -0.05 } else { 0.02 } + if ls > 0.0 { 0.03 } else { 0.0 };
        } else {
            let depth = rng.next() % 10 + 3;
            let eta = 0.01 * 50f64.powf(rng.unit());
            run.params.insert("max_depth".into(), depth.to_string());
            run.params.insert("eta".into(), format!("{eta:.4}"));
            run.params
                .insert("subsample".into(), format!("{:.2}", 0.5 + rng.unit() / 2.0));
            run.params.insert(
                "n_estimators".into(),
                (*rng.pick(&["200", "500", "1000"])).into(),
            );
            run.params
                .insert("objective".into(), "binary:logistic".into());
            quality =
                (1.0 - (depth as f64 - 7.0).abs() / 8.0 - (eta.ln() - 0.1f64.ln()).abs() / 8.0)
                    .clamp(0.0, 1.0);
        }
        quality = (quality + (rng.unit() - 0.5) * 0.1).clamp(0.0, 1.0);
        let acc = 0.5 + 0.48 * quality;
        run.metrics.insert("acc".into(), summary(acc));
        run.metrics
            .insert("loss".into(), summary(2.0 * (1.0 - quality) + 0.05));
        run.metrics.insert("val/acc".into(), summary(acc - 0.02));
        run.metrics
            .insert("val/loss".into(), summary(2.1 * (1.0 - quality) + 0.07));
        let snapshot = nth / 400;
        for (role, rows) in [("train", 1_000_000u64), ("val", 50_000)] {
            run.lineage.datasets.insert(
                role.into(),
                DatasetSnapshot {
                    uri: Some(format!(
                        "s3://acme-datasets/{}/v{}/{role}",
                        fam.dataset,
                        snapshot + 1
                    )),
                    digest: Some(format!("blake3:{:016x}{:048x}", fi * 1000 + snapshot, 0)),
                    rows: Some(rows),
                    ..Default::default()
                },
            );
        }
        run.lineage.code = Some(CodeVersion {
            repo: Some(format!("git@github.com:acme-ml/{}.git", fam.team)),
            commit: Some(rng.hex(40)),
            branch: Some(if nth % 48 < 32 {
                "main".into()
            } else {
                format!("exp/{}", rng.pick(&["label-smoothing", "warmup", "bf16"]))
            }),
            ..Default::default()
        });
        run.lineage.infra = Some(InfraProfile {
            host: Some(format!("gpu-box-{}", rng.next() % 12)),
            gpus: vec![GpuGroup {
                model: (*rng.pick(GPUS)).into(),
                count: 8,
                ..Default::default()
            }],
            ..Default::default()
        });
        runs.push(run);
        exps.push(if sweep == 0 {
            fam.name.to_owned()
        } else {
            format!("{}-sweep-{:02}", fam.name, sweep + 1)
        });
    }
    (runs, exps)
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = env("CAIRN_BENCH_RUNS", 100_000);
    let iters = env("CAIRN_BENCH_ITERS", 200);
    let t = Instant::now();
    // 20 more for the incremental part.
    let (all_runs, all_exps) = generate(n + 20);
    let (runs, exps) = (&all_runs[..n], &all_exps[..n]);
    println!("generated {n} runs in {:.1} s", t.elapsed().as_secs_f64());

    let tmp = tempfile::tempdir()?;
    let dir = tmp.path().join("index");
    let items = || {
        runs.iter().zip(exps).map(|(run, e)| IndexedRun {
            run,
            experiment_name: e,
            cost: None,
            review: None,
        })
    };
    let t = Instant::now();
    let (idx, health) = SearchIndex::open_or_rebuild(&dir, items)?;
    let rebuild = t.elapsed();
    println!(
        "full rebuild: {n} runs in {:.1} s ({:.0} runs/s), {:.1} MiB on disk, open said {health:?}",
        rebuild.as_secs_f64(),
        n as f64 / rebuild.as_secs_f64(),
        dir_size(&dir) as f64 / (1 << 20) as f64
    );
    drop(idx);
    let t = Instant::now();
    let (mut idx, health) = SearchIndex::open(&dir)?;
    println!(
        "reopen (meta, schema, checksums): {} ({health:?})",
        ms(t.elapsed())
    );

    let queries: &[(&str, &str, &str, usize)] = &[
        (
            "filtered + sorted (issue)",
            "metrics.acc > 0.9 and params.optimizer = 'adam'",
            "metrics.acc DESC",
            0,
        ),
        ("full text phrase (issue)", "\"label smoothing\"", "", 0),
        ("owner (issue)", "owner:alice", "", 0),
        ("full text word", "warmup", "", 0),
        (
            "the issue's 'done when'",
            "owner:alice params.optimizer = 'adam' metrics.acc > 0.9 \"label smoothing\"",
            "metrics.acc DESC",
            0,
        ),
        (
            "MLflow LIKE on a tag",
            "tags.stage LIKE 'cand%' and attributes.status = 'FINISHED'",
            "attributes.start_time DESC",
            0,
        ),
        (
            "param range, sorted by it",
            "0.0001 <= params.learning_rate < 0.001",
            "params.learning_rate",
            0,
        ),
        (
            "OR / NOT / lineage",
            "(infra.gpu LIKE '%H100%' OR code.branch = 'main') AND NOT is:failed",
            "metrics.loss",
            0,
        ),
        ("everything, by metric", "", "metrics.val/acc DESC", 0),
        ("everything, page at 10,000", "", "metrics.acc DESC", 10_000),
        (
            "count only",
            "params.optimizer IN ('adam', 'adamw')",
            "",
            usize::MAX,
        ),
    ];
    println!(
        "\n{:<30} {:>8} {:>10} {:>10}   query (sort)",
        "search, first page of 100", "matches", "p50", "p99"
    );
    for (label, q, sort, offset) in queries {
        let (limit, offset) = if *offset == usize::MAX {
            (0, 0)
        } else {
            (100, *offset)
        };
        let req = SearchRequest::new(parse(q)?)
            .sorted_by(parse_sort(sort)?)
            .page(limit, offset);
        let mut times = Vec::with_capacity(iters);
        let mut total = 0;
        for i in 0..iters + 5 {
            let t = Instant::now();
            let page = idx.search(&req)?;
            if i >= 5 {
                times.push(t.elapsed());
            }
            total = page.total;
        }
        times.sort();
        println!(
            "{label:<30} {total:>8} {:>10} {:>10}   {q} ({sort})",
            ms(pct(&times, 0.5)),
            ms(pct(&times, 0.99))
        );
    }

    // Incremental: a new run, committed, then found.
    let mut times = Vec::new();
    for (run, e) in all_runs[n..].iter().zip(&all_exps[n..]) {
        let t = Instant::now();
        idx.upsert(&[IndexedRun {
            run,
            experiment_name: e,
            cost: None,
            review: None,
        }])?;
        idx.commit()?;
        let found = idx.search(&SearchRequest::new(parse(&format!("id = '{}'", run.id))?))?;
        times.push(t.elapsed());
        assert_eq!(found.runs, vec![run.id]);
    }
    times.sort();
    println!(
        "\nincremental: upsert 1 run + commit + find it, into {n} runs: p50 {}, max {}",
        ms(pct(&times, 0.5)),
        ms(*times.last().unwrap_or(&Duration::ZERO))
    );
    Ok(())
}
