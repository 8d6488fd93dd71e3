//! `cargo bench -p cairn-audit --bench append`: where one event's append goes — the ed25519
//! signature (`seal`), the BLAKE3 hash, and `AuditStore::append` whole (sign, store, commit),
//! for a `run.created`-sized event. Prints figures; asserts nothing about speed.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use cairn_audit::event::seal;
use cairn_audit::{AuditStore, DeviceKey, Draft, kind};

fn draft(i: usize) -> Draft {
    Draft::new("bench", kind::RUN_CREATED, 1_760_000_000_000)
        .subject(format!("run:{i:032x}"))
        .subject("experiment:0191aaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .field("datasets", format!("[\"train=churn-{i}@blake3:{i:064x}\"]"))
        .field("code_commit", format!("{:040x}", i * 7919))
        .field("params", "10")
        .field("params.blake3", format!("{i:064x}"))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n = 5_000;
    let key = DeviceKey::from_secret(&[7; 32]);
    let drafts: Vec<Draft> = (0..n).map(draft).collect();
    let t = Instant::now();
    let events: Vec<_> = drafts
        .into_iter()
        .map(|d| seal(&key, 1, cairn_audit::event::GENESIS, d))
        .collect();
    println!(
        "sign (seal): {:.1} µs/event",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let t = Instant::now();
    for e in &events {
        std::hint::black_box(e.hash());
    }
    println!(
        "hash: {:.1} µs/event",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    let dir = tempfile::tempdir()?;
    let mut store = AuditStore::open(&dir.path().join("audit.db"))?;
    let t = Instant::now();
    for i in 0..n {
        store.append(&key, draft(i))?;
    }
    println!(
        "append (sign, store, commit): {:.1} µs/event ({n} events)",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    // The same events in one transaction: what an event costs when its commit is shared.
    let mut store = AuditStore::open(&dir.path().join("shared.db"))?;
    let drafts: Vec<Draft> = (0..n).map(draft).collect();
    let t = Instant::now();
    store.append_all(&key, drafts)?;
    println!(
        "append in a shared transaction (sign, store): {:.1} µs/event ({n} events, one commit)",
        t.elapsed().as_secs_f64() * 1e6 / n as f64
    );
    Ok(())
}
