//! What a run ran on and with: probes of this machine (host, OS, CPU, memory, container, GPUs
//! via `nvidia-smi`) and of the git working copy, strict parsers of what `nvidia-smi` prints (the
//! one-shot inventory and a sampled utilisation trace), and [`SystemSampler`], which reads CPU,
//! memory and GPU load while a run runs.
//!
//! What this crate is not: it stores nothing and knows no workspace. It fills the lineage types
//! of `cairn-model` ([`InfraProfile`](cairn_model::InfraProfile),
//! [`CodeVersion`](cairn_model::CodeVersion)) and hands back `(metric key, value)` readings;
//! the caller (`cairn-exec`, the CLI) records them. Like `cairn-core` it reads no environment
//! variables: it reads `/proc`, `/etc` and container marker files and runs `nvidia-smi` and `git`.
//! Probing is best-effort (what cannot be found is left out); parsing is strict (a malformed line
//! is a [`ProbeError`] naming it).

mod probe;
mod sampler;

pub use probe::{
    GpuSnapshot, GpuUtilSample, ProbeError, code_version, gpu_groups, gpu_snapshots, infra_profile,
    parse_query_gpu_csv, parse_util_trace,
};
pub use sampler::{SystemSampler, gpu_metrics};
