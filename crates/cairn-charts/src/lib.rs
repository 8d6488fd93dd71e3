//! Cairn's charts: pure functions from metric series (or runs) and a chart spec to SVG or PNG,
//! drawn with plotters, plus a map of what was drawn for an interactive UI.
//!
//! What this crate is:
//! - [`render_svg`] / [`render_png`] / [`render`]: a [`Chart`] and a [`Frame`] (size, theme,
//!   UTC offset) in; the image and a serialisable [`ChartMap`] out.
//! - Line charts ([`LineChart`]) of one metric for one or many runs, x by step, wall time,
//!   relative time or another metric ([`pair_by_step`]); linear or log axes; EMA smoothing over a
//!   faint raw curve; groups ([`Series::group`], [`group_key`]) drawn as a mean with a min–max or
//!   ±std band; NaN/±inf drawn as gaps and marked along the bottom of the plot.
//! - No spike is ever lost: each series is reduced to one bucket per pixel column (its first,
//!   min, max and last value) and drawn as the polyline through them (M4), which looks exactly
//!   like the full-resolution curve. Callers pass buckets (from `MetricStore::downsample`, asked
//!   for [`Frame::width`] buckets over the range drawn) or raw points ([`downsample`] gives the
//!   same guarantee).
//! - Comparison views: [`ParallelChart`] (params → metric), [`ScatterChart`] (a param against a
//!   metric, with an optional frontier line), [`BarChart`] (summary metrics across runs),
//!   [`SystemPanel`] (CPU/GPU/memory, keys sorted by [`system_groups`]), [`StackedChart`]
//!   (stacked columns: spend per period by family), and the HTML run comparison
//!   [`report::compare_html`]. A line chart can shade stretches of x (idle GPU spans).
//! - Okabe–Ito colours (colour-blind safe; with more runs than colours a marker shape tells runs
//!   apart), viridis for colour scales, light and dark [`Theme`]s.
//!
//! What it is not: it does no IO and reads no catalog or metric store (`cairn-core` gathers the
//! data and calls in), keeps no state between calls except the embedded font registered with
//! plotters once, and depends on no system font: SVG text names the viewer's `sans-serif`, PNG
//! text is rasterised from a DejaVu Sans subset compiled into the crate.
//!
//! Zooming: the map says which x range is drawn and how pixels map to it ([`AxisMap`]); to zoom,
//! the UI asks for the same chart with `x_range` set, and the caller fills it with buckets for
//! that range only, so the zoomed chart is at full resolution again.

mod axis;
mod bars;
mod canvas;
mod downsample;
mod error;
mod fields;
mod frame;
mod line;
mod map;
mod parallel;
mod png;
mod render;
pub mod report;
mod scatter;
mod series;
mod stacked;
mod system;
mod theme;

pub use axis::{AxisMap, Unit};
pub use bars::{BarChart, BarRow};
pub use downsample::{downsample, pair_by_step, rebucket};
pub use error::ChartError;
pub use fields::{Cell, field_cell, field_text, group_key, natural_cmp};
pub use frame::Frame;
pub use map::{
    BarMap, BarPanelMap, BarsMap, ChartMap, ColumnMap, GroupColumnMap, GroupMap, LineMap,
    ParallelAxisMap, ParallelMap, PixelRect, RowMap, ScatterMap, ScatterPointMap, SeriesMap,
    StackedColumnMap, StackedMap, StackedSeriesMap, SystemMap,
};
pub use parallel::{ParallelChart, ParallelRow};
pub use render::{Chart, Format, PngChart, Rendered, SvgChart, render, render_png, render_svg};
pub use scatter::{ScatterChart, ScatterPoint};
pub use series::{Band, Bucket, LineChart, Point, Samples, Scale, Series, XAxis};
pub use stacked::{StackedChart, StackedSeries};
pub use system::{SystemGroup, SystemPanel, system_groups};
pub use theme::{Marker, Rgb, Theme};
