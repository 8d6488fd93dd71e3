"""The registry as records, through the real `mlflow` client: every registry call the client
makes, a version pinned to its content (the run's path refuses rewrites and deletions, downloads
read the content by its hash), and deletions kept as tombstones."""

from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

MLMODEL = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: x\n"


def _train(tmp_path: Path, name: str, weights: bytes) -> str:
    model = tmp_path / name / "model"
    model.mkdir(parents=True)
    (model / "MLmodel").write_text(MLMODEL)
    (model / "weights.bin").write_bytes(weights)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_artifacts(str(model), artifact_path="model")
    return run.info.run_id


def test_a_registered_path_refuses_rewrites_and_deletions_and_downloads_its_content(
        cairn, client, experiment, tmp_path):
    run_id = _train(tmp_path, "pinned", b"the registered weights")
    v = mlflow.register_model(f"runs:/{run_id}/model", "pinned-model")
    assert v.version == "1"

    # The run's artifact path backs version 1: an upload over it is refused, naming why.
    rewritten = tmp_path / "rewrite" / "weights.bin"
    rewritten.parent.mkdir()
    rewritten.write_bytes(b"something else")
    with pytest.raises(Exception) as err:
        with mlflow.start_run(run_id=run_id):
            mlflow.log_artifact(str(rewritten), artifact_path="model")
    assert "backs registered model 'pinned-model' version 1" in str(err.value)
    repo = get_artifact_repository(client.get_run(run_id).info.artifact_uri)
    with pytest.raises(Exception) as err:
        repo.delete_artifacts("model")
    assert "backs registered model 'pinned-model' version 1" in str(err.value)
    # Other paths of the run are free.
    with mlflow.start_run(run_id=run_id):
        mlflow.log_text("notes", "notes/readme.txt")

    # The version downloads by its content hash.
    uri = client.get_model_version_download_uri("pinned-model", "1")
    stored = cairn.cli_json("model", "show", "pinned-model")
    content = stored["versions"][0]["content"]
    assert uri == f"mlflow-artifacts:/_cairn_content/{content}"
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri="models:/pinned-model/1",
                                                     dst_path=str(tmp_path / "dl")))
    assert (local / "weights.bin").read_bytes() == b"the registered weights"
    assert (local / "MLmodel").read_text() == MLMODEL
    # The content itself is read-only.
    content_repo = get_artifact_repository(uri)
    with pytest.raises(Exception):
        content_repo.log_artifact(str(rewritten))

    # Once the version is deleted (a tombstone), the path is the run's again.
    client.delete_model_version("pinned-model", "1")
    with mlflow.start_run(run_id=run_id):
        mlflow.log_artifact(str(rewritten), artifact_path="model")
    deleted = cairn.cli_json("model", "versions", "pinned-model", "--all")[0]
    assert deleted["deleted"]["user"] == "tester"
    assert deleted["deleted"]["reason"] == "version deleted through the MLflow API"


def test_every_registry_call_of_the_client(cairn, client, experiment, tmp_path):
    first = _train(tmp_path, "a", b"a")
    second = _train(tmp_path, "b", b"b")
    rm = client.create_registered_model("calls", tags={"team": "growth"}, description="d0")
    assert (rm.name, rm.description, rm.tags) == ("calls", "d0", {"team": "growth"})
    assert rm.creation_timestamp > 0

    v1 = client.create_model_version("calls", f"runs:/{first}/model", first,
                                     tags={"k": "v"}, description="first")
    v2 = client.create_model_version("calls", f"runs:/{second}/model", second)
    assert (v1.version, v2.version) == ("1", "2")
    assert (v1.tags, v1.description, v1.user_id, v1.current_stage, v1.status) == (
        {"k": "v"}, "first", "tester", "None", "READY")

    client.update_registered_model("calls", description="d1")
    client.set_registered_model_tag("calls", "stage", "beta")
    client.delete_registered_model_tag("calls", "team")
    got = client.get_registered_model("calls")
    assert (got.description, got.tags) == ("d1", {"stage": "beta"})
    assert [v.version for v in got.latest_versions] == ["2"]

    client.update_model_version("calls", "1", description="first, revised")
    client.set_model_version_tag("calls", "2", "validated", "yes")
    client.delete_model_version_tag("calls", "1", "k")
    assert client.get_model_version("calls", "1").description == "first, revised"
    assert client.get_model_version("calls", "1").tags == {}
    assert client.get_model_version("calls", "2").tags == {"validated": "yes"}

    with pytest.warns(FutureWarning):
        staged = client.transition_model_version_stage("calls", "1", "Production")
    assert staged.current_stage == "Production"
    with pytest.warns(FutureWarning):
        latest = client.get_latest_versions("calls", stages=["Production"])
    assert [v.version for v in latest] == ["1"]

    found = client.search_registered_models(filter_string="name LIKE 'cal%'")
    assert [m.name for m in found] == ["calls"]
    assert client.search_registered_models(filter_string="tags.stage = 'beta'")[0].name == "calls"
    assert client.search_registered_models(filter_string="name = 'none'") == []
    versions = client.search_model_versions("name = 'calls'")
    assert [v.version for v in versions] == ["2", "1"]
    by_run = client.search_model_versions(f"run_id = '{second}'")
    assert [(v.name, v.version) for v in by_run] == [("calls", "2")]
    ordered = client.search_model_versions("name = 'calls'", order_by=["version_number ASC"])
    assert [v.version for v in ordered] == ["1", "2"]

    with pytest.raises(MlflowException) as err:
        client.rename_registered_model("calls", "renamed")
    assert "does not rename" in err.value.message

    client.delete_model_version("calls", "2")
    with pytest.raises(MlflowException) as err:
        client.get_model_version("calls", "2")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert [v.version for v in client.search_model_versions("name = 'calls'")] == ["1"]
    # Numbers are never reused.
    v3 = client.create_model_version("calls", f"runs:/{second}/model", second)
    assert v3.version == "3"

    client.delete_registered_model("calls")
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("calls")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    # A model of the same name starts over at version 1.
    client.create_registered_model("calls")
    again = client.create_model_version("calls", f"runs:/{first}/model", first)
    assert again.version == "1"


def test_an_alias_move_goes_through_the_gate_and_is_refused_naming_each_failed_check(
        cairn, client, experiment, tmp_path):
    run_id = _train(tmp_path, "gated", b"gated weights")
    mlflow.register_model(f"runs:/{run_id}/model", "gated-model")
    client.set_registered_model_alias("gated-model", "staging", "1")  # no gate yet
    out = cairn.cli("model", "gate", "set", "gated-model", "--alias", "champion",
                    "--require", "holdout", "--metric", "holdout.auc>=0.9")
    assert out.returncode == 0, out.stderr

    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("gated-model", "champion", "1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    message = err.value.message
    assert "refused by its gate" in message
    assert "no evaluation on benchmark 'holdout'" in message
    assert "holdout auc: needs >= 0.9" in message
    assert "champion" not in client.get_registered_model("gated-model").aliases

    # Every check is kept, the refused one included.
    history = cairn.cli_json("model", "gate", "history", "gated-model")
    assert [(e["alias"], e["passed"], e["promoted"]) for e in history] == [
        ("champion", False, False), ("staging", True, True)]

    # An evaluation below the threshold is still refused, naming the value it read.
    out = cairn.cli("eval", "log", run_id, "--benchmark", "holdout", "-m", "auc=0.85")
    assert out.returncode == 0, out.stderr
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("gated-model", "champion", "1")
    assert "holdout auc = 0.85, needs >= 0.9" in err.value.message
    assert "no evaluation on benchmark" not in err.value.message
    # Once the run's evaluation reaches the threshold, the same call passes the gate in place.
    out = cairn.cli("eval", "log", run_id, "--benchmark", "holdout", "-m", "auc=0.93")
    assert out.returncode == 0, out.stderr
    client.set_registered_model_alias("gated-model", "champion", "1")
    assert client.get_model_version_by_alias("gated-model", "champion").version == "1"
    latest = cairn.cli_json("model", "gate", "history", "gated-model")[0]
    assert (latest["alias"], latest["passed"], latest["promoted"]) == ("champion", True, True)
    assert latest["policy_hash"].startswith("blake3:")
    client.delete_registered_model_alias("gated-model", "champion")

    # Lifting the gate lets any move through.
    assert cairn.cli("model", "gate", "set", "gated-model", "--alias", "champion").returncode == 0
    client.set_registered_model_alias("gated-model", "champion", "1")
    assert client.get_model_version_by_alias("gated-model", "champion").version == "1"
