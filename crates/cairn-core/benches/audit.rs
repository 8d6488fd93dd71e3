//! `cargo bench -p cairn-core --bench audit`: what the audit trail costs and how fast it answers
//! (issue #15). Prints figures; asserts nothing about speed.
//!
//! 1. Run creation through `Workspace::start_run` (each writes its signed `run.created` event in
//!    the catalog transaction that creates the run), and the same events signed and stored in
//!    one transaction of a fresh store: the share of run creation the event takes (target
//!    ≤ 5%); beside it, what each would cost in a transaction of its own.
//! 2. `Workspace::audit_trail` of a deployed version whose run has parents, gate checks,
//!    approvals and deployments, with `AUDIT_BENCH_OTHER` (default 100,000) other devices'
//!    events in the store (target ≤ 50 ms).
//! 3. `Workspace::run_history` of a run whose shard holds `AUDIT_BENCH_EDITS` (default 4,000)
//!    edits of its runs besides their creation.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::time::Instant;

use cairn_audit::{AuditStore, DeviceKey, Draft, kind};
use cairn_core::{NewRun, Workspace};
use cairn_model::{CodeVersion, DatasetSnapshot, Lineage, ParentKind, RunId};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn lineage(i: usize) -> Lineage {
    let mut l = Lineage::default();
    l.datasets.insert(
        "train".into(),
        DatasetSnapshot {
            name: Some(format!("churn-{i}")),
            digest: Some(format!("blake3:{i:064x}")),
            source: Some("s3://lake/churn".into()),
            ..Default::default()
        },
    );
    l.code = Some(CodeVersion {
        commit: Some(format!("{:040x}", i * 7919)),
        ..Default::default()
    });
    l
}

fn new_run(i: usize, parent: Option<RunId>) -> NewRun {
    NewRun {
        experiment_name: Some("bench".into()),
        params: (0..10)
            .map(|p| (format!("p{p}"), format!("{}", i * p)))
            .collect(),
        lineage: lineage(i),
        parent: parent.map(|p| (p, ParentKind::Child)),
        ..Default::default()
    }
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runs = env("AUDIT_BENCH_RUNS", 1_000);
    let other = env("AUDIT_BENCH_OTHER", 100_000);
    let dir = tempfile::tempdir()?;
    let ws = Workspace::create(&dir.path().join("ws"), "bench")?;
    ws.start_run(new_run(0, None))?; // opens the stores and the device key

    let t = Instant::now();
    let mut ids = Vec::with_capacity(runs);
    for i in 0..runs {
        ids.push(ws.start_run(new_run(i, None))?.id);
    }
    let per_run = t.elapsed().as_secs_f64() / runs as f64;

    // The same events, signed and stored the way a run's creation now stores its event: inside
    // a transaction that commits other rows too (here: all of them in one), so no commit of
    // their own. That is the event's share of a run's creation.
    let key = DeviceKey::from_secret(&[7; 32]);
    let drafts = |ids: &[RunId]| -> Vec<Draft> {
        ids.iter()
            .enumerate()
            .map(|(i, id)| {
                Draft::new("bench", kind::RUN_CREATED, 1_760_000_000_000)
                    .subject(format!("run:{id}"))
                    .subject("experiment:0191aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
                    .field("datasets", format!("[\"train=churn-{i}@blake3:{i:064x}\"]"))
                    .field("code_commit", format!("{:040x}", i * 7919))
                    .field("params", "10")
                    .field("params.blake3", format!("{:064x}", i))
            })
            .collect()
    };
    let mut shared = AuditStore::open(&dir.path().join("shared.db"))?;
    let batch = drafts(&ids);
    let t = Instant::now();
    shared.append_all(&key, batch)?;
    let in_tx = t.elapsed().as_secs_f64() / runs as f64;
    // And each in a transaction of its own (how the event was written before it moved into the
    // catalog's transaction).
    let mut alone = AuditStore::open(&dir.path().join("alone.db"))?;
    let batch = drafts(&ids);
    let t = Instant::now();
    for d in batch {
        alone.append(&key, d)?;
    }
    let own_tx = t.elapsed().as_secs_f64() / runs as f64;
    println!(
        "run creation: {:.0} µs/run ({runs} runs, event included); the event (sign, store, in the run's transaction): {:.1} µs = {:.1}% of a run's creation; in a transaction of its own it would take {:.0} µs",
        per_run * 1e6,
        in_tx * 1e6,
        100.0 * in_tx / per_run,
        own_tx * 1e6,
    );

    // A version with history: three generations of runs, checks, approvals, deployments.
    let mut parent = None;
    for g in 0..3 {
        parent = Some(ws.start_run(new_run(1_000_000 + g, parent))?.id);
    }
    let run = parent.expect("three runs");
    ws.add_artifact_reader(run, "model/weights.bin", &mut &b"weights"[..])?;
    ws.create_registered_model("churn", None, BTreeMap::new())?;
    ws.create_model_version(
        "churn",
        &format!("runs:/{run}/model"),
        Some(run),
        None,
        BTreeMap::new(),
    )?;
    for _ in 0..20 {
        ws.check_gate("churn", 1, "champion")?;
    }
    ws.promote("churn", 1, "champion", Some("best"))?;
    for t in 0..5 {
        ws.deploy(
            "churn",
            None,
            Some("champion"),
            &format!("region-{t}"),
            "rollout",
        )?;
    }
    // Other devices' events (a team's history), stored as sync would.
    let mut store = AuditStore::open(&dir.path().join("ws").join("catalog.db"))?;
    let t = Instant::now();
    for d in 0..4u8 {
        let peer = DeviceKey::from_secret(&[d + 100; 32]);
        let mut written = 0;
        while written < other / 4 {
            let n = 10_000.min(other / 4 - written);
            let drafts = (written..written + n)
                .map(|i| {
                    Draft::new("peer", kind::RUN_CREATED, 1_760_000_000_000 + i as i64)
                        .subject(format!("run:{d}-{i}"))
                        .field("code_commit", format!("{i:040x}"))
                })
                .collect();
            store.append_all(&peer, drafts)?;
            written += n;
        }
    }
    drop(store);
    println!(
        "filled {other} other events in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let mut times = Vec::new();
    let mut steps = 0;
    for _ in 0..50 {
        let t = Instant::now();
        let trail = ws.audit_trail("churn", 1)?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(trail.verified, "{:?}", trail.findings);
        steps = trail.steps.len() + trail.runs.iter().map(|r| r.steps.len()).sum::<usize>();
    }
    println!(
        "audit trail (3 runs, {steps} events on it, {other} others in the store): p50 {:.2} ms, p95 {:.2} ms{}",
        percentile(times.clone(), 0.5),
        percentile(times.clone(), 0.95),
        if percentile(times, 0.5) <= 50.0 {
            "  ≤ 50 ms ✅"
        } else {
            "  > 50 ms ❌"
        }
    );

    // A run's history (its field changes) in a shard that other runs' edits crowd: the runs
    // above (the first 1,000 share a shard) take `AUDIT_BENCH_EDITS` tag edits among them, 40
    // of them on the run whose history is read.
    let edits = env("AUDIT_BENCH_EDITS", 4_000);
    let crowd = &ids[..ids.len().min(1_000)];
    let t = Instant::now();
    for i in 0..edits {
        let id = if i % (edits / 40).max(1) == 0 {
            crowd[0]
        } else {
            crowd[i % crowd.len()]
        };
        ws.set_tags(id, &[(format!("k{}", i % 7), i.to_string())])?;
    }
    println!("{edits} tag edits in {:.1} s", t.elapsed().as_secs_f64());
    let id = crowd[0].to_string();
    let mut times = Vec::new();
    let mut changes = 0;
    for _ in 0..20 {
        let t = Instant::now();
        changes = ws.run_history(&id)?.len();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "run history ({changes} changes of the run, its shard {} runs and {edits} edits): p50 {:.2} ms, p95 {:.2} ms",
        crowd.len(),
        percentile(times.clone(), 0.5),
        percentile(times, 0.95),
    );
    Ok(())
}
