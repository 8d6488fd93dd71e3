//! MLflow import benchmark (plain `fn main`, run with
//! `cargo bench -p cairn-core --bench mlflow_import`). Prints figures; asserts only that the
//! import stored what was written.
//!
//! A synthetic MLflow SQL store written with rusqlite in MLflow 3's schema
//! (`cairn_core::mlflow_import::sqlite::SCHEMA`), as MLflow's SQL store fills it: `RUNS` runs
//! of one experiment, each with 20 params, 4 tags (`mlflow.runName`, `mlflow.user`,
//! `mlflow.source.name`, a user tag) and `KEYS` metrics at every one of `STEPS` steps (plus
//! `latest_metrics`). Measured, on a fresh on-disk workspace:
//!
//! 1. reading every point alone (the importer's own query, no workspace): points/s;
//! 2. `Workspace::import_mlflow` of the whole store: runs/s (metadata, counted over the whole
//!    import) and points/s, end to end;
//! 3. the same import again, which finds every run and adds nothing: seconds;
//!
//! and the process's peak resident memory (VmHWM) at the end.
//!
//! `CAIRN_BENCH_ML_RUNS`, `CAIRN_BENCH_ML_KEYS`, `CAIRN_BENCH_ML_STEPS` change the size
//! (default 1,000 × 10 × 1,000 = 10M points; the target store is 10,000 runs, 100M).
#![allow(clippy::print_stdout)]

use std::path::Path;
use std::time::Instant;

use cairn_core::Workspace;
use cairn_core::mlflow_import::MlflowSource;
use cairn_core::mlflow_import::sqlite::{SCHEMA, SqliteStore};
use rusqlite::{Connection, params};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run_id(r: usize) -> String {
    format!("{:032x}", 0x5eed_0000_0000_0000_u128 + r as u128 * 7919)
}

/// Writes the store; returns its size in bytes.
fn write_store(path: &Path, runs: usize, keys: usize, steps: usize) -> u64 {
    let mut db = Connection::open(path).expect("store");
    db.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .expect("pragmas");
    db.execute_batch(SCHEMA).expect("schema");
    db.execute(
        "INSERT INTO experiments VALUES (1, 'sweep', NULL, 'active', 0, 0, 'default')",
        [],
    )
    .expect("experiment");
    let tx = db.transaction().expect("transaction");
    {
        let mut run = tx
            .prepare(
                "INSERT INTO runs VALUES (?1, ?2, 'LOCAL', 'train.py', '', 'bench', 'FINISHED', \
                 ?3, ?4, '', 'active', NULL, 1, NULL)",
            )
            .expect("insert");
        let mut param = tx
            .prepare("INSERT INTO params VALUES (?1, ?2, ?3)")
            .expect("insert");
        let mut tag = tx
            .prepare("INSERT INTO tags VALUES (?1, ?2, ?3)")
            .expect("insert");
        let mut metric = tx
            .prepare("INSERT INTO metrics VALUES (?1, ?2, ?3, ?4, ?5, 0)")
            .expect("insert");
        let mut latest = tx
            .prepare("INSERT INTO latest_metrics VALUES (?1, ?2, ?3, ?4, 0, ?5)")
            .expect("insert");
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for r in 0..runs {
            let id = run_id(r);
            let t0 = 1_700_000_000_000_i64 + r as i64 * 3_600_000;
            let name = format!("trial-{r:05}");
            run.execute(params![id, name, t0, t0 + steps as i64 * 30])
                .expect("run");
            for p in 0..20 {
                param
                    .execute(params![format!("param_{p:02}"), format!("{}", p * r), id])
                    .expect("param");
            }
            for (k, v) in [
                ("mlflow.runName", name.as_str()),
                ("mlflow.user", "bench"),
                ("mlflow.source.name", "train.py"),
                ("team", "vision"),
            ] {
                tag.execute(params![k, v, id]).expect("tag");
            }
            for k in 0..keys {
                let key = format!("metric_{k:02}");
                let mut last = 0.0;
                for s in 0..steps {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let noise = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                    let x = s as f32 / steps as f32;
                    // float32-origin values, as a training loop logs them.
                    let v = f64::from(2.3 * (-4.0 * x).exp() + 0.05 * noise + k as f32);
                    metric
                        .execute(params![key, v, t0 + s as i64 * 30, id, s as i64])
                        .expect("metric");
                    last = v;
                }
                latest
                    .execute(params![key, last, t0, steps as i64 - 1, id])
                    .expect("latest");
            }
        }
    }
    tx.commit().expect("commit");
    std::fs::metadata(path).expect("store").len()
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() {
    let runs = env_or("CAIRN_BENCH_ML_RUNS", 1_000);
    let keys = env_or("CAIRN_BENCH_ML_KEYS", 10);
    let steps = env_or("CAIRN_BENCH_ML_STEPS", 1_000);
    let points = (runs * keys * steps) as u64;
    let tmp = tempfile::tempdir().expect("temporary directory");
    let path = tmp.path().join("mlflow.db");

    let t = Instant::now();
    let bytes = write_store(&path, runs, keys, steps);
    println!(
        "store: {runs} runs x 20 params x {keys} metrics x {steps} steps = {points} points, \
         {:.1} MB (written in {:.1}s)",
        bytes as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let after_write = peak_rss_mib();

    // 1. Reading only.
    let t = Instant::now();
    let mut store = SqliteStore::open(&path).expect("open");
    let mut read = 0u64;
    for r in 0..runs {
        store
            .points(&run_id(r), &mut |_, _| {
                read += 1;
                Ok(())
            })
            .expect("points");
    }
    let s = t.elapsed().as_secs_f64();
    assert_eq!(read, points);
    println!(
        "read every point (the importer's query): {s:.2}s, {:.2} M points/s",
        points as f64 / 1e6 / s
    );

    // 2. The import.
    let ws = Workspace::create(&tmp.path().join("ws"), "bench").expect("workspace");
    let uri = format!("sqlite:///{}", path.display());
    let t = Instant::now();
    let report = ws.import_mlflow(&uri, &[], &mut |_| {}).expect("import");
    let s = t.elapsed().as_secs_f64();
    assert_eq!(report.added.points, points);
    assert_eq!(report.runs_created, runs as u64);
    assert_eq!(report.added.params, runs as u64 * 20);
    println!(
        "import_mlflow: {s:.2}s end to end, {:.0} runs/s, {:.2} M points/s ({} runs, {} params, \
         {} tags, {} points)",
        runs as f64 / s,
        points as f64 / 1e6 / s,
        report.runs_created,
        report.added.params,
        report.added.tags,
        report.added.points
    );

    // 3. Again: nothing new.
    let t = Instant::now();
    let again = ws.import_mlflow(&uri, &[], &mut |_| {}).expect("re-import");
    let s = t.elapsed().as_secs_f64();
    assert_eq!((again.added.points, again.runs_unchanged), (0, runs as u64));
    println!(
        "re-import (nothing new): {s:.2}s, {:.0} runs/s",
        runs as f64 / s
    );
    println!(
        "peak resident memory: {:.0} MiB (after writing the store: {:.0} MiB)",
        peak_rss_mib().unwrap_or(f64::NAN),
        after_write.unwrap_or(f64::NAN)
    );
}
