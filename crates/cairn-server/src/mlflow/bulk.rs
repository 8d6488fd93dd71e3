//! The metric histories MLflow's web UI reads for its charts: `metrics/get-history-bulk` (one
//! metric's points over several runs, up to a total, in MLflow's order) and
//! `metrics/get-history-bulk-interval` (each run's series sampled to at most `max_results`
//! points as MLflow's SQL store samples it). Series are read a sealed chunk at a time; what is
//! held is bounded by the answer's size, except an interval over a series logged out of step
//! order, which is sorted whole (as MLflow's store sorts it).

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};

use axum::extract::State;
use axum::http::Uri;
use cairn_core::{MetricPoint, Workspace};
use serde::Deserialize;
use serde_json::{Value, json};

use super::decode::SEE_DOCS;
use super::dto::{self, de_opt_i64};
use super::{MlflowError, Reply, json, parse_run_id, query_lists, required};
use crate::AppState;

/// MLflow's `get-history-bulk` limits: runs per request, points per answer.
const MAX_BULK_RUNS: usize = 100;
const MAX_BULK_POINTS: i64 = 25_000;
/// MLflow's `get-history-bulk-interval` limits: runs per request, points per run.
const MAX_INTERVAL_RUNS: usize = 100;
const MAX_INTERVAL_POINTS: i64 = 2_500;

#[derive(Deserialize)]
pub(crate) struct BulkQuery {
    #[serde(default)]
    run_id: Vec<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
}

/// The repeated parameters of `get-history-bulk`.
pub(crate) const BULK_LISTS: &[&str] = &["run_id"];

#[derive(Deserialize)]
pub(crate) struct IntervalQuery {
    #[serde(default)]
    run_ids: Vec<String>,
    metric_key: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    start_step: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    end_step: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
}

/// The repeated parameters of `get-history-bulk-interval`.
pub(crate) const INTERVAL_LISTS: &[&str] = &["run_ids"];

/// MLflow's SQL ordering of a value: NaN is stored as 0 beside an `is_nan` flag.
fn value_key(v: f64) -> (f64, bool) {
    if v.is_nan() { (0.0, true) } else { (v, false) }
}

/// A point ordered by (timestamp, step, value): `get-history-bulk`'s order.
struct ByTime(MetricPoint);

impl ByTime {
    fn key(&self) -> (i64, i64, (f64, bool)) {
        (self.0.ts_ms, self.0.step, value_key(self.0.value))
    }
}

fn cmp_keys(a: (i64, i64, (f64, bool)), b: (i64, i64, (f64, bool))) -> Ordering {
    a.0.cmp(&b.0)
        .then(a.1.cmp(&b.1))
        .then(a.2.0.total_cmp(&b.2.0))
        .then(a.2.1.cmp(&b.2.1))
}

impl PartialEq for ByTime {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for ByTime {}
impl PartialOrd for ByTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByTime {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_keys(self.key(), other.key())
    }
}

/// (step, timestamp, value): the interval's order.
fn by_step(p: &MetricPoint) -> (i64, i64, (f64, bool)) {
    (p.step, p.ts_ms, value_key(p.value))
}

/// Calls `f` with each piece of the run's series, in the order logged; an unknown or malformed
/// run, or one without the metric, has no points (MLflow answers none for it).
fn each_chunk(
    ws: &Workspace,
    run: &str,
    key: &str,
    mut f: impl FnMut(Vec<MetricPoint>),
) -> Result<(), cairn_core::Error> {
    let Ok(id) = parse_run_id(run) else {
        return Ok(());
    };
    let len = match ws.metric_len(id, key) {
        Ok(n) => n,
        Err(e) if e.is_unknown_run() || matches!(e, cairn_core::Error::UnknownMetric { .. }) => {
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let mut from = 0;
    while from < len {
        let points = ws.metric_history_chunk(id, key, from, len)?;
        if points.is_empty() {
            break;
        }
        from += points.len() as u64;
        f(points);
    }
    Ok(())
}

fn point_json(key: &str, run: &str, p: &MetricPoint) -> Value {
    json!({
        "key": key,
        "value": dto::f64_json(p.value),
        "timestamp": p.ts_ms,
        "step": p.step,
        "run_id": run,
    })
}

pub(crate) async fn history_bulk(State(st): State<AppState>, uri: Uri) -> Reply {
    let q: BulkQuery = query_lists(&uri, BULK_LISTS)?;
    if q.run_id.is_empty() {
        return Err(MlflowError::invalid(
            "GetMetricHistoryBulk request must specify at least one run_id.",
        ));
    }
    if q.run_id.len() > MAX_BULK_RUNS {
        return Err(MlflowError::invalid(format!(
            "GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUNS} run_ids. \
             Received {} run_ids.",
            q.run_id.len()
        )));
    }
    let key = q.metric_key.ok_or_else(|| {
        MlflowError::invalid("GetMetricHistoryBulk request must specify a metric_key.")
    })?;
    // As MLflow's store limits its query: at most 25,000, none for 0 (SQLite's LIMIT -1 is
    // "no limit", which the cap then bounds).
    let limit = match q.max_results.unwrap_or(MAX_BULK_POINTS) {
        n if n < 0 => MAX_BULK_POINTS,
        n => n.min(MAX_BULK_POINTS),
    } as usize;
    let runs: BTreeSet<String> = q.run_id.into_iter().collect();
    let metrics = st
        .call(move |ws| {
            let mut out = Vec::new();
            for run in &runs {
                let room = limit - out.len().min(limit);
                if room == 0 {
                    break;
                }
                // The `room` earliest points of this run, held in a bounded heap.
                let mut heap: BinaryHeap<ByTime> = BinaryHeap::with_capacity(room.min(4096));
                each_chunk(ws, run, &key, |points| {
                    for p in points {
                        let p = ByTime(p);
                        if heap.len() < room {
                            heap.push(p);
                        } else if heap.peek().is_some_and(|top| p < *top) {
                            heap.pop();
                            heap.push(p);
                        }
                    }
                })?;
                out.extend(
                    heap.into_sorted_vec()
                        .iter()
                        .map(|p| point_json(&key, run, &p.0)),
                );
            }
            Ok(out)
        })
        .await?;
    json(json!({ "metrics": metrics }))
}

/// The ranks of the points MLflow keeps of `n` ordered points: the first of each of `m`
/// `NTILE` buckets, the last point in place of the last bucket's first.
fn sampled_ranks(n: usize, m: usize) -> Vec<usize> {
    if n <= m {
        return (0..n).collect();
    }
    let (base, rem) = (n / m, n % m);
    let mut ranks: Vec<usize> = (0..m).map(|i| i * base + i.min(rem)).collect();
    if let Some(last) = ranks.last_mut() {
        *last = n - 1;
    }
    ranks
}

/// One run's sampled points, in step order.
fn sample_run(
    ws: &Workspace,
    run: &str,
    key: &str,
    range: Option<(i64, i64)>,
    m: usize,
) -> Result<Vec<MetricPoint>, cairn_core::Error> {
    let within = |p: &MetricPoint| range.is_none_or(|(lo, hi)| lo <= p.step && p.step <= hi);
    // First pass: how many, and whether they were logged in step order (the usual case, read
    // again without holding them).
    let (mut n, mut sorted) = (0usize, true);
    let mut prev: Option<(i64, i64, (f64, bool))> = None;
    each_chunk(ws, run, key, |points| {
        for p in points.iter().filter(|p| within(p)) {
            let k = by_step(p);
            if prev.is_some_and(|q| cmp_keys(q, k) == Ordering::Greater) {
                sorted = false;
            }
            prev = Some(k);
            n += 1;
        }
    })?;
    let ranks = sampled_ranks(n, m);
    if sorted {
        let mut out = Vec::with_capacity(ranks.len());
        let mut want = ranks.iter().peekable();
        let mut rank = 0usize;
        each_chunk(ws, run, key, |points| {
            for p in points.into_iter().filter(|p| within(p)) {
                if want.peek() == Some(&&rank) {
                    want.next();
                    out.push(p);
                }
                rank += 1;
            }
        })?;
        return Ok(out);
    }
    let mut all = Vec::with_capacity(n);
    each_chunk(ws, run, key, |points| {
        all.extend(points.into_iter().filter(|p| within(p)));
    })?;
    all.sort_by(|a, b| cmp_keys(by_step(a), by_step(b)));
    Ok(ranks
        .into_iter()
        .filter_map(|r| all.get(r).cloned())
        .collect())
}

pub(crate) async fn history_bulk_interval(State(st): State<AppState>, uri: Uri) -> Reply {
    // Checked in the order of MLflow's request schema; its schema checks end in `SEE_DOCS`.
    let q: IntervalQuery = query_lists(&uri, INTERVAL_LISTS)?;
    if q.run_ids.is_empty() {
        return Err(super::missing("run_ids"));
    }
    if q.run_ids.len() > MAX_INTERVAL_RUNS {
        return Err(MlflowError::invalid(format!(
            "GetMetricHistoryBulkInterval request must specify at most {MAX_INTERVAL_RUNS} \
             run_ids. Received {} run_ids.{SEE_DOCS}",
            q.run_ids.len()
        )));
    }
    let key = required(q.metric_key, "metric_key")?;
    let m = q.max_results.unwrap_or(MAX_INTERVAL_POINTS);
    if !(1..=MAX_INTERVAL_POINTS).contains(&m) {
        return Err(MlflowError::invalid(format!(
            "max_results must be between 1 and {MAX_INTERVAL_POINTS}.{SEE_DOCS}"
        )));
    }
    let range = match (q.start_step, q.end_step) {
        (Some(start), Some(end)) if start > end => {
            return Err(MlflowError::invalid(format!(
                "end_step must be greater than start_step. Found start_step={start} and \
                 end_step={end}."
            )));
        }
        (Some(start), Some(end)) => Some((start, end)),
        (None, None) => None,
        _ => {
            return Err(MlflowError::invalid(
                "If either start step or end step are specified, both must be specified.",
            ));
        }
    };
    let metrics = st
        .call(move |ws| {
            let mut out = Vec::new();
            for run in &q.run_ids {
                for p in sample_run(ws, run, &key, range, m as usize)? {
                    out.push(point_json(&key, run, &p));
                }
            }
            Ok(out)
        })
        .await?;
    // MLflow's protobuf JSON leaves an empty list out.
    if metrics.is_empty() {
        return json(json!({}));
    }
    json(json!({ "metrics": metrics }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_the_first_of_each_ntile_bucket_and_the_last_point() {
        assert_eq!(sampled_ranks(3, 5), [0, 1, 2]);
        assert_eq!(sampled_ranks(0, 5), Vec::<usize>::new());
        // NTILE(3) over 10 rows: buckets of 4, 3, 3 start at 0, 4, 7; the last row replaces 7.
        assert_eq!(sampled_ranks(10, 3), [0, 4, 9]);
        // One point asked for: the last.
        assert_eq!(sampled_ranks(10, 1), [9]);
        assert_eq!(sampled_ranks(6, 5), [0, 2, 3, 4, 5]);
    }
}
