//! `cairn backup`, `cairn restore` and `cairn verify`: the workspace in one file while it is
//! being written, brought back whole or not at all, and checked end to end. Progress goes to
//! stderr on a terminal; `--json` prints the report.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use cairn_core::backup::{self, BackupOptions, Progress};

use crate::args::{BackupArgs, Cli, RestoreArgs, VerifyArgs};
use crate::common::{open, user, workspace_dir};
use crate::output::{print_json, thousands};

/// A progress line redrawn in place on a terminal, at most ten times a second.
struct Meter {
    tty: bool,
    drawn: bool,
    stage: String,
    last: Instant,
}

impl Meter {
    fn new() -> Meter {
        Meter {
            tty: std::io::stderr().is_terminal(),
            drawn: false,
            stage: String::new(),
            last: Instant::now() - Duration::from_secs(1),
        }
    }

    fn show(&mut self, p: Progress<'_>) {
        if !self.tty {
            return;
        }
        match p {
            Progress::Stage(s) => {
                self.stage = s.to_owned();
                self.drawn = true;
                err!("\r\x1b[2K{s}…");
            }
            Progress::Bytes { done, total } => {
                if self.last.elapsed() < Duration::from_millis(100) && done < total {
                    return;
                }
                self.last = Instant::now();
                self.drawn = true;
                let pct = if total == 0 {
                    100.0
                } else {
                    done as f64 * 100.0 / total as f64
                };
                err!(
                    "\r\x1b[2K{}: {} of {} bytes ({pct:.0}%)",
                    self.stage,
                    thousands(done),
                    thousands(total)
                );
            }
        }
    }

    fn clear(&self) {
        if self.drawn {
            err!("\r\x1b[2K");
        }
    }
}

/// `cairn backup -o FILE`.
pub fn backup(cli: &Cli, a: &BackupArgs) -> Result<()> {
    let dir = workspace_dir(cli)?;
    let mut meter = Meter::new();
    let result = backup::backup(
        &dir,
        &a.output,
        BackupOptions {
            include_key: a.include_key,
        },
        &mut |p| meter.show(p),
    );
    meter.clear();
    let r = result?;
    if cli.json {
        return print_json(&r);
    }
    outln!(
        "backed up {} into {} in {:.1}s: {} members ({} databases, {} blobs), {} bytes of data, \
         a file of {} bytes{}",
        dir.display(),
        r.file.display(),
        r.seconds,
        thousands(r.members),
        r.databases.len(),
        thousands(r.blobs),
        thousands(r.bytes),
        thousands(r.file_bytes),
        if r.includes_key {
            "; it holds this device's key: keep it as secret as the key itself, and restore it on \
             one machine only"
        } else {
            "; without this device's key: restored, it is a new device (on a team, it joins anew; \
             in a workspace without a team, the audit events this device signed verify as \
             'unknown signer' there)"
        }
    );
    if r.blobs_gone > 0 {
        outln!(
            "{} blobs were removed (gc or purge) while the backup ran and are not in it",
            r.blobs_gone
        );
    }
    Ok(())
}

/// `cairn restore FILE [--workspace DIR] [--force]`.
pub fn restore(cli: &Cli, a: &RestoreArgs) -> Result<()> {
    let dir = workspace_dir(cli)?;
    if a.check {
        return check(cli, &a.file);
    }
    let mut meter = Meter::new();
    let result = backup::restore(&a.file, &dir, a.force, &user(cli), &mut |p| {
        meter.show(p);
        true
    });
    meter.clear();
    let r = result?;
    if cli.json {
        return print_json(&r);
    }
    outln!(
        "restored workspace {} into {} in {:.1}s: {} members, {} bytes checked and written, \
         search index rebuilt ({} runs){}{}",
        r.workspace,
        r.workspace_dir.display(),
        r.seconds,
        thousands(r.members),
        thousands(r.bytes),
        thousands(r.indexed_runs),
        if r.replaced {
            "; the workspace that was there is replaced"
        } else {
            ""
        },
        if r.includes_key {
            "; the backup's device key came with it (this machine is now that device)"
        } else {
            "; this device has a new key (a new identity: rejoin the team to sync)"
        }
    );
    Ok(())
}

fn check(cli: &Cli, file: &Path) -> Result<()> {
    let mut meter = Meter::new();
    meter.show(Progress::Stage("checking"));
    let mut done = 0;
    let total = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let result = backup::check_backup(file, &mut |n| {
        done += n;
        meter.show(Progress::Bytes { done, total });
    });
    meter.clear();
    let m = result?;
    if cli.json {
        return print_json(&m);
    }
    outln!(
        "{}: a whole backup of workspace {} ({} members, {} bytes), every member's BLAKE3 checked",
        file.display(),
        m.workspace,
        thousands(m.members.len() as u64),
        thousands(m.total_bytes())
    );
    Ok(())
}

/// `cairn verify [--repair]`: exits 1 when anything is wrong (after a repair, when anything
/// is still wrong).
pub fn verify(cli: &Cli, a: &VerifyArgs) -> Result<i32> {
    let ws = open(cli)?;
    let r = if a.repair { ws.repair()? } else { ws.verify()? };
    if cli.json {
        print_json(&r)?;
    } else {
        outln!(
            "checked {} blobs, {} metric series ({} points), {} docs ({} runs, {} projection rows), \
             {} audit events in {} chains in {:.1}s",
            thousands(r.blobs),
            thousands(r.series),
            thousands(r.points),
            thousands(r.docs),
            thousands(r.runs),
            thousands(r.projection_rows),
            thousands(r.audit_events),
            r.audit_chains,
            r.seconds
        );
        for p in &r.problems {
            outln!("{}: {}: {}", p.area, p.subject, p.detail);
        }
        for n in &r.notes {
            outln!("note: {n}");
        }
        for what in &r.repaired {
            outln!("rebuilt {what}");
        }
        if r.ok {
            outln!("ok: nothing wrong");
        } else {
            let counts: Vec<String> = r.counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
            outln!("NOT OK: {}", counts.join(", "));
        }
    }
    if !r.ok && !a.repair && r.counts.keys().all(|k| k == "projection") {
        errln!("the projections are derived: `cairn verify --repair` rebuilds them");
    }
    if r.ok { Ok(0) } else { bail_if_json(cli) }
}

/// A failed verify exits 1; with `--json` the report already said why.
fn bail_if_json(cli: &Cli) -> Result<i32> {
    if cli.json {
        Ok(1)
    } else {
        bail!("the workspace did not verify")
    }
}
