//! Stacked bars: a column per category (a period) and a segment per series (a family), each
//! column as tall as its total — spend over time, stacked by family.

use plotters::prelude::DrawingBackend;

use crate::axis::{AxisMap, Unit, padded};
use crate::canvas::{Align, Canvas, LABEL_PX, TICK_PX, TITLE_PX, fit_text, text_width};
use crate::error::ChartError;
use crate::frame::{Entry, Frame, draw_axes, draw_legend, layout_legend, place_plot};
use crate::map::{PixelRect, StackedColumnMap, StackedMap, StackedSeriesMap};
use crate::series::Scale;

/// A stacked bar chart.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedChart {
    pub title: Option<String>,
    /// What the values are (`US dollars`).
    pub y_label: String,
    /// The columns, left to right.
    pub categories: Vec<String>,
    /// The segments, bottom first; each has a value per category.
    pub series: Vec<StackedSeries>,
}

/// One series: a value per category (non-finite and negative values are drawn as nothing).
#[derive(Debug, Clone, PartialEq)]
pub struct StackedSeries {
    pub id: String,
    pub label: String,
    pub values: Vec<f64>,
}

fn drawable(v: f64) -> f64 {
    if v.is_finite() && v > 0.0 { v } else { 0.0 }
}

pub(crate) fn draw<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    chart: &StackedChart,
    frame: &Frame,
    region: PixelRect,
) -> Result<StackedMap, ChartError> {
    let pal = frame.theme.palette();
    let n = chart.categories.len();
    let totals: Vec<f64> = (0..n)
        .map(|i| {
            chart
                .series
                .iter()
                .map(|s| drawable(s.values.get(i).copied().unwrap_or(0.0)))
                .sum()
        })
        .collect();
    let entries: Vec<Entry> = chart
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let (color, marker) = pal.style(i);
            Entry {
                label: s.label.clone(),
                color,
                marker,
            }
        })
        .collect();
    let (title_h, bottom_h) = (30, 42);
    let legend = layout_legend(None, entries, region, region.height - title_h - bottom_h);
    let top = totals.iter().copied().fold(0.0, f64::max);
    let (_, hi) = padded(0.0, if top > 0.0 { top } else { 1.0 }, Scale::Linear);
    let mut y = AxisMap {
        scale: Scale::Linear,
        lo: 0.0,
        hi,
        px_lo: 0.0,
        px_hi: 0.0,
        unit: Unit::Value,
        title: chart.y_label.clone(),
    };
    let (plot, y_ticks) = place_plot(region, (title_h, bottom_h), legend.width, &mut y, 0);
    let title = chart.title.clone().unwrap_or_else(|| chart.y_label.clone());
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
    draw_axes(cv, plot, None, &y, frame, pal, &y_ticks)?;

    let slot = f64::from(plot.width) / n.max(1) as f64;
    // Label every k-th column so the labels do not overlap.
    let widest = chart
        .categories
        .iter()
        .map(|c| text_width(c, TICK_PX))
        .fold(0.0, f64::max);
    let every = ((widest + 8.0) / slot.max(1.0)).ceil().max(1.0) as usize;
    let mut columns = Vec::with_capacity(n);
    for (i, label) in chart.categories.iter().enumerate() {
        let x0 = f64::from(plot.x) + slot * i as f64;
        let pad = (slot * 0.15).min(6.0);
        let (a, b) = ((x0 + pad).round() as i32, (x0 + slot - pad).round() as i32);
        let b = b.max(a + 1);
        let mut base = 0.0;
        let mut values = Vec::with_capacity(chart.series.len());
        for (si, s) in chart.series.iter().enumerate() {
            let v = s.values.get(i).copied().unwrap_or(0.0);
            values.push(v);
            let v = drawable(v);
            if v > 0.0
                && let (Some(y0), Some(y1)) = (y.px_clamped(base), y.px_clamped(base + v))
                && y0 != y1
            {
                cv.rect((a, y1), (b, y0), pal.style(si).0, 0.9, true)?;
            }
            base += v;
        }
        if i % every == 0 {
            cv.text(
                label,
                (((a + b) / 2), plot.bottom() + 13),
                TICK_PX,
                pal.muted,
                Align::Middle,
                false,
                false,
            )?;
        }
        columns.push(StackedColumnMap {
            label: label.clone(),
            px_lo: a,
            px_hi: b,
            values,
            total: totals[i],
        });
    }
    draw_legend(cv, &legend, plot.right() + 14, plot.y, pal)?;
    Ok(StackedMap {
        plot,
        y,
        series: chart
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| StackedSeriesMap {
                id: s.id.clone(),
                label: s.label.clone(),
                color: pal.style(i).0.hex(),
            })
            .collect(),
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Chart, ChartMap, render_svg};

    #[test]
    fn columns_stack_each_series_and_the_map_keeps_the_values() {
        let chart = StackedChart {
            title: Some("spend by week".into()),
            y_label: "US dollars".into(),
            categories: vec!["2026-W47".into(), "2026-W48".into()],
            series: vec![
                StackedSeries {
                    id: "a".into(),
                    label: "resnet".into(),
                    values: vec![10.0, 5.0],
                },
                StackedSeries {
                    id: "b".into(),
                    label: "bert".into(),
                    values: vec![2.0, f64::NAN],
                },
            ],
        };
        let out = render_svg(&Chart::Stacked(chart), &Frame::new(640, 280)).unwrap();
        let ChartMap::Stacked(map) = out.map else {
            panic!("not a stacked map");
        };
        assert_eq!(map.columns.len(), 2);
        assert_eq!(map.columns[0].total, 12.0);
        assert_eq!(map.columns[1].total, 5.0);
        assert!(map.columns[0].px_hi <= map.columns[1].px_lo);
        assert_eq!(map.series[1].label, "bert");
        assert!(out.svg.contains("2026-W48") && out.svg.contains("spend by week"));
    }
}
