//! `cairn plot` and `cairn compare`: a metric's chart to SVG or PNG, an HTML report comparing
//! runs.

use anyhow::{Context, Result, anyhow, bail};
use cairn_core::RunsQuery;

use crate::args::{Cli, CompareArgs, PlotArgs};
use crate::common::open;
use crate::output::print_json;

/// `cairn plot`.
pub fn plot(cli: &Cli, a: &PlotArgs) -> Result<()> {
    let ws = open(cli)?;
    let mut ids: Vec<cairn_model::RunId> = a
        .runs
        .iter()
        .map(|r| ws.resolve_run(r))
        .collect::<Result<_, _>>()?;
    if let Some(e) = &a.exp {
        let page = ws.runs_page(&RunsQuery {
            experiment: Some(e.clone()),
            limit: Some(a.limit),
            ..Default::default()
        })?;
        ids.extend(
            page.runs
                .into_iter()
                .filter(|r| r.metrics.contains_key(&a.metric))
                .map(|r| r.id),
        );
    }
    if ids.is_empty() {
        bail!(
            "nothing to plot: give runs, or --exp NAME with runs that logged '{}'",
            a.metric
        );
    }
    let format =
        cairn_core::ChartFormat::from_file_name(&a.output.to_string_lossy()).ok_or_else(|| {
            anyhow!(
                "cannot tell the format of {}: use .svg or .png",
                a.output.display()
            )
        })?;
    let spec = cairn_core::PlotSpec {
        runs: ids,
        metric: a.metric.clone(),
        x: a.x.clone(),
        smooth: a.smooth,
        log_y: a.log,
        group_by: a.group_by.clone(),
        x_range: a.x_range,
        width: a.width,
        height: a.height,
        dark: a.dark,
    };
    let out = ws.plot(&spec, format)?;
    std::fs::write(&a.output, &out.bytes)
        .with_context(|| format!("writing {}", a.output.display()))?;
    if cli.json {
        // What was drawn where: axis ranges and the series as drawn, for scripts and UIs.
        return print_json(
            &serde_json::json!({ "output": a.output, "runs": spec.runs.len(), "map": out.map }),
        );
    }
    outln!("wrote {} ({} runs)", a.output.display(), spec.runs.len());
    Ok(())
}

/// `cairn compare RUN RUN…`.
pub fn compare(cli: &Cli, a: &CompareArgs) -> Result<()> {
    let ws = open(cli)?;
    let ids: Vec<cairn_model::RunId> = a
        .runs
        .iter()
        .map(|r| ws.resolve_run(r))
        .collect::<Result<_, _>>()?;
    let html = ws.compare_report(&ids)?;
    std::fs::write(&a.output, html).with_context(|| format!("writing {}", a.output.display()))?;
    if !cli.json {
        outln!("wrote {} ({} runs)", a.output.display(), ids.len());
    }
    Ok(())
}
