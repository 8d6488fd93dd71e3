//! PNG output: a valid file whose text was rasterised with the embedded font.

use cairn_charts::{Chart, Format, Frame, LineChart, Theme, render, render_png};

use crate::fixtures::{loss_curve, series};

fn chunks(png: &[u8]) -> Vec<(String, usize)> {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let mut out = Vec::new();
    let mut i = 8;
    while i + 8 <= png.len() {
        let len = u32::from_be_bytes(png[i..i + 4].try_into().expect("4 bytes")) as usize;
        out.push((
            String::from_utf8_lossy(&png[i + 4..i + 8]).into_owned(),
            len,
        ));
        i += 12 + len;
    }
    assert_eq!(i, png.len(), "chunks end where the file ends");
    out
}

#[test]
fn png_is_well_formed_in_both_themes() {
    let mut chart = LineChart::new("loss");
    chart.smoothing = 0.6;
    chart.series.push(series(
        "a",
        "run a",
        loss_curve(1, 20_000, 0.2, Some(9000), 4.0),
    ));
    for theme in [Theme::Light, Theme::Dark] {
        let frame = Frame::new(800, 450).with_theme(theme);
        let png = render_png(&Chart::Line(chart.clone()), &frame)
            .expect("renders")
            .png;
        let kinds: Vec<String> = chunks(&png).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds, ["IHDR", "IDAT", "IEND"]);
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().expect("width")),
            800
        );
        assert_eq!(
            u32::from_be_bytes(png[20..24].try_into().expect("height")),
            450
        );
        assert!(
            png.len() < 800 * 450 * 3 / 4,
            "compressed: {} bytes",
            png.len()
        );
    }
    let by_name = Format::from_file_name("chart.PNG").expect("png by extension");
    let r = render(&Chart::Line(chart), &Frame::default(), by_name).expect("renders");
    assert_eq!(&r.bytes[1..4], b"PNG");
    assert_eq!(Format::from_file_name("chart.svg"), Some(Format::Svg));
    assert_eq!(Format::from_file_name("chart"), None);
}
