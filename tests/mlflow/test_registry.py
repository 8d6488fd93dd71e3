"""The model registry as `mlflow.register_model` and the alias calls use it."""

from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException

MLMODEL = """\
artifact_path: model
flavors:
  python_function:
    loader_module: mlflow.pyfunc.model
    python_version: 3.11.7
mlflow_version: 3.17.2
model_uuid: 5b0c3e0e9d8a4c56a0c1d7f0f7b1e2a3
"""


def _train(tmp_path: Path, name: str) -> str:
    model = tmp_path / name / "model"
    model.mkdir(parents=True)
    (model / "MLmodel").write_text(MLMODEL)
    (model / "weights.bin").write_bytes(bytes(range(256)) * 64)
    with mlflow.start_run(run_name=name) as run:
        mlflow.log_metric("auc", 0.91)
        mlflow.log_artifacts(str(model), artifact_path="model")
    return run.info.run_id


def test_register_a_run_model_and_resolve_it_by_alias(cairn, client, experiment, tmp_path):
    first = _train(tmp_path, "v1")
    second = _train(tmp_path, "v2")

    v1 = mlflow.register_model(f"runs:/{first}/model", "churn-classifier")
    v2 = mlflow.register_model(f"runs:/{second}/model", "churn-classifier")
    assert (v1.version, v2.version) == ("1", "2")
    assert (v1.run_id, v2.run_id) == (first, second)
    assert v1.source.endswith(f"/{first}/artifacts/model")
    assert v1.status == "READY"

    client.set_registered_model_alias("churn-classifier", "champion", v1.version)
    client.set_registered_model_alias("churn-classifier", "challenger", v2.version)
    champion = client.get_model_version_by_alias("churn-classifier", "champion")
    assert (champion.version, champion.run_id) == ("1", first)
    assert "champion" in champion.aliases
    assert client.get_model_version_by_alias("churn-classifier", "challenger").run_id == second

    # Moving an alias moves it off the old version.
    client.set_registered_model_alias("churn-classifier", "champion", v2.version)
    moved = client.get_model_version_by_alias("churn-classifier", "champion")
    assert moved.version == "2"
    assert set(moved.aliases) == {"champion", "challenger"}
    assert "champion" not in client.get_model_version("churn-classifier", "1").aliases

    rm = client.get_registered_model("churn-classifier")
    assert rm.aliases == {"champion": "2", "challenger": "2"}

    client.delete_registered_model_alias("churn-classifier", "challenger")
    with pytest.raises(MlflowException) as err:
        client.get_model_version_by_alias("churn-classifier", "challenger")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"

    # The registered source downloads byte for byte.
    local = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=champion.source, dst_path=str(tmp_path / "dl")))
    assert (local / "MLmodel").read_text() == MLMODEL
    assert (local / "weights.bin").read_bytes() == bytes(range(256)) * 64

    # Cairn keeps the model's files as the run's artifacts.
    stored = cairn.run(second)["artifacts"]
    assert stored["model/MLmodel"]["size"] == len(MLMODEL)
    assert stored["model/weights.bin"]["size"] == 256 * 64


def test_a_model_downloads_by_its_models_uri(cairn, client, experiment, tmp_path):
    # `models:/NAME@ALIAS` and `models:/NAME/VERSION` are how serving code loads a model
    # (`mlflow.pyfunc.load_model`); the client resolves them with model-versions/get-download-uri.
    run_id = _train(tmp_path, "served")
    version = mlflow.register_model(f"runs:/{run_id}/model", "fraud-scorer")
    client.set_registered_model_alias("fraud-scorer", "prod", version.version)
    for uri in ("models:/fraud-scorer@prod", f"models:/fraud-scorer/{version.version}"):
        local = Path(mlflow.artifacts.download_artifacts(
            artifact_uri=uri, dst_path=str(tmp_path / uri.replace("/", "_").replace(":", "_"))))
        assert (local / "MLmodel").read_text() == MLMODEL, uri
        assert (local / "weights.bin").read_bytes() == bytes(range(256)) * 64, uri


def test_registry_errors(cairn, client, experiment, tmp_path):
    with pytest.raises(MlflowException) as err:
        client.get_registered_model("no-such-model")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.create_registered_model("empty-model")
    with pytest.raises(MlflowException) as err:
        client.create_registered_model("empty-model")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as err:
        client.get_model_version("empty-model", "7")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as err:
        client.set_registered_model_alias("empty-model", "champion", "1")
    assert err.value.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
