"""A realistic MLflow history, logged by the real `mlflow` package into a store of its own.

`log_history(tracking_uri, artifacts)` writes, through the MLflow client pointed at a SQLite
store (`sqlite:///…/mlflow.db`) or a file store (`…/mlruns`): two experiments (one with tags),
a parent run with two nested children, a long metric (several thousand steps), NaN and ±inf
values, params, tags, a note, a failed and a killed run, a dataset input, artifacts (two runs
share a file's content), and a registered model with two versions, version tags and an alias.
`cairn import mlflow` is tested against what it leaves (test_import_mlflow.py); run as a script
it writes a store to look at: `python mlflow_history.py sqlite:////tmp/h/mlflow.db /tmp/h/art`.
"""

import math
import os
import sys
import tempfile
from pathlib import Path

LONG_STEPS = 3_000
REGISTERED = "importer-model"


def log_history(tracking_uri: str, artifacts: Path) -> dict:
    """Logs the history; returns the ids it made, by role. Some of MLflow's calls open a side
    database (`mlflow.db`) in the working directory: it is left beside the artifacts."""
    artifacts.mkdir(parents=True, exist_ok=True)
    here = os.getcwd()
    os.chdir(artifacts)
    try:
        return _log_history(tracking_uri, artifacts)
    finally:
        os.chdir(here)


def _log_history(tracking_uri: str, artifacts: Path) -> dict:
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    ids = {}
    exp = client.create_experiment(
        "vision", artifact_location=(artifacts / "vision").as_uri(),
        tags={"team": "cv", "mlflow.note.content": "image models"})
    other = client.create_experiment("tabular", artifact_location=(artifacts / "tab").as_uri())
    ids["experiments"] = [exp, other]

    parent = client.create_run(exp, run_name="sweep", start_time=1_700_000_000_000,
                               tags={"mlflow.source.git.commit": "0123456789abcdef" * 2 + "01234567",
                                     "mlflow.source.name": "train.py", "stage": "dev"})
    pid = parent.info.run_id
    ids["parent"] = pid
    client.log_param(pid, "optimizer", "adamw")
    client.log_param(pid, "lr", "0.0003")
    client.set_tag(pid, "mlflow.note.content", "a sweep over depth")
    children = []
    for depth in (18, 50):
        child = client.create_run(exp, run_name=f"resnet{depth}",
                                  start_time=1_700_000_100_000 + depth,
                                  tags={"mlflow.parentRunId": pid})
        cid = child.info.run_id
        children.append(cid)
        client.log_batch(cid, params=[mlflow.entities.Param("depth", str(depth)),
                                      mlflow.entities.Param("batch_size", "256")])
        # A long metric, logged in batches as a training loop's async logger would.
        t0 = 1_700_000_200_000
        for lo in range(0, LONG_STEPS, 1000):
            batch = [mlflow.entities.Metric("loss", 2.0 / (1 + s) + depth * 1e-4, t0 + s * 10, s)
                     for s in range(lo, min(lo + 1000, LONG_STEPS))]
            client.log_batch(cid, metrics=batch)
        # NaN and both infinities, and a step logged twice (both points are kept).
        client.log_metric(cid, "grad_norm", 1.5, timestamp=t0, step=0)
        client.log_metric(cid, "grad_norm", math.nan, timestamp=t0 + 1, step=1)
        client.log_metric(cid, "grad_norm", math.inf, timestamp=t0 + 2, step=2)
        client.log_metric(cid, "grad_norm", -math.inf, timestamp=t0 + 3, step=3)
        client.log_metric(cid, "grad_norm", 0.25, timestamp=t0 + 4, step=3)
        client.log_metric(cid, "accuracy", 0.5 + depth / 200, timestamp=t0 + 5, step=0)
        client.set_tag(cid, "depth_class", "deep" if depth > 20 else "shallow")
        client.set_terminated(cid, "FINISHED", end_time=t0 + LONG_STEPS * 10)
    ids["children"] = children

    # A dataset the first child trained on.
    import pandas as pd
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [0, 1, 0]})
    dataset = mlflow.data.from_pandas(frame, source="s3://bucket/train.parquet", name="train-v1")
    client.log_inputs(children[0], datasets=[mlflow.entities.DatasetInput(
        dataset._to_mlflow_entity(), tags=[mlflow.entities.InputTag("mlflow.data.context",
                                                                      "training")])])

    # Artifacts: a model directory on the first child, a shared file on both children (the
    # client copies them into the store: the working copies go when logged).
    with tempfile.TemporaryDirectory(prefix="mlflow-history-") as tmp:
        _log_artifacts(client, children, Path(tmp))
    client.set_terminated(pid, "FINISHED", end_time=1_700_000_300_000)

    # A failed and a killed run in the other experiment, one without a name.
    failed = client.create_run(other, start_time=1_700_000_400_000, run_name="crashed")
    client.log_metric(failed.info.run_id, "rmse", 3.25, timestamp=1_700_000_400_100, step=7)
    client.set_terminated(failed.info.run_id, "FAILED", end_time=1_700_000_400_200)
    killed = client.create_run(other, start_time=1_700_000_500_000, run_name="stopped")
    client.log_param(killed.info.run_id, "n_estimators", "100")
    client.set_terminated(killed.info.run_id, "KILLED", end_time=1_700_000_500_100)
    ids["failed"], ids["killed"] = failed.info.run_id, killed.info.run_id

    # A registered model: two versions from the two children, tags, an alias.
    client.create_registered_model(REGISTERED, tags={"owner": "cv-team"},
                                   description="the sweep's models")
    v1 = client.create_model_version(REGISTERED, f"runs:/{children[0]}/model", run_id=children[0],
                                     tags={"quality": "baseline"}, description="first")
    v2 = client.create_model_version(REGISTERED, f"runs:/{children[1]}/model", run_id=children[1])
    client.set_model_version_tag(REGISTERED, v2.version, "quality", "better")
    client.set_registered_model_alias(REGISTERED, "champion", v2.version)
    ids["versions"] = [v1.version, v2.version]
    return ids


def _log_artifacts(client, children, work: Path):
    (work / "model").mkdir()
    (work / "model" / "MLmodel").write_text("flavors:\n  python_function: {}\n")
    (work / "model" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (work / "notes.txt").write_text("same content in two runs\n")
    client.log_artifacts(children[0], str(work / "model"), "model")
    for cid in children:
        client.log_artifact(cid, str(work / "notes.txt"))
    client.log_artifact(children[1], str(work / "model" / "weights.bin"), "model")
    client.log_artifact(children[1], str(work / "model" / "MLmodel"), "model")


if __name__ == "__main__":
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    print(log_history(sys.argv[1], Path(sys.argv[2])))
