"""Deleting and restoring experiments as MLflow's server does, beside a real `mlflow server`:
the experiment's runs go with it and come back with it, a deleted experiment is still found by
name and by the search of deleted ones, and it cannot be renamed."""

import uuid

import mlflow
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from reference import Http


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _lifecycle(client):
    """What a user of `client` sees through one experiment's deletion and restoration."""
    name = _unique("life")
    exp_id = client.create_experiment(name)
    rid = client.create_run(exp_id).info.run_id
    seen = {}
    client.delete_experiment(exp_id)
    seen["deleted"] = client.get_experiment(exp_id).lifecycle_stage
    seen["by_name"] = client.get_experiment_by_name(name).lifecycle_stage
    seen["run"] = client.get_run(rid).info.lifecycle_stage
    seen["active_search"] = [e.name for e in client.search_experiments(
        filter_string=f"name = '{name}'")]
    seen["deleted_search"] = [e.name == name for e in client.search_experiments(
        view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{name}'")]
    seen["runs_active"] = len(client.search_runs([exp_id]))
    seen["runs_deleted"] = len(client.search_runs([exp_id], run_view_type=ViewType.DELETED_ONLY))
    # Refused (its words are compared below: MLflow's status makes its client say INTERNAL_ERROR).
    with pytest.raises(MlflowException):
        client.rename_experiment(exp_id, name + "-new")
    client.restore_experiment(exp_id)
    seen["restored"] = client.get_experiment(exp_id).lifecycle_stage
    seen["run_after"] = client.get_run(rid).info.lifecycle_stage
    return seen


def test_delete_and_restore_take_the_runs_along_as_in_mlflow(cairn, mlflow_server):
    ours = _lifecycle(mlflow.MlflowClient(cairn.uri))
    theirs = _lifecycle(mlflow.MlflowClient(mlflow_server.uri))
    assert ours == theirs


def test_renaming_a_deleted_experiment_is_refused_in_mlflows_words(cairn, mlflow_server):
    answers = []
    for http, client in ((Http(cairn.uri), mlflow.MlflowClient(cairn.uri)),
                         (mlflow_server.http, mlflow.MlflowClient(mlflow_server.uri))):
        exp_id = client.create_experiment(_unique("gone"))
        client.delete_experiment(exp_id)
        answers.append(http.post("/api/2.0/mlflow/experiments/update",
                                 {"experiment_id": exp_id, "new_name": _unique("new")}))
    ours, theirs = answers
    # MLflow answers 500 (which clients retry); Cairn the same code and words with 400.
    assert (ours[0], theirs[0]) == (400, 500)
    assert (ours[1]["error_code"], ours[1]["message"]) == \
        (theirs[1]["error_code"], theirs[1]["message"])


def test_an_unknown_experiment_is_refused_as_mlflow_refuses_it(cairn, mlflow_server):
    for path, body in (("experiments/delete", {"experiment_id": "987654"}),
                       ("experiments/restore", {"experiment_id": "987654"}),
                       ("experiments/update", {"experiment_id": "987654", "new_name": "x"})):
        ours = Http(cairn.uri).post(f"/api/2.0/mlflow/{path}", body)
        theirs = mlflow_server.http.post(f"/api/2.0/mlflow/{path}", body)
        assert ours[0] == theirs[0], (path, ours, theirs)
        assert (ours[1]["error_code"], ours[1]["message"]) == \
            (theirs[1]["error_code"], theirs[1]["message"]), path
