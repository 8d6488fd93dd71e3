"""Experiments through the MLflow client: create, find, rename, delete, restore, tag; the
Default experiment "0"."""

import mlflow
import pytest
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException


def cairn_experiments(cairn):
    """`cairn exp list --json` by name (active experiments only)."""
    return {e["name"]: e for e in cairn.cli_json("exp", "list")}


def test_the_default_experiment_is_zero(cairn, client):
    default = client.get_experiment("0")
    assert default.name == "Default"
    assert default.lifecycle_stage == "active"
    assert client.get_experiment_by_name("Default").experiment_id == "0"
    # A run started with no experiment set lands in it.
    with mlflow.start_run() as run:
        mlflow.log_metric("x", 1.0)
    assert run.info.experiment_id == "0"
    stored = cairn.run(run.info.run_id)
    assert stored["experiment_name"] == "Default"
    assert cairn_experiments(cairn)["Default"]["runs"] >= 1
    with pytest.raises(MlflowException) as err:
        client.delete_experiment("0")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert client.get_experiment("0").lifecycle_stage == "active"


def test_create_get_rename_tag_delete_restore(cairn, client):
    eid = client.create_experiment("churn", tags={"team": "growth"})
    exp = client.get_experiment(eid)
    assert (exp.name, exp.tags, exp.lifecycle_stage) == ("churn", {"team": "growth"}, "active")
    assert client.get_experiment_by_name("churn").experiment_id == eid
    stored = cairn_experiments(cairn)["churn"]
    assert stored["id"] == eid and stored["tags"] == {"team": "growth"}

    with pytest.raises(MlflowException) as err:
        client.create_experiment("churn")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"

    client.rename_experiment(eid, "churn-v2")
    assert client.get_experiment(eid).name == "churn-v2"
    assert client.get_experiment_by_name("churn") is None
    assert client.get_experiment_by_name("churn-v2").experiment_id == eid
    assert "churn-v2" in cairn_experiments(cairn) and "churn" not in cairn_experiments(cairn)

    client.set_experiment_tag(eid, "team", "retention")
    client.set_experiment_tag(eid, "priority", "high")
    assert client.get_experiment(eid).tags == {"team": "retention", "priority": "high"}
    assert cairn_experiments(cairn)["churn-v2"]["tags"] == {"team": "retention", "priority": "high"}

    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    assert "churn-v2" not in cairn_experiments(cairn)
    active = [e.experiment_id for e in client.search_experiments()]
    deleted = [e.experiment_id for e in client.search_experiments(view_type=ViewType.DELETED_ONLY)]
    assert eid not in active and eid in deleted

    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"
    assert eid in [e.experiment_id for e in client.search_experiments()]
    assert cairn_experiments(cairn)["churn-v2"]["id"] == eid


def test_a_deleted_experiment_is_still_found_by_name(cairn, client):
    # MLflow's get_experiment_by_name returns deleted experiments (lifecycle_stage "deleted");
    # `mlflow.set_experiment` relies on it to refuse a deleted experiment instead of making a
    # second one with the same name.
    eid = client.create_experiment("archived")
    client.delete_experiment(eid)
    found = client.get_experiment_by_name("archived")
    assert found is not None, "a deleted experiment is not found by name"
    assert (found.experiment_id, found.lifecycle_stage) == (eid, "deleted")


def test_set_experiment_refuses_a_deleted_experiment(cairn, client):
    eid = client.create_experiment("retired")
    client.delete_experiment(eid)
    with pytest.raises(MlflowException):
        mlflow.set_experiment("retired")
    named = [e for e in client.search_experiments(view_type=ViewType.ALL) if e.name == "retired"]
    assert [e.experiment_id for e in named] == [eid], "a second experiment 'retired' was created"


def test_set_experiment_creates_then_reuses(cairn, client):
    first = mlflow.set_experiment("fraud")
    again = mlflow.set_experiment("fraud")
    assert first.experiment_id == again.experiment_id
    with mlflow.start_run() as run:
        pass
    assert run.info.experiment_id == first.experiment_id
    assert cairn.run(run.info.run_id)["experiment"] == first.experiment_id


def test_search_experiments_filters_and_pages(cairn, client):
    made = [client.create_experiment(f"sweep-{i}", tags={"kind": "sweep" if i % 2 else "base"})
            for i in range(5)]
    found = {e.experiment_id for e in client.search_experiments(filter_string="name LIKE 'sweep-%'")}
    assert found == set(made)
    odd = {e.experiment_id for e in client.search_experiments(filter_string="tags.kind = 'sweep'")}
    assert odd == {made[1], made[3]}
    seen, token = [], None
    while True:
        page = client.search_experiments(max_results=2, page_token=token, filter_string="name LIKE 'sweep-%'")
        assert len(page) <= 2
        seen.extend(e.experiment_id for e in page)
        token = page.token
        if not token:
            break
    assert sorted(seen) == sorted(made) and len(seen) == len(set(seen))


def test_an_unknown_experiment_is_resource_does_not_exist(cairn, client):
    with pytest.raises(MlflowException) as err:
        client.get_experiment("01a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.get_experiment_by_name("no such experiment") is None
    with pytest.raises(MlflowException) as err:
        client.create_run("12345")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_deleting_an_experiment_deletes_its_runs(cairn, client):
    # As in MLflow's stores: the runs of a deleted experiment leave the active view with it, and
    # come back when it is restored.
    eid = client.create_experiment("short-lived")
    run = client.create_run(eid)
    client.delete_experiment(eid)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "deleted"
    assert client.search_runs([eid]) == []
    assert [r.info.run_id for r in client.search_runs([eid], run_view_type=ViewType.DELETED_ONLY)] == [
        run.info.run_id]
    client.restore_experiment(eid)
    assert client.get_run(run.info.run_id).info.lifecycle_stage == "active"
    assert [r.info.run_id for r in client.search_runs([eid])] == [run.info.run_id]


def test_names_stay_unique(cairn, client):
    a = client.create_experiment("name-a")
    client.create_experiment("name-b")
    with pytest.raises(MlflowException) as err:
        client.rename_experiment(a, "name-b")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    assert client.get_experiment(a).name == "name-a"


def test_renaming_the_default_experiment_keeps_its_id(cairn, client):
    # Last in the module: it renames "0".
    client.rename_experiment("0", "Sandbox")
    assert client.get_experiment("0").name == "Sandbox"
    defaults = [e for e in client.search_experiments() if e.experiment_id == "0"]
    assert [e.name for e in defaults] == ["Sandbox"]
    assert "Default" not in {e.name for e in client.search_experiments()}, (
        "a second Default experiment appeared")
