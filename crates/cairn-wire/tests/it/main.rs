//! cairn-wire's tests: the committed bindings are what the Rust types generate, and real JSON of
//! every DTO type-checks against them with the UI's own TypeScript compiler.

mod drift;
mod json;
