//! Backup, restore and verify benchmark (plain `fn main`, run with
//! `cargo bench -p cairn-core --bench backup`). Prints figures; asserts only that what was
//! restored verifies and holds the runs.
//!
//! On a fresh on-disk workspace of `cairn demo --runs N` (`CAIRN_BENCH_BACKUP_RUNS`, default
//! 10,000; the demo's own points per curve), measured:
//!
//! 1. `backup::backup` (every database with SQLite's backup API, every blob, the manifest):
//!    seconds, MB/s, file size;
//! 2. `backup::check_backup` (every member against its BLAKE3): seconds;
//! 3. `backup::restore` into a new directory (check, write, rebuild the search index, rename):
//!    seconds;
//! 4. `Workspace::verify` of the restored workspace: seconds.
#![allow(clippy::print_stdout)]

use std::time::Instant;

use cairn_core::backup::{self, BackupOptions};
use cairn_core::{DemoOptions, Workspace};

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn dir_size(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).expect("read dir").flatten() {
        let m = e.metadata().expect("metadata");
        n += if m.is_dir() {
            dir_size(&e.path())
        } else {
            m.len()
        };
    }
    n
}

fn main() {
    let runs = env_or("CAIRN_BENCH_BACKUP_RUNS", 10_000);
    let tmp = tempfile::tempdir().expect("temporary directory");
    let dir = tmp.path().join("ws");
    let ws = Workspace::create(&dir, "bench").expect("create");
    let t = Instant::now();
    let demo = ws
        .generate_demo(
            &DemoOptions {
                runs,
                steps: None,
                seed: 7,
            },
            &mut |_, _| {},
        )
        .expect("demo");
    drop(ws);
    println!(
        "demo: {} runs, {} points in {:.1}s; workspace {:.1} MB on disk",
        runs,
        demo.points,
        t.elapsed().as_secs_f64(),
        dir_size(&dir) as f64 / 1e6
    );

    let file = tmp.path().join("ws.cairnbak");
    // With the key, as a device moving to a new disk: the restored workspace is this device and
    // its audit chain verifies.
    let b = backup::backup(
        &dir,
        &file,
        BackupOptions { include_key: true },
        &mut |_| {},
    )
    .expect("backup");
    println!(
        "backup: {:.2}s, {} members ({} blobs), {:.1} MB of data, file {:.1} MB, {:.0} MB/s",
        b.seconds,
        b.members,
        b.blobs,
        b.bytes as f64 / 1e6,
        b.file_bytes as f64 / 1e6,
        b.bytes as f64 / 1e6 / b.seconds
    );

    let t = Instant::now();
    backup::check_backup(&file, &mut |_| {}).expect("check");
    println!("check: {:.2}s", t.elapsed().as_secs_f64());

    let target = tmp.path().join("restored");
    let r = backup::restore(&file, &target, false, "bench", &mut |_| true).expect("restore");
    println!(
        "restore: {:.2}s ({} runs indexed)",
        r.seconds, r.indexed_runs
    );
    assert_eq!(r.indexed_runs, runs);

    let back = Workspace::open(&target, "bench").expect("open restored");
    let v = back.verify().expect("verify");
    assert!(v.ok, "{:?}", v.problems);
    println!(
        "verify (restored): {:.2}s ({} series, {} points, {} docs, {} projection rows)",
        v.seconds, v.series, v.points, v.docs, v.projection_rows
    );
}
