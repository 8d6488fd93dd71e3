"""Every refusal reads as MLflow's: the same request, sent by raw HTTP to `cairn serve` and to a
real `mlflow server` in the same session, gets the same status, error code and message."""

import pytest

from reference import Http

# (method, path, body): refusals that name no id of the server's own.
REFUSALS = [
    ("POST", "/api/2.0/mlflow/runs/log-parameter", {"run_id": 31, "key": "k", "value": "v"}),
    ("POST", "/api/2.0/mlflow/runs/log-parameter", {"run_id": "r", "key": 7, "value": "1"}),
    ("POST", "/api/2.0/mlflow/runs/log-parameter", {"key": "k", "value": "1"}),
    ("POST", "/api/2.0/mlflow/runs/set-tag", {"run_id": ["r"], "key": "k", "value": "v"}),
    ("POST", "/api/2.0/mlflow/runs/delete-tag", {"run_id": 31, "key": "x"}),
    ("POST", "/api/2.0/mlflow/runs/log-metric",
     {"run_id": "r", "key": "k", "value": "fast", "timestamp": 1}),
    ("POST", "/api/2.0/mlflow/runs/log-metric",
     {"run_id": "r", "key": "k", "value": 1.5, "timestamp": "\u00e9"}),
    ("POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": "r", "metrics": "foo"}),
    ("POST", "/api/2.0/mlflow/runs/log-batch", {"run_id": "r", "params": {"a": "b"}}),
    ("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": 0}),
    ("POST", "/api/2.0/mlflow/runs/update", {"run_id": 31}),
    ("POST", "/api/2.0/mlflow/runs/search", {"max_results": "abc"}),
    ("POST", "/api/2.0/mlflow/runs/search", {"max_results": 0}),
    ("POST", "/api/2.0/mlflow/runs/search", {"max_results": -1}),
    ("POST", "/api/2.0/mlflow/runs/search", {"max_results": 50001}),
    ("POST", "/api/2.0/mlflow/experiments/create", {"name": 123}),
    ("POST", "/api/2.0/mlflow/experiments/create", {"name": "x", "tags": "x"}),
    ("POST", "/api/2.0/mlflow/experiments/create", {"name": {"b": 1, "a": [1.0, 1e20, None, True]}}),
    ("POST", "/api/2.0/mlflow/experiments/create", {}),
    ("POST", "/api/2.0/mlflow/experiments/search", {"max_results": -5}),
    ("POST", "/api/2.0/mlflow/experiments/search", {"max_results": 50001}),
    ("GET", "/api/2.0/mlflow/experiments/search?max_results=abc", None),
    ("GET", "/api/2.0/mlflow/experiments/search?max_results=0", None),
    ("GET", "/api/2.0/mlflow/metrics/get-history?run_id=x&metric_key=m&max_results=0", None),
    ("GET", "/api/2.0/mlflow/metrics/get-history?metric_key=m", None),
    ("GET", "/api/2.0/mlflow/runs/get?run_id=31", None),
    ("POST", "/api/2.0/mlflow/runs/delete-tag", {"run_id": "31", "key": "x"}),
    ("POST", "/api/2.0/mlflow/model-versions/create", {"name": "m", "source": "/tmp/model"}),
    ("POST", "/api/2.0/mlflow/model-versions/create", {"name": "m", "source": "relative/model"}),
]


@pytest.mark.parametrize("method,path,body", REFUSALS, ids=[f"{m} {p} {b}" for m, p, b in REFUSALS])
def test_a_refusal_reads_as_mlflows(cairn, mlflow_server, method, path, body):
    ours = Http(cairn.uri).call(method, path, body)
    theirs = mlflow_server.http.call(method, path, body)
    assert theirs[0] >= 400, f"MLflow accepted it: {theirs}"
    assert ours[0] == theirs[0], f"status: cairn {ours}, mlflow {theirs}"
    assert isinstance(ours[1], dict), ours
    assert ours[1]["error_code"] == theirs[1]["error_code"], (ours, theirs)
    assert ours[1]["message"] == theirs[1]["message"]


def test_a_missing_tag_reads_as_mlflows(cairn, mlflow_server):
    for http in (Http(cairn.uri), mlflow_server.http):
        status, created = http.post("/api/2.0/mlflow/runs/create", {"experiment_id": "0"})
        assert status == 200, created
        rid = created["run"]["info"]["run_id"]
        status, body = http.post("/api/2.0/mlflow/runs/delete-tag", {"run_id": rid, "key": "nope"})
        assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST"), body
        assert body["message"] == f"No tag with name: nope in run with id {rid}"


def test_the_client_sees_mlflows_words(cairn, client):
    """Through the MLflow client itself: its exception carries the same message."""
    from mlflow.exceptions import MlflowException

    run = client.create_run("0")
    with pytest.raises(MlflowException) as err:
        client.delete_tag(run.info.run_id, "never-set")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert f"No tag with name: never-set in run with id {run.info.run_id}" in str(err.value)
    with pytest.raises(MlflowException) as err:
        client.search_experiments(max_results=0)
    assert "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer" \
        in str(err.value)
