//! A stand-in for a training job, for the end-to-end tests: logs into a workspace through
//! `cairn-core` and prints, after each durable write, the index it acknowledged.
//!
//! `cairn-e2e-writer WORKSPACE RUN metrics KEY N` logs N points (step i, value i/2) one per write;
//! `cairn-e2e-writer WORKSPACE RUN tags PREFIX N` sets N tags `PREFIX-i = i` one per write.
#![allow(clippy::print_stdout)]

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use cairn_core::{MetricPoint, Workspace};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [ws, run, mode, name, n] = args.as_slice() else {
        bail!("usage: cairn-e2e-writer WORKSPACE RUN metrics|tags NAME N");
    };
    let n: u64 = n.parse().context("N")?;
    let ws = Workspace::open(Path::new(ws), "writer")?;
    let run = ws.resolve_run(run)?;
    let mut out = std::io::stdout().lock();
    for i in 0..n {
        match mode.as_str() {
            "metrics" => ws.log_metrics(
                run,
                &[(
                    name.as_str(),
                    &[MetricPoint {
                        step: i as i64,
                        ts_ms: i as i64,
                        value: i as f64 / 2.0,
                    }],
                )],
            )?,
            "tags" => ws.set_tags(run, &[(format!("{name}-{i}"), i.to_string())])?,
            other => bail!("unknown mode {other}"),
        }
        // Acknowledged only once the write returned: that is what must survive a kill.
        writeln!(out, "{i}")?;
        out.flush()?;
    }
    Ok(())
}
