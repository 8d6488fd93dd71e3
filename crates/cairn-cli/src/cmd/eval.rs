//! `cairn eval log|list|show`: record a run's evaluation on a benchmark (overall metrics,
//! metrics per slice from the command line or a by-group file, the dataset it ran on, reports)
//! and show evaluations with their fairness figures.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use cairn_core::{EvaluationView, LineageRequest, Workspace};
use cairn_model::{Evaluation, Num, Slice};

use crate::args::{Cli, EvalCmd, EvalLogArgs};
use crate::cmd::run::parse_value;
use crate::common::{kv, open};
use crate::output::{Table, metric, print_json, short_id, time};

/// `cairn eval log|list|show`. `matches` gives the order of `log`'s `-m` and `--slice`.
pub fn eval(cli: &Cli, cmd: &EvalCmd, matches: &clap::ArgMatches) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        EvalCmd::Log(a) => {
            let log = matches
                .subcommand_matches("eval")
                .and_then(|m| m.subcommand_matches("log"));
            let indices = |id: &str| -> Vec<usize> {
                log.and_then(|m| m.indices_of(id))
                    .map(|i| i.collect())
                    .unwrap_or_default()
            };
            let view = log_eval(&ws, a, &indices("metrics"), &indices("slices"))?;
            if cli.json {
                return print_json(&view);
            }
            let slices = view.evaluation.slices.len();
            outln!(
                "evaluation {} of run {}: {} metrics, {} slice{}",
                view.benchmark,
                short_id(&ws.resolve_run(&a.run)?.to_string()),
                view.evaluation.metrics.len(),
                slices,
                if slices == 1 { "" } else { "s" }
            );
            print_fairness(&view)?;
        }
        EvalCmd::List { run } => {
            let views = ws.evaluations_by_prefix(run)?;
            if cli.json {
                return print_json(&views);
            }
            let mut t = Table::new(&[
                "benchmark",
                "dataset",
                "metrics",
                "slices",
                "widest gap",
                "logged",
            ]);
            for v in &views {
                let e = &v.evaluation;
                let widest = v
                    .fairness
                    .iter()
                    .filter(|f| !f.difference.0.is_nan())
                    .max_by(|a, b| a.difference.0.total_cmp(&b.difference.0))
                    .map(|f| {
                        format!(
                            "{} {} over {}",
                            f.metric,
                            metric(f.difference.0),
                            f.attribute
                        )
                    })
                    .unwrap_or_else(|| "-".into());
                t.row(vec![
                    v.benchmark.clone(),
                    e.dataset.clone().unwrap_or_else(|| "-".into()),
                    metrics_text(&e.metrics),
                    e.slices.len().to_string(),
                    widest,
                    e.logged_ms.map(time).unwrap_or_else(|| "-".into()),
                ]);
            }
            if t.is_empty() {
                outln!("no evaluations");
            } else {
                out!("{}", t.render());
            }
        }
        EvalCmd::Show { run, benchmark } => {
            let mut views = ws.evaluations_by_prefix(run)?;
            if let Some(b) = benchmark {
                views.retain(|v| &v.benchmark == b);
                if views.is_empty() {
                    bail!("run {run} has no evaluation '{b}'");
                }
            }
            if cli.json {
                return print_json(&views);
            }
            if views.is_empty() {
                outln!("no evaluations");
            }
            for (i, v) in views.iter().enumerate() {
                if i > 0 {
                    outln!();
                }
                show(v)?;
            }
        }
    }
    Ok(())
}

fn metrics_text(m: &BTreeMap<String, Num>) -> String {
    if m.is_empty() {
        return "-".into();
    }
    m.iter()
        .map(|(k, v)| format!("{k}={}", metric(v.0)))
        .collect::<Vec<_>>()
        .join("  ")
}

/// What `eval log` records, from its arguments: each `-m` belongs to the last `--slice` before
/// it on the command line (`metric_at`, `slice_at` are their positions), or to the overall
/// metrics when none came before.
fn log_eval(
    ws: &Workspace,
    a: &EvalLogArgs,
    metric_at: &[usize],
    slice_at: &[usize],
) -> Result<EvaluationView> {
    let id = ws.resolve_run(&a.run)?;
    let mut eval = Evaluation::default();
    let mut slices: BTreeMap<String, BTreeMap<String, Num>> = BTreeMap::new();
    if let Some(path) = &a.file {
        let len = std::fs::metadata(path)
            .with_context(|| format!("reading {}", path.display()))?
            .len();
        if len > cairn_core::by_group::MAX_BY_GROUP_BYTES as u64 {
            bail!(
                "{} is {len} bytes; a by-group table is read up to {}",
                path.display(),
                cairn_core::by_group::MAX_BY_GROUP_BYTES
            );
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        slices = cairn_core::by_group::parse(&text, &a.attributes)
            .with_context(|| format!("reading metrics by group from {}", path.display()))?;
    } else if !a.attributes.is_empty() {
        bail!("--attribute names the groups of a --file; give one");
    }
    // The slices named on the command line, in their canonical spelling, by position.
    let mut named: Vec<(usize, String)> = Vec::with_capacity(a.slices.len());
    for (i, text) in a.slices.iter().enumerate() {
        let canon = Slice::parse(text)?.to_string();
        named.push((slice_at.get(i).copied().unwrap_or(usize::MAX), canon));
    }
    let mut used = vec![false; named.len()];
    for (i, m) in a.metrics.iter().enumerate() {
        let (k, v) = kv(m, "metric")?;
        let value = Num(parse_value(&v, &k)?);
        let at = metric_at.get(i).copied().unwrap_or(0);
        match named.iter().rposition(|(pos, _)| *pos < at) {
            None => {
                eval.metrics.insert(k, value);
            }
            Some(s) => {
                used[s] = true;
                slices
                    .entry(named[s].1.clone())
                    .or_default()
                    .insert(k, value);
            }
        }
    }
    if let Some(s) = used.iter().position(|u| !u) {
        bail!(
            "slice '{}' has no metrics: put -m NAME=VALUE after it",
            a.slices[s]
        );
    }
    eval.slices = slices;
    if let Some(d) = &a.dataset {
        eval.dataset = Some(dataset_digest(ws, d)?);
    }
    for r in &a.reports {
        let local = Path::new(r);
        if local.is_file() {
            let name = local
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .ok_or_else(|| anyhow!("report {r} has no file name"))?;
            let logical = format!("eval/{}/{name}", a.benchmark);
            let (path, _, _) = ws.add_artifact(id, local, Some(&logical))?;
            eval.reports.push(path);
        } else {
            eval.reports.push(r.clone());
        }
    }
    Ok(ws.log_evaluation(id, &a.benchmark, eval)?)
}

/// The digest `--dataset` stands for: a file or directory is digested (cached, as a run's
/// datasets are); other text is taken as a digest when it reads as one.
fn dataset_digest(ws: &Workspace, arg: &str) -> Result<String> {
    if Path::new(arg).exists() {
        let lineage = ws.lineage_here(&LineageRequest {
            cwd: std::env::current_dir().context("the current directory")?,
            datasets: vec![("eval".into(), arg.to_owned())],
            ..Default::default()
        })?;
        return lineage
            .datasets
            .get("eval")
            .and_then(|d| d.digest.clone())
            .ok_or_else(|| anyhow!("{arg} could not be digested"));
    }
    let digest_like = arg.len() >= 6
        && arg.len() <= 200
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '-' | '_'));
    if !digest_like {
        bail!(
            "--dataset '{arg}' is neither a file or directory here nor a digest (letters, \
             digits, ':', '-', '_', e.g. blake3:9f2c…)"
        );
    }
    Ok(arg.to_owned())
}

/// The fairness figures of an evaluation, one line per attribute and metric.
fn print_fairness(v: &EvaluationView) -> Result<()> {
    if v.fairness.is_empty() {
        return Ok(());
    }
    let mut t = Table::new(&[
        "attribute",
        "metric",
        "difference",
        "ratio",
        "groups",
        "lowest",
        "highest",
    ])
    .right_align(&[2, 3, 4]);
    for f in &v.fairness {
        t.row(vec![
            f.attribute.clone(),
            f.metric.clone(),
            metric(f.difference.0),
            metric(f.ratio.0),
            f.groups.to_string(),
            f.lowest.clone(),
            f.highest.clone(),
        ]);
    }
    out!("{}", t.render());
    Ok(())
}

fn show(v: &EvaluationView) -> Result<()> {
    let e = &v.evaluation;
    outln!("evaluation {}", v.benchmark);
    outln!(
        "  dataset   {}",
        e.dataset.clone().unwrap_or_else(|| "-".into())
    );
    outln!("  overall   {}", metrics_text(&e.metrics));
    if let (Some(ms), Some(by)) = (e.logged_ms, &e.logged_by) {
        outln!("  logged    {} by {by}", time(ms));
    }
    for r in &e.reports {
        outln!("  report    {r}");
    }
    if !e.slices.is_empty() {
        let keys: Vec<&String> = e
            .slices
            .values()
            .flat_map(|m| m.keys())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut headers = vec!["slice"];
        headers.extend(keys.iter().map(|k| k.as_str()));
        let mut t = Table::new(&headers).right_align(&(1..headers.len()).collect::<Vec<_>>());
        for (slice, m) in &e.slices {
            let mut row = vec![slice.clone()];
            row.extend(
                keys.iter()
                    .map(|k| m.get(*k).map(|v| metric(v.0)).unwrap_or_else(|| "-".into())),
            );
            t.row(row);
        }
        outln!();
        out!("{}", t.render());
    }
    if !v.fairness.is_empty() {
        outln!();
        print_fairness(v)?;
    }
    Ok(())
}
