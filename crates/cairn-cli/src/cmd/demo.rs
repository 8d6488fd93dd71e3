//! `cairn demo`: fill the workspace with a realistic demo catalog, showing progress.

use std::io::IsTerminal;

use anyhow::Result;
use cairn_core::{DemoOptions, Workspace};

use crate::args::{Cli, DemoArgs};
use crate::common::open_or_create;
use crate::output::{print_json, thousands};

/// `cairn demo`.
pub fn demo(cli: &Cli, a: &DemoArgs) -> Result<()> {
    let (dir, ws, _) = open_or_create(cli)?;
    let report = generate(
        &ws,
        &DemoOptions {
            runs: a.runs,
            steps: a.steps,
            seed: a.seed,
        },
    )?;
    if cli.json {
        return print_json(&report);
    }
    outln!(
        "demo data: {} experiments, {} runs, {} metric points in {:.1}s → {}",
        report.experiments,
        thousands(report.runs),
        thousands(report.points),
        report.seconds,
        dir.display()
    );
    Ok(())
}

/// Generates demo data into `ws`, with progress on stderr (redrawn in place on a terminal,
/// every 10% otherwise).
pub fn generate(ws: &Workspace, opts: &DemoOptions) -> Result<cairn_core::DemoReport> {
    let tty = std::io::stderr().is_terminal();
    let mut last_pct = u64::MAX;
    let mut progress = |done: u64, total: u64| {
        let pct = (done * 100).checked_div(total).unwrap_or(100);
        if pct != last_pct && (tty || pct.is_multiple_of(10)) {
            last_pct = pct;
            if tty {
                err!(
                    "\rgenerating demo data: {}/{} runs ({pct}%)",
                    thousands(done),
                    thousands(total)
                );
            } else {
                errln!(
                    "generating demo data: {}/{} runs ({pct}%)",
                    thousands(done),
                    thousands(total)
                );
            }
        }
    };
    let report = ws.generate_demo(opts, &mut progress)?;
    if tty {
        errln!();
    }
    Ok(report)
}
