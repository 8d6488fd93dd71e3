//! Reads of the index: a trace's info with its metadata, tags, assessments and runs; searches
//! (experiments, an MLflow filter, a run, free text; ordered and paged); which traces a
//! deletion by age and count takes; MLflow's trace metrics (counts, latencies, tokens,
//! assessment values, grouped and bucketed by time).

use std::collections::BTreeMap;

use rusqlite::types::Value as Sql;
use rusqlite::{Connection, OptionalExtension, params_from_iter};

use crate::error::Error;
use crate::filter;
use crate::model::{Assessment, TraceId, TraceInfo, TraceState};
use crate::project::{METADATA, TAG};
use crate::span_text;
use crate::store::TraceStore;

/// The most traces one search page holds.
pub const MAX_PAGE: usize = 50_000;

/// A search over the index.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Experiments to search in (Cairn ids); empty: every experiment.
    pub experiments: Vec<String>,
    /// An MLflow trace filter (see the `filter` module).
    pub filter: Option<String>,
    /// MLflow order keys (`timestamp_ms DESC`); empty: newest first.
    pub order_by: Vec<String>,
    /// Only the traces of this run (its `mlflow.sourceRun` or a link).
    pub run: Option<String>,
    /// Text that must occur in the trace's id, name, previews or any span's text (any case).
    pub text: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// A trace metric query (MLflow's `QueryTraceMetrics`).
#[derive(Debug, Clone, Default)]
pub struct MetricsQuery {
    pub experiments: Vec<String>,
    pub view: MetricView,
    pub metric: String,
    pub aggregations: Vec<Aggregation>,
    pub dimensions: Vec<String>,
    /// MLflow's metric filters (`trace.status = 'OK'`, `trace.tag.k = 'v'`, `span.name = 'x'`).
    pub filters: Vec<String>,
    /// Bucket width in seconds; needs `start_ms` and `end_ms`.
    pub interval_s: Option<i64>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub limit: usize,
}

/// What a metric query counts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MetricView {
    #[default]
    Traces,
    Spans,
    Assessments,
}

/// How values are aggregated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Aggregation {
    Count,
    Sum,
    Avg,
    Min,
    Max,
    /// 0..=100.
    Percentile(f64),
}

impl Aggregation {
    /// The name MLflow gives the value (`COUNT`, `P50.0`).
    pub fn label(self) -> String {
        match self {
            Aggregation::Count => "COUNT".into(),
            Aggregation::Sum => "SUM".into(),
            Aggregation::Avg => "AVG".into(),
            Aggregation::Min => "MIN".into(),
            Aggregation::Max => "MAX".into(),
            Aggregation::Percentile(p) => format!("P{p:?}"),
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Aggregation::Count => "COUNT",
            Aggregation::Sum => "SUM",
            Aggregation::Avg => "AVG",
            Aggregation::Min => "MIN",
            Aggregation::Max => "MAX",
            Aggregation::Percentile(_) => "PERCENTILE",
        }
    }
}

/// One group of a metric query's answer.
#[derive(Debug, Clone, PartialEq)]
pub struct DataPoint {
    pub metric_name: String,
    pub dimensions: BTreeMap<String, String>,
    pub values: BTreeMap<String, f64>,
}

const TRACE_COLS: &str = "t.id, t.trace_id, t.experiment, t.request_time, t.execution_ms, t.state, \
                          t.name, t.request_preview, t.response_preview, t.client_request_id, t.span_count";

impl TraceStore {
    /// A trace's info, or `None` when there is no such trace (or it was deleted).
    pub fn info(&self, trace: &TraceId) -> Result<Option<TraceInfo>, Error> {
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(Error::db("reading a trace"))?;
        let row = tx
            .prepare_cached(&format!(
                "SELECT {TRACE_COLS} FROM traces t WHERE t.trace_id = ?1"
            ))
            .and_then(|mut s| s.query_row([trace.as_str()], read_row).optional())
            .map_err(Error::db(format!("reading trace {trace}")))?;
        match row {
            None => Ok(None),
            Some((id, info)) => Ok(Some(details(&tx, id, info)?)),
        }
    }

    /// Whether the trace was deleted (deleted traces stay deleted).
    pub fn is_deleted(&self, trace: &TraceId) -> Result<bool, Error> {
        self.conn
            .prepare_cached("SELECT 1 FROM deleted WHERE trace_id = ?1")
            .and_then(|mut s| s.exists([trace.as_str()]))
            .map_err(Error::db("reading deletions"))
    }

    /// One assessment of a trace (a deleted one is `None`).
    pub fn assessment(&self, trace: &TraceId, id: &str) -> Result<Option<Assessment>, Error> {
        let body: Option<Option<String>> = self
            .conn
            .prepare_cached(
                "SELECT a.body FROM assessments a JOIN traces t ON t.id = a.trace WHERE t.trace_id = ?1 AND a.id = ?2",
            )
            .and_then(|mut s| s.query_row([trace.as_str(), id], |r| r.get(0)).optional())
            .map_err(Error::db(format!("reading assessment {id}")))?;
        match body.flatten() {
            None => Ok(None),
            Some(json) => serde_json::from_str(&json)
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    what: format!("assessment {id} of {trace}"),
                    reason: e.to_string(),
                }),
        }
    }

    /// A page of traces matching `q`, each with its details, and the offset of the next page.
    pub fn search(&self, q: &Search) -> Result<(Vec<TraceInfo>, Option<usize>), Error> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let mut params: Vec<Sql> = Vec::new();
        let mut conds: Vec<String> = Vec::new();
        if q.experiments.is_empty() {
            conds.push("t.experiment != ''".into());
        } else {
            let marks: Vec<&str> = q.experiments.iter().map(|_| "?").collect();
            conds.push(format!("t.experiment IN ({})", marks.join(", ")));
            params.extend(q.experiments.iter().map(|e| Sql::Text(e.clone())));
        }
        if let Some(f) = q.filter.as_deref() {
            let clauses = filter::parse(f)?;
            conds.extend(filter::compile(&clauses, &mut params));
        }
        if let Some(run) = &q.run {
            conds.push("t.id IN (SELECT trace FROM trace_runs WHERE run = ?)".into());
            params.push(Sql::Text(run.clone()));
        }
        if let Some(text) = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            conds.push(text_condition(text, &mut params));
        }
        let mut order: Vec<String> = q
            .order_by
            .iter()
            .filter(|k| !k.trim().is_empty())
            .map(|k| filter::order(k))
            .collect::<Result<_, _>>()?;
        if order.is_empty() {
            order.push("t.request_time DESC".into());
        }
        order.push("t.trace_id ASC".into());
        let sql = format!(
            "SELECT {TRACE_COLS} FROM traces t WHERE {} ORDER BY {} LIMIT {} OFFSET {}",
            conds.join(" AND "),
            order.join(", "),
            limit + 1,
            q.offset
        );
        let tx = self
            .conn
            .unchecked_transaction()
            .map_err(Error::db("searching traces"))?;
        let mut rows: Vec<(i64, TraceInfo)> = {
            let mut stmt = tx.prepare(&sql).map_err(Error::db("searching traces"))?;
            stmt.query_map(params_from_iter(params.iter()), read_row)
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(Error::db("searching traces"))?
        };
        let next = (rows.len() > limit).then_some(q.offset + limit);
        rows.truncate(limit);
        let out = rows
            .into_iter()
            .map(|(id, info)| details(&tx, id, info))
            .collect::<Result<_, _>>()?;
        Ok((out, next))
    }

    /// The traces a deletion by age and count takes in `experiment`: those older than
    /// `max_timestamp_ms`, oldest first, at most `max_traces` (MLflow's `delete_traces`).
    pub fn select_old(
        &self,
        experiment: &str,
        max_timestamp_ms: i64,
        max_traces: Option<usize>,
    ) -> Result<Vec<TraceId>, Error> {
        let limit = max_traces.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX));
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT trace_id FROM traces WHERE experiment = ?1 AND request_time <= ?2 \
                 ORDER BY request_time, trace_id LIMIT ?3",
            )
            .map_err(Error::db("selecting traces to delete"))?;
        let ids: Vec<String> = stmt
            .query_map(
                rusqlite::params![experiment, max_timestamp_ms, limit],
                |r| r.get(0),
            )
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(Error::db("selecting traces to delete"))?;
        ids.iter().map(|s| TraceId::parse(s)).collect()
    }

    /// MLflow's trace metrics: the values of `q.metric` over the traces, spans or assessments
    /// of the experiments, filtered, grouped by the dimensions (and time buckets), aggregated.
    pub fn metrics(&self, q: &MetricsQuery) -> Result<Vec<DataPoint>, Error> {
        crate::metrics::query(&self.conn, q)
    }
}

/// A condition matching `text` anywhere in a trace: its id, name, previews, or a span's text
/// (any case, any place).
fn text_condition(text: &str, params: &mut Vec<Sql>) -> String {
    // The trigram indexes answer LIKE themselves, but not with an ESCAPE clause: text without
    // LIKE's wildcard characters needs none, and both halves are index lookups (`trace_text`
    // holds each trace's id, name and previews, one per line, so text across a line break is
    // looked for field by field instead).
    let bits = span_text::ROW_BITS;
    if !text.contains(['%', '_', '\\', '\n', '\0']) {
        let like = format!("%{text}%");
        params.push(Sql::Text(like.clone()));
        params.push(Sql::Text(like));
        // A pattern without wildcards or line breaks cannot match across two spans' texts.
        return format!(
            "(t.id IN (SELECT rowid FROM trace_text WHERE text LIKE ?) \
             OR t.id IN (SELECT rowid >> {bits} FROM span_text WHERE text LIKE ?))"
        );
    }
    let like = format!(
        "%{}%",
        text.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    for _ in 0..6 {
        params.push(Sql::Text(like.clone()));
    }
    format!(
        "(t.trace_id LIKE ? ESCAPE '\\' OR t.name LIKE ? ESCAPE '\\' \
         OR t.request_preview LIKE ? ESCAPE '\\' OR t.response_preview LIKE ? ESCAPE '\\' \
         OR t.id IN (SELECT rowid >> {bits} FROM span_text WHERE text LIKE ? ESCAPE '\\' \
         AND {}(text, bounds, ?, '\\')))",
        span_text::SPAN_LIKE
    )
}

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, TraceInfo)> {
    let id: i64 = r.get(0)?;
    let trace: String = r.get(1)?;
    let state: String = r.get(5)?;
    Ok((
        id,
        TraceInfo {
            // Stored ids were checked when they were written.
            trace_id: TraceId::parse(&trace).unwrap_or_else(|_| TraceId::from_otel(&[0; 16])),
            experiment: r.get(2)?,
            request_time_ms: r.get(3)?,
            execution_ms: r.get(4)?,
            state: TraceState::parse(&state).unwrap_or_default(),
            name: r.get(6)?,
            request_preview: r.get(7)?,
            response_preview: r.get(8)?,
            client_request_id: r.get(9)?,
            metadata: BTreeMap::new(),
            tags: BTreeMap::new(),
            assessments: Vec::new(),
            runs: Vec::new(),
            span_count: u64::try_from(r.get::<_, i64>(10)?).unwrap_or(0),
        },
    ))
}

/// Fills in a trace's metadata, tags, assessments and runs.
fn details(conn: &Connection, id: i64, mut info: TraceInfo) -> Result<TraceInfo, Error> {
    let op = || format!("reading trace {}", info.trace_id);
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT kind, key, value FROM trace_kv WHERE trace = ?1 AND kind IN (?2, ?3) AND value IS NOT NULL",
            )
            .map_err(Error::db(op()))?;
        let mut rows = stmt
            .query(rusqlite::params![id, METADATA, TAG])
            .map_err(Error::db(op()))?;
        while let Some(r) = rows.next().map_err(Error::db(op()))? {
            let kind: i64 = r.get(0).map_err(Error::db(op()))?;
            let key: String = r.get(1).map_err(Error::db(op()))?;
            let value: String = r.get(2).map_err(Error::db(op()))?;
            if kind == METADATA {
                info.metadata.insert(key, value);
            } else {
                info.tags.insert(key, value);
            }
        }
    }
    {
        let mut stmt = conn
            .prepare_cached(
                "SELECT id, body FROM assessments WHERE trace = ?1 AND body IS NOT NULL ORDER BY at, id",
            )
            .map_err(Error::db(op()))?;
        let rows: Vec<(String, String)> = stmt
            .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(Error::db(op()))?;
        for (aid, body) in rows {
            let a: Assessment = serde_json::from_str(&body).map_err(|e| Error::Corrupt {
                what: format!("assessment {aid} of {}", info.trace_id),
                reason: e.to_string(),
            })?;
            info.assessments.push(a);
        }
    }
    {
        let mut stmt = conn
            .prepare_cached("SELECT run FROM trace_runs WHERE trace = ?1 ORDER BY run")
            .map_err(Error::db(op()))?;
        info.runs = stmt
            .query_map([id], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(Error::db(op()))?;
    }
    Ok(info)
}

pub(crate) fn agg_kind(a: Aggregation) -> &'static str {
    a.kind()
}
