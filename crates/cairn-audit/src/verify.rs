//! Verification: every event's bounds and signature, every chain's links and numbering, and who
//! signed (unknown devices, devices that signed after their removal). What CloudTrail's log
//! validation and transparency logs give auditors, offline: a [`Report`] listing each
//! [`Finding`] with the chain and event it concerns.
//!
//! Signatures are checked on every core, a slice of events per thread; links are then walked in
//! order (cheap: the hashes came with the signature checks).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use ed25519_dalek::{Signature, VerifyingKey};

use crate::event::{Event, GENESIS, hash_of, short, unhex, verify_signed};

/// A device the roster knows, and when it was removed (if it was).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    pub device: String,
    pub member: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed_ms: Option<i64>,
}

/// What is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Problem {
    /// The signature does not verify (an edited event, or a forged one), or the event breaks a
    /// bound.
    BadSignature,
    /// An event's `prev` is not the hash of the chain's previous event (one before it was
    /// edited or replaced).
    BrokenLink,
    /// Events missing from a chain (removed, or never received).
    Gap,
    /// Events out of sequence order (a reordered chain) or repeated.
    OutOfOrder,
    /// Two different events claim one place of a chain (a peer rewrote or forked it).
    Fork,
    /// Signed by a device the roster does not know.
    UnknownSigner,
    /// Signed by a removed member's device after its removal.
    SignedAfterRemoval,
    /// A governed record with no signed event attesting its content (a raw edit).
    Unattested,
}

impl Problem {
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::BadSignature => "bad signature",
            Problem::BrokenLink => "broken link",
            Problem::Gap => "gap",
            Problem::OutOfOrder => "out of order",
            Problem::Fork => "fork",
            Problem::UnknownSigner => "unknown signer",
            Problem::SignedAfterRemoval => "signed after removal",
            Problem::Unattested => "unattested change",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub problem: Problem,
    /// The chain (device id) or record it concerns.
    pub device: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    pub detail: String,
}

/// One chain as verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSummary {
    pub device: String,
    /// The person the roster names for it (empty when unknown or no roster was given).
    pub member: String,
    pub events: u64,
    /// The hash of its last event.
    pub head: String,
}

/// What [`Verifier::finish`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub events: u64,
    pub chains: Vec<ChainSummary>,
    /// How many of each problem (all of them, though `findings` lists at most
    /// [`MAX_LISTED`]).
    pub counts: BTreeMap<String, u64>,
    pub findings: Vec<Finding>,
    /// Whether signers were checked against a roster.
    pub roster_checked: bool,
}

impl Report {
    /// No problem of any kind.
    pub fn ok(&self) -> bool {
        self.counts.is_empty()
    }

    pub fn count(&self, p: Problem) -> u64 {
        self.counts.get(p.as_str()).copied().unwrap_or(0)
    }
}

/// At most this many findings are listed (every one is counted).
pub const MAX_LISTED: usize = 1000;

/// An event's signature and bounds check, and its hash.
#[derive(Debug, Clone)]
pub(crate) struct Checked {
    pub hash: String,
    pub result: Result<(), String>,
}

fn check_one(e: &Event) -> Checked {
    let signed = e.signed_bytes();
    let hash = hash_of(&signed, &e.signature);
    let result = match e.check_bounds() {
        Err(err) => Err(err.to_string()),
        Ok(()) => verify_signed(&e.device, &signed, &e.signature),
    };
    Checked { hash, result }
}

/// Events verified together (`verify_batch`: at 1,024 its multiscalar multiplication is
/// Pippenger's, about twice the throughput of one-by-one checks).
const BATCH: usize = 1024;

/// Checks a slice: bounds and hashes one by one, signatures in batches (`verify_batch`); a
/// batch that fails is checked one by one to name the events that do not verify.
fn check_slice(events: &[Event]) -> Vec<Checked> {
    let mut out = Vec::with_capacity(events.len());
    let mut keys_seen: HashMap<String, VerifyingKey> = HashMap::new();
    for group in events.chunks(BATCH) {
        let mut signed = Vec::with_capacity(group.len());
        let mut keys = Vec::with_capacity(group.len());
        let mut sigs = Vec::with_capacity(group.len());
        let mut well_formed = true;
        for e in group {
            let bytes = e.signed_bytes();
            let parts = e.check_bounds().ok().and_then(|()| {
                // Decompressing a key costs about as much as a verification: once per device.
                let key = match keys_seen.get(&e.device) {
                    Some(k) => *k,
                    None => {
                        let k = unhex::<32>(&e.device)
                            .and_then(|b| VerifyingKey::from_bytes(&b).ok())?;
                        keys_seen.insert(e.device.clone(), k);
                        k
                    }
                };
                let sig = unhex::<64>(&e.signature).map(|b| Signature::from_bytes(&b))?;
                Some((key, sig))
            });
            match parts {
                Some((k, sg)) => {
                    keys.push(k);
                    sigs.push(sg);
                }
                None => well_formed = false,
            }
            signed.push(bytes);
        }
        let batch_ok = well_formed && {
            let messages: Vec<&[u8]> = signed.iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(&messages, &sigs, &keys).is_ok()
        };
        for (e, bytes) in group.iter().zip(&signed) {
            if batch_ok {
                out.push(Checked {
                    hash: hash_of(bytes, &e.signature),
                    result: Ok(()),
                });
            } else {
                out.push(check_one(e));
            }
        }
    }
    out
}

/// Checks `events` on every core.
pub(crate) fn check_many(events: &[Event]) -> Vec<Checked> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads <= 1 || events.len() < 4 * BATCH {
        return check_slice(events);
    }
    let per = events.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = events
            .chunks(per)
            .map(|slice| (slice, scope.spawn(move || check_slice(slice))))
            .collect();
        handles
            .into_iter()
            // A thread that died is redone here, so every event keeps its check.
            .flat_map(|(slice, h)| h.join().unwrap_or_else(|_| check_slice(slice)))
            .collect()
    })
}

#[derive(Debug)]
struct ChainState {
    member: String,
    next: u64,
    last_hash: String,
    events: u64,
    removed_ms: Option<i64>,
}

/// Verifies chains fed to it in order, a slice at a time, so a million events never sit in
/// memory at once.
#[derive(Debug)]
pub struct Verifier {
    roster: Option<HashMap<String, Signer>>,
    chains: BTreeMap<String, ChainState>,
    counts: BTreeMap<String, u64>,
    findings: Vec<Finding>,
    events: u64,
}

impl Verifier {
    /// `roster`: the devices that may sign (`None`: signers are not checked, only signatures
    /// and chains).
    pub fn new(roster: Option<&[Signer]>) -> Verifier {
        Verifier {
            roster: roster.map(|r| r.iter().map(|s| (s.device.clone(), s.clone())).collect()),
            chains: BTreeMap::new(),
            counts: BTreeMap::new(),
            findings: Vec::new(),
            events: 0,
        }
    }

    pub fn add(&mut self, finding: Finding) {
        *self
            .counts
            .entry(finding.problem.as_str().to_owned())
            .or_default() += 1;
        if self.findings.len() < MAX_LISTED {
            self.findings.push(finding);
        }
    }

    fn flag(&mut self, problem: Problem, device: &str, seq: Option<u64>, detail: String) {
        self.add(Finding {
            problem,
            device: device.to_owned(),
            seq,
            detail,
        });
    }

    /// Feeds the next events, each chain's in the order it was stored or written (chains may
    /// interleave).
    pub fn feed(&mut self, events: &[Event]) {
        let checks = check_many(events);
        for (e, c) in events.iter().zip(checks) {
            self.events += 1;
            if !self.chains.contains_key(&e.device) {
                let signer = self.roster.as_ref().map(|r| r.get(&e.device).cloned());
                if let Some(None) = signer {
                    self.flag(
                        Problem::UnknownSigner,
                        &e.device,
                        None,
                        format!(
                            "chain {} is signed by a device that is not on the roster (member '{}')",
                            short(&e.device),
                            e.member
                        ),
                    );
                }
                let signer = signer.flatten();
                self.chains.insert(
                    e.device.clone(),
                    ChainState {
                        member: signer
                            .as_ref()
                            .map(|s| s.member.clone())
                            .unwrap_or_default(),
                        next: 0,
                        last_hash: GENESIS.to_owned(),
                        events: 0,
                        removed_ms: signer.and_then(|s| s.removed_ms),
                    },
                );
            }
            let mut findings: Vec<(Problem, String)> = Vec::new();
            {
                let st = self.chains.get_mut(&e.device).expect("inserted above");
                st.events += 1;
                if let Err(why) = &c.result {
                    findings.push((Problem::BadSignature, why.clone()));
                }
                if let Some(removed) = st.removed_ms
                    && e.at_ms > removed
                {
                    findings.push((
                        Problem::SignedAfterRemoval,
                        format!(
                            "signed at {} ms, after the device was removed at {removed} ms",
                            e.at_ms
                        ),
                    ));
                }
                if e.seq == st.next {
                    if e.prev != st.last_hash {
                        findings.push((
                            Problem::BrokenLink,
                            format!(
                                "its prev {} is not the hash {} of event {} (that event was edited or replaced)",
                                short(&e.prev),
                                short(&st.last_hash),
                                e.seq.saturating_sub(1)
                            ),
                        ));
                    }
                } else if e.seq > st.next {
                    findings.push((
                        Problem::Gap,
                        format!(
                            "events {}..{} are missing (removed, or never received)",
                            st.next,
                            e.seq - 1
                        ),
                    ));
                } else {
                    findings.push((
                        Problem::OutOfOrder,
                        format!("comes after event {} (reordered or repeated)", st.next - 1),
                    ));
                }
                if e.seq >= st.next {
                    st.next = e.seq.saturating_add(1);
                }
                st.last_hash = c.hash;
            }
            for (p, detail) in findings {
                self.flag(p, &e.device, Some(e.seq), detail);
            }
        }
    }

    pub fn finish(self) -> Report {
        let chains = self
            .chains
            .into_iter()
            .map(|(device, st)| ChainSummary {
                device,
                member: st.member,
                events: st.events,
                head: st.last_hash,
            })
            .collect();
        Report {
            events: self.events,
            chains,
            counts: self.counts,
            findings: self.findings,
            roster_checked: self.roster.is_some(),
        }
    }
}
