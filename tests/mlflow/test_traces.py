"""MLflow 3 tracing against Cairn, side by side with a real `mlflow server`.

The same workloads run against both servers in one session — `@mlflow.trace` and
`mlflow.start_span` through the MLflow client (which sends spans to `/v1/traces` over OTLP and the
trace's info to `/api/3.0/mlflow/traces`), and OpenTelemetry's own OTLP exporter — and what comes
back through the client is compared field by field: states, previews, metadata, tags, spans
(names, tree, types, inputs, outputs, attributes, statuses, events), search results for MLflow's
filter grammar, deletions, assessments, trace metrics, and the error codes of refusals. Ids and
times differ between the servers and are compared by shape only.

The reference server is the session's `mlflow server` (reference.py): MLflow 3.17 from the venv
with a SQLite backend in a temporary directory, on a free loopback port.
"""

import os

# Traces are exported synchronously, so a test reads back what it just traced. Before any trace
# is exported: the exporter reads this when it is created.
os.environ["MLFLOW_ENABLE_ASYNC_TRACE_LOGGING"] = "false"

import contextlib  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import mlflow  # noqa: E402
import pytest  # noqa: E402
import requests  # noqa: E402
from mlflow.entities import AssessmentSource, Feedback  # noqa: E402
from mlflow.entities.trace_metrics import AggregationType, MetricAggregation, MetricViewType  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402

from conftest import _reset_client_state  # noqa: E402

# Metadata and tags that are each server's own bookkeeping, not what the client sent.
SERVER_METADATA = {"mlflow.trace.infoFinalized"}
SERVER_TAGS = {"mlflow.artifactLocation"}
# Computed by the client from the serialized spans, whose ids and times differ per server.
SIZE_METADATA = {"mlflow.trace.sizeBytes", "mlflow.trace.sizeStats"}


@contextlib.contextmanager
def using(uri: str):
    """Points the client at `uri` for the block, then back at what it was."""
    before = mlflow.get_tracking_uri()
    _reset_client_state()
    mlflow.set_tracking_uri(uri)
    try:
        yield mlflow.MlflowClient(tracking_uri=uri)
    finally:
        _reset_client_state()
        mlflow.set_tracking_uri(before)


@pytest.fixture
def servers(cairn, mlflow_server):
    return {"cairn": cairn.uri, "mlflow": mlflow_server.uri}


def both(servers, test_name, fn):
    """Runs `fn(client, experiment_id)` against each server in a fresh experiment."""
    out = {}
    for name, uri in servers.items():
        with using(uri) as client:
            exp = mlflow.set_experiment(f"{test_name}-{time.monotonic_ns()}").experiment_id
            out[name] = fn(client, exp)
    return out


# ---- workloads -----------------------------------------------------------------------------

@mlflow.trace(span_type="CHAIN")
def pipeline(question: str) -> str:
    with mlflow.start_span("retrieve", span_type="RETRIEVER") as s:
        s.set_inputs({"query": question, "k": 2})
        s.set_outputs([{"doc": "a", "score": 0.75}, {"doc": "b", "score": 0.5}])
        s.set_attribute("index", "faq")
    with mlflow.start_span("generate", span_type="LLM") as s:
        s.set_inputs({"messages": [{"role": "user", "content": question}]})
        s.set_outputs({"choices": [{"message": {"role": "assistant", "content": "forty-two"}}]})
        s.set_attributes({"temperature": 0.2, "max_tokens": 64, "stream": False})
    return "forty-two"


@mlflow.trace(name="broken", span_type="TOOL")
def broken(x: int) -> int:
    raise ValueError(f"cannot handle {x}")


def last_trace_id() -> str:
    tid = mlflow.get_last_active_trace_id()
    assert tid, "no trace was recorded"
    return tid


# ---- comparing traces ----------------------------------------------------------------------

def canon_info(info, run_id=None) -> dict:
    metadata = {
        k: ("<run>" if k == "mlflow.sourceRun" and v == run_id else v)
        for k, v in info.trace_metadata.items()
        if k not in SERVER_METADATA | SIZE_METADATA
    }
    return {
        "state": str(info.state),
        "request_preview": info.request_preview,
        "response_preview": info.response_preview,
        "client_request_id": info.client_request_id,
        "metadata": metadata,
        "tags": {k: v for k, v in info.tags.items() if k not in SERVER_TAGS},
    }


def canon_spans(trace) -> list:
    spans = sorted(trace.data.spans, key=lambda s: s.start_time_ns)
    by_id = {s.span_id: s.name for s in spans}
    return [
        {
            "name": s.name,
            "parent": by_id.get(s.parent_id),
            "type": s.span_type,
            "inputs": s.inputs,
            "outputs": s.outputs,
            "attributes": {
                k: v for k, v in s.attributes.items() if k != "mlflow.traceRequestId"
            },
            "status": (getattr(s.status.status_code, "value", s.status.status_code), s.status.description),
            "events": [(e.name, sorted(e.attributes)) for e in s.events],
            "has_end": s.end_time_ns is not None,
        }
        for s in spans
    ]


def check_times(trace):
    """The info's times are the root span's, to the millisecond."""
    root = next(s for s in trace.data.spans if s.parent_id is None)
    assert abs(trace.info.request_time - root.start_time_ns // 1_000_000) <= 1
    assert abs(trace.info.execution_duration - (root.end_time_ns - root.start_time_ns) // 1_000_000) <= 1


# ---- tests ---------------------------------------------------------------------------------

def test_a_traced_function_comes_back_as_mlflow_gives_it(servers, request):
    def work(client, exp):
        with mlflow.start_run() as run:
            assert pipeline("what is six times seven?") == "forty-two"
        trace = mlflow.get_trace(last_trace_id())
        check_times(trace)
        assert trace.info.tags.get("mlflow.trace.spansLocation") == "TRACKING_STORE"
        return canon_info(trace.info, run.info.run_id), canon_spans(trace)

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"]
    info, spans = got["cairn"]
    assert info["state"] == "OK" and info["metadata"]["mlflow.sourceRun"] == "<run>"
    assert [s["name"] for s in spans] == ["pipeline", "retrieve", "generate"]
    assert spans[1]["parent"] == "pipeline" and spans[2]["type"] == "LLM"


def test_an_error_is_recorded_with_its_exception(servers, request):
    def work(client, exp):
        with pytest.raises(ValueError):
            broken(7)
        trace = mlflow.get_trace(last_trace_id())
        return canon_info(trace.info), canon_spans(trace)

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"]
    info, spans = got["cairn"]
    assert info["state"] == "ERROR"
    assert spans[0]["status"][0] == "ERROR" and spans[0]["events"][0][0] == "exception"


def test_cairn_keeps_the_trace_in_its_store_and_shows_it_on_the_run(cairn, client, experiment):
    with mlflow.start_run() as run:
        pipeline("hello")
    tid = last_trace_id()
    # The UI's API: the run's traces, and the span tree with timings.
    page = requests.get(f"{cairn.uri}/api/v1/runs/{run.info.run_id}/traces", timeout=30).json()
    assert [t["trace_id"] for t in page["traces"]] == [tid]
    assert page["traces"][0]["span_count"] == 3
    view = requests.get(f"{cairn.uri}/api/v1/traces/{tid}", timeout=30).json()
    spans = {s["name"]: s for s in view["spans"]}
    assert spans["retrieve"]["parent_id"] == spans["pipeline"]["span_id"]
    assert spans["pipeline"]["offset_us"] == 0 and spans["pipeline"]["duration_us"] > 0
    assert json.loads(spans["retrieve"]["inputs"]) == {"query": "hello", "k": 2}
    assert spans["generate"]["span_type"] == "LLM"
    assert view["runs"] == [run.info.run_id]
    # Text search over span content.
    found = requests.get(
        f"{cairn.uri}/api/v1/runs/{run.info.run_id}/traces", params={"q": "assistant"}, timeout=30
    ).json()
    assert len(found["traces"]) == 1


def _search_workload(client, exp):
    """Five traces: names, tags, states and times to filter on. Returns the marker time."""
    for i in range(3):
        pipeline(f"question {i}")
        tid = last_trace_id()
        client.set_trace_tag(tid, "case", f"ok-{i}")
        client.set_trace_tag(tid, "team", "search" if i < 2 else "ranking")
        time.sleep(0.01)
    marker = int(time.time() * 1000)
    time.sleep(0.01)
    with pytest.raises(ValueError):
        broken(1)
    client.set_trace_tag(last_trace_id(), "case", "error")
    with mlflow.start_run() as run:
        pipeline("inside a run")
    client.set_trace_tag(last_trace_id(), "case", "in-run")
    return marker, run.info.run_id


FILTERS = [
    "trace.status = 'OK'",
    "trace.status = 'ERROR'",
    "attributes.status != 'OK'",
    "trace.name = 'pipeline'",
    "trace.name = 'broken'",
    "trace.status IN ('ERROR', 'IN_PROGRESS')",
    "trace.name LIKE 'pipe%'",
    "tags.team = 'search'",
    "tags.team != 'search'",
    "tags.team LIKE 'rank%'",
    "tags.`case` ILIKE 'OK-%'",
    "tags.team IS NULL",
    "tags.`case` = 'error' AND trace.status = 'ERROR'",
    "trace.timestamp_ms > {marker}",
    "trace.timestamp_ms <= {marker} AND tags.team = 'search'",
    "trace.execution_time_ms >= 0",
    "metadata.`mlflow.sourceRun` = '{run}'",
    "metadata.`mlflow.sourceRun` IS NULL",
    "trace.run_id = '{run}'",
    "span.name = 'retrieve'",
    "span.type = 'TOOL'",
    "trace.text LIKE '%inside a run%'",
    "span.content LIKE '%question 1%'",
]


def test_search_filters_select_what_mlflow_selects(servers, request):
    def work(client, exp):
        marker, run = _search_workload(client, exp)
        out = {}
        for f in FILTERS:
            found = client.search_traces(
                locations=[exp], filter_string=f.format(marker=marker, run=run), max_results=100
            )
            out[f] = sorted(t.info.tags.get("case", "?") for t in found)
        ordered = client.search_traces(
            locations=[exp], order_by=["timestamp_ms ASC"], max_results=100
        )
        out["order"] = [t.info.tags.get("case") for t in ordered]
        # Pages of two see every trace once.
        page = client.search_traces(locations=[exp], max_results=2, order_by=["timestamp_ms ASC"])
        seen = [t.info.tags.get("case") for t in page]
        while page.token:
            page = client.search_traces(
                locations=[exp], max_results=2, order_by=["timestamp_ms ASC"], page_token=page.token
            )
            seen += [t.info.tags.get("case") for t in page]
        out["pages"] = seen
        return out

    got = both(servers, request.node.name, work)
    for key in got["mlflow"]:
        assert got["cairn"][key] == got["mlflow"][key], key
    assert got["cairn"]["trace.status = 'ERROR'"] == ["error"]
    assert got["cairn"]["tags.team = 'search'"] == ["ok-0", "ok-1"]


BAD_FILTERS = [
    "trace.status == 'OK'",
    "trace.bogus = 'x'",
    "trace.name IN ('a')",
    "tags.t IN ('a')",
    "trace.text = 'x'",
    "trace.status = 'OK' OR trace.status = 'ERROR'",
]


def test_a_bad_filter_is_refused_as_mlflow_refuses_it(servers, request):
    def work(client, exp):
        codes = []
        for f in BAD_FILTERS:
            with pytest.raises(MlflowException) as err:
                client.search_traces(locations=[exp], filter_string=f)
            codes.append(err.value.error_code)
        return codes

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"] == ["INVALID_PARAMETER_VALUE"] * len(BAD_FILTERS)


def test_cairn_refuses_filters_mlflow_lets_through(cairn, client, experiment):
    # MLflow's server answers these with nothing found (a number compared with text) or runs a
    # regular expression Cairn does not have: Cairn says what is wrong instead.
    for f, why in [
        ("trace.timestamp_ms > 'x'", "compared with a number"),
        ("tags.x RLIKE 'a.*'", "RLIKE is not supported"),
    ]:
        with pytest.raises(MlflowException) as err:
            client.search_traces(locations=[experiment], filter_string=f)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE" and why in err.value.message


def test_tags_are_set_and_deleted(servers, request):
    def work(client, exp):
        pipeline("tags")
        tid = last_trace_id()
        client.set_trace_tag(tid, "stage", "dev")
        client.set_trace_tag(tid, "stage", "prod")
        client.set_trace_tag(tid, "scratch", "x")
        client.delete_trace_tag(tid, "scratch")
        with pytest.raises(MlflowException) as missing:
            client.delete_trace_tag(tid, "never-set")
        with pytest.raises(MlflowException) as unknown:
            client.delete_trace_tag("tr-" + "0" * 32, "k")
        tags = mlflow.get_trace(tid).info.tags
        return (
            {k: v for k, v in tags.items() if k not in SERVER_TAGS},
            missing.value.error_code,
            unknown.value.error_code,
        )

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"]
    tags, missing, unknown = got["cairn"]
    assert tags["stage"] == "prod" and "scratch" not in tags
    assert missing == unknown == "RESOURCE_DOES_NOT_EXIST"


def test_a_tag_on_an_unknown_trace_is_not_found(cairn, client):
    # MLflow's server answers BAD_REQUEST here, from its database's foreign key failing.
    with pytest.raises(MlflowException) as err:
        client.set_trace_tag("tr-" + "0" * 32, "k", "v")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert "Trace with ID 'tr-" in err.value.message


def test_deletions_by_id_and_by_age_and_count(servers, request):
    def work(client, exp):
        ids = []
        for i in range(5):
            pipeline(f"delete {i}")
            ids.append(last_trace_id())
            client.set_trace_tag(ids[-1], "case", str(i))
            time.sleep(0.01)
        by_id = client.delete_traces(exp, trace_ids=[ids[4]])
        cutoff = mlflow.get_trace(ids[2]).info.request_time
        by_age = client.delete_traces(exp, max_timestamp_millis=cutoff, max_traces=2)
        left = sorted(t.info.tags["case"] for t in client.search_traces(locations=[exp]))
        with pytest.raises(MlflowException) as err:
            client.delete_traces(exp)
        return by_id, by_age, left, err.value.error_code

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"]
    assert got["cairn"][:3] == (1, 2, ["2", "3"])


def _canon_assessment(a) -> dict:
    d = a.to_dictionary()
    for k in ("assessment_id", "trace_id", "create_time", "last_update_time", "overrides"):
        d.pop(k, None)
    return d


def test_assessments_as_mlflow_keeps_them(servers, request):
    def work(client, exp):
        pipeline("assess me")
        tid = last_trace_id()
        human = AssessmentSource(source_type="HUMAN", source_id="ann@example.com")
        fb = mlflow.log_feedback(trace_id=tid, name="correct", value=False, rationale="off by one",
                                 source=human, metadata={"round": "1"})
        ex = mlflow.log_expectation(trace_id=tid, name="answer", value={"text": "42", "n": 42},
                                    source=human)
        judge = mlflow.log_feedback(trace_id=tid, name="relevance", value=0.8,
                                    source=AssessmentSource(source_type="LLM_JUDGE", source_id="gpt"))
        # An override replaces the first feedback, which becomes invalid.
        over = mlflow.override_feedback(trace_id=tid, assessment_id=fb.assessment_id, value=True,
                                        rationale="rechecked", source=human)
        updated = mlflow.update_assessment(
            trace_id=tid, assessment_id=judge.assessment_id,
            assessment=Feedback(name="relevance", value=0.9, rationale="better"),
        )
        got = {
            "first": _canon_assessment(mlflow.get_assessment(tid, fb.assessment_id)),
            "override": _canon_assessment(mlflow.get_assessment(tid, over.assessment_id)),
            "overrides_first": mlflow.get_assessment(tid, over.assessment_id).overrides == fb.assessment_id,
            "expectation": _canon_assessment(mlflow.get_assessment(tid, ex.assessment_id)),
            "updated": _canon_assessment(updated),
        }
        mlflow.delete_assessment(tid, over.assessment_id)
        got["restored"] = mlflow.get_assessment(tid, fb.assessment_id).valid
        with pytest.raises(MlflowException) as err:
            mlflow.get_assessment(tid, over.assessment_id)
        got["missing"] = err.value.error_code
        got["on_trace"] = sorted(
            (a.name, a.valid) for a in mlflow.get_trace(tid).info.assessments
        )
        got["filter"] = len(client.search_traces(locations=[exp], filter_string="feedback.relevance > 0.5"))
        return got

    got = both(servers, request.node.name, work)
    for key in got["mlflow"]:
        assert got["cairn"][key] == got["mlflow"][key], key
    assert got["cairn"]["first"]["valid"] is False and got["cairn"]["restored"] is True


def test_links_to_runs(servers, request):
    def work(client, exp):
        pipeline("outside")
        tid = last_trace_id()
        run = client.create_run(exp)
        client.link_traces_to_run([tid], run.info.run_id)
        found = client.search_traces(locations=[exp], filter_string=f"trace.run_id = '{run.info.run_id}'")
        with pytest.raises(MlflowException) as err:
            client.link_traces_to_run([tid] * 101, run.info.run_id)
        return [t.info.trace_id == tid for t in found], err.value.error_code

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"] == ([True], "INVALID_PARAMETER_VALUE")


def test_an_opentelemetry_exporter_sends_spans_mlflow_reads_back(servers, request):
    def work(client, exp):
        uri = mlflow.get_tracking_uri()
        provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(
            endpoint=f"{uri}/v1/traces", headers={"x-mlflow-experiment-id": exp}, timeout=30,
        )))
        tracer = provider.get_tracer("shop", "1.0")
        with tracer.start_as_current_span("handle-order") as root:
            root.set_attribute("order.items", 3)
            root.set_attribute("order.total", 19.5)
            root.set_attribute("order.tags", ["gift", "express"])
            with tracer.start_as_current_span("charge-card") as child:
                child.set_attribute("payment.provider", "acme")
                try:
                    raise RuntimeError("card declined")
                except RuntimeError as e:
                    child.record_exception(e)
                    child.set_status(Status(StatusCode.ERROR, "card declined"))
        otel_id = root.get_span_context().trace_id
        provider.shutdown()
        tid = "tr-" + format(otel_id, "032x")
        trace = mlflow.get_trace(tid)
        check_times(trace)
        return canon_info(trace.info), canon_spans(trace)

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"]
    info, spans = got["cairn"]
    assert info["tags"]["service.name"] == "checkout"
    assert [s["name"] for s in spans] == ["handle-order", "charge-card"]
    assert spans[1]["status"] == ("ERROR", "card declined")


def test_otlp_refusals_name_what_was_wrong(cairn, experiment):
    url = f"{cairn.uri}/v1/traces"
    r = requests.post(url, data=b"\x0a\x03\x12\x01\x12",
                      headers={"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment},
                      timeout=30)
    assert r.status_code == 400 and "resource_spans[0]" in r.json()["message"]
    r = requests.post(url, data=b"{}", headers={"Content-Type": "text/plain", "x-mlflow-experiment-id": experiment},
                      timeout=30)
    assert r.status_code == 400 and "Content-Type" in r.json()["message"]
    r = requests.post(url, data=b"{}", headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 400 and "x-mlflow-experiment-id" in r.json()["message"]
    r = requests.post(url, data=b"x" * (17 << 20),
                      headers={"Content-Type": "application/x-protobuf", "x-mlflow-experiment-id": experiment},
                      timeout=60)
    assert r.status_code == 413


def test_trace_metrics_as_mlflow_computes_them(servers, request):
    from mlflow.tracking._tracking_service.utils import _get_store

    def work(client, exp):
        for i in range(3):
            pipeline(f"metrics {i}")
        with pytest.raises(ValueError):
            broken(2)
        store = _get_store()
        count = store.query_trace_metrics(
            experiment_ids=[exp], view_type=MetricViewType.TRACES, metric_name="trace_count",
            aggregations=[MetricAggregation(aggregation_type=AggregationType.COUNT)],
            dimensions=["trace_status"],
        )
        spans = store.query_trace_metrics(
            experiment_ids=[exp], view_type=MetricViewType.SPANS, metric_name="span_count",
            aggregations=[MetricAggregation(aggregation_type=AggregationType.COUNT)],
            dimensions=["span_type"],
        )
        latency = store.query_trace_metrics(
            experiment_ids=[exp], view_type=MetricViewType.TRACES, metric_name="latency",
            aggregations=[MetricAggregation(aggregation_type=AggregationType.MAX)],
        )
        with pytest.raises(MlflowException) as err:
            store.query_trace_metrics(
                experiment_ids=[exp], view_type=MetricViewType.TRACES, metric_name="latency",
                aggregations=[MetricAggregation(aggregation_type=AggregationType.COUNT)],
            )
        return (
            sorted((p.dimensions["trace_status"], p.values["COUNT"]) for p in count),
            sorted((p.dimensions["span_type"], p.values["COUNT"]) for p in spans),
            # Latencies differ run to run: the shape of the answer is compared.
            [(sorted(p.dimensions), sorted(p.values)) for p in latency],
            err.value.error_code,
        )

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"]
    assert got["cairn"][0] == [("ERROR", 1.0), ("OK", 3.0)]


def test_the_v2_api_starts_and_ends_a_trace(servers, request):
    from mlflow.entities.trace_status import TraceStatus
    from mlflow.tracking._tracking_service.utils import _get_store

    def work(client, exp):
        store = _get_store()
        started = store.deprecated_start_trace_v2(
            experiment_id=exp, timestamp_ms=1_700_000_000_000,
            request_metadata={"origin": "v2"}, tags={"mlflow.traceName": "legacy"},
        )
        ended = store.deprecated_end_trace_v2(
            request_id=started.request_id, timestamp_ms=1_700_000_000_250,
            status=TraceStatus.ERROR, request_metadata={"done": "yes"}, tags={"k": "v"},
        )
        info = store.get_trace_info(started.request_id)
        return (
            str(started.status), ended.execution_time_ms, str(ended.status),
            {k: v for k, v in ended.request_metadata.items() if k not in SERVER_METADATA},
            {k: v for k, v in ended.tags.items() if k not in SERVER_TAGS | {"mlflow.trace.spansLocation"}},
            info.request_time, str(info.state),
        )

    got = both(servers, request.node.name, work)
    assert got["cairn"] == got["mlflow"]
    assert got["cairn"][1] == 250


def test_features_left_out_say_so(cairn):
    for method, path in [
        ("POST", "/api/3.0/mlflow/traces/calculate-filter-correlation"),
        ("POST", "/api/2.0/mlflow/traces/link-prompts"),
        ("GET", "/api/2.0/mlflow/unified-traces"),
    ]:
        r = requests.request(method, f"{cairn.uri}{path}", json={}, timeout=30)
        assert r.status_code == 501, path
        body = r.json()
        assert body["error_code"] == "NOT_IMPLEMENTED" and "not implemented by Cairn" in body["message"]
