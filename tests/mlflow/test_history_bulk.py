"""The metric histories MLflow's web UI charts from, by raw HTTP beside a real `mlflow server`:
`metrics/get-history-bulk` (points of one metric over several runs, in MLflow's order, up to a
total) and `metrics/get-history-bulk-interval` (each run sampled as MLflow's SQL store samples
it: the first point of each NTILE bucket and the last), refusals word for word."""

import math
import uuid
from urllib.parse import urlencode

import mlflow
import pytest
from mlflow.entities import Metric

from reference import Http

T0 = 1_700_000_000_000


def _log(client, exp_id, series):
    """A run per series of (step, timestamp offset, value); the run ids."""
    ids = []
    for points in series:
        rid = client.create_run(exp_id).info.run_id
        client.log_batch(rid, metrics=[Metric("loss", v, T0 + t, s) for s, t, v in points])
        ids.append(rid)
    return ids


# Steps in order; out of order; repeated steps; a NaN; sparse steps.
SERIES = [
    [(s, s, 1.0 / (s + 1)) for s in range(0, 37)],
    [(s, 100 - s, float(s % 7)) for s in (5, 3, 9, 1, 7, 2, 8, 0, 6, 4)],
    [(s // 3, s, float(s)) for s in range(20)],
    [(0, 0, 1.0), (1, 1, math.nan), (2, 2, 3.0)],
    [(s * 10, s, float(s)) for s in range(12)],
]


@pytest.fixture(scope="module")
def runs(cairn, mlflow_server):
    """The same series logged to Cairn and to MLflow: (Http, run ids) for each."""
    out = []
    for uri, http in ((cairn.uri, Http(cairn.uri)), (mlflow_server.uri, mlflow_server.http)):
        client = mlflow.MlflowClient(uri)
        exp_id = client.create_experiment(f"bulk-{uuid.uuid4().hex[:8]}")
        out.append((http, _log(client, exp_id, SERIES)))
    return out


def _points(body, ids):
    """The answer's points with each run id replaced by the index of its series."""
    index = {rid: i for i, rid in enumerate(ids)}
    return [{**p, "run_id": index[p["run_id"]]} for p in body.get("metrics", [])]


def _both(runs, path, params):
    answers = []
    for http, ids in runs:
        query = [(k, ids[v] if k in ("run_id", "run_ids") and isinstance(v, int) else v)
                 for k, v in params]
        status, body = http.get(f"/ajax-api/2.0/mlflow/{path}?{urlencode(query)}")
        answers.append((status, _points(body, ids) if status == 200 else body))
    return answers


@pytest.mark.parametrize("params", [
    [("run_ids", 0), ("metric_key", "loss")],
    [("run_ids", 0), ("metric_key", "loss"), ("max_results", 5)],
    [("run_ids", 0), ("metric_key", "loss"), ("max_results", 1)],
    [("run_ids", 1), ("run_ids", 2), ("metric_key", "loss"), ("max_results", 4)],
    [("run_ids", 2), ("metric_key", "loss"), ("max_results", 3), ("start_step", 1),
     ("end_step", 4)],
    [("run_ids", 3), ("metric_key", "loss"), ("max_results", 2)],
    [("run_ids", 4), ("run_ids", 0), ("metric_key", "loss"), ("max_results", 6),
     ("start_step", 10), ("end_step", 70)],
    [("run_ids", 0), ("metric_key", "no-such-metric")],
])
def test_get_history_bulk_interval_samples_as_mlflow_does(runs, params):
    ours, theirs = _both(runs, "metrics/get-history-bulk-interval", params)
    assert ours == theirs


@pytest.mark.parametrize("params", [
    [("metric_key", "loss")],
    [("run_ids", 0)],
    [("run_ids", 0), ("metric_key", "loss"), ("max_results", 0)],
    [("run_ids", 0), ("metric_key", "loss"), ("max_results", 2501)],
    [("run_ids", 0), ("metric_key", "loss"), ("start_step", 3)],
    [("run_ids", 0), ("metric_key", "loss"), ("start_step", 5), ("end_step", 2)],
    [("run_ids", "x")] * 101 + [("metric_key", "loss")],
])
def test_get_history_bulk_interval_refusals_read_as_mlflows(runs, params):
    ours, theirs = _both(runs, "metrics/get-history-bulk-interval", params)
    assert theirs[0] == 400, theirs
    assert ours[0] == theirs[0], (ours, theirs)
    assert (ours[1]["error_code"], ours[1]["message"]) == \
        (theirs[1]["error_code"], theirs[1]["message"])


@pytest.mark.parametrize("params", [
    [("run_id", 0), ("run_id", 1), ("run_id", 3), ("metric_key", "loss")],
    [("run_id", 1), ("metric_key", "loss"), ("max_results", 7)],
    [("run_id", 3), ("metric_key", "loss")],
    [("run_id", 0), ("metric_key", "nothing")],
])
def test_get_history_bulk_answers_as_mlflow_does(runs, params):
    answers = _both(runs, "metrics/get-history-bulk", params)
    (s1, ours), (s2, theirs) = answers
    assert s1 == s2 == 200
    # MLflow orders by run id, which differ between the servers: compare each run's points.
    for i in {p["run_id"] for p in ours + theirs}:
        mine = [p for p in ours if p["run_id"] == i]
        other = [p for p in theirs if p["run_id"] == i]
        assert mine == other or _nan_equal(mine, other), (mine, other)
    assert len(ours) == len(theirs)


def _nan_equal(a, b):
    def norm(ps):
        return [{**p, "value": "NaN" if isinstance(p["value"], float) and math.isnan(p["value"])
                 else p["value"]} for p in ps]
    return norm(a) == norm(b)


@pytest.mark.parametrize("params", [
    [("metric_key", "loss")],
    [("run_id", 0)],
    [("run_id", "x")] * 101 + [("metric_key", "loss")],
])
def test_get_history_bulk_refusals_read_as_mlflows(runs, params):
    ours, theirs = _both(runs, "metrics/get-history-bulk", params)
    assert ours[0] == theirs[0] == 400, (ours, theirs)
    assert (ours[1]["error_code"], ours[1]["message"]) == \
        (theirs[1]["error_code"], theirs[1]["message"])
