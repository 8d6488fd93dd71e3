//! What a trace is made of: spans as OpenTelemetry describes them (ids, times, status, typed
//! attribute values, events, links), the trace-level facts MLflow keeps (state, times, previews,
//! metadata, tags), assessments, and the [`Record`]s the store's log holds.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The most bytes a trace id may have.
pub const MAX_TRACE_ID: usize = 256;

/// A trace's id as MLflow clients know it. A trace that arrives over OTLP is `tr-` and the 32
/// hex digits of its OpenTelemetry trace id (as MLflow's server names it); one started with
/// MLflow's v2 API gets `tr-` and a time-ordered UUID's hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TraceId(String);

impl TraceId {
    /// Checks a trace id given by a client: 1 to [`MAX_TRACE_ID`] bytes of letters, digits and
    /// `-_.:/` (MLflow's v3 and v4 forms: `tr-…`, `trace:/location/…`).
    pub fn parse(s: &str) -> Result<TraceId, Error> {
        let ok = !s.is_empty()
            && s.len() <= MAX_TRACE_ID
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:/".contains(&b));
        if ok {
            Ok(TraceId(s.to_owned()))
        } else {
            Err(Error::InvalidTraceId(s.chars().take(300).collect()))
        }
    }

    /// The MLflow id of the trace whose OpenTelemetry id is `otel`.
    pub fn from_otel(otel: &[u8; 16]) -> TraceId {
        TraceId(format!("tr-{}", crate::encoding::hex(otel)))
    }

    /// A fresh id for a trace started without an OpenTelemetry id (MLflow's v2 `start_trace`).
    pub fn random() -> TraceId {
        TraceId(format!("tr-{}", uuid::Uuid::now_v7().simple()))
    }

    /// The OpenTelemetry trace id inside, when the id has the `tr-<32 hex>` form.
    pub fn otel_bytes(&self) -> Option<[u8; 16]> {
        let hex = self.0.strip_prefix("tr-")?;
        let bytes = crate::encoding::unhex(hex)?;
        bytes.try_into().ok()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TraceId {
    type Error = Error;
    fn try_from(s: String) -> Result<Self, Error> {
        TraceId::parse(&s)
    }
}

impl From<TraceId> for String {
    fn from(id: TraceId) -> String {
        id.0
    }
}

/// An OpenTelemetry attribute value (`AnyValue`), kept with its type as it arrived.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// An `AnyValue` with no value set.
    #[default]
    Empty,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    KvList(Vec<(String, Value)>),
}

impl Value {
    /// The value as JSON: strings, numbers, booleans, arrays and objects as they are; bytes as
    /// base64 text; a non-finite double as the text "NaN", "Infinity" or "-Infinity".
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Empty => J::Null,
            Value::Str(s) => J::String(s.clone()),
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Double(d) => serde_json::Number::from_f64(*d)
                .map(J::Number)
                .unwrap_or_else(|| J::String(nonfinite(*d).into())),
            Value::Bytes(b) => J::String(crate::encoding::base64(b)),
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::KvList(kv) => {
                J::Object(kv.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }

    /// The value as text the way MLflow's Python client dumps an attribute (`json.dumps`: `", "`
    /// and `": "` between items, non-ASCII kept), which is what previews and text search see.
    pub fn to_python_json(&self) -> String {
        let mut out = String::new();
        python_json(&self.to_json(), &mut out);
        out
    }

    /// The text inside a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn nonfinite(d: f64) -> &'static str {
    if d.is_nan() {
        "NaN"
    } else if d > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

fn python_json(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value as J;
    match v {
        J::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                python_json(x, out);
            }
            out.push(']');
        }
        J::Object(o) => {
            out.push('{');
            for (i, (k, x)) in o.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&J::String(k.clone()).to_string());
                out.push_str(": ");
                python_json(x, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A span's status code (OpenTelemetry's `Status.StatusCode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StatusCode {
    #[default]
    Unset,
    Ok,
    Error,
}

impl StatusCode {
    pub fn from_i32(v: i64) -> StatusCode {
        match v {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    pub fn as_i32(self) -> i32 {
        match self {
            StatusCode::Unset => 0,
            StatusCode::Ok => 1,
            StatusCode::Error => 2,
        }
    }

    /// The protobuf enum name (`STATUS_CODE_OK`), as OTLP/JSON and MLflow's answers spell it.
    pub fn proto_name(self) -> &'static str {
        match self {
            StatusCode::Unset => "STATUS_CODE_UNSET",
            StatusCode::Ok => "STATUS_CODE_OK",
            StatusCode::Error => "STATUS_CODE_ERROR",
        }
    }

    /// The short name (`OK`), as MLflow's span filters and the UI spell it.
    pub fn short_name(self) -> &'static str {
        match self {
            StatusCode::Unset => "UNSET",
            StatusCode::Ok => "OK",
            StatusCode::Error => "ERROR",
        }
    }
}

/// A span's status.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanStatus {
    pub code: StatusCode,
    pub message: String,
}

/// Something that happened during a span (an exception, a log line).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Event {
    pub time_ns: u64,
    pub name: String,
    pub attributes: Vec<(String, Value)>,
}

/// A span's link to a span of another (or the same) trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub trace_state: String,
    pub attributes: Vec<(String, Value)>,
}

/// One span, as OpenTelemetry describes it. Times are nanoseconds since the Unix epoch; an end
/// of 0 means the span has not ended.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Span {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub parent_id: Option<[u8; 8]>,
    pub trace_state: String,
    pub flags: u32,
    pub name: String,
    /// OpenTelemetry's `SpanKind` number (0 unspecified, 1 internal, 2 server, …).
    pub kind: i32,
    pub start_ns: u64,
    pub end_ns: u64,
    pub status: SpanStatus,
    pub attributes: Vec<(String, Value)>,
    pub events: Vec<Event>,
    pub links: Vec<Link>,
}

/// MLflow's span attribute keys that Cairn reads.
pub mod attr {
    pub const SPAN_TYPE: &str = "mlflow.spanType";
    pub const INPUTS: &str = "mlflow.spanInputs";
    pub const OUTPUTS: &str = "mlflow.spanOutputs";
    pub const REQUEST_ID: &str = "mlflow.traceRequestId";
    /// Root-span attributes `mlflow.traceTag.<key>` carry the trace's tags over OTLP.
    pub const TRACE_TAG_PREFIX: &str = "mlflow.traceTag.";
}

impl Span {
    /// The MLflow id of the trace this span belongs to.
    pub fn trace(&self) -> TraceId {
        TraceId::from_otel(&self.trace_id)
    }

    /// An attribute by key.
    pub fn attribute(&self, key: &str) -> Option<&Value> {
        self.attributes
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// MLflow's span type (`LLM`, `CHAIN`, …), from the `mlflow.spanType` attribute. The MLflow
    /// client sends it as a JSON string inside a string (`"\"LLM\""`) or as a plain string.
    pub fn span_type(&self) -> Option<String> {
        let s = self.attribute(attr::SPAN_TYPE)?.as_str()?;
        match serde_json::from_str::<String>(s) {
            Ok(inner) => Some(inner),
            Err(_) => Some(s.to_owned()),
        }
    }

    pub fn duration_ns(&self) -> Option<u64> {
        (self.end_ns >= self.start_ns && self.end_ns > 0).then(|| self.end_ns - self.start_ns)
    }
}

/// The state of a trace (MLflow's `TraceInfoV3.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TraceState {
    #[default]
    StateUnspecified,
    Ok,
    Error,
    InProgress,
}

impl TraceState {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceState::StateUnspecified => "STATE_UNSPECIFIED",
            TraceState::Ok => "OK",
            TraceState::Error => "ERROR",
            TraceState::InProgress => "IN_PROGRESS",
        }
    }

    /// Reads a state as MLflow's v3 (`OK`, `IN_PROGRESS`) or v2 (`TRACE_STATUS_OK`, `UNSPECIFIED`)
    /// APIs spell it.
    pub fn parse(s: &str) -> Option<TraceState> {
        let s = s.strip_prefix("TRACE_STATUS_").unwrap_or(s);
        Some(match s {
            "STATE_UNSPECIFIED" | "UNSPECIFIED" | "TRACE_STATUS_UNSPECIFIED" => {
                TraceState::StateUnspecified
            }
            "OK" => TraceState::Ok,
            "ERROR" => TraceState::Error,
            "IN_PROGRESS" => TraceState::InProgress,
            _ => return None,
        })
    }
}

/// The trace-level fields a client may set (MLflow's `TraceInfo`), each kept as the latest
/// value written (see [`Record::Info`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Field {
    Experiment,
    RequestTime,
    ExecutionMs,
    State,
    RequestPreview,
    ResponsePreview,
    ClientRequestId,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Experiment,
        Field::RequestTime,
        Field::ExecutionMs,
        Field::State,
        Field::RequestPreview,
        Field::ResponsePreview,
        Field::ClientRequestId,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Field::Experiment => "experiment",
            Field::RequestTime => "request_time",
            Field::ExecutionMs => "execution_ms",
            Field::State => "state",
            Field::RequestPreview => "request_preview",
            Field::ResponsePreview => "response_preview",
            Field::ClientRequestId => "client_request_id",
        }
    }

    pub fn from_key(k: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.key() == k)
    }
}

/// Who or what made an assessment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AssessmentSource {
    /// `HUMAN`, `LLM_JUDGE`, `CODE` or `SOURCE_TYPE_UNSPECIFIED`.
    pub source_type: String,
    pub source_id: String,
}

/// Why a feedback could not be given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct AssessmentError {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack_trace: Option<String>,
}

/// What an assessment says: a judgement of the trace (feedback) or the answer it should have
/// given (expectation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssessmentValue {
    Feedback {
        #[serde(default)]
        value: serde_json::Value,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<AssessmentError>,
    },
    Expectation {
        #[serde(default)]
        value: serde_json::Value,
        /// A value the client serialised itself (MLflow's `serialized_value`): its format and text.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        serialized: Option<(String, String)>,
    },
}

impl AssessmentValue {
    pub fn kind(&self) -> &'static str {
        match self {
            AssessmentValue::Feedback { .. } => "feedback",
            AssessmentValue::Expectation { .. } => "expectation",
        }
    }

    pub fn value(&self) -> &serde_json::Value {
        match self {
            AssessmentValue::Feedback { value, .. }
            | AssessmentValue::Expectation { value, .. } => value,
        }
    }
}

/// A feedback or expectation on a trace (or one of its spans), MLflow's `Assessment`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    pub assessment_id: String,
    pub assessment_name: String,
    pub trace_id: TraceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span_id: Option<String>,
    pub source: AssessmentSource,
    pub create_time_ms: i64,
    pub last_update_time_ms: i64,
    #[serde(flatten)]
    pub value: AssessmentValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    /// The assessment this one replaces (which then becomes invalid).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<String>,
    pub valid: bool,
}

/// One entry of the store's log: what happened to which trace. Entries are only ever appended;
/// the index (see the crate docs) is what they add up to.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A span of a trace in an experiment (as received; a span id seen again replaces it).
    Span { experiment: String, span: Span },
    /// Trace-level fields (`None`: cleared), metadata and tags a client set (MLflow's
    /// `start_trace`/`end_trace`). Each is kept as the latest value written.
    Info {
        trace: TraceId,
        fields: Vec<(Field, Option<String>)>,
        metadata: Vec<(String, String)>,
        tags: Vec<(String, String)>,
    },
    /// A tag set, or (`None`) deleted: the deletion is kept as a tombstone.
    Tag {
        trace: TraceId,
        key: String,
        value: Option<String>,
    },
    /// An assessment written, or (`None`) deleted (a tombstone).
    Assessment {
        trace: TraceId,
        id: String,
        body: Option<Box<Assessment>>,
    },
    /// The trace belongs to a run (besides the run its `mlflow.sourceRun` metadata names).
    Link { trace: TraceId, run: String },
    /// The trace is deleted: its index entries go, and nothing later brings it back.
    Delete { trace: TraceId },
}

impl Record {
    /// The trace the record is about.
    pub fn trace(&self) -> TraceId {
        match self {
            Record::Span { span, .. } => span.trace(),
            Record::Info { trace, .. }
            | Record::Tag { trace, .. }
            | Record::Assessment { trace, .. }
            | Record::Link { trace, .. }
            | Record::Delete { trace } => trace.clone(),
        }
    }
}

/// A record with the wall-clock time it was written (milliseconds): of two writes to one key,
/// the later (then the source's name, then its position) is the one kept.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub at_ms: i64,
    pub record: Record,
}

/// A trace as the index knows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceInfo {
    pub trace_id: TraceId,
    /// The experiment's id (Cairn's).
    pub experiment: String,
    pub request_time_ms: i64,
    pub execution_ms: Option<i64>,
    pub state: TraceState,
    /// The `mlflow.traceName` tag, else the root span's name.
    pub name: Option<String>,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    pub client_request_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub assessments: Vec<Assessment>,
    /// Runs the trace belongs to: its `mlflow.sourceRun` and those linked to it.
    pub runs: Vec<String>,
    pub span_count: u64,
}

/// Keys of trace metadata MLflow gives a meaning to.
pub mod meta {
    pub const SOURCE_RUN: &str = "mlflow.sourceRun";
    pub const TOKEN_USAGE: &str = "mlflow.trace.tokenUsage";
    pub const SESSION: &str = "mlflow.trace.session";
}

/// Keys of trace tags MLflow gives a meaning to.
pub mod tag {
    pub const TRACE_NAME: &str = "mlflow.traceName";
}
