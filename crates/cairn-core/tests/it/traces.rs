//! Traces through the workspace handle: OTLP ingest into an experiment, MLflow's start/end,
//! tags, deletions, links to runs, assessments, metrics, and the UI's span tree.

use std::collections::BTreeMap;

use cairn_core::traces::{
    AssessmentSource, AssessmentUpdate, AssessmentValue, NewAssessment, OtlpFormat, OtlpLimits,
    RunTracesRequest, TraceDeletion, TraceEnd, TraceQuery, TraceStart, TraceState,
};
use cairn_core::{Code, Workspace};
use cairn_traces::otlp::{ResourceSpans, encode};
use cairn_traces::{Span, SpanStatus, StatusCode, Value};

use crate::{start, workspace};

fn span(t: u8, s: u8, parent: Option<u8>, name: &str, start_ms: u64, end_ms: u64) -> Span {
    Span {
        trace_id: [t; 16],
        span_id: [s; 8],
        parent_id: parent.map(|p| [p; 8]),
        name: name.into(),
        start_ns: start_ms * 1_000_000,
        end_ns: end_ms * 1_000_000,
        status: SpanStatus {
            code: StatusCode::Ok,
            message: String::new(),
        },
        attributes: vec![(
            "mlflow.spanInputs".into(),
            Value::KvList(vec![("q".into(), Value::Str("hi".into()))]),
        )],
        ..Span::default()
    }
}

fn otlp(spans: Vec<Span>) -> Vec<u8> {
    encode(&[ResourceSpans {
        resource: vec![
            ("service.name".into(), Value::Str("shop".into())),
            (
                "telemetry.sdk.name".into(),
                Value::Str("opentelemetry".into()),
            ),
        ],
        spans,
    }])
}

fn ingest(ws: &Workspace, exp: &str, run: Option<&str>, spans: Vec<Span>) {
    ws.ingest_otlp(
        exp,
        run,
        &otlp(spans),
        OtlpFormat::Protobuf,
        None,
        &OtlpLimits::default(),
    )
    .expect("ingest");
}

fn tid(t: u8) -> String {
    format!("tr-{}", cairn_traces::hex(&[t; 16]))
}

#[test]
fn otlp_spans_land_in_the_experiment_and_link_to_the_run() {
    let (_d, ws) = workspace();
    let run = start(&ws, "chat", &[]);
    let exp = ws.run(run).unwrap().run.experiment.to_string();
    let report = ws
        .ingest_otlp(
            &exp,
            Some(&run.to_string()),
            &otlp(vec![
                span(1, 1, None, "root", 10, 50),
                span(1, 2, Some(1), "llm", 20, 40),
            ]),
            OtlpFormat::Protobuf,
            None,
            &OtlpLimits::default(),
        )
        .unwrap();
    assert_eq!((report.spans, report.traces), (2, 1));
    let (info, spans) = ws.trace(&tid(1)).unwrap();
    assert_eq!(info.experiment, exp);
    assert_eq!(info.runs, vec![run.to_string()]);
    assert_eq!(info.tags["service.name"], "shop");
    assert!(!info.tags.contains_key("telemetry.sdk.name"));
    assert_eq!(spans.len(), 2);
    // The run page lists it; the span tree has offsets from the first span.
    let page = ws
        .run_traces(&RunTracesRequest {
            id: run.to_string()[..8].to_owned(),
            q: None,
            limit: None,
            offset: None,
        })
        .unwrap();
    assert_eq!(page.traces.len(), 1);
    let view = ws.trace_view(&tid(1)).unwrap();
    assert_eq!(view.spans[1].parent_id.as_deref(), Some("0101010101010101"));
    assert_eq!(
        (view.spans[1].offset_us, view.spans[1].duration_us),
        (10_000, Some(20_000))
    );
    assert_eq!(
        view.spans[0].inputs.as_deref(),
        Some("{\n  \"q\": \"hi\"\n}")
    );
}

#[test]
fn otlp_refusals_name_what_was_wrong_and_store_nothing() {
    let (_d, ws) = workspace();
    let err = ws
        .ingest_otlp(
            "0",
            None,
            b"\x0a\x03\x12\x01\x12",
            OtlpFormat::Protobuf,
            None,
            &OtlpLimits::default(),
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    assert!(err.to_string().contains("resource_spans[0]"), "{err}");
    let err = ws
        .ingest_otlp(
            "0190f5d2a8f47c3a9e1b2c3d4e5f6a7b",
            None,
            &otlp(vec![span(1, 1, None, "root", 1, 2)]),
            OtlpFormat::Protobuf,
            None,
            &OtlpLimits::default(),
        )
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err}");
    let err = ws
        .ingest_otlp(
            "0",
            None,
            b"{}",
            OtlpFormat::Json,
            None,
            &OtlpLimits::default(),
        )
        .unwrap_err();
    assert!(err.to_string().contains("no spans found"), "{err}");
    let (found, _) = ws
        .search_traces(&TraceQuery {
            limit: 10,
            ..TraceQuery::default()
        })
        .unwrap();
    assert!(found.is_empty());
}

#[test]
fn mlflow_v3_start_trace_after_spans_and_v2_start_end() {
    let (_d, ws) = workspace();
    ingest(&ws, "0", None, vec![span(2, 1, None, "root", 100, 200)]);
    let mut tags = BTreeMap::new();
    tags.insert("mlflow.traceName".to_owned(), "predict".to_owned());
    let info = ws
        .start_trace(TraceStart {
            trace_id: Some(cairn_traces::TraceId::parse(&tid(2)).unwrap()),
            experiment: "0".into(),
            request_time_ms: Some(100),
            execution_ms: Some(100),
            state: Some(TraceState::Ok),
            request_preview: Some("{\"a\": 1}".into()),
            metadata: [("mlflow.user".to_owned(), "alice".to_owned())].into(),
            tags,
            ..TraceStart::default()
        })
        .unwrap();
    assert_eq!(info.name.as_deref(), Some("predict"));
    assert_eq!(info.request_preview.as_deref(), Some("{\"a\": 1}"));
    assert_eq!(info.span_count, 1);
    assert_eq!(ws.mlflow_experiment_of(&info.experiment).unwrap(), "0");
    // v2: started without spans, ended later.
    let started = ws
        .start_trace(TraceStart {
            experiment: "0".into(),
            request_time_ms: Some(1_000),
            state: Some(TraceState::InProgress),
            ..TraceStart::default()
        })
        .unwrap();
    assert!(started.trace_id.as_str().starts_with("tr-"));
    assert_eq!(started.state, TraceState::InProgress);
    let ended = ws
        .end_trace(TraceEnd {
            trace_id: started.trace_id.to_string(),
            end_time_ms: 1_250,
            state: Some(TraceState::Error),
            ..TraceEnd::default()
        })
        .unwrap();
    assert_eq!(
        (ended.execution_ms, ended.state),
        (Some(250), TraceState::Error)
    );
    let err = ws
        .trace_info("tr-00000000000000000000000000000000")
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(err.to_string().contains("not found"), "{err}");
}

#[test]
fn tags_are_set_cut_and_deleted() {
    let (_d, ws) = workspace();
    ingest(&ws, "0", None, vec![span(3, 1, None, "root", 1, 2)]);
    ws.set_trace_tag(&tid(3), "long", &"x".repeat(9000))
        .unwrap();
    assert_eq!(ws.trace_info(&tid(3)).unwrap().tags["long"].len(), 8000);
    let err = ws
        .set_trace_tag(&tid(3), &"k".repeat(251), "v")
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    ws.delete_trace_tag(&tid(3), "long").unwrap();
    let err = ws.delete_trace_tag(&tid(3), "long").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    assert!(
        err.to_string().contains("No trace tag with key 'long'"),
        "{err}"
    );
    let err = ws.set_trace_tag(&tid(99), "k", "v").unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[test]
fn deletions_by_id_and_by_age_and_count() {
    let (_d, ws) = workspace();
    for t in 1..=6u8 {
        ingest(
            &ws,
            "0",
            None,
            vec![span(
                t,
                1,
                None,
                "root",
                u64::from(t) * 100,
                u64::from(t) * 100 + 5,
            )],
        );
    }
    assert_eq!(
        ws.delete_traces("0", TraceDeletion::Ids(vec![tid(6), tid(77)]))
            .unwrap(),
        1
    );
    // The two oldest at or before 400 ms.
    assert_eq!(
        ws.delete_traces(
            "0",
            TraceDeletion::Older {
                max_timestamp_ms: 400,
                max_traces: Some(2)
            }
        )
        .unwrap(),
        2
    );
    let (left, _) = ws
        .search_traces(&TraceQuery {
            experiments: vec!["0".into()],
            order_by: vec!["timestamp_ms ASC".into()],
            limit: 10,
            ..TraceQuery::default()
        })
        .unwrap();
    let left: Vec<String> = left.iter().map(|t| t.trace_id.to_string()).collect();
    assert_eq!(left, vec![tid(3), tid(4), tid(5)]);
    let err = ws
        .delete_traces(
            "0",
            TraceDeletion::Older {
                max_timestamp_ms: 1,
                max_traces: Some(0),
            },
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("must be a positive integer"),
        "{err}"
    );
    // A deleted trace is not recorded again.
    let err = ws
        .start_trace(TraceStart {
            trace_id: Some(cairn_traces::TraceId::parse(&tid(6)).unwrap()),
            experiment: "0".into(),
            ..TraceStart::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), Code::Conflict);
}

#[test]
fn links_need_a_run_and_at_most_a_hundred_traces() {
    let (_d, ws) = workspace();
    let run = start(&ws, "chat", &[]);
    ingest(&ws, "0", None, vec![span(4, 1, None, "root", 1, 2)]);
    ws.link_traces_to_run(&[tid(4)], &run.to_string()).unwrap();
    assert_eq!(ws.trace_info(&tid(4)).unwrap().runs, vec![run.to_string()]);
    let err = ws
        .link_traces_to_run(&[tid(4)], "0190f5d2a8f47c3a9e1b2c3d4e5f6a7b")
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let many: Vec<String> = (0..101).map(|_| tid(4)).collect();
    let err = ws.link_traces_to_run(&many, &run.to_string()).unwrap_err();
    assert!(err.to_string().contains("more than 100"), "{err}");
}

fn feedback(trace: &str, value: serde_json::Value, overrides: Option<String>) -> NewAssessment {
    NewAssessment {
        assessment_id: None,
        trace_id: trace.into(),
        name: "correct".into(),
        span_id: None,
        source: AssessmentSource {
            source_type: "HUMAN".into(),
            source_id: "ann".into(),
        },
        create_time_ms: None,
        last_update_time_ms: None,
        value: AssessmentValue::Feedback { value, error: None },
        rationale: None,
        metadata: BTreeMap::new(),
        overrides,
        valid: None,
    }
}

#[test]
fn assessments_override_update_and_delete() {
    let (_d, ws) = workspace();
    ingest(&ws, "0", None, vec![span(5, 1, None, "root", 1, 2)]);
    let first = ws
        .create_assessment(feedback(&tid(5), serde_json::json!(false), None))
        .unwrap();
    assert!(first.assessment_id.starts_with("a-") && first.valid);
    let second = ws
        .create_assessment(feedback(
            &tid(5),
            serde_json::json!(true),
            Some(first.assessment_id.clone()),
        ))
        .unwrap();
    assert!(!ws.assessment(&tid(5), &first.assessment_id).unwrap().valid);
    let updated = ws
        .update_assessment(
            &tid(5),
            &second.assessment_id,
            AssessmentUpdate {
                rationale: Some("checked".into()),
                metadata: Some([("k".to_owned(), "v".to_owned())].into()),
                ..AssessmentUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(updated.rationale.as_deref(), Some("checked"));
    assert_eq!(updated.source, second.source);
    let err = ws
        .update_assessment(
            &tid(5),
            &second.assessment_id,
            AssessmentUpdate {
                value: Some(AssessmentValue::Expectation {
                    value: serde_json::json!(1),
                    serialized: None,
                }),
                ..AssessmentUpdate::default()
            },
        )
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("Cannot update expectation value on a Feedback"),
        "{err}"
    );
    // Deleting the override makes the first valid again; deleting twice is fine.
    ws.delete_assessment(&tid(5), &second.assessment_id)
        .unwrap();
    ws.delete_assessment(&tid(5), &second.assessment_id)
        .unwrap();
    assert!(ws.assessment(&tid(5), &first.assessment_id).unwrap().valid);
    let err = ws.assessment(&tid(5), &second.assessment_id).unwrap_err();
    assert!(err.to_string().contains("Assessment with ID"), "{err}");
    let err = ws
        .create_assessment(feedback(
            &tid(5),
            serde_json::json!(1),
            Some("a-missing".into()),
        ))
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[test]
fn trace_metrics_and_filters_over_mlflow_ids() {
    let (_d, ws) = workspace();
    for t in 1..=4u8 {
        ingest(
            &ws,
            "0",
            None,
            vec![span(t, 1, None, "root", 1_000, 1_000 + u64::from(t) * 10)],
        );
    }
    let points = ws
        .trace_metrics(&cairn_core::traces::TraceMetricsQuery {
            experiments: vec!["0".into()],
            metric: "latency".into(),
            aggregations: vec![cairn_core::traces::Aggregation::Max],
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(points[0].values["MAX"], 40.0);
    let (found, _) = ws
        .search_traces(&TraceQuery {
            experiments: vec!["0".into()],
            filter: Some("trace.execution_time_ms > 20 AND tags.`service.name` = 'shop'".into()),
            limit: 10,
            ..TraceQuery::default()
        })
        .unwrap();
    assert_eq!(found.len(), 2);
    let err = ws
        .search_traces(&TraceQuery {
            experiments: vec!["0".into()],
            filter: Some("trace.status == 'OK'".into()),
            limit: 10,
            ..TraceQuery::default()
        })
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

/// The run page of `ws` for `run`, as comparable text: each trace's summary and span tree.
fn run_page(ws: &Workspace, run: &str) -> Vec<String> {
    let page = ws
        .run_traces(&RunTracesRequest {
            id: run.to_owned(),
            q: None,
            limit: Some(1000),
            offset: None,
        })
        .unwrap();
    page.traces
        .iter()
        .map(|t| {
            let view = ws.trace_view(&t.trace_id).unwrap();
            format!(
                "{t:?} {:?} {:?} {:?}",
                view.spans, view.assessments, view.runs
            )
        })
        .collect()
}

#[test]
fn traces_travel_between_team_members_over_iroh() {
    use cairn_core::team::NodeConfig;
    use cairn_traces::TraceStore;

    let dir = tempfile::tempdir().unwrap();
    let ada = super::registry::peer(&dir, "ada", "ada");
    let bo = super::registry::peer(&dir, "bo", "bo");
    let run = start(&ada, "agents", &[]);
    let run_id = run.to_string();
    let exp = ada.run(run).unwrap().run.experiment.to_string();
    // One trace of 1,500 spans (sealed into a chunk) and two small ones (left in the tail).
    let mut big = vec![span(1, 0xff, None, "root", 0, 10_000)];
    for i in 1..1500u16 {
        let mut s = span(
            1,
            0,
            Some(0xff),
            &format!("step-{i}"),
            u64::from(i),
            u64::from(i) + 5,
        );
        s.span_id = [0, 0, 0, 0, 0, 0, (i >> 8) as u8, i as u8];
        big.push(s);
    }
    ingest(&ada, &exp, Some(&run_id), big);
    ingest(
        &ada,
        &exp,
        Some(&run_id),
        vec![
            span(2, 1, None, "chat", 20, 90),
            span(2, 2, Some(1), "llm", 30, 80),
        ],
    );
    ingest(
        &ada,
        &exp,
        Some(&run_id),
        vec![span(3, 1, None, "lookup", 100, 101)],
    );
    ada.set_trace_tag(&tid(2), "reviewed", "yes").unwrap();
    let ada_log = TraceStore::open(&ada.dir().join("traces.db")).unwrap();
    let stats = ada_log.storage_stats().unwrap();
    assert!(
        stats.chunk_entries >= 1024 && stats.tail_entries > 0,
        "both a chunk and a tail to send: {stats:?}"
    );
    let before = run_page(&ada, &run_id);
    assert_eq!(before.len(), 3);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        ada.team_create("lab", "ada@example.org").unwrap();
        let ada_node = ada.start_sync_node(NodeConfig::default()).await.unwrap();
        let bo_node = bo.start_sync_node(NodeConfig::default()).await.unwrap();
        let ticket = ada
            .team_invite(&ada_node.bound(), std::time::Duration::from_secs(60))
            .unwrap();
        let ticket = cairn_core::team::parse_ticket(&ticket).unwrap();
        let (_, report) = bo_node.join(&ticket, "Bo", "bo@example.org").await.unwrap();
        assert_eq!(
            report.trace_entries_received,
            stats.chunk_entries + stats.tail_entries
        );

        // bo's run page shows what ada's does; ada's sealed chunk is kept as it was sent.
        assert_eq!(run_page(&bo, &run_id), before);
        let bo_log = TraceStore::open(&bo.dir().join("traces.db")).unwrap();
        let src = ada_log.local_source();
        assert_eq!(
            bo_log.sealed_chunks(src, 0).unwrap(),
            ada_log.sealed_chunks(src, 0).unwrap()
        );

        // What bo adds (a tag, an assessment, a new trace) reaches ada in the next sync, and
        // the two agree; then nothing is left to send.
        bo.set_trace_tag(&tid(2), "reviewed", "twice").unwrap();
        bo.create_assessment(feedback(&tid(3), serde_json::json!(true), None))
            .unwrap();
        ingest(
            &bo,
            &exp,
            Some(&run_id),
            vec![span(4, 1, None, "from-bo", 200, 230)],
        );
        let ada_id = ada.device_id().unwrap();
        assert!(
            bo.sync_status()
                .unwrap()
                .peers
                .iter()
                .any(|p| p.id == ada_id && p.pending),
            "traces written on bo are pending for ada"
        );
        let report = bo_node.sync_with(&ada_id, &ada_node.bound()).await.unwrap();
        assert!(report.trace_entries_received == 0, "{report:?}");
        let after = run_page(&ada, &run_id);
        assert_eq!(after.len(), 4);
        assert_eq!(after, run_page(&bo, &run_id));
        assert_eq!(
            ada.trace(&tid(2)).unwrap().0.tags["reviewed"],
            "twice",
            "the later write wins on both"
        );
        assert_eq!(ada.trace(&tid(3)).unwrap().0.assessments.len(), 1);
        let again = bo_node.sync_with(&ada_id, &ada_node.bound()).await.unwrap();
        assert_eq!(again.trace_entries_received, 0);
        for n in [ada_node, bo_node] {
            n.shutdown().await;
        }
    });
}
