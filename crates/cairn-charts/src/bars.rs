//! Bar charts of summary metrics: a row per run (its name once, on the left) and a panel of
//! horizontal bars per metric, each panel on its own scale with zero marked.

use cairn_model::Run;
use plotters::prelude::DrawingBackend;

use crate::axis::{AxisMap, Unit, format_number, linear_ticks};
use crate::canvas::{Align, Canvas, LABEL_PX, TICK_PX, TITLE_PX, fit_text, text_width};
use crate::error::ChartError;
use crate::frame::Frame;
use crate::map::{BarMap, BarPanelMap, BarsMap, PixelRect};
use crate::series::Scale;

const TITLE_H: i32 = 30;
const HEADER_H: i32 = 20;
const FOOTER_H: i32 = 22;
const MIN_ROW: i32 = 12;
const MAX_ROW: i32 = 24;

/// A bar chart of summary metrics across runs.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: Option<String>,
    /// One panel per metric, left to right.
    pub metrics: Vec<String>,
    /// One row per run, top to bottom, a value per metric (`None`: not logged).
    pub rows: Vec<BarRow>,
}

/// One run's values.
#[derive(Debug, Clone, PartialEq)]
pub struct BarRow {
    pub id: String,
    pub label: String,
    pub values: Vec<Option<f64>>,
}

impl BarChart {
    /// The last value of each of `metrics` for each run.
    pub fn from_runs<S: AsRef<str>>(runs: &[Run], metrics: &[S]) -> BarChart {
        BarChart {
            title: None,
            metrics: metrics.iter().map(|m| m.as_ref().to_owned()).collect(),
            rows: runs
                .iter()
                .map(|r| BarRow {
                    id: r.id.to_string(),
                    label: r.name.clone(),
                    values: metrics
                        .iter()
                        .map(|m| r.metrics.get(m.as_ref()).map(|s| s.last))
                        .collect(),
                })
                .collect(),
        }
    }

    /// A height that gives every row a comfortable 20 px (what a report should ask for).
    pub fn preferred_height(&self) -> u32 {
        let rows = self.rows.len().max(1) as u32;
        (TITLE_H + HEADER_H + FOOTER_H + 24) as u32 + rows * 20
    }
}

pub(crate) fn draw<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    chart: &BarChart,
    frame: &Frame,
    region: PixelRect,
) -> Result<BarsMap, ChartError> {
    let pal = frame.theme.palette();
    let title = chart.title.clone().unwrap_or_else(|| {
        format!(
            "{} across {} runs",
            chart.metrics.join(", "),
            chart.rows.len()
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

    let label_w = chart
        .rows
        .iter()
        .map(|r| text_width(&r.label, TICK_PX))
        .fold(40.0, f64::max)
        .min(f64::from(region.width) * 0.25)
        .ceil() as i32
        + 10;
    let body_y = region.y + TITLE_H + HEADER_H;
    let body_h = region.height - TITLE_H - HEADER_H - FOOTER_H;
    let capacity = (body_h / MIN_ROW).max(1) as usize;
    let (shown, hidden) = if chart.rows.len() <= capacity {
        (chart.rows.len(), 0)
    } else {
        (capacity - 1, chart.rows.len() - (capacity - 1))
    };
    let row_h = if shown == 0 {
        MAX_ROW
    } else {
        (body_h / (shown + usize::from(hidden > 0)) as i32).clamp(MIN_ROW, MAX_ROW)
    };
    let bar_h = (row_h - 4).max(4);

    for (r, row) in chart.rows.iter().take(shown).enumerate() {
        let cy = body_y + r as i32 * row_h + row_h / 2;
        let label = fit_text(&row.label, TICK_PX, f64::from(label_w - 10));
        cv.text(
            &label,
            (region.x + label_w - 8, cy),
            TICK_PX,
            pal.text,
            Align::End,
            false,
            false,
        )?;
    }
    if hidden > 0 {
        let cy = body_y + shown as i32 * row_h + row_h / 2;
        cv.text(
            &format!("+{hidden} more"),
            (region.x + label_w - 8, cy),
            TICK_PX,
            pal.muted,
            Align::End,
            false,
            false,
        )?;
    }

    let n = chart.metrics.len().max(1) as i32;
    let gap = 18;
    let panel_w = ((region.width - label_w - gap * (n - 1)) / n).max(40);
    let mut panels = Vec::with_capacity(chart.metrics.len());
    for (m, metric) in chart.metrics.iter().enumerate() {
        let plot = PixelRect {
            x: region.x + label_w + m as i32 * (panel_w + gap),
            y: body_y,
            width: panel_w,
            height: row_h * (shown + usize::from(hidden > 0)) as i32,
        };
        let values: Vec<f64> = chart
            .rows
            .iter()
            .take(shown)
            .filter_map(|r| r.values.get(m).copied().flatten())
            .filter(|v| v.is_finite())
            .collect();
        let lo = values.iter().copied().fold(0.0, f64::min);
        let hi = values.iter().copied().fold(0.0, f64::max);
        let (lo, hi) = if lo < hi { (lo, hi) } else { (0.0, 1.0) };
        // Room for the value labels at the bar ends.
        let pad = (hi / 2.0 - lo / 2.0) * 0.5;
        let (lo, hi) = (
            if lo < 0.0 { lo - pad } else { lo },
            if hi > 0.0 { hi + pad } else { hi },
        );
        let x = AxisMap {
            scale: Scale::Linear,
            lo,
            hi,
            px_lo: f64::from(plot.x),
            px_hi: f64::from(plot.right()),
            unit: Unit::Value,
            title: metric.clone(),
        };
        cv.text(
            &fit_text(metric, LABEL_PX, f64::from(panel_w)),
            (plot.x, region.y + TITLE_H + 8),
            LABEL_PX,
            pal.text,
            Align::Start,
            true,
            false,
        )?;
        let (ticks, step) = linear_ticks(lo, hi, (panel_w / 80).max(2) as usize);
        for v in ticks {
            if let Some(px) = x.px_clamped(v) {
                cv.line((px, plot.y), (px, plot.bottom()), pal.grid, 1.0)?;
                cv.text(
                    &format_number(v, step, false),
                    (px, plot.bottom() + 10),
                    TICK_PX,
                    pal.muted,
                    Align::Middle,
                    false,
                    false,
                )?;
            }
        }
        let zero = x.px_clamped(0.0).unwrap_or(plot.x);
        let mut bars = Vec::new();
        for (r, row) in chart.rows.iter().take(shown).enumerate() {
            let cy = body_y + r as i32 * row_h + row_h / 2;
            let Some(v) = row.values.get(m).copied().flatten() else {
                cv.text(
                    "–",
                    (zero + 4, cy),
                    TICK_PX,
                    pal.muted,
                    Align::Start,
                    false,
                    false,
                )?;
                continue;
            };
            let (color, _) = pal.style(r);
            if !v.is_finite() {
                let note = if v.is_nan() {
                    "NaN"
                } else if v > 0.0 {
                    "+inf"
                } else {
                    "-inf"
                };
                cv.text(
                    note,
                    (zero + 4, cy),
                    TICK_PX,
                    pal.alert,
                    Align::Start,
                    false,
                    false,
                )?;
                continue;
            }
            let end = x.px_clamped(v).unwrap_or(zero);
            let (a, b) = if end >= zero {
                (zero, end)
            } else {
                (end, zero)
            };
            let rect = PixelRect {
                x: a,
                y: cy - bar_h / 2,
                width: (b - a).max(1),
                height: bar_h,
            };
            cv.rect(
                (rect.x, rect.y),
                (rect.right(), rect.bottom()),
                color,
                0.9,
                true,
            )?;
            if row_h >= 14 {
                let label = trim_zeros(format_number(v, significant_step(v), false));
                let (px, align) = if end >= zero {
                    (end + 4, Align::Start)
                } else {
                    (end - 4, Align::End)
                };
                cv.text(&label, (px, cy), TICK_PX, pal.text, align, false, false)?;
            }
            bars.push(BarMap {
                id: row.id.clone(),
                label: row.label.clone(),
                color: color.hex(),
                rect,
                value: v,
            });
        }
        cv.line((zero, plot.y), (zero, plot.bottom()), pal.axis, 1.0)?;
        panels.push(BarPanelMap {
            metric: metric.clone(),
            plot,
            x,
            bars,
        });
    }
    Ok(BarsMap { panels, hidden })
}

/// `0.5250` → `0.525`, `900.0` → `900`; exponent forms are left alone.
fn trim_zeros(s: String) -> String {
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// A step that shows `v` to four significant digits.
fn significant_step(v: f64) -> f64 {
    if v == 0.0 {
        return 1.0;
    }
    10f64.powf(v.abs().log10().floor() - 3.0)
}
