//! Cost-rollup benchmark (plain `fn main`, run with `cargo bench -p cairn-core --bench cost`).
//! Prints figures; asserts nothing about speed, only that the report covers every live run (a
//! bench that times an empty report measures nothing).
//!
//! The workspace it builds once (issue #16's target: "`cairn cost --by exp` over 100k runs
//! ≤ 100 ms warm"):
//!
//! - `RUNS` (100,000) runs in 50 experiments, imported in batches, started over the last 90
//!   days; 12 owners, a `team` tag; 10 minutes to 2 days long; 1 in 100 deleted, the newest 40
//!   still running, 4% failed;
//! - machines: 8, 4, 2 or 1 GPU of four models (H200, H100, A100, L4, each with a price per
//!   GPU-hour in the team's table), a GPU model without a price (the run is unpriced), CPU boxes
//!   priced per hour by instance type, and 1 in 10 runs with its own hourly price;
//! - 6 in 10 runs with a summary value of `acc` (what `--metric acc` reads);
//! - 1 in 40 runs with GPU utilisation readings (40 per GPU on two GPUs: idle loading data at
//!   the start, a stall in the middle of some, idle at the end), so idle figures and the top
//!   idle wasters are real;
//! - one budget (`exp:family-00`, per month).
//!
//! The projection is caught up once (every run costed); then each measurement opens the
//! workspace afresh (a fresh catalog connection, so an empty SQLite page cache, as a fresh
//! `cairn cost` process has; the OS page cache is warm) and times `Workspace::cost_report`.
//!
//! `CAIRN_BENCH_RUNS` (default 100000) and `CAIRN_BENCH_REPS` (default 20) set the sizes;
//! `CAIRN_BENCH_KEEP=DIR` builds the workspace in `DIR` and keeps it; run again with the same
//! `DIR`, it times the kept workspace without building it again (what compares two builds of
//! the code on the same data: the first open by a newer build migrates its catalog, timed
//! apart).
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_core::cost::{CostRequest, SetBudget, SetPrice};
use cairn_core::{MetricPoint, Workspace};
use cairn_model::{GpuGroup, InfraProfile, MetricSummary, Run, RunId, RunStatus};

const EXPERIMENTS: usize = 50;
const OWNERS: [&str; 12] = [
    "alice", "bob", "chen", "dana", "eve", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "nia",
];
/// GPU models, their price per GPU-hour (`None`: no price in the table), and how common.
const GPUS: [(&str, Option<f64>, u64); 5] = [
    ("NVIDIA H200", Some(3.5), 30),
    ("NVIDIA H100 80GB HBM3", Some(2.9), 30),
    ("NVIDIA A100-SXM4-80GB", Some(1.8), 20),
    ("NVIDIA L4", Some(0.7), 10),
    ("NVIDIA RTX 6000 Ada Generation", None, 3),
];
const CPU_INSTANCE: (&str, f64) = ("c7i.8xlarge", 1.428);
const BATCH: usize = 1000;
const USER: &str = "bench";
const H: i64 = 3_600_000;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// SplitMix64: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The machine of a run: its GPU model and count (`None`: a CPU box).
fn infra(rng: &mut Rng) -> (InfraProfile, Option<u32>) {
    let total: u64 = GPUS.iter().map(|g| g.2).sum::<u64>() + 7;
    let mut pick = rng.below(total);
    let own_price = rng.below(10) == 0;
    for (model, _, weight) in GPUS {
        if pick < weight {
            let count = [8, 8, 4, 2, 1][rng.below(5) as usize];
            let profile = InfraProfile {
                host: Some(format!("gpu-box-{:02}", rng.below(16) + 1)),
                gpus: vec![GpuGroup {
                    model: model.into(),
                    count,
                    ..Default::default()
                }],
                instance_type: Some("p5en.48xlarge".into()),
                hourly_price_usd: own_price.then_some(f64::from(count) * 4.1),
                ..Default::default()
            };
            return (profile, Some(count));
        }
        pick -= weight;
    }
    let profile = InfraProfile {
        host: Some(format!("cpu-box-{:02}", rng.below(4) + 1)),
        instance_type: Some(CPU_INSTANCE.0.into()),
        hourly_price_usd: own_price.then_some(2.0),
        ..Default::default()
    };
    (profile, None)
}

/// Utilisation readings of one GPU over `[start, end)`: idle at the start (data loading),
/// busy, a stall in the middle of some runs, idle at the end.
fn util_readings(rng: &mut Rng, start: i64, end: i64) -> Vec<MetricPoint> {
    const N: i64 = 40;
    let step = ((end - start) / N).max(1);
    let idle_start = rng.below(6) as i64;
    let idle_end = N - rng.below(5) as i64;
    let stall = (rng.below(3) == 0).then(|| 15 + rng.below(10) as i64);
    (0..N)
        .map(|i| {
            let idle =
                i < idle_start || i >= idle_end || stall.is_some_and(|s| i >= s && i < s + 3);
            MetricPoint {
                step: i,
                ts_ms: start + i * step,
                value: if idle {
                    rng.below(4) as f64
                } else {
                    85.0 + rng.below(14) as f64
                },
            }
        })
        .collect()
}

fn build(dir: &Path, runs: usize) -> Workspace {
    let started = Instant::now();
    let ws = Workspace::create(dir, USER).expect("create the workspace");
    for (model, usd, _) in GPUS {
        if let Some(usd) = usd {
            ws.set_price(&SetPrice {
                target: model.into(),
                usd,
                per: Some("gpu-hour".into()),
                from: Some("always".into()),
            })
            .expect("price");
        }
    }
    ws.set_price(&SetPrice {
        target: CPU_INSTANCE.0.into(),
        usd: CPU_INSTANCE.1,
        per: Some("hour".into()),
        from: Some("always".into()),
    })
    .expect("price");
    let exps: Vec<_> = (0..EXPERIMENTS)
        .map(|i| {
            ws.ensure_experiment(&format!("family-{i:02}"))
                .expect("experiment")
                .0
        })
        .collect();
    ws.set_budget(&SetBudget {
        family: "exp:family-00".into(),
        usd: Some(50_000.0),
        period: Some("month".into()),
    })
    .expect("budget");

    let mut rng = Rng(16);
    let now = now_ms();
    let span: i64 = 90 * 24 * H;
    let mut batch: Vec<Run> = Vec::with_capacity(BATCH);
    let mut traced: Vec<(RunId, i64, i64)> = Vec::new();
    for i in 0..runs {
        // Spread evenly over 90 days, oldest first; the newest 40 still run.
        let start = now - span + (span as f64 * i as f64 / runs as f64) as i64 - 3 * H;
        let id = RunId::from_parts(start as u64, (u128::from(rng.next()) << 64) | i as u128);
        let exp = &exps[rng.below(EXPERIMENTS as u64) as usize];
        let mut run = Run::new(id, exp.id, format!("trial-{i:06}"), start);
        run.owner = Some(OWNERS[rng.below(OWNERS.len() as u64) as usize].into());
        run.tags
            .insert("team".into(), ["vision", "nlp", "speech"][i % 3].into());
        let (profile, gpus) = infra(&mut rng);
        run.lineage.infra = Some(profile);
        let running = i + 40 >= runs;
        let minutes = 10.0 * (288.0f64).powf(rng.unit()); // 10 min to 2 days, log-uniform
        let end = start + (minutes * 60_000.0) as i64;
        if running {
            run.status = RunStatus::Running;
        } else {
            run.status = if rng.below(25) == 0 {
                RunStatus::Failed
            } else {
                RunStatus::Finished
            };
            run.end_ms = Some(end);
        }
        run.deleted = !running && rng.below(100) == 0;
        if rng.below(10) < 6 {
            let acc = 0.5 + 0.45 * rng.unit();
            run.metrics.insert(
                "acc".into(),
                MetricSummary {
                    last: acc,
                    step: 1000,
                    ts_ms: end,
                    min: Some(acc),
                    max: Some(acc),
                    count: 1,
                },
            );
        }
        if !running && gpus.is_some_and(|g| g >= 2) && i % 40 == 0 {
            traced.push((id, start, end));
        }
        batch.push(run);
        if batch.len() == BATCH {
            ws.import_runs(std::mem::take(&mut batch))
                .expect("import runs");
        }
    }
    if !batch.is_empty() {
        ws.import_runs(batch).expect("import runs");
    }
    let imported = started.elapsed();
    for (id, start, end) in &traced {
        let g0 = util_readings(&mut rng, *start, *end);
        let g1 = util_readings(&mut rng, *start, *end);
        ws.log_metrics(
            *id,
            &[
                ("system/gpu_0_utilization_percentage", &g0),
                ("system/gpu_1_utilization_percentage", &g1),
            ],
        )
        .expect("log utilisation");
    }
    let logged = started.elapsed();
    ws.cost_catch_up().expect("cost every run");
    println!(
        "built: {runs} runs in {EXPERIMENTS} experiments ({:.1} s), utilisation of {} runs ({:.1} s), costed ({:.1} s)",
        imported.as_secs_f64(),
        traced.len(),
        (logged - imported).as_secs_f64(),
        (started.elapsed() - logged).as_secs_f64(),
    );
    ws
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `reps` reports, each on a freshly opened workspace.
fn measure(dir: &Path, label: &str, req: &CostRequest, reps: usize, live: u64) {
    let mut open = Vec::with_capacity(reps);
    let mut report = Vec::with_capacity(reps);
    for rep in 0..=reps {
        let t0 = Instant::now();
        let ws = Workspace::open(dir, USER).expect("open");
        let t1 = Instant::now();
        let r = ws.cost_report(req).expect("report");
        let t2 = Instant::now();
        assert_eq!(
            r.total.runs, live,
            "{label}: the report covers every live run"
        );
        assert!(!r.families.is_empty() && !r.top_idle.is_empty(), "{label}");
        drop(ws);
        if rep > 0 {
            open.push(t1 - t0);
            report.push(t2 - t1);
        }
    }
    open.sort();
    report.sort();
    println!(
        "{label:<28} cost_report p50 {:7.1} ms  p95 {:7.1} ms  min {:7.1} ms   (open p50 {:5.1} ms)  {reps} reps",
        ms(pct(&report, 0.5)),
        ms(pct(&report, 0.95)),
        ms(report[0]),
        ms(pct(&open, 0.5)),
    );
}

fn main() {
    let runs = env_usize("CAIRN_BENCH_RUNS", 100_000);
    let reps = env_usize("CAIRN_BENCH_REPS", 20);
    let tmp;
    let dir = match std::env::var_os("CAIRN_BENCH_KEEP") {
        Some(d) => std::path::PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir().expect("temp dir");
            tmp.path().join("ws")
        }
    };
    if !dir.join("catalog.db").exists() {
        drop(build(&dir, runs));
    }
    // The first open of a kept workspace by this build (a migration, when its catalog is
    // older) and the first report (the projection caught up), apart from the measurements.
    let t0 = Instant::now();
    let ws = Workspace::open(&dir, USER).expect("open");
    let opened = t0.elapsed();
    let first = ws.cost_report(&CostRequest::default()).expect("report");
    println!(
        "first open {:.1} ms, first report {:.1} ms: {} live runs, {} families, {} idle wasters",
        ms(opened),
        ms(t0.elapsed() - opened),
        first.total.runs,
        first.families.len(),
        first.top_idle.len()
    );
    drop(ws);
    let live = first.total.runs;
    let by = |by: &str| CostRequest {
        by: Some(by.into()),
        ..Default::default()
    };
    measure(&dir, "--by exp", &by("exp"), reps, live);
    measure(&dir, "--by owner", &by("owner"), reps, live);
    measure(
        &dir,
        "--by exp --metric acc",
        &CostRequest {
            metric: Some("acc".into()),
            ..by("exp")
        },
        reps,
        live,
    );
}
