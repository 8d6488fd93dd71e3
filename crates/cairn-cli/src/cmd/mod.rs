//! One module per command group: each parses nothing (clap did, in `args`), calls
//! `cairn_core::Workspace`, and prints through `output`.

pub mod artifact;
pub mod audit;
pub mod backup;
pub mod catalog;
pub mod cost;
pub mod demo;
pub mod eval;
pub mod exec;
pub mod exp;
pub mod export;
pub mod gate;
pub mod gc;
pub mod import;
pub mod model;
pub mod notebook;
pub mod plot;
pub mod review;
pub mod run;
pub mod runs;
pub mod schema;
pub mod search;
pub mod serve;
pub mod start;
pub mod sync;
pub mod team;
