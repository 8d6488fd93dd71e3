//! cairn-sync integration tests: peers in one process over in-memory streams and over real iroh
//! endpoints on loopback.

mod blobs;
mod common;
mod convergence;
mod hostile;
mod net;
mod pacing;
