//! Traces (issue #13): what GenAI apps send through MLflow 3's client and OpenTelemetry's OTLP
//! exporters, kept in the workspace's `traces.db` (`cairn-traces`). The operations here hold
//! MLflow's rules: which experiment a trace is in and that it exists, trace ids, tag limits,
//! what a deletion by age and count takes, assessments overriding one another, links to runs
//! that exist. Front ends translate their wire shapes to these calls and back.
//!
//! The types a front end needs are re-exported here (spans, attribute values, trace infos,
//! assessments), so no front end depends on the store crate.

use std::collections::{BTreeMap, BTreeSet};

use cairn_model::{Experiment, ExperimentId, RunId};
use cairn_traces::otlp;
use serde::{Deserialize, Serialize};

pub use cairn_traces::otlp::Limits as OtlpLimits;
pub use cairn_traces::{
    Aggregation, Assessment, AssessmentError, AssessmentSource, AssessmentValue, DataPoint, Event,
    Link, MAX_PAGE, MetricView, Span, SpanStatus, StatusCode, TraceId, TraceInfo, TraceState,
    Value, base64, hex, unbase64, unhex,
};

use crate::stores::now_ms;
use crate::{Code, Error, Stores, Workspace};

/// MLflow's bounds on a trace tag (`MAX_TRACE_TAG_KEY_LENGTH`, `MAX_TRACE_TAG_VAL_LENGTH`; a
/// longer value is cut, as MLflow's server does).
pub const MAX_TAG_KEY: usize = 250;
pub const MAX_TAG_VALUE: usize = 8000;
/// MLflow links at most this many traces to a run in one call.
pub const MAX_LINKS: usize = 100;

pub(crate) fn code(e: &cairn_traces::Error) -> Code {
    use cairn_traces::Error as T;
    match e {
        T::UnknownTrace(_) | T::UnknownAssessment { .. } | T::UnknownTag { .. } => Code::NotFound,
        T::InvalidTraceId(_) | T::Filter { .. } | T::Invalid(_) | T::Otlp(_) => {
            Code::InvalidArgument
        }
        T::CorruptChunk { .. } | T::Corrupt { .. } => Code::Corrupt,
        T::Peer { .. } => Code::InvalidArgument,
        _ => Code::Io,
    }
}

/// How an OTLP request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpFormat {
    Protobuf,
    Json,
}

/// What an OTLP request stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ingested {
    pub spans: usize,
    pub traces: usize,
}

/// A trace a client records (MLflow's v3 `StartTraceV3`, which despite its name comes when the
/// trace has ended, and v2 `StartTrace`). What is `None` is left as the spans say.
#[derive(Debug, Clone, Default)]
pub struct TraceStart {
    /// `None`: a fresh id (v2).
    pub trace_id: Option<TraceId>,
    /// The experiment as an MLflow client names it ("0" is the default experiment).
    pub experiment: String,
    pub request_time_ms: Option<i64>,
    pub execution_ms: Option<i64>,
    pub state: Option<TraceState>,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    pub client_request_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
    pub assessments: Vec<NewAssessment>,
}

/// A trace's end (MLflow's v2 `EndTrace`).
#[derive(Debug, Clone, Default)]
pub struct TraceEnd {
    pub trace_id: String,
    pub end_time_ms: i64,
    pub state: Option<TraceState>,
    pub metadata: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// A search over traces (MLflow's `SearchTracesV3`, the UI's run page).
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    /// Experiments as MLflow clients name them; empty: all.
    pub experiments: Vec<String>,
    pub filter: Option<String>,
    pub order_by: Vec<String>,
    pub run: Option<String>,
    pub text: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

/// Which traces to delete (MLflow's `DeleteTraces`): by id, or the oldest up to a time.
#[derive(Debug, Clone)]
pub enum TraceDeletion {
    Ids(Vec<String>),
    Older {
        max_timestamp_ms: i64,
        max_traces: Option<i64>,
    },
}

/// An assessment to record; the id and times are given here unless the client set them.
#[derive(Debug, Clone)]
pub struct NewAssessment {
    pub assessment_id: Option<String>,
    pub trace_id: String,
    pub name: String,
    pub span_id: Option<String>,
    pub source: AssessmentSource,
    pub create_time_ms: Option<i64>,
    pub last_update_time_ms: Option<i64>,
    pub value: AssessmentValue,
    pub rationale: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub overrides: Option<String>,
    pub valid: Option<bool>,
}

/// What an update of an assessment changes (MLflow's `UpdateAssessment` with its mask): the
/// source and span are immutable; metadata is merged.
#[derive(Debug, Clone, Default)]
pub struct AssessmentUpdate {
    pub name: Option<String>,
    pub value: Option<AssessmentValue>,
    pub rationale: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

/// A trace metric query (MLflow's `QueryTraceMetrics`); experiments as MLflow names them.
#[derive(Debug, Clone, Default)]
pub struct TraceMetricsQuery {
    pub experiments: Vec<String>,
    pub view: MetricView,
    pub metric: String,
    pub aggregations: Vec<Aggregation>,
    pub dimensions: Vec<String>,
    pub filters: Vec<String>,
    pub interval_s: Option<i64>,
    pub start_ms: Option<i64>,
    pub end_ms: Option<i64>,
    pub limit: usize,
}

// ---- the UI's view ------------------------------------------------------------------------

/// A run's traces, newest first, narrowed by text.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema), ts(optional_fields = nullable))]
#[serde(deny_unknown_fields)]
pub struct RunTracesRequest {
    /// The run, by id or unique id prefix.
    pub id: String,
    /// Text that must occur in the trace (its id, name, previews or any span).
    pub q: Option<String>,
    pub limit: Option<usize>,
    pub offset: Option<usize>,
}

/// A trace by id.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TraceRef {
    pub id: String,
}

/// One trace in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TraceSummary {
    pub trace_id: String,
    pub name: Option<String>,
    /// `OK`, `ERROR`, `IN_PROGRESS` or `STATE_UNSPECIFIED`.
    pub state: String,
    /// When the request came, Unix milliseconds.
    pub request_time_ms: i64,
    pub execution_ms: Option<i64>,
    pub span_count: u64,
    pub request_preview: Option<String>,
    pub response_preview: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub assessment_count: u64,
}

/// A page of traces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TracesPage {
    pub traces: Vec<TraceSummary>,
    /// Where the next page starts; absent on the last.
    pub next_offset: Option<usize>,
}

/// An attribute of a span, its value as JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct AttributeView {
    pub key: String,
    pub value: String,
}

/// Something that happened during a span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct EventView {
    pub name: String,
    /// Microseconds after the trace's first span started.
    pub offset_us: i64,
    pub attributes: Vec<AttributeView>,
}

/// One span for the waterfall: where it sits in the tree and in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct SpanView {
    /// 16 hex digits.
    pub span_id: String,
    pub parent_id: Option<String>,
    pub name: String,
    /// MLflow's span type (`LLM`, `CHAIN`, `TOOL`, …).
    pub span_type: Option<String>,
    /// `OK`, `ERROR` or `UNSET`.
    pub status: String,
    pub status_message: String,
    /// Microseconds after the trace's first span started.
    pub offset_us: i64,
    /// `None` while the span has not ended.
    pub duration_us: Option<i64>,
    /// Inputs and outputs (MLflow's `mlflow.spanInputs`/`mlflow.spanOutputs`) as JSON text.
    pub inputs: Option<String>,
    pub outputs: Option<String>,
    pub attributes: Vec<AttributeView>,
    pub events: Vec<EventView>,
}

/// A feedback or expectation as the UI shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct AssessmentView {
    pub assessment_id: String,
    pub name: String,
    /// `feedback` or `expectation`.
    pub kind: String,
    /// The value as JSON text.
    pub value: String,
    pub rationale: Option<String>,
    pub source: String,
    pub valid: bool,
}

/// One trace with its span tree (spans by start time; `parent_id` links the tree).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS, schemars::JsonSchema))]
pub struct TraceView {
    pub trace: TraceSummary,
    pub experiment: String,
    pub runs: Vec<String>,
    pub metadata: BTreeMap<String, String>,
    pub assessments: Vec<AssessmentView>,
    pub spans: Vec<SpanView>,
}

fn summary(t: &TraceInfo) -> TraceSummary {
    TraceSummary {
        trace_id: t.trace_id.to_string(),
        name: t.name.clone(),
        state: t.state.as_str().to_owned(),
        request_time_ms: t.request_time_ms,
        execution_ms: t.execution_ms,
        span_count: t.span_count,
        request_preview: t.request_preview.clone(),
        response_preview: t.response_preview.clone(),
        tags: t.tags.clone(),
        assessment_count: t.assessments.len() as u64,
    }
}

/// A value as JSON text: a string that holds JSON (how MLflow's client sends most values) is
/// shown as that JSON, pretty-printed.
fn json_text(v: &Value) -> String {
    let json = match v {
        Value::Str(s) => match serde_json::from_str::<serde_json::Value>(s) {
            Ok(inner) => inner,
            Err(_) => return s.clone(),
        },
        other => other.to_json(),
    };
    match json {
        serde_json::Value::String(s) => s,
        other => serde_json::to_string_pretty(&other).unwrap_or_default(),
    }
}

fn attrs(a: &[(String, Value)]) -> Vec<AttributeView> {
    a.iter()
        .map(|(k, v)| AttributeView {
            key: k.clone(),
            value: json_text(v),
        })
        .collect()
}

fn view(info: &TraceInfo, spans: &[Span]) -> TraceView {
    let t0 = spans.iter().map(|s| s.start_ns).min().unwrap_or(0);
    let us = |ns: u64| i64::try_from(ns.saturating_sub(t0) / 1000).unwrap_or(i64::MAX);
    let spans = spans
        .iter()
        .map(|s| SpanView {
            span_id: hex(&s.span_id),
            parent_id: s.parent_id.as_ref().map(|p| hex(p)),
            name: s.name.clone(),
            span_type: s.span_type(),
            status: s.status.code.short_name().to_owned(),
            status_message: s.status.message.clone(),
            offset_us: us(s.start_ns),
            duration_us: s
                .duration_ns()
                .map(|d| i64::try_from(d / 1000).unwrap_or(i64::MAX)),
            inputs: s.attribute(cairn_traces::attr::INPUTS).map(json_text),
            outputs: s.attribute(cairn_traces::attr::OUTPUTS).map(json_text),
            attributes: attrs(
                &s.attributes
                    .iter()
                    .filter(|(k, _)| {
                        k != cairn_traces::attr::INPUTS
                            && k != cairn_traces::attr::OUTPUTS
                            && k != cairn_traces::attr::REQUEST_ID
                    })
                    .cloned()
                    .collect::<Vec<_>>(),
            ),
            events: s
                .events
                .iter()
                .map(|e| EventView {
                    name: e.name.clone(),
                    offset_us: us(e.time_ns),
                    attributes: attrs(&e.attributes),
                })
                .collect(),
        })
        .collect();
    TraceView {
        trace: summary(info),
        experiment: info.experiment.clone(),
        runs: info.runs.clone(),
        metadata: info.metadata.clone(),
        assessments: info
            .assessments
            .iter()
            .map(|a| AssessmentView {
                assessment_id: a.assessment_id.clone(),
                name: a.assessment_name.clone(),
                kind: a.value.kind().to_owned(),
                value: match a.value.value() {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                rationale: a.rationale.clone(),
                source: format!("{} {}", a.source.source_type, a.source.source_id)
                    .trim()
                    .to_owned(),
                valid: a.valid,
            })
            .collect(),
        spans,
    }
}

// ---- rules ----------------------------------------------------------------------------------

/// The experiment an MLflow client means by `id` ("0": the default one).
fn experiment(s: &mut Stores, id: &str) -> Result<Experiment, Error> {
    if id == "0" {
        return s.default_experiment();
    }
    let parsed: ExperimentId = id
        .parse()
        .map_err(|_| Error::UnknownExperiment(id.to_owned()))?;
    s.experiment_by_id(parsed)
}

/// The experiment traces are written to: it must exist and not be deleted.
fn live_experiment(s: &mut Stores, id: &str) -> Result<Experiment, Error> {
    let e = experiment(s, id)?;
    if e.deleted {
        return Err(Error::Invalid(format!(
            "The experiment {id} must be in the 'active' state. Current state is deleted."
        )));
    }
    Ok(e)
}

/// Experiment ids as the store keeps them (Cairn's), from MLflow's; unknown ones are kept as
/// given and match nothing.
fn store_experiments(s: &mut Stores, ids: &[String]) -> Result<Vec<String>, Error> {
    ids.iter()
        .map(|id| match experiment(s, id) {
            Ok(e) => Ok(e.id.to_string()),
            Err(Error::UnknownExperiment(_)) => Ok(id.clone()),
            Err(e) => Err(e),
        })
        .collect()
}

fn check_tag(key: &str, value: &str) -> Result<String, Error> {
    if key.is_empty() {
        return Err(Error::Invalid("a trace tag needs a key".into()));
    }
    let n = key.chars().count();
    if n > MAX_TAG_KEY {
        return Err(Error::Invalid(format!(
            "'key' exceeds the maximum length of {MAX_TAG_KEY} characters (it has {n})"
        )));
    }
    // MLflow's server cuts a long value rather than refusing it.
    Ok(value.chars().take(MAX_TAG_VALUE).collect())
}

fn trace_id(id: &str) -> Result<TraceId, Error> {
    Ok(TraceId::parse(id)?)
}

/// A trace that exists (and was not deleted), or MLflow's "not found".
fn existing(s: &Stores, id: &str) -> Result<TraceInfo, Error> {
    let t = trace_id(id)?;
    s.traces()
        .info(&t)?
        .ok_or_else(|| cairn_traces::Error::UnknownTrace(id.to_owned()).into())
}

fn entry(record: cairn_traces::Record) -> cairn_traces::Entry {
    cairn_traces::Entry {
        at_ms: now_ms(),
        record,
    }
}

fn new_assessment_id() -> String {
    format!("a-{}", cairn_model::RunId::new())
}

/// A recorded assessment from what a client gave.
fn assessment_of(n: NewAssessment, trace: &TraceId) -> Result<Assessment, Error> {
    if n.name.trim().is_empty() {
        return Err(Error::Invalid("an assessment needs a name".into()));
    }
    let now = now_ms();
    let created = n.create_time_ms.unwrap_or(now);
    Ok(Assessment {
        assessment_id: n.assessment_id.unwrap_or_else(new_assessment_id),
        assessment_name: n.name,
        trace_id: trace.clone(),
        span_id: n.span_id.filter(|s| !s.is_empty()),
        source: n.source,
        create_time_ms: created,
        last_update_time_ms: n.last_update_time_ms.unwrap_or(created),
        value: n.value,
        rationale: n.rationale,
        metadata: n.metadata,
        overrides: n.overrides.filter(|s| !s.is_empty()),
        valid: n.valid.unwrap_or(true),
    })
}

fn assessment_record(a: &Assessment) -> cairn_traces::Record {
    cairn_traces::Record::Assessment {
        trace: a.trace_id.clone(),
        id: a.assessment_id.clone(),
        body: Some(Box::new(a.clone())),
    }
}

/// The records that make `n` and, when it overrides another, that other invalid.
fn assessment_records(
    s: &Stores,
    trace: &TraceId,
    n: NewAssessment,
) -> Result<(Assessment, Vec<cairn_traces::Record>), Error> {
    let a = assessment_of(n, trace)?;
    let mut records = vec![assessment_record(&a)];
    if let Some(old) = &a.overrides {
        let mut prior = s.traces().assessment(trace, old)?.ok_or_else(|| {
            cairn_traces::Error::UnknownAssessment {
                trace: trace.to_string(),
                id: old.clone(),
            }
        })?;
        prior.valid = false;
        records.insert(0, assessment_record(&prior));
    }
    Ok((a, records))
}

impl Workspace {
    /// Stores the spans of an OTLP/HTTP request (`/v1/traces`) in `experiment` (MLflow's id, from
    /// the `x-mlflow-experiment-id` header). Resource attributes become tags of the traces
    /// (except `telemetry.sdk.*` and `mlflow.*`, as MLflow's server does); traces whose root
    /// span arrived are linked to `run` when one is named.
    pub fn ingest_otlp(
        &self,
        experiment_id: &str,
        run: Option<&str>,
        body: &[u8],
        format: OtlpFormat,
        encoding: Option<&str>,
        limits: &OtlpLimits,
    ) -> Result<Ingested, Error> {
        let inflated;
        let body = match encoding.filter(|e| !e.trim().is_empty()) {
            Some(enc) => {
                inflated = otlp::decompress(body, enc, limits.max_bytes)?;
                &inflated[..]
            }
            None => body,
        };
        let request = match format {
            OtlpFormat::Protobuf => otlp::decode_protobuf(body, limits)?,
            OtlpFormat::Json => otlp::decode_json(body, limits)?,
        };
        if request.is_empty() {
            return Err(Error::Invalid(
                "Invalid OpenTelemetry format - no spans found".into(),
            ));
        }
        let run = match run.filter(|r| !r.is_empty()) {
            Some(r) => Some(r.parse::<RunId>()?),
            None => None,
        };
        self.write("ingest_otlp", |s| {
            let exp = experiment(s, experiment_id)?.id.to_string();
            if let Some(run) = run {
                s.run_record(run)?;
            }
            let now = now_ms();
            let mut entries = Vec::new();
            let mut report = Ingested::default();
            let mut traces = BTreeSet::new();
            for rs in request {
                let tags: Vec<(String, String)> = rs
                    .resource
                    .iter()
                    .filter(|(k, _)| !k.starts_with("telemetry.sdk.") && !k.starts_with("mlflow."))
                    .filter(|(k, _)| !k.is_empty() && k.chars().count() <= MAX_TAG_KEY)
                    .map(|(k, v)| {
                        let text = match v {
                            Value::Str(s) => s.clone(),
                            other => other.to_json().to_string(),
                        };
                        (k.clone(), text.chars().take(MAX_TAG_VALUE).collect())
                    })
                    .collect();
                let mut here = BTreeSet::new();
                let mut completed = BTreeSet::new();
                for span in rs.spans {
                    let t = span.trace();
                    if span.parent_id.is_none() {
                        completed.insert(t.clone());
                    }
                    here.insert(t);
                    report.spans += 1;
                    entries.push(cairn_traces::Entry {
                        at_ms: now,
                        record: cairn_traces::Record::Span {
                            experiment: exp.clone(),
                            span,
                        },
                    });
                }
                for t in &here {
                    if !tags.is_empty() {
                        entries.push(cairn_traces::Entry {
                            at_ms: now,
                            record: cairn_traces::Record::Info {
                                trace: t.clone(),
                                fields: vec![],
                                metadata: vec![],
                                tags: tags.clone(),
                            },
                        });
                    }
                }
                if let Some(run) = run {
                    for t in completed {
                        entries.push(cairn_traces::Entry {
                            at_ms: now,
                            record: cairn_traces::Record::Link {
                                trace: t,
                                run: run.to_string(),
                            },
                        });
                    }
                }
                traces.extend(here);
            }
            report.traces = traces.len();
            s.traces_mut().append(&entries)?;
            Ok(report)
        })
    }

    /// Records a trace's info (MLflow's `StartTraceV3`, and `StartTrace` of v2 when `trace_id`
    /// is `None`): fields given replace what the spans say, metadata and tags are merged.
    pub fn start_trace(&self, start: TraceStart) -> Result<TraceInfo, Error> {
        use cairn_traces::Field as F;
        let trace = match &start.trace_id {
            Some(t) => t.clone(),
            None => TraceId::random(),
        };
        let mut tags = Vec::new();
        for (k, v) in &start.tags {
            tags.push((k.clone(), check_tag(k, v)?));
        }
        self.write("start_trace", |s| {
            let exp = live_experiment(s, &start.experiment)?;
            if s.traces().is_deleted(&trace)? {
                return Err(Error::Conflict(format!(
                    "trace '{trace}' was deleted; a deleted trace is not recorded again"
                )));
            }
            let mut fields = vec![(F::Experiment, Some(exp.id.to_string()))];
            let mut push = |f, v: Option<String>| {
                if let Some(v) = v {
                    fields.push((f, Some(v)));
                }
            };
            push(F::RequestTime, start.request_time_ms.map(|v| v.to_string()));
            push(F::ExecutionMs, start.execution_ms.map(|v| v.to_string()));
            push(F::State, start.state.map(|st| st.as_str().to_owned()));
            push(F::RequestPreview, start.request_preview.clone());
            push(F::ResponsePreview, start.response_preview.clone());
            push(F::ClientRequestId, start.client_request_id.clone());
            let mut records = vec![cairn_traces::Record::Info {
                trace: trace.clone(),
                fields,
                metadata: start.metadata.clone().into_iter().collect(),
                tags: tags.clone(),
            }];
            for a in start.assessments.clone() {
                let a = assessment_of(a, &trace)?;
                records.push(assessment_record(&a));
            }
            let entries: Vec<_> = records.into_iter().map(entry).collect();
            s.traces_mut().append(&entries)?;
            existing(s, trace.as_str())
        })
    }

    /// Ends a trace started with MLflow's v2 API: its duration from its start, its state,
    /// metadata and tags merged.
    pub fn end_trace(&self, end: TraceEnd) -> Result<TraceInfo, Error> {
        use cairn_traces::Field as F;
        let mut tags = Vec::new();
        for (k, v) in &end.tags {
            tags.push((k.clone(), check_tag(k, v)?));
        }
        self.write("end_trace", |s| {
            let info = existing(s, &end.trace_id)?;
            let mut fields = vec![(
                F::ExecutionMs,
                Some((end.end_time_ms - info.request_time_ms).to_string()),
            )];
            if let Some(st) = end.state {
                fields.push((F::State, Some(st.as_str().to_owned())));
            }
            s.traces_mut().append(&[entry(cairn_traces::Record::Info {
                trace: info.trace_id.clone(),
                fields,
                metadata: end.metadata.clone().into_iter().collect(),
                tags,
            })])?;
            existing(s, &end.trace_id)
        })
    }

    /// A trace's info (with its metadata, tags, assessments and runs).
    pub fn trace_info(&self, id: &str) -> Result<TraceInfo, Error> {
        self.read("trace_info", |s| existing(s, id))
    }

    /// A trace's info and its spans.
    pub fn trace(&self, id: &str) -> Result<(TraceInfo, Vec<Span>), Error> {
        self.read("trace", |s| {
            let info = existing(s, id)?;
            let spans = s.traces().spans(&info.trace_id)?;
            Ok((info, spans))
        })
    }

    /// Traces with their spans; ids that name no trace are left out (MLflow's `BatchGetTraces`).
    pub fn traces(&self, ids: &[String]) -> Result<Vec<(TraceInfo, Vec<Span>)>, Error> {
        self.read("traces", |s| {
            let mut out = Vec::new();
            for id in ids {
                let t = trace_id(id)?;
                if let Some(info) = s.traces().info(&t)? {
                    let spans = s.traces().spans(&t)?;
                    out.push((info, spans));
                }
            }
            Ok(out)
        })
    }

    /// A page of traces matching a query, and the offset of the next.
    pub fn search_traces(&self, q: &TraceQuery) -> Result<(Vec<TraceInfo>, Option<usize>), Error> {
        self.read("search_traces", |s| {
            let experiments = store_experiments(s, &q.experiments)?;
            Ok(s.traces().search(&cairn_traces::Search {
                experiments,
                filter: q.filter.clone(),
                order_by: q.order_by.clone(),
                run: q.run.clone(),
                text: q.text.clone(),
                limit: q.limit,
                offset: q.offset,
            })?)
        })
    }

    /// Sets a tag on a trace (a value past MLflow's 8,000 characters is cut).
    pub fn set_trace_tag(&self, id: &str, key: &str, value: &str) -> Result<(), Error> {
        let value = check_tag(key, value)?;
        self.write("set_trace_tag", |s| {
            let info = existing(s, id)?;
            Ok(s.traces_mut().append(&[entry(cairn_traces::Record::Tag {
                trace: info.trace_id,
                key: key.to_owned(),
                value: Some(value),
            })])?)
        })
    }

    /// Deletes a trace's tag (a tombstone); a tag the trace does not have is an error naming it.
    pub fn delete_trace_tag(&self, id: &str, key: &str) -> Result<(), Error> {
        self.write("delete_trace_tag", |s| {
            let info = existing(s, id)?;
            if !info.tags.contains_key(key) {
                return Err(cairn_traces::Error::UnknownTag {
                    trace: id.to_owned(),
                    key: key.to_owned(),
                }
                .into());
            }
            Ok(s.traces_mut().append(&[entry(cairn_traces::Record::Tag {
                trace: info.trace_id,
                key: key.to_owned(),
                value: None,
            })])?)
        })
    }

    /// Deletes traces of an experiment (MLflow's `DeleteTraces`): the ones named, or the oldest
    /// up to a time (at most a count). Returns how many were deleted.
    pub fn delete_traces(&self, experiment_id: &str, which: TraceDeletion) -> Result<usize, Error> {
        if let TraceDeletion::Older {
            max_traces: Some(n),
            ..
        } = which
            && n <= 0
        {
            return Err(Error::Invalid(format!(
                "`max_traces` must be a positive integer, received {n}."
            )));
        }
        if let TraceDeletion::Ids(ids) = &which
            && ids.is_empty()
        {
            return Err(Error::Invalid(
                "Either `max_timestamp_millis` or `trace_ids` must be specified.".into(),
            ));
        }
        self.write("delete_traces", |s| {
            let exp = experiment(s, experiment_id)?.id.to_string();
            let doomed: Vec<TraceId> = match &which {
                TraceDeletion::Ids(ids) => {
                    let mut out = Vec::new();
                    for id in ids {
                        let t = trace_id(id)?;
                        if s.traces().info(&t)?.is_some_and(|i| i.experiment == exp) {
                            out.push(t);
                        }
                    }
                    out
                }
                TraceDeletion::Older {
                    max_timestamp_ms,
                    max_traces,
                } => s.traces().select_old(
                    &exp,
                    *max_timestamp_ms,
                    max_traces.map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
                )?,
            };
            let entries: Vec<_> = doomed
                .iter()
                .map(|t| entry(cairn_traces::Record::Delete { trace: t.clone() }))
                .collect();
            s.traces_mut().append(&entries)?;
            Ok(doomed.len())
        })
    }

    /// Links traces to a run (MLflow's `LinkTracesToRun`: at most 100 at once).
    pub fn link_traces_to_run(&self, ids: &[String], run: &str) -> Result<(), Error> {
        if ids.len() > MAX_LINKS {
            return Err(Error::Invalid(format!(
                "Cannot link more than {MAX_LINKS} traces to a run in a single request. Provided {} traces.",
                ids.len()
            )));
        }
        let run: RunId = run.parse()?;
        self.write("link_traces_to_run", |s| {
            s.run_record(run)?;
            let mut entries = Vec::new();
            for id in ids {
                let info = existing(s, id)?;
                entries.push(entry(cairn_traces::Record::Link {
                    trace: info.trace_id,
                    run: run.to_string(),
                }));
            }
            Ok(s.traces_mut().append(&entries)?)
        })
    }

    /// Records an assessment; one that overrides another makes that other invalid.
    pub fn create_assessment(&self, new: NewAssessment) -> Result<Assessment, Error> {
        self.write("create_assessment", |s| {
            let info = existing(s, &new.trace_id)?;
            let (a, records) = assessment_records(s, &info.trace_id, new)?;
            let entries: Vec<_> = records.into_iter().map(entry).collect();
            s.traces_mut().append(&entries)?;
            Ok(a)
        })
    }

    /// One assessment of a trace.
    pub fn assessment(&self, trace: &str, id: &str) -> Result<Assessment, Error> {
        self.read("assessment", |s| {
            let info = existing(s, trace)?;
            s.traces().assessment(&info.trace_id, id)?.ok_or_else(|| {
                cairn_traces::Error::UnknownAssessment {
                    trace: trace.to_owned(),
                    id: id.to_owned(),
                }
                .into()
            })
        })
    }

    /// Changes an assessment (its source and span stay; metadata is merged).
    pub fn update_assessment(
        &self,
        trace: &str,
        id: &str,
        update: AssessmentUpdate,
    ) -> Result<Assessment, Error> {
        self.write("update_assessment", |s| {
            let info = existing(s, trace)?;
            let mut a = s.traces().assessment(&info.trace_id, id)?.ok_or_else(|| {
                cairn_traces::Error::UnknownAssessment {
                    trace: trace.to_owned(),
                    id: id.to_owned(),
                }
            })?;
            if let Some(name) = update.name {
                a.assessment_name = name;
            }
            if let Some(v) = update.value {
                if v.kind() != a.value.kind() {
                    return Err(Error::Invalid(format!(
                        "Cannot update {} value on {} assessment.",
                        v.kind(),
                        if a.value.kind() == "feedback" {
                            "a Feedback"
                        } else {
                            "an Expectation"
                        }
                    )));
                }
                a.value = v;
            }
            if let Some(r) = update.rationale {
                a.rationale = Some(r);
            }
            if let Some(m) = update.metadata {
                a.metadata.extend(m);
            }
            a.last_update_time_ms = now_ms();
            s.traces_mut().append(&[entry(assessment_record(&a))])?;
            Ok(a)
        })
    }

    /// Deletes an assessment (nothing to delete is fine, as with MLflow); the one it overrode
    /// is valid again.
    pub fn delete_assessment(&self, trace: &str, id: &str) -> Result<(), Error> {
        self.write("delete_assessment", |s| {
            let info = existing(s, trace)?;
            let Some(a) = s.traces().assessment(&info.trace_id, id)? else {
                return Ok(());
            };
            let mut records = vec![cairn_traces::Record::Assessment {
                trace: info.trace_id.clone(),
                id: id.to_owned(),
                body: None,
            }];
            if let Some(old) = &a.overrides
                && let Some(mut prior) = s.traces().assessment(&info.trace_id, old)?
            {
                prior.valid = true;
                records.push(assessment_record(&prior));
            }
            let entries: Vec<_> = records.into_iter().map(entry).collect();
            Ok(s.traces_mut().append(&entries)?)
        })
    }

    /// MLflow's trace metrics over experiments.
    pub fn trace_metrics(&self, q: &TraceMetricsQuery) -> Result<Vec<DataPoint>, Error> {
        self.read("trace_metrics", |s| {
            let experiments = store_experiments(s, &q.experiments)?;
            Ok(s.traces().metrics(&cairn_traces::MetricsQuery {
                experiments,
                view: q.view,
                metric: q.metric.clone(),
                aggregations: q.aggregations.clone(),
                dimensions: q.dimensions.clone(),
                filters: q.filters.clone(),
                interval_s: q.interval_s,
                start_ms: q.start_ms,
                end_ms: q.end_ms,
                limit: q.limit,
            })?)
        })
    }

    /// The id MLflow clients know the experiment `id` (Cairn's) by: "0" for the default one.
    pub fn mlflow_experiment_of(&self, id: &str) -> Result<String, Error> {
        let default = self.default_experiment()?;
        Ok(if default.id.to_string() == id {
            "0".into()
        } else {
            id.to_owned()
        })
    }

    // ---- the UI ---------------------------------------------------------------------------

    /// A run's traces, newest first (the run page's list).
    pub fn run_traces(&self, r: &RunTracesRequest) -> Result<TracesPage, Error> {
        self.read("run_traces", |s| {
            let run = s.resolve_run(&r.id)?;
            let (traces, next) = s.traces().search(&cairn_traces::Search {
                run: Some(run.to_string()),
                text: r.q.clone(),
                limit: r.limit.unwrap_or(100).clamp(1, 1000),
                offset: r.offset.unwrap_or(0),
                ..cairn_traces::Search::default()
            })?;
            Ok(TracesPage {
                traces: traces.iter().map(summary).collect(),
                next_offset: next,
            })
        })
    }

    /// One trace with its span tree (the run page's waterfall).
    pub fn trace_view(&self, id: &str) -> Result<TraceView, Error> {
        let (info, spans) = self.trace(id)?;
        Ok(view(&info, &spans))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_text_shows_json_strings_as_json() {
        assert_eq!(json_text(&Value::Str("\"LLM\"".into())), "LLM");
        assert_eq!(json_text(&Value::Str("plain".into())), "plain");
        assert_eq!(
            json_text(&Value::KvList(vec![("a".into(), Value::Int(1))])),
            "{\n  \"a\": 1\n}"
        );
    }
}
