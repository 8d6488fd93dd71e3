"""MLflow's GraphQL endpoint as MLflow's own web UI queries it (`/graphql`), beside a real
`mlflow server` in the same session: the UI's documents (copied from MLflow 3.17's built web
UI), NaN and infinite metric values, errors of a resolver and of validation, MLflow's limits
on depth, root fields and aliases, and what Cairn refuses (batches, syntax errors, non-JSON
posts, mutations by GET) in a clear GraphQL error."""

import json
import math
import uuid

import mlflow
import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag

from reference import Http, normalise

# The documents MLflow 3.17's web UI sends (its built JavaScript, verbatim).
GET_RUN = """
  query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetRun(input: $data) {
      apiError {
        helpUrl
        code
        message
      }
      run {
        info {
          runName
          status
          runUuid
          experimentId
          artifactUri
          endTime
          lifecycleStage
          startTime
          userId
        }
        experiment {
          experimentId
          name
          tags {
            key
            value
          }
          artifactLocation
          lifecycleStage
          lastUpdateTime
        }
        modelVersions {
          status
          version
          name
          source
        }
        data {
          metrics {
            key
            value
            step
            timestamp
          }
          params {
            key
            value
          }
          tags {
            key
            value
          }
        }
        inputs {
          datasetInputs {
            dataset {
              digest
              name
              profile
              schema
              source
              sourceType
            }
            tags {
              key
              value
            }
          }
          modelInputs {
            modelId
          }
        }
        outputs {
          modelOutputs {
            modelId
            step
          }
        }
      }
    }
  }
"""

SEARCH_RUNS = """
  query SearchRuns($data: MlflowSearchRunsInput!) {
    mlflowSearchRuns(input: $data) {
      apiError {
        helpUrl
        code
        message
      }
      runs {
        info {
          runName
          status
          runUuid
          experimentId
          artifactUri
          endTime
          lifecycleStage
          startTime
          userId
        }
        experiment {
          experimentId
          name
          tags {
            key
            value
          }
          artifactLocation
          lifecycleStage
          lastUpdateTime
        }
        data {
          metrics {
            key
            value
            step
            timestamp
          }
          params {
            key
            value
          }
          tags {
            key
            value
          }
        }
        inputs {
          datasetInputs {
            dataset {
              digest
              name
              profile
              schema
              source
              sourceType
            }
            tags {
              key
              value
            }
          }
          modelInputs {
            modelId
          }
        }
        outputs {
          modelOutputs {
            modelId
            step
          }
        }
        modelVersions {
          version
          name
          creationTimestamp
          status
          source
        }
      }
    }
  }
"""

GET_EXPERIMENT = """
  query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetExperiment(input: $input) {
      apiError {
        code
        message
      }
      experiment {
        artifactLocation
        creationTime
        effectiveTraceArchivalRetention
        experimentId
        lastUpdateTime
        lifecycleStage
        name
        tags {
          key
          value
        }
      }
    }
  }
"""

BULK_INTERVAL = """
  query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!)
  @component(name: "MLflow.ExperimentRunTracking") {
    mlflowGetMetricHistoryBulkInterval(input: $data) {
      __typename
      metrics {
        timestamp
        step
        runId
        key
        value
      }
      apiError {
        code
        message
      }
    }
  }
"""

LIST_ARTIFACTS = """
  query ListArtifacts($data: MlflowListArtifactsInput!) {
    mlflowListArtifacts(input: $data) { rootUri files { path isDir fileSize } nextPageToken }
  }
"""

SEARCH_DATASETS = """
  mutation SearchDatasets($data: MlflowSearchDatasetsInput!) {
    mlflowSearchDatasets(input: $data) {
      datasetSummaries { experimentId name digest context }
      apiError { code message }
    }
  }
"""

# Ids, clocks and where artifacts live differ between the two servers.
IGNORED = {"experimentId", "runUuid", "runId", "runName", "startTime", "endTime",
           "creationTime", "lastUpdateTime", "artifactUri", "artifactLocation", "rootUri",
           "timestamp", "creationTimestamp", "userId", "name", "effectiveTraceArchivalRetention"}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _gql(http, query, variables=None, path="/graphql"):
    body = {"query": query}
    if variables is not None:
        body["variables"] = variables
    return http.call("POST", path, raw=json.dumps(body).encode())


def _populate(client):
    """One experiment with a run holding params, tags, metrics (NaN and infinity among
    them), a dataset input and an artifact; answers (experiment id, run id)."""
    exp = client.create_experiment(_unique("gql"), tags={"team": "ml"})
    run = client.create_run(exp, tags={"k": "v"}).info.run_id
    client.log_param(run, "lr", "0.1")
    for step, v in enumerate([0.5, float("nan"), 0.25]):
        client.log_metric(run, "loss", v, step=step, timestamp=1000 + step)
    client.log_metric(run, "nanlast", float("nan"), step=0, timestamp=1000)
    client.log_metric(run, "inf", float("inf"), step=0, timestamp=1000)
    client.log_inputs(run, datasets=[DatasetInput(
        Dataset(name="train", digest="d1", source_type="code", source="s"),
        tags=[InputTag("mlflow.data.context", "training")])])
    client.log_text(run, "hello", "notes/readme.txt")
    client.set_terminated(run)
    return exp, run


@pytest.fixture(scope="module")
def pair(cairn, mlflow_server):
    """Both servers, each with the same experiment and run: [(http, exp, run)]."""
    out = []
    for uri in (cairn.uri, mlflow_server.uri):
        exp, run = _populate(mlflow.MlflowClient(uri))
        out.append((Http(uri), exp, run))
    return out


def _both(pair, build):
    """Each server's answer to the request `build(exp, run)` gives, normalised."""
    got = []
    for http, exp, run in pair:
        query, variables = build(exp, run)
        status, body = _gql(http, query, variables)
        got.append((status, normalise(body, IGNORED)))
    return got


def _sorted_metrics(body, *path):
    node = body
    for p in path:
        node = node[p]
    node.sort(key=lambda m: (m["key"], m.get("step") or ""))
    return body


@pytest.mark.parametrize("name,build,sort", [
    ("experiment", lambda e, r: (GET_EXPERIMENT, {"input": {"experimentId": e}}), None),
    ("run", lambda e, r: (GET_RUN, {"data": {"runId": r}}),
     ("data", "mlflowGetRun", "run", "data", "metrics")),
    ("search runs", lambda e, r: (SEARCH_RUNS, {"data": {"experimentIds": [e]}}), None),
    ("bulk interval", lambda e, r: (BULK_INTERVAL, {"data": {"runIds": [r], "metricKey": "loss",
                                                             "maxResults": 10}}), None),
    ("bulk interval of infinity", lambda e, r: (BULK_INTERVAL, {"data": {
        "runIds": [r], "metricKey": "inf"}}), None),
    ("list artifacts", lambda e, r: (LIST_ARTIFACTS, {"data": {"runId": r}}), None),
    ("list artifacts under a path", lambda e, r: (LIST_ARTIFACTS, {"data": {
        "runId": r, "path": "notes"}}), None),
    ("search datasets", lambda e, r: (SEARCH_DATASETS, {"data": {"experimentIds": [e]}}), None),
    ("inline arguments", lambda e, r: (
        '{ mlflowGetExperiment(input: {experimentId: "%s"}) { experiment { lifecycleStage '
        'tags { key value } } } t: test(inputString: "echo") { output } }' % e, None), None),
])
def test_the_web_uis_queries_answer_as_mlflows(pair, name, build, sort):
    ours, theirs = _both(pair, build)
    if sort and ours[0] == 200:
        ours = (ours[0], _sorted_metrics(ours[1], *sort))
        theirs = (theirs[0], _sorted_metrics(theirs[1], *sort))
    if name == "search runs":
        for body in (ours[1], theirs[1]):
            for run in body["data"]["mlflowSearchRuns"]["runs"]:
                run["data"]["metrics"].sort(key=lambda m: m["key"])
    assert ours == theirs, f"{name}:\n  cairn:  {ours}\n  mlflow: {theirs}"


def test_nan_metric_values_read_as_mlflows(pair):
    got = []
    for http, exp, run in pair:
        _, run_body = _gql(http, GET_RUN, {"data": {"runId": run}})
        metrics = {m["key"]: m["value"] for m in
                   run_body["data"]["mlflowGetRun"]["run"]["data"]["metrics"]}
        _, bulk = _gql(http, BULK_INTERVAL, {"data": {"runIds": [run], "metricKey": "loss"}})
        got.append((metrics, run_body["errors"],
                    [m["value"] for m in bulk["data"]["mlflowGetMetricHistoryBulkInterval"]
                     ["metrics"]], bulk["errors"]))
    ours, theirs = got
    assert ours == theirs
    metrics, run_errors, values, bulk_errors = ours
    # A run's NaN metric is null without an error; a series' NaN point is null with one;
    # infinity comes back as the largest double, as MLflow's store gives it back.
    assert metrics["nanlast"] is None and run_errors is None
    assert metrics["inf"] == 1.7976931348623157e308
    assert values[1] is None and values[0] == 0.5
    assert bulk_errors == ["Float cannot represent non numeric value: nan"]


@pytest.mark.parametrize("query,variables", [
    ('{ mlflowGetExperiment(input: {experimentId: "987654321"}) { experiment { name } } }', None),
    ('{ mlflowGetRun(input: {runId: "0123456789abcdef0123456789abcdef"}) { run { info '
     '{ status } } } }', None),
    ("{ nope }", None),
    ('{ mlflowGetRun(input: {runId: "x"}) { run { info { bogus } } } }', None),
    ('{ mlflowGetRun(input: {runId: "x"}) { run } }', None),
    ("{ %s }" % " ".join('t%d: test(inputString: "x") { output }' % i for i in range(11)), None),
    ("{ %s }" % " ".join('test(inputString: "x") { output }' for _ in range(11)), None),
    ("{ test(inputString: \"x\") { output %s } }" % "", None),
    ("{ a { b { c { d { e { f { g { h { i { j { k } } } } } } } } } } }", None),
    ("query Q($d: MlflowGetRunInput!) { mlflowGetRun(input: $d) { run { info { status } } } }",
     {}),
])
def test_errors_read_as_mlflows(pair, query, variables):
    got = []
    for http, exp, run in pair:
        status, body = _gql(http, query, variables)
        got.append((status, body))
    ours, theirs = got
    assert ours[0] == theirs[0] == 200, (ours, theirs)
    assert ours[1]["data"] == theirs[1]["data"], (ours, theirs)
    assert (ours[1]["errors"] is None) == (theirs[1]["errors"] is None), (ours, theirs)
    if theirs[1]["errors"] and "Variable" not in theirs[1]["errors"][0]:
        assert ours[1]["errors"] == theirs[1]["errors"]


def test_what_mlflow_fails_on_is_refused_clearly(cairn):
    http = Http(cairn.uri)
    one = {"query": '{ test(inputString: "x") { output } }'}
    for raw, says in [
        (json.dumps([one, one]).encode(), "batched GraphQL requests are not served"),
        (b'{"query": "{ test(inputString: \\"x\\") { output } "}', "Syntax Error"),
        (b'{"query": "fragment F on Query { test { output } }"}', "fragments are not supported"),
        (b"not json", "not JSON"),
        (b"{}", "no 'query'"),
    ]:
        status, body = http.call("POST", "/graphql", raw=raw)
        assert status == 400, (raw, status, body)
        assert body["data"] is None and says in body["errors"][0], (raw, body)


def test_the_ajax_alias_and_get_answer_queries_and_change_nothing(cairn, pair):
    http, exp, run = pair[0]
    status, body = _gql(http, GET_EXPERIMENT, {"input": {"experimentId": exp}},
                        path="/ajax-api/graphql")
    assert status == 200 and body["data"]["mlflowGetExperiment"]["experiment"]["experimentId"] == exp
    q = '{ mlflowGetRun(input: {runId: "%s"}) { run { info { status } } } }' % run
    from urllib.parse import quote
    status, body = http.get("/graphql?query=" + quote(q))
    assert (status, body) == (200, {"data": {"mlflowGetRun": {"run": {"info": {
        "status": "FINISHED"}}}}, "errors": None})
    # A mutation is POSTed; a GET of one is refused.
    m = quote('mutation { mlflowSearchDatasets(input: {experimentIds: ["%s"]}) '
              '{ datasetSummaries { name } } }' % exp)
    status, body = http.get("/graphql?query=" + m)
    assert status == 400 and "POST" in body["errors"][0]


def test_a_post_must_be_json(cairn):
    # A web page can post text/plain or a form without a preflight: refused before reading.
    http = Http(cairn.uri)
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        status, body = http.call("POST", "/graphql", raw=b'{"query": "{ test { output } }"}',
                                 content_type=content_type)
        assert status == 415, (content_type, status, body)
    status, _ = http.call("POST", "/graphql", raw=b'{"query": "{ test { output } }"}',
                          headers={"Origin": "http://evil.example"})
    assert status == 403


def test_ajax_aliases_keep_their_endpoints_path_parameters(cairn):
    """Endpoints with path parameters answer the same under `/ajax-api/` (the alias's own route
    parameter once reached such handlers beside theirs: a 500)."""
    mlflow.set_tracking_uri(cairn.uri)
    mlflow.set_experiment(_unique("alias"))
    with mlflow.start_span("root") as span:
        span.set_inputs({"q": 1})
    mlflow.flush_trace_async_logging()
    http = Http(cairn.uri)
    for path in [f"/3.0/mlflow/traces/{span.trace_id}",
                 "/3.0/mlflow/datasets/d-00000000000000000000000000000000/experiment-ids"]:
        direct = http.get("/api" + path)
        alias = http.get("/ajax-api" + path)
        assert direct[0] == 200, (path, direct)
        assert alias == direct, path
