"""The audit trail of a model promoted through the MLflow client (issue #15): a run logged with
params and a dataset, registered, given the @champion alias — all through the real `mlflow`
client — then `cairn audit trail NAME@VERSION --json` and `cairn audit verify` on the same
workspace: the trail holds the run with its lineage, the registration and the alias move, each
with who and when, and every chain verifies."""

import time

import mlflow
import pandas as pd

from test_registry import MLMODEL

MODEL = "audited-churn"


def _steps(steps, kind):
    return [s for s in steps if s["kind"] == kind]


def test_a_version_promoted_through_mlflow_has_a_complete_verified_trail(
        cairn, client, experiment, tmp_path):
    started_ms = int(time.time() * 1000)
    frame = pd.DataFrame({"tenure": [1.0, 7.0, 30.0], "churned": [1, 0, 0]})
    csv = tmp_path / "churn-2026-11.csv"
    frame.to_csv(csv, index=False)
    dataset = mlflow.data.from_pandas(frame, source=str(csv), name="churn-2026-11",
                                      targets="churned")
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text(MLMODEL)
    (model / "weights.bin").write_bytes(b"weights" * 100)
    with mlflow.start_run(run_name="trained") as run:
        mlflow.log_params({"lr": "0.01", "epochs": "12"})
        mlflow.log_input(dataset, context="training")
        mlflow.log_metric("auc", 0.91)
        mlflow.log_artifacts(str(model), artifact_path="model")
    run_id = run.info.run_id

    version = mlflow.register_model(f"runs:/{run_id}/model", MODEL)
    client.set_registered_model_alias(MODEL, "champion", version.version)
    assert client.get_model_version_by_alias(MODEL, "champion").version == version.version

    trail = cairn.cli_json("audit", "trail", f"{MODEL}@{version.version}")
    assert trail["model"] == MODEL
    assert str(trail["version"]) == version.version
    assert trail["verified"] is True, trail["findings"]
    assert trail["findings"] == []

    # Where the data came from: the version's run, its dataset by digest, its params.
    [r] = trail["runs"]
    assert r["id"] == run_id
    assert r["name"] == "trained"
    assert r["owner"] == "alice"
    [d] = r["datasets"]
    assert (d["role"], d["name"], d["digest"]) == ("training", "churn-2026-11", dataset.digest)
    assert str(csv) in d["source"]
    # Each of the run's steps says who (the server's member and device) and when.
    for s in r["steps"]:
        assert s["member"] == "tester"
        assert s["device"] and s["event"].startswith(s["device"] + "#")
        assert started_ms - 1000 <= s["at_ms"] <= int(time.time() * 1000) + 1000
    [created] = _steps(r["steps"], "run.created")
    assert created["fields"]["name"] == "trained"
    assert created["fields"]["owner"] == "alice"
    # MLflow sends the dataset after creating the run: its own signed event names it.
    [logged] = _steps(r["steps"], "run.datasets_logged")
    assert logged["fields"]["datasets"] == f'["training=churn-2026-11@{dataset.digest}"]'
    assert str(csv) in logged["fields"]["sources"]
    assert created["at_ms"] <= logged["at_ms"]

    # The version's own steps, oldest first: registered, then the alias moved onto it.
    kinds = [s["kind"] for s in trail["steps"]]
    assert kinds == ["version.registered", "alias.moved"], kinds
    registered, moved = trail["steps"]
    for s in trail["steps"]:
        assert s["member"] == "tester"
        assert s["device"] == created["device"]
    assert registered["fields"]["model"] == MODEL
    assert registered["fields"]["run"] == run_id
    assert trail["content"] and trail["content"] in registered["fields"].values()
    assert moved["fields"]["alias"] == "champion"
    assert moved["fields"]["verdict"] == "passed"
    assert registered["at_ms"] <= moved["at_ms"]

    # The same events by model in the log, and every chain and governed record verifies.
    log = cairn.cli_json("audit", "log", "--model", f"{MODEL}@{version.version}")
    logged_kinds = {e["kind"] for e in log}
    assert {"run.created", "run.datasets_logged", "version.registered",
            "alias.moved"} <= logged_kinds, logged_kinds
    verify = cairn.cli_json("audit", "verify")
    assert verify["ok"] is True, verify["findings"]
    assert verify["events"] >= 4
    plain = cairn.cli("audit", "verify")
    assert plain.returncode == 0, plain.stdout + plain.stderr
