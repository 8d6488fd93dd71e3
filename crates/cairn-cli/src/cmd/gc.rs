//! `cairn gc`: free the artifact store of the blobs no run keeps.

use anyhow::Result;

use crate::args::{Cli, GcArgs};
use crate::common::open;
use crate::output::{bytes, print_json, thousands};

/// `cairn gc`.
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
