//! Trace benchmark of `cairn-traces` (plain `fn main`, run with
//! `cargo bench -p cairn-traces --bench traces`; `TRACES_BENCH_SPANS=N` for another size).
//!
//! Ingest: OTLP/HTTP protobuf requests as an exporter's batch processor sends them (500 spans:
//! 50 agent traces of 10 spans, inputs and outputs on every span, resource attributes) are
//! decoded and appended to a fresh on-disk store the way `cairn-core` stores a request (a span
//! entry per span, the resource's attributes as tags and a link to the run per trace), one
//! transaction a request, until the store holds 1M spans. Search: MLflow's searches over the
//! 1M spans (newest first, by status, tag, duration, time range, name, span name and type, a
//! run's traces, text), each repeated, p50 and p95 per query and over the mix. Prints figures;
//! asserts nothing about speed (it does check each query finds what the data holds).
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use cairn_traces::otlp::{self, Limits, ResourceSpans};
use cairn_traces::{Entry, Record, Search, Span, SpanStatus, StatusCode, TraceStore, Value};

const SPANS_PER_TRACE: usize = 10;
const TRACES_PER_REQUEST: usize = 50;
const REPEATS: usize = 20;
const EXPERIMENT: &str = "0195f3a0c2d94c1f8e7a6b5c4d3e2f10";
const RUNS: usize = 100;

/// A small xorshift generator: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const STEPS: [(&str, &str); 9] = [
    ("retrieve", "RETRIEVER"),
    ("embed", "EMBEDDING"),
    ("rerank", "RERANKER"),
    ("plan", "CHAIN"),
    ("llm", "LLM"),
    ("search_tool", "TOOL"),
    ("llm", "LLM"),
    ("parse", "PARSER"),
    ("answer", "CHAIN"),
];

fn text(key: &str, v: String) -> (String, Value) {
    (key.to_owned(), Value::Str(v))
}

/// Trace `n`: an agent's root span and nine steps, 10-4000 ms long, 1 in 20 failing.
fn agent_trace(n: u64, t0_ns: u64, rng: &mut Rng) -> Vec<Span> {
    let mut trace_id = [0u8; 16];
    trace_id[..8].copy_from_slice(&n.to_be_bytes());
    trace_id[8..].copy_from_slice(&rng.next().to_be_bytes());
    let failed = rng.below(20) == 0;
    let total_ns = (10 + rng.below(4000)) * 1_000_000;
    let root_id = (n << 4 | 1).to_be_bytes();
    let question = format!(
        "{{\"messages\": [{{\"role\": \"user\", \"content\": \"question {n}: how do I tune topic-{} for case {}?\"}}]}}",
        rng.below(500),
        n
    );
    let mut spans = vec![Span {
        trace_id,
        span_id: root_id,
        parent_id: None,
        name: format!("agent-{}", n % 50),
        kind: 1,
        start_ns: t0_ns,
        end_ns: t0_ns + total_ns,
        status: SpanStatus {
            code: if failed {
                StatusCode::Error
            } else {
                StatusCode::Ok
            },
            message: if failed {
                "rate limited".into()
            } else {
                String::new()
            },
        },
        attributes: vec![
            text("mlflow.spanType", "\"AGENT\"".into()),
            text("mlflow.spanInputs", question),
            text(
                "mlflow.spanOutputs",
                format!(
                    "\"answer {n}: set the learning rate to {} and retry\"",
                    rng.below(1000)
                ),
            ),
        ],
        ..Span::default()
    }];
    let step_ns = total_ns / (STEPS.len() as u64 + 1);
    for (i, (name, kind)) in STEPS.iter().enumerate() {
        let start = t0_ns + step_ns * i as u64 + rng.below(step_ns / 4 + 1);
        spans.push(Span {
            trace_id,
            span_id: (n << 4 | (i as u64 + 2)).to_be_bytes(),
            parent_id: Some(root_id),
            name: (*name).to_owned(),
            kind: 1,
            start_ns: start,
            end_ns: start + step_ns / 2 + rng.below(step_ns / 2 + 1),
            status: SpanStatus {
                code: if failed && i == 4 {
                    StatusCode::Error
                } else {
                    StatusCode::Ok
                },
                message: String::new(),
            },
            attributes: vec![
                text("mlflow.spanType", format!("\"{kind}\"")),
                text(
                    "mlflow.spanInputs",
                    format!(
                        "{{\"query\": \"step {i} of trace {n}\", \"k\": {}}}",
                        rng.below(20)
                    ),
                ),
                text(
                    "mlflow.spanOutputs",
                    format!("{{\"tokens\": {}}}", rng.below(4000)),
                ),
                text("llm.model", format!("model-{}", rng.below(4))),
            ],
            ..Span::default()
        });
    }
    spans
}

/// One OTLP request body: `TRACES_PER_REQUEST` traces from trace `first`.
fn request(first: u64, rng: &mut Rng) -> Vec<u8> {
    let spans = (first..first + TRACES_PER_REQUEST as u64)
        .flat_map(|n| agent_trace(n, 1_795_000_000_000_000_000 + n * 250_000_000, rng))
        .collect();
    otlp::encode(&[ResourceSpans {
        resource: vec![
            text("service.name", "support-bot".into()),
            text(
                "env",
                if first.is_multiple_of(3) {
                    "prod"
                } else {
                    "staging"
                }
                .into(),
            ),
        ],
        spans,
    }])
}

fn run_id(i: u64) -> String {
    format!("{:032x}", 0x000a_11ce_0000_u64 + i % RUNS as u64)
}

/// The entries `cairn-core` appends for a decoded request: a span entry per span; per trace
/// the resource's attributes as tags and, once its root span is in, a link to the run.
fn entries(request: Vec<ResourceSpans>, at_ms: i64, run: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for rs in request {
        let tags: Vec<(String, String)> = rs
            .resource
            .iter()
            .map(|(k, v)| match v {
                Value::Str(s) => (k.clone(), s.clone()),
                other => (k.clone(), other.to_json().to_string()),
            })
            .collect();
        let mut traces = Vec::new();
        for span in rs.spans {
            if span.parent_id.is_none() {
                traces.push(span.trace());
            }
            out.push(Entry {
                at_ms,
                record: Record::Span {
                    experiment: EXPERIMENT.into(),
                    span,
                },
            });
        }
        for t in traces {
            out.push(Entry {
                at_ms,
                record: Record::Info {
                    trace: t.clone(),
                    fields: vec![],
                    metadata: vec![],
                    tags: tags.clone(),
                },
            });
            out.push(Entry {
                at_ms,
                record: Record::Link {
                    trace: t,
                    run: run.to_owned(),
                },
            });
        }
    }
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let total_spans: usize = std::env::var("TRACES_BENCH_SPANS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let requests = total_spans.div_ceil(SPANS_PER_TRACE * TRACES_PER_REQUEST);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("traces.db");
    let mut store = TraceStore::open(&path)?;
    let limits = Limits::default();

    // Ingest. Bodies are built outside the clock (the exporter's work, not the server's).
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut in_decode, mut in_append) = (Duration::ZERO, Duration::ZERO);
    let mut body_bytes = 0usize;
    let mut spans = 0usize;
    let mut first_100k: Option<(usize, Duration)> = None;
    for r in 0..requests {
        let first = (r * TRACES_PER_REQUEST) as u64;
        let body = request(first, &mut rng);
        body_bytes += body.len();
        let t = Instant::now();
        let decoded = otlp::decode_protobuf(&body, &limits)?;
        in_decode += t.elapsed();
        let n: usize = decoded.iter().map(|rs| rs.spans.len()).sum();
        let t = Instant::now();
        store.append(&entries(
            decoded,
            1_795_000_000_000 + r as i64,
            &run_id(r as u64),
        ))?;
        in_append += t.elapsed();
        spans += n;
        if first_100k.is_none() && spans >= 100_000 {
            first_100k = Some((spans, in_decode + in_append));
        }
    }
    let ingest = in_decode + in_append;
    let stats = store.storage_stats()?;
    drop(store);
    let file = std::fs::metadata(&path)?.len()
        + std::fs::metadata(dir.path().join("traces.db-wal")).map_or(0, |m| m.len());
    println!(
        "ingest: {spans} spans ({} traces) in {requests} OTLP requests of {} spans ({:.1} KB each)",
        stats.traces,
        SPANS_PER_TRACE * TRACES_PER_REQUEST,
        body_bytes as f64 / requests as f64 / 1e3
    );
    println!(
        "  decode + append: {:.1} s, {:.0} spans/s (decode {:.0} spans/s, append {:.0} spans/s)",
        ingest.as_secs_f64(),
        spans as f64 / ingest.as_secs_f64(),
        spans as f64 / in_decode.as_secs_f64(),
        spans as f64 / in_append.as_secs_f64()
    );
    if let Some((n, d)) = first_100k {
        println!(
            "  first {n} spans: {:.0} spans/s",
            n as f64 / d.as_secs_f64()
        );
    }
    println!(
        "  log: {} entries in chunks ({:.1} MB compressed from {:.1} MB), {} in the tail; file + WAL {:.1} MB ({:.0} B/span)",
        stats.chunk_entries,
        stats.chunk_bytes as f64 / 1e6,
        stats.raw_bytes as f64 / 1e6,
        stats.tail_entries,
        file as f64 / 1e6,
        file as f64 / spans as f64
    );

    // Search: a reopened store (what a server holds), MLflow's default page of 100.
    let store = TraceStore::open(&path)?;
    let traces = stats.traces;
    let search = |filter: Option<&str>| Search {
        experiments: vec![EXPERIMENT.into()],
        filter: filter.map(str::to_owned),
        limit: 100,
        ..Search::default()
    };
    let mid_ms = 1_795_000_000_000 + (traces as i64 / 2) * 250;
    let queries: Vec<(String, Search)> = vec![
        ("newest first".into(), search(None)),
        (
            "trace.status = 'ERROR'".into(),
            search(Some("trace.status = 'ERROR'")),
        ),
        (
            "tags.env = 'prod'".into(),
            search(Some("tags.env = 'prod'")),
        ),
        (
            "trace.execution_time_ms > 3900".into(),
            search(Some("trace.execution_time_ms > 3900")),
        ),
        (
            format!("trace.timestamp_ms > {mid_ms} AND trace.status = 'OK'"),
            search(Some(&format!(
                "trace.timestamp_ms > {mid_ms} AND trace.status = 'OK'"
            ))),
        ),
        (
            "trace.name = 'agent-7'".into(),
            search(Some("trace.name = 'agent-7'")),
        ),
        (
            "span.name = 'search_tool'".into(),
            search(Some("span.name = 'search_tool'")),
        ),
        (
            "span.type = 'RERANKER'".into(),
            search(Some("span.type = 'RERANKER'")),
        ),
        (
            "a run's traces (the run page)".into(),
            Search {
                run: Some(run_id(7)),
                limit: 100,
                ..Search::default()
            },
        ),
        (
            "text 'case 1234?' (one trace)".into(),
            Search {
                experiments: vec![EXPERIMENT.into()],
                text: Some("case 1234?".into()),
                limit: 100,
                ..Search::default()
            },
        ),
        (
            "trace.text LIKE '%topic-42 %'".into(),
            search(Some("trace.text LIKE '%topic-42 %'")),
        ),
    ];
    println!("search over {spans} spans, {traces} traces, first page of 100, {REPEATS} repeats:");
    println!("| query | found (page) | p50 | p95 |");
    println!("|---|---|---|---|");
    let mut all = Vec::new();
    for (name, q) in &queries {
        let mut times = Vec::with_capacity(REPEATS);
        let mut found = 0;
        let mut more = false;
        for _ in 0..REPEATS {
            let t = Instant::now();
            let (page, next) = store.search(q)?;
            times.push(t.elapsed());
            found = page.len();
            more = next.is_some();
        }
        assert!(found > 0, "{name} found nothing: the data holds matches");
        times.sort();
        all.extend(times.iter().copied());
        println!(
            "| `{name}` | {found}{} | {} | {} |",
            if more { "+" } else { "" },
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95))
        );
    }
    all.sort();
    println!(
        "| the mix ({} searches) | | {} | {} |",
        all.len(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.95))
    );
    // A trace's spans read back from the log (the span tree of the run page).
    let (page, _) = store.search(&search(None))?;
    let mut times = Vec::new();
    for info in page.iter().take(REPEATS) {
        let t = Instant::now();
        let spans = store.spans(&info.trace_id)?;
        times.push(t.elapsed());
        assert_eq!(spans.len(), SPANS_PER_TRACE);
    }
    times.sort();
    println!(
        "a trace's 10 spans from the log: p50 {}, p95 {}",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.95))
    );
    Ok(())
}
