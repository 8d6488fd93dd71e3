//! `cairn artifact add|get|purge`: store a run's files, write them back out verified, and take
//! a leaked secret off this device and every teammate's.

use std::path::PathBuf;

use anyhow::Result;
use cairn_core::Workspace;

use crate::args::{ArtifactCmd, Cli};
use crate::common::open;
use crate::output::{bytes, print_json, short_id};

/// `cairn artifact add|get|purge`.
pub fn artifact(cli: &Cli, cmd: &ArtifactCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        ArtifactCmd::Add { run, path, logical } => {
            let id = ws.resolve_run(run)?;
            let (logical, r, skipped) = ws.add_artifact(id, path, logical.as_deref())?;
            for p in &skipped {
                errln!(
                    "warning: not stored (a symlink or special file): {}",
                    p.display()
                );
            }
            if cli.json {
                return print_json(&serde_json::json!({"path": logical, "artifact": r}));
            }
            outln!("{logical}  blake3:{}  {}", r.hash, bytes(r.size));
        }
        ArtifactCmd::Get {
            run,
            logical,
            output,
        } => {
            let id = ws.resolve_run(run)?;
            let dest = output
                .clone()
                .unwrap_or_else(|| PathBuf::from(logical.rsplit('/').next().unwrap_or(logical)));
            let n = ws.get_artifact(id, logical, &dest)?;
            if !cli.json {
                outln!("wrote {} ({}), verified", dest.display(), bytes(n));
            }
        }
        ArtifactCmd::Purge { run, path, reason } => purge(cli, &ws, run, path, reason)?,
    }
    Ok(())
}

/// `cairn artifact purge RUN PATH [--reason TEXT]`.
fn purge(cli: &Cli, ws: &Workspace, run: &str, path: &str, reason: &str) -> Result<()> {
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
