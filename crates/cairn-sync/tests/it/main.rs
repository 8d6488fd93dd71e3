//! cairn-sync integration tests: peers in one process over in-memory streams and over real iroh
//! endpoints on loopback.

mod audit;
mod blobs;
mod common;
mod convergence;
mod hostile;
mod net;
mod pacing;
