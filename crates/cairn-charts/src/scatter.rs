//! Scatter of one field against another, a point per run: a param (numeric, or categorical with
//! a little deterministic jitter) against a metric, optionally coloured by group.

use cairn_model::Run;
use plotters::prelude::DrawingBackend;

use crate::axis::{AxisMap, Unit, padded};
use crate::canvas::{Align, Canvas, LABEL_PX, TICK_PX, TITLE_PX, fit_text};
use crate::error::ChartError;
use crate::fields::{Cell, field_cell, field_text, natural_cmp};
use crate::frame::{Entry, Frame, draw_axes, draw_legend, layout_legend, place_plot};
use crate::map::{PixelRect, ScatterMap, ScatterPointMap};
use crate::series::Scale;

/// A scatter chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterChart {
    pub title: Option<String>,
    pub x_label: String,
    pub y_label: String,
    /// Used when every x is a number.
    pub x_scale: Scale,
    pub y_scale: Scale,
    /// The field the points were grouped (coloured) by, the legend title.
    pub group_by: Option<String>,
    pub points: Vec<ScatterPoint>,
    /// Ids of points joined by a line in x order (a cost-vs-metric Pareto frontier).
    pub frontier: Vec<String>,
}

/// One run's point.
#[derive(Debug, Clone, PartialEq)]
pub struct ScatterPoint {
    pub id: String,
    pub label: String,
    /// A number, or a category (text); runs with `Missing` are left out.
    pub x: Cell,
    /// Non-finite values are left out (and counted in the title).
    pub y: f64,
    pub group: Option<String>,
}

impl ScatterChart {
    /// `y_field` (usually `metrics.NAME`) against `x_field` (usually `params.NAME`) for each
    /// run, coloured by `group_by` when given.
    pub fn from_runs(
        runs: &[Run],
        x_field: &str,
        y_field: &str,
        group_by: Option<&str>,
    ) -> ScatterChart {
        ScatterChart {
            title: None,
            x_label: x_field.to_owned(),
            y_label: y_field.to_owned(),
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            group_by: group_by.map(str::to_owned),
            points: runs
                .iter()
                .map(|r| ScatterPoint {
                    id: r.id.to_string(),
                    label: r.name.clone(),
                    x: field_cell(r, x_field),
                    y: match field_cell(r, y_field) {
                        Cell::Number(v) => v,
                        _ => f64::NAN,
                    },
                    group: group_by
                        .map(|g| field_text(r, g).unwrap_or_else(|| "(none)".to_owned())),
                })
                .collect(),
            frontier: Vec::new(),
        }
    }
}

/// A stable jitter in `-1..1` from a run id, so categorical points do not stack.
fn jitter(id: &str) -> f64 {
    let h = id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    (h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

pub(crate) fn draw<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    chart: &ScatterChart,
    frame: &Frame,
    region: PixelRect,
) -> Result<ScatterMap, ChartError> {
    let pal = frame.theme.palette();
    let log_y = chart.y_scale == Scale::Log;
    let usable: Vec<&ScatterPoint> = chart
        .points
        .iter()
        .filter(|p| p.y.is_finite() && (!log_y || p.y > 0.0) && p.x != Cell::Missing)
        .collect();
    let left_out = chart.points.len() - usable.len();
    let categorical = usable.iter().any(|p| matches!(p.x, Cell::Text(_)));

    // Groups and legend.
    let mut groups: Vec<String> = chart
        .points
        .iter()
        .filter_map(|p| p.group.clone())
        .collect();
    groups.sort_by(|a, b| natural_cmp(a, b));
    groups.dedup();
    let entries: Vec<Entry> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let (color, marker) = pal.style(i);
            Entry {
                label: g.clone(),
                color,
                marker,
            }
        })
        .collect();
    let title_h = 30;
    let bottom_h = 42;
    let legend = layout_legend(
        chart.group_by.clone(),
        entries,
        region,
        region.height - title_h - bottom_h,
    );

    // y axis.
    let (y_lo, y_hi) = {
        let lo = usable.iter().map(|p| p.y).fold(f64::INFINITY, f64::min);
        let hi = usable.iter().map(|p| p.y).fold(f64::NEG_INFINITY, f64::max);
        if lo <= hi {
            padded(lo, hi, chart.y_scale)
        } else if log_y {
            (1.0, 10.0)
        } else {
            (0.0, 1.0)
        }
    };
    let mut y = AxisMap {
        scale: chart.y_scale,
        lo: y_lo,
        hi: y_hi,
        px_lo: 0.0,
        px_hi: 0.0,
        unit: Unit::Value,
        title: chart.y_label.clone(),
    };
    let (plot, y_ticks) = place_plot(region, (title_h, bottom_h), legend.width, &mut y, 0);

    // x axis: numeric or categories.
    let mut categories: Vec<(String, i32)> = Vec::new();
    let x_axis = if categorical {
        let mut cats: Vec<String> = usable.iter().filter_map(|p| p.x.text()).collect();
        cats.sort_by(|a, b| natural_cmp(a, b));
        cats.dedup();
        let n = cats.len().max(1) as f64;
        categories = cats
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let px = f64::from(plot.x) + f64::from(plot.width) * (i as f64 + 0.5) / n;
                (c, px.round() as i32)
            })
            .collect();
        None
    } else {
        let log_x = chart.x_scale == Scale::Log;
        let xs = usable.iter().filter_map(|p| match p.x {
            Cell::Number(v) if v.is_finite() && (!log_x || v > 0.0) => Some(v),
            _ => None,
        });
        let lo = xs.clone().fold(f64::INFINITY, f64::min);
        let hi = xs.fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo <= hi {
            padded(lo, hi, chart.x_scale)
        } else {
            (1.0, 10.0)
        };
        Some(AxisMap {
            scale: chart.x_scale,
            lo,
            hi,
            px_lo: f64::from(plot.x),
            px_hi: f64::from(plot.right()),
            unit: Unit::Value,
            title: chart.x_label.clone(),
        })
    };

    let mut title = chart
        .title
        .clone()
        .unwrap_or_else(|| format!("{} vs {}", chart.y_label, chart.x_label));
    if left_out > 0 {
        title.push_str(&format!(" ({left_out} runs without a value left out)"));
    }
    cv.text(
        &fit_text(&title, TITLE_PX, f64::from(plot.width)),
        (plot.x, region.y + 15),
        TITLE_PX,
        pal.text,
        Align::Start,
        true,
        false,
    )?;
    cv.text(
        &fit_text(&y.title, LABEL_PX, f64::from(plot.height)),
        (region.x + 10, plot.y + plot.height / 2),
        LABEL_PX,
        pal.text,
        Align::Middle,
        false,
        true,
    )?;
    draw_axes(cv, plot, x_axis.as_ref(), &y, frame, pal, &y_ticks)?;
    if categorical {
        let slot = f64::from(plot.width) / categories.len().max(1) as f64;
        for (name, px) in &categories {
            cv.line(
                (*px, plot.bottom()),
                (*px, plot.bottom() + 4),
                pal.axis,
                1.0,
            )?;
            let label = fit_text(name, TICK_PX, slot - 4.0);
            cv.text(
                &label,
                (*px, plot.bottom() + 13),
                TICK_PX,
                pal.muted,
                Align::Middle,
                false,
                false,
            )?;
        }
        cv.text(
            &chart.x_label,
            (plot.x + plot.width / 2, plot.bottom() + 31),
            LABEL_PX,
            pal.text,
            Align::Middle,
            false,
            false,
        )?;
    }

    let slot = f64::from(plot.width) / categories.len().max(1) as f64;
    let mut points = Vec::with_capacity(usable.len());
    for p in usable {
        let px = match (&x_axis, &p.x) {
            (Some(a), Cell::Number(v)) => a.px_clamped(*v),
            (None, c) => c.text().and_then(|t| {
                categories
                    .iter()
                    .find(|(name, _)| *name == t)
                    .map(|(_, px)| px + (jitter(&p.id) * slot * 0.3).round() as i32)
            }),
            _ => None,
        };
        let (Some(px), Some(py)) = (px, y.px_clamped(p.y)) else {
            continue;
        };
        let gi = p
            .group
            .as_ref()
            .and_then(|g| groups.iter().position(|k| k == g));
        let (color, marker) = pal.style(gi.unwrap_or(0));
        cv.marker(marker, (px, py), 4, color)?;
        points.push(ScatterPointMap {
            id: p.id.clone(),
            label: p.label.clone(),
            color: color.hex(),
            px: (px, py),
            x: p.x.text().unwrap_or_default(),
            y: p.y,
        });
    }
    if !chart.frontier.is_empty() {
        let mut line: Vec<(i32, i32)> = chart
            .frontier
            .iter()
            .filter_map(|id| points.iter().find(|p| p.id == *id).map(|p| p.px))
            .collect();
        line.sort_by_key(|p| p.0);
        // A step line: each frontier run holds its value until a dearer one beats it.
        let mut steps = Vec::with_capacity(line.len() * 2);
        for (i, p) in line.iter().enumerate() {
            if i > 0 {
                steps.push((p.0, line[i - 1].1));
            }
            steps.push(*p);
        }
        cv.polyline(steps, pal.text, 0.55, 2)?;
    }
    draw_legend(cv, &legend, plot.right() + 14, plot.y, pal)?;
    Ok(ScatterMap {
        plot,
        x: x_axis,
        y,
        categories,
        points,
        frontier: chart.frontier.clone(),
    })
}
