//! The log and its projection: what a trace's spans and its client's writes add up to.

use cairn_traces::{
    Assessment, AssessmentSource, AssessmentValue, Field, Record, TraceState, TraceStore, Value,
    entry_bytes,
};

use crate::{EXP, at, span, span_entry, trace_entries, trace_id};

fn same_spans(a: &[cairn_traces::Span], b: &[cairn_traces::Span]) -> bool {
    // NaN != NaN: compare through the log's encoding.
    let enc = |s: &cairn_traces::Span| {
        entry_bytes(&at(
            0,
            Record::Span {
                experiment: String::new(),
                span: s.clone(),
            },
        ))
    };
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| enc(x) == enc(y))
}

#[test]
fn a_trace_is_what_its_spans_say() {
    let mut store = TraceStore::open_in_memory().unwrap();
    let entries = trace_entries(1, 3, 1_700_000_000_000);
    store.append(&entries).unwrap();
    let info = store.info(&trace_id(1)).unwrap().unwrap();
    assert_eq!(info.experiment, EXP);
    assert_eq!(info.request_time_ms, 1_700_000_000_000);
    assert_eq!(info.execution_ms, Some(100));
    assert_eq!(info.state, TraceState::Ok);
    assert_eq!(info.name.as_deref(), Some("root-1"));
    assert_eq!(
        info.request_preview.as_deref(),
        Some(r#"{"q": "question 1"}"#)
    );
    assert_eq!(info.response_preview.as_deref(), Some(r#""answer 1""#));
    assert_eq!(info.span_count, 3);
    let spans = store.spans(&trace_id(1)).unwrap();
    let sent: Vec<_> = entries
        .iter()
        .map(|e| match &e.record {
            Record::Span { span, .. } => span.clone(),
            _ => unreachable!(),
        })
        .collect();
    assert!(same_spans(&spans, &sent), "{spans:#?}");
    assert!(store.info(&trace_id(2)).unwrap().is_none());
}

#[test]
fn a_trace_without_its_root_is_in_progress() {
    let mut store = TraceStore::open_in_memory().unwrap();
    store
        .append(&[span_entry(1, span(4, 2, Some(1), "child", 10, 20))])
        .unwrap();
    let info = store.info(&trace_id(4)).unwrap().unwrap();
    assert_eq!(info.state, TraceState::InProgress);
    assert_eq!(info.name, None);
    store
        .append(&[span_entry(2, span(4, 1, None, "root", 5, 30))])
        .unwrap();
    let info = store.info(&trace_id(4)).unwrap().unwrap();
    assert_eq!(
        (info.state, info.request_time_ms, info.execution_ms),
        (TraceState::Ok, 5, Some(25))
    );
}

#[test]
fn chunks_round_trip_every_span_bit_exactly() {
    let mut store = TraceStore::open_in_memory().unwrap();
    let mut all = Vec::new();
    for t in 1..=40u8 {
        let mut entries = trace_entries(t, 60, 1_000 * u64::from(t));
        for e in &mut entries {
            if let Record::Span { span, .. } = &mut e.record {
                span.attributes.push((
                    "nan".into(),
                    Value::Double(f64::from_bits(0x7ff8_dead_beef_0001)),
                ));
                span.attributes.push(("neg0".into(), Value::Double(-0.0)));
                span.attributes
                    .push(("bytes".into(), Value::Bytes(vec![0, 1, 254, 255])));
            }
        }
        // Small appends (tail rows, sealed as the tail fills) and large ones (chunks at once).
        if t % 2 == 0 {
            for e in &entries {
                store.append(std::slice::from_ref(e)).unwrap();
            }
        } else {
            store.append(&entries).unwrap();
        }
        all.push(entries);
    }
    let stats = store.storage_stats().unwrap();
    assert!(stats.chunk_entries >= 2048, "{stats:?}");
    assert_eq!(stats.chunk_entries + stats.tail_entries, 40 * 60);
    assert!(stats.chunk_bytes < stats.raw_bytes, "{stats:?}");
    store.seal().unwrap();
    assert_eq!(store.storage_stats().unwrap().tail_entries, 0);
    for (i, entries) in all.iter().enumerate() {
        let t = i as u8 + 1;
        let mut sent: Vec<_> = entries
            .iter()
            .map(|e| match &e.record {
                Record::Span { span, .. } => span.clone(),
                _ => unreachable!(),
            })
            .collect();
        sent.sort_by_key(|s| s.start_ns);
        assert!(
            same_spans(&store.spans(&trace_id(t)).unwrap(), &sent),
            "trace {t}"
        );
    }
}

#[test]
fn what_a_client_sets_wins_over_what_spans_say() {
    let mut store = TraceStore::open_in_memory().unwrap();
    let t = trace_id(7);
    store
        .append(&[at(
            10,
            Record::Info {
                trace: t.clone(),
                fields: vec![
                    (Field::Experiment, Some(EXP.into())),
                    (Field::RequestTime, Some("123".into())),
                    (Field::ExecutionMs, Some("45".into())),
                    (Field::State, Some("ERROR".into())),
                    (Field::RequestPreview, Some("in".into())),
                ],
                metadata: vec![("mlflow.sourceRun".into(), "run-a".into())],
                tags: vec![("mlflow.traceName".into(), "named".into())],
            },
        )])
        .unwrap();
    store.append(&trace_entries(7, 2, 9_000)).unwrap();
    let info = store.info(&t).unwrap().unwrap();
    assert_eq!(info.request_time_ms, 123);
    assert_eq!(info.execution_ms, Some(45));
    assert_eq!(info.state, TraceState::Error);
    assert_eq!(info.name.as_deref(), Some("named"));
    assert_eq!(info.request_preview.as_deref(), Some("in"));
    // Not set by the client: from the root span.
    assert_eq!(info.response_preview.as_deref(), Some(r#""answer 7""#));
    assert_eq!(info.metadata["mlflow.sourceRun"], "run-a");
    assert_eq!(info.runs, vec!["run-a".to_owned()]);
    // A field set to nothing falls back to the spans again.
    store
        .append(&[at(
            11,
            Record::Info {
                trace: t.clone(),
                fields: vec![(Field::State, None)],
                metadata: vec![],
                tags: vec![],
            },
        )])
        .unwrap();
    assert_eq!(store.info(&t).unwrap().unwrap().state, TraceState::Ok);
}

#[test]
fn tags_keep_the_latest_write_and_deletions_are_tombstones() {
    let mut store = TraceStore::open_in_memory().unwrap();
    let t = trace_id(3);
    store.append(&trace_entries(3, 1, 100)).unwrap();
    let tag = |ms, value: Option<&str>| {
        at(
            ms,
            Record::Tag {
                trace: t.clone(),
                key: "k".into(),
                value: value.map(str::to_owned),
            },
        )
    };
    store.append(&[tag(5, Some("five"))]).unwrap();
    // An older write arriving later (a peer's) does not replace a newer one.
    store.append(&[tag(3, Some("three"))]).unwrap();
    assert_eq!(store.info(&t).unwrap().unwrap().tags["k"], "five");
    store.append(&[tag(10, None)]).unwrap();
    assert!(!store.info(&t).unwrap().unwrap().tags.contains_key("k"));
    // A set older than the deletion stays deleted; a newer one brings the tag back.
    store.append(&[tag(7, Some("seven"))]).unwrap();
    assert!(!store.info(&t).unwrap().unwrap().tags.contains_key("k"));
    store.append(&[tag(12, Some("twelve"))]).unwrap();
    assert_eq!(store.info(&t).unwrap().unwrap().tags["k"], "twelve");
}

fn feedback(trace: u8, id: &str, value: serde_json::Value, ms: i64) -> Assessment {
    Assessment {
        assessment_id: id.into(),
        assessment_name: "good".into(),
        trace_id: trace_id(trace),
        span_id: None,
        source: AssessmentSource {
            source_type: "HUMAN".into(),
            source_id: "bob".into(),
        },
        create_time_ms: ms,
        last_update_time_ms: ms,
        value: AssessmentValue::Feedback { value, error: None },
        rationale: None,
        metadata: Default::default(),
        overrides: None,
        valid: true,
    }
}

#[test]
fn assessments_are_written_replaced_and_deleted() {
    let mut store = TraceStore::open_in_memory().unwrap();
    let t = trace_id(5);
    store.append(&trace_entries(5, 1, 100)).unwrap();
    let write = |ms, a: Option<Assessment>| {
        at(
            ms,
            Record::Assessment {
                trace: t.clone(),
                id: "a-1".into(),
                body: a.map(Box::new),
            },
        )
    };
    store
        .append(&[write(
            1,
            Some(feedback(5, "a-1", serde_json::json!(true), 1)),
        )])
        .unwrap();
    store
        .append(&[write(
            2,
            Some(feedback(5, "a-1", serde_json::json!(0.5), 2)),
        )])
        .unwrap();
    let got = store.assessment(&t, "a-1").unwrap().unwrap();
    assert_eq!(got.value.value(), &serde_json::json!(0.5));
    assert_eq!(store.info(&t).unwrap().unwrap().assessments, vec![got]);
    store.append(&[write(3, None)]).unwrap();
    assert!(store.assessment(&t, "a-1").unwrap().is_none());
    assert!(store.info(&t).unwrap().unwrap().assessments.is_empty());
}

#[test]
fn a_deleted_trace_stays_deleted() {
    let mut store = TraceStore::open_in_memory().unwrap();
    let t = trace_id(9);
    store.append(&trace_entries(9, 3, 100)).unwrap();
    store
        .append(&[at(50, Record::Delete { trace: t.clone() })])
        .unwrap();
    assert!(store.info(&t).unwrap().is_none());
    assert!(store.spans(&t).unwrap().is_empty());
    assert!(store.is_deleted(&t).unwrap());
    // A span or a tag from a peer that had not heard changes nothing.
    store.append(&trace_entries(9, 2, 200)).unwrap();
    store
        .append(&[at(
            60,
            Record::Tag {
                trace: t.clone(),
                key: "k".into(),
                value: Some("v".into()),
            },
        )])
        .unwrap();
    assert!(store.info(&t).unwrap().is_none());
    assert_eq!(store.storage_stats().unwrap().traces, 0);
}

#[test]
fn a_span_sent_again_replaces_the_one_before() {
    let mut store = TraceStore::open_in_memory().unwrap();
    store
        .append(&[span_entry(1, span(6, 1, None, "first", 10, 20))])
        .unwrap();
    store
        .append(&[span_entry(2, span(6, 1, None, "second", 10, 30))])
        .unwrap();
    let spans = store.spans(&trace_id(6)).unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "second");
    let info = store.info(&trace_id(6)).unwrap().unwrap();
    assert_eq!((info.span_count, info.name.as_deref()), (1, Some("second")));
}

#[test]
fn root_span_attributes_carry_trace_tags() {
    let mut store = TraceStore::open_in_memory().unwrap();
    let mut root = span(8, 1, None, "root", 10, 20);
    root.attributes.push((
        "mlflow.traceTag.team".into(),
        Value::Str("\"vision\"".into()),
    ));
    store.append(&[span_entry(1, root)]).unwrap();
    assert_eq!(
        store.info(&trace_id(8)).unwrap().unwrap().tags["team"],
        "vision"
    );
}
