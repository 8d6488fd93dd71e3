//! What `cairn sync status` (and `GET /api/v1/sync`) costs with a synced peer
//! (`cargo bench -p cairn-sync --bench status`): a workspace of `CAIRN_BENCH_RUNS` runs (default
//! 20,000, 20 experiments) with 5 metric series each, a peer it synced with, then
//!
//! 1. the holdings digest the status read before (every doc's heads, every series' mark, every
//!    trace log and audit chain, every live blob) — what it costs now only to compare;
//! 2. the stamp it reads now (doc heads, the metric store's generation, trace and audit marks);
//! 3. `cairn_sync::status` itself, before and after a point is logged (pending must flip).
//!
//! Median of 10 calls each, after one warm-up call.
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cairn_metrics::Point;
use cairn_model::{Experiment, ExperimentId, Run, RunId};
use cairn_sync::{StorePaths, Stores};

fn median(mut f: impl FnMut()) -> Duration {
    f();
    let mut times: Vec<Duration> = (0..10)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let runs: usize = std::env::var("CAIRN_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = StorePaths::in_workspace(dir.path());
    std::fs::create_dir_all(&paths.artifacts).expect("artifacts dir");
    let mut s = Stores::open(&paths, "bench").expect("open stores");

    let fill = Instant::now();
    let shards = 20;
    let mut ids = Vec::with_capacity(runs);
    for e in 0..shards {
        let exp = Experiment {
            id: ExperimentId::new(),
            name: format!("exp-{e}"),
            created_ms: 1,
            description: None,
            tags: BTreeMap::new(),
            schema: None,
            deleted: false,
        };
        s.catalog.create_experiment(&exp).expect("experiment");
        let batch: Vec<Run> = (0..runs / shards)
            .map(|i| {
                Run::new(
                    RunId::new(),
                    exp.id,
                    format!("run-{e}-{i}"),
                    1_700_000_000_000,
                )
            })
            .collect();
        ids.extend(batch.iter().map(|r| r.id.to_string()));
        s.catalog.create_runs(&batch).expect("runs");
    }
    let point = |step| Point {
        step,
        ts_ms: 1_700_000_000_000 + step,
        value: 0.5,
    };
    // Every run's five series, one point each (a transaction per run).
    let pts = [point(0)];
    let batch: Vec<(&str, &[Point])> = ["loss", "acc", "lr", "val_loss", "val_acc"]
        .iter()
        .map(|k| (*k, &pts[..]))
        .collect();
    for id in &ids {
        s.metrics.append_batch(id, &batch).expect("points");
    }
    println!(
        "{runs} runs × 5 series filled in {:.1} s",
        fill.elapsed().as_secs_f64()
    );

    let peer = "b".repeat(64);
    let stamp = s.stamp().expect("stamp");
    s.ledger.note_synced(&peer, 0, 0, &stamp).expect("ledger");

    let full = median(|| {
        s.catalog_manifest().expect("catalog");
        s.metrics_manifest().expect("metrics");
        s.traces_manifest().expect("traces");
        s.audit_manifest().expect("audit");
        s.blobs_manifest().expect("blobs");
    });
    let stamp_t = median(|| {
        s.stamp().expect("stamp");
    });
    let mut pending = None;
    let status_t = median(|| {
        let st = cairn_sync::status(&mut s, "me").expect("status");
        pending = st.peers.iter().find(|p| p.id == peer).map(|p| p.pending);
    });
    assert_eq!(pending, Some(false), "in sync with the peer");
    s.metrics
        .append(&ids[0], "loss", &[point(1)])
        .expect("a point");
    let status_after = median(|| {
        let st = cairn_sync::status(&mut s, "me").expect("status");
        pending = st.peers.iter().find(|p| p.id == peer).map(|p| p.pending);
    });
    assert_eq!(pending, Some(true), "a logged point is pending");
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("the holdings digest status read before: {:.1} ms", ms(full));
    println!(
        "the stamp it reads now:                  {:.2} ms",
        ms(stamp_t)
    );
    println!(
        "status, in sync / a point pending:       {:.2} / {:.2} ms",
        ms(status_t),
        ms(status_after)
    );
}
