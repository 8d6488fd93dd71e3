//! One audit event: what happened, to which records, by whom on which device, and where it sits
//! in that device's chain. The signature covers a canonical encoding ([`Event::signed_bytes`]);
//! the event's hash ([`Event::hash`]) covers that encoding and the signature, and the next event
//! of the chain carries it as `prev`.

use std::collections::BTreeMap;

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::Error;

/// What event signatures cover first, so one can never be taken for another record's.
pub const EVENT_DOMAIN: &[u8] = b"cairn/audit-event/1\0";

/// The `prev` of a chain's first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Bounds on what an event may hold (checked on every event from outside: a peer, a bundle).
pub const MAX_SUBJECTS: usize = 64;
pub const MAX_SUBJECT_LEN: usize = 512;
pub const MAX_FIELDS: usize = 256;
pub const MAX_FIELD_KEY_LEN: usize = 256;
pub const MAX_FIELD_VALUE_LEN: usize = 64 * 1024;
pub const MAX_TEXT_LEN: usize = 1024;

/// The kinds Cairn writes. The set is open: a newer peer's kinds verify and list like these.
pub mod kind {
    pub const RUN_CREATED: &str = "run.created";
    pub const RUN_DELETED: &str = "run.deleted";
    pub const RUN_RESTORED: &str = "run.restored";
    pub const SCHEMA_VIOLATION: &str = "run.schema_violation";
    /// Datasets a run read, logged after its creation (MLflow's `log_input`).
    pub const DATASETS_LOGGED: &str = "run.datasets_logged";
    pub const EVALUATION_LOGGED: &str = "evaluation.logged";
    pub const MODEL_CREATED: &str = "model.created";
    pub const MODEL_DELETED: &str = "model.deleted";
    pub const VERSION_REGISTERED: &str = "version.registered";
    pub const VERSION_DELETED: &str = "version.deleted";
    pub const GATE_EVALUATED: &str = "gate.evaluated";
    pub const GATE_POLICY_SET: &str = "gate.policy_set";
    pub const APPROVED: &str = "approval.signed";
    pub const ALIAS_MOVED: &str = "alias.moved";
    pub const ALIAS_DELETED: &str = "alias.deleted";
    pub const DEPLOYED: &str = "version.deployed";
    pub const SCHEMA_SET: &str = "schema.set";
    pub const MEMBER_ADDED: &str = "member.added";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const TEAM_CREATED: &str = "team.created";
    pub const ARTIFACT_PURGED: &str = "artifact.purged";
    pub const REVIEW_CREATED: &str = "review.created";
    pub const REVIEW_ACTION_CHANGED: &str = "review.action_changed";
    pub const REVIEW_TEMPLATE_SET: &str = "review.template_set";
    /// Records written before the workspace kept an audit trail, attested as they stand.
    pub const BASELINE: &str = "audit.baseline";
}

/// A BLAKE3 hash, as lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Lowercase or uppercase hex of exactly `N` bytes.
pub fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = digit(bytes[2 * i])? << 4 | digit(bytes[2 * i + 1])?;
    }
    Some(out)
}

/// An event as a caller describes it, before the chain places and signs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// The person, as the writing workspace's user.
    pub member: String,
    pub kind: String,
    /// The records it concerns, as `run:<id>`, `model:<name>`, `version:<model>/<version id>`,
    /// `experiment:<id>`, `member:<device id>`, `record:<team-doc key>`.
    pub subjects: Vec<String>,
    /// What it attests, each a text (numbers and digests as text, lists as JSON text).
    pub fields: BTreeMap<String, String>,
    pub at_ms: i64,
}

impl Draft {
    pub fn new(member: &str, kind: &str, at_ms: i64) -> Draft {
        Draft {
            member: member.to_owned(),
            kind: kind.to_owned(),
            at_ms,
            ..Draft::default()
        }
    }

    pub fn subject(mut self, subject: impl Into<String>) -> Draft {
        self.subjects.push(subject.into());
        self
    }

    pub fn field(mut self, key: &str, value: impl Into<String>) -> Draft {
        self.fields.insert(key.to_owned(), value.into());
        self
    }

    /// Sets `key` only when there is something to say.
    pub fn field_opt(self, key: &str, value: Option<impl Into<String>>) -> Draft {
        match value {
            Some(v) => self.field(key, v),
            None => self,
        }
    }
}

/// One signed event of a device's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The signing device's endpoint id (hex of its ed25519 public key).
    pub device: String,
    /// Its place in the device's chain, from 0.
    pub seq: u64,
    /// [`Event::hash`] of the chain's previous event ([`GENESIS`] for the first).
    pub prev: String,
    pub at_ms: i64,
    pub member: String,
    pub kind: String,
    #[serde(default)]
    pub subjects: Vec<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Ed25519 over [`Event::signed_bytes`], hex.
    pub signature: String,
}

fn put(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(&(text.len() as u64).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

impl Event {
    /// What the signature covers: a domain tag, then every field but the signature in a fixed
    /// order, texts length-prefixed and counts before lists, so no two events encode alike.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(EVENT_DOMAIN);
        put(&mut out, &self.device);
        out.extend_from_slice(&self.seq.to_be_bytes());
        put(&mut out, &self.prev);
        out.extend_from_slice(&self.at_ms.to_be_bytes());
        put(&mut out, &self.member);
        put(&mut out, &self.kind);
        out.extend_from_slice(&(self.subjects.len() as u64).to_be_bytes());
        for s in &self.subjects {
            put(&mut out, s);
        }
        out.extend_from_slice(&(self.fields.len() as u64).to_be_bytes());
        for (k, v) in &self.fields {
            put(&mut out, k);
            put(&mut out, v);
        }
        out
    }

    /// The event's identity in its chain: BLAKE3 of the signed bytes and the signature.
    pub fn hash(&self) -> String {
        hash_of(&self.signed_bytes(), &self.signature)
    }

    /// Checks the event's shape against the bounds. Says what is wrong.
    pub fn check_bounds(&self) -> Result<(), Error> {
        let bad = |what: String| {
            Err(Error::Malformed(format!(
                "event {}#{}: {what}",
                short(&self.device),
                self.seq
            )))
        };
        if unhex::<32>(&self.device).is_none() {
            return bad(format!(
                "device '{}' is not 32 bytes of hex",
                clip(&self.device)
            ));
        }
        if unhex::<32>(&self.prev).is_none() {
            return bad("prev is not a 32-byte hash in hex".into());
        }
        if unhex::<64>(&self.signature).is_none() {
            return bad("signature is not 64 bytes of hex".into());
        }
        for (what, text) in [("member", &self.member), ("kind", &self.kind)] {
            if text.len() > MAX_TEXT_LEN {
                return bad(format!(
                    "{what} is {} bytes (at most {MAX_TEXT_LEN})",
                    text.len()
                ));
            }
        }
        if self.subjects.len() > MAX_SUBJECTS {
            return bad(format!(
                "{} subjects (at most {MAX_SUBJECTS})",
                self.subjects.len()
            ));
        }
        if let Some(s) = self.subjects.iter().find(|s| s.len() > MAX_SUBJECT_LEN) {
            return bad(format!(
                "a subject of {} bytes (at most {MAX_SUBJECT_LEN})",
                s.len()
            ));
        }
        if self.fields.len() > MAX_FIELDS {
            return bad(format!(
                "{} fields (at most {MAX_FIELDS})",
                self.fields.len()
            ));
        }
        for (k, v) in &self.fields {
            if k.len() > MAX_FIELD_KEY_LEN {
                return bad(format!(
                    "a field name of {} bytes (at most {MAX_FIELD_KEY_LEN})",
                    k.len()
                ));
            }
            if v.len() > MAX_FIELD_VALUE_LEN {
                return bad(format!(
                    "field '{}' is {} bytes (at most {MAX_FIELD_VALUE_LEN})",
                    clip(k),
                    v.len()
                ));
            }
        }
        Ok(())
    }

    /// Checks the signature against the key the event's `device` names.
    pub fn verify_signature(&self) -> Result<(), Error> {
        verify_signed(&self.device, &self.signed_bytes(), &self.signature).map_err(|why| {
            Error::BadSignature {
                device: self.device.clone(),
                seq: self.seq,
                why,
            }
        })
    }

    /// A field's value, if the event has it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(String::as_str)
    }
}

pub(crate) fn hash_of(signed: &[u8], signature: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(signed);
    h.update(signature.as_bytes());
    hex(h.finalize().as_bytes())
}

/// Verifies `signature` (hex) over `message` for `device` (hex public key). Says why not.
pub(crate) fn verify_signed(device: &str, message: &[u8], signature: &str) -> Result<(), String> {
    let key = unhex::<32>(device)
        .and_then(|b| VerifyingKey::from_bytes(&b).ok())
        .ok_or_else(|| format!("device '{}' is not an ed25519 public key", clip(device)))?;
    let sig =
        unhex::<64>(signature).ok_or_else(|| "the signature is not 64 bytes of hex".to_owned())?;
    key.verify_strict(message, &Signature::from_bytes(&sig))
        .map_err(|_| "the signature does not verify for its device".to_owned())
}

/// A device's signing key, and the id its events carry.
#[derive(Clone)]
pub struct DeviceKey {
    key: SigningKey,
    id: String,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl DeviceKey {
    /// From the 32 secret bytes of the device's ed25519 key (iroh's `SecretKey::to_bytes`).
    pub fn from_secret(secret: &[u8; 32]) -> DeviceKey {
        let key = SigningKey::from_bytes(secret);
        let id = hex(key.verifying_key().as_bytes());
        DeviceKey { key, id }
    }

    /// The device's endpoint id: hex of its public key.
    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn sign(&self, message: &[u8]) -> String {
        hex(&self.key.sign(message).to_bytes())
    }
}

/// Places `draft` after `(seq, prev)` in `key`'s chain and signs it.
pub fn seal(key: &DeviceKey, seq: u64, prev: &str, draft: Draft) -> Event {
    let mut e = Event {
        device: key.id().to_owned(),
        seq,
        prev: prev.to_owned(),
        at_ms: draft.at_ms,
        member: draft.member,
        kind: draft.kind,
        subjects: draft.subjects,
        fields: draft.fields,
        signature: String::new(),
    };
    e.signature = key.sign(&e.signed_bytes());
    e
}

/// The first 8 characters of an id, for messages.
pub fn short(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}
