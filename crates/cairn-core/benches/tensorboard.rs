//! TensorBoard import benchmark (plain `fn main`, run with
//! `cargo bench -p cairn-core --bench tensorboard`). Prints figures; asserts only that the
//! import stored what was written.
//!
//! A synthetic logdir written by `cairn-tensorboard`'s writer as PyTorch's `SummaryWriter`
//! writes one: `RUNS` run directories (`sweep/trial-NNN`), each one event file with `KEYS`
//! scalars (`add_scalar`, float32 `simple_value`) at every one of `STEPS` steps, plus hparams.
//! Measured, on a fresh on-disk workspace:
//!
//! 1. reading and checking every file (CRCs, protobufs) without a workspace: MB/s, points/s;
//! 2. `Workspace::import_tensorboard` of the whole logdir (read, check, create the runs,
//!    append every series): points/s, end to end;
//! 3. the same import again, which finds every run and adds nothing: seconds.
//!
//! `CAIRN_BENCH_TB_RUNS` and `CAIRN_BENCH_TB_STEPS` change the size (default 100 × 10,000).
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use cairn_core::Workspace;
use cairn_tensorboard::write::EventFile;
use cairn_tensorboard::{HParamValue, SessionStatus};

const KEYS: [&str; 3] = ["train/loss", "train/acc", "train/lr"];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Writes the logdir; returns its size in bytes.
fn write_logdir(logdir: &Path, runs: usize, steps: usize) -> u64 {
    let mut bytes = 0;
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for r in 0..runs {
        let t0 = 1_795_752_388.0 + r as f64 * 3600.0;
        let mut f = EventFile::new(t0);
        f.hparams_start(
            t0,
            &[
                ("lr", HParamValue::Number(1e-4 * (r + 1) as f64)),
                ("batch_size", HParamValue::Number(256.0)),
                ("optimizer", HParamValue::Text("adamw".into())),
            ],
        );
        for s in 0..steps {
            let t = t0 + s as f64 * 0.03;
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let x = s as f32 / steps as f32;
            let values = [
                2.3 * (-4.0 * x).exp() + 0.05 * noise,
                0.1 + 0.85 * (1.0 - (-5.0 * x).exp()) + 0.01 * noise,
                3e-4 * 0.5 * (1.0 + (std::f32::consts::PI * x).cos()),
            ];
            for (k, v) in KEYS.iter().zip(values) {
                f.scalar(t, s as i64, k, v);
            }
        }
        f.hparams_end(t0 + steps as f64 * 0.03, SessionStatus::Success);
        let dir = logdir.join(format!("sweep/trial-{r:03}"));
        std::fs::create_dir_all(&dir).expect("run directory");
        bytes += f.bytes().len() as u64;
        std::fs::write(
            dir.join(format!("events.out.tfevents.{}.bench.1", t0 as u64)),
            f.bytes(),
        )
        .expect("event file");
    }
    bytes
}

fn main() {
    let runs = env_or("CAIRN_BENCH_TB_RUNS", 100);
    let steps = env_or("CAIRN_BENCH_TB_STEPS", 10_000);
    let points = (runs * steps * KEYS.len()) as u64;
    let tmp = tempfile::tempdir().expect("temporary directory");
    let logdir = tmp.path().join("tb-logs");

    let t = Instant::now();
    let bytes = write_logdir(&logdir, runs, steps);
    println!(
        "logdir: {runs} runs x {} scalars x {steps} steps = {points} points, {:.1} MB of event files (written in {:.2}s)",
        KEYS.len(),
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    // 1. Reading and checking only.
    let t = Instant::now();
    let mut read_points = 0u64;
    for r in 0..runs {
        let dir = logdir.join(format!("sweep/trial-{r:03}"));
        for entry in std::fs::read_dir(&dir).expect("run directory") {
            let data = std::fs::read(entry.expect("entry").path()).expect("event file");
            let events = cairn_tensorboard::parse(&data).expect("a good event file");
            read_points += events
                .iter()
                .filter(|e| matches!(&e.what, cairn_tensorboard::What::Summary(v) if matches!(v[0].data, cairn_tensorboard::Data::Simple(_))))
                .count() as u64;
        }
    }
    let s = t.elapsed().as_secs_f64();
    assert_eq!(read_points, points);
    println!(
        "read + check (cairn_tensorboard::parse): {s:.2}s, {:.1} MB/s, {:.2} M points/s",
        bytes as f64 / 1e6 / s,
        points as f64 / 1e6 / s
    );

    // 2. The import.
    let ws = Workspace::create(&tmp.path().join("ws"), "bench").expect("workspace");
    let t = Instant::now();
    let report = ws
        .import_tensorboard(&logdir, None, &mut |_| {})
        .expect("import");
    let s = t.elapsed().as_secs_f64();
    assert_eq!(report.points, points);
    assert_eq!(report.runs_created, runs as u64);
    println!(
        "import_tensorboard: {s:.2}s, {:.2} M points/s, {:.1} runs/s ({} runs, {} points, {} params)",
        points as f64 / 1e6 / s,
        runs as f64 / s,
        report.runs_created,
        report.points,
        report.params
    );

    // 3. Again: nothing new.
    let t = Instant::now();
    let again = ws
        .import_tensorboard(&logdir, None, &mut |_| {})
        .expect("re-import");
    let s = t.elapsed().as_secs_f64();
    assert_eq!((again.points, again.runs_unchanged), (0, runs as u64));
    println!("re-import (nothing new): {s:.2}s");
}
