//! Purge tombstones: a signed record that a blob's content must be gone from every device (a
//! leaked secret), and what a device does when it reads one.
//!
//! A tombstone is a team-doc entry `purge/<blob hash>/<device id>` → JSON: the blob, who purged
//! it (the person and the device's endpoint id), when, from which run and path, why, and an
//! ed25519 signature by that device's key (the iroh `SecretKey` in `device.key`) over a
//! canonical encoding of those fields. One key per (blob, device): records are only ever
//! added, and two devices purging the same blob offline keep both.
//!
//! Any roster member can write any team-doc key, so a record counts only when its signature
//! verifies against the key its device id names and that device is an active member (or this
//! device itself). Anything else is ignored and reported, never acted on. A valid tombstone
//! makes a device delete the blob, unbind every path that binds it, and refuse it from then on:
//! never want it from a peer, never offer or serve it, never store it again from sync.

use std::collections::BTreeSet;
use std::str::FromStr;

use cairn_artifacts::ArtifactStore;
use cairn_catalog::{Catalog, RunEdit};
use cairn_model::{BlobHash, RunId};
use iroh::{EndpointId, SecretKey, Signature};
use serde::{Deserialize, Serialize};

use crate::{Error, roster};

/// Team-doc keys of tombstones start with this.
pub const PREFIX: &str = "purge/";
/// What the signature covers first, so a purge signature can never be taken for another record.
const DOMAIN: &[u8] = b"cairn/purge/1\0";
/// Bounds on what a record may carry (a peer writes them).
const MAX_TEXT: usize = 4096;

/// One signed purge record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// The content that must be gone.
    pub blob: BlobHash,
    /// The purging device's endpoint id (hex): the key that signed.
    pub device: String,
    /// The person behind the device, as the workspace user.
    pub user: String,
    pub at_ms: i64,
    /// Where it was bound when it was purged.
    pub run: String,
    pub path: String,
    pub reason: String,
    /// Ed25519 over [`Tombstone::signed_bytes`], hex.
    pub signature: String,
}

/// A tombstone that did not count, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    pub key: String,
    pub why: String,
}

/// The tombstones in a catalog, sorted out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    pub valid: Vec<Tombstone>,
    pub ignored: Vec<Ignored>,
}

impl Tombstones {
    /// The blobs purged by valid records.
    pub fn blobs(&self) -> BTreeSet<BlobHash> {
        self.valid.iter().map(|t| t.blob).collect()
    }
}

impl Tombstone {
    /// A record, not yet signed (see [`Tombstone::signed`]).
    pub fn new(
        blob: BlobHash,
        user: &str,
        at_ms: i64,
        run: &str,
        path: &str,
        reason: &str,
    ) -> Tombstone {
        Tombstone {
            blob,
            device: String::new(),
            user: user.to_owned(),
            at_ms,
            run: run.to_owned(),
            path: path.to_owned(),
            reason: reason.to_owned(),
            signature: String::new(),
        }
    }

    /// The record as `key`'s device signs it (its device id set to `key`'s).
    pub fn signed(mut self, key: &SecretKey) -> Tombstone {
        self.device = key.public().to_string();
        self.signature = hex(&key.sign(&self.signed_bytes()).to_bytes());
        self
    }

    /// The team-doc key this record lives under.
    pub fn key(&self) -> String {
        format!("{PREFIX}{}/{}", self.blob, self.device)
    }

    /// What the signature covers: a domain tag, then every field but the signature, each
    /// length-prefixed (so no two different records encode alike).
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = DOMAIN.to_vec();
        out.extend_from_slice(&self.blob.0);
        for text in [
            &self.device,
            &self.user,
            &self.run,
            &self.path,
            &self.reason,
        ] {
            out.extend_from_slice(&(text.len() as u64).to_be_bytes());
            out.extend_from_slice(text.as_bytes());
        }
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        out
    }

    /// Checks the signature against the key `device` names. Says why not.
    pub fn verify(&self) -> Result<(), String> {
        let id = EndpointId::from_str(&self.device)
            .map_err(|e| format!("device '{}' is not an endpoint id: {e}", self.device))?;
        let sig = unhex::<64>(&self.signature)
            .ok_or_else(|| "the signature is not 64 bytes of hex".to_owned())?;
        id.verify(&self.signed_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| format!("the signature does not verify for device {}", self.device))
    }
}

/// Records `t` in the team doc.
pub fn record(catalog: &mut Catalog, t: &Tombstone) -> Result<(), Error> {
    let text = serde_json::to_string(t)
        .map_err(|e| Error::Team(format!("encoding the tombstone of {}: {e}", t.blob)))?;
    catalog.put_team_entry(&t.key(), Some(&text))?;
    Ok(())
}

/// Every tombstone in the catalog, verified: valid ones (signed by an active member's device,
/// or by `me`) and ignored ones with the reason, each ignored one logged as a warning.
pub fn tombstones(catalog: &mut Catalog, me: Option<&str>) -> Result<Tombstones, Error> {
    let entries = catalog.team_entries(PREFIX)?;
    let mut out = Tombstones::default();
    if entries.is_empty() {
        return Ok(out);
    }
    let members = roster::members(catalog)?;
    for (key, text) in entries {
        let checked = serde_json::from_str::<Tombstone>(&text)
            .map_err(|e| format!("it does not parse: {e}"))
            .and_then(|t| {
                if t.key() != key {
                    return Err(format!("it names blob {} of device {}", t.blob, t.device));
                }
                if [&t.user, &t.run, &t.path, &t.reason]
                    .iter()
                    .any(|s| s.len() > MAX_TEXT)
                {
                    return Err(format!("a field is longer than {MAX_TEXT} bytes"));
                }
                t.verify()?;
                let active = members.iter().any(|m| m.id == t.device && !m.removed);
                if !active && me != Some(t.device.as_str()) {
                    return Err(format!(
                        "device {} is not an active member of the team",
                        t.device
                    ));
                }
                Ok(t)
            });
        match checked {
            Ok(t) => out.valid.push(t),
            Err(why) => {
                if first_report(&key, &text) {
                    tracing::warn!(key, "ignoring a purge tombstone: {why}");
                } else {
                    tracing::debug!(key, "ignoring a purge tombstone: {why}");
                }
                out.ignored.push(Ignored { key, why });
            }
        }
    }
    Ok(out)
}

/// Whether this process has not yet reported this record (tombstones are read at every
/// session: a bad one is worth one warning, not one per session).
fn first_report(key: &str, text: &str) -> bool {
    static SEEN: std::sync::Mutex<BTreeSet<[u8; 32]>> = std::sync::Mutex::new(BTreeSet::new());
    let id = *blake3::hash(format!("{key}\n{text}").as_bytes()).as_bytes();
    // A poisoned set only means a panic elsewhere while inserting: report again.
    SEEN.lock().map_or(true, |mut seen| seen.insert(id))
}

/// What erasing one blob did here.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Erased {
    /// The blob's bytes, when it was stored here.
    pub removed_bytes: Option<u64>,
    /// (run, path) bindings that were unbound.
    pub unbound: Vec<(String, String)>,
}

/// Deletes `blob` from the store and unbinds every path that binds it (as a file, or as a
/// directory whose manifest it is), in any run.
pub fn erase(
    catalog: &mut Catalog,
    artifacts: &ArtifactStore,
    blob: &BlobHash,
) -> Result<Erased, Error> {
    let mut out = Erased::default();
    let mut by_run: Vec<(RunId, Vec<RunEdit>)> = Vec::new();
    for b in catalog.bindings_of_blob(blob)? {
        out.unbound.push((b.run.to_string(), b.path.clone()));
        match by_run.iter_mut().find(|(r, _)| *r == b.run) {
            Some((_, edits)) => edits.push(RunEdit::DeleteArtifact(b.path)),
            None => by_run.push((b.run, vec![RunEdit::DeleteArtifact(b.path)])),
        }
    }
    if !by_run.is_empty() {
        catalog.update_runs(&by_run)?;
    }
    out.removed_bytes = artifacts.remove(blob)?;
    Ok(out)
}

/// Purges a blob here: signs `unsigned` with `key` and records it first (so a crash before the
/// erasure is finished by the next session's [`apply`]), then erases the blob and every binding.
pub fn purge(
    catalog: &mut Catalog,
    artifacts: &ArtifactStore,
    key: &SecretKey,
    unsigned: Tombstone,
) -> Result<(Tombstone, Erased), Error> {
    for (what, text) in [
        ("user", &unsigned.user),
        ("run", &unsigned.run),
        ("path", &unsigned.path),
        ("reason", &unsigned.reason),
    ] {
        if text.len() > MAX_TEXT {
            return Err(Error::Team(format!(
                "the purge's {what} is {} bytes long (at most {MAX_TEXT})",
                text.len()
            )));
        }
    }
    let t = unsigned.signed(key);
    record(catalog, &t)?;
    let erased = erase(catalog, artifacts, &t.blob)?;
    Ok((t, erased))
}

/// What applying the tombstones did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// Blobs purged by valid records (refused from now on).
    pub purged: BTreeSet<BlobHash>,
    /// Of those, how many were erased here just now (held or bound).
    pub erased: usize,
    pub ignored: Vec<Ignored>,
}

/// Reads and verifies the tombstones, and erases here every purged blob still held or bound.
pub fn apply(
    catalog: &mut Catalog,
    artifacts: &ArtifactStore,
    me: Option<&str>,
) -> Result<Applied, Error> {
    let t = tombstones(catalog, me)?;
    let mut applied = Applied {
        purged: t.blobs(),
        erased: 0,
        ignored: t.ignored,
    };
    for blob in &applied.purged {
        if artifacts.contains(blob) || !catalog.bindings_of_blob(blob)?.is_empty() {
            let e = erase(catalog, artifacts, blob)?;
            tracing::info!(
                blob = %blob,
                unbound = e.unbound.len(),
                "erased a purged blob"
            );
            applied.erased += 1;
        }
    }
    Ok(applied)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(key: &SecretKey) -> Tombstone {
        Tombstone::new(
            BlobHash([7; 32]),
            "ada",
            1_700_000_000_000,
            "0190f5d2a8f47c3a9e1b2c3d4e5f6a7b",
            ".env",
            "leaked AWS key",
        )
        .signed(key)
    }

    #[test]
    fn a_signed_record_verifies_and_any_change_breaks_it() {
        let key = SecretKey::generate();
        let t = sample(&key);
        assert_eq!(t.verify(), Ok(()));
        let mut edits: Vec<Tombstone> = Vec::new();
        for f in 0..6 {
            let mut e = t.clone();
            match f {
                0 => e.blob = BlobHash([8; 32]),
                1 => e.user = "eve".into(),
                2 => e.at_ms += 1,
                3 => e.run = "0190f5d2a8f47c3a9e1b2c3d4e5f6a7c".into(),
                4 => e.path = ".env2".into(),
                _ => e.reason = "no reason".into(),
            }
            edits.push(e);
        }
        for e in edits {
            assert!(e.verify().is_err(), "{e:?}");
        }
        // Another device's signature under this device's name.
        let mut forged = sample(&SecretKey::generate());
        forged.device = t.device.clone();
        assert!(forged.verify().unwrap_err().contains("does not verify"));
        let mut unsigned = t;
        unsigned.signature.clear();
        assert!(unsigned.verify().unwrap_err().contains("64 bytes"));
    }

    #[test]
    fn field_boundaries_are_part_of_what_is_signed() {
        let key = SecretKey::generate();
        let mut a = sample(&key);
        a.path = "ab".into();
        a.reason = "c".into();
        let mut b = a.clone();
        b.path = "a".into();
        b.reason = "bc".into();
        assert_ne!(a.signed_bytes(), b.signed_bytes());
    }
}
