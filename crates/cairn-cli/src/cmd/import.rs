//! `cairn import tensorboard LOGDIR` and `cairn import mlflow SOURCE`: history from other
//! trackers into the workspace, with progress on stderr (a line redrawn on a terminal; JSON
//! lines with `--json`) and a summary (or, with `--json`, the report on stdout).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::Result;
use cairn_core::{MlflowCounts, MlflowProgress, MlflowReport, TensorboardProgress, Workspace};

use crate::args::{Cli, ImportCmd};
use crate::common::open_or_create;
use crate::output::{print_json, thousands};

/// `cairn import …`.
pub fn import(cli: &Cli, cmd: &ImportCmd) -> Result<()> {
    let (_, ws, _) = open_or_create(cli)?;
    match cmd {
        ImportCmd::Tensorboard { logdir, exp } => tensorboard(cli, &ws, logdir, exp.as_deref()),
        ImportCmd::Mlflow {
            source,
            experiments,
        } => mlflow(cli, &ws, source, experiments),
    }
}

fn tensorboard(
    cli: &Cli,
    ws: &Workspace,
    logdir: &std::path::Path,
    exp: Option<&str>,
) -> Result<()> {
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
    let result = ws.import_tensorboard(logdir, exp, &mut progress);
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

fn mlflow(cli: &Cli, ws: &Workspace, source: &str, experiments: &[String]) -> Result<()> {
    // On a terminal a line redrawn ten times a second; with --json a JSON line a second on
    // stderr (stdout holds the report alone).
    let tty = std::io::stderr().is_terminal();
    let json = cli.json;
    let started = Instant::now();
    let mut drawn = false;
    let mut last = Instant::now() - Duration::from_secs(2);
    let mut progress = |p: MlflowProgress| {
        let every = if json { 1000 } else { 100 };
        let last_one = matches!(p, MlflowProgress::Writing { runs, of, .. } if runs == of);
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
            MlflowProgress::Reading { runs } => err!("\r\x1b[2Kreading the store: {runs} runs"),
            MlflowProgress::Writing {
                runs,
                of,
                points,
                bytes,
            } => {
                let eta = if runs > 0 && runs < of {
                    format!(
                        ", about {:.0}s left",
                        secs / runs as f64 * (of - runs) as f64
                    )
                } else {
                    String::new()
                };
                err!(
                    "\r\x1b[2Kimporting: {runs}/{of} runs, {} points, {} artifact bytes{eta}",
                    thousands(points),
                    thousands(bytes)
                )
            }
            MlflowProgress::Models { models, of } => {
                err!("\r\x1b[2Kimporting the registry: {models}/{of} models")
            }
        }
    };
    let result = ws.import_mlflow(source, experiments, &mut progress);
    if drawn {
        err!("\r\x1b[2K");
    }
    let report = result?;
    if cli.json {
        return print_json(&report);
    }
    print_mlflow(&report, started.elapsed().as_secs_f64())
}

/// The reconciliation: each kind of record in the source, added, already here.
fn print_mlflow(r: &MlflowReport, secs: f64) -> Result<()> {
    outln!(
        "imported {} in {secs:.1}s: {} runs new, {} updated, {} unchanged",
        r.source,
        r.runs_created,
        r.runs_updated,
        r.runs_unchanged
    );
    outln!(
        "{:<12} {:>14} {:>14} {:>14}",
        "",
        "in MLflow",
        "added",
        "already here"
    );
    type Count = fn(&MlflowCounts) -> u64;
    let rows: [(&str, Count); 10] = [
        ("experiments", |c| c.experiments),
        ("runs", |c| c.runs),
        ("params", |c| c.params),
        ("tags", |c| c.tags),
        ("points", |c| c.points),
        ("datasets", |c| c.datasets),
        ("artifacts", |c| c.artifacts),
        ("models", |c| c.models),
        ("versions", |c| c.versions),
        ("aliases", |c| c.aliases),
    ];
    for (name, f) in rows {
        outln!(
            "{name:<12} {:>14} {:>14} {:>14}",
            thousands(f(&r.in_source)),
            thousands(f(&r.added)),
            thousands(f(&r.present))
        );
    }
    outln!("artifact bytes read: {}", thousands(r.artifact_bytes));
    for (what, n) in &r.skipped {
        outln!("skipped: {} {what}", thousands(*n));
    }
    Ok(())
}
