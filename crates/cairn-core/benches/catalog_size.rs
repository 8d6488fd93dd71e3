//! `cargo bench -p cairn-core --bench catalog_size`: bytes on disk per run (issue #19 item 1).
//! Prints figures; asserts nothing about size.
//!
//! The workload is the MLflow comparison's (the stock client against `cairn serve`), made through
//! the `Workspace` calls its handlers make: per run `start_run` (with the client's system tags
//! and this machine's lineage, as `runs/create` records it), one `log_batch` of 20 params,
//! 5 metrics (one value each) and 4 tags, then `set_status(Finished)`. `CATALOG_BENCH_RUNS`
//! (default 10,000) runs in one experiment; then one search (so the search index holds them),
//! the workspace is closed (SQLite checkpoints its WAL), and every file is measured, with the
//! pages of each table and index of `catalog.db` (SQLite's `dbstat`).
//! `CATALOG_BENCH_DIR` keeps the workspace there instead of a temporary directory.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use cairn_core::{LogBatch, MetricValue, NewRun, SearchRequest, Workspace};
use cairn_model::{Lineage, RunStatus};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Bytes of every file under `dir`, by path relative to it.
fn files(dir: &Path, base: &Path, out: &mut BTreeMap<String, u64>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            files(&path, base, out)?;
        } else {
            let rel = path.strip_prefix(base).unwrap_or(&path);
            out.insert(rel.display().to_string(), entry.metadata()?.len());
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = env("CATALOG_BENCH_RUNS", 10_000);
    let tmp = tempfile::tempdir()?;
    let dir = match std::env::var("CATALOG_BENCH_DIR") {
        Ok(d) => std::path::PathBuf::from(d),
        Err(_) => tmp.path().join("ws"),
    };
    let ws = Workspace::create(&dir, "bench")?;
    let exp = ws.create_experiment("size", None, &[])?;
    let infra = Some(cairn_core::this_machine());
    let t = Instant::now();
    for i in 0..runs {
        let tags = [
            ("mlflow.user", "bench"),
            ("mlflow.source.name", "train.py"),
            ("mlflow.source.type", "LOCAL"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        let run = ws.start_run(NewRun {
            experiment: Some(exp.id),
            owner: Some("bench".into()),
            tags,
            lineage: Lineage {
                infra: infra.clone(),
                ..Lineage::default()
            },
            defer_schema: true,
            ..Default::default()
        })?;
        let batch = LogBatch {
            params: (0..20)
                .map(|p| (format!("param_{p}"), format!("{}", (i * 31 + p * 7) % 1000)))
                .collect(),
            metrics: (0..5)
                .map(|m| MetricValue {
                    key: format!("metric_{m}"),
                    value: ((i * 13 + m) % 997) as f64 / 997.0,
                    step: 0,
                    ..Default::default()
                })
                .collect(),
            tags: (0..4)
                .map(|k| (format!("tag_{k}"), format!("value-{}", (i + k) % 50)))
                .collect(),
        };
        ws.log_batch(run.id, &batch)?;
        ws.set_status(run.id, RunStatus::Finished, None)?;
        if (i + 1) % 10_000 == 0 {
            eprintln!("{} runs, {:.1} s", i + 1, t.elapsed().as_secs_f64());
        }
    }
    let made = t.elapsed();
    let found = ws.search(&SearchRequest {
        q: Some("params.param_3 = '21'".into()),
        limit: Some(10),
        ..Default::default()
    })?;
    drop(found);
    drop(ws);

    let mut sizes = BTreeMap::new();
    files(&dir, &dir, &mut sizes)?;
    let total: u64 = sizes.values().sum();
    let per = |b: u64| b as f64 / runs as f64;
    println!(
        "{runs} runs in {:.1} s ({:.2} ms/run)",
        made.as_secs_f64(),
        made.as_secs_f64() * 1e3 / runs as f64
    );
    println!(
        "workspace: {total} bytes = {:.0} B/run (everything below)",
        per(total)
    );
    let mut index = 0u64;
    for (name, bytes) in &sizes {
        if name.starts_with("index") {
            index += bytes;
        } else {
            println!("  {name:<24} {bytes:>12} B {:>9.0} B/run", per(*bytes));
        }
    }
    println!(
        "  {:<24} {index:>12} B {:>9.0} B/run",
        "index/ (search)",
        per(index)
    );

    let conn = rusqlite::Connection::open(dir.join("catalog.db"))?;
    let mut stmt = conn.prepare(
        "SELECT name, sum(pgsize), sum(unused), count(*) FROM dbstat GROUP BY name ORDER BY 2 DESC",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
        ))
    })?;
    println!("catalog.db by table and index (pages, unused bytes in them):");
    for row in rows {
        let (name, bytes, unused, pages) = row?;
        if bytes < 64 * 1024 {
            continue;
        }
        println!(
            "  {name:<28} {bytes:>12} B {:>8.0} B/run  {pages:>7} pages, {:>3.0}% unused",
            per(bytes as u64),
            100.0 * unused as f64 / bytes as f64
        );
    }
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |r| r.get(0))?;
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
    println!(
        "  {:<28} {:>12} B {:>8.0} B/run",
        "(free pages)",
        free * page,
        per((free * page) as u64)
    );
    Ok(())
}
