//! The entry points: a [`Chart`] and a [`Frame`] in, SVG or PNG bytes and the [`ChartMap`] out.

use std::sync::OnceLock;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bars::BarChart;
use crate::canvas::{BITMAP_FONT_SCALE, Canvas, SVG_FONT_SCALE};
use crate::error::ChartError;
use crate::frame::Frame;
use crate::map::{ChartMap, PixelRect};
use crate::parallel::ParallelChart;
use crate::scatter::ScatterChart;
use crate::series::LineChart;
use crate::stacked::StackedChart;
use crate::system::SystemPanel;
use crate::{bars, line, parallel, scatter, stacked, system};

/// DejaVu Sans, cut down to Latin-1 and a few symbols (see `assets/DejaVuSans-LICENSE.txt`),
/// used to rasterise PNG text. SVG output never needs it.
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Every kind of chart.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Chart {
    /// Curves of one metric over steps, time or another metric.
    Line(LineChart),
    /// Params (and metrics) of many runs as lines across vertical axes.
    Parallel(ParallelChart),
    /// One param or metric against another, a point per run.
    Scatter(ScatterChart),
    /// Summary metrics of runs as horizontal bars, a panel per metric.
    Bars(BarChart),
    /// A grid of line charts of system metrics (CPU, GPU, memory).
    System(SystemPanel),
    /// Columns of stacked segments: a value per category and series (spend per period, by
    /// family).
    Stacked(StackedChart),
}

impl Chart {
    fn kind(&self) -> &'static str {
        match self {
            Chart::Line(_) => "line",
            Chart::Parallel(_) => "parallel coordinates",
            Chart::Scatter(_) => "scatter",
            Chart::Bars(_) => "bar",
            Chart::System(_) => "system metrics",
            Chart::Stacked(_) => "stacked bar",
        }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// The format a file name asks for by its extension (`chart.svg`, `chart.PNG`).
    pub fn from_file_name(name: &str) -> Option<Format> {
        let ext = name.rsplit_once('.')?.1;
        if ext.eq_ignore_ascii_case("svg") {
            Some(Format::Svg)
        } else if ext.eq_ignore_ascii_case("png") {
            Some(Format::Png)
        } else {
            None
        }
    }
}

/// A rendered chart: the image and the map that makes it interactive.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// SVG text (UTF-8) or PNG bytes.
    pub bytes: Vec<u8>,
    pub format: Format,
    pub map: ChartMap,
}

/// A chart rendered as SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct SvgChart {
    pub svg: String,
    pub map: ChartMap,
}

/// A chart rendered as PNG.
#[derive(Debug, Clone, PartialEq)]
pub struct PngChart {
    pub png: Vec<u8>,
    pub map: ChartMap,
}

/// Renders `chart` as SVG. The SVG is self-contained: text is set in the viewer's `sans-serif`.
pub fn render_svg(chart: &Chart, frame: &Frame) -> Result<SvgChart, ChartError> {
    frame.check()?;
    let mut svg = String::with_capacity(64 * 1024);
    let map = {
        let backend = SVGBackend::with_string(&mut svg, (frame.width, frame.height));
        let cv = Canvas::new(backend.into_drawing_area(), chart.kind(), SVG_FONT_SCALE);
        let map = draw(&cv, chart, frame)?;
        cv.present()?;
        map
    };
    Ok(SvgChart { svg, map })
}

/// Renders `chart` as PNG, with text rasterised from the embedded font.
pub fn render_png(chart: &Chart, frame: &Frame) -> Result<PngChart, ChartError> {
    frame.check()?;
    register_font()?;
    let (w, h) = (frame.width, frame.height);
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    let map = {
        let backend = BitMapBackend::with_buffer(&mut pixels, (w, h));
        let cv = Canvas::new(backend.into_drawing_area(), chart.kind(), BITMAP_FONT_SCALE);
        let map = draw(&cv, chart, frame)?;
        cv.present()?;
        map
    };
    Ok(PngChart {
        png: crate::png::encode_rgb(&pixels, w, h),
        map,
    })
}

/// Renders `chart` in `format` (what `cairn plot -o FILE` needs).
pub fn render(chart: &Chart, frame: &Frame, format: Format) -> Result<Rendered, ChartError> {
    let (bytes, map) = match format {
        Format::Svg => {
            let r = render_svg(chart, frame)?;
            (r.svg.into_bytes(), r.map)
        }
        Format::Png => {
            let r = render_png(chart, frame)?;
            (r.png, r.map)
        }
    };
    Ok(Rendered { bytes, format, map })
}

/// plotters keeps fonts in a process-wide table; the embedded one is registered once as the
/// `sans-serif` family every chart uses.
fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
            && plotters::style::register_font("sans-serif", FontStyle::Bold, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ChartError::Font {
            name: "DejaVuSans-subset.ttf",
        })
    }
}

fn draw<DB: DrawingBackend>(
    cv: &Canvas<DB>,
    chart: &Chart,
    frame: &Frame,
) -> Result<ChartMap, ChartError> {
    cv.fill(frame.theme.palette().background)?;
    let region = PixelRect {
        x: 8,
        y: 6,
        width: frame.width as i32 - 16,
        height: frame.height as i32 - 12,
    };
    Ok(match chart {
        Chart::Line(c) => ChartMap::Line(line::draw(cv, c, frame, region)?),
        Chart::Parallel(c) => ChartMap::Parallel(parallel::draw(cv, c, frame, region)?),
        Chart::Scatter(c) => ChartMap::Scatter(scatter::draw(cv, c, frame, region)?),
        Chart::Bars(c) => ChartMap::Bars(bars::draw(cv, c, frame, region)?),
        Chart::System(c) => ChartMap::System(system::draw(cv, c, frame, region)?),
        Chart::Stacked(c) => ChartMap::Stacked(stacked::draw(cv, c, frame, region)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::{Point, Samples, Series};

    /// This test binary never renders a PNG, so no font is registered with plotters here: SVG
    /// output, text included, must not need one.
    #[test]
    fn svg_text_needs_no_font() {
        let mut chart = LineChart::new("loss & <accuracy>");
        let points = (0..100)
            .map(|i| Point {
                x: f64::from(i),
                y: f64::from(i % 7),
            })
            .collect();
        chart
            .series
            .push(Series::new("r", "run \"1\"", Samples::Points(points)));
        let svg = render_svg(&Chart::Line(chart), &Frame::default())
            .expect("renders")
            .svg;
        assert!(svg.contains("font-family=\"sans-serif\""));
        assert!(
            svg.contains("loss &amp; &lt;accuracy&gt;"),
            "text is escaped"
        );
        assert!(svg.contains("run &quot;1&quot;"));
    }
}
