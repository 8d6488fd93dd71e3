//! Charts of runs: gathers the series from the metric store (downsampled from its summaries, or
//! full points where the x axis needs timestamps or another metric) and hands them to
//! `cairn-charts`, which draws without touching storage.

use cairn_charts::{
    BarChart, Chart, ChartMap, Format, Frame, LineChart, ParallelChart, Point as ChartPoint,
    Rendered, Samples, Scale, Series, SystemPanel, Theme, XAxis, group_key, pair_by_step, render,
    render_svg, report, system_groups,
};
use std::collections::HashMap;

use cairn_model::{Run, RunId};
use serde::{Deserialize, Serialize};

use crate::{Error, Stores};

/// What `cairn plot` draws.
#[derive(Debug, Clone)]
pub struct PlotSpec {
    pub runs: Vec<RunId>,
    pub metric: String,
    /// `step`, `time`, `relative`, or another metric's key.
    pub x: String,
    /// EMA smoothing in 0..1 (0: none).
    pub smooth: f64,
    pub log_y: bool,
    /// A run field to group by, e.g. `params.optimizer`.
    pub group_by: Option<String>,
    /// Zoom: the x range drawn, filled at full resolution for that range.
    pub x_range: Option<(f64, f64)>,
    pub width: u32,
    pub height: u32,
    pub dark: bool,
}

fn chart_error(e: cairn_charts::ChartError) -> Error {
    Error::Invalid(format!("chart: {e}"))
}

impl Stores {
    /// The samples of one run's metric with x in the unit `x` asks for.
    fn samples(
        &self,
        run: &Run,
        metric: &str,
        x: &XAxis,
        x_range: Option<(f64, f64)>,
        columns: usize,
    ) -> Result<Samples, Error> {
        // Zooming by step reads the buckets of that range only, at full resolution for it.
        let step_range = match x {
            XAxis::Step => x_range.map(|(lo, hi)| (lo.floor() as i64, hi.ceil() as i64)),
            _ => None,
        };
        let by_step = |key: &str| -> Result<Samples, Error> {
            let b = self.metric_downsampled(run.id, key, step_range, columns)?;
            Ok(Samples::Buckets(
                b.into_iter()
                    .map(|b| cairn_charts::Bucket {
                        x_lo: b.step_lo as f64,
                        x_hi: b.step_hi as f64,
                        count: b.count,
                        min: b.min,
                        max: b.max,
                        first: b.first,
                        last: b.last,
                        nonfinite: b.nonfinite,
                    })
                    .collect(),
            ))
        };
        Ok(match x {
            XAxis::Step => by_step(metric)?,
            XAxis::WallTime | XAxis::RelativeTime => {
                let origin = if matches!(x, XAxis::RelativeTime) {
                    run.start_ms as f64
                } else {
                    0.0
                };
                let scale = if matches!(x, XAxis::RelativeTime) {
                    1000.0
                } else {
                    1.0
                };
                Samples::Points(
                    self.metric_history(run.id, metric)?
                        .into_iter()
                        .map(|p| ChartPoint {
                            x: (p.ts_ms as f64 - origin) / scale,
                            y: p.value,
                        })
                        .collect(),
                )
            }
            XAxis::Metric(other) => pair_by_step(&by_step(metric)?, &by_step(other)?),
        })
    }

    /// A line chart of one metric over the given runs, grouped when asked.
    pub fn line_chart(&self, spec: &PlotSpec) -> Result<LineChart, Error> {
        if spec.runs.is_empty() {
            return Err(Error::Invalid("give at least one run to plot".into()));
        }
        if !(0.0..1.0).contains(&spec.smooth) {
            return Err(Error::Invalid(format!(
                "smoothing {} is out of range: expected 0 <= s < 1",
                spec.smooth
            )));
        }
        let mut chart = LineChart::new(spec.metric.clone());
        chart.x = XAxis::parse(&spec.x);
        chart.smoothing = spec.smooth;
        chart.y_scale = if spec.log_y {
            Scale::Log
        } else {
            Scale::Linear
        };
        chart.group_by = spec.group_by.clone();
        if let Some((lo, hi)) = spec.x_range {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::Invalid(format!(
                    "x range {lo}..{hi} is empty: expected two finite numbers, the first smaller"
                )));
            }
            chart.x_range = Some((lo, hi));
        }
        let views = spec
            .runs
            .iter()
            .map(|id| self.run(*id))
            .collect::<Result<Vec<_>, Error>>()?;
        let labels = run_labels(
            &views
                .iter()
                .map(|v| (&v.run, v.experiment_name.as_str()))
                .collect::<Vec<_>>(),
        );
        for (view, label) in views.into_iter().zip(labels) {
            let run = view.run;
            let samples = self.samples(
                &run,
                &spec.metric,
                &chart.x,
                spec.x_range,
                spec.width as usize,
            )?;
            let mut series = Series::new(run.id.to_string(), label, samples);
            if let Some(g) = &spec.group_by {
                series = series.in_group(group_key(&run, g));
            }
            chart.series.push(series);
        }
        Ok(chart)
    }

    /// Renders a line chart as SVG or PNG.
    pub fn plot(&self, spec: &PlotSpec, format: Format) -> Result<Rendered, Error> {
        let chart = self.line_chart(spec)?;
        let mut frame = Frame::new(spec.width, spec.height);
        frame.theme = if spec.dark { Theme::Dark } else { Theme::Light };
        render(&Chart::Line(chart), &frame, format).map_err(chart_error)
    }

    /// A self-contained HTML report comparing runs: params and lineage diffs, summary metrics,
    /// a chart per shared metric, bars, parallel coordinates over the params that differ, and
    /// the system metrics.
    pub fn compare_report(&self, ids: &[RunId]) -> Result<String, Error> {
        if ids.len() < 2 {
            return Err(Error::Invalid("give at least two runs to compare".into()));
        }
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            let view = self.run(*id)?;
            let mut run = view.run;
            run.metrics.extend(view.live_metrics);
            runs.push(run);
        }
        let frame = Frame::new(900, 420);
        let mut metrics: Vec<String> = runs
            .iter()
            .flat_map(|r| r.metrics.keys().cloned())
            .filter(|k| !k.starts_with("system/"))
            .collect();
        metrics.sort();
        metrics.dedup();
        let mut charts = Vec::new();
        for m in &metrics {
            let with: Vec<RunId> = runs
                .iter()
                .filter(|r| r.metrics.contains_key(m))
                .map(|r| r.id)
                .collect();
            let spec = PlotSpec {
                runs: with,
                metric: m.clone(),
                x: "step".into(),
                smooth: 0.0,
                log_y: false,
                group_by: None,
                x_range: None,
                width: frame.width,
                height: frame.height,
                dark: false,
            };
            let chart = self.line_chart(&spec)?;
            charts.push((
                m.clone(),
                render_svg(&Chart::Line(chart), &frame)
                    .map_err(chart_error)?
                    .svg,
            ));
        }
        let bars = BarChart::from_runs(&runs, &metrics);
        let bar_frame = Frame::new(900, bars.preferred_height().clamp(200, 8000));
        charts.push((
            "summary metrics".into(),
            render_svg(&Chart::Bars(bars), &bar_frame)
                .map_err(chart_error)?
                .svg,
        ));
        let mut fields: Vec<String> = report::differing_params(&runs);
        if let Some(first) = metrics.first() {
            fields.push(format!("metrics.{first}"));
        }
        if fields.len() >= 2 {
            let parallel = ParallelChart::from_runs(&runs, &fields);
            charts.push((
                "parallel coordinates".into(),
                render_svg(&Chart::Parallel(parallel), &frame)
                    .map_err(chart_error)?
                    .svg,
            ));
        }
        let system_keys: Vec<String> = runs
            .iter()
            .flat_map(|r| r.metrics.keys().cloned())
            .filter(|k| k.starts_with("system/"))
            .collect();
        let groups = system_groups(system_keys.iter().map(String::as_str));
        if !groups.is_empty() {
            let mut panel = SystemPanel {
                title: Some("system metrics".into()),
                charts: Vec::new(),
            };
            for g in groups {
                let mut c = LineChart::new(g.title.clone());
                for r in &runs {
                    for k in &g.keys {
                        if r.metrics.contains_key(k) {
                            let s = self.samples(r, k, &XAxis::Step, None, frame.width as usize)?;
                            c.series.push(Series::new(
                                format!("{}/{k}", r.id),
                                format!("{} {k}", r.name),
                                s,
                            ));
                        }
                    }
                }
                panel.charts.push(c);
            }
            charts.push((
                "system metrics".into(),
                render_svg(&Chart::System(panel), &Frame::new(900, 600))
                    .map_err(chart_error)?
                    .svg,
            ));
        }
        let title = format!("Comparison of {} runs", runs.len());
        Ok(report::compare_html(&report::CompareReport {
            title,
            runs: &runs,
            charts,
            theme: Theme::Light,
            utc_offset_minutes: 0,
        }))
    }
}

/// The kinds of chart the UI asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum ChartKind {
    /// One metric over the runs (step, time or another metric on x).
    #[default]
    Line,
    /// The runs across params and a metric.
    Parallel,
}

/// A chart as the UI asks for it (`GET /api/v1/chart?…`, the desktop's `chart` command).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
// In TypeScript every field but `runs` may be left out, as `#[serde(default)]` allows (on a field
// that is no `Option`, `optional = nullable` only adds the `?`).
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
pub struct ChartRequest {
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub kind: ChartKind,
    /// Run ids or unique prefixes: a list, or one comma-separated string (a query string).
    #[serde(deserialize_with = "list")]
    pub runs: Vec<String>,
    /// Line: the metric drawn.
    pub metric: Option<String>,
    /// Line: `step` (default), `time`, `relative` or another metric's key.
    pub x: Option<String>,
    /// Line: EMA smoothing in 0..1.
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub smooth: f64,
    /// Line: logarithmic y.
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub log: bool,
    /// Line: group the runs by a field (`params.optimizer`).
    pub group_by: Option<String>,
    /// Line: zoom to `lo..hi` on x, drawn at full resolution for that range.
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// Parallel: the axes (`params.lr`, `metrics.loss`); default: the params that differ and
    /// the first metric.
    #[serde(deserialize_with = "list")]
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub fields: Vec<String>,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub width: u32,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub height: u32,
    #[cfg_attr(feature = "ts", ts(optional = nullable))]
    pub dark: bool,
}

impl Default for ChartRequest {
    fn default() -> ChartRequest {
        ChartRequest {
            kind: ChartKind::Line,
            runs: Vec::new(),
            metric: None,
            x: None,
            smooth: 0.0,
            log: false,
            group_by: None,
            lo: None,
            hi: None,
            fields: Vec::new(),
            width: 640,
            height: 280,
            dark: false,
        }
    }
}

/// Runs a chart can draw at once: a legend past this is unreadable and the request is a mistake.
pub const MAX_CHART_RUNS: usize = 500;

fn list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Joined(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::Joined(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        OneOrMany::Many(v) => v,
    })
}

/// A rendered chart and the map that makes it interactive (hover, zoom, toggling runs).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ChartView {
    pub svg: String,
    pub map: ChartMap,
}

impl Stores {
    /// Renders the chart `req` asks for as SVG with its map.
    pub fn chart(&self, req: &ChartRequest) -> Result<ChartView, Error> {
        if req.runs.is_empty() {
            return Err(Error::Invalid("a chart needs at least one run".into()));
        }
        if req.runs.len() > MAX_CHART_RUNS {
            return Err(Error::Invalid(format!(
                "{} runs asked for in one chart: at most {MAX_CHART_RUNS}",
                req.runs.len()
            )));
        }
        let ids = req
            .runs
            .iter()
            .map(|r| self.resolve_run(r))
            .collect::<Result<Vec<_>, _>>()?;
        let mut frame = Frame::new(req.width, req.height);
        frame.theme = if req.dark { Theme::Dark } else { Theme::Light };
        let chart = match req.kind {
            ChartKind::Line => {
                let metric = req
                    .metric
                    .clone()
                    .ok_or_else(|| Error::Invalid("a line chart needs a metric".into()))?;
                let x_range = match (req.lo, req.hi) {
                    (Some(lo), Some(hi)) => Some((lo, hi)),
                    (None, None) => None,
                    _ => {
                        return Err(Error::Invalid(
                            "a zoom needs both lo and hi (or neither)".into(),
                        ));
                    }
                };
                Chart::Line(self.line_chart(&PlotSpec {
                    runs: ids,
                    metric,
                    x: req.x.clone().unwrap_or_else(|| "step".into()),
                    smooth: req.smooth,
                    log_y: req.log,
                    group_by: req.group_by.clone().filter(|g| !g.is_empty()),
                    x_range,
                    width: req.width,
                    height: req.height,
                    dark: req.dark,
                })?)
            }
            ChartKind::Parallel => {
                let mut runs = Vec::with_capacity(ids.len());
                for id in ids {
                    let view = self.run(id)?;
                    let mut run = view.run;
                    run.metrics.extend(view.live_metrics);
                    runs.push(run);
                }
                let fields = if req.fields.is_empty() {
                    let mut f = report::differing_params(&runs);
                    if let Some(m) = runs
                        .iter()
                        .flat_map(|r| r.metrics.keys())
                        .find(|k| !k.starts_with("system/"))
                    {
                        f.push(format!("metrics.{m}"));
                    }
                    f
                } else {
                    req.fields.clone()
                };
                if fields.len() < 2 {
                    return Err(Error::Invalid(format!(
                        "parallel coordinates need at least two axes; these runs give {}: \
                         name fields (params.lr, metrics.loss) to draw",
                        fields.len()
                    )));
                }
                Chart::Parallel(ParallelChart::from_runs(&runs, &fields))
            }
        };
        let out = render_svg(&chart, &frame).map_err(chart_error)?;
        Ok(ChartView {
            svg: out.svg,
            map: out.map,
        })
    }
}

/// What each run is called in a chart's legend: its name, then — only where two runs share it —
/// its experiment, then the end of its id (the start is a timestamp, shared by runs created in
/// the same minute), so runs named alike (every sweep's `trial-0333`) stay
/// apart. (The UI's tables use the same rule, `runLabels` in `ui/src/diff.ts`.)
pub(crate) fn run_labels(runs: &[(&Run, &str)]) -> Vec<String> {
    fn disambiguate(labels: Vec<String>, extra: impl Fn(usize) -> String) -> Vec<String> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for l in &labels {
            *seen.entry(l.as_str()).or_default() += 1;
        }
        let repeated: Vec<bool> = labels.iter().map(|l| seen[l.as_str()] > 1).collect();
        labels
            .iter()
            .zip(repeated)
            .enumerate()
            .map(|(i, (l, rep))| {
                if rep {
                    format!("{l} · {}", extra(i))
                } else {
                    l.clone()
                }
            })
            .collect()
    }
    let names = runs.iter().map(|(r, _)| r.name.clone()).collect();
    let with_exp = disambiguate(names, |i| runs[i].1.to_owned());
    disambiguate(with_exp, |i| {
        let id = runs[i].0.id.to_string();
        format!("…{}", &id[id.len() - 6..])
    })
}

#[cfg(test)]
mod label_tests {
    use super::*;
    use cairn_model::{ExperimentId, RunId};

    #[test]
    fn runs_named_alike_are_told_apart_by_experiment_then_id() {
        let exp = ExperimentId::new();
        let run = |name: &str| Run::new(RunId::new(), exp, name, 0);
        let runs = [
            run("trial-0333"),
            run("trial-0333"),
            run("trial-0333"),
            run("base"),
        ];
        let labels = run_labels(&[
            (&runs[0], "sweep-a"),
            (&runs[1], "sweep-b"),
            (&runs[2], "sweep-b"),
            (&runs[3], "sweep-b"),
        ]);
        assert_eq!(labels[0], "trial-0333 · sweep-a");
        assert_eq!(
            labels[1],
            format!("trial-0333 · sweep-b · …{}", &runs[1].id.to_string()[26..])
        );
        assert_eq!(
            labels[2],
            format!("trial-0333 · sweep-b · …{}", &runs[2].id.to_string()[26..])
        );
        assert_eq!(labels[3], "base");
    }
}
