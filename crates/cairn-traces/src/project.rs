//! The index as a projection of the log: [`apply`] folds one entry into the index tables, in
//! the transaction that appends it, and [`refresh`] recomputes the searchable columns of the
//! traces an append touched.
//!
//! Every mutable value (a trace field, a metadata key, a tag, an assessment) is one row holding
//! the stamp of the entry that wrote it; an entry with a later stamp (time, then source name,
//! then position) replaces it, an earlier one is ignored. So the index is the same on every
//! device whatever order the logs arrive in. A deletion is a row with no value (a tombstone),
//! and a deleted trace stays deleted.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{OptionalExtension, Transaction, params};

use crate::error::Error;
use crate::model::{
    Assessment, Entry, Field, Record, Span, TraceId, TraceState, Value, attr, meta, tag,
};

/// Kinds of `trace_kv` rows.
pub(crate) const FIELD: i64 = 0;
pub(crate) const METADATA: i64 = 1;
pub(crate) const TAG: i64 = 2;

/// MLflow's preview length on its own server.
const PREVIEW_CHARS: usize = 1000;
/// Text of one span kept for substring search.
const SPAN_TEXT_CHARS: usize = 8192;

/// Where an entry sits and when it was written: the order in which writes to one key win.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp<'a> {
    pub(crate) at: i64,
    pub(crate) src: &'a str,
    /// The source's row id (for span positions).
    pub(crate) source: i64,
    pub(crate) seq: i64,
}

fn db(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Error {
    Error::db(op)
}

/// Folds one entry into the index; records the traces whose searchable columns need a
/// [`refresh`].
pub(crate) fn apply(
    tx: &Transaction<'_>,
    stamp: &Stamp<'_>,
    entry: &Entry,
    touched: &mut BTreeSet<i64>,
) -> Result<(), Error> {
    let trace = entry.record.trace();
    if is_deleted(tx, &trace)? {
        return Ok(());
    }
    match &entry.record {
        Record::Span { experiment, span } => {
            let id = ensure_trace(tx, &trace)?;
            touched.insert(id);
            put_span(tx, id, stamp, experiment, span)
        }
        Record::Info {
            fields,
            metadata,
            tags,
            ..
        } => {
            let id = ensure_trace(tx, &trace)?;
            touched.insert(id);
            for (f, v) in fields {
                put_kv(tx, id, FIELD, f.key(), v.as_deref(), stamp)?;
            }
            for (k, v) in metadata {
                put_kv(tx, id, METADATA, k, Some(v), stamp)?;
            }
            for (k, v) in tags {
                put_kv(tx, id, TAG, k, Some(v), stamp)?;
            }
            Ok(())
        }
        Record::Tag { key, value, .. } => {
            let id = ensure_trace(tx, &trace)?;
            touched.insert(id);
            put_kv(tx, id, TAG, key, value.as_deref(), stamp)
        }
        Record::Assessment { id: aid, body, .. } => {
            let id = ensure_trace(tx, &trace)?;
            put_assessment(tx, id, aid, body.as_deref(), stamp)
        }
        Record::Link { run, .. } => {
            let id = ensure_trace(tx, &trace)?;
            tx.prepare_cached("INSERT OR IGNORE INTO trace_runs (run, trace) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![run, id]))
                .map_err(db("linking a trace to a run"))?;
            Ok(())
        }
        Record::Delete { .. } => {
            if let Some(id) = trace_row(tx, &trace)? {
                touched.remove(&id);
                delete_trace(tx, id)?;
            }
            tx.prepare_cached("INSERT OR IGNORE INTO deleted (trace_id, at) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![trace.as_str(), stamp.at]))
                .map_err(db("deleting a trace"))?;
            Ok(())
        }
    }
}

fn is_deleted(tx: &Transaction<'_>, trace: &TraceId) -> Result<bool, Error> {
    tx.prepare_cached("SELECT 1 FROM deleted WHERE trace_id = ?1")
        .and_then(|mut s| s.exists([trace.as_str()]))
        .map_err(db("reading deletions"))
}

pub(crate) fn trace_row(tx: &rusqlite::Connection, trace: &TraceId) -> Result<Option<i64>, Error> {
    tx.prepare_cached("SELECT id FROM traces WHERE trace_id = ?1")
        .and_then(|mut s| s.query_row([trace.as_str()], |r| r.get(0)).optional())
        .map_err(db("finding a trace"))
}

fn ensure_trace(tx: &Transaction<'_>, trace: &TraceId) -> Result<i64, Error> {
    if let Some(id) = trace_row(tx, trace)? {
        return Ok(id);
    }
    // Until a span or a client says more, a trace is in no experiment and found by no search.
    tx.prepare_cached(
        "INSERT INTO traces (trace_id, experiment, request_time, state) VALUES (?1, '', 0, 'STATE_UNSPECIFIED')",
    )
    .and_then(|mut s| s.execute([trace.as_str()]))
    .map_err(db("adding a trace"))?;
    Ok(tx.last_insert_rowid())
}

fn delete_trace(tx: &Transaction<'_>, id: i64) -> Result<(), Error> {
    for sql in [
        "DELETE FROM span_text WHERE rowid IN (SELECT id FROM spans WHERE trace = ?1)",
        "DELETE FROM trace_text WHERE rowid = ?1",
        "DELETE FROM spans WHERE trace = ?1",
        "DELETE FROM trace_kv WHERE trace = ?1",
        "DELETE FROM assessments WHERE trace = ?1",
        "DELETE FROM trace_runs WHERE trace = ?1",
        "DELETE FROM traces WHERE id = ?1",
    ] {
        tx.prepare_cached(sql)
            .and_then(|mut s| s.execute([id]))
            .map_err(db("deleting a trace"))?;
    }
    Ok(())
}

/// Writes a key's value when the stamp is later than the one it holds.
fn put_kv(
    tx: &Transaction<'_>,
    trace: i64,
    kind: i64,
    key: &str,
    value: Option<&str>,
    stamp: &Stamp<'_>,
) -> Result<(), Error> {
    tx.prepare_cached(
        "INSERT INTO trace_kv (trace, kind, key, value, at, src, seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
         ON CONFLICT (trace, kind, key) DO UPDATE SET value = excluded.value, at = excluded.at, \
         src = excluded.src, seq = excluded.seq \
         WHERE (excluded.at, excluded.src, excluded.seq) > (trace_kv.at, trace_kv.src, trace_kv.seq)",
    )
    .and_then(|mut s| {
        s.execute(params![
            trace, kind, key, value, stamp.at, stamp.src, stamp.seq
        ])
    })
    .map_err(db("writing a trace key"))?;
    Ok(())
}

/// An assessment's value as the index compares it: a JSON string as its text, anything else as
/// its JSON.
fn assessment_value_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn put_assessment(
    tx: &Transaction<'_>,
    trace: i64,
    id: &str,
    body: Option<&Assessment>,
    stamp: &Stamp<'_>,
) -> Result<(), Error> {
    let (name, kind, value, valid, json) = match body {
        None => (None, None, None, None, None),
        Some(a) => (
            Some(a.assessment_name.clone()),
            Some(a.value.kind()),
            Some(assessment_value_text(a.value.value())),
            Some(a.valid),
            Some(
                serde_json::to_string(a)
                    .map_err(|e| Error::Invalid(format!("assessment {id} does not encode: {e}")))?,
            ),
        ),
    };
    tx.prepare_cached(
        "INSERT INTO assessments (trace, id, name, kind, value, valid, body, at, src, seq) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) \
         ON CONFLICT (trace, id) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
         value = excluded.value, valid = excluded.valid, body = excluded.body, at = excluded.at, \
         src = excluded.src, seq = excluded.seq \
         WHERE (excluded.at, excluded.src, excluded.seq) > (assessments.at, assessments.src, assessments.seq)",
    )
    .and_then(|mut s| {
        s.execute(params![
            trace, id, name, kind, value, valid, json, stamp.at, stamp.src, stamp.seq
        ])
    })
    .map_err(db("writing an assessment"))?;
    Ok(())
}

fn put_span(
    tx: &Transaction<'_>,
    trace: i64,
    stamp: &Stamp<'_>,
    experiment: &str,
    span: &Span,
) -> Result<(), Error> {
    let old: Option<(i64, i64, String, i64)> = tx
        .prepare_cached("SELECT id, at, src, seq FROM spans WHERE trace = ?1 AND span_id = ?2")
        .and_then(|mut s| {
            s.query_row(params![trace, span.span_id.as_slice()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
        })
        .map_err(db("reading a span"))?;
    let status = span.status.code.short_name();
    let span_type = span.span_type();
    let end = i64::try_from(span.end_ns).unwrap_or(i64::MAX);
    let start = i64::try_from(span.start_ns).unwrap_or(i64::MAX);
    let row_id = match old {
        Some((id, at, src, seq)) => {
            if (at, src.as_str(), seq) >= (stamp.at, stamp.src, stamp.seq) {
                return Ok(());
            }
            tx.prepare_cached("DELETE FROM span_text WHERE rowid = ?1")
                .and_then(|mut s| s.execute([id]))
                .map_err(db("replacing a span"))?;
            tx.prepare_cached(
                "UPDATE spans SET parent = ?2, name = ?3, type = ?4, status = ?5, start_ns = ?6, \
                 end_ns = ?7, at = ?8, src = ?9, source = ?10, seq = ?11 WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.execute(params![
                    id,
                    span.parent_id.as_ref().map(|p| p.as_slice()),
                    span.name,
                    span_type,
                    status,
                    start,
                    end,
                    stamp.at,
                    stamp.src,
                    stamp.source,
                    stamp.seq
                ])
            })
            .map_err(db("replacing a span"))?;
            id
        }
        None => {
            tx.prepare_cached(
                "INSERT INTO spans (trace, span_id, parent, name, type, status, start_ns, end_ns, at, src, source, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    trace,
                    span.span_id.as_slice(),
                    span.parent_id.as_ref().map(|p| p.as_slice()),
                    span.name,
                    span_type,
                    status,
                    start,
                    end,
                    stamp.at,
                    stamp.src,
                    stamp.source,
                    stamp.seq
                ])
            })
            .map_err(db("adding a span"))?;
            let id = tx.last_insert_rowid();
            tx.prepare_cached("UPDATE traces SET span_count = span_count + 1 WHERE id = ?1")
                .and_then(|mut s| s.execute([trace]))
                .map_err(db("counting spans"))?;
            id
        }
    };
    tx.prepare_cached("INSERT INTO span_text (rowid, text) VALUES (?1, ?2)")
        .and_then(|mut s| s.execute(params![row_id, span_text(span)]))
        .map_err(db("indexing a span's text"))?;
    tx.prepare_cached(
        "UPDATE traces SET span_experiment = COALESCE(span_experiment, NULLIF(?2, '')), \
         span_start = MIN(COALESCE(span_start, ?3), ?3), \
         span_end = CASE WHEN ?4 > 0 THEN MAX(COALESCE(span_end, ?4), ?4) ELSE span_end END \
         WHERE id = ?1",
    )
    .and_then(|mut s| s.execute(params![trace, experiment, start, end]))
    .map_err(db("updating a trace's times"))?;
    if span.parent_id.is_none() {
        let render = |key: &str| {
            span.attribute(key).map(|v| match v {
                Value::Str(s) => s.clone(),
                other => other.to_python_json(),
            })
        };
        let root_status = match span.status.code {
            crate::model::StatusCode::Error => TraceState::Error,
            _ => TraceState::Ok,
        };
        tx.prepare_cached(
            "UPDATE traces SET root_status = ?2, root_name = ?3, root_inputs = ?4, root_outputs = ?5 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                trace,
                root_status.as_str(),
                span.name,
                render(attr::INPUTS),
                render(attr::OUTPUTS)
            ])
        })
        .map_err(db("updating a trace's root span"))?;
        // Tags travel over OTLP as root-span attributes `mlflow.traceTag.<key>`.
        for (k, v) in &span.attributes {
            if let Some(key) = k.strip_prefix(attr::TRACE_TAG_PREFIX)
                && !key.is_empty()
            {
                let text = match v {
                    Value::Str(s) => {
                        serde_json::from_str::<String>(s).unwrap_or_else(|_| s.clone())
                    }
                    other => other.to_python_json(),
                };
                put_kv(tx, trace, TAG, key, Some(&text), stamp)?;
            }
        }
    }
    Ok(())
}

/// What substring search sees of a span: its name, status message, attributes (key and value
/// as MLflow's client dumps them) and event names, cut at [`SPAN_TEXT_CHARS`] characters.
fn span_text(span: &Span) -> String {
    let mut t = String::with_capacity(256);
    t.push_str(&span.name);
    if !span.status.message.is_empty() {
        t.push('\n');
        t.push_str(&span.status.message);
    }
    for (k, v) in &span.attributes {
        if k == attr::REQUEST_ID {
            continue;
        }
        t.push('\n');
        t.push_str(k);
        t.push_str(": ");
        match v {
            Value::Str(s) => t.push_str(s),
            other => t.push_str(&other.to_python_json()),
        }
        if t.len() > SPAN_TEXT_CHARS * 4 {
            break;
        }
    }
    for e in &span.events {
        t.push('\n');
        t.push_str(&e.name);
    }
    match t.char_indices().nth(SPAN_TEXT_CHARS) {
        Some((i, _)) => t[..i].to_owned(),
        None => t,
    }
}

pub(crate) fn truncate_preview(s: &str) -> String {
    if s.chars().count() <= PREVIEW_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(PREVIEW_CHARS - 3).collect();
    out.push_str("...");
    out
}

/// Recomputes the searchable columns of `traces` from the fields clients set and, where they
/// set none, from what the spans say (as MLflow's server does for spans logged over OTLP).
pub(crate) fn refresh(tx: &Transaction<'_>, traces: &BTreeSet<i64>) -> Result<(), Error> {
    for &id in traces {
        let fields: BTreeMap<String, String> = {
            let mut stmt = tx
                .prepare_cached(
                    "SELECT key, value FROM trace_kv WHERE trace = ?1 AND kind = ?2 AND value IS NOT NULL",
                )
                .map_err(db("refreshing a trace"))?;
            stmt.query_map(params![id, FIELD], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(db("refreshing a trace"))?
        };
        let one = |kind: i64, key: &str| -> Result<Option<String>, Error> {
            Ok(tx
                .prepare_cached(
                    "SELECT value FROM trace_kv WHERE trace = ?1 AND kind = ?2 AND key = ?3",
                )
                .and_then(|mut s| {
                    s.query_row(params![id, kind, key], |r| r.get::<_, Option<String>>(0))
                        .optional()
                })
                .map_err(db("refreshing a trace"))?
                .flatten())
        };
        let name_tag = one(TAG, tag::TRACE_NAME)?;
        let source_run = one(METADATA, meta::SOURCE_RUN)?;
        #[allow(clippy::type_complexity)]
        let (span_exp, span_start, span_end, root_status, root_name, root_in, root_out, spans): (
            Option<String>,
            Option<i64>,
            Option<i64>,
            Option<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            i64,
        ) = tx
            .prepare_cached(
                "SELECT span_experiment, span_start, span_end, root_status, root_name, root_inputs, \
                 root_outputs, span_count FROM traces WHERE id = ?1",
            )
            .and_then(|mut s| {
                s.query_row([id], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ))
                })
            })
            .map_err(db("refreshing a trace"))?;
        let field = |f: Field| fields.get(f.key()).cloned();
        let int = |f: Field| field(f).and_then(|v| v.parse::<i64>().ok());
        let experiment = field(Field::Experiment).or(span_exp).unwrap_or_default();
        let start_ms = span_start.map(|ns| ns / 1_000_000);
        let request_time = int(Field::RequestTime).or(start_ms).unwrap_or(0);
        let execution = int(Field::ExecutionMs).or_else(|| {
            let end_ms = span_end.map(|ns| ns / 1_000_000)?;
            Some(end_ms - start_ms?)
        });
        let state = field(Field::State)
            .or(root_status)
            .or_else(|| (spans > 0).then(|| TraceState::InProgress.as_str().to_owned()))
            .unwrap_or_else(|| TraceState::StateUnspecified.as_str().to_owned());
        let name = name_tag.or(root_name);
        let request_preview =
            field(Field::RequestPreview).or(root_in.map(|s| truncate_preview(&s)));
        let response_preview =
            field(Field::ResponsePreview).or(root_out.map(|s| truncate_preview(&s)));
        tx.prepare_cached(
            "UPDATE traces SET experiment = ?2, request_time = ?3, execution_ms = ?4, state = ?5, \
             name = ?6, client_request_id = ?7, request_preview = ?8, response_preview = ?9, \
             run_id = ?10 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                experiment,
                request_time,
                execution,
                state,
                name,
                field(Field::ClientRequestId),
                request_preview,
                response_preview,
                source_run
            ])
        })
        .map_err(db("refreshing a trace"))?;
        // The trace-level half of the text search: id, name and previews, one row a trace.
        let trace_id: String = tx
            .prepare_cached("SELECT trace_id FROM traces WHERE id = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)))
            .map_err(db("refreshing a trace"))?;
        let text = [
            trace_id.as_str(),
            name.as_deref().unwrap_or(""),
            request_preview.as_deref().unwrap_or(""),
            response_preview.as_deref().unwrap_or(""),
        ]
        .join("\n");
        for (sql, p) in [
            ("DELETE FROM trace_text WHERE rowid = ?1", None),
            (
                "INSERT INTO trace_text (rowid, text) VALUES (?1, ?2)",
                Some(text.as_str()),
            ),
        ] {
            tx.prepare_cached(sql)
                .and_then(|mut s| match p {
                    None => s.execute(params![id]),
                    Some(t) => s.execute(params![id, t]),
                })
                .map_err(db("indexing a trace's text"))?;
        }
        if let Some(run) = &source_run {
            tx.prepare_cached("INSERT OR IGNORE INTO trace_runs (run, trace) VALUES (?1, ?2)")
                .and_then(|mut s| s.execute(params![run, id]))
                .map_err(db("linking a trace to its run"))?;
        }
    }
    Ok(())
}
