//! Parquet export benchmark (plain `fn main`, run with
//! `cargo bench -p cairn-export --bench export`). Prints figures; asserts only that the export
//! wrote every point.
//!
//! A fresh on-disk workspace gets `RUNS` runs of `KEYS` metrics × `STEPS` steps: training
//! curves as training loops log them (float32 values widened to f64 — a decaying loss with
//! noise, an accuracy, a cosine learning rate, … — one point every ~250 ms with a few ms of
//! jitter). Then, in a child process of its own so that its peak memory is the export's alone,
//! `cairn_export::export` writes the whole workspace to Parquet: points/s end to end (reading
//! and decoding the sealed chunks included), bytes per point of `metrics.parquet`, and the
//! child's peak resident memory (`VmHWM`).
//!
//! `CAIRN_BENCH_EXPORT_RUNS`, `_KEYS` and `_STEPS` change the size (default 10 × 10 × 10,000:
//! 1M points); `CAIRN_BENCH_EXPORT_CSV=1` exports CSV as well.
//! `CAIRN_BENCH_EXPORT_DIR=DIR` keeps the workspace and the tables under DIR.
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use cairn_core::{MetricPoint, NewRun, Workspace};
use cairn_export::{ExportRequest, Format, export};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One curve of `steps` points, float32 values as a training loop logs them.
fn curve(kind: usize, steps: usize, state: &mut u64, t0: i64) -> Vec<MetricPoint> {
    (0..steps)
        .map(|s| {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            let noise = (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let x = s as f32 / steps as f32;
            let v: f32 = match kind % 5 {
                0 => 2.3 * (-4.0 * x).exp() + 0.05 * noise,
                1 => 0.1 + 0.85 * (1.0 - (-5.0 * x).exp()) + 0.01 * noise,
                2 => 3e-4 * 0.5 * (1.0 + (std::f32::consts::PI * x).cos()),
                3 => 1.0 + 0.2 * noise,
                _ => 2.5 * (-3.0 * x).exp() + 0.08 * noise,
            };
            MetricPoint {
                step: s as i64,
                ts_ms: t0 + s as i64 * 250 + (*state >> 60) as i64,
                value: f64::from(v),
            }
        })
        .collect()
}

fn fill(ws: &Workspace, runs: usize, keys: usize, steps: usize) {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for r in 0..runs {
        let t0 = 1_790_000_000_000 + r as i64 * 3_600_000;
        let run = ws
            .start_run(NewRun {
                experiment_name: Some("bench".into()),
                name: Some(format!("trial-{r:04}")),
                params: [
                    ("lr".to_owned(), format!("{}", 1e-4 * (r + 1) as f64)),
                    ("batch_size".to_owned(), "256".to_owned()),
                    ("optimizer".to_owned(), "adamw".to_owned()),
                ]
                .into(),
                start_ms: Some(t0),
                ..Default::default()
            })
            .expect("start a run");
        for k in 0..keys {
            let pts = curve(k, steps, &mut state, t0);
            ws.log_metric(run.id, &format!("metric_{k:02}"), &pts)
                .expect("log a curve");
        }
    }
}

/// Peak resident memory of this process, in bytes (Linux; 0 elsewhere).
fn peak_rss() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The export itself, in the child: prints one line of figures.
fn child(ws_dir: &Path, out: &Path, format: Format) {
    let ws = Workspace::open(ws_dir, "bench").expect("open the workspace");
    let before = peak_rss();
    let started = Instant::now();
    let report = export(
        &ws,
        &ExportRequest {
            query: String::new(),
            dir: out.to_owned(),
            format,
            force: false,
        },
        &mut |_| {},
    )
    .expect("export");
    let secs = started.elapsed().as_secs_f64();
    let bytes = report.files[1].bytes;
    println!(
        "{:?}: {} runs, {} points in {secs:.2}s = {:.2}M points/s; metrics file {} bytes = {:.3} B/point; runs file {} bytes; peak RSS {:.1} MiB (at open {:.1} MiB)",
        format,
        report.runs,
        report.points,
        report.points as f64 / secs / 1e6,
        bytes,
        bytes as f64 / report.points.max(1) as f64,
        report.files[0].bytes,
        peak_rss() as f64 / (1 << 20) as f64,
        before as f64 / (1 << 20) as f64,
    );
    let want = std::env::var("CAIRN_BENCH_EXPORT_POINTS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok());
    assert_eq!(Some(report.points), want, "every point exported");
}

fn main() {
    if let Ok(dir) = std::env::var("CAIRN_BENCH_EXPORT_CHILD") {
        let format = if std::env::var("CAIRN_BENCH_EXPORT_FORMAT").as_deref() == Ok("csv") {
            Format::Csv
        } else {
            Format::Parquet
        };
        let dir = Path::new(&dir);
        child(
            &dir.join("ws"),
            &dir.join(format!("out-{}", format.extension())),
            format,
        );
        return;
    }
    let runs = env_or("CAIRN_BENCH_EXPORT_RUNS", 10);
    let keys = env_or("CAIRN_BENCH_EXPORT_KEYS", 10);
    let steps = env_or("CAIRN_BENCH_EXPORT_STEPS", 10_000);
    let points = runs * keys * steps;
    // `CAIRN_BENCH_EXPORT_DIR` keeps the workspace and the files for a look afterwards.
    let tmp = match std::env::var("CAIRN_BENCH_EXPORT_DIR") {
        Ok(d) => tempfile::Builder::new()
            .prefix("export-bench-")
            .disable_cleanup(true)
            .tempdir_in(d),
        Err(_) => tempfile::tempdir(),
    }
    .expect("a temporary directory");
    let ws = Workspace::create(&tmp.path().join("ws"), "bench").expect("a workspace");
    let started = Instant::now();
    fill(&ws, runs, keys, steps);
    drop(ws);
    println!(
        "wrote {runs} runs x {keys} metrics x {steps} steps = {points} points in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let mut formats = vec!["parquet"];
    if std::env::var("CAIRN_BENCH_EXPORT_CSV").as_deref() == Ok("1") {
        formats.push("csv");
    }
    for format in formats {
        let status = std::process::Command::new(std::env::current_exe().expect("this bench"))
            .env("CAIRN_BENCH_EXPORT_CHILD", tmp.path())
            .env("CAIRN_BENCH_EXPORT_FORMAT", format)
            .env("CAIRN_BENCH_EXPORT_POINTS", points.to_string())
            .status()
            .expect("run the export child");
        assert!(status.success(), "the export child failed");
    }
}
