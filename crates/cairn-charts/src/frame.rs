//! What every chart kind draws around its data: the [`Frame`] it is drawn in, the plot rectangle
//! placed beside the y tick labels, the grid, ticks and axis titles, and the legend.
//!
//! It exists so that the chart modules (`line`, `scatter`, `bars`, `parallel`, `system`) share
//! these pieces without importing `render` or borrowing them from one another: charts depend on
//! this module (and on `canvas`, `axis`, `map`, `theme`, `series`), `render` depends on the
//! charts, and nothing but `lib.rs` depends on `render`. The one chart that uses another is
//! `system`, a grid of line charts drawn by `line::draw_in`.

use plotters::prelude::DrawingBackend;
use serde::{Deserialize, Serialize};

use crate::axis::AxisMap;
use crate::canvas::{Align, Canvas, LABEL_PX, TICK_PX, fit_text, text_width};
use crate::error::ChartError;
use crate::map::PixelRect;
use crate::theme::{Marker, Palette, Rgb, Theme};

const MIN_WIDTH: u32 = 240;
const MIN_HEIGHT: u32 = 160;
const MAX_SIDE: u32 = 8192;

/// The canvas: its size in pixels, its theme, and the UTC offset wall-clock axes are labelled
/// in (the caller knows the user's time zone; this crate reads no environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default)]
    pub utc_offset_minutes: i32,
}

impl Default for Frame {
    fn default() -> Frame {
        Frame::new(960, 540)
    }
}

impl Frame {
    /// A light frame of `width`×`height` pixels, times in UTC.
    pub fn new(width: u32, height: u32) -> Frame {
        Frame {
            width,
            height,
            theme: Theme::Light,
            utc_offset_minutes: 0,
        }
    }

    /// The same frame in `theme`.
    pub fn with_theme(mut self, theme: Theme) -> Frame {
        self.theme = theme;
        self
    }

    /// Refuses a frame too small to lay a chart out in or too large to allocate.
    pub(crate) fn check(&self) -> Result<(), ChartError> {
        let ok = (MIN_WIDTH..=MAX_SIDE).contains(&self.width)
            && (MIN_HEIGHT..=MAX_SIDE).contains(&self.height);
        if ok {
            Ok(())
        } else {
            Err(ChartError::Size {
                width: self.width,
                height: self.height,
                min_width: MIN_WIDTH,
                min_height: MIN_HEIGHT,
                max_side: MAX_SIDE,
            })
        }
    }
}

/// Legend rows are this tall.
const LEGEND_ROW: i32 = 16;

/// One legend entry.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) label: String,
    pub(crate) color: Rgb,
    pub(crate) marker: Marker,
}

/// The legend's layout: entries in columns down the right side of the chart.
#[derive(Debug)]
pub(crate) struct Legend {
    title: Option<String>,
    entries: Vec<Entry>,
    column_width: i32,
    rows: usize,
    shown: usize,
    /// Entries that did not fit, summarised as "+N more" (the chart map reports them).
    pub(crate) hidden: usize,
    pub(crate) width: i32,
}

pub(crate) fn layout_legend(
    title: Option<String>,
    entries: Vec<Entry>,
    region: PixelRect,
    available_height: i32,
) -> Legend {
    if entries.is_empty() {
        return Legend {
            title,
            entries,
            column_width: 0,
            rows: 0,
            shown: 0,
            hidden: 0,
            width: 0,
        };
    }
    let longest = entries
        .iter()
        .map(|e| text_width(&e.label, TICK_PX))
        .fold(0.0, f64::max);
    let title_width = title
        .as_deref()
        .map(|t| text_width(t, LABEL_PX) - 24.0)
        .unwrap_or(0.0);
    let column_width = (longest.max(title_width).min(170.0).ceil() + 36.0).max(70.0) as i32;
    let title_rows = usize::from(title.is_some());
    let rows = ((available_height / LEGEND_ROW) as usize)
        .saturating_sub(title_rows)
        .max(1);
    let max_columns = ((region.width as f64 * 0.4) as i32 / column_width).max(1) as usize;
    let columns = entries.len().div_ceil(rows).min(max_columns);
    let capacity = rows * columns;
    let (shown, hidden) = if entries.len() <= capacity {
        (entries.len(), 0)
    } else {
        // The last slot says how many more there are.
        (capacity - 1, entries.len() - (capacity - 1))
    };
    Legend {
        title,
        entries,
        column_width,
        rows,
        shown,
        hidden,
        width: column_width * columns as i32 + 8,
    }
}

pub(crate) fn draw_legend<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    legend: &Legend,
    x0: i32,
    y0: i32,
    pal: &Palette,
) -> Result<(), ChartError> {
    let mut y_first = y0 + LEGEND_ROW / 2;
    if let Some(t) = &legend.title {
        let t = fit_text(t, LABEL_PX, f64::from(legend.width - 4));
        cv.text(
            &t,
            (x0, y_first),
            LABEL_PX,
            pal.text,
            Align::Start,
            true,
            false,
        )?;
        y_first += LEGEND_ROW;
    }
    let label_px = f64::from(legend.column_width - 36);
    for (k, e) in legend.entries.iter().take(legend.shown).enumerate() {
        let (col, row) = (k / legend.rows, k % legend.rows);
        let x = x0 + col as i32 * legend.column_width;
        let y = y_first + row as i32 * LEGEND_ROW;
        cv.polyline(vec![(x, y), (x + 18, y)], e.color, 1.0, 2)?;
        cv.marker(e.marker, (x + 9, y), 3, e.color)?;
        let label = fit_text(&e.label, TICK_PX, label_px);
        cv.text(
            &label,
            (x + 24, y),
            TICK_PX,
            pal.text,
            Align::Start,
            false,
            false,
        )?;
    }
    if legend.hidden > 0 {
        let k = legend.shown;
        let (col, row) = (k / legend.rows, k % legend.rows);
        let x = x0 + col as i32 * legend.column_width;
        let y = y_first + row as i32 * LEGEND_ROW;
        let more = format!("+{} more", legend.hidden);
        cv.text(
            &more,
            (x + 24, y),
            TICK_PX,
            pal.muted,
            Align::Start,
            false,
            false,
        )?;
    }
    Ok(())
}

/// Draws the grid, ticks and axis titles of a plot.
#[allow(clippy::too_many_arguments)]
pub(crate) fn draw_axes<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    plot: PixelRect,
    x: Option<&AxisMap>,
    y: &AxisMap,
    frame: &Frame,
    pal: &Palette,
    y_ticks: &[(f64, String)],
) -> Result<(), ChartError> {
    for (v, label) in y_ticks {
        if let Some(p) = y.to_px(*v) {
            let p = p.round() as i32;
            if p < plot.y - 1 || p > plot.bottom() + 1 {
                continue;
            }
            cv.line((plot.x, p), (plot.right(), p), pal.grid, 1.0)?;
            cv.text(
                label,
                (plot.x - 6, p),
                TICK_PX,
                pal.muted,
                Align::End,
                false,
                false,
            )?;
        }
    }
    if let Some(x) = x {
        let target = (plot.width / 110).max(2) as usize;
        for (v, label) in x.ticks(target, frame.utc_offset_minutes) {
            if let Some(p) = x.to_px(v) {
                let p = p.round() as i32;
                if p < plot.x - 1 || p > plot.right() + 1 {
                    continue;
                }
                cv.line((p, plot.y), (p, plot.bottom()), pal.grid, 1.0)?;
                cv.line((p, plot.bottom()), (p, plot.bottom() + 4), pal.axis, 1.0)?;
                // Keep labels at the ends (a date, say) inside the canvas.
                let half = (text_width(&label, TICK_PX) / 2.0).ceil() as i32;
                let at = p.clamp(half + 2, (cv.width() - half - 2).max(half + 2));
                cv.text(
                    &label,
                    (at, plot.bottom() + 13),
                    TICK_PX,
                    pal.muted,
                    Align::Middle,
                    false,
                    false,
                )?;
            }
        }
        cv.text(
            &x.title,
            (plot.x + plot.width / 2, plot.bottom() + 31),
            LABEL_PX,
            pal.text,
            Align::Middle,
            false,
            false,
        )?;
    }
    cv.rect(
        (plot.x, plot.y),
        (plot.right(), plot.bottom()),
        pal.axis,
        1.0,
        false,
    )?;
    Ok(())
}

/// The plot rectangle of a chart with a y axis: inside `region`, below the title and above the x
/// axis (`(title_h, bottom_h)`), right of the y tick labels, left of a legend `legend_width`
/// wide. Gives `y` its pixel range and returns its ticks.
pub(crate) fn place_plot(
    region: PixelRect,
    (title_h, bottom_h): (i32, i32),
    legend_width: i32,
    y: &mut AxisMap,
    utc_offset_minutes: i32,
) -> (PixelRect, Vec<(f64, String)>) {
    let plot_h = region.height - title_h - bottom_h;
    let y_ticks = y.ticks((plot_h / 45).max(2) as usize, utc_offset_minutes);
    let left = 22 + ticks_width(&y_ticks) + 8;
    let right_pad = if legend_width > 0 {
        legend_width + 12
    } else {
        16
    };
    let plot = PixelRect {
        x: region.x + left,
        y: region.y + title_h,
        width: (region.width - left - right_pad).max(20),
        height: plot_h.max(20),
    };
    y.px_lo = f64::from(plot.bottom());
    y.px_hi = f64::from(plot.y);
    (plot, y_ticks)
}

/// Width of the widest tick label.
fn ticks_width(ticks: &[(f64, String)]) -> i32 {
    ticks
        .iter()
        .map(|(_, l)| text_width(l, TICK_PX))
        .fold(0.0, f64::max)
        .ceil() as i32
}
