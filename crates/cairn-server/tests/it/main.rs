//! Integration tests of `cairn-server`: the real [`cairn_server::Server`] on a loopback port over
//! a workspace in a temporary directory, spoken to in hand-written HTTP/1.1 over a plain
//! `TcpStream`, so every byte of the request (bad JSON, invalid UTF-8, `..` in paths, odd Host
//! headers) is exactly what the test says.
//!
//! Each test asserts the status, the error body's shape, and that what was stored before the bad
//! request is still there afterwards, read back over HTTP and from the workspace reopened on disk.

mod api_v1;
mod artifacts;
mod cost;
mod csrf;
mod gates;
mod http;
mod limits;
mod mlflow_input;
mod mlflow_rules;
mod mlflow_words;
mod notes;
mod security;
mod server;
mod team;
