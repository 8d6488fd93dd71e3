"""Experiments as MLflow 3's server keeps them: an artifact location given at creation is kept
and reported (a relative one resolved against the server's directory), the runs of such an
experiment get their artifact URI under it, tags can be deleted, and `search_experiments`
orders as MLflow's SQL store orders — each compared with a real `mlflow server`."""

import os
import re
import time
import uuid

import mlflow
import pytest
from mlflow.exceptions import MlflowException

from reference import Http


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


LOCATIONS = ["s3://bucket/models", "/data/store", "art/x", "file:art/y", "file:///data/w",
             "gs://bucket/p?x=1"]


def _expected(location: str, cwd: str) -> str:
    """MLflow's resolve_uri_if_local against `cwd`."""
    if location.startswith("file:") and not location.startswith("file:/"):
        return "file://" + os.path.join(cwd, location[len("file:"):])
    if "://" not in location and not location.startswith("/"):
        return os.path.join(cwd, location)
    return location


@pytest.mark.parametrize("location", LOCATIONS)
def test_an_artifact_location_is_kept_and_reported(cairn, client, mlflow_server, location):
    name = _unique("loc")
    exp_id = client.create_experiment(name, artifact_location=location)
    got = client.get_experiment(exp_id)
    assert got.artifact_location == _expected(location, os.getcwd())
    assert client.get_experiment_by_name(name).artifact_location == got.artifact_location
    run = client.create_run(exp_id)
    base, _, query = got.artifact_location.partition("?")
    want = f"{base.rstrip('/')}/{run.info.run_id}/artifacts" + (f"?{query}" if query else "")
    assert run.info.artifact_uri == want
    assert client.get_run(run.info.run_id).info.artifact_uri == want
    # The same on MLflow's own server (whose working directory is its temporary root).
    theirs = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    their_id = theirs.create_experiment(name, artifact_location=location)
    assert theirs.get_experiment(their_id).artifact_location == \
        _expected(location, str(mlflow_server.root))
    their_run = theirs.create_run(their_id)
    their_base = theirs.get_experiment(their_id).artifact_location.partition("?")[0]
    assert their_run.info.artifact_uri.startswith(f"{their_base.rstrip('/')}/{their_run.info.run_id}/artifacts")


def test_without_a_location_artifacts_go_through_the_proxy(client, mlflow_server):
    exp_id = client.create_experiment(_unique("proxied"))
    run = client.create_run(exp_id)
    assert client.get_experiment(exp_id).artifact_location == f"mlflow-artifacts:/{exp_id}"
    assert run.info.artifact_uri == f"mlflow-artifacts:/{exp_id}/{run.info.run_id}/artifacts"
    theirs = mlflow.MlflowClient(tracking_uri=mlflow_server.uri)
    their_id = theirs.create_experiment(_unique("proxied"))
    their_run = theirs.create_run(their_id)
    assert theirs.get_experiment(their_id).artifact_location == f"mlflow-artifacts:/{their_id}"
    assert their_run.info.artifact_uri == \
        f"mlflow-artifacts:/{their_id}/{their_run.info.run_id}/artifacts"


@pytest.mark.parametrize("location", ["runs:/abc/x", "s3://b/p#frag", "s3://b/p?a=../x",
                                      "http://example.com/p", "/" + "x" * 2048])
def test_a_bad_location_is_refused_as_mlflow_refuses_it(cairn, mlflow_server, location):
    body = {"name": _unique("bad"), "artifact_location": location}
    ours = Http(cairn.uri).post("/api/2.0/mlflow/experiments/create", body)
    theirs = mlflow_server.http.post("/api/2.0/mlflow/experiments/create", body)
    assert theirs[0] == 400, theirs
    assert ours[0] == theirs[0] and ours[1]["error_code"] == theirs[1]["error_code"], (ours, theirs)
    assert ours[1]["message"] == theirs[1]["message"]


def test_experiment_tags_can_be_deleted(cairn, client, mlflow_server):
    for http, mlflow_client in ((Http(cairn.uri), client),
                                (mlflow_server.http, mlflow.MlflowClient(mlflow_server.uri))):
        exp_id = mlflow_client.create_experiment(_unique("tagged"), tags={"a": "1", "b": "2"})
        mlflow_client.delete_experiment_tag(exp_id, "a")
        assert mlflow_client.get_experiment(exp_id).tags == {"b": "2"}
        with pytest.raises(MlflowException) as err:
            mlflow_client.delete_experiment_tag(exp_id, "a")
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
        assert f"No tag with name: a in experiment with id {exp_id}" in str(err.value)
        status, body = http.post("/api/2.0/mlflow/experiments/delete-experiment-tag",
                                 {"experiment_id": exp_id})
        assert status == 400 and body["message"] == (
            "Missing value for required parameter 'key'. See the API docs for more information "
            "about request parameters.")
        mlflow_client.delete_experiment(exp_id)
        for path, extra in (("delete-experiment-tag", {}), ("set-experiment-tag", {"value": "v"})):
            status, body = http.post(f"/api/2.0/mlflow/experiments/{path}",
                                     {"experiment_id": exp_id, "key": "b", **extra})
            assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), body
            assert body["message"] == (f"The experiment {exp_id} must be in the 'active' state. "
                                       "Current state is deleted.")


NAMES = ["beta", "Alpha", "alpha", "Zeta", "ärger", "_under", "10", "9"]


def _searched(c, prefix, order_by):
    found = c.search_experiments(filter_string=f"name LIKE '{prefix}%'", order_by=order_by,
                                 max_results=100)
    return [e.name[len(prefix):] for e in found]


@pytest.mark.parametrize("order_by", [None, ["name"], ["name DESC"], ["creation_time ASC"],
                                      ["attribute.last_update_time DESC"], ["experiment_id DESC"],
                                      ["name ASC", "creation_time DESC"]])
def test_search_experiments_orders_as_mlflow_does(cairn, client, mlflow_server, order_by):
    theirs = mlflow.MlflowClient(mlflow_server.uri)
    results = []
    for c in (client, theirs):
        prefix = _unique("order") + "-"
        for n in NAMES:
            c.create_experiment(prefix + n)
            time.sleep(0.003)  # distinct creation times, as MLflow's ids are distinct
        results.append(_searched(c, prefix, order_by))
    assert results[0] == results[1]
    assert sorted(results[0]) == sorted(NAMES)


@pytest.mark.parametrize("clause", ["tags.x", "foo", "name sideways", "name asc desc", "metrics.x",
                                    "attribute.nope"])
def test_a_bad_order_is_refused_as_mlflow_refuses_it(cairn, mlflow_server, clause):
    body = {"order_by": [clause], "max_results": 5}
    ours = Http(cairn.uri).post("/api/2.0/mlflow/experiments/search", body)
    theirs = mlflow_server.http.post("/api/2.0/mlflow/experiments/search", body)
    assert ours[0] == theirs[0] == 400, (ours, theirs)
    # MLflow prints a Python set, whose order changes from one process to the next.
    def unset(m):
        return re.sub(r"\{[^}]*\}", lambda s: str(sorted(re.findall(r"'(\w+)'", s.group()))), m)
    assert unset(ours[1]["message"]) == unset(theirs[1]["message"])
