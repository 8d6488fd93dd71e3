//! `cargo bench -p cairn-audit --bench verify`: `cairn audit verify`'s work over a million events
//! (target ≤ 10 s), what an append costs, and a bundle's export and check.
//!
//! `AUDIT_BENCH_EVENTS=N` picks another size; `AUDIT_BENCH_DEVICES=D` spreads them over D chains
//! (default 4, a small team).

#![allow(clippy::print_stdout)]

use std::time::Instant;

use cairn_audit::bundle::{Format, Header, export, verify_bundle};
use cairn_audit::{AuditStore, DeviceKey, Draft, Signer, kind, verify_store};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A run-creation event as `cairn-core` writes one: the run, its experiment, its lineage.
fn draft(i: u64) -> Draft {
    Draft::new(
        "member-of-the-team",
        kind::RUN_CREATED,
        1_760_000_000_000 + i as i64,
    )
    .subject(format!("run:0192{i:028x}"))
    .subject("experiment:0191aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
    .field("name", format!("sweep-{i}"))
    .field("code_commit", format!("{:040x}", i * 7919))
    .field("datasets", format!("[\"train@blake3:{:064x}\"]", i))
    .field("feature_set", "features@v12")
    .field("infra", "{\"gpu\":\"NVIDIA H100 80GB HBM3\",\"count\":1}")
}

fn main() {
    let n = env("AUDIT_BENCH_EVENTS", 1_000_000);
    let devices = env("AUDIT_BENCH_DEVICES", 4).max(1);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("audit.db");
    let keys: Vec<DeviceKey> = (0..devices)
        .map(|d| DeviceKey::from_secret(&[d as u8 + 1; 32]))
        .collect();
    let roster: Vec<Signer> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Signer {
            device: k.id().to_owned(),
            member: format!("member-{i}"),
            removed_ms: None,
        })
        .collect();

    let mut store = AuditStore::open(&path).expect("open");
    // One append per transaction, as a run's creation writes it.
    let single = 2_000.min(n);
    let t = Instant::now();
    for i in 0..single {
        store.append(&keys[0], draft(i)).expect("append");
    }
    let per_append = t.elapsed().as_secs_f64() / single as f64;
    println!(
        "append (one event, one commit): {:.1} µs/event ({single} events)",
        per_append * 1e6
    );

    let t = Instant::now();
    let mut written = single;
    let batch = 20_000;
    while written < n {
        let k = &keys[(written / batch % devices) as usize];
        let take = batch.min(n - written);
        let drafts = (written..written + take).map(draft).collect();
        store.append_all(k, drafts).expect("append_all");
        written += take;
    }
    println!(
        "filled {n} events over {devices} chains in {:.1} s; audit.db {} MB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&path).map_or(0, |m| m.len()) / 1_000_000
            + std::fs::metadata(dir.path().join("audit.db-wal")).map_or(0, |m| m.len()) / 1_000_000
    );
    drop(store);

    for round in 1..=3 {
        let store = AuditStore::open(&path).expect("open");
        let t = Instant::now();
        let report = verify_store(&store, Some(&roster))
            .expect("verify")
            .finish();
        let secs = t.elapsed().as_secs_f64();
        assert!(report.ok(), "{:?}", report.counts);
        assert_eq!(report.events, n);
        println!(
            "verify round {round}: {n} events in {secs:.2} s ({:.0} events/s){}",
            n as f64 / secs,
            if secs <= 10.0 {
                "  ≤ 10 s ✅"
            } else {
                "  > 10 s ❌"
            }
        );
    }

    let store = AuditStore::open(&path).expect("open");
    let bundle = dir.path().join("bundle.jsonl");
    let t = Instant::now();
    let mut f = std::io::BufWriter::new(std::fs::File::create(&bundle).expect("create"));
    let header = Header {
        format: cairn_audit::bundle::BUNDLE_FORMAT.into(),
        workspace: "bench".into(),
        device: keys[0].id().into(),
        member: "member-0".into(),
        exported_ms: 1_900_000_000_000,
        roster: roster.clone(),
    };
    export(&store, &keys[0], header, Format::Jsonl, &mut f).expect("export");
    drop(f);
    println!(
        "export jsonl: {:.2} s, {} MB",
        t.elapsed().as_secs_f64(),
        std::fs::metadata(&bundle).map_or(0, |m| m.len()) / 1_000_000
    );
    let t = Instant::now();
    let check = verify_bundle(&bundle).expect("verify bundle");
    assert!(check.ok());
    println!("verify --bundle: {:.2} s", t.elapsed().as_secs_f64());
}
