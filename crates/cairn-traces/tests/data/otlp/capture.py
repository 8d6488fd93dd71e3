"""Captures what real exporters send to `/v1/traces`, as fixtures for the OTLP decoder's tests
and seeds for its fuzz target. Run from the repository root with the project's venv:

    .venv/bin/python crates/cairn-traces/tests/data/otlp/capture.py http://127.0.0.1:PORT

(a `cairn serve` at PORT). Writes, next to this file:
- `mlflow-client.pb`: the body MLflow 3.17's client posts for a traced function with a child span
  (captured from its HTTP call);
- `otel-sdk.pb`: the body `opentelemetry-exporter-otlp-proto-http` sends for an OpenTelemetry SDK
  trace (an error span with an exception event, a link, typed attributes);
- `otel-sdk.json`: the same request as OTLP/JSON (hex ids, camelCase), as collectors send it.
"""

import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_TRACE_LOGGING", "false")

import mlflow  # noqa: E402
import mlflow.store.tracking.rest_store as rest_store  # noqa: E402
from google.protobuf.json_format import MessageToDict  # noqa: E402
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402
from opentelemetry.trace import Link, Status, StatusCode  # noqa: E402

HERE = Path(__file__).resolve().parent


def mlflow_client(uri: str) -> bytes:
    bodies = []
    real = rest_store.http_request

    def spy(host_creds, endpoint, method, *args, **kwargs):
        if endpoint == "/v1/traces":
            bodies.append(kwargs["data"])
        return real(host_creds, endpoint, method, *args, **kwargs)

    rest_store.http_request = spy
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("otlp-capture")

    @mlflow.trace(span_type="CHAIN")
    def answer(question: str) -> str:
        with mlflow.start_span("retrieve", span_type="RETRIEVER") as s:
            s.set_inputs({"query": question, "k": 3})
            s.set_outputs([{"doc": "a"}, {"doc": "b"}])
            s.set_attribute("score", 0.75)
        return "forty-two"

    answer("what is the answer?")
    rest_store.http_request = real
    assert bodies, "the MLflow client sent no /v1/traces request"
    return max(bodies, key=len)


class Keep(SpanExporter):
    def __init__(self):
        self.spans = []

    def export(self, spans):
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def otel_sdk() -> bytes:
    keep = Keep()
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout", "deployment.environment": "test"}))
    provider.add_span_processor(SimpleSpanProcessor(keep))
    tracer = provider.get_tracer("capture", "1.0")
    with tracer.start_as_current_span("handle-request") as root:
        root.set_attribute("http.method", "POST")
        root.set_attribute("http.status_code", 500)
        root.set_attribute("retry.delays", [0.1, 0.2, 0.4])
        root.set_attribute("flags", [True, False])
        with tracer.start_as_current_span("db-query", links=[Link(root.get_span_context())]) as child:
            child.set_attribute("db.statement", "SELECT 1")
            try:
                raise ValueError("connection reset")
            except ValueError as e:
                child.record_exception(e)
                child.set_status(Status(StatusCode.ERROR, "connection reset"))
        root.set_status(Status(StatusCode.ERROR))
    provider.shutdown()
    return encode_spans(keep.spans)


def scrub(req):
    """Exception stack traces name this file by its absolute path: keep it repository-relative,
    so a fixture does not name the machine it was captured on."""
    root = str(HERE.parents[4]) + "/"
    for rs in req.resource_spans:
        for ss in rs.scope_spans:
            for sp in ss.spans:
                for ev in sp.events:
                    for kv in ev.attributes:
                        if kv.value.HasField("string_value"):
                            kv.value.string_value = kv.value.string_value.replace(root, "")
    return req


def write_otel(req):
    (HERE / "otel-sdk.pb").write_bytes(req.SerializeToString())
    doc = MessageToDict(req)
    # OTLP/JSON writes trace and span ids in hex, where protobuf's JSON mapping uses base64.
    import base64
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for sp in ss.get("spans", []):
                for k in ("traceId", "spanId", "parentSpanId"):
                    if k in sp:
                        sp[k] = base64.b64decode(sp[k]).hex()
                for link in sp.get("links", []):
                    for k in ("traceId", "spanId"):
                        link[k] = base64.b64decode(link[k]).hex()
    (HERE / "otel-sdk.json").write_text(json.dumps(doc, indent=1) + "\n")


def main():
    uri = sys.argv[1]
    (HERE / "mlflow-client.pb").write_bytes(mlflow_client(uri))
    write_otel(scrub(otel_sdk()))


if __name__ == "__main__":
    main()
