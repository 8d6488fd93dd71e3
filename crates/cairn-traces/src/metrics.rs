//! MLflow's trace metrics (`QueryTraceMetrics`, MLflow 3.17): per view (traces, spans,
//! assessments) a metric, aggregated (count, sum, average, min, max, percentiles with linear
//! interpolation as numpy's default), grouped by dimensions and by time buckets aligned to the
//! epoch, over an inclusive time range, narrowed by MLflow's metric filters
//! (`trace.status`, `trace.tag.<k>`, `trace.metadata.<k>`, `span.name|type|status`,
//! `assessment.name|type`). The rows are read with SQL and aggregated here.
//!
//! Not kept, so refused by name: span costs and models (`input_cost`, `span_model_name`, …).

use std::collections::BTreeMap;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, params_from_iter};

use crate::error::Error;
use crate::filter::{self, Entity, Lit};
use crate::project::{METADATA, TAG};
use crate::query::{Aggregation, DataPoint, MetricView, MetricsQuery, agg_kind};

/// The most groups one answer holds.
pub const MAX_METRIC_RESULTS: usize = 10_000;

struct Spec {
    /// SQL for the value (NULL rows are left out).
    value: &'static str,
    aggs: &'static [&'static str],
    dims: &'static [&'static str],
}

fn spec(view: MetricView, metric: &str) -> Option<Spec> {
    const ALL_NUM: &[&str] = &["SUM", "AVG", "MIN", "MAX", "PERCENTILE"];
    const LAT: &[&str] = &["AVG", "MIN", "MAX", "PERCENTILE"];
    let tokens = |key: &'static str| Spec {
        value: key,
        aggs: ALL_NUM,
        dims: &["trace_name"],
    };
    Some(match (view, metric) {
        (MetricView::Traces, "trace_count") => Spec {
            value: "1",
            aggs: &["COUNT"],
            dims: &["trace_name", "trace_status"],
        },
        (MetricView::Traces, "session_count") => Spec {
            value: "session",
            aggs: &["COUNT"],
            dims: &[],
        },
        (MetricView::Traces, "latency") => Spec {
            value: "t.execution_ms",
            aggs: LAT,
            dims: &["trace_name"],
        },
        (MetricView::Traces, "input_tokens") => tokens("input_tokens"),
        (MetricView::Traces, "output_tokens") => tokens("output_tokens"),
        (MetricView::Traces, "total_tokens") => tokens("total_tokens"),
        (MetricView::Traces, "cache_read_input_tokens") => tokens("cache_read_input_tokens"),
        (MetricView::Traces, "cache_creation_input_tokens") => {
            tokens("cache_creation_input_tokens")
        }
        (MetricView::Spans, "span_count") => Spec {
            value: "1",
            aggs: &["COUNT"],
            dims: &["span_name", "span_type", "span_status"],
        },
        (MetricView::Spans, "latency") => Spec {
            value: "CASE WHEN s.end_ns > 0 THEN (s.end_ns - s.start_ns) / 1000000 END",
            aggs: LAT,
            dims: &["span_name", "span_status"],
        },
        (MetricView::Assessments, "assessment_count") => Spec {
            value: "1",
            aggs: &["COUNT"],
            dims: &["assessment_name", "assessment_value"],
        },
        (MetricView::Assessments, "assessment_value") => Spec {
            value: "numeric",
            aggs: LAT,
            dims: &["assessment_name"],
        },
        _ => return None,
    })
}

fn known_metrics(view: MetricView) -> &'static [&'static str] {
    match view {
        MetricView::Traces => &[
            "trace_count",
            "session_count",
            "latency",
            "input_tokens",
            "output_tokens",
            "total_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ],
        MetricView::Spans => &["span_count", "latency"],
        MetricView::Assessments => &["assessment_count", "assessment_value"],
    }
}

fn invalid(msg: String) -> Error {
    Error::Invalid(msg)
}

pub(crate) fn query(conn: &Connection, q: &MetricsQuery) -> Result<Vec<DataPoint>, Error> {
    let Some(spec) = spec(q.view, &q.metric) else {
        if matches!(
            q.metric.as_str(),
            "input_cost" | "output_cost" | "total_cost"
        ) {
            return Err(invalid(format!(
                "the span metric '{}' is not kept by Cairn (span costs are not recorded)",
                q.metric
            )));
        }
        return Err(invalid(format!(
            "metric_name must be one of {:?}, got '{}'",
            known_metrics(q.view),
            q.metric
        )));
    };
    if q.aggregations.is_empty() {
        return Err(invalid("at least one aggregation is required".into()));
    }
    let bad: Vec<&str> = q
        .aggregations
        .iter()
        .map(|a| agg_kind(*a))
        .filter(|k| !spec.aggs.contains(k))
        .collect();
    if !bad.is_empty() {
        return Err(invalid(format!(
            "Found invalid aggregation_type(s): {bad:?}. Supported aggregation types: {:?}",
            spec.aggs
        )));
    }
    for a in &q.aggregations {
        if let Aggregation::Percentile(p) = a
            && !(0.0..=100.0).contains(p)
        {
            return Err(invalid(format!(
                "Percentile value must be between 0 and 100, got {p}"
            )));
        }
    }
    let bad: Vec<&String> = q
        .dimensions
        .iter()
        .filter(|d| !spec.dims.contains(&d.as_str()))
        .collect();
    if !bad.is_empty() {
        return Err(invalid(format!(
            "Found invalid dimension(s): {bad:?}. Supported dimensions: {:?}",
            spec.dims
        )));
    }
    if q.interval_s.is_some() && (q.start_ms.is_none() || q.end_ms.is_none()) {
        return Err(invalid(
            "start_time_ms and end_time_ms are required if time_interval_seconds is set".into(),
        ));
    }
    if let Some(i) = q.interval_s
        && i <= 0
    {
        return Err(invalid(format!(
            "time_interval_seconds must be positive, got {i}"
        )));
    }

    let mut params: Vec<Sql> = Vec::new();
    let (from, time_col) = match q.view {
        MetricView::Traces => ("traces t", "t.request_time"),
        MetricView::Spans => (
            "spans s JOIN traces t ON t.id = s.trace",
            "(s.start_ns / 1000000)",
        ),
        MetricView::Assessments => (
            "assessments a JOIN traces t ON t.id = a.trace",
            "t.request_time",
        ),
    };
    let mut conds = Vec::new();
    let marks: Vec<&str> = q.experiments.iter().map(|_| "?").collect();
    conds.push(format!("t.experiment IN ({})", marks.join(", ")));
    params.extend(q.experiments.iter().map(|e| Sql::Text(e.clone())));
    if q.view == MetricView::Assessments {
        conds.push("a.body IS NOT NULL AND a.valid = 1".into());
    }
    if let Some(s) = q.start_ms {
        conds.push(format!("{time_col} >= ?"));
        params.push(Sql::Integer(s));
    }
    if let Some(e) = q.end_ms {
        conds.push(format!("{time_col} <= ?"));
        params.push(Sql::Integer(e));
    }
    for f in &q.filters {
        conds.push(metric_filter(q.view, f, &mut params)?);
    }
    let dim_sql: Vec<&str> = q
        .dimensions
        .iter()
        .map(|d| match d.as_str() {
            "trace_name" => "t.name",
            "trace_status" => "t.state",
            "span_name" => "s.name",
            "span_type" => "s.type",
            "span_status" => "s.status",
            "assessment_name" => "a.name",
            _ => "a.value",
        })
        .collect();
    let value_sql = match spec.value {
        "session" => format!(
            "(SELECT value FROM trace_kv WHERE trace = t.id AND kind = {METADATA} AND key = 'mlflow.trace.session')"
        ),
        "numeric" => "a.value".to_owned(),
        v if v.ends_with("_tokens") => format!(
            "json_extract((SELECT value FROM trace_kv WHERE trace = t.id AND kind = {METADATA} \
             AND key = 'mlflow.trace.tokenUsage' AND json_valid(value)), '$.{v}')"
        ),
        v => v.to_owned(),
    };
    let mut select = vec![format!("{time_col}"), format!("({value_sql})")];
    select.extend(dim_sql.iter().map(|d| (*d).to_owned()));
    let sql = format!(
        "SELECT {} FROM {from} WHERE {}",
        select.join(", "),
        conds.join(" AND ")
    );
    let mut stmt = conn
        .prepare(&sql)
        .map_err(Error::db("querying trace metrics"))?;
    let mut rows = stmt
        .query(params_from_iter(params.iter()))
        .map_err(Error::db("querying trace metrics"))?;
    // Group key: time bucket (if asked) then dimension values.
    let bucket_ms = q.interval_s.map(|s| s.saturating_mul(1000));
    let mut groups: BTreeMap<GroupKey, Vec<SqlNum>> = BTreeMap::new();
    while let Some(r) = rows.next().map_err(Error::db("querying trace metrics"))? {
        let ts: i64 = r.get(0).map_err(Error::db("querying trace metrics"))?;
        let value = num(r.get_ref(1).map_err(Error::db("querying trace metrics"))?);
        // An assessment's value counts as a number when it is one, or a boolean (1 or 0).
        let value = match value {
            Some(SqlNum::Text(t)) if spec.value == "numeric" => match t.as_str() {
                "true" => Some(SqlNum::Num(1.0)),
                "false" => Some(SqlNum::Num(0.0)),
                other => other.parse::<f64>().ok().map(SqlNum::Num),
            },
            v => v,
        };
        let Some(value) = value else { continue };
        let mut dims = Vec::with_capacity(dim_sql.len());
        let mut skip = false;
        for i in 0..dim_sql.len() {
            match r
                .get_ref(2 + i)
                .map_err(Error::db("querying trace metrics"))?
            {
                rusqlite::types::ValueRef::Null => skip = true,
                rusqlite::types::ValueRef::Text(t) => {
                    dims.push(String::from_utf8_lossy(t).into_owned());
                }
                rusqlite::types::ValueRef::Integer(i) => dims.push(i.to_string()),
                rusqlite::types::ValueRef::Real(f) => dims.push(f.to_string()),
                rusqlite::types::ValueRef::Blob(_) => skip = true,
            }
        }
        if skip {
            continue;
        }
        let bucket = bucket_ms.map(|b| ts.div_euclid(b) * b);
        groups.entry((bucket, dims)).or_default().push(value);
    }
    let limit = q.limit.clamp(1, MAX_METRIC_RESULTS);
    let mut out = Vec::new();
    for ((bucket, dims), values) in groups {
        if out.len() >= limit {
            break;
        }
        let mut dimensions = BTreeMap::new();
        if let Some(b) = bucket {
            dimensions.insert("time_bucket".to_owned(), iso_utc(b));
        }
        for (name, v) in q.dimensions.iter().zip(dims) {
            dimensions.insert(name.clone(), v);
        }
        let vals = values;
        let mut agg_values = BTreeMap::new();
        for a in &q.aggregations {
            if let Some(v) = aggregate(*a, &vals, spec.value == "session") {
                agg_values.insert(a.label(), v);
            }
        }
        if agg_values.is_empty() {
            continue;
        }
        out.push(DataPoint {
            metric_name: q.metric.clone(),
            dimensions,
            values: agg_values,
        });
    }
    Ok(out)
}

/// A group of a metric answer: its time bucket (when bucketed) and dimension values.
type GroupKey = (Option<i64>, Vec<String>);

/// A value read for aggregation: a number, or (for distinct counts) text.
#[derive(Debug, Clone, PartialEq)]
enum SqlNum {
    Num(f64),
    Text(String),
}

fn num(v: rusqlite::types::ValueRef<'_>) -> Option<SqlNum> {
    use rusqlite::types::ValueRef as V;
    match v {
        V::Integer(i) => Some(SqlNum::Num(i as f64)),
        V::Real(f) => Some(SqlNum::Num(f)),
        V::Text(t) => Some(SqlNum::Text(String::from_utf8_lossy(t).into_owned())),
        V::Null | V::Blob(_) => None,
    }
}

fn aggregate(a: Aggregation, vals: &[SqlNum], distinct: bool) -> Option<f64> {
    if let Aggregation::Count = a {
        if distinct {
            let set: std::collections::BTreeSet<String> = vals
                .iter()
                .map(|v| match v {
                    SqlNum::Num(n) => n.to_string(),
                    SqlNum::Text(t) => t.clone(),
                })
                .collect();
            return Some(set.len() as f64);
        }
        return Some(vals.len() as f64);
    }
    let mut nums: Vec<f64> = vals
        .iter()
        .filter_map(|v| match v {
            SqlNum::Num(n) => Some(*n),
            SqlNum::Text(t) => t.parse().ok(),
        })
        .filter(|v: &f64| v.is_finite())
        .collect();
    if nums.is_empty() {
        return None;
    }
    Some(match a {
        Aggregation::Count => nums.len() as f64,
        Aggregation::Sum => nums.iter().sum(),
        Aggregation::Avg => nums.iter().sum::<f64>() / nums.len() as f64,
        Aggregation::Min => nums.iter().copied().fold(f64::INFINITY, f64::min),
        Aggregation::Max => nums.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Aggregation::Percentile(p) => {
            nums.sort_by(f64::total_cmp);
            let pos = p / 100.0 * (nums.len() - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            let g = pos - lo as f64;
            nums[lo] * (1.0 - g) + nums[hi.min(nums.len() - 1)] * g
        }
    })
}

/// One metric filter as SQL.
fn metric_filter(view: MetricView, f: &str, params: &mut Vec<Sql>) -> Result<String, Error> {
    let clauses = filter::parse_clauses(f)?;
    let bad = |why: String| Error::Filter {
        filter: f.chars().take(200).collect(),
        reason: why,
    };
    let mut out = Vec::new();
    for c in &clauses {
        if matches!(c.value, Lit::List(_)) || matches!(c.op, filter::Op::RLike) {
            return Err(bad(format!(
                "trace metric filters compare with =, !=, LIKE or ILIKE, not {:?}",
                c.op
            )));
        }
        let sql = match &c.entity {
            Entity::Attr(k) if k == "status" => format!("t.state {}", filter::rhs(c, params)),
            Entity::Attr(k) if k.starts_with("tag.") || k.starts_with("metadata.") => {
                let (kind, key) = match k.split_once('.') {
                    Some(("tag", key)) => (TAG, key),
                    Some((_, key)) => (METADATA, key),
                    None => (TAG, k.as_str()),
                };
                params.push(Sql::Integer(kind));
                params.push(Sql::Text(key.to_owned()));
                let r = filter::rhs(c, params);
                format!(
                    "EXISTS (SELECT 1 FROM trace_kv k WHERE k.trace = t.id AND k.kind = ? AND k.key = ? AND k.value {r})"
                )
            }
            Entity::Span(k)
                if view == MetricView::Spans
                    && matches!(k.as_str(), "name" | "type" | "status") =>
            {
                format!("s.{k} {}", filter::rhs(c, params))
            }
            Entity::Assessment(k)
                if view == MetricView::Assessments && matches!(k.as_str(), "name" | "type") =>
            {
                let col = if k == "name" { "a.name" } else { "a.kind" };
                // MLflow's types are FEEDBACK / EXPECTATION.
                if let Lit::Str(s) = &c.value {
                    params.push(Sql::Text(s.to_ascii_lowercase()));
                    format!(
                        "{col} {} ?",
                        if c.op == filter::Op::Ne { "!=" } else { "=" }
                    )
                } else {
                    format!("{col} {}", filter::rhs(c, params))
                }
            }
            _ => {
                return Err(bad(format!(
                    "not a filter of the {view:?} metrics view (trace.status, trace.tag.<key>, \
                     trace.metadata.<key>, span.name|type|status, assessment.name|type)"
                )));
            }
        };
        out.push(sql);
    }
    Ok(if out.is_empty() {
        "1".into()
    } else {
        out.join(" AND ")
    })
}

/// A UTC time as Python's `datetime.isoformat()` writes it (`2026-01-02T03:04:05+00:00`).
pub(crate) fn iso_utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if millis == 0 {
        format!("{base}+00:00")
    } else {
        format!("{base}.{:06}+00:00", millis * 1000)
    }
}

/// Howard Hinnant's days-to-civil.
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate_like_numpy() {
        let v: Vec<SqlNum> = [1.0, 2.0, 3.0, 4.0].into_iter().map(SqlNum::Num).collect();
        assert_eq!(
            aggregate(Aggregation::Percentile(50.0), &v, false),
            Some(2.5)
        );
        assert_eq!(
            aggregate(Aggregation::Percentile(0.0), &v, false),
            Some(1.0)
        );
        assert_eq!(
            aggregate(Aggregation::Percentile(100.0), &v, false),
            Some(4.0)
        );
        assert_eq!(aggregate(Aggregation::Avg, &v, false), Some(2.5));
        assert_eq!(aggregate(Aggregation::Count, &v, false), Some(4.0));
    }

    #[test]
    fn times_print_as_python_does() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(
            iso_utc(1_796_408_308_302),
            "2026-12-04T18:18:28.302000+00:00"
        );
        assert_eq!(iso_utc(951_782_400_000), "2000-02-29T00:00:00+00:00");
    }
}
