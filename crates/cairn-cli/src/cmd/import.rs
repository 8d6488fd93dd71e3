//! `cairn import tensorboard LOGDIR`: a TensorBoard logdir's runs into the workspace, with
//! progress on stderr and a summary (or, with `--json`, the report).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use cairn_core::TensorboardProgress;

use crate::args::{Cli, ImportCmd};
use crate::common::open_or_create;
use crate::output::{print_json, thousands};

/// `cairn import …`.
pub fn import(cli: &Cli, cmd: &ImportCmd) -> Result<()> {
    let ImportCmd::Tensorboard { logdir, exp } = cmd;
    let (_, ws, _) = open_or_create(cli)?;
    // A progress line redrawn in place, on a terminal only, at most ten times a second.
    let tty = std::io::stderr().is_terminal();
    let mut drawn = false;
    let mut last = Instant::now() - Duration::from_secs(1);
    let mut progress = |p: TensorboardProgress| {
        if !tty || last.elapsed() < Duration::from_millis(100) {
            return;
        }
        last = Instant::now();
        drawn = true;
        match p {
            TensorboardProgress::Reading { files, of, bytes } => err!(
                "\r\x1b[2Kreading event files: {files}/{of} ({} bytes)",
                thousands(bytes)
            ),
            TensorboardProgress::Writing { runs, of, points } => err!(
                "\r\x1b[2Kimporting: {runs}/{of} runs, {} points",
                thousands(points)
            ),
        }
    };
    let started = Instant::now();
    let result = ws.import_tensorboard(logdir, exp.as_deref(), &mut progress);
    if drawn {
        err!("\r\x1b[2K");
    }
    let report = result?;
    if cli.json {
        return print_json(&report);
    }
    for r in &report.runs {
        let what = if r.created {
            "new"
        } else if r.points > 0 {
            "grew"
        } else {
            "unchanged"
        };
        outln!(
            "{}  {:<9} {:<8} {:>3} series {:>10} points  {}",
            r.run,
            what,
            r.status,
            r.series,
            thousands(r.points),
            r.dir
        );
    }
    outln!(
        "imported {} into experiment '{}' in {:.1}s: {} runs new, {} updated, {} unchanged; \
         {} points ({} already there), {} params, {} notes from {} event files ({} bytes)",
        report.logdir,
        report.experiment,
        started.elapsed().as_secs_f64(),
        report.runs_created,
        report.runs_updated,
        report.runs_unchanged,
        thousands(report.points),
        thousands(report.points_present),
        report.params,
        report.notes,
        report.event_files,
        thousands(report.bytes)
    );
    for (what, n) in &report.skipped {
        outln!("skipped: {} {what}", thousands(*n));
    }
    Ok(())
}
