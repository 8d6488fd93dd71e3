//! Cairn's audit trail (issue #15): tamper-evident, per-device hash chains of signed events.
//!
//! Every governance-relevant change (a run created with its lineage, an evaluation, a model
//! version registered, a gate check, an approval, an alias move, a deployment, a deletion, a
//! roster or policy change) becomes an [`Event`] naming the member and device. Each device
//! appends its events to its own chain: an event carries its sequence number and the BLAKE3 of
//! the previous one, and is signed with the device's ed25519 key (the iroh identity on the
//! roster). Chains are single-writer and append-only, so they need no CRDT: peers compare
//! [`Mark`]s (length and head) and send what the other lacks; an event that would rewrite or
//! fork a chain already held is refused and kept as a [`Conflict`].
//!
//! - [`event`]: the event, its canonical signed encoding, its hash, bounds and the device key;
//! - [`store`]: [`AuditStore`], the chains held here (SQLite), append, receive, queries;
//! - [`verify`]: [`Verifier`], every signature (on every core) and chain link, signers against
//!   the roster, a [`Report`] of findings;
//! - [`bundle`]: signed export bundles (JSONL, HTML with the JSONL embedded, CSV) and their
//!   verification on a machine with no workspace.
//!
//! What it is not: it knows no runs or models. `cairn-core` decides which changes are events,
//! what they attest and which governed records must have one.

pub mod bundle;
mod error;
pub mod event;
pub mod store;
pub mod verify;

pub use bundle::{BundleCheck, Format, Header, export, verify_bundle};
pub use error::Error;
pub use event::{DeviceKey, Draft, Event, kind};
pub use store::{AuditStore, Conflict, Mark, Query, Received};
pub use verify::{Finding, Problem, Report, Signer, Verifier};

/// Verifies every chain in `store` against `roster` (or only signatures and links without
/// one), adding the conflicts the store refused as forks. The store is read on this thread while
/// another checks what was read before (a slice of 32k events at a time).
pub fn verify_store(store: &AuditStore, roster: Option<&[Signer]>) -> Result<Verifier, Error> {
    const SLICE: usize = 32 * 1024;
    let mut v = std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Event>>(2);
        let checker = scope.spawn(move || {
            let mut v = Verifier::new(roster);
            for slice in rx {
                v.feed(&slice);
            }
            v
        });
        let read = (|| {
            for device in store.devices()? {
                let mut from = 0;
                loop {
                    let slice = store.chain(&device, from, SLICE)?;
                    let next = match slice.last() {
                        Some(last) if slice.len() == SLICE => Some(last.seq.saturating_add(1)),
                        _ => None,
                    };
                    if tx.send(slice).is_err() {
                        return Ok(());
                    }
                    match next {
                        Some(n) => from = n,
                        None => break,
                    }
                }
            }
            Ok::<_, Error>(())
        })();
        drop(tx);
        let v = checker
            .join()
            .map_err(|_| Error::Malformed("the verifying thread failed".into()))?;
        read.map(|()| v)
    })?;
    for c in store.conflicts()? {
        v.add(Finding {
            problem: c.problem,
            device: c.device.clone(),
            seq: Some(c.seq),
            detail: format!("offered by {}: {}", event::short(&c.source), c.why),
        });
    }
    Ok(v)
}
