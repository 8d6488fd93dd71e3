//! MLflow's tracing API as its 3.x client uses it, and the OTLP/HTTP endpoint its client (and
//! any OpenTelemetry exporter) sends spans to.
//!
//! - `POST /v1/traces`: an OTLP `ExportTraceServiceRequest`, protobuf or JSON, gzip or not, into
//!   the experiment the `x-mlflow-experiment-id` header names (`x-mlflow-run-id` links the
//!   traces that end there to a run).
//! - v3 (`/api/3.0/mlflow/traces…`): `StartTraceV3`, get (info; info and spans; batches),
//!   search, tags, delete, assessments, trace metrics.
//! - v2 (`/api/2.0/mlflow/traces…`): start, end, info, search, tags, delete, link to a run.
//!
//! Wire shapes follow MLflow's protobuf JSON: timestamps as RFC 3339 text, durations as
//! `"0.478s"`, spans as OpenTelemetry's protobuf JSON (ids in base64, typed attribute values).
//! Every trace answers `mlflow.trace.spansLocation = TRACKING_STORE`: Cairn keeps every span
//! itself, so the client reads spans from the server and never uploads them as artifacts.
//! What belongs to MLflow features Cairn leaves out (prompt links, filter correlation, unified
//! and online traces) is answered `NOT_IMPLEMENTED` naming the feature.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use cairn_core::Workspace;
use cairn_core::traces::{
    Aggregation, Assessment, AssessmentError, AssessmentSource, AssessmentUpdate, AssessmentValue,
    MetricView, NewAssessment, OtlpFormat, OtlpLimits, Span, TraceDeletion, TraceEnd, TraceId,
    TraceInfo, TraceMetricsQuery, TraceQuery, TraceStart, TraceState, Value as AnyValue, base64,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::dto::{self, KeyValue, de_opt_i64};
use super::{JsonBody, MlflowError, Reply, json, max_results, parse};
use crate::AppState;

/// MLflow's default and largest page of a trace search.
const DEFAULT_SEARCH: i64 = 100;
const MAX_SEARCH: i64 = 500;
/// MLflow's default and largest answer of a trace metric query.
const DEFAULT_METRICS: i64 = 1000;

// ---- times ---------------------------------------------------------------------------------

/// A protobuf `Timestamp` as JSON text: RFC 3339 in UTC with milliseconds when there are any.
pub(crate) fn timestamp(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    let base = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if millis == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{millis:03}Z")
    }
}

fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds from a protobuf `Timestamp` in JSON (RFC 3339, `Z` or an offset).
pub(crate) fn parse_timestamp(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not an RFC 3339 timestamp");
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        s.get(r).and_then(|t| t.parse().ok()).ok_or_else(bad)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return Err(bad());
    }
    let mut i = 19;
    let mut millis = 0i64;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() || frac.len() > 9 {
            return Err(bad());
        }
        millis = format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?;
    }
    let offset_min = match s.get(i..) {
        Some("Z" | "z") => 0,
        Some(o) if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) => {
            let h: i64 = o[1..3].parse().map_err(|_| bad())?;
            let m: i64 = o[4..6].parse().map_err(|_| bad())?;
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (h * 60 + m)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    let secs = days * 86_400 + h * 3600 + mi * 60 + se - offset_min * 60;
    Ok(secs * 1000 + millis)
}

/// A protobuf `Duration` as JSON text (`"0.478s"`, `"2s"`).
fn duration(ms: i64) -> String {
    let sign = if ms < 0 { "-" } else { "" };
    let ms = ms.unsigned_abs();
    if ms.is_multiple_of(1000) {
        format!("{sign}{}s", ms / 1000)
    } else {
        format!("{sign}{}.{:03}s", ms / 1000, ms % 1000)
    }
}

/// Milliseconds from a protobuf `Duration` in JSON.
fn parse_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("'{s}' is not a duration such as '1.5s'");
    let t = s.strip_suffix('s').ok_or_else(bad)?;
    let (neg, t) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t),
    };
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() || frac.len() > 9 || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return Err(bad());
    }
    let secs: i64 = whole.parse().map_err(|_| bad())?;
    let millis: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<3}")[..3].parse().map_err(|_| bad())?
    };
    let ms = secs
        .checked_mul(1000)
        .and_then(|v| v.checked_add(millis))
        .ok_or_else(bad)?;
    Ok(if neg { -ms } else { ms })
}

// ---- answers -------------------------------------------------------------------------------

/// Converts Cairn's experiment ids to MLflow's within one request ("0" is the default).
struct Ids {
    default: String,
}

impl Ids {
    fn new(ws: &Workspace) -> Result<Ids, cairn_core::Error> {
        Ok(Ids {
            default: ws.default_experiment()?.id.to_string(),
        })
    }

    fn mlflow<'a>(&self, id: &'a str) -> &'a str {
        if id == self.default { "0" } else { id }
    }
}

const SPANS_LOCATION: &str = "mlflow.trace.spansLocation";

fn tags_out(t: &TraceInfo) -> BTreeMap<String, String> {
    let mut tags = t.tags.clone();
    tags.insert(SPANS_LOCATION.into(), "TRACKING_STORE".into());
    tags
}

fn trace_info_v3(ids: &Ids, t: &TraceInfo) -> Value {
    let mut v = json!({
        "trace_id": t.trace_id.as_str(),
        "trace_location": {
            "type": "MLFLOW_EXPERIMENT",
            "mlflow_experiment": { "experiment_id": ids.mlflow(&t.experiment) },
        },
        "request_time": timestamp(t.request_time_ms),
        "state": t.state.as_str(),
        "trace_metadata": t.metadata,
        "tags": tags_out(t),
    });
    if let Some(o) = v.as_object_mut() {
        if let Some(d) = t.execution_ms {
            o.insert("execution_duration".into(), json!(duration(d)));
        }
        if let Some(p) = &t.request_preview {
            o.insert("request_preview".into(), json!(p));
        }
        if let Some(p) = &t.response_preview {
            o.insert("response_preview".into(), json!(p));
        }
        if let Some(c) = &t.client_request_id {
            o.insert("client_request_id".into(), json!(c));
        }
        if !t.assessments.is_empty() {
            o.insert(
                "assessments".into(),
                Value::Array(t.assessments.iter().map(assessment_json).collect()),
            );
        }
    }
    v
}

fn status_v2(s: TraceState) -> &'static str {
    match s {
        TraceState::StateUnspecified => "TRACE_STATUS_UNSPECIFIED",
        TraceState::Ok => "OK",
        TraceState::Error => "ERROR",
        TraceState::InProgress => "IN_PROGRESS",
    }
}

fn trace_info_v2(ids: &Ids, t: &TraceInfo) -> Value {
    let tags = tags_out(t);
    let mut v = json!({
        "request_id": t.trace_id.as_str(),
        "experiment_id": ids.mlflow(&t.experiment),
        "timestamp_ms": t.request_time_ms,
        "status": status_v2(t.state),
        "request_metadata": dto::kv_list(&t.metadata),
        "tags": dto::kv_list(&tags),
    });
    if let (Some(o), Some(d)) = (v.as_object_mut(), t.execution_ms) {
        o.insert("execution_time_ms".into(), json!(d));
    }
    v
}

fn assessment_json(a: &Assessment) -> Value {
    let mut v = json!({
        "assessment_id": a.assessment_id,
        "assessment_name": a.assessment_name,
        "trace_id": a.trace_id.as_str(),
        "source": { "source_type": a.source.source_type, "source_id": a.source.source_id },
        "create_time": timestamp(a.create_time_ms),
        "last_update_time": timestamp(a.last_update_time_ms),
        "valid": a.valid,
    });
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    match &a.value {
        AssessmentValue::Feedback { value, error } => {
            let mut f = json!({ "value": value });
            if let (Some(fo), Some(e)) = (f.as_object_mut(), error) {
                fo.insert("error".into(), json!(e));
            }
            o.insert("feedback".into(), f);
        }
        AssessmentValue::Expectation { value, serialized } => {
            let e = match serialized {
                Some((format, text)) => json!({
                    "serialized_value": { "serialization_format": format, "value": text }
                }),
                None => json!({ "value": value }),
            };
            o.insert("expectation".into(), e);
        }
    }
    if let Some(s) = &a.span_id {
        o.insert("span_id".into(), json!(s));
    }
    if let Some(r) = &a.rationale {
        o.insert("rationale".into(), json!(r));
    }
    if !a.metadata.is_empty() {
        o.insert("metadata".into(), json!(a.metadata));
    }
    if let Some(x) = &a.overrides {
        o.insert("overrides".into(), json!(x));
    }
    v
}

fn any_value(v: &AnyValue) -> Value {
    match v {
        AnyValue::Empty => json!({}),
        AnyValue::Str(s) => json!({ "string_value": s }),
        AnyValue::Bool(b) => json!({ "bool_value": b }),
        AnyValue::Int(i) => json!({ "int_value": i }),
        AnyValue::Double(d) => json!({ "double_value": dto::f64_json(*d) }),
        AnyValue::Bytes(b) => json!({ "bytes_value": base64(b) }),
        AnyValue::Array(a) => {
            json!({ "array_value": { "values": a.iter().map(any_value).collect::<Vec<_>>() } })
        }
        AnyValue::KvList(kv) => json!({ "kvlist_value": { "values": key_values(kv) } }),
    }
}

fn key_values(kv: &[(String, AnyValue)]) -> Vec<Value> {
    kv.iter()
        .map(|(k, v)| json!({ "key": k, "value": any_value(v) }))
        .collect()
}

const SPAN_KINDS: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

/// A span as OpenTelemetry's protobuf JSON (what MLflow's `Trace.spans` holds); defaults are
/// left out, as protobuf's JSON printer does.
fn span_json(s: &Span) -> Value {
    let mut v = json!({
        "trace_id": base64(&s.trace_id),
        "span_id": base64(&s.span_id),
        "name": s.name,
        "start_time_unix_nano": s.start_ns,
        "attributes": key_values(&s.attributes),
        "status": { "code": s.status.code.proto_name() },
    });
    let Some(o) = v.as_object_mut() else {
        return v;
    };
    if let Some(p) = &s.parent_id {
        o.insert("parent_span_id".into(), json!(base64(p)));
    }
    if s.end_ns != 0 {
        o.insert("end_time_unix_nano".into(), json!(s.end_ns));
    }
    if !s.trace_state.is_empty() {
        o.insert("trace_state".into(), json!(s.trace_state));
    }
    if s.flags != 0 {
        o.insert("flags".into(), json!(s.flags));
    }
    if s.kind != 0 {
        let kind = usize::try_from(s.kind)
            .ok()
            .and_then(|k| SPAN_KINDS.get(k))
            .map_or_else(|| json!(s.kind), |k| json!(k));
        o.insert("kind".into(), kind);
    }
    if !s.status.message.is_empty()
        && let Some(st) = o.get_mut("status").and_then(Value::as_object_mut)
    {
        st.insert("message".into(), json!(s.status.message));
    }
    if !s.events.is_empty() {
        let events: Vec<Value> = s
            .events
            .iter()
            .map(|e| {
                json!({
                    "time_unix_nano": e.time_ns,
                    "name": e.name,
                    "attributes": key_values(&e.attributes),
                })
            })
            .collect();
        o.insert("events".into(), Value::Array(events));
    }
    if !s.links.is_empty() {
        let links: Vec<Value> = s
            .links
            .iter()
            .map(|l| {
                json!({
                    "trace_id": base64(&l.trace_id),
                    "span_id": base64(&l.span_id),
                    "attributes": key_values(&l.attributes),
                })
            })
            .collect();
        o.insert("links".into(), Value::Array(links));
    }
    v
}

fn trace_json(ids: &Ids, info: &TraceInfo, spans: &[Span]) -> Value {
    json!({
        "trace_info": trace_info_v3(ids, info),
        "spans": spans.iter().map(span_json).collect::<Vec<_>>(),
    })
}

// ---- requests ------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct ExperimentLocation {
    experiment_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct TraceLocation {
    mlflow_experiment: Option<ExperimentLocation>,
}

#[derive(Deserialize, Default)]
struct SourceIn {
    source_type: Option<String>,
    source_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct FeedbackIn {
    #[serde(default)]
    value: Value,
    error: Option<AssessmentError>,
}

#[derive(Deserialize, Default)]
struct SerializedIn {
    #[serde(default)]
    serialization_format: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize, Default)]
struct ExpectationIn {
    #[serde(default)]
    value: Value,
    serialized_value: Option<SerializedIn>,
}

#[derive(Deserialize, Default)]
pub(crate) struct AssessmentIn {
    assessment_id: Option<String>,
    assessment_name: Option<String>,
    span_id: Option<String>,
    source: Option<SourceIn>,
    create_time: Option<String>,
    last_update_time: Option<String>,
    feedback: Option<FeedbackIn>,
    expectation: Option<ExpectationIn>,
    rationale: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    overrides: Option<String>,
    valid: Option<bool>,
}

impl AssessmentIn {
    fn value(&mut self) -> Result<Option<AssessmentValue>, MlflowError> {
        match (self.feedback.take(), self.expectation.take()) {
            (Some(_), Some(_)) => Err(MlflowError::invalid(
                "an assessment is either a feedback or an expectation, not both",
            )),
            (Some(f), None) => Ok(Some(AssessmentValue::Feedback {
                value: f.value,
                error: f.error,
            })),
            (None, Some(e)) => Ok(Some(AssessmentValue::Expectation {
                value: e.value,
                serialized: e
                    .serialized_value
                    .map(|s| (s.serialization_format, s.value)),
            })),
            (None, None) => Ok(None),
        }
    }

    fn into_new(mut self, trace: &str) -> Result<NewAssessment, MlflowError> {
        let value = self.value()?.ok_or_else(|| {
            MlflowError::invalid("an assessment needs a feedback or an expectation")
        })?;
        let time = |t: &Option<String>| match t {
            Some(t) => parse_timestamp(t).map(Some).map_err(MlflowError::invalid),
            None => Ok(None),
        };
        let create_time_ms = time(&self.create_time)?;
        let last_update_time_ms = time(&self.last_update_time)?;
        let source = self.source.unwrap_or_default();
        Ok(NewAssessment {
            assessment_id: self.assessment_id.filter(|s| !s.is_empty()),
            trace_id: trace.to_owned(),
            name: self.assessment_name.unwrap_or_default(),
            span_id: self.span_id,
            source: AssessmentSource {
                source_type: source
                    .source_type
                    .unwrap_or_else(|| "SOURCE_TYPE_UNSPECIFIED".into()),
                source_id: source.source_id.unwrap_or_default(),
            },
            create_time_ms,
            last_update_time_ms,
            value,
            rationale: self.rationale,
            metadata: self.metadata,
            overrides: self.overrides,
            valid: self.valid,
        })
    }
}

#[derive(Deserialize, Default)]
pub(crate) struct TraceInfoIn {
    trace_id: Option<String>,
    client_request_id: Option<String>,
    trace_location: Option<TraceLocation>,
    request_preview: Option<String>,
    response_preview: Option<String>,
    request_time: Option<String>,
    execution_duration: Option<String>,
    state: Option<String>,
    #[serde(default)]
    trace_metadata: BTreeMap<String, String>,
    #[serde(default)]
    assessments: Vec<AssessmentIn>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
pub(crate) struct TraceIn {
    trace_info: Option<TraceInfoIn>,
}

#[derive(Deserialize, Default)]
pub(crate) struct StartTraceV3 {
    trace: Option<TraceIn>,
}

fn state_in(s: Option<&str>) -> Result<Option<TraceState>, MlflowError> {
    match s.filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => TraceState::parse(s).map(Some).ok_or_else(|| {
            MlflowError::invalid(format!(
                "Invalid value '{s}' for the trace state (OK, ERROR, IN_PROGRESS or STATE_UNSPECIFIED)"
            ))
        }),
    }
}

fn trace_start(info: TraceInfoIn) -> Result<TraceStart, MlflowError> {
    let trace_id = info
        .trace_id
        .filter(|t| !t.is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'trace_id'"))?;
    let trace_id = TraceId::parse(&trace_id).map_err(|e| MlflowError::invalid(e.to_string()))?;
    let experiment = info
        .trace_location
        .and_then(|l| l.mlflow_experiment)
        .and_then(|e| e.experiment_id)
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            MlflowError::invalid(
                "Missing value for required parameter 'trace_location.mlflow_experiment.experiment_id': Cairn keeps traces in experiments",
            )
        })?;
    let request_time_ms = match info.request_time.as_deref() {
        Some(t) => Some(parse_timestamp(t).map_err(MlflowError::invalid)?),
        None => None,
    };
    let execution_ms = match info.execution_duration.as_deref() {
        Some(d) => Some(parse_duration(d).map_err(MlflowError::invalid)?),
        None => None,
    };
    let trace = trace_id.to_string();
    let assessments = info
        .assessments
        .into_iter()
        .map(|a| a.into_new(&trace))
        .collect::<Result<_, _>>()?;
    let mut tags = info.tags;
    // The server's own bookkeeping is not a client's to set.
    tags.remove(SPANS_LOCATION);
    tags.remove("mlflow.artifactLocation");
    Ok(TraceStart {
        trace_id: Some(trace_id),
        experiment,
        request_time_ms,
        execution_ms,
        state: state_in(info.state.as_deref())?,
        request_preview: info.request_preview,
        response_preview: info.response_preview,
        client_request_id: info.client_request_id.filter(|c| !c.is_empty()),
        metadata: info.trace_metadata,
        tags,
        assessments,
    })
}

/// Query-string values, repeated keys kept (`trace_ids=a&trace_ids=b`).
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn all(pairs: &[(String, String)], key: &str) -> Vec<String> {
    pairs
        .iter()
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
        .collect()
}

fn one(pairs: &[(String, String)], key: &str) -> Option<String> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}

fn int_param(pairs: &[(String, String)], key: &str) -> Result<Option<i64>, MlflowError> {
    match one(pairs, key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| {
            MlflowError::invalid(format!(
                "Invalid value '{v}' for parameter '{key}' supplied: it must be an integer"
            ))
        }),
    }
}

// ---- handlers: OTLP ------------------------------------------------------------------------

/// The `x-mlflow-*` headers, read as text.
fn header_text(h: &HeaderMap, name: &str) -> Result<Option<String>, MlflowError> {
    match h.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.trim().to_owned()))
            .map_err(|_| MlflowError::invalid(format!("the {name} header is not readable text"))),
    }
}

pub(crate) async fn otlp_export(
    State(st): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Reply {
    let content_type = header_text(&headers, header::CONTENT_TYPE.as_str())?.unwrap_or_default();
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let format = match essence.as_str() {
        "application/x-protobuf" | "application/protobuf" => OtlpFormat::Protobuf,
        "application/json" => OtlpFormat::Json,
        _ => {
            return Err(MlflowError::invalid(format!(
                "Invalid Content-Type: '{content_type}'. Expected: application/x-protobuf or application/json"
            )));
        }
    };
    let experiment = header_text(&headers, "x-mlflow-experiment-id")?
        .filter(|e| !e.is_empty())
        .ok_or_else(|| {
            MlflowError::invalid(
                "the x-mlflow-experiment-id header is required: it names the experiment the traces go to",
            )
        })?;
    let run = header_text(&headers, "x-mlflow-run-id")?.filter(|r| !r.is_empty());
    let encoding = header_text(&headers, header::CONTENT_ENCODING.as_str())?;
    let limits = OtlpLimits {
        max_bytes: st.limits.json_body,
        ..OtlpLimits::default()
    };
    st.write(move |ws| {
        ws.ingest_otlp(
            &experiment,
            run.as_deref(),
            &body,
            format,
            encoding.as_deref(),
            &limits,
        )
    })
    .await?;
    // An empty ExportTraceServiceResponse, in the request's encoding.
    Ok(match format {
        OtlpFormat::Protobuf => (
            [(header::CONTENT_TYPE, "application/x-protobuf")],
            Bytes::new(),
        )
            .into_response(),
        OtlpFormat::Json => ([(header::CONTENT_TYPE, "application/json")], "{}").into_response(),
    })
}

// ---- handlers: v3 --------------------------------------------------------------------------

pub(crate) async fn start_trace_v3(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: StartTraceV3 = parse(b).await?;
    let info = req
        .trace
        .and_then(|t| t.trace_info)
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'trace'"))?;
    let start = trace_start(info)?;
    let v = st
        .write(move |ws| {
            let info = ws.start_trace(start)?;
            Ok(trace_info_v3(&Ids::new(ws)?, &info))
        })
        .await?;
    json(json!({ "trace": { "trace_info": v } }))
}

pub(crate) async fn get_trace_info_v3(State(st): State<AppState>, Path(id): Path<String>) -> Reply {
    let v = st
        .call(move |ws| {
            let info = ws.trace_info(&id)?;
            Ok(trace_info_v3(&Ids::new(ws)?, &info))
        })
        .await?;
    json(json!({ "trace": { "trace_info": v } }))
}

pub(crate) async fn get_trace(State(st): State<AppState>, uri: Uri) -> Reply {
    let pairs = query_pairs(&uri);
    let id = one(&pairs, "trace_id")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'trace_id'"))?;
    let v = st
        .call(move |ws| {
            let (info, spans) = ws.trace(&id)?;
            Ok(trace_json(&Ids::new(ws)?, &info, &spans))
        })
        .await?;
    json(json!({ "trace": v }))
}

pub(crate) async fn batch_get_traces(State(st): State<AppState>, uri: Uri) -> Reply {
    let ids = all(&query_pairs(&uri), "trace_ids");
    if ids.len() > MAX_SEARCH as usize {
        return Err(MlflowError::invalid(format!(
            "at most {MAX_SEARCH} traces can be fetched at once, got {}",
            ids.len()
        )));
    }
    let v = st
        .call(move |ws| {
            let ids_map = Ids::new(ws)?;
            Ok(ws
                .traces(&ids)?
                .iter()
                .map(|(i, s)| trace_json(&ids_map, i, s))
                .collect::<Vec<_>>())
        })
        .await?;
    json(json!({ "traces": v }))
}

#[derive(Deserialize, Default)]
pub(crate) struct TraceIds {
    #[serde(default)]
    trace_ids: Vec<String>,
}

pub(crate) async fn batch_get_trace_infos(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: TraceIds = parse(b).await?;
    if req.trace_ids.len() > MAX_SEARCH as usize {
        return Err(MlflowError::invalid(format!(
            "at most {MAX_SEARCH} traces can be fetched at once, got {}",
            req.trace_ids.len()
        )));
    }
    let v = st
        .call(move |ws| {
            let ids = Ids::new(ws)?;
            let mut out = Vec::new();
            for id in &req.trace_ids {
                match ws.trace_info(id) {
                    Ok(info) => out.push(trace_info_v3(&ids, &info)),
                    Err(e) if e.code() == cairn_core::Code::NotFound => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(out)
        })
        .await?;
    json(json!({ "trace_infos": v }))
}

#[derive(Deserialize, Default)]
pub(crate) struct SearchV3 {
    #[serde(default)]
    locations: Vec<TraceLocation>,
    filter: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
    #[serde(default)]
    order_by: Vec<String>,
    page_token: Option<String>,
}

async fn search(st: &AppState, q: TraceQuery, v2: bool) -> Reply {
    let (page, next) = st
        .call(move |ws| {
            let ids = Ids::new(ws)?;
            let (found, next) = ws.search_traces(&q)?;
            let page: Vec<Value> = found
                .iter()
                .map(|t| {
                    if v2 {
                        trace_info_v2(&ids, t)
                    } else {
                        trace_info_v3(&ids, t)
                    }
                })
                .collect();
            Ok((page, next))
        })
        .await?;
    let mut out = json!({ "traces": page });
    if let (Some(o), Some(n)) = (out.as_object_mut(), next) {
        o.insert("next_page_token".into(), dto::page_token(Some(n as u64)));
    }
    json(out)
}

pub(crate) async fn search_traces_v3(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: SearchV3 = parse(b).await?;
    if req.locations.is_empty() {
        return Err(MlflowError::invalid(
            "Missing value for required parameter 'locations'",
        ));
    }
    let experiments: Vec<String> = req
        .locations
        .into_iter()
        .filter_map(|l| l.mlflow_experiment.and_then(|e| e.experiment_id))
        .collect();
    let limit = max_results(req.max_results, DEFAULT_SEARCH, MAX_SEARCH)?;
    let offset = dto::parse_page_token(req.page_token.as_deref())? as usize;
    let q = TraceQuery {
        experiments,
        filter: req.filter.filter(|f| !f.trim().is_empty()),
        order_by: req.order_by,
        limit,
        offset,
        ..TraceQuery::default()
    };
    search(&st, q, false).await
}

#[derive(Deserialize, Default)]
pub(crate) struct TagIn {
    key: Option<String>,
    value: Option<String>,
}

fn tag_key(t: &TagIn) -> Result<String, MlflowError> {
    t.key
        .clone()
        .filter(|k| !k.is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'key'"))
}

pub(crate) async fn set_trace_tag(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: TagIn = parse(b).await?;
    let key = tag_key(&req)?;
    let value = req.value.unwrap_or_default();
    st.write(move |ws| ws.set_trace_tag(&id, &key, &value))
        .await?;
    json(json!({}))
}

pub(crate) async fn delete_trace_tag(
    State(st): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
    JsonBody(b): JsonBody,
) -> Reply {
    // MLflow's client sends the key in a JSON body; a query string does as well.
    let mut req: TagIn = parse(b).await?;
    if req.key.is_none() {
        req.key = one(&query_pairs(&uri), "key");
    }
    let key = tag_key(&req)?;
    st.write(move |ws| ws.delete_trace_tag(&id, &key)).await?;
    json(json!({}))
}

#[derive(Deserialize, Default)]
pub(crate) struct DeleteTracesIn {
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_timestamp_millis: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_traces: Option<i64>,
    #[serde(default)]
    request_ids: Vec<String>,
    #[serde(default)]
    trace_ids: Vec<String>,
}

pub(crate) async fn delete_traces(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: DeleteTracesIn = parse(b).await?;
    let experiment = req.experiment_id.filter(|e| !e.is_empty()).ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'experiment_id'")
    })?;
    let mut ids = req.request_ids;
    ids.extend(req.trace_ids);
    let which = match (req.max_timestamp_millis, ids.is_empty()) {
        (None, true) => {
            return Err(MlflowError::invalid(
                "Either `max_timestamp_millis` or `trace_ids` must be specified.",
            ));
        }
        (Some(_), false) => {
            return Err(MlflowError::invalid(
                "Only one of `max_timestamp_millis` and `trace_ids` can be specified.",
            ));
        }
        (None, false) => {
            if req.max_traces.is_some() {
                return Err(MlflowError::invalid(
                    "`max_traces` can't be specified if `trace_ids` is specified.",
                ));
            }
            TraceDeletion::Ids(ids)
        }
        (Some(max_timestamp_ms), true) => TraceDeletion::Older {
            max_timestamp_ms,
            max_traces: req.max_traces,
        },
    };
    let n = st
        .write(move |ws| ws.delete_traces(&experiment, which))
        .await?;
    json(json!({ "traces_deleted": n }))
}

#[derive(Deserialize, Default)]
pub(crate) struct CreateAssessmentIn {
    assessment: Option<AssessmentIn>,
}

pub(crate) async fn create_assessment(
    State(st): State<AppState>,
    Path(trace): Path<String>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: CreateAssessmentIn = parse(b).await?;
    let a = req
        .assessment
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'assessment'"))?;
    let new = a.into_new(&trace)?;
    let v = st.write(move |ws| ws.create_assessment(new)).await?;
    json(json!({ "assessment": assessment_json(&v) }))
}

pub(crate) async fn get_assessment(
    State(st): State<AppState>,
    Path((trace, id)): Path<(String, String)>,
) -> Reply {
    let v = st.call(move |ws| ws.assessment(&trace, &id)).await?;
    json(json!({ "assessment": assessment_json(&v) }))
}

#[derive(Deserialize, Default)]
pub(crate) struct UpdateAssessmentIn {
    assessment: Option<AssessmentIn>,
    /// A protobuf `FieldMask` in JSON: paths joined by commas, in lowerCamelCase (or as a
    /// list of snake_case paths).
    update_mask: Option<Value>,
}

fn mask_paths(mask: Option<&Value>) -> Result<Vec<String>, MlflowError> {
    let snake = |p: &str| {
        let mut out = String::new();
        for c in p.trim().chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    };
    match mask {
        None => Err(MlflowError::invalid(
            "Missing value for required parameter 'update_mask'",
        )),
        Some(Value::String(s)) => Ok(s
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(snake)
            .collect()),
        Some(Value::Object(o)) => match o.get("paths") {
            Some(Value::Array(a)) => Ok(a.iter().filter_map(Value::as_str).map(snake).collect()),
            _ => Err(MlflowError::invalid("update_mask has no paths")),
        },
        Some(other) => Err(MlflowError::invalid(format!(
            "Invalid value {other} for parameter 'update_mask' supplied"
        ))),
    }
}

pub(crate) async fn update_assessment(
    State(st): State<AppState>,
    Path((trace, id)): Path<(String, String)>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: UpdateAssessmentIn = parse(b).await?;
    let paths = mask_paths(req.update_mask.as_ref())?;
    let mut a = req
        .assessment
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'assessment'"))?;
    let value = a.value()?;
    let mut update = AssessmentUpdate::default();
    for p in &paths {
        match p.as_str() {
            "assessment_name" => update.name = a.assessment_name.clone(),
            "feedback" | "expectation" => update.value = value.clone(),
            "rationale" => update.rationale = Some(a.rationale.clone().unwrap_or_default()),
            "metadata" => update.metadata = Some(a.metadata.clone()),
            "valid" => {}
            other => {
                return Err(MlflowError::invalid(format!(
                    "'{other}' is not a field of an assessment that can be updated (assessment_name, feedback, expectation, rationale, metadata)"
                )));
            }
        }
    }
    let v = st
        .write(move |ws| ws.update_assessment(&trace, &id, update))
        .await?;
    json(json!({ "assessment": assessment_json(&v) }))
}

pub(crate) async fn delete_assessment(
    State(st): State<AppState>,
    Path((trace, id)): Path<(String, String)>,
) -> Reply {
    st.write(move |ws| ws.delete_assessment(&trace, &id))
        .await?;
    json(json!({}))
}

#[derive(Deserialize, Default)]
struct AggregationIn {
    aggregation_type: Option<String>,
    percentile_value: Option<f64>,
}

#[derive(Deserialize, Default)]
pub(crate) struct MetricsIn {
    #[serde(default)]
    experiment_ids: Vec<String>,
    view_type: Option<String>,
    metric_name: Option<String>,
    #[serde(default)]
    aggregations: Vec<AggregationIn>,
    #[serde(default)]
    dimensions: Vec<String>,
    #[serde(default)]
    filters: Vec<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    time_interval_seconds: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    start_time_ms: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    end_time_ms: Option<i64>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    max_results: Option<i64>,
}

pub(crate) async fn query_trace_metrics(
    State(st): State<AppState>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: MetricsIn = parse(b).await?;
    let view = match req.view_type.as_deref().unwrap_or("TRACES") {
        "TRACES" => MetricView::Traces,
        "SPANS" => MetricView::Spans,
        "ASSESSMENTS" => MetricView::Assessments,
        other => {
            return Err(MlflowError::invalid(format!(
                "view_type must be one of ['TRACES', 'SPANS', 'ASSESSMENTS'], got '{other}'"
            )));
        }
    };
    let metric = req.metric_name.filter(|m| !m.is_empty()).ok_or_else(|| {
        MlflowError::invalid("Missing value for required parameter 'metric_name'")
    })?;
    let mut aggregations = Vec::new();
    for a in req.aggregations {
        let kind = a.aggregation_type.unwrap_or_default();
        aggregations.push(match (kind.as_str(), a.percentile_value) {
            ("COUNT", None) => Aggregation::Count,
            ("SUM", None) => Aggregation::Sum,
            ("AVG", None) => Aggregation::Avg,
            ("MIN", None) => Aggregation::Min,
            ("MAX", None) => Aggregation::Max,
            ("PERCENTILE", Some(p)) => Aggregation::Percentile(p),
            ("PERCENTILE", None) => {
                return Err(MlflowError::invalid(
                    "Percentile value is required for PERCENTILE aggregation",
                ));
            }
            (k, Some(_)) if !k.is_empty() => {
                return Err(MlflowError::invalid(format!(
                    "Percentile value is only allowed for PERCENTILE aggregation type, got {k}"
                )));
            }
            (k, _) => {
                return Err(MlflowError::invalid(format!(
                    "'{k}' is not an aggregation type (COUNT, SUM, AVG, PERCENTILE, MIN, MAX)"
                )));
            }
        });
    }
    let limit = max_results(
        req.max_results,
        DEFAULT_METRICS,
        cairn_core::traces::MAX_PAGE as i64,
    )?;
    let q = TraceMetricsQuery {
        experiments: req.experiment_ids,
        view,
        metric,
        aggregations,
        dimensions: req.dimensions,
        filters: req.filters,
        interval_s: req.time_interval_seconds,
        start_ms: req.start_time_ms,
        end_ms: req.end_time_ms,
        limit,
    };
    let points = st.call(move |ws| ws.trace_metrics(&q)).await?;
    let out: Vec<Value> = points
        .iter()
        .map(|p| {
            json!({
                "metric_name": p.metric_name,
                "dimensions": p.dimensions,
                "values": p.values,
            })
        })
        .collect();
    json(json!({ "data_points": out }))
}

// ---- handlers: v2 --------------------------------------------------------------------------

#[derive(Deserialize, Default)]
pub(crate) struct StartTraceV2 {
    experiment_id: Option<String>,
    #[serde(default, deserialize_with = "de_opt_i64")]
    timestamp_ms: Option<i64>,
    #[serde(default)]
    request_metadata: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

pub(crate) async fn start_trace_v2(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: StartTraceV2 = parse(b).await?;
    let start = TraceStart {
        trace_id: None,
        experiment: req.experiment_id.filter(|e| !e.is_empty()).ok_or_else(|| {
            MlflowError::invalid("Missing value for required parameter 'experiment_id'")
        })?,
        request_time_ms: req.timestamp_ms,
        state: Some(TraceState::InProgress),
        metadata: req
            .request_metadata
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect(),
        tags: req.tags.into_iter().map(|kv| (kv.key, kv.value)).collect(),
        ..TraceStart::default()
    };
    let v = st
        .write(move |ws| {
            let info = ws.start_trace(start)?;
            Ok(trace_info_v2(&Ids::new(ws)?, &info))
        })
        .await?;
    json(json!({ "trace_info": v }))
}

#[derive(Deserialize, Default)]
pub(crate) struct EndTraceV2 {
    #[serde(default, deserialize_with = "de_opt_i64")]
    timestamp_ms: Option<i64>,
    status: Option<String>,
    #[serde(default)]
    request_metadata: Vec<KeyValue>,
    #[serde(default)]
    tags: Vec<KeyValue>,
}

pub(crate) async fn end_trace_v2(
    State(st): State<AppState>,
    Path(id): Path<String>,
    JsonBody(b): JsonBody,
) -> Reply {
    let req: EndTraceV2 = parse(b).await?;
    let end = TraceEnd {
        trace_id: id,
        end_time_ms: req.timestamp_ms.ok_or_else(|| {
            MlflowError::invalid("Missing value for required parameter 'timestamp_ms'")
        })?,
        state: state_in(req.status.as_deref())?,
        metadata: req
            .request_metadata
            .into_iter()
            .map(|kv| (kv.key, kv.value))
            .collect(),
        tags: req.tags.into_iter().map(|kv| (kv.key, kv.value)).collect(),
    };
    let v = st
        .write(move |ws| {
            let info = ws.end_trace(end)?;
            Ok(trace_info_v2(&Ids::new(ws)?, &info))
        })
        .await?;
    json(json!({ "trace_info": v }))
}

pub(crate) async fn get_trace_info_v2(State(st): State<AppState>, Path(id): Path<String>) -> Reply {
    let v = st
        .call(move |ws| {
            let info = ws.trace_info(&id)?;
            Ok(trace_info_v2(&Ids::new(ws)?, &info))
        })
        .await?;
    json(json!({ "trace_info": v }))
}

pub(crate) async fn search_traces_v2(State(st): State<AppState>, uri: Uri) -> Reply {
    let pairs = query_pairs(&uri);
    let limit = max_results(
        int_param(&pairs, "max_results")?,
        DEFAULT_SEARCH,
        MAX_SEARCH,
    )?;
    let offset = dto::parse_page_token(one(&pairs, "page_token").as_deref())? as usize;
    let q = TraceQuery {
        experiments: all(&pairs, "experiment_ids"),
        filter: one(&pairs, "filter").filter(|f| !f.trim().is_empty()),
        order_by: all(&pairs, "order_by"),
        limit,
        offset,
        ..TraceQuery::default()
    };
    search(&st, q, true).await
}

#[derive(Deserialize, Default)]
pub(crate) struct LinkIn {
    #[serde(default)]
    trace_ids: Vec<String>,
    run_id: Option<String>,
}

pub(crate) async fn link_traces_to_run(State(st): State<AppState>, JsonBody(b): JsonBody) -> Reply {
    let req: LinkIn = parse(b).await?;
    let run = req
        .run_id
        .filter(|r| !r.is_empty())
        .ok_or_else(|| MlflowError::invalid("Missing value for required parameter 'run_id'"))?;
    let shown = run.clone();
    st.write(move |ws| ws.link_traces_to_run(&req.trace_ids, &run))
        .await
        .map_err(super::run_not_found(&shown))?;
    json(json!({}))
}

/// MLflow features around traces that Cairn does not have: answered by name, not as an
/// unknown endpoint.
fn not_implemented(feature: &'static str) -> impl Fn() -> std::future::Ready<Response> + Clone {
    move || {
        std::future::ready(
            MlflowError::new(
                StatusCode::NOT_IMPLEMENTED,
                "NOT_IMPLEMENTED",
                format!("{feature} is not implemented by Cairn"),
            )
            .into_response(),
        )
    }
}

pub(crate) fn routes() -> Router<AppState> {
    let v2 = |p: &str| format!("/api/2.0/mlflow/{p}");
    let v3 = |p: &str| format!("/api/3.0/mlflow/{p}");
    Router::new()
        .route("/v1/traces", post(otlp_export))
        // v3
        .route(&v3("traces"), post(start_trace_v3))
        .route(&v3("traces/get"), get(get_trace))
        .route(&v3("traces/batchGet"), get(batch_get_traces))
        .route(&v3("traces/batchGetInfos"), post(batch_get_trace_infos))
        .route(&v3("traces/search"), post(search_traces_v3))
        .route(&v3("traces/delete-traces"), post(delete_traces))
        .route(&v3("traces/metrics"), post(query_trace_metrics))
        .route(
            &v3("traces/calculate-filter-correlation"),
            post(not_implemented("Correlation of trace filters (NPMI)")),
        )
        .route(&v3("traces/{id}"), get(get_trace_info_v3))
        .route(
            &v3("traces/{id}/tags"),
            patch(set_trace_tag).delete(delete_trace_tag),
        )
        .route(&v3("traces/{id}/assessments"), post(create_assessment))
        .route(
            &v3("traces/{id}/assessments/{assessment}"),
            get(get_assessment)
                .patch(update_assessment)
                .delete(delete_assessment),
        )
        // v2
        .route(&v2("traces"), post(start_trace_v2).get(search_traces_v2))
        .route(&v2("traces/delete-traces"), post(delete_traces))
        .route(&v2("traces/link-to-run"), post(link_traces_to_run))
        .route(
            &v2("traces/link-prompts"),
            post(not_implemented(
                "Linking prompt versions to traces (the prompt registry)",
            )),
        )
        .route(
            &v2("unified-traces"),
            get(not_implemented("Unified trace search (Databricks)")),
        )
        .route(
            &v2("get-online-trace-details"),
            get(not_implemented("Online trace details (Databricks)")),
        )
        .route(&v2("traces/{id}"), patch(end_trace_v2))
        .route(&v2("traces/{id}/info"), get(get_trace_info_v2))
        .route(
            &v2("traces/{id}/tags"),
            patch(set_trace_tag).delete(delete_trace_tag),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_and_durations_round_trip() {
        for ms in [0, 1, 999, 1_796_408_308_302, 951_782_400_000, -1] {
            assert_eq!(
                parse_timestamp(&timestamp(ms)).unwrap(),
                ms,
                "{}",
                timestamp(ms)
            );
        }
        assert_eq!(timestamp(1_796_408_308_302), "2026-12-04T18:18:28.302Z");
        assert_eq!(timestamp(1_796_408_308_000), "2026-12-04T18:18:28Z");
        assert_eq!(
            parse_timestamp("2026-12-04T19:18:28.302123+01:00").unwrap(),
            1_796_408_308_302
        );
        assert!(parse_timestamp("2026-13-04T18:18:28Z").is_err());
        assert!(parse_timestamp("yesterday").is_err());
        assert_eq!(duration(477), "0.477s");
        assert_eq!(duration(2000), "2s");
        for ms in [0, 1, 477, 2000, 123_456] {
            assert_eq!(parse_duration(&duration(ms)).unwrap(), ms);
        }
        assert_eq!(parse_duration("0.4775s").unwrap(), 477);
        assert!(parse_duration("1.5").is_err() && parse_duration("s").is_err());
    }

    #[test]
    fn masks_read_camel_and_snake_case() {
        let m = mask_paths(Some(&json!("assessmentName,feedback"))).unwrap();
        assert_eq!(m, vec!["assessment_name", "feedback"]);
        let m = mask_paths(Some(&json!({"paths": ["rationale", "metadata"]}))).unwrap();
        assert_eq!(m, vec!["rationale", "metadata"]);
    }
}
