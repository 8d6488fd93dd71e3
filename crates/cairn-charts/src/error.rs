//! The one error type of this crate.

/// Why a chart could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChartError {
    /// The canvas is smaller than the smallest chart that stays legible, or absurdly large.
    #[error(
        "chart size {width}x{height} px is out of bounds ({min_width}x{min_height} to {max_side}x{max_side})"
    )]
    Size {
        width: u32,
        height: u32,
        min_width: u32,
        min_height: u32,
        max_side: u32,
    },
    /// A field of the chart spec holds a value the chart cannot use.
    #[error("chart spec: {field} = {value}: {reason}")]
    Spec {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// plotters reported an error while drawing.
    #[error("drawing the {chart} chart failed: {message}")]
    Draw {
        chart: &'static str,
        message: String,
    },
    /// The embedded font could not be parsed (a broken build, not bad input).
    #[error("the embedded font {name} could not be loaded")]
    Font { name: &'static str },
}
