//! The chart map: what the UI needs next to a rendered chart to make it interactive. It says
//! where the plot is on the canvas and how pixels map to data ([`AxisMap`]), and carries the
//! downsampled data exactly as drawn, so the UI can show the values under the pointer, toggle
//! runs (by their ids) and zoom (by asking for the chart again with a narrower `x_range`, which
//! the caller fills with buckets at full resolution for that range).
//!
//! Everything serialises with serde; values that may be missing are `Option`s (`null` in JSON)
//! rather than NaN, which JSON cannot carry.

use serde::{Deserialize, Serialize};

use crate::axis::AxisMap;
use crate::theme::Marker;

/// A rectangle on the canvas, in pixels from its top left corner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct PixelRect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

impl PixelRect {
    pub(crate) fn right(&self) -> i32 {
        self.x + self.width
    }

    pub(crate) fn bottom(&self) -> i32 {
        self.y + self.height
    }

    /// Whether the pixel `(x, y)` is inside.
    pub fn contains(&self, x: i32, y: i32) -> bool {
        x >= self.x && x < self.right() && y >= self.y && y < self.bottom()
    }
}

/// The map of any chart, tagged by kind (`{"kind": "line", ...}` in JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum ChartMap {
    Line(LineMap),
    Parallel(ParallelMap),
    Scatter(ScatterMap),
    Bars(BarsMap),
    System(SystemMap),
    Stacked(StackedMap),
}

/// A stacked bar chart as drawn: a column per category, a segment per series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct StackedMap {
    pub plot: PixelRect,
    pub y: AxisMap,
    /// The series, bottom of each stack first.
    pub series: Vec<StackedSeriesMap>,
    pub columns: Vec<StackedColumnMap>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct StackedSeriesMap {
    pub id: String,
    pub label: String,
    pub color: String,
}

/// One column: its category, where it is drawn, and each series' value (in series order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct StackedColumnMap {
    pub label: String,
    pub px_lo: i32,
    pub px_hi: i32,
    pub values: Vec<f64>,
    pub total: f64,
}

/// A line chart as drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct LineMap {
    /// The plot area; column `i` of every series is the pixel column `plot.x + i`.
    pub plot: PixelRect,
    pub x: AxisMap,
    pub y: AxisMap,
    /// The EMA weight applied (0: none).
    pub smoothing: f64,
    /// Every series, drawn or (when grouped) folded into its group.
    pub series: Vec<SeriesMap>,
    /// The groups drawn, empty when the chart is not grouped.
    pub groups: Vec<GroupMap>,
    /// Legend entries that did not fit and were summarised as "+N more".
    pub legend_hidden: usize,
}

/// One series as drawn: its style and its per-pixel-column data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct SeriesMap {
    pub id: String,
    pub label: String,
    pub group: Option<String>,
    /// `#rrggbb`.
    pub color: String,
    pub marker: Marker,
    /// Points in the x range drawn.
    pub points: u64,
    /// NaN/±inf values in the x range drawn.
    pub nonfinite: u64,
    /// Non-empty columns in x order.
    pub columns: Vec<ColumnMap>,
}

/// What one pixel column of a series holds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ColumnMap {
    /// Column index: pixel column `plot.x + i`.
    pub i: u32,
    /// Lowest and highest x of the points in the column.
    pub x_lo: f64,
    pub x_hi: f64,
    pub count: u64,
    /// Smallest and largest finite value (`None`: no finite value).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub max: Option<f64>,
    /// The first and last value, where finite.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub first: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub last: Option<f64>,
    /// The smoothed value drawn, when smoothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub smoothed: Option<f64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub nonfinite: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One group of a grouped line chart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct GroupMap {
    pub key: String,
    pub color: String,
    /// Ids of the runs in the group.
    pub runs: Vec<String>,
    pub columns: Vec<GroupColumnMap>,
}

/// One pixel column of a group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct GroupColumnMap {
    pub i: u32,
    /// Runs with a value in this column.
    pub runs: u32,
    pub mean: f64,
    /// The band drawn (min–max or mean ± std).
    pub lo: f64,
    pub hi: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub smoothed: Option<f64>,
}

/// A parallel-coordinates chart as drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ParallelMap {
    pub plot: PixelRect,
    pub axes: Vec<ParallelAxisMap>,
    pub rows: Vec<RowMap>,
}

/// One vertical axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ParallelAxisMap {
    pub name: String,
    /// The axis' pixel column.
    pub px: i32,
    /// Numeric axes map values with this (a vertical [`AxisMap`]); categorical ones have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "ts", ts(optional))]
    pub numeric: Option<AxisMap>,
    /// Categorical axes: the categories, bottom to top, and their pixel rows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<(String, i32)>,
    /// The pixel row where runs without a value cross the axis.
    pub missing_py: i32,
}

/// One run's line across the axes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct RowMap {
    pub id: String,
    pub label: String,
    pub color: String,
    /// The vertex on each axis.
    pub points: Vec<(i32, i32)>,
}

/// A scatter chart as drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ScatterMap {
    pub plot: PixelRect,
    /// `None` for a categorical x axis (see `categories`).
    pub x: Option<AxisMap>,
    pub y: AxisMap,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<(String, i32)>,
    pub points: Vec<ScatterPointMap>,
    /// Ids of the points the frontier line joins.
    #[serde(default)]
    pub frontier: Vec<String>,
}

/// One run's point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct ScatterPointMap {
    pub id: String,
    pub label: String,
    pub color: String,
    pub px: (i32, i32),
    /// The x value as text (numbers as logged).
    pub x: String,
    pub y: f64,
}

/// A bar chart as drawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct BarsMap {
    /// One panel per metric.
    pub panels: Vec<BarPanelMap>,
    /// Rows (runs) that did not fit, summarised as "+N more".
    pub hidden: usize,
}

/// The bars of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct BarPanelMap {
    pub metric: String,
    pub plot: PixelRect,
    pub x: AxisMap,
    pub bars: Vec<BarMap>,
}

/// One bar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct BarMap {
    pub id: String,
    pub label: String,
    pub color: String,
    pub rect: PixelRect,
    pub value: f64,
}

/// A system-metrics panel: a grid of line charts sharing the x axis kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct SystemMap {
    pub panels: Vec<LineMap>,
}
