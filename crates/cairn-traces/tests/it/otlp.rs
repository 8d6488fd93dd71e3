//! The OTLP decoder: what exporters send decodes to the spans they meant; what exceeds a bound
//! or is malformed is refused with a message saying where and what.

use cairn_traces::otlp::{self, Limits, ResourceSpans};
use cairn_traces::{Error, Value};

use crate::span;

fn request() -> Vec<ResourceSpans> {
    let mut root = span(1, 1, None, "root", 10, 20);
    root.events.push(cairn_traces::Event {
        time_ns: 15,
        name: "exception".into(),
        attributes: vec![("exception.message".into(), Value::Str("boom".into()))],
    });
    root.attributes.push((
        "deep".into(),
        Value::Array(vec![
            Value::KvList(vec![("x".into(), Value::Double(1.5))]),
            Value::Bool(true),
        ]),
    ));
    vec![ResourceSpans {
        resource: vec![("service.name".into(), Value::Str("svc".into()))],
        spans: vec![root, span(1, 2, Some(1), "child", 11, 19)],
    }]
}

fn refusal(r: Result<Vec<ResourceSpans>, Error>) -> String {
    match r {
        Err(Error::Otlp(m)) => m,
        other => panic!("expected an OTLP refusal, got {other:?}"),
    }
}

#[test]
fn protobuf_round_trips() {
    let req = request();
    let bytes = otlp::encode(&req);
    assert_eq!(
        otlp::decode_protobuf(&bytes, &Limits::default()).unwrap(),
        req
    );
    assert!(
        otlp::decode_protobuf(&[], &Limits::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn otlp_json_decodes_hex_ids_camel_case_and_enum_names() {
    let body = br#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"svc"}}]},
      "scopeSpans":[{"scope":{"name":"x"},"spans":[{
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"",
        "name":"GET /","kind":"SPAN_KIND_SERVER","startTimeUnixNano":"1544712660000000000",
        "endTimeUnixNano":1544712661000000000,
        "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"d","value":{"doubleValue":"NaN"}},
                      {"key":"b","value":{"bytesValue":"AAH/"}},{"key":"l","value":{"arrayValue":{"values":[{"boolValue":true}]}}}],
        "status":{"code":"STATUS_CODE_ERROR","message":"bad"}}]}]}]}"#;
    let got = otlp::decode_json(body, &Limits::default()).unwrap();
    let s = &got[0].spans[0];
    assert_eq!(
        cairn_traces::hex(&s.trace_id),
        "5b8efff798038103d269b633813fc60c"
    );
    assert_eq!(s.parent_id, None);
    assert_eq!(
        (s.kind, s.start_ns, s.end_ns),
        (2, 1_544_712_660_000_000_000, 1_544_712_661_000_000_000)
    );
    assert_eq!(s.attributes[0].1, Value::Int(42));
    assert!(matches!(s.attributes[1].1, Value::Double(d) if d.is_nan()));
    assert_eq!(s.attributes[2].1, Value::Bytes(vec![0, 1, 255]));
    assert_eq!(s.status.code, cairn_traces::StatusCode::Error);
    assert_eq!(got[0].resource[0].0, "service.name");
}

#[test]
fn every_bound_is_a_refusal_naming_what_was_wrong() {
    let req = request();
    let bytes = otlp::encode(&req);
    let tight = |f: fn(&mut Limits)| {
        let mut l = Limits::default();
        f(&mut l);
        l
    };
    let m = refusal(otlp::decode_protobuf(&bytes, &tight(|l| l.max_spans = 1)));
    assert!(
        m.contains("spans[1]") && m.contains("more than 1 spans"),
        "{m}"
    );
    let m = refusal(otlp::decode_protobuf(
        &bytes,
        &tight(|l| l.max_attributes = 2),
    ));
    assert!(
        m.contains("spans[0]") && m.contains("more than 2 attributes"),
        "{m}"
    );
    let m = refusal(otlp::decode_protobuf(&bytes, &tight(|l| l.max_depth = 1)));
    assert!(
        m.contains("attribute 'deep'") && m.contains("nests deeper than 1"),
        "{m}"
    );
    let m = refusal(otlp::decode_protobuf(
        &bytes,
        &tight(|l| l.max_value_bytes = 3),
    ));
    assert!(m.contains("bytes (at most 3)"), "{m}");
    let m = refusal(otlp::decode_protobuf(&bytes, &tight(|l| l.max_events = 0)));
    assert!(m.contains("more than 0 events"), "{m}");
    let m = refusal(otlp::decode_protobuf(&bytes, &tight(|l| l.max_bytes = 10)));
    assert!(m.contains("at most 10"), "{m}");
    // Malformed bytes: every prefix is an error or decodes to fewer spans, never a panic.
    for n in 0..bytes.len() {
        if let Ok(r) = otlp::decode_protobuf(&bytes[..n], &Limits::default()) {
            assert!(r.iter().map(|x| x.spans.len()).sum::<usize>() <= 2);
        }
    }
    let m = refusal(otlp::decode_protobuf(
        &bytes[..bytes.len() - 3],
        &Limits::default(),
    ));
    assert!(m.contains("claims") || m.contains("ends inside"), "{m}");
    // A span without a trace id, or with an id of the wrong size.
    let mut bad = req.clone();
    bad[0].spans[0].trace_id = [0; 16];
    let m = refusal(otlp::decode_protobuf(
        &otlp::encode(&bad),
        &Limits::default(),
    ));
    assert!(
        m.contains("resource_spans[0].scope_spans[0].spans[0]")
            && m.contains("trace_id is all zeros"),
        "{m}"
    );
    let m = refusal(otlp::decode_json(br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abc","spanId":"eee19b7ec3c1b174"}]}]}]}"#, &Limits::default()));
    assert!(m.contains("traceId 'abc' is not 16 bytes"), "{m}");
    let m = refusal(otlp::decode_json(b"[1,2", &Limits::default()));
    assert!(m.contains("not JSON"), "{m}");
    // A group (wire type 3) is refused.
    let m = refusal(otlp::decode_protobuf(&[0x0b], &Limits::default()));
    assert!(m.contains("wire type 3"), "{m}");
}

#[test]
fn gzip_bodies_inflate_within_the_limit() {
    use std::io::Write;
    let bytes = otlp::encode(&request());
    let mut gz = flate2_gzip(&bytes);
    assert_eq!(otlp::decompress(&gz, "gzip", 1 << 20).unwrap(), bytes);
    let m = match otlp::decompress(&gz, "gzip", 10) {
        Err(Error::Otlp(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(m.contains("inflates past the limit of 10 bytes"), "{m}");
    gz.truncate(gz.len() / 2);
    assert!(otlp::decompress(&gz, "gzip", 1 << 20).is_err());
    assert!(
        otlp::decompress(&bytes, "br", 1 << 20)
            .unwrap_err()
            .to_string()
            .contains("'br' is not supported")
    );
    // The gzip writer used above.
    fn flate2_gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }
}

/// What real exporters sent (see `tests/data/otlp/capture.py`).
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/otlp")
            .join(name),
    )
    .unwrap()
}

#[test]
fn real_exporter_output_decodes() {
    let got = otlp::decode_protobuf(&fixture("mlflow-client.pb"), &Limits::default()).unwrap();
    let s = &got[0].spans[0];
    assert_eq!(s.name, "retrieve");
    assert!(s.parent_id.is_some());
    assert_eq!(s.span_type().as_deref(), Some("RETRIEVER"));
    assert!(matches!(s.attribute("score"), Some(Value::Double(d)) if *d == 0.75));
    assert!(matches!(
        s.attribute("mlflow.spanInputs"),
        Some(Value::KvList(_))
    ));

    let pb = otlp::decode_protobuf(&fixture("otel-sdk.pb"), &Limits::default()).unwrap();
    let json = otlp::decode_json(&fixture("otel-sdk.json"), &Limits::default()).unwrap();
    assert_eq!(pb, json, "the same request as protobuf and as OTLP/JSON");
    let names: Vec<&str> = pb[0].spans.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["db-query", "handle-request"]);
    let db = &pb[0].spans[0];
    assert_eq!(db.status.code, cairn_traces::StatusCode::Error);
    assert_eq!(db.events[0].name, "exception");
    assert_eq!(db.links[0].span_id, pb[0].spans[1].span_id);
    let root = &pb[0].spans[1];
    assert_eq!(root.attribute("http.status_code"), Some(&Value::Int(500)));
    assert_eq!(
        root.attribute("flags"),
        Some(&Value::Array(vec![Value::Bool(true), Value::Bool(false)]))
    );
    assert!(
        pb[0]
            .resource
            .iter()
            .any(|(k, v)| k == "service.name" && v == &Value::Str("checkout".into()))
    );
}
