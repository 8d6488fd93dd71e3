//! What a line chart is drawn from: points or buckets in the chart's own x unit, one [`Series`]
//! per run and metric.
//!
//! These types deliberately mirror `cairn_metrics::{Point, Bucket}` without depending on the
//! storage crate: x is an `f64` in whatever unit the chart's [`XAxis`] says (a step, a wall-clock
//! millisecond, seconds since the run started, or another metric's value), so one renderer serves
//! every axis choice and the caller decides how a stored step or timestamp becomes an x.

use serde::{Deserialize, Serialize};

/// One raw value of a series.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Position on the x axis, in the unit of the chart's [`XAxis`].
    pub x: f64,
    /// The value; NaN and ±inf are drawn as gaps and marked, never dropped silently.
    pub y: f64,
}

/// The points of a series whose x falls in one slice of the x range, summarised so that a chart
/// never needs every point: `min`/`max` envelope every finite value (spikes survive any amount of
/// downsampling), `first`/`last` keep the line's shape, `nonfinite` counts NaN/±inf values.
///
/// Field for field this is `cairn_metrics::Bucket` with its steps turned into x values, so the
/// store's downsampled buckets feed a chart without a copy of the data in between.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Lowest x of the points in the bucket.
    pub x_lo: f64,
    /// Highest x of the points in the bucket.
    pub x_hi: f64,
    /// Number of points, finite or not.
    pub count: u64,
    /// Smallest finite value, NaN if none is finite.
    pub min: f64,
    /// Largest finite value, NaN if none is finite.
    pub max: f64,
    /// Value of the first point (in append order).
    pub first: f64,
    /// Value of the last point (in append order).
    pub last: f64,
    /// Number of NaN or infinite values.
    pub nonfinite: u64,
}

impl Bucket {
    /// A bucket holding exactly one point.
    pub fn of_point(p: Point) -> Bucket {
        let finite = p.y.is_finite();
        let v = if finite { p.y } else { f64::NAN };
        Bucket {
            x_lo: p.x,
            x_hi: p.x,
            count: 1,
            min: v,
            max: v,
            first: p.y,
            last: p.y,
            nonfinite: u64::from(!finite),
        }
    }

    /// Whether at least one value of the bucket is finite.
    pub fn has_finite(&self) -> bool {
        self.min.is_finite() && self.max.is_finite()
    }
}

/// The data of one series, as the caller has it.
#[derive(Debug, Clone, PartialEq)]
pub enum Samples {
    /// Buckets already downsampled, e.g. by `MetricStore::downsample`. Ask for at least
    /// [`Frame::width`](crate::Frame::width) buckets over the range drawn so that every pixel
    /// column gets its own; coarser buckets are still drawn, conservatively (a bucket spanning
    /// several columns puts its envelope into all of them).
    Buckets(Vec<Bucket>),
    /// Raw points in any order; the chart downsamples them to pixel columns itself with
    /// [`downsample`](crate::downsample), which keeps the same min/max guarantee.
    Points(Vec<Point>),
}

/// One curve: a run's metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Stable identifier the UI uses to toggle the curve (the run id).
    pub id: String,
    /// What the legend shows (the run name).
    pub label: String,
    /// The value of the group-by field for this run (see [`group_key`](crate::group_key));
    /// `None` when the chart is not grouped. Runs whose field is missing form their own group
    /// only if the caller gives them one (e.g. `"(none)"`).
    pub group: Option<String>,
    /// The data.
    pub samples: Samples,
}

impl Series {
    /// An ungrouped series.
    pub fn new(id: impl Into<String>, label: impl Into<String>, samples: Samples) -> Series {
        Series {
            id: id.into(),
            label: label.into(),
            group: None,
            samples,
        }
    }

    /// The same series in group `group`.
    pub fn in_group(mut self, group: impl Into<String>) -> Series {
        self.group = Some(group.into());
        self
    }
}

/// What the x axis measures. The caller converts stored steps and timestamps into x values:
/// `Step` takes the step, `WallTime` the timestamp in ms since the Unix epoch, `RelativeTime` the
/// seconds since the run started, `Metric` the value of another metric at the same step (see
/// [`pair_by_step`](crate::pair_by_step)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "by", content = "metric")]
pub enum XAxis {
    /// Training step.
    Step,
    /// Wall-clock time, milliseconds since the Unix epoch (labelled in the frame's UTC offset).
    WallTime,
    /// Seconds since the run started.
    RelativeTime,
    /// The value of another metric, named here.
    Metric(String),
}

impl XAxis {
    /// Parses the CLI's `--x` argument: `step`, `time` (wall), `relative`, or a metric key.
    pub fn parse(arg: &str) -> XAxis {
        match arg {
            "step" => XAxis::Step,
            "time" | "wall" | "wall_time" => XAxis::WallTime,
            "relative" | "relative_time" => XAxis::RelativeTime,
            other => XAxis::Metric(other.to_owned()),
        }
    }

    pub(crate) fn title(&self) -> String {
        match self {
            XAxis::Step => "step".to_owned(),
            XAxis::WallTime => "time".to_owned(),
            XAxis::RelativeTime => "time since start".to_owned(),
            XAxis::Metric(m) => m.clone(),
        }
    }
}

/// How values map to pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum Scale {
    /// Proportional.
    #[default]
    Linear,
    /// Base-10 logarithmic; values <= 0 cannot be placed and are left out (not marked).
    Log,
}

/// The band drawn around a group's mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Band {
    /// From the smallest to the largest value of any run of the group (contains every spike).
    #[default]
    MinMax,
    /// Mean ± one standard deviation of the runs' values.
    StdDev,
}

/// A line chart of one metric over one or many runs.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    /// Shown above the plot; `None` shows the metric name.
    pub title: Option<String>,
    /// The metric drawn (the y axis title).
    pub metric: String,
    /// What x measures.
    pub x: XAxis,
    /// Linear or log x (log only makes sense for `XAxis::Metric` or steps).
    pub x_scale: Scale,
    /// Linear or log y.
    pub y_scale: Scale,
    /// EMA weight in `0.0..1.0` (TensorBoard's slider): 0 draws the raw curve only; otherwise
    /// the smoothed curve is drawn over a faint raw one.
    pub smoothing: f64,
    /// The band around a group's mean, when series are grouped.
    pub band: Band,
    /// The x range drawn (zoom); `None`: everything.
    pub x_range: Option<(f64, f64)>,
    /// The y range drawn; `None`: every finite value of the x range, spikes included.
    pub y_range: Option<(f64, f64)>,
    /// The field the series were grouped by (`params.optimizer`), shown as the legend title.
    pub group_by: Option<String>,
    /// Stretches of x shaded behind the curves (`[lo, hi)`, in the x unit): a GPU's idle
    /// spans on its utilisation chart.
    pub shade: Vec<(f64, f64)>,
    /// The curves.
    pub series: Vec<Series>,
}

impl LineChart {
    /// A chart of `metric` by step, linear, unsmoothed, with no series yet.
    pub fn new(metric: impl Into<String>) -> LineChart {
        LineChart {
            title: None,
            metric: metric.into(),
            x: XAxis::Step,
            x_scale: Scale::Linear,
            y_scale: Scale::Linear,
            smoothing: 0.0,
            band: Band::MinMax,
            x_range: None,
            y_range: None,
            group_by: None,
            shade: Vec::new(),
            series: Vec::new(),
        }
    }

    /// Whether any series has a group, i.e. the chart draws group means and bands.
    pub fn is_grouped(&self) -> bool {
        self.series.iter().any(|s| s.group.is_some())
    }
}
