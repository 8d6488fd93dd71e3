//! Chart rendering benchmarks (issue 5's targets, on 2 cores):
//! - 100 runs × 100,000 steps (10M points), downsampled and rendered to SVG at 1200 px: ≤ 200 ms;
//! - one 1M-point series: ≤ 50 ms;
//! - zoom into a 1% range of it at full resolution: ≤ 20 ms.
//!
//! Run with `cargo bench -p cairn-charts --bench render`. Each case runs a few times; the median
//! and the fastest are printed. Raw points are downsampled by the chart itself (the path with the
//! most work); the store's path, where `MetricStore::downsample` hands over buckets, is shown
//! separately as "from buckets" (render only).

use std::error::Error;
use std::io::Write;
use std::time::{Duration, Instant};

use cairn_charts::{
    Chart, Frame, LineChart, Point, Samples, Series, downsample, render_png, render_svg,
};

const RUNS: usize = 100;
const STEPS: usize = 100_000;
const WIDTH: u32 = 1200;
const HEIGHT: u32 = 600;

/// A noisy decaying loss curve with a spike, generated without a dependency.
fn curve(seed: u64, steps: usize) -> Vec<Point> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let spike = (seed as usize * 7919) % steps;
    (0..steps)
        .map(|i| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            let noise = (s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
            let t = i as f64 / steps as f64;
            let mut y = (0.2 + 2.3 * (-4.0 * t).exp()) * (0.85 + 0.3 * noise);
            if i == spike {
                y *= 5.0;
            }
            Point { x: i as f64, y }
        })
        .collect()
}

/// Runs `f` `n` times; returns (median, fastest) and the last result.
fn time<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, Duration, T) {
    let mut times = Vec::with_capacity(n);
    let mut last = None;
    for _ in 0..n {
        let start = Instant::now();
        let out = f();
        times.push(start.elapsed());
        last = Some(out);
    }
    times.sort();
    let out = last.expect("n >= 1");
    (times[n / 2], times[0], out)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut out = std::io::stdout().lock();
    let frame = Frame::new(WIDTH, HEIGHT);

    // 100 runs × 100k steps.
    let runs: Vec<Vec<Point>> = (0..RUNS as u64).map(|r| curve(r, STEPS)).collect();
    let mut chart = LineChart::new("loss");
    chart.series = runs
        .iter()
        .enumerate()
        .map(|(i, pts)| {
            Series::new(
                format!("r{i}"),
                format!("run-{i}"),
                Samples::Points(pts.clone()),
            )
        })
        .collect();
    let chart = Chart::Line(chart);
    let (median, best, svg) = time(5, || render_svg(&chart, &frame));
    let svg = svg?;
    writeln!(
        out,
        "100 runs x 100k steps (10M points) -> SVG {WIDTH} px: median {:.1} ms, best {:.1} ms ({} KB SVG) [target <= 200 ms]",
        ms(median),
        ms(best),
        svg.svg.len() / 1024
    )?;

    // The same from buckets, as the store hands them over (one per column).
    let mut from_buckets = LineChart::new("loss");
    from_buckets.series = runs
        .iter()
        .enumerate()
        .map(|(i, pts)| {
            Series::new(
                format!("r{i}"),
                format!("run-{i}"),
                Samples::Buckets(downsample(pts, None, WIDTH as usize)),
            )
        })
        .collect();
    let from_buckets = Chart::Line(from_buckets);
    let (median, best, _) = time(5, || render_svg(&from_buckets, &frame));
    writeln!(
        out,
        "100 runs from 1200 buckets each -> SVG: median {:.1} ms, best {:.1} ms",
        ms(median),
        ms(best)
    )?;
    let (median, best, png) = time(3, || render_png(&from_buckets, &frame));
    writeln!(
        out,
        "100 runs from buckets -> PNG: median {:.1} ms, best {:.1} ms ({} KB PNG)",
        ms(median),
        ms(best),
        png?.png.len() / 1024
    )?;
    drop(runs);

    // One 1M-point series.
    let million = curve(7, 1_000_000);
    let mut one = LineChart::new("loss");
    one.smoothing = 0.6;
    one.series
        .push(Series::new("r", "run", Samples::Points(million.clone())));
    let one = Chart::Line(one);
    let (median, best, _) = time(9, || render_svg(&one, &frame));
    writeln!(
        out,
        "1 run x 1M points (EMA 0.6) -> SVG: median {:.2} ms, best {:.2} ms [target <= 50 ms]",
        ms(median),
        ms(best)
    )?;

    // Zoom into 1% of it at full resolution: the caller buckets the range (here from raw
    // points; the store decodes only the chunks overlapping it), the chart draws it.
    let (lo, hi) = (500_000.0, 509_999.0);
    let (median, best, zoomed) = time(15, || {
        let buckets = downsample(&million, Some((lo, hi)), WIDTH as usize);
        let mut zoom = LineChart::new("loss");
        zoom.smoothing = 0.6;
        zoom.x_range = Some((lo, hi));
        zoom.series
            .push(Series::new("r", "run", Samples::Buckets(buckets)));
        render_svg(&Chart::Line(zoom), &frame)
    });
    let zoomed = zoomed?;
    let points = match &zoomed.map {
        cairn_charts::ChartMap::Line(m) => m.series[0].points,
        _ => 0,
    };
    writeln!(
        out,
        "zoom to a 1% range ({points} points) at full resolution -> SVG: median {:.2} ms, best {:.2} ms [target <= 20 ms]",
        ms(median),
        ms(best)
    )?;

    // Downsampling alone, for reference.
    let (median, best, _) = time(9, || downsample(&million, None, WIDTH as usize));
    writeln!(
        out,
        "downsample 1M points to 1200 columns: median {:.2} ms, best {:.2} ms",
        ms(median),
        ms(best)
    )?;
    Ok(())
}
