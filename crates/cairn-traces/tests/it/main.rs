//! Integration tests of `cairn-traces`, one binary (`autotests = false`): the store through its
//! public API (log, index, queries), durability on real files, the OTLP decoder's bounds, and
//! two stores exchanging their logs as sync does.

mod durability;
mod otlp;
mod peers;
mod search;
mod store;

use cairn_traces::{Entry, Record, Span, SpanStatus, StatusCode, TraceId, Value};

pub(crate) const EXP: &str = "0190f5d2a8f47c3a9e1b2c3d4e5f6a7b";

/// A span of trace `t` (its OpenTelemetry id is `t` repeated), id `s`, under `parent`.
pub(crate) fn span(
    t: u8,
    s: u8,
    parent: Option<u8>,
    name: &str,
    start_ms: u64,
    end_ms: u64,
) -> Span {
    Span {
        trace_id: [t; 16],
        span_id: [s; 8],
        parent_id: parent.map(|p| [p; 8]),
        name: name.into(),
        kind: 1,
        start_ns: start_ms * 1_000_000,
        end_ns: end_ms * 1_000_000,
        status: SpanStatus {
            code: StatusCode::Ok,
            message: String::new(),
        },
        attributes: vec![
            ("mlflow.spanType".into(), Value::Str("\"CHAIN\"".into())),
            (
                "mlflow.spanInputs".into(),
                Value::KvList(vec![("q".into(), Value::Str(format!("question {t}")))]),
            ),
            (
                "mlflow.spanOutputs".into(),
                Value::Str(format!("\"answer {t}\"")),
            ),
        ],
        ..Span::default()
    }
}

pub(crate) fn trace_id(t: u8) -> TraceId {
    TraceId::from_otel(&[t; 16])
}

pub(crate) fn at(ms: i64, record: Record) -> Entry {
    Entry { at_ms: ms, record }
}

pub(crate) fn span_entry(ms: i64, s: Span) -> Entry {
    at(
        ms,
        Record::Span {
            experiment: EXP.into(),
            span: s,
        },
    )
}

/// A trace of `n` spans: a root and `n - 1` children.
pub(crate) fn trace_entries(t: u8, n: u8, start_ms: u64) -> Vec<Entry> {
    let mut out = vec![span_entry(
        start_ms as i64,
        span(t, 1, None, &format!("root-{t}"), start_ms, start_ms + 100),
    )];
    for i in 1..n {
        out.push(span_entry(
            start_ms as i64,
            span(
                t,
                i + 1,
                Some(1),
                &format!("child-{i}"),
                start_ms + u64::from(i),
                start_ms + u64::from(i) + 10,
            ),
        ));
    }
    out
}
