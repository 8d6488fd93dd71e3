//! Ingest and chart-read benchmark of the `Workspace` API (plain `fn main`, run with
//! `cargo bench -p cairn-core --bench ingest`). Prints figures; asserts nothing about speed.
//!
//! What it measures, each on a fresh on-disk workspace (the "Foundation" targets):
//!
//! 1. `Workspace::log_metrics` with 10k-point batches (one key per call): 20 runs × 5 metrics ×
//!    100k points = 10M float32-origin points (noisy training curves rounded through f32, as
//!    `loss.item()` logs them), batches interleaved across runs as concurrent jobs would send
//!    them. Repeated `REPS` times on fresh workspaces; the median is reported with the range.
//! 2. The same API with MLflow `log-batch`-sized calls (10 keys × 100 points = 1,000 points per
//!    call), to show the fixed cost of a call (catalog lookups, summary projection).
//! 3. Bytes per point on disk: `Workspace::metric_storage()` (sealed chunk data + block summaries)
//!    and the files `metrics.db` + `metrics.db-wal`, as left and after a WAL checkpoint.
//! 4. A 1M-point series read back downsampled to 2,000 buckets with
//!    `Workspace::metric_buckets` (whole range and zoomed in), on a reopened workspace.
//!
//! `CAIRN_BENCH_REPS` (default 3) sets the number of repetitions of 1 and 2.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use cairn_core::{MetricPoint as Point, NewRun, Workspace};
use cairn_model::{RunId, RunStatus};

const RUNS: usize = 20;
const KEYS: [&str; 5] = ["train/loss", "train/acc", "val/loss", "val/acc", "lr"];
const POINTS_PER_SERIES: usize = 100_000;
const BATCH: usize = 10_000;

const SMALL_RUNS: usize = 10;
const SMALL_KEYS: usize = 10;
const SMALL_STEPS: usize = 10_000;
const SMALL_STEPS_PER_CALL: usize = 100;

const LONG_POINTS: usize = 1_000_000;
const BUCKETS: usize = 2_000;

/// A small xorshift generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Roughly normal noise in about [-3, 3] (sum of uniforms).
    fn noise(&mut self) -> f32 {
        let sum: f32 = (0..4)
            .map(|_| (self.next() >> 40) as f32 / (1u64 << 24) as f32)
            .sum();
        (sum - 2.0) * 1.7
    }
}

/// Points `from..from + n` of metric `kind` of a run: decaying losses, rising accuracies, a
/// cosine learning-rate schedule; values rounded through f32.
fn curve(kind: usize, seed: u64, from: usize, n: usize, rng: &mut Rng) -> Vec<Point> {
    let scale = 1.0 + (seed % 7) as f32 * 0.3;
    (from..from + n)
        .map(|i| {
            let t = i as f32;
            let v: f32 = match kind % 5 {
                0 | 2 => scale * (-t / 20_000.0).exp() + 0.2 + 0.03 * rng.noise(),
                1 | 3 => 0.95 - 0.8 * (-t / 15_000.0).exp() + 0.01 * rng.noise(),
                _ => {
                    3e-4 * 0.5 * (1.0 + (std::f32::consts::PI * t / POINTS_PER_SERIES as f32).cos())
                }
            };
            Point {
                step: i as i64,
                ts_ms: 1_795_752_388_045 + i as i64 * 31 + (rng.next() % 5) as i64,
                value: f64::from(v),
            }
        })
        .collect()
}

fn median<T: PartialOrd + Copy>(mut v: Vec<T>) -> T {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v[v.len() / 2]
}

fn range(v: &[f64]) -> (f64, f64) {
    v.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        })
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn start_runs(ws: &Workspace, n: usize) -> Result<Vec<RunId>, Box<dyn std::error::Error>> {
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let run = ws.start_run(NewRun {
            experiment_name: Some("bench".into()),
            name: Some(format!("bench-{i}")),
            params: [("lr".to_owned(), "0.0003".to_owned())].into(),
            ..Default::default()
        })?;
        ids.push(run.id);
    }
    Ok(ids)
}

struct Disk {
    chunk_points: u64,
    chunk_bytes: u64,
    tail_points: u64,
    db: u64,
    wal: u64,
    db_after_checkpoint: u64,
}

/// Storage figures of a workspace; closes it, checkpoints the WAL and measures again.
fn disk(ws: Workspace) -> Result<Disk, Box<dyn std::error::Error>> {
    let stats = ws.metric_storage()?;
    let path = ws.dir().join("metrics.db");
    let wal = path.with_extension("db-wal");
    let (db, wal_len) = (file_len(&path), file_len(&wal));
    drop(ws);
    let conn = rusqlite::Connection::open(&path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    drop(conn);
    Ok(Disk {
        chunk_points: stats.points,
        chunk_bytes: stats.chunk_bytes,
        tail_points: stats.tail_points,
        db,
        wal: wal_len,
        db_after_checkpoint: file_len(&path),
    })
}

/// One repetition of the 10k-point-batch ingest. Returns (points/s in log_metrics, end_run time,
/// storage figures).
fn big_batches(dir: &Path) -> Result<(f64, Duration, Disk), Box<dyn std::error::Error>> {
    let ws = Workspace::create(dir, "bench")?;
    let runs = start_runs(&ws, RUNS)?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut in_call = Duration::ZERO;
    for batch in 0..POINTS_PER_SERIES / BATCH {
        for (r, id) in runs.iter().enumerate() {
            for (k, key) in KEYS.iter().enumerate() {
                let points = curve(k, r as u64, batch * BATCH, BATCH, &mut rng);
                let t = Instant::now();
                ws.log_metrics(*id, &[(key, &points)])?;
                in_call += t.elapsed();
            }
        }
    }
    let t = Instant::now();
    for id in &runs {
        ws.set_status(*id, RunStatus::Finished, None)?;
    }
    let end = t.elapsed();
    let total = (RUNS * KEYS.len() * POINTS_PER_SERIES) as f64;
    Ok((total / in_call.as_secs_f64(), end, disk(ws)?))
}

/// One repetition of MLflow-sized calls: 10 keys × 100 steps per call.
fn small_batches(dir: &Path) -> Result<f64, Box<dyn std::error::Error>> {
    let ws = Workspace::create(dir, "bench")?;
    let runs = start_runs(&ws, SMALL_RUNS)?;
    let keys: Vec<String> = (0..SMALL_KEYS).map(|k| format!("m{k}")).collect();
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut in_call = Duration::ZERO;
    for (r, id) in runs.iter().enumerate() {
        for from in (0..SMALL_STEPS).step_by(SMALL_STEPS_PER_CALL) {
            let series: Vec<Vec<Point>> = (0..SMALL_KEYS)
                .map(|k| curve(k, r as u64, from, SMALL_STEPS_PER_CALL, &mut rng))
                .collect();
            let batches: Vec<(&str, &[Point])> = keys
                .iter()
                .zip(&series)
                .map(|(k, p)| (k.as_str(), p.as_slice()))
                .collect();
            let t = Instant::now();
            ws.log_metrics(*id, &batches)?;
            in_call += t.elapsed();
        }
        ws.set_status(*id, RunStatus::Finished, None)?;
    }
    Ok((SMALL_RUNS * SMALL_KEYS * SMALL_STEPS) as f64 / in_call.as_secs_f64())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let reps: usize = std::env::var("CAIRN_BENCH_REPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let root = tempfile::tempdir()?;
    let total = RUNS * KEYS.len() * POINTS_PER_SERIES;

    // 1 + 3: 10k-point batches.
    let mut rates = Vec::new();
    let mut ends = Vec::new();
    let mut last_disk = None;
    for rep in 0..reps {
        let dir = root.path().join(format!("big-{rep}"));
        let (rate, end, d) = big_batches(&dir)?;
        println!(
            "  rep {rep}: log_metrics {:.2} M points/s, end_run x{RUNS} {:.0} ms",
            rate / 1e6,
            end.as_secs_f64() * 1e3
        );
        rates.push(rate);
        ends.push(end.as_secs_f64());
        last_disk = Some(d);
        std::fs::remove_dir_all(&dir)?;
    }
    let (lo, hi) = range(&rates);
    println!(
        "ingest (Workspace::log_metrics, {BATCH}-point batches, {RUNS} runs x {} metrics x {POINTS_PER_SERIES} points = {total} points): median {:.2} M points/s (range {:.2}-{:.2}, {reps} reps)",
        KEYS.len(),
        median(rates) / 1e6,
        lo / 1e6,
        hi / 1e6
    );
    println!(
        "end_run (seal + final summaries) of {RUNS} runs: median {:.0} ms",
        median(ends) * 1e3
    );
    if let Some(d) = last_disk {
        let pts = (total as u64).max(1) as f64;
        println!(
            "storage, metric_storage(): {} points in chunks, {} tail points, {} bytes = {:.2} bytes/point",
            d.chunk_points,
            d.tail_points,
            d.chunk_bytes,
            d.chunk_bytes as f64 / d.chunk_points.max(1) as f64
        );
        println!(
            "storage, files: metrics.db {} + metrics.db-wal {} = {:.2} bytes/point; after WAL checkpoint metrics.db {} = {:.2} bytes/point",
            d.db,
            d.wal,
            (d.db + d.wal) as f64 / pts,
            d.db_after_checkpoint,
            d.db_after_checkpoint as f64 / pts
        );
    }

    // 2: MLflow-sized calls.
    let mut rates = Vec::new();
    for rep in 0..reps {
        let dir = root.path().join(format!("small-{rep}"));
        rates.push(small_batches(&dir)?);
        std::fs::remove_dir_all(&dir)?;
    }
    let (lo, hi) = range(&rates);
    println!(
        "ingest (Workspace::log_metrics, {} points per call = {SMALL_KEYS} keys x {SMALL_STEPS_PER_CALL} steps, {SMALL_RUNS} runs x {SMALL_KEYS} metrics x {SMALL_STEPS} steps): median {:.2} M points/s (range {:.2}-{:.2}, {reps} reps)",
        SMALL_KEYS * SMALL_STEPS_PER_CALL,
        median(rates) / 1e6,
        lo / 1e6,
        hi / 1e6
    );

    // 4: a 1M-point series, downsampled.
    let dir = root.path().join("long");
    let long = {
        let ws = Workspace::create(&dir, "bench")?;
        let id = start_runs(&ws, 1)?[0];
        let mut rng = Rng(0xdead_beef_cafe_f00d);
        let t = Instant::now();
        for from in (0..LONG_POINTS).step_by(BATCH) {
            ws.log_metrics(id, &[("train/loss", &curve(0, 3, from, BATCH, &mut rng))])?;
        }
        ws.set_status(id, RunStatus::Finished, None)?;
        println!(
            "1M-point series written (incl. generation) in {:.2} s",
            t.elapsed().as_secs_f64()
        );
        id
    };
    let ws = Workspace::open(&dir, "bench")?;
    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..50 {
        let t = Instant::now();
        n = ws
            .metric_buckets(&long.to_string(), "train/loss", None, BUCKETS)?
            .len();
        times.push(t.elapsed().as_secs_f64());
    }
    let p90 = {
        let mut s = times.clone();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        s[s.len() * 9 / 10]
    };
    println!(
        "metric_downsampled 1M points -> {n} buckets (of {BUCKETS} asked): median {:.2} ms, p90 {:.2} ms (50 reads)",
        median(times) * 1e3,
        p90 * 1e3
    );
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        n = ws
            .metric_buckets(
                &long.to_string(),
                "train/loss",
                Some((500_000, 509_999)),
                BUCKETS,
            )?
            .len();
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "metric_downsampled zoomed in (10k of 1M steps) -> {n} buckets: median {:.2} ms (50 reads)",
        median(times) * 1e3
    );
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        n = ws.metric_history(long, "train/loss")?.len();
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "metric_history of the 1M-point series: {n} points, median {:.1} ms (5 reads)",
        median(times) * 1e3
    );
    Ok(())
}
