//! Bytes per point of sealed chunks: a real training log from a GPU box and a synthetic
//! float32 loss curve must both stay within 8 bytes per point (chunk data + block summaries).

use std::path::PathBuf;

use cairn_metrics::{MetricStore, Point};

use crate::{RUN, Rng, loss_curve, same_points};

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/gpu-box/metrics.csv")
}

/// `step,unix_ms,loss,acc,lr` → three series.
fn read_fixture() -> Vec<(&'static str, Vec<Point>)> {
    let text = std::fs::read_to_string(fixture()).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("step,unix_ms,loss,acc,lr"));
    let mut series: Vec<(&'static str, Vec<Point>)> = vec![
        ("train/loss", vec![]),
        ("train/acc", vec![]),
        ("train/lr", vec![]),
    ];
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 5, "{line}");
        let step: i64 = fields[0].parse().unwrap();
        let ts_ms: i64 = fields[1].parse().unwrap();
        for (s, field) in series.iter_mut().zip(&fields[2..]) {
            s.1.push(Point {
                step,
                ts_ms,
                value: field.parse().unwrap(),
            });
        }
    }
    series
}

#[test]
fn real_training_log_fits_in_8_bytes_per_point() {
    let series = read_fixture();
    assert_eq!(series[0].1.len(), 300);
    let mut store = MetricStore::open_in_memory().unwrap();
    let batches: Vec<(&str, &[Point])> = series.iter().map(|(k, p)| (*k, p.as_slice())).collect();
    store.append_batch(RUN, &batches).unwrap();
    store.seal_run(RUN).unwrap();
    let stats = store.storage_stats().unwrap();
    assert_eq!((stats.points, stats.tail_points), (900, 0));
    let per_point = stats.chunk_bytes as f64 / stats.points as f64;
    assert!(per_point <= 8.0, "{per_point:.2} bytes/point");
    for (key, points) in &series {
        assert!(
            same_points(&store.history(RUN, key).unwrap(), points),
            "{key}"
        );
    }
}

#[test]
fn synthetic_float32_loss_curve_fits_in_8_bytes_per_point() {
    let points = loss_curve(0, 100_000, &mut Rng(42));
    let mut store = MetricStore::open_in_memory().unwrap();
    for batch in points.chunks(10_000) {
        store.append(RUN, "train/loss", batch).unwrap();
    }
    store.seal_run(RUN).unwrap();
    let stats = store.storage_stats().unwrap();
    assert_eq!(stats.points, 100_000);
    let per_point = stats.chunk_bytes as f64 / stats.points as f64;
    assert!(per_point <= 8.0, "{per_point:.2} bytes/point");
    assert!(same_points(
        &store.history(RUN, "train/loss").unwrap(),
        &points
    ));
}
