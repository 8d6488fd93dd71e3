//! `cairn export parquet|csv --query Q -o DIR`: the runs a query matches and every point of
//! their metrics as two tables, with progress on stderr (a line redrawn on a terminal; JSON
//! lines with `--json`) and a summary (with `--json`, the report on stdout).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use cairn_export::{ExportProgress, ExportRequest, Format};

use crate::args::{Cli, ExportArgs, ExportFormat};
use crate::common::open;
use crate::output::{print_json, thousands};

/// `cairn export …`.
pub fn export(cli: &Cli, a: &ExportArgs) -> Result<()> {
    let ws = open(cli)?;
    let req = ExportRequest {
        query: a.query.clone(),
        dir: a.output.clone(),
        format: match a.format {
            ExportFormat::Parquet => Format::Parquet,
            ExportFormat::Csv => Format::Csv,
        },
        force: a.force,
    };
    // On a terminal a line redrawn ten times a second; with --json a JSON line a second on
    // stderr (stdout holds the report alone), and the last one always.
    let tty = std::io::stderr().is_terminal();
    let json = cli.json;
    let started = Instant::now();
    let mut drawn = false;
    let mut last = Instant::now() - Duration::from_secs(2);
    let mut progress = |p: ExportProgress| {
        let every = if json { 1000 } else { 100 };
        let last_one = matches!(p, ExportProgress::Writing { runs, of, .. } if runs == of);
        if (!tty && !json) || (last.elapsed() < Duration::from_millis(every) && !last_one) {
            return;
        }
        last = Instant::now();
        let secs = started.elapsed().as_secs_f64();
        if json {
            let line = serde_json::json!({ "progress": p, "elapsed_s": secs });
            errln!("{line}");
            return;
        }
        drawn = true;
        match p {
            ExportProgress::Finding { runs } => err!("\r\x1b[2Kfinding runs: {runs}"),
            ExportProgress::Writing { runs, of, points } => err!(
                "\r\x1b[2Kexporting: {runs}/{of} runs, {} points ({:.0} points/s)",
                thousands(points),
                points as f64 / secs.max(1e-3)
            ),
        }
    };
    let result = cairn_export::export(&ws, &req, &mut progress);
    if drawn {
        err!("\r\x1b[2K");
    }
    let report = result?;
    if cli.json {
        return print_json(&report);
    }
    let secs = started.elapsed().as_secs_f64();
    for f in &report.files {
        outln!(
            "{}  {} rows, {} bytes",
            f.path.display(),
            thousands(f.rows),
            thousands(f.bytes)
        );
    }
    outln!(
        "exported {} runs, {} series, {} points in {secs:.1}s ({} param columns, {} metrics)",
        thousands(report.runs),
        thousands(report.series),
        thousands(report.points),
        report.params.len(),
        report.metrics.len()
    );
    Ok(())
}
