//! Blob benchmarks (`cargo bench -p cairn-sync --bench blobs`), one phase per process so that
//! each peak RSS is its own (`CAIRN_BENCH_PHASE=join|live`, default `join`):
//!
//! - `join`: a fresh peer receives `CAIRN_BENCH_BLOBS` (default 200) distinct 1 MiB artifacts
//!   over real iroh endpoints on loopback, as an inviter sends them to a joiner: time, bytes,
//!   peak RSS of the process holding both peers.
//! - `live`: what listing the live blobs costs (the blob digest every session and
//!   `cairn sync status` read): `CAIRN_BENCH_RUNS` (default 100,000) runs binding two artifacts
//!   each, over 2,000 distinct stored blobs and 500 directory manifests: the first listing (every
//!   manifest read) and the next (manifests cached).
#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cairn_model::{ArtifactKind, ArtifactRef, BlobHash, Experiment, ExperimentId, Run, RunId};
use cairn_sync::node::Node;
use cairn_sync::{NodeConfig, SecretKey, SharedStores, StorePaths, Stores, roster};

struct Dev {
    _dir: tempfile::TempDir,
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
        stores,
        key: SecretKey::generate(),
    }
}

fn team(devs: &[&Dev]) {
    let ids: Vec<String> = devs.iter().map(|d| d.key.public().to_string()).collect();
    for d in devs {
        let mut s = d.stores.lock().expect("lock");
        roster::create(&mut s.catalog, "bench", &ids[0], "first", "").expect("team");
        for id in &ids {
            roster::add(&mut s.catalog, id, "member", "", &ids[0]).expect("roster");
        }
    }
}

fn experiment(s: &mut Stores, name: &str) -> ExperimentId {
    let exp = Experiment {
        id: ExperimentId::new(),
        name: name.into(),
        created_ms: 1,
        description: None,
        tags: BTreeMap::new(),
        schema: None,
        deleted: false,
    };
    s.catalog.create_experiment(&exp).expect("experiment");
    exp.id
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

async fn node(d: &Dev) -> Node {
    Node::spawn(d.stores.clone(), d.key.clone(), NodeConfig::default())
        .await
        .expect("node")
}

async fn join(blobs: usize) {
    let (a, b) = (dev("a"), dev("b"));
    team(&[&a, &b]);
    {
        let mut s = a.stores.lock().expect("lock");
        let exp = experiment(&mut s, "e");
        let mut run = Run::new(RunId::new(), exp, "checkpoints", 1_700_000_000_000);
        for i in 0..blobs {
            // Distinct, incompressible-ish 1 MiB files.
            let mut bytes = vec![0u8; 1 << 20];
            let mut x = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for b in bytes.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = x as u8;
            }
            let put = s.artifacts.put_bytes(&bytes).expect("put");
            run.artifacts.insert(
                format!("ckpt/{i}.bin"),
                ArtifactRef {
                    hash: put.hash,
                    size: put.size,
                    kind: ArtifactKind::File,
                },
            );
        }
        s.catalog.create_runs(&[run]).expect("run");
    }
    let base = peak_rss_mib();
    let (na, nb) = (node(&a).await, node(&b).await);
    let t = Instant::now();
    let r = nb.sync_with(&na.id(), &na.bound()).await.expect("sync");
    println!(
        "fresh peer, {blobs} × 1 MiB blobs: {:.2} s, {:.1} MB received, {} blobs, peak RSS of both peers {:.0} MiB ({:.0} MiB before the session)",
        t.elapsed().as_secs_f64(),
        r.received as f64 / 1e6,
        r.blobs_received,
        peak_rss_mib(),
        base,
    );
    na.shutdown().await;
    nb.shutdown().await;
}

fn live(runs: usize) {
    let a = dev("a");
    let mut s = a.stores.lock().expect("lock");
    let t = Instant::now();
    let files: Vec<BlobHash> = (0..2_000)
        .map(|i| {
            s.artifacts
                .put_bytes(format!("artifact {i}").as_bytes())
                .expect("put")
                .hash
        })
        .collect();
    let dirs: Vec<BlobHash> = (0..500)
        .map(|i| {
            let entries = (0..4)
                .map(|k| cairn_artifacts::ManifestEntry {
                    path: format!("f{k}.txt"),
                    hash: files[(i * 4 + k) % files.len()],
                    size: 12,
                })
                .collect();
            let m = cairn_artifacts::Manifest::from_entries(entries);
            s.artifacts.put_bytes(&m.to_bytes()).expect("put").hash
        })
        .collect();
    let mut made = 0;
    let mut e = 0;
    while made < runs {
        let exp = experiment(&mut s, &format!("exp-{e}"));
        e += 1;
        let batch: Vec<Run> = (made..(made + 1000).min(runs))
            .map(|i| {
                let mut r = Run::new(RunId::new(), exp, format!("run-{i}"), 1_700_000_000_000);
                r.artifacts.insert(
                    "model.bin".into(),
                    ArtifactRef {
                        hash: files[i % files.len()],
                        size: 12,
                        kind: ArtifactKind::File,
                    },
                );
                r.artifacts.insert(
                    "plots".into(),
                    ArtifactRef {
                        hash: dirs[i % dirs.len()],
                        size: 48,
                        kind: ArtifactKind::Dir,
                    },
                );
                r
            })
            .collect();
        made += batch.len();
        s.catalog.create_runs(&batch).expect("runs");
    }
    println!(
        "filled {runs} runs × 2 artifacts in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let mut times: Vec<Duration> = Vec::new();
    let mut n = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let (blobs, _) = s.blobs_manifest().expect("manifest");
        times.push(t.elapsed());
        n = blobs.len();
    }
    println!(
        "live blobs of {runs} runs ({n} offered): first {:.0} ms, then {:.0} / {:.0} ms",
        times[0].as_secs_f64() * 1e3,
        times[1].as_secs_f64() * 1e3,
        times[2].as_secs_f64() * 1e3,
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    match std::env::var("CAIRN_BENCH_PHASE").as_deref() {
        Ok("live") => live(env("CAIRN_BENCH_RUNS", 100_000)),
        _ => join(env("CAIRN_BENCH_BLOBS", 200)).await,
    }
}
