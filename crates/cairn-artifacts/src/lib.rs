//! Cairn's artifact store: content-addressed, immutable blobs named by their BLAKE3 hash, and
//! directory trees stored as a manifest blob that lists their files' blobs.
//!
//! It is a local store and nothing more: no catalog of names, versions or aliases (that is run
//! metadata, in `cairn-catalog`), no transfer between peers (that is `cairn-sync`), no garbage
//! collection policy (what is still referenced is the catalog's to say; `cairn-core` decides).
//! What it guarantees is that a blob is written whole and atomically, never changes once
//! written, and is never handed out unless its bytes hash to its name; and that collecting a
//! blob spares one stored, or stored again, within a grace period (`collect`), so a collector
//! never takes a blob a writer is about to bind.
//!
//! On disk, under the root it is opened at: `blobs/ab/<64 hex>` (read-only files, fanned out by
//! the first two hex digits) and `tmp/` (blobs being written, renamed or linked into place).

mod error;
mod manifest;
mod store;
mod tree;
mod verified;

pub use cairn_model::BlobHash;
pub use error::Error;
pub use manifest::{Manifest, ManifestEntry};
pub use store::{ArtifactStore, Collected, DirPut, Put};
pub use tree::{PathDigest, digest_path};
pub use verified::VerifiedReader;
