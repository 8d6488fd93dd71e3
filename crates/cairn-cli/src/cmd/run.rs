//! `cairn run start|log|end`: start a run with its lineage, log metrics, params and tags to it,
//! end it.

use anyhow::{Context, Result, anyhow, bail};
use cairn_core::{LineageRequest, MetricPoint as Point, NewRun, RunLog, Workspace};
use cairn_model::{FeatureSetVersion, ParentKind};

use crate::args::{Cli, RunCmd, StartArgs};
use crate::common::{kv, open, parse_status};
use crate::output::{print_json, short_id, thousands};

/// `cairn run start|log|end`.
pub fn run(cli: &Cli, cmd: &RunCmd) -> Result<()> {
    let ws = open(cli)?;
    match cmd {
        RunCmd::Start(a) => {
            let new = new_run(&ws, a)?;
            let run = ws.start_run(new)?;
            if cli.json {
                return print_json(&run);
            }
            outln!("{}", run.id);
            if !run.compliance.is_compliant() {
                errln!("note: run is {}", run.compliance.explain());
            }
        }
        RunCmd::Log(a) => {
            let id = ws.resolve_run(&a.run)?;
            let params: Vec<(String, String)> = a
                .params
                .iter()
                .map(|p| kv(p, "param"))
                .collect::<Result<_>>()?;
            let tags: Vec<(String, String)> =
                a.tags.iter().map(|t| kv(t, "tag")).collect::<Result<_>>()?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64);
            let mut metrics: Vec<(String, Vec<Point>)> = Vec::new();
            for m in &a.metrics {
                let (k, v) = kv(m, "metric")?;
                let value = parse_value(&v, &k)?;
                metrics.push((
                    k,
                    vec![Point {
                        step: a.step,
                        ts_ms: now,
                        value,
                    }],
                ));
            }
            if let Some(path) = &a.csv {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let imported = cairn_core::csv_import::parse(&text, now)
                    .with_context(|| format!("importing {}", path.display()))?;
                metrics.extend(imported);
            }
            if let Some(path) = &a.util_trace {
                let size = std::fs::metadata(path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .len();
                if size > cairn_core::cost::MAX_TRACE_BYTES {
                    bail!(
                        "{} is {size} bytes: a trace is imported {} bytes at most (split it)",
                        path.display(),
                        cairn_core::cost::MAX_TRACE_BYTES
                    );
                }
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                let series = cairn_core::cost::util_trace_series(&text)
                    .with_context(|| format!("importing {}", path.display()))?;
                metrics.extend(series);
            }
            // The workspace checks everything before it writes anything: a refused call stores
            // nothing.
            let log = RunLog {
                params: params.clone(),
                tags: tags.clone(),
                notes: a.notes.clone(),
                series: metrics,
            };
            ws.log_run(id, &log)?;
            let metrics = log.series;
            let points: usize = metrics.iter().map(|(_, p)| p.len()).sum();
            if !cli.json {
                outln!(
                    "logged {} params, {} tags, {} metric points to {}",
                    params.len(),
                    tags.len(),
                    thousands(points as u64),
                    short_id(&id.to_string())
                );
            }
        }
        RunCmd::End { run, status } => {
            let id = ws.resolve_run(run)?;
            let status = parse_status(status)?;
            if !status.is_final() {
                bail!("a run ends as finished, failed or killed, not {status}");
            }
            let run = ws.set_status(id, status, None)?;
            if cli.json {
                return print_json(&run);
            }
            outln!("run {} {}", short_id(&id.to_string()), run.status);
            if !run.compliance.is_compliant() {
                errln!("note: run is {}", run.compliance.explain());
            }
        }
    }
    Ok(())
}

/// The run `cairn run start` describes, its lineage taken here.
fn new_run(ws: &Workspace, a: &StartArgs) -> Result<NewRun> {
    let mut new = NewRun {
        name: a.name.clone(),
        owner: a.owner.clone(),
        notes: a.notes.clone(),
        ..Default::default()
    };
    new.experiment_name = a.exp.clone();
    for p in &a.params {
        let (k, v) = kv(p, "param")?;
        new.params.insert(k, v);
    }
    for t in &a.tags {
        let (k, v) = kv(t, "tag")?;
        new.tags.insert(k, v);
    }
    let mut req = LineageRequest {
        cwd: std::env::current_dir().context("the current directory")?,
        git: a.git.clone(),
        git_required: true,
        code_repo: a.code_repo.clone(),
        code_commit: a.code_commit.clone(),
        code_branch: a.code_branch.clone(),
        code_dirty: a.code_dirty,
        infra: !a.no_infra,
        instance_type: a.instance_type.clone(),
        hourly_price_usd: a.hourly_price,
        container_image: a.container_image.clone(),
        ..Default::default()
    };
    for d in &a.datasets {
        req.datasets.push(kv(d, "dataset")?);
    }
    for d in &a.dataset_digests {
        req.dataset_digests.push(kv(d, "dataset digest")?);
    }
    for d in &a.dataset_rows {
        let (name, rows) = kv(d, "dataset rows")?;
        let rows = rows
            .parse()
            .map_err(|_| anyhow!("dataset '{name}': rows '{rows}' is not a whole number"))?;
        req.dataset_rows.push((name, rows));
    }
    if let Some(fs) = &a.feature_set {
        let (name, version) = fs
            .split_once('@')
            .ok_or_else(|| anyhow!("malformed feature set '{fs}': expected NAME@VERSION"))?;
        req.feature_set = Some(FeatureSetVersion {
            name: name.into(),
            version: version.into(),
        });
    }
    new.lineage = ws.lineage_here(&req)?;
    if let Some(p) = &a.parent {
        let kind: ParentKind = a.parent_kind.parse()?;
        new.parent = Some((ws.resolve_run(p)?, kind));
    }
    Ok(new)
}

/// A metric value as typed: a number, or NaN and the infinities in the spellings every Cairn
/// input accepts (`cairn_model::num`).
pub(crate) fn parse_value(text: &str, key: &str) -> Result<f64> {
    cairn_model::num::parse_text(text)
        .ok_or_else(|| anyhow!("metric '{key}': '{text}' is not a number"))
}
