//! `cairn gc` and `cairn artifact purge`: free the artifact store, and take a leaked secret off
//! this device and every teammate's. Parse, call `cairn_core::Workspace`, print.

use std::time::Duration;

use anyhow::Result;
use clap::Args;

use crate::output::{bytes, short_id, thousands};
use crate::{Cli, open, print_json};

/// `cairn gc`.
#[derive(Args, Debug, Clone)]
pub struct GcArgs {
    /// Say what would be removed; remove nothing
    #[arg(long)]
    dry_run: bool,
    /// Keep blobs stored within this long even when nothing references them (a writer binds
    /// what it stored right after storing it)
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    grace: Duration,
}

pub fn gc(cli: &Cli, args: &GcArgs) -> Result<()> {
    let ws = open(cli)?;
    let r = ws.gc(args.grace, args.dry_run)?;
    if cli.json {
        return print_json(&r);
    }
    let verb = if r.dry_run { "would remove" } else { "removed" };
    outln!(
        "{verb} {} blobs, {} ({} of them only deleted runs kept)",
        thousands(r.removed as u64),
        bytes(r.removed_bytes),
        thousands(r.removed_of_deleted_runs as u64)
    );
    outln!(
        "kept {} blobs, {}; {} unreferenced ones are newer than {} and stay for now",
        thousands(r.kept as u64),
        bytes(r.kept_bytes),
        thousands(r.recent as u64),
        humantime::format_duration(args.grace)
    );
    if r.tmp_files > 0 {
        outln!(
            "{verb} {} leftover temporary files, {}",
            thousands(r.tmp_files as u64),
            bytes(r.tmp_bytes)
        );
    }
    Ok(())
}

/// `cairn artifact purge RUN PATH [--reason TEXT]`.
pub fn purge(cli: &Cli, run: &str, path: &str, reason: &str) -> Result<()> {
    let ws = open(cli)?;
    let id = ws.resolve_run(run)?;
    let r = ws.purge_artifact(id, path, reason)?;
    if cli.json {
        return print_json(&r);
    }
    for b in &r.blobs {
        match b.removed_bytes {
            Some(n) => outln!("purged {}  blake3:{}  {}", b.path, b.hash, bytes(n)),
            None => outln!("purged {}  blake3:{}  (not stored here)", b.path, b.hash),
        }
    }
    for (run, path) in &r.unbound {
        outln!("unbound {path} from run {}", short_id(run));
    }
    if let Some((dir, manifest)) = &r.rebound {
        outln!(
            "{dir} now lists the rest of its files (manifest blake3:{})",
            short_id(manifest)
        );
    }
    outln!(
        "recorded a signed tombstone: teammates' devices delete it at their next sync and refuse it from then on"
    );
    Ok(())
}
