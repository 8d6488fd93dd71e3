//! Colours and marker shapes: the Okabe–Ito colour-blind-safe palette (ordered per theme so the
//! first colours have the best contrast on its background), viridis for values on a colour
//! scale, and marker shapes that tell apart runs sharing a colour.

use serde::{Deserialize, Serialize};

/// Light (white background) or dark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Theme {
    #[default]
    Light,
    Dark,
}

impl Theme {
    pub(crate) fn palette(self) -> &'static Palette {
        match self {
            Theme::Light => &LIGHT,
            Theme::Dark => &DARK,
        }
    }
}

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    /// `#rrggbb`, as the chart map and HTML report carry colours.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }

    fn mix(self, other: Rgb, t: f64) -> Rgb {
        let m = |a: u8, b: u8| (f64::from(a) + (f64::from(b) - f64::from(a)) * t).round() as u8;
        Rgb(m(self.0, other.0), m(self.1, other.1), m(self.2, other.2))
    }
}

/// The shape drawn at the end of a curve and in its legend entry. With more runs than colours,
/// run `i` gets colour `i % colours` and shape `i / colours`, so 56 runs stay distinguishable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub enum Marker {
    Circle,
    Square,
    TriangleUp,
    Diamond,
    TriangleDown,
    Cross,
    Plus,
}

const MARKERS: [Marker; 7] = [
    Marker::Circle,
    Marker::Square,
    Marker::TriangleUp,
    Marker::Diamond,
    Marker::TriangleDown,
    Marker::Cross,
    Marker::Plus,
];

/// Everything a chart colours.
#[derive(Debug)]
pub(crate) struct Palette {
    pub(crate) background: Rgb,
    pub(crate) text: Rgb,
    pub(crate) muted: Rgb,
    pub(crate) grid: Rgb,
    pub(crate) axis: Rgb,
    /// Non-finite markers and other warnings.
    pub(crate) alert: Rgb,
    /// Lines whose colour value is unknown.
    pub(crate) missing: Rgb,
    pub(crate) series: [Rgb; 8],
}

impl Palette {
    /// Colour and marker of the `i`-th series.
    pub(crate) fn style(&self, i: usize) -> (Rgb, Marker) {
        let n = self.series.len();
        (self.series[i % n], MARKERS[(i / n) % MARKERS.len()])
    }
}

// Okabe & Ito (2008), "Color Universal Design"; black is replaced by a neutral grey that reads
// on both backgrounds, and yellow comes last (weakest contrast on white).
const LIGHT: Palette = Palette {
    background: Rgb(255, 255, 255),
    text: Rgb(33, 37, 41),
    muted: Rgb(90, 98, 106),
    grid: Rgb(230, 232, 235),
    axis: Rgb(160, 166, 172),
    alert: Rgb(213, 94, 0),
    missing: Rgb(170, 170, 170),
    series: [
        Rgb(0, 114, 178),   // blue
        Rgb(230, 159, 0),   // orange
        Rgb(0, 158, 115),   // bluish green
        Rgb(204, 121, 167), // reddish purple
        Rgb(86, 180, 233),  // sky blue
        Rgb(213, 94, 0),    // vermillion
        Rgb(100, 100, 100), // grey
        Rgb(240, 228, 66),  // yellow
    ],
};

const DARK: Palette = Palette {
    background: Rgb(24, 26, 30),
    text: Rgb(226, 228, 231),
    muted: Rgb(160, 166, 174),
    grid: Rgb(52, 56, 62),
    axis: Rgb(100, 106, 114),
    alert: Rgb(240, 228, 66),
    missing: Rgb(110, 110, 110),
    series: [
        Rgb(86, 180, 233),  // sky blue
        Rgb(230, 159, 0),   // orange
        Rgb(0, 158, 115),   // bluish green
        Rgb(240, 228, 66),  // yellow
        Rgb(204, 121, 167), // reddish purple
        Rgb(213, 94, 0),    // vermillion
        Rgb(200, 200, 200), // light grey
        Rgb(0, 114, 178),   // blue (weakest on dark)
    ],
};

/// Viridis (perceptually uniform, colour-blind safe) at `t` in `0..=1`.
pub(crate) fn viridis(t: f64) -> Rgb {
    const STOPS: [Rgb; 9] = [
        Rgb(68, 1, 84),
        Rgb(71, 44, 122),
        Rgb(59, 81, 139),
        Rgb(44, 113, 142),
        Rgb(33, 144, 141),
        Rgb(39, 173, 129),
        Rgb(92, 200, 99),
        Rgb(170, 220, 50),
        Rgb(253, 231, 37),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * (STOPS.len() - 1) as f64;
    let i = (x.floor() as usize).min(STOPS.len() - 2);
    STOPS[i].mix(STOPS[i + 1], x - i as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifty_six_series_have_distinct_styles() {
        let styles: std::collections::BTreeSet<_> = (0..56)
            .map(|i| {
                let (c, m) = LIGHT.style(i);
                (c.hex(), format!("{m:?}"))
            })
            .collect();
        assert_eq!(styles.len(), 56);
        assert_eq!(viridis(0.0).hex(), "#440154");
        assert_eq!(viridis(1.0).hex(), "#fde725");
    }
}
