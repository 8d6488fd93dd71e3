//! `cairn exec`: run a training command as a Cairn run (the work is `cairn_exec`'s).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::args::{Cli, ExecArgs};
use crate::common::{kv, open_or_create};

/// An hourly price must be a real amount of money.
fn check_price(price: Option<f64>) -> Result<()> {
    if let Some(p) = price
        && (!p.is_finite() || p < 0.0)
    {
        bail!("invalid --hourly-price '{p}': expected a price in USD of 0 or more");
    }
    Ok(())
}

/// `cairn exec -- CMD…`; returns the exit status to leave with: the command's.
pub fn exec(cli: &Cli, a: &ExecArgs) -> Result<i32> {
    if !a.interval.is_finite() || a.interval < 0.1 {
        bail!(
            "invalid --interval '{}': expected at least 0.1 seconds",
            a.interval
        );
    }
    check_price(a.hourly_price)?;
    let (_, ws, _) = open_or_create(cli)?;
    let mut opts = cairn_exec::ExecOptions {
        experiment: a.exp.clone(),
        name: a.name.clone(),
        params: BTreeMap::new(),
        tags: BTreeMap::new(),
        datasets: Vec::new(),
        git: !a.no_git,
        instance_type: a.instance_type.clone(),
        hourly_price_usd: a.hourly_price,
        interval: std::time::Duration::from_secs_f64(a.interval),
        cwd: std::env::current_dir().context("reading the current directory")?,
        command: a.command.clone(),
    };
    for p in &a.params {
        let (k, v) = kv(p, "param")?;
        opts.params.insert(k, v);
    }
    for t in &a.tags {
        let (k, v) = kv(t, "tag")?;
        opts.tags.insert(k, v);
    }
    for d in &a.datasets {
        let (k, v) = kv(d, "dataset")?;
        opts.datasets.push((k, PathBuf::from(v)));
    }
    let outcome = cairn_exec::exec(ws, &opts, |run, addr| {
        errln!(
            "cairn: run {} ({}) started; MLflow calls go to http://{addr}",
            run.id,
            run.name
        );
    })?;
    for w in &outcome.warnings {
        errln!("cairn: warning: {w}");
    }
    errln!(
        "cairn: run {} {} (exit {}), {} system samples, output kept as logs/output.log",
        outcome.run,
        outcome.status,
        outcome.exit_code,
        outcome.samples
    );
    Ok(outcome.exit_code)
}
