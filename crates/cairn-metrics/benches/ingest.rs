//! Ingest benchmark of `cairn-metrics` (plain `fn main`, run with
//! `cargo bench -p cairn-metrics --bench ingest`): appends 100 series × 100k float32-origin noisy
//! training curves in 10k-point batches into a fresh on-disk database, then 100k points in
//! 100-point batches, then times downsampling and reading a 1M-point series. Prints figures;
//! asserts nothing about speed.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use cairn_metrics::{MetricStore, Point};

const SERIES: usize = 100;
const POINTS_PER_SERIES: usize = 100_000;
const BATCH: usize = 10_000;
const LONG_POINTS: usize = 1_000_000;

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

/// Points `from..from + n` of a decaying loss curve with noise, rounded through f32 the way a
/// PyTorch loop logs `loss.item()` of a float32 tensor.
fn curve(seed: u64, from: usize, n: usize, rng: &mut Rng) -> Vec<Point> {
    let scale = 1.0 + (seed % 7) as f32 * 0.3;
    (from..from + n)
        .map(|i| {
            let t = i as f32;
            let v = scale * (-t / 20_000.0).exp() + 0.2 + 0.03 * rng.noise();
            Point {
                step: i as i64,
                ts_ms: 1_795_752_388_045 + i as i64 * 31 + (rng.next() % 5) as i64,
                value: f64::from(v),
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("metrics.db");
    let mut store = MetricStore::open(&path)?;
    let runs: Vec<String> = (0..SERIES)
        .map(|i| format!("{:032x}", 0xca1e_0000 + i))
        .collect();

    // Ingest: batches interleaved across series, as concurrent runs would log them.
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut in_append = Duration::ZERO;
    for batch in 0..POINTS_PER_SERIES / BATCH {
        for (s, run) in runs.iter().enumerate() {
            let points = curve(s as u64, batch * BATCH, BATCH, &mut rng);
            let t = Instant::now();
            store.append(run, "train/loss", &points)?;
            in_append += t.elapsed();
        }
    }
    let total = (SERIES * POINTS_PER_SERIES) as f64;
    let t = Instant::now();
    for run in &runs {
        store.seal_run(run)?;
    }
    let seal = t.elapsed();
    let stats = store.storage_stats()?;
    println!(
        "ingest: {SERIES} series x {POINTS_PER_SERIES} points in {BATCH}-point batches: {:.2} s in append, {:.2} M points/s",
        in_append.as_secs_f64(),
        total / in_append.as_secs_f64() / 1e6,
    );
    println!(
        "seal_run of {SERIES} runs: {:.1} ms",
        seal.as_secs_f64() * 1e3
    );
    println!(
        "storage: {} points in chunks, {} bytes of chunk data + block summaries = {:.2} bytes/point ({} tail points)",
        stats.points,
        stats.chunk_bytes,
        stats.chunk_bytes as f64 / stats.points as f64,
        stats.tail_points,
    );

    // Small appends (MLflow log-batch sized): every point goes through a tail row.
    let small_run = format!("{:032x}", 0x20_0000_u64);
    let small = curve(1, 0, 100_000, &mut rng);
    let t = Instant::now();
    for batch in small.chunks(100) {
        store.append(&small_run, "train/loss", batch)?;
    }
    let el = t.elapsed();
    println!(
        "small appends: 100k points in 100-point batches (one transaction each): {:.2} s, {:.2} M points/s",
        el.as_secs_f64(),
        small.len() as f64 / el.as_secs_f64() / 1e6
    );

    // One 1M-point series.
    let long_run = format!("{:032x}", 0x10_0000_u64);
    for batch in 0..LONG_POINTS / BATCH {
        store.append(
            &long_run,
            "train/loss",
            &curve(3, batch * BATCH, BATCH, &mut rng),
        )?;
    }
    store.seal_run(&long_run)?;
    drop(store);
    let db_bytes = std::fs::metadata(&path)?.len()
        + std::fs::metadata(path.with_extension("db-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
    println!(
        "database file (+ WAL) after all: {:.1} MiB for {} points = {:.2} bytes/point",
        db_bytes as f64 / (1 << 20) as f64,
        SERIES * POINTS_PER_SERIES + LONG_POINTS + small.len(),
        db_bytes as f64 / (SERIES * POINTS_PER_SERIES + LONG_POINTS + small.len()) as f64,
    );

    let store = MetricStore::open(&path)?;
    let mut times = Vec::new();
    let mut buckets = 0;
    for _ in 0..20 {
        let t = Instant::now();
        buckets = store
            .downsample(&long_run, "train/loss", None, 2_000)?
            .len();
        times.push(t.elapsed());
    }
    println!(
        "downsample 1M points -> {buckets} buckets: median {:.2} ms (of 20)",
        median(times).as_secs_f64() * 1e3
    );

    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        buckets = store
            .downsample(&long_run, "train/loss", Some((500_000, 509_999)), 2_000)?
            .len();
        times.push(t.elapsed());
    }
    println!(
        "downsample zoomed in (10k steps of 1M) -> {buckets} buckets: median {:.2} ms (of 20)",
        median(times).as_secs_f64() * 1e3
    );

    let mut times = Vec::new();
    let mut n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        n = store.history(&long_run, "train/loss")?.len();
        times.push(t.elapsed());
    }
    let h = median(times);
    println!(
        "history of the 1M-point series: {n} points in {:.1} ms (median of 5), {:.1} M points/s",
        h.as_secs_f64() * 1e3,
        n as f64 / h.as_secs_f64() / 1e6
    );
    Ok(())
}
