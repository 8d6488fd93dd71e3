//! Sync benchmarks over real iroh endpoints on loopback (`cargo bench -p cairn-sync`):
//!
//! 1. a fresh peer receives a 10,000-run catalog (10 experiments, one shard each): time,
//!    bytes, peak RSS of the process (both peers live in it);
//! 1. (b) a fresh peer receives 4M metric points (100 runs × 4 float32 curves × 10,000
//!    steps, sealed): time, bytes per point;
//! 2. two peers already in sync over ~1,000 shards reconnect: time (connect included) and bytes;
//! 3. a run written on A (through its own catalog handle, as a training job would) becomes
//!    visible in B's catalog projection, stamped for the search index: latency, with both
//!    nodes watching (the doorbell), median of 20;
//! 4. a keystroke in a 1 MB notebook on A (one character spliced in through another catalog
//!    handle, as `cairn serve` writes an edit) reaches B: B's projection shows it and B reads the
//!    notebook's text with it — with both nodes on the default configuration (`serve --sync`:
//!    polling every 100 ms), median and max of 30 keystrokes (issue #17: ≤ 1 s);
//!    `CAIRN_BENCH_NB_BYTES` sets the notebook's size.
//!
//! Sizes can be changed with `CAIRN_BENCH_RUNS` and `CAIRN_BENCH_SHARDS`; `CAIRN_BENCH_PARTS`
//! (e.g. `3,4`) runs only those parts (`1` includes `1b`).
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cairn_catalog::{Catalog, RunEdit};
use cairn_model::{Experiment, ExperimentId, Run, RunId};
use cairn_sync::node::Node;
use cairn_sync::{NodeConfig, SecretKey, SharedStores, StorePaths, Stores, roster};

struct Dev {
    _dir: tempfile::TempDir,
    paths: StorePaths,
    stores: SharedStores,
    key: SecretKey,
}

fn dev(name: &str) -> Dev {
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = StorePaths::in_workspace(dir.path());
    std::fs::create_dir_all(&paths.artifacts).expect("artifacts dir");
    let stores = SharedStores::new(Stores::open(&paths, name).expect("open stores"));
    Dev {
        _dir: dir,
        paths,
        stores,
        key: SecretKey::generate(),
    }
}

fn team(devs: &[&Dev]) {
    let ids: Vec<String> = devs.iter().map(|d| d.key.public().to_string()).collect();
    for d in devs {
        let mut s = d.stores.lock().expect("lock");
        roster::create(&mut s.catalog, "bench", &ids[0], "first", "").ok();
        for id in &ids {
            roster::add(&mut s.catalog, id, "member", "", &ids[0]).expect("roster");
        }
    }
}

/// `runs` runs spread over `shards` experiments (so shards), with a realistic handful of
/// params, tags and summary metrics each.
fn fill(d: &Dev, runs: usize, shards: usize) {
    let mut s = d.stores.lock().expect("lock");
    let per = runs.div_ceil(shards);
    let mut made = 0;
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
        let batch: Vec<Run> = (0..per.min(runs - made))
            .map(|i| {
                let mut r = Run::new(
                    RunId::new(),
                    exp.id,
                    format!("run-{e}-{i}"),
                    1_700_000_000_000,
                );
                r.owner = Some("bench".into());
                for (k, v) in [
                    ("lr", format!("0.{i}")),
                    ("batch", "64".into()),
                    ("opt", "adamw".into()),
                    ("seed", i.to_string()),
                ] {
                    r.params.insert(k.into(), v);
                }
                r.tags.insert("stage".into(), "sweep".into());
                r.tags.insert("gpu".into(), "a100".into());
                r
            })
            .collect();
        made += batch.len();
        s.catalog.create_runs(&batch).expect("runs");
    }
}

async fn node(d: &Dev, watch: bool) -> Node {
    Node::spawn(
        d.stores.clone(),
        d.key.clone(),
        NodeConfig {
            watch,
            poll_every: Duration::from_millis(20),
            ..NodeConfig::default()
        },
    )
    .await
    .expect("node")
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let runs = env("CAIRN_BENCH_RUNS", 10_000);
    let shards = env("CAIRN_BENCH_SHARDS", 1_000);
    let parts = std::env::var("CAIRN_BENCH_PARTS").unwrap_or_else(|_| "1,2,3,4".into());
    let part = |n: &str| parts.split(',').any(|p| p.trim() == n);

    // 1. Fresh peer, 10k runs in 10 shards.
    if part("1") {
        let (a, b) = (dev("a"), dev("b"));
        team(&[&a, &b]);
        let t = Instant::now();
        fill(&a, runs, runs.div_ceil(1000));
        println!(
            "filled A with {runs} runs in {:.1} s",
            t.elapsed().as_secs_f64()
        );
        let (na, nb) = (node(&a, false).await, node(&b, false).await);
        let t = Instant::now();
        let r = nb.sync_with(&na.id(), &na.bound()).await.expect("sync");
        let took = t.elapsed();
        let got = b
            .stores
            .lock()
            .expect("lock")
            .catalog
            .changes_since(0)
            .expect("runs")
            .1
            .len();
        assert!(got >= runs, "B holds {got} runs");
        println!(
            "fresh peer, {runs} runs: {:.2} s, {:.1} MB received, {:.1} KB sent, {} rounds, peak RSS of both peers {:.0} MiB",
            took.as_secs_f64(),
            r.received as f64 / 1e6,
            r.sent as f64 / 1e3,
            r.rounds,
            peak_rss_mib()
        );
        na.shutdown().await;
        nb.shutdown().await;
    }

    // 1b. Metric series: 100 runs × 4 metrics × 10,000 steps, sealed as a finished run's are.
    if part("1") {
        let (a, b) = (dev("a"), dev("b"));
        team(&[&a, &b]);
        fill(&a, 100, 1);
        {
            let mut s = a.stores.lock().expect("lock");
            let runs = s.catalog.changes_since(0).expect("runs").1;
            for r in &runs {
                let id = r.id.to_string();
                for (k, key) in ["loss", "acc", "lr", "grad_norm"].iter().enumerate() {
                    // float32 training curves, as the store is tuned for
                    let pts: Vec<cairn_metrics::Point> = (0..10_000)
                        .map(|i| cairn_metrics::Point {
                            step: i,
                            ts_ms: 1_700_000_000_000 + i * 350,
                            value: f64::from(1.0 / (1.0 + i as f32 * 0.001) + k as f32 * 0.01),
                        })
                        .collect();
                    s.metrics.append(&id, key, &pts).expect("append");
                }
                s.metrics.seal_run(&id).expect("seal");
            }
        }
        let (na, nb) = (node(&a, false).await, node(&b, false).await);
        let t = Instant::now();
        let r = nb.sync_with(&na.id(), &na.bound()).await.expect("sync");
        println!(
            "fresh peer, 4M metric points (100 runs × 4 × 10k): {:.2} s, {:.1} MB received ({:.2} B/point), {} points",
            t.elapsed().as_secs_f64(),
            r.received as f64 / 1e6,
            r.received as f64 / 4e6,
            r.points_received
        );
        na.shutdown().await;
        nb.shutdown().await;
    }

    // 2. Reconnect of peers in sync over many shards.
    if part("2") {
        let (a, b) = (dev("a"), dev("b"));
        team(&[&a, &b]);
        fill(&a, shards * 5, shards);
        let (na, nb) = (node(&a, false).await, node(&b, false).await);
        let t = Instant::now();
        let first = nb.sync_with(&na.id(), &na.bound()).await.expect("sync");
        println!(
            "fresh peer, {} runs in {shards} shards: {:.2} s, {:.1} MB received",
            shards * 5,
            t.elapsed().as_secs_f64(),
            first.received as f64 / 1e6
        );
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..10 {
            let t = Instant::now();
            let r = nb.sync_with(&na.id(), &na.bound()).await.expect("resync");
            times.push(t.elapsed());
            last = Some(r);
        }
        times.sort();
        let r = last.expect("a reconnect");
        println!(
            "reconnect in sync, {shards} shards: median {:.1} ms (connect included), {} B sent + {} B received, {} docs differed",
            times[times.len() / 2].as_secs_f64() * 1e3,
            r.sent,
            r.received,
            r.docs_differing
        );
        na.shutdown().await;
        nb.shutdown().await;
    }

    // 3. One new run visible on the other peer, doorbell on.
    if part("3") {
        let (a, b) = (dev("a"), dev("b"));
        team(&[&a, &b]);
        fill(&a, 1000, 1);
        let (na, nb) = (node(&a, true).await, node(&b, true).await);
        // Tell each where the other is, then let them settle.
        for (from, to) in [(&a, &nb), (&b, &na)] {
            from.stores
                .lock()
                .expect("lock")
                .ledger
                .note_addrs(
                    &to.id(),
                    &to.bound()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                )
                .expect("ledger");
        }
        nb.sync_with(&na.id(), &na.bound()).await.expect("sync");
        let exp = a
            .stores
            .lock()
            .expect("lock")
            .catalog
            .experiments()
            .expect("exps")[0]
            .id;
        // A second handle on A's catalog: the writer is another process as far as A's node knows.
        let mut writer = Catalog::open(&a.paths.catalog, "job").expect("writer");
        let mut lat = Vec::new();
        for i in 0..20 {
            let run = Run::new(RunId::new(), exp, format!("live-{i}"), 1_700_000_000_000);
            let since = b
                .stores
                .lock()
                .expect("lock")
                .catalog
                .changes_since(0)
                .expect("c")
                .0;
            let t = Instant::now();
            writer
                .create_runs(std::slice::from_ref(&run))
                .expect("create");
            writer
                .update_run(run.id, &[RunEdit::Notes("searchable".into())])
                .expect("edit");
            loop {
                let seen = {
                    let s = b.stores.lock().expect("lock");
                    s.catalog
                        .changes_since(since)
                        .expect("c")
                        .1
                        .iter()
                        .any(|r| r.id == run.id)
                };
                if seen {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "run {i} never arrived"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            lat.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        lat.sort();
        println!(
            "new run visible on the other peer: median {:.0} ms, max {:.0} ms (poll every 20 ms; the CLI's default is 100 ms)",
            lat[lat.len() / 2].as_secs_f64() * 1e3,
            lat[lat.len() - 1].as_secs_f64() * 1e3
        );
        na.shutdown().await;
        nb.shutdown().await;
    }

    // 4. A keystroke in a 1 MB notebook, from A's editor to B's screen, default configuration.
    if part("4") {
        use cairn_catalog::NotebookEdit;
        use cairn_model::NotebookId;
        use cairn_model::notebook::{Notebook, NotebookMeta};

        let (a, b) = (dev("a"), dev("b"));
        team(&[&a, &b]);
        let mut text = String::new();
        let mut i = 0;
        let size = env("CAIRN_BENCH_NB_BYTES", 1 << 20);
        while text.len() < size {
            text.push_str(&format!(
                "## Trial {i}\n\nWarmup {i} steps; loss fell to 0.{i:04}. [[run:01jbench{i:018}]]\n\n"
            ));
            i += 1;
        }
        let id = NotebookId::new();
        let nb = Notebook {
            meta: NotebookMeta {
                id,
                title: "Warmup study".into(),
                owners: vec!["ada".into()],
                tags: vec![],
                experiment: None,
                created_ms: 1,
                created_by: "ada".into(),
                updated_ms: 1,
                updated_by: "ada".into(),
                bytes: text.len() as u64,
            },
            text: text.clone(),
            heads: Vec::new(),
        };
        a.stores
            .lock()
            .expect("lock")
            .catalog
            .create_notebook(&nb)
            .expect("notebook");
        let default = |d: &Dev| {
            Node::spawn(
                d.stores.clone(),
                d.key.clone(),
                NodeConfig {
                    watch: true,
                    ..NodeConfig::default()
                },
            )
        };
        let (na, nb) = (
            default(&a).await.expect("node"),
            default(&b).await.expect("node"),
        );
        for (from, to) in [(&a, &nb), (&b, &na)] {
            from.stores
                .lock()
                .expect("lock")
                .ledger
                .note_addrs(
                    &to.id(),
                    &to.bound()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>(),
                )
                .expect("ledger");
        }
        nb.sync_with(&na.id(), &na.bound()).await.expect("sync");
        let mut editor = Catalog::open(&a.paths.catalog, "editor").expect("editor");
        let mut lat = Vec::new();
        let mut screen = Vec::new();
        let mut edits = Vec::new();
        for k in 0..30usize {
            // Type one character in the middle of the text (at a char boundary).
            let mut at = text.len() / 2 + k;
            while !text.is_char_boundary(at) {
                at += 1;
            }
            text.insert(at, 'x');
            let bytes = text.len() as u64;
            let t = Instant::now();
            editor
                .edit_notebook(id, &[NotebookEdit::Text(text.clone())], "ada", 2 + k as i64)
                .expect("edit");
            edits.push(t.elapsed());
            loop {
                let arrived = b
                    .stores
                    .lock()
                    .expect("lock")
                    .catalog
                    .notebooks()
                    .expect("list")
                    .iter()
                    .any(|m| m.id == id && m.bytes == bytes);
                if arrived {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "keystroke {k} never arrived"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            lat.push(t.elapsed());
            // What the other screen does next: read the notebook as it now is.
            let seen = b
                .stores
                .lock()
                .expect("lock")
                .catalog
                .notebook(id)
                .expect("read")
                .expect("held")
                .text;
            assert_eq!(seen.len(), text.len());
            screen.push(t.elapsed());
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
        lat.sort();
        screen.sort();
        edits.sort();
        println!(
            "keystroke stored on A (diff of the whole text, the change, the projection): median {:.0} ms, max {:.0} ms",
            edits[edits.len() / 2].as_secs_f64() * 1e3,
            edits[edits.len() - 1].as_secs_f64() * 1e3
        );
        println!(
            "keystroke in a {:.2} MB notebook on the other peer: in its catalog median {:.0} ms, max {:.0} ms; read there with the keystroke median {:.0} ms, max {:.0} ms (default configuration: poll every 100 ms)",
            text.len() as f64 / 1e6,
            lat[lat.len() / 2].as_secs_f64() * 1e3,
            lat[lat.len() - 1].as_secs_f64() * 1e3,
            screen[screen.len() / 2].as_secs_f64() * 1e3,
            screen[screen.len() - 1].as_secs_f64() * 1e3
        );
        na.shutdown().await;
        nb.shutdown().await;
    }
}
