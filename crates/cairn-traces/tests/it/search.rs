//! Searches with MLflow's filter grammar, free text, order and pages; trace metrics.

use cairn_traces::{
    Aggregation, AssessmentSource, AssessmentValue, Error, Field, MetricView, MetricsQuery, Record,
    Search, TraceStore, Value,
};

use crate::{EXP, at, span, span_entry, trace_entries, trace_id};

/// Ten traces: trace t starts at t*1000 ms, lasts 100 ms; odd ones fail; every third is tagged
/// and run-linked; trace 4 has an LLM span with distinctive text; trace 2 has a feedback.
fn store() -> TraceStore {
    let mut store = TraceStore::open_in_memory().unwrap();
    for t in 1..=10u8 {
        let mut entries = trace_entries(t, 3, u64::from(t) * 1000);
        if t % 2 == 1 {
            entries.push(at(
                1,
                Record::Info {
                    trace: trace_id(t),
                    fields: vec![(Field::State, Some("ERROR".into()))],
                    metadata: vec![],
                    tags: vec![],
                },
            ));
        }
        if t % 3 == 0 {
            entries.push(at(
                1,
                Record::Info {
                    trace: trace_id(t),
                    fields: vec![],
                    metadata: vec![("mlflow.sourceRun".into(), "run-3".into())],
                    tags: vec![("team".into(), format!("vision-{t}"))],
                },
            ));
        }
        store.append(&entries).unwrap();
    }
    let mut llm = span(4, 9, Some(1), "ChatModel", 4001, 4050);
    llm.attributes = vec![
        ("mlflow.spanType".into(), Value::Str("\"LLM\"".into())),
        (
            "mlflow.spanInputs".into(),
            Value::Str("What is the Zanzibar protocol?".into()),
        ),
    ];
    store.append(&[span_entry(5, llm)]).unwrap();
    store
        .append(&[at(
            5,
            Record::Link {
                trace: trace_id(5),
                run: "run-3".into(),
            },
        )])
        .unwrap();
    store
        .append(&[at(
            6,
            Record::Assessment {
                trace: trace_id(2),
                id: "a-1".into(),
                body: Some(Box::new(cairn_traces::Assessment {
                    assessment_id: "a-1".into(),
                    assessment_name: "correct".into(),
                    trace_id: trace_id(2),
                    span_id: None,
                    source: AssessmentSource {
                        source_type: "HUMAN".into(),
                        source_id: "ann".into(),
                    },
                    create_time_ms: 6,
                    last_update_time_ms: 6,
                    value: AssessmentValue::Feedback {
                        value: serde_json::json!(0.9),
                        error: None,
                    },
                    rationale: None,
                    metadata: Default::default(),
                    overrides: None,
                    valid: true,
                })),
            },
        )])
        .unwrap();
    store
}

fn ids(store: &TraceStore, q: Search) -> Vec<u8> {
    let (found, _) = store.search(&q).unwrap();
    found
        .iter()
        .map(|t| {
            let hex = t.trace_id.as_str().strip_prefix("tr-").unwrap();
            u8::from_str_radix(&hex[..2], 16).unwrap()
        })
        .collect()
}

fn filtered(store: &TraceStore, f: &str) -> Vec<u8> {
    ids(
        store,
        Search {
            experiments: vec![EXP.into()],
            filter: Some(f.into()),
            limit: 100,
            ..Search::default()
        },
    )
}

#[test]
fn filters_select_what_they_say() {
    let s = store();
    assert_eq!(filtered(&s, ""), vec![10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(filtered(&s, "trace.status = 'ERROR'"), vec![9, 7, 5, 3, 1]);
    assert_eq!(filtered(&s, "status = 'OK'"), vec![10, 8, 6, 4, 2]);
    assert_eq!(
        filtered(&s, "trace.status IN ('OK') AND timestamp_ms >= 6000"),
        vec![10, 8, 6]
    );
    assert_eq!(filtered(&s, "trace.timestamp_ms < 3000"), vec![2, 1]);
    assert_eq!(
        filtered(
            &s,
            "trace.execution_time_ms = 100 AND trace.end_time_ms <= 2100"
        ),
        vec![2, 1]
    );
    assert_eq!(filtered(&s, "tags.team = 'vision-6'"), vec![6]);
    assert_eq!(filtered(&s, "tags.team LIKE 'vision%'"), vec![9, 6, 3]);
    assert_eq!(filtered(&s, "tags.team IS NULL").len(), 7);
    assert_eq!(
        filtered(&s, "metadata.`mlflow.sourceRun` = 'run-3'"),
        vec![9, 6, 3]
    );
    assert_eq!(filtered(&s, "trace.run_id = 'run-3'"), vec![9, 6, 5, 3]);
    assert_eq!(filtered(&s, "trace.name = 'root-4'"), vec![4]);
    assert_eq!(filtered(&s, "trace.name LIKE 'root-1%'"), vec![10, 1]);
    assert_eq!(
        filtered(
            &s,
            &format!("trace.request_id IN ('{}', '{}')", trace_id(2), trace_id(5))
        ),
        vec![5, 2]
    );
    assert_eq!(filtered(&s, "trace.text LIKE '%zanzibar%'"), vec![4]);
    assert_eq!(filtered(&s, "span.type = 'LLM'"), vec![4]);
    assert_eq!(
        filtered(&s, "span.name = 'ChatModel' AND trace.status = 'OK'"),
        vec![4]
    );
    assert_eq!(filtered(&s, "feedback.correct > 0.5"), vec![2]);
    assert_eq!(filtered(&s, "feedback.correct IS NOT NULL"), vec![2]);
    assert!(filtered(&s, "feedback.correct < 0.5").is_empty());
    let tid = trace_id(8);
    assert_eq!(
        filtered(&s, &format!("trace.request_id = '{tid}'")),
        vec![8]
    );
}

#[test]
fn a_bad_filter_is_an_error_naming_it() {
    let s = store();
    let err = s
        .search(&Search {
            filter: Some("trace.colour = 'red'".into()),
            limit: 10,
            ..Search::default()
        })
        .unwrap_err();
    assert!(matches!(err, Error::Filter { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("'colour' is not a trace attribute"),
        "{err}"
    );
}

#[test]
fn orders_and_pages_see_every_trace_once() {
    let s = store();
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (page, next) = s
            .search(&Search {
                experiments: vec![EXP.into()],
                order_by: vec!["timestamp_ms ASC".into()],
                limit: 3,
                offset,
                ..Search::default()
            })
            .unwrap();
        seen.extend(page.iter().map(|t| t.request_time_ms / 1000));
        match next {
            Some(n) => offset = n,
            None => break,
        }
    }
    assert_eq!(seen, (1..=10).collect::<Vec<i64>>());
    let by_name = ids(
        &s,
        Search {
            order_by: vec!["name DESC".into()],
            limit: 2,
            ..Search::default()
        },
    );
    assert_eq!(by_name, vec![9, 8]);
}

#[test]
fn free_text_finds_ids_names_previews_and_span_text() {
    let s = store();
    let text = |t: &str| {
        ids(
            &s,
            Search {
                text: Some(t.into()),
                limit: 100,
                ..Search::default()
            },
        )
    };
    assert_eq!(text("ZANZIBAR"), vec![4]);
    assert_eq!(text("zanzibar"), vec![4], "any case");
    let id = trace_id(4);
    assert_eq!(text(&id.as_str()[5..17]), vec![4], "a piece of the id");
    assert_eq!(text("question 7"), vec![7]);
    assert_eq!(text("root-1"), vec![10, 1]);
    assert_eq!(text("%"), Vec::<u8>::new());
    let runs = ids(
        &s,
        Search {
            run: Some("run-3".into()),
            limit: 100,
            ..Search::default()
        },
    );
    assert_eq!(runs, vec![9, 6, 5, 3]);
}

#[test]
fn metrics_count_latencies_and_group() {
    let s = store();
    let q = |view, metric: &str, aggs: Vec<Aggregation>, dims: Vec<&str>| MetricsQuery {
        experiments: vec![EXP.into()],
        view,
        metric: metric.into(),
        aggregations: aggs,
        dimensions: dims.into_iter().map(str::to_owned).collect(),
        limit: 100,
        ..MetricsQuery::default()
    };
    let points = s
        .metrics(&q(
            MetricView::Traces,
            "trace_count",
            vec![Aggregation::Count],
            vec!["trace_status"],
        ))
        .unwrap();
    let counts: Vec<(String, f64)> = points
        .iter()
        .map(|p| (p.dimensions["trace_status"].clone(), p.values["COUNT"]))
        .collect();
    assert_eq!(counts, vec![("ERROR".into(), 5.0), ("OK".into(), 5.0)]);
    let lat = s
        .metrics(&q(
            MetricView::Traces,
            "latency",
            vec![Aggregation::Avg, Aggregation::Percentile(50.0)],
            vec![],
        ))
        .unwrap();
    assert_eq!(lat[0].values["AVG"], 100.0);
    assert_eq!(lat[0].values["P50.0"], 100.0);
    let spans = s
        .metrics(&q(
            MetricView::Spans,
            "span_count",
            vec![Aggregation::Count],
            vec!["span_type"],
        ))
        .unwrap();
    let llm = spans
        .iter()
        .find(|p| p.dimensions["span_type"] == "LLM")
        .unwrap();
    assert_eq!(llm.values["COUNT"], 1.0);
    let mut bucketed = q(
        MetricView::Traces,
        "trace_count",
        vec![Aggregation::Count],
        vec![],
    );
    bucketed.interval_s = Some(5);
    bucketed.start_ms = Some(0);
    bucketed.end_ms = Some(20_000);
    let b = s.metrics(&bucketed).unwrap();
    let got: Vec<(String, f64)> = b
        .iter()
        .map(|p| (p.dimensions["time_bucket"].clone(), p.values["COUNT"]))
        .collect();
    assert_eq!(
        got,
        vec![
            ("1970-01-01T00:00:00+00:00".into(), 4.0),
            ("1970-01-01T00:00:05+00:00".into(), 5.0),
            ("1970-01-01T00:00:10+00:00".into(), 1.0),
        ]
    );
    let a = s
        .metrics(&q(
            MetricView::Assessments,
            "assessment_value",
            vec![Aggregation::Avg],
            vec!["assessment_name"],
        ))
        .unwrap();
    assert_eq!(a[0].values["AVG"], 0.9);
    let err = s
        .metrics(&q(
            MetricView::Traces,
            "latency",
            vec![Aggregation::Count],
            vec![],
        ))
        .unwrap_err();
    assert!(
        err.to_string().contains("invalid aggregation_type"),
        "{err}"
    );
    let err = s
        .metrics(&q(
            MetricView::Spans,
            "input_cost",
            vec![Aggregation::Sum],
            vec![],
        ))
        .unwrap_err();
    assert!(err.to_string().contains("not kept"), "{err}");
    let mut filtered = q(
        MetricView::Traces,
        "trace_count",
        vec![Aggregation::Count],
        vec![],
    );
    filtered.filters = vec![
        "trace.status = 'OK'".into(),
        "trace.tag.team = 'vision-6'".into(),
    ];
    assert_eq!(s.metrics(&filtered).unwrap()[0].values["COUNT"], 1.0);
}

/// Span text is indexed a trace and an append at a time; a pattern still has to match one
/// span's text by itself, as it did when each span had its own row.
#[test]
fn text_patterns_match_within_one_span() {
    let s = store();
    // Trace 4: `root-4` (question 4, answer 4) and two children in one append, `ChatModel`
    // (the Zanzibar question) in a later one.
    assert_eq!(
        filtered(&s, "span.content LIKE 'child-2%'"),
        vec![10, 9, 8, 7, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(filtered(&s, "trace.text LIKE 'root-4%answer 4%'"), vec![4]);
    assert_eq!(
        filtered(&s, "trace.text LIKE 'root-4%child-1%'"),
        Vec::<u8>::new(),
        "two spans"
    );
    assert_eq!(
        filtered(&s, "trace.text LIKE '%answer 4%child%'"),
        Vec::<u8>::new()
    );
    assert_eq!(
        filtered(&s, "trace.text LIKE 'chatmodel%zanzibar%'"),
        vec![4]
    );
    assert_eq!(
        filtered(&s, "trace.text LIKE 'root-4%zanzibar%'"),
        Vec::<u8>::new()
    );
    assert_eq!(
        filtered(&s, "trace.text LIKE '%\"answer _\"'"),
        vec![9, 8, 7, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(
        filtered(&s, "span.content ILIKE 'CHILD-_'"),
        Vec::<u8>::new(),
        "a whole span's text"
    );
    assert_eq!(
        filtered(&s, "trace.text LIKE '%4\"\nchild-1%'"),
        Vec::<u8>::new()
    );
}

#[test]
fn a_replaced_span_is_found_by_its_new_text_only() {
    let mut s = store();
    // Trace 3's spans were written at 3000 ms.
    let mut renamed = span(3, 2, Some(1), "Summarizer", 3001, 3011);
    renamed.attributes.clear();
    s.append(&[span_entry(5000, renamed)]).unwrap();
    assert_eq!(filtered(&s, "span.content LIKE '%summarizer%'"), vec![3]);
    assert_eq!(
        filtered(&s, "span.content LIKE 'child-1%'").len(),
        9,
        "trace 3's child-1 is gone"
    );
    assert_eq!(
        filtered(&s, "trace.text LIKE '%answer 3%'"),
        vec![3],
        "its other spans stay"
    );
    // An older write of the same span changes nothing.
    s.append(&[span_entry(4000, span(3, 2, Some(1), "Stale", 1, 2))])
        .unwrap();
    assert!(filtered(&s, "span.content LIKE '%stale%'").is_empty());
    s.append(&[at(6000, Record::Delete { trace: trace_id(3) })])
        .unwrap();
    assert!(filtered(&s, "span.content LIKE '%summarizer%'").is_empty());
}

/// A trace appended to a span at a time (a long agent run exported as it goes) has its span
/// text in a row per append, merged into one when it has had many.
#[test]
fn a_trace_appended_to_many_times_is_found_by_every_span() {
    let mut s = TraceStore::open_in_memory().unwrap();
    s.append(&trace_entries(1, 1, 1000)).unwrap();
    for i in 0..150u8 {
        let mut step = span(1, i + 2, Some(1), &format!("step-{i:03}"), 1001, 1002);
        step.attributes = vec![("n".into(), Value::Str(format!("payload {i}")))];
        s.append(&[span_entry(1001, step)]).unwrap();
    }
    for i in [0u8, 63, 64, 65, 100, 149] {
        assert_eq!(
            filtered(&s, &format!("span.content LIKE 'step-{i:03}%payload {i}'")),
            vec![1],
            "step {i}"
        );
    }
    assert!(filtered(&s, "span.content LIKE 'step-001%payload 2'").is_empty());
    assert_eq!(s.info(&trace_id(1)).unwrap().unwrap().span_count, 151);
}
