//! Parallel coordinates: one vertical axis per param (numeric or categorical), the last one
//! usually the metric being optimised; each run is a line across them, coloured by its value on
//! the last axis (viridis), so the params that lead to good runs stand out.

use cairn_model::Run;
use plotters::prelude::DrawingBackend;

use crate::axis::{AxisMap, Unit, format_number, linear_ticks};
use crate::canvas::{Align, Canvas, LABEL_PX, TICK_PX, TITLE_PX, fit_text, text_width};
use crate::error::ChartError;
use crate::fields::{Cell, field_cell, natural_cmp};
use crate::frame::Frame;
use crate::map::{ParallelAxisMap, ParallelMap, PixelRect, RowMap};
use crate::series::Scale;
use crate::theme::{Rgb, viridis};

/// A parallel-coordinates chart.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelChart {
    pub title: Option<String>,
    /// Axis names, left to right; the last one colours the lines.
    pub axes: Vec<String>,
    /// One row per run, a cell per axis.
    pub rows: Vec<ParallelRow>,
}

/// One run across the axes.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelRow {
    pub id: String,
    pub label: String,
    pub cells: Vec<Cell>,
}

impl ParallelChart {
    /// Axes for `fields` (`params.lr`, `params.optimizer`, …, `metrics.loss`), a row per run.
    pub fn from_runs<S: AsRef<str>>(runs: &[Run], fields: &[S]) -> ParallelChart {
        ParallelChart {
            title: None,
            axes: fields.iter().map(|f| f.as_ref().to_owned()).collect(),
            rows: runs
                .iter()
                .map(|r| ParallelRow {
                    id: r.id.to_string(),
                    label: r.name.clone(),
                    cells: fields.iter().map(|f| field_cell(r, f.as_ref())).collect(),
                })
                .collect(),
        }
    }
}

/// How one axis places values.
#[derive(Debug)]
enum Placement {
    Numeric(AxisMap),
    Categorical(Vec<(String, f64)>),
}

fn placement(chart: &ParallelChart, k: usize, top: f64, bottom: f64) -> Placement {
    let cells = chart
        .rows
        .iter()
        .map(|r| r.cells.get(k).unwrap_or(&Cell::Missing));
    let numeric = cells.clone().all(|c| !matches!(c, Cell::Text(_)));
    if numeric {
        let values: Vec<f64> = cells
            .filter_map(|c| match c {
                Cell::Number(v) if v.is_finite() => Some(*v),
                _ => None,
            })
            .collect();
        let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (lo, hi) = if lo > hi {
            (0.0, 1.0)
        } else if lo == hi {
            crate::downsample::widen(lo)
        } else {
            (lo, hi)
        };
        // Learning rates and the like: spread over decades reads best on a log axis.
        let scale = if lo > 0.0 && hi / lo >= 50.0 {
            Scale::Log
        } else {
            Scale::Linear
        };
        return Placement::Numeric(AxisMap {
            scale,
            lo,
            hi,
            px_lo: bottom,
            px_hi: top,
            unit: Unit::Value,
            title: chart.axes[k].clone(),
        });
    }
    let mut cats: Vec<String> = cells.filter_map(Cell::text).collect();
    cats.sort_by(|a, b| natural_cmp(a, b));
    cats.dedup();
    let n = cats.len().max(1) as f64;
    Placement::Categorical(
        cats.into_iter()
            .enumerate()
            .map(|(i, c)| (c, bottom - (bottom - top) * (i as f64 + 0.5) / n))
            .collect(),
    )
}

fn place(p: &Placement, cell: &Cell) -> Option<f64> {
    match (p, cell) {
        (Placement::Numeric(a), Cell::Number(v)) => a.to_px(*v),
        (Placement::Categorical(cats), c) => {
            let t = c.text()?;
            cats.iter().find(|(name, _)| *name == t).map(|(_, y)| *y)
        }
        _ => None,
    }
}

pub(crate) fn draw<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    chart: &ParallelChart,
    frame: &Frame,
    region: PixelRect,
) -> Result<ParallelMap, ChartError> {
    let pal = frame.theme.palette();
    if chart.axes.is_empty() {
        return Err(ChartError::Spec {
            field: "axes",
            value: "[]".to_owned(),
            reason: "a parallel-coordinates chart needs at least one axis",
        });
    }
    // Room for half the first and last axis names beside their axes, and the colour bar.
    let half_name =
        |k: usize| (text_width(&chart.axes[k], LABEL_PX).min(160.0) / 2.0).ceil() as i32;
    let left = half_name(0).max(30) + 4;
    let right = (half_name(chart.axes.len() - 1) + 4).max(110);
    let plot = PixelRect {
        x: region.x + left,
        y: region.y + 56,
        width: region.width - left - right,
        height: region.height - 56 - 34,
    };
    let (top, bottom) = (f64::from(plot.y), f64::from(plot.bottom()));
    let n = chart.axes.len();
    let spacing = if n > 1 {
        f64::from(plot.width) / (n - 1) as f64
    } else {
        0.0
    };
    let axis_x: Vec<i32> = (0..n)
        .map(|k| {
            if n > 1 {
                plot.x + (spacing * k as f64).round() as i32
            } else {
                plot.x + plot.width / 2
            }
        })
        .collect();
    let placements: Vec<Placement> = (0..n).map(|k| placement(chart, k, top, bottom)).collect();
    let missing_py = plot.bottom() + 18;

    let title = chart.title.clone().unwrap_or_else(|| {
        format!(
            "{} runs: {} → {}",
            chart.rows.len(),
            chart.axes[..n - 1].join(", "),
            chart.axes[n - 1]
        )
    });
    cv.text(
        &fit_text(&title, TITLE_PX, f64::from(region.width)),
        (region.x, region.y + 15),
        TITLE_PX,
        pal.text,
        Align::Start,
        true,
        false,
    )?;

    // Line colours from the last axis.
    let color_of = |row: &ParallelRow| -> Rgb {
        let cell = row.cells.get(n - 1).unwrap_or(&Cell::Missing);
        match (&placements[n - 1], cell) {
            (Placement::Numeric(a), Cell::Number(v)) => match a.fraction(*v) {
                Some(t) => viridis(t),
                None => pal.missing,
            },
            (Placement::Categorical(cats), c) => match c.text() {
                Some(t) => cats
                    .iter()
                    .position(|(name, _)| *name == t)
                    .map(|i| pal.style(i).0)
                    .unwrap_or(pal.missing),
                None => pal.missing,
            },
            _ => pal.missing,
        }
    };

    // Axes behind the lines; their tick labels are collected and drawn over the lines.
    let mut labels: Vec<(String, (i32, i32))> = Vec::new();
    for (k, p) in placements.iter().enumerate() {
        let x = axis_x[k];
        cv.line((x, plot.y), (x, plot.bottom()), pal.axis, 1.0)?;
        let width = if n > 1 { spacing - 8.0 } else { 200.0 };
        let name = fit_text(&chart.axes[k], LABEL_PX, width.max(40.0));
        cv.text(
            &name,
            (x, plot.y - 26),
            LABEL_PX,
            pal.text,
            Align::Middle,
            true,
            false,
        )?;
        cv.text(
            "n/a",
            (x + 5, missing_py),
            TICK_PX,
            pal.muted,
            Align::Start,
            false,
            false,
        )?;
        match p {
            Placement::Numeric(a) => {
                let ticks = a.ticks((plot.height / 60).max(2) as usize, 0);
                for (v, label) in ticks {
                    if let Some(py) = a.to_px(v) {
                        let py = py.round() as i32;
                        cv.line((x - 3, py), (x + 3, py), pal.axis, 1.0)?;
                        labels.push((label, (x + 6, py)));
                    }
                }
            }
            Placement::Categorical(cats) => {
                // Label every category while they fit, else every k-th.
                let every = (cats.len() as f64 * 16.0 / f64::from(plot.height))
                    .ceil()
                    .max(1.0) as usize;
                for (i, (name, py)) in cats.iter().enumerate() {
                    let py = py.round() as i32;
                    cv.line((x - 3, py), (x + 3, py), pal.axis, 1.0)?;
                    if i % every == 0 {
                        labels.push((
                            fit_text(name, TICK_PX, (spacing * 0.8).max(60.0)),
                            (x + 6, py),
                        ));
                    }
                }
            }
        }
    }

    // Lines, the best-coloured last so they are on top.
    let mut order: Vec<usize> = (0..chart.rows.len()).collect();
    let key = |i: &usize| match chart.rows[*i].cells.get(n - 1) {
        Some(Cell::Number(v)) if v.is_finite() => *v,
        _ => f64::NEG_INFINITY,
    };
    order.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let width = if chart.rows.len() <= 20 { 2 } else { 1 };
    let mut rows = Vec::with_capacity(chart.rows.len());
    for &i in &order {
        let row = &chart.rows[i];
        let color = color_of(row);
        let points: Vec<(i32, i32)> = (0..n)
            .map(|k| {
                let cell = row.cells.get(k).unwrap_or(&Cell::Missing);
                let py = place(&placements[k], cell)
                    .map(|y| y.round() as i32)
                    .unwrap_or(missing_py);
                (axis_x[k], py)
            })
            .collect();
        if n > 1 {
            cv.polyline(points.clone(), color, 0.75, width)?;
        } else {
            cv.marker(crate::theme::Marker::Circle, points[0], 3, color)?;
        }
        rows.push(RowMap {
            id: row.id.clone(),
            label: row.label.clone(),
            color: color.hex(),
            points,
        });
    }

    // Tick labels over the lines, each on a patch of background so it stays legible.
    for (label, (x, y)) in &labels {
        let w = text_width(label, TICK_PX).ceil() as i32;
        cv.rect(
            (x - 2, y - 7),
            (x + w + 2, y + 7),
            pal.background,
            0.8,
            true,
        )?;
        cv.text(
            label,
            (*x, *y),
            TICK_PX,
            pal.text,
            Align::Start,
            false,
            false,
        )?;
    }

    // Colour bar for a numeric last axis.
    if let Placement::Numeric(a) = &placements[n - 1] {
        let bx = plot.right() + 56;
        let steps = 64;
        for s in 0..steps {
            let y0 = plot.y + plot.height * s / steps;
            let y1 = plot.y + plot.height * (s + 1) / steps;
            let t = 1.0 - (f64::from(s) + 0.5) / f64::from(steps);
            cv.rect((bx, y0), (bx + 12, y1), viridis(t), 1.0, true)?;
        }
        let (_, step) = linear_ticks(a.lo, a.hi, 4);
        cv.text(
            &format_number(a.hi, step, false),
            (bx + 16, plot.y + 4),
            TICK_PX,
            pal.muted,
            Align::Start,
            false,
            false,
        )?;
        cv.text(
            &format_number(a.lo, step, false),
            (bx + 16, plot.bottom() - 4),
            TICK_PX,
            pal.muted,
            Align::Start,
            false,
            false,
        )?;
    }

    Ok(ParallelMap {
        plot,
        axes: placements
            .into_iter()
            .zip(&chart.axes)
            .zip(&axis_x)
            .map(|((p, name), &px)| match p {
                Placement::Numeric(a) => ParallelAxisMap {
                    name: name.clone(),
                    px,
                    numeric: Some(a),
                    categories: Vec::new(),
                    missing_py,
                },
                Placement::Categorical(cats) => ParallelAxisMap {
                    name: name.clone(),
                    px,
                    numeric: None,
                    categories: cats
                        .into_iter()
                        .map(|(c, y)| (c, y.round() as i32))
                        .collect(),
                    missing_py,
                },
            })
            .collect(),
        rows,
    })
}
