//! The drawing surface every chart draws on: a thin layer over a plotters `DrawingArea` in pixel
//! coordinates, with the few primitives charts need (polylines, polygons, rectangles, markers,
//! text). Charts do their own layout and coordinate mapping (see [`AxisMap`](crate::AxisMap)) so
//! that the map handed to the UI is exactly what was drawn, whatever the backend.
//!
//! Text is measured with [`text_width`], a table of DejaVu Sans advance widths, never with a font
//! loaded at run time: SVG output names the generic `sans-serif` family and needs no font to be
//! produced; PNG output rasterises with the DejaVu Sans subset embedded in this crate.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::ChartError;
use crate::theme::{Marker, Rgb};

/// Font sizes in pixels.
pub(crate) const TITLE_PX: f64 = 16.0;
pub(crate) const LABEL_PX: f64 = 12.0;
pub(crate) const TICK_PX: f64 = 11.0;

/// plotters writes `font-size = size / 1.24` into SVG; asking for `px * 1.24` gives `px`.
pub(crate) const SVG_FONT_SCALE: f64 = 1.24;

/// plotters' ab_glyph rasteriser takes the size as the font's ascent-to-descent height, which
/// for DejaVu Sans is 2384/2048 em; asking for `px * 1.164` gives an em of `px`, as in SVG.
pub(crate) const BITMAP_FONT_SCALE: f64 = 2384.0 / 2048.0;

/// Horizontal anchor of text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Align {
    Start,
    Middle,
    End,
}

/// A plotters drawing area used in pixel coordinates.
pub(crate) struct Canvas<DB: DrawingBackend> {
    area: DrawingArea<DB, Shift>,
    chart: &'static str,
    font_scale: f64,
}

impl<DB: DrawingBackend> std::fmt::Debug for Canvas<DB> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canvas")
            .field("chart", &self.chart)
            .finish()
    }
}

fn color(c: Rgb, alpha: f64) -> RGBAColor {
    RGBAColor(c.0, c.1, c.2, alpha)
}

impl<DB: DrawingBackend> Canvas<DB> {
    /// A canvas over `area` for drawing the chart kind `chart` (named in errors); `font_scale`
    /// turns pixel sizes into the backend's font sizes.
    pub(crate) fn new(
        area: DrawingArea<DB, Shift>,
        chart: &'static str,
        font_scale: f64,
    ) -> Canvas<DB> {
        Canvas {
            area,
            chart,
            font_scale,
        }
    }

    /// The canvas width in pixels.
    pub(crate) fn width(&self) -> i32 {
        self.area.dim_in_pixel().0 as i32
    }

    fn fail<E: std::error::Error + Send + Sync>(
        &self,
    ) -> impl Fn(DrawingAreaErrorKind<E>) -> ChartError + '_ {
        move |e| ChartError::Draw {
            chart: self.chart,
            message: e.to_string(),
        }
    }

    pub(crate) fn fill(&self, c: Rgb) -> Result<(), ChartError> {
        self.area.fill(&color(c, 1.0)).map_err(self.fail())
    }

    /// A polyline; consecutive duplicate points should already be gone.
    pub(crate) fn polyline(
        &self,
        points: Vec<(i32, i32)>,
        c: Rgb,
        alpha: f64,
        width: u32,
    ) -> Result<(), ChartError> {
        if points.is_empty() {
            return Ok(());
        }
        let style = ShapeStyle {
            color: color(c, alpha),
            filled: false,
            stroke_width: width,
        };
        self.area
            .draw(&PathElement::new(points, style))
            .map_err(self.fail())
    }

    pub(crate) fn polygon(
        &self,
        points: Vec<(i32, i32)>,
        c: Rgb,
        alpha: f64,
    ) -> Result<(), ChartError> {
        if points.len() < 3 {
            return Ok(());
        }
        self.area
            .draw(&Polygon::new(points, color(c, alpha).filled()))
            .map_err(self.fail())
    }

    pub(crate) fn rect(
        &self,
        (x0, y0): (i32, i32),
        (x1, y1): (i32, i32),
        c: Rgb,
        alpha: f64,
        filled: bool,
    ) -> Result<(), ChartError> {
        let style = ShapeStyle {
            color: color(c, alpha),
            filled,
            stroke_width: 1,
        };
        self.area
            .draw(&Rectangle::new([(x0, y0), (x1, y1)], style))
            .map_err(self.fail())
    }

    pub(crate) fn line(
        &self,
        a: (i32, i32),
        b: (i32, i32),
        c: Rgb,
        alpha: f64,
    ) -> Result<(), ChartError> {
        self.polyline(vec![a, b], c, alpha, 1)
    }

    /// A marker of half-size `r` centred on `(x, y)`.
    pub(crate) fn marker(
        &self,
        m: Marker,
        (x, y): (i32, i32),
        r: i32,
        c: Rgb,
    ) -> Result<(), ChartError> {
        let fill = color(c, 1.0).filled();
        match m {
            Marker::Circle => self
                .area
                .draw(&Circle::new((x, y), r, fill))
                .map_err(self.fail()),
            Marker::Square => self.rect((x - r, y - r), (x + r, y + r), c, 1.0, true),
            Marker::TriangleUp => self.polygon(
                vec![(x, y - r - 1), (x + r + 1, y + r), (x - r - 1, y + r)],
                c,
                1.0,
            ),
            Marker::TriangleDown => self.polygon(
                vec![(x, y + r + 1), (x + r + 1, y - r), (x - r - 1, y - r)],
                c,
                1.0,
            ),
            Marker::Diamond => self.polygon(
                vec![
                    (x, y - r - 1),
                    (x + r + 1, y),
                    (x, y + r + 1),
                    (x - r - 1, y),
                ],
                c,
                1.0,
            ),
            Marker::Cross => {
                self.polyline(vec![(x - r, y - r), (x + r, y + r)], c, 1.0, 2)?;
                self.polyline(vec![(x - r, y + r), (x + r, y - r)], c, 1.0, 2)
            }
            Marker::Plus => {
                self.polyline(vec![(x - r - 1, y), (x + r + 1, y)], c, 1.0, 2)?;
                self.polyline(vec![(x, y - r - 1), (x, y + r + 1)], c, 1.0, 2)
            }
        }
    }

    /// Text whose anchor point is `(x, y)`: horizontally per `align`, vertically centred.
    /// `vertical` rotates it to read bottom to top (a y axis title).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn text(
        &self,
        s: &str,
        (x, y): (i32, i32),
        size_px: f64,
        c: Rgb,
        align: Align,
        bold: bool,
        vertical: bool,
    ) -> Result<(), ChartError> {
        if s.is_empty() {
            return Ok(());
        }
        let h = match align {
            Align::Start => HPos::Left,
            Align::Middle => HPos::Center,
            Align::End => HPos::Right,
        };
        let weight = if bold {
            FontStyle::Bold
        } else {
            FontStyle::Normal
        };
        let mut font = FontDesc::new(FontFamily::SansSerif, size_px * self.font_scale, weight);
        if vertical {
            font = font.transform(FontTransform::Rotate270);
        }
        let style = font.color(&color(c, 1.0)).pos(Pos::new(h, VPos::Center));
        self.area
            .draw(&Text::new(s.to_owned(), (x, y), style))
            .map_err(self.fail())
    }

    pub(crate) fn present(&self) -> Result<(), ChartError> {
        self.area.present().map_err(self.fail())
    }
}

/// The width in pixels of `s` set in DejaVu Sans at `size_px` (advance widths per 1000 em of
/// the printable ASCII range; others count as an average letter).
pub(crate) fn text_width(s: &str, size_px: f64) -> f64 {
    // DejaVu Sans advances for ' ' (0x20) to '~' (0x7e), in 1/1000 em.
    const ADVANCE: [u16; 95] = [
        318, 401, 460, 838, 636, 950, 780, 275, 390, 390, 500, 838, 318, 361, 318,
        337, // ' '..'/'
        636, 636, 636, 636, 636, 636, 636, 636, 636, 636, 337, 337, 838, 838, 838,
        531, // '0'..'?'
        1000, 684, 686, 698, 770, 632, 575, 775, 752, 295, 295, 656, 557, 863, 748,
        787, // '@'..'O'
        603, 787, 695, 635, 611, 732, 684, 989, 685, 611, 685, 390, 337, 390, 838,
        500, // 'P'..'_'
        500, 613, 635, 550, 635, 615, 352, 635, 634, 278, 278, 579, 278, 974, 634,
        612, // '`'..'o'
        635, 635, 411, 521, 392, 634, 592, 818, 592, 592, 525, 636, 337, 636, 838, // 'p'..'~'
    ];
    let em: u32 = s
        .chars()
        .map(|c| {
            let i = c as usize;
            if (0x20..0x7f).contains(&i) {
                u32::from(ADVANCE[i - 0x20])
            } else {
                620
            }
        })
        .sum();
    f64::from(em) / 1000.0 * size_px
}

/// `s` cut to fit `max_px` at `size_px`, with an ellipsis where it was cut.
pub(crate) fn fit_text(s: &str, size_px: f64, max_px: f64) -> String {
    if text_width(s, size_px) <= max_px {
        return s.to_owned();
    }
    let ellipsis = text_width("…", size_px);
    let mut out = String::new();
    let mut width = 0.0;
    for c in s.chars() {
        let w = text_width(c.encode_utf8(&mut [0; 4]), size_px);
        if width + w + ellipsis > max_px {
            break;
        }
        width += w;
        out.push(c);
    }
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_measured_and_cut() {
        assert!((text_width("0", 10.0) - 6.36).abs() < 1e-9);
        let cut = fit_text("a-very-long-run-name-that-does-not-fit", 12.0, 80.0);
        assert!(cut.ends_with('…'));
        assert!(text_width(&cut, 12.0) <= 80.0 + 1e-9);
        assert_eq!(fit_text("short", 12.0, 80.0), "short");
    }
}
