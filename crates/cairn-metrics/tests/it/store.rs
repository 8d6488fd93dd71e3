//! Appending and reading back: tail rows and chunks, ordering, paging, summaries, batches.

use cairn_metrics::{CHUNK_POINTS, Error, MetricStore, Point};

use crate::{RUN, Rng, loss_curve, same_points};

fn p(step: i64, value: f64) -> Point {
    Point {
        step,
        ts_ms: 1_700_000_000_000 + step,
        value,
    }
}

#[test]
fn small_appends_stay_in_the_tail_until_a_chunk_is_full() {
    let mut store = MetricStore::open_in_memory().unwrap();
    let points = loss_curve(0, CHUNK_POINTS + 100, &mut Rng(1));
    for batch in points.chunks(100) {
        store.append(RUN, "loss", batch).unwrap();
    }
    let stats = store.storage_stats().unwrap();
    // Batches of 100 reach exactly 8200 > 8192: one chunk sealed, the rest in the tail.
    assert_eq!(stats.points, CHUNK_POINTS as u64);
    assert_eq!(stats.tail_points, 100);
    assert!(same_points(&store.history(RUN, "loss").unwrap(), &points));
}

#[test]
fn large_appends_write_chunks_and_keep_the_order() {
    let mut store = MetricStore::open_in_memory().unwrap();
    let points = loss_curve(0, 45_000, &mut Rng(2));
    // Mixed sizes: rows, a large batch merged with a tail, a short remainder.
    let mut at = 0;
    for size in [10, 500, 20_000, 7, 9_000, 3_000, 12_483] {
        store.append(RUN, "loss", &points[at..at + size]).unwrap();
        at += size;
    }
    assert_eq!(at, points.len());
    let stats = store.storage_stats().unwrap();
    assert_eq!(stats.points + stats.tail_points, 45_000);
    assert!(stats.tail_points < CHUNK_POINTS as u64);
    assert!(same_points(&store.history(RUN, "loss").unwrap(), &points));

    store.seal_run(RUN).unwrap();
    let stats = store.storage_stats().unwrap();
    assert_eq!((stats.points, stats.tail_points), (45_000, 0));
    assert!(same_points(&store.history(RUN, "loss").unwrap(), &points));
}

#[test]
fn repeated_steps_are_kept_in_append_order() {
    let mut store = MetricStore::open_in_memory().unwrap();
    // A run logs steps 0..1000, is resumed from the checkpoint at step 500 and logs 500..1500.
    let first: Vec<Point> = (0..1000).map(|s| p(s, 1.0)).collect();
    let resumed: Vec<Point> = (500..1500).map(|s| p(s, 2.0)).collect();
    store.append(RUN, "loss", &first).unwrap();
    store.append(RUN, "loss", &resumed).unwrap();
    let all: Vec<Point> = first.iter().chain(&resumed).copied().collect();
    assert!(same_points(&store.history(RUN, "loss").unwrap(), &all));
    let info = store.series_info(RUN, "loss").unwrap().unwrap();
    assert_eq!(info.count, 2000);
    assert_eq!(info.last.unwrap().step, 1499);

    // The same through chunks: big batches with steps going backwards.
    let mut big: Vec<Point> = (0..20_000).map(|s| p(s, s as f64)).collect();
    big.extend((5_000..15_000).map(|s| p(s, -(s as f64))));
    store.append(RUN, "resumed", &big).unwrap();
    store.seal_run(RUN).unwrap();
    assert!(same_points(&store.history(RUN, "resumed").unwrap(), &big));
    // Both points of a repeated step land in its bucket.
    let buckets = store
        .downsample(RUN, "resumed", Some((5_000, 5_000)), 1)
        .unwrap();
    assert_eq!(buckets.len(), 1);
    assert_eq!(buckets[0].count, 2);
    assert_eq!((buckets[0].min, buckets[0].max), (-5_000.0, 5_000.0));
    assert_eq!((buckets[0].first, buckets[0].last), (5_000.0, -5_000.0));
}

#[test]
fn history_pages_cross_chunk_and_tail_boundaries() {
    let mut store = MetricStore::open_in_memory().unwrap();
    let points = loss_curve(0, 3 * CHUNK_POINTS + 777, &mut Rng(3));
    store.append(RUN, "loss", &points[..20_000]).unwrap();
    store.append(RUN, "loss", &points[20_000..]).unwrap();
    for (offset, limit) in [
        (0, 10),
        (8_190, 5),
        (CHUNK_POINTS as u64 - 1, CHUNK_POINTS + 2),
        (20_000 - 3, 10),
        (points.len() as u64 - 5, 100),
        (points.len() as u64, 10),
        (0, usize::MAX),
        (u64::MAX, 10),
        (17, 0),
    ] {
        let page = store.history_page(RUN, "loss", offset, limit).unwrap();
        let from = (offset as usize).min(points.len());
        let to = from.saturating_add(limit).min(points.len());
        assert!(
            same_points(&page, &points[from..to]),
            "page {offset}+{limit}"
        );
    }
}

#[test]
fn a_history_read_chunk_by_chunk_is_the_whole_history_one_chunk_at_a_time() {
    let mut store = MetricStore::open_in_memory().unwrap();
    let points = loss_curve(0, 3 * CHUNK_POINTS + 777, &mut Rng(5));
    // Chunks of 8192, a short chunk of the 20,000-point append's remainder, then tail rows.
    store.append(RUN, "loss", &points[..20_000]).unwrap();
    store.append(RUN, "loss", &points[20_000..25_000]).unwrap();
    store.append(RUN, "loss", &points[25_000..]).unwrap();
    for start in [0u64, 1, 8_191, 8_192, 19_999, 20_000, 24_999, 25_000] {
        let mut from = start;
        let mut pieces = 0;
        let mut all = Vec::new();
        loop {
            let piece = store.history_chunk(RUN, "loss", from, u64::MAX).unwrap();
            if piece.is_empty() {
                break;
            }
            assert!(
                piece.len() <= CHUNK_POINTS,
                "a piece spans one chunk at most"
            );
            from += piece.len() as u64;
            all.extend(piece);
            pieces += 1;
        }
        assert!(same_points(&all, &points[start as usize..]), "from {start}");
        assert!(pieces <= 6, "from {start}: {pieces} pieces");
    }
    // `to` stops the read; past the end and out of range are empty.
    let capped = store.history_chunk(RUN, "loss", 10, 20).unwrap();
    assert!(same_points(&capped, &points[10..20]));
    assert!(
        store
            .history_chunk(RUN, "loss", points.len() as u64, u64::MAX)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .history_chunk(RUN, "loss", u64::MAX, u64::MAX)
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .history_chunk(RUN, "missing", 0, u64::MAX)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn values_round_trip_bit_exactly_through_rows_and_chunks() {
    let odd = [
        f64::NAN,
        f64::from_bits(0x7ff8_dead_beef_0001),
        f64::from_bits(0xfff0_0000_0000_0001),
        f64::INFINITY,
        f64::NEG_INFINITY,
        -0.0,
        0.0,
        f64::from_bits(1),
        f64::MAX,
        f64::MIN_POSITIVE,
    ];
    let points: Vec<Point> = (0..10_000)
        .map(|i| p(i, odd[i as usize % odd.len()]))
        .collect();
    let mut store = MetricStore::open_in_memory().unwrap();
    store.append(RUN, "rows", &points[..50]).unwrap();
    store.append(RUN, "chunks", &points).unwrap();
    assert!(same_points(
        &store.history(RUN, "rows").unwrap(),
        &points[..50]
    ));
    assert!(same_points(&store.history(RUN, "chunks").unwrap(), &points));
    let info = store.series_info(RUN, "chunks").unwrap().unwrap();
    assert_eq!(info.nonfinite, 5_000);
    assert_eq!((info.min, info.max), (Some(-0.0), Some(f64::MAX)));
    assert_eq!(
        info.last.unwrap().value.to_bits(),
        points[9_999].value.to_bits()
    );
}

#[test]
fn batches_of_several_series_and_summaries() {
    let mut store = MetricStore::open_in_memory().unwrap();
    let loss = [p(1, 0.5), p(2, 0.25)];
    let acc = [p(1, f64::NAN)];
    let lr = [p(1, 3e-4), p(2, 2e-4), p(3, 1e-4)];
    store
        .append_batch(
            RUN,
            &[
                ("loss", &loss),
                ("train/acc", &acc),
                ("lr", &lr),
                ("loss", &[p(3, 0.125)]),
            ],
        )
        .unwrap();
    let series = store.series(RUN).unwrap();
    let keys: Vec<&str> = series.iter().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["loss", "lr", "train/acc"]);
    assert_eq!(series[0].count, 3);
    assert_eq!((series[0].min, series[0].max), (Some(0.125), Some(0.5)));
    assert_eq!(series[0].last, Some(p(3, 0.125)));
    assert_eq!(
        (series[2].min, series[2].max, series[2].nonfinite),
        (None, None, 1)
    );
    assert!(
        store
            .series("ffffffffffffffffffffffffffffffff")
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.series_info(RUN, "missing").unwrap(), None);
    assert!(store.history(RUN, "missing").unwrap().is_empty());
    assert!(
        store
            .downsample(RUN, "missing", None, 10)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_failed_batch_leaves_nothing_behind() {
    let mut store = MetricStore::open_in_memory().unwrap();
    let err = store
        .append_batch(RUN, &[("loss", &[p(1, 1.0)]), ("", &[p(1, 1.0)])])
        .unwrap_err();
    assert!(matches!(err, Error::EmptyKey { .. }), "{err}");
    assert!(store.series(RUN).unwrap().is_empty());
    assert!(matches!(
        store.append("", "loss", &[p(1, 1.0)]),
        Err(Error::EmptyRun { .. })
    ));
    // Empty appends are no-ops and create nothing.
    store.append(RUN, "loss", &[]).unwrap();
    assert!(store.series(RUN).unwrap().is_empty());
}

#[test]
fn seal_run_only_touches_that_run() {
    let mut store = MetricStore::open_in_memory().unwrap();
    let other = "fedcba9876543210fedcba9876543210";
    store.append(RUN, "loss", &[p(1, 1.0), p(2, 2.0)]).unwrap();
    store.append(RUN, "acc", &[p(1, 0.5)]).unwrap();
    store.append(other, "loss", &[p(1, 1.0)]).unwrap();
    store.seal_run(RUN).unwrap();
    let stats = store.storage_stats().unwrap();
    assert_eq!((stats.points, stats.tail_points), (3, 1));
    assert!(stats.chunk_bytes > 0);
    // Appending after the seal starts a new tail after the sealed points.
    store.append(RUN, "loss", &[p(3, 3.0)]).unwrap();
    let h = store.history(RUN, "loss").unwrap();
    assert_eq!(h.iter().map(|p| p.step).collect::<Vec<_>>(), [1, 2, 3]);
    store.seal_run(RUN).unwrap();
    store.seal_run(RUN).unwrap(); // idempotent
    assert_eq!(store.storage_stats().unwrap().points, 4);
}

#[test]
fn only_short_remainders_of_large_appends_stay_as_rows() {
    let mut store = MetricStore::open_in_memory().unwrap();
    let points = loss_curve(0, 30_000, &mut Rng(4));
    let stats = |s: &MetricStore| {
        let st = s.storage_stats().unwrap();
        (st.points, st.tail_points)
    };
    // 10_000 = 8192 + 1808: the remainder is long enough to be a chunk of its own.
    store.append(RUN, "loss", &points[..10_000]).unwrap();
    assert_eq!(stats(&store), (10_000, 0));
    // 8_500 = 8192 + 308: the short remainder stays as rows.
    store.append(RUN, "loss", &points[10_000..18_500]).unwrap();
    assert_eq!(stats(&store), (18_192, 308));
    // A small append joins the tail.
    store.append(RUN, "loss", &points[18_500..19_500]).unwrap();
    assert_eq!(stats(&store), (18_192, 1_308));
    // Tail (1308) + 7000 = 8308: one full chunk from rows and batch together, 116 rows left.
    store.append(RUN, "loss", &points[19_500..26_500]).unwrap();
    assert_eq!(stats(&store), (26_384, 116));
    assert!(same_points(
        &store.history(RUN, "loss").unwrap(),
        &points[..26_500]
    ));
}

#[test]
fn the_generation_moves_with_every_series_mark_and_only_then() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metrics.db");
    let mut store = MetricStore::open(&path).unwrap();
    let g0 = store.generation().unwrap();

    store.append(RUN, "loss", &[p(0, 1.0), p(1, 0.9)]).unwrap();
    let g1 = store.generation().unwrap();
    assert!(g1 > g0, "a new series and its points move it: {g0} → {g1}");
    store.append(RUN, "loss", &[p(2, 0.8)]).unwrap();
    let g2 = store.generation().unwrap();
    assert!(g2 > g1, "a point appended moves it");

    // Nothing a peer would sync: reads, sealing, an empty batch, a refused append_at.
    store.history(RUN, "loss").unwrap();
    store.seal_run(RUN).unwrap();
    store.append(RUN, "loss", &[]).unwrap();
    assert!(!store.append_at(RUN, "loss", 1, &[p(9, 0.1)]).unwrap());
    assert_eq!(store.generation().unwrap(), g2);

    // A peer's suffix that continues the series moves it, and the counter survives a reopen.
    assert!(store.append_at(RUN, "loss", 3, &[p(3, 0.7)]).unwrap());
    let g3 = store.generation().unwrap();
    assert!(g3 > g2);
    drop(store);
    assert_eq!(MetricStore::open(&path).unwrap().generation().unwrap(), g3);
}
