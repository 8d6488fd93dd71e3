//! The index as a projection of the log: a [`Batch`] folds the entries of one append into the
//! index tables, in the transaction that appends them ([`Batch::apply`]), then
//! [`Batch::finish`] writes what it gathered per trace: the searchable columns of the traces it
//! touched, and its spans' text for substring search (see [`crate::span_text`]).
//!
//! Every mutable value (a trace field, a metadata key, a tag, an assessment) is one row holding
//! the stamp of the entry that wrote it; an entry with a later stamp (time, then source name,
//! then position) replaces it, an earlier one is ignored. So the index is the same on every
//! device whatever order the logs arrive in. A deletion is a row with no value (a tombstone),
//! and a deleted trace stays deleted.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use rusqlite::{OptionalExtension, Transaction, params};

use crate::error::Error;
use crate::model::{
    Assessment, Entry, Field, Record, Span, TraceId, TraceState, Value, attr, meta, tag,
};
use crate::span_text::{self, Rows};

/// Kinds of `trace_kv` rows.
pub(crate) const FIELD: i64 = 0;
pub(crate) const METADATA: i64 = 1;
pub(crate) const TAG: i64 = 2;

/// MLflow's preview length on its own server.
const PREVIEW_CHARS: usize = 1000;

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

/// A trace as a batch knows it.
#[derive(Debug, Clone, Copy)]
enum Known {
    Row(i64),
    /// Not in the index (yet).
    Absent,
    Deleted,
}

/// What a batch's spans say of their trace, folded into its row by [`Batch::finish`].
#[derive(Debug, Default)]
struct SpanFacts {
    added: i64,
    experiment: Option<String>,
    start: Option<i64>,
    end: Option<i64>,
    root: Option<RootFacts>,
}

#[derive(Debug)]
struct RootFacts {
    status: &'static str,
    name: String,
    inputs: Option<String>,
    outputs: Option<String>,
}

/// The index work of one append, gathered per trace so that each trace's row, searchable text
/// and span text are written once per append rather than once per entry.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    known: HashMap<TraceId, Known>,
    /// Traces this batch added: nothing of theirs is indexed yet.
    created: HashSet<i64>,
    /// Traces with keys written in this batch.
    keyed: HashSet<i64>,
    /// Traces whose searchable columns need recomputing, with what their spans add.
    touched: BTreeMap<i64, SpanFacts>,
    /// New spans' text, per trace.
    texts: BTreeMap<i64, Rows>,
    /// Traces whose span text is rebuilt from the log (a span was replaced, so its old text
    /// must go).
    rebuild: BTreeSet<i64>,
}

/// What became of a span entry.
enum Put {
    Added,
    Replaced,
    Ignored,
}

impl Batch {
    /// Folds one entry into the index.
    pub(crate) fn apply(
        &mut self,
        tx: &Transaction<'_>,
        stamp: &Stamp<'_>,
        entry: &Entry,
    ) -> Result<(), Error> {
        let trace = entry.record.trace();
        let known = match self.known.get(&trace) {
            Some(k) => *k,
            None => {
                let k = if is_deleted(tx, &trace)? {
                    Known::Deleted
                } else {
                    trace_row(tx, &trace)?.map_or(Known::Absent, Known::Row)
                };
                self.known.insert(trace.clone(), k);
                k
            }
        };
        let id = match (known, &entry.record) {
            (Known::Deleted, _) => return Ok(()),
            (_, Record::Delete { .. }) => {
                if let Known::Row(id) = known {
                    self.forget(id);
                    delete_trace(tx, id)?;
                }
                self.known.insert(trace.clone(), Known::Deleted);
                tx.prepare_cached("INSERT OR IGNORE INTO deleted (trace_id, at) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![trace.as_str(), stamp.at]))
                    .map_err(db("deleting a trace"))?;
                return Ok(());
            }
            (Known::Row(id), _) => id,
            (Known::Absent, _) => {
                let id = add_trace(tx, &trace)?;
                self.known.insert(trace, Known::Row(id));
                self.created.insert(id);
                id
            }
        };
        match &entry.record {
            Record::Span { experiment, span } => {
                let facts = self.touched.entry(id).or_default();
                match put_span(tx, id, stamp, experiment, span, facts)? {
                    Put::Added => {
                        if !self.rebuild.contains(&id) {
                            self.texts.entry(id).or_default().push(span);
                        }
                    }
                    Put::Replaced => {
                        self.texts.remove(&id);
                        self.rebuild.insert(id);
                    }
                    Put::Ignored => {}
                }
                if span.parent_id.is_none() {
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
                            self.keyed.insert(id);
                            put_kv(tx, id, TAG, key, Some(&text), stamp)?;
                        }
                    }
                }
                Ok(())
            }
            Record::Info {
                fields,
                metadata,
                tags,
                ..
            } => {
                self.touched.entry(id).or_default();
                self.keyed.insert(id);
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
                self.touched.entry(id).or_default();
                self.keyed.insert(id);
                put_kv(tx, id, TAG, key, value.as_deref(), stamp)
            }
            Record::Assessment { id: aid, body, .. } => {
                put_assessment(tx, id, aid, body.as_deref(), stamp)
            }
            Record::Link { run, .. } => {
                tx.prepare_cached("INSERT OR IGNORE INTO trace_runs (run, trace) VALUES (?1, ?2)")
                    .and_then(|mut s| s.execute(params![run, id]))
                    .map_err(db("linking a trace to a run"))?;
                Ok(())
            }
            Record::Delete { .. } => Ok(()),
        }
    }

    /// Drops what the batch gathered for a trace being deleted.
    fn forget(&mut self, id: i64) {
        self.created.remove(&id);
        self.keyed.remove(&id);
        self.touched.remove(&id);
        self.texts.remove(&id);
        self.rebuild.remove(&id);
    }

    /// Writes what the batch gathered: each touched trace's searchable columns (from the
    /// fields clients set and, where they set none, what the spans say, as MLflow's server does
    /// for spans logged over OTLP), and the span text of its new spans.
    pub(crate) fn finish(self, tx: &Transaction<'_>) -> Result<(), Error> {
        for (&id, facts) in &self.touched {
            let created = self.created.contains(&id);
            let keys = if created && !self.keyed.contains(&id) {
                Keys::default()
            } else {
                Keys::read(tx, id)?
            };
            refresh(tx, id, created, facts, &keys)?;
        }
        for (id, rows) in self.texts {
            let (first, last) = span_text::row_range(id);
            let next = if self.created.contains(&id) {
                first
            } else {
                tx.prepare_cached(
                    "SELECT rowid FROM span_text WHERE rowid BETWEEN ?1 AND ?2 ORDER BY rowid DESC LIMIT 1",
                )
                .and_then(|mut s| s.query_row(params![first, last], |r| r.get::<_, i64>(0)).optional())
                .map_err(db("indexing span text"))?
                .map_or(first, |r| r + 1)
            };
            for (row, (text, bounds)) in (next..).zip(rows.finish()) {
                if row > last {
                    // A trace appended to this many times gets its text in one row again.
                    rebuild_text(tx, id)?;
                    break;
                }
                insert_text(tx, row, &text, bounds.as_deref())?;
            }
        }
        for id in self.rebuild {
            rebuild_text(tx, id)?;
        }
        Ok(())
    }
}

fn insert_text(
    tx: &Transaction<'_>,
    row: i64,
    text: &str,
    bounds: Option<&[u8]>,
) -> Result<(), Error> {
    tx.prepare_cached("INSERT INTO span_text (rowid, text, bounds) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.execute(params![row, text, bounds]))
        .map_err(db("indexing span text"))?;
    Ok(())
}

/// Replaces a trace's span text with its spans' as the log holds them now.
fn rebuild_text(tx: &Transaction<'_>, id: i64) -> Result<(), Error> {
    let (first, last) = span_text::row_range(id);
    tx.prepare_cached("DELETE FROM span_text WHERE rowid BETWEEN ?1 AND ?2")
        .and_then(|mut s| s.execute(params![first, last]))
        .map_err(db("re-indexing span text"))?;
    let mut rows = Rows::default();
    for span in crate::store::trace_spans(tx, id, "re-indexing span text")? {
        rows.push(&span);
    }
    let rows = rows.finish();
    if rows.len() as i64 > last - first + 1 {
        tracing::warn!(
            trace = id,
            rows = rows.len(),
            "a trace's spans hold more text than substring search indexes (over a GiB): the rest is not searchable"
        );
    }
    for (row, (text, bounds)) in (first..=last).zip(rows) {
        insert_text(tx, row, &text, bounds.as_deref())?;
    }
    Ok(())
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

fn add_trace(tx: &Transaction<'_>, trace: &TraceId) -> Result<i64, Error> {
    // Until a span or a client says more, a trace is in no experiment and found by no search.
    tx.prepare_cached(
        "INSERT INTO traces (trace_id, experiment, request_time, state) VALUES (?1, '', 0, 'STATE_UNSPECIFIED')",
    )
    .and_then(|mut s| s.execute([trace.as_str()]))
    .map_err(db("adding a trace"))?;
    let id = tx.last_insert_rowid();
    if id >= 1 << (63 - span_text::ROW_BITS) {
        return Err(Error::Invalid(format!(
            "trace {trace} would be row {id}: more traces than the index numbers"
        )));
    }
    Ok(id)
}

fn delete_trace(tx: &Transaction<'_>, id: i64) -> Result<(), Error> {
    let (first, last) = span_text::row_range(id);
    tx.prepare_cached("DELETE FROM span_text WHERE rowid BETWEEN ?1 AND ?2")
        .and_then(|mut s| s.execute(params![first, last]))
        .map_err(db("deleting a trace"))?;
    for sql in [
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

/// Writes a span's row when it is new or its stamp is later than the one it holds, and folds
/// what it says of its trace into `facts`.
fn put_span(
    tx: &Transaction<'_>,
    trace: i64,
    stamp: &Stamp<'_>,
    experiment: &str,
    span: &Span,
    facts: &mut SpanFacts,
) -> Result<Put, Error> {
    let status = span.status.code.short_name();
    let span_type = span.span_type();
    let end = i64::try_from(span.end_ns).unwrap_or(i64::MAX);
    let start = i64::try_from(span.start_ns).unwrap_or(i64::MAX);
    let parent = span.parent_id.as_ref().map(|p| p.as_slice());
    let added = tx
        .prepare_cached(
            "INSERT INTO spans (trace, span_id, parent, name, type, status, start_ns, end_ns, at, src, source, seq) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) ON CONFLICT (trace, span_id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                trace,
                span.span_id.as_slice(),
                parent,
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
        .map_err(db("adding a span"))?
        == 1;
    let put = if added {
        facts.added += 1;
        Put::Added
    } else {
        let (id, at, src, seq): (i64, i64, String, i64) = tx
            .prepare_cached("SELECT id, at, src, seq FROM spans WHERE trace = ?1 AND span_id = ?2")
            .and_then(|mut s| {
                s.query_row(params![trace, span.span_id.as_slice()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })
            })
            .map_err(db("reading a span"))?;
        if (at, src.as_str(), seq) >= (stamp.at, stamp.src, stamp.seq) {
            return Ok(Put::Ignored);
        }
        tx.prepare_cached(
            "UPDATE spans SET parent = ?2, name = ?3, type = ?4, status = ?5, start_ns = ?6, \
             end_ns = ?7, at = ?8, src = ?9, source = ?10, seq = ?11 WHERE id = ?1",
        )
        .and_then(|mut s| {
            s.execute(params![
                id,
                parent,
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
        Put::Replaced
    };
    if facts.experiment.is_none() && !experiment.is_empty() {
        facts.experiment = Some(experiment.to_owned());
    }
    facts.start = Some(facts.start.map_or(start, |s| s.min(start)));
    if end > 0 {
        facts.end = Some(facts.end.map_or(end, |e| e.max(end)));
    }
    if span.parent_id.is_none() {
        let render = |key: &str| {
            span.attribute(key).map(|v| match v {
                Value::Str(s) => s.clone(),
                other => other.to_python_json(),
            })
        };
        facts.root = Some(RootFacts {
            status: match span.status.code {
                crate::model::StatusCode::Error => TraceState::Error,
                _ => TraceState::Ok,
            }
            .as_str(),
            name: span.name.clone(),
            inputs: render(attr::INPUTS),
            outputs: render(attr::OUTPUTS),
        });
    }
    Ok(put)
}

pub(crate) fn truncate_preview(s: &str) -> String {
    if s.chars().count() <= PREVIEW_CHARS {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(PREVIEW_CHARS - 3).collect();
    out.push_str("...");
    out
}

/// The keys of a trace that its searchable columns read.
#[derive(Debug, Default)]
struct Keys {
    fields: BTreeMap<String, String>,
    name_tag: Option<String>,
    source_run: Option<String>,
}

impl Keys {
    fn read(tx: &Transaction<'_>, id: i64) -> Result<Keys, Error> {
        let mut keys = Keys::default();
        let mut stmt = tx
            .prepare_cached(
                "SELECT kind, key, value FROM trace_kv WHERE trace = ?1 AND value IS NOT NULL",
            )
            .map_err(db("refreshing a trace"))?;
        let mut rows = stmt.query([id]).map_err(db("refreshing a trace"))?;
        while let Some(r) = rows.next().map_err(db("refreshing a trace"))? {
            let kind: i64 = r.get(0).map_err(db("refreshing a trace"))?;
            let key: String = r.get(1).map_err(db("refreshing a trace"))?;
            let value: String = r.get(2).map_err(db("refreshing a trace"))?;
            match kind {
                FIELD => {
                    keys.fields.insert(key, value);
                }
                TAG if key == tag::TRACE_NAME => keys.name_tag = Some(value),
                METADATA if key == meta::SOURCE_RUN => keys.source_run = Some(value),
                _ => {}
            }
        }
        Ok(keys)
    }
}

/// Recomputes a trace's searchable columns from the fields clients set and, where they set
/// none, from what the spans say (its row's and this batch's), and its trace-level text.
fn refresh(
    tx: &Transaction<'_>,
    id: i64,
    created: bool,
    facts: &SpanFacts,
    keys: &Keys,
) -> Result<(), Error> {
    #[allow(clippy::type_complexity)]
    let (
        trace_id,
        span_exp,
        span_start,
        span_end,
        root_status,
        root_name,
        root_in,
        root_out,
        spans,
    ): (
        String,
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
            "SELECT trace_id, span_experiment, span_start, span_end, root_status, root_name, \
             root_inputs, root_outputs, span_count FROM traces WHERE id = ?1",
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
                    r.get(8)?,
                ))
            })
        })
        .map_err(db("refreshing a trace"))?;
    let span_exp = span_exp.or_else(|| facts.experiment.clone());
    let span_start = match (span_start, facts.start) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let span_end = match (span_end, facts.end) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let (root_status, root_name, root_in, root_out) = match &facts.root {
        Some(r) => (
            Some(r.status.to_owned()),
            Some(r.name.clone()),
            r.inputs.clone(),
            r.outputs.clone(),
        ),
        None => (root_status, root_name, root_in, root_out),
    };
    let spans = spans + facts.added;

    let field = |f: Field| keys.fields.get(f.key()).cloned();
    let int = |f: Field| field(f).and_then(|v| v.parse::<i64>().ok());
    let experiment = field(Field::Experiment)
        .or_else(|| span_exp.clone())
        .unwrap_or_default();
    let start_ms = span_start.map(|ns| ns / 1_000_000);
    let request_time = int(Field::RequestTime).or(start_ms).unwrap_or(0);
    let execution = int(Field::ExecutionMs).or_else(|| {
        let end_ms = span_end.map(|ns| ns / 1_000_000)?;
        Some(end_ms - start_ms?)
    });
    let state = field(Field::State)
        .or_else(|| root_status.clone())
        .or_else(|| (spans > 0).then(|| TraceState::InProgress.as_str().to_owned()))
        .unwrap_or_else(|| TraceState::StateUnspecified.as_str().to_owned());
    let name = keys.name_tag.clone().or_else(|| root_name.clone());
    let request_preview =
        field(Field::RequestPreview).or_else(|| root_in.as_deref().map(truncate_preview));
    let response_preview =
        field(Field::ResponsePreview).or_else(|| root_out.as_deref().map(truncate_preview));
    tx.prepare_cached(
        "UPDATE traces SET experiment = ?2, request_time = ?3, execution_ms = ?4, state = ?5, \
         name = ?6, client_request_id = ?7, request_preview = ?8, response_preview = ?9, \
         run_id = ?10, span_count = ?11, span_experiment = ?12, span_start = ?13, span_end = ?14, \
         root_status = ?15, root_name = ?16, root_inputs = ?17, root_outputs = ?18 WHERE id = ?1",
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
            keys.source_run,
            spans,
            span_exp,
            span_start,
            span_end,
            root_status,
            root_name,
            root_in,
            root_out
        ])
    })
    .map_err(db("refreshing a trace"))?;
    // The trace-level half of the text search: id, name and previews, one row a trace.
    let text = [
        trace_id.as_str(),
        name.as_deref().unwrap_or(""),
        request_preview.as_deref().unwrap_or(""),
        response_preview.as_deref().unwrap_or(""),
    ]
    .join("\n");
    let old: Option<String> = if created {
        None
    } else {
        tx.prepare_cached("SELECT text FROM trace_text WHERE rowid = ?1")
            .and_then(|mut s| s.query_row([id], |r| r.get(0)).optional())
            .map_err(db("indexing a trace's text"))?
    };
    if old.as_deref() != Some(text.as_str()) {
        if old.is_some() {
            tx.prepare_cached("DELETE FROM trace_text WHERE rowid = ?1")
                .and_then(|mut s| s.execute([id]))
                .map_err(db("indexing a trace's text"))?;
        }
        tx.prepare_cached("INSERT INTO trace_text (rowid, text) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![id, text]))
            .map_err(db("indexing a trace's text"))?;
    }
    if let Some(run) = &keys.source_run {
        tx.prepare_cached("INSERT OR IGNORE INTO trace_runs (run, trace) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![run, id]))
            .map_err(db("linking a trace to its run"))?;
    }
    Ok(())
}
