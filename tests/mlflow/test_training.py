"""A training script as users write it with `mlflow`, read back through MLflow and through Cairn."""

import filecmp
import json
import math
import os
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.entities import RunStatus

from conftest import CLIENT_USER

GIT = {
    "mlflow.source.git.commit": "3f2a9c1e5b7d4f6a8c0e2b4d6f8a0c2e4b6d8f0a",
    "mlflow.source.git.branch": "feature/augment",
    "mlflow.source.git.repoURL": "https://example.invalid/cairn-ml/vision.git",
}


def _dataset(tmp_path: Path):
    rng = np.random.default_rng(7)
    df = pd.DataFrame({
        "sepal_length": rng.normal(5.8, 0.8, 120).round(2),
        "sepal_width": rng.normal(3.0, 0.4, 120).round(2),
        "label": rng.integers(0, 3, 120),
    })
    csv = tmp_path / "iris-train.csv"
    df.to_csv(csv, index=False)
    return df, csv


def _artifacts(tmp_path: Path):
    report = tmp_path / "report.txt"
    report.write_text("accuracy 0.93\nf1 0.91\n")
    plots = tmp_path / "plots"
    (plots / "curves").mkdir(parents=True)
    (plots / "confusion.png").write_bytes(os.urandom(4096))
    (plots / "curves" / "loss.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    (plots / "curves" / "empty.txt").write_bytes(b"")
    return report, plots


def _curve(epoch: int):
    loss = 1.0 / (epoch + 1)
    return {"loss": loss, "accuracy": 1.0 - loss / 2}


EPOCHS = 12
PARAMS = {"lr": 0.003, "epochs": EPOCHS, "optimizer": "adam", "layers": [64, 32]}


def test_a_training_script_is_stored_as_logged(cairn, client, experiment, tmp_path):
    df, csv = _dataset(tmp_path)
    report, plots = _artifacts(tmp_path)
    dataset = mlflow.data.from_pandas(df, source=str(csv), name="iris-train", targets="label")

    with mlflow.start_run(run_name="baseline", tags=GIT) as run:
        run_id = run.info.run_id
        mlflow.log_params(PARAMS)
        mlflow.set_tags({"team": "vision", "stage": "dev"})
        mlflow.log_input(dataset, context="training")
        for epoch in range(EPOCHS):
            mlflow.log_metrics(_curve(epoch), step=epoch)
        mlflow.log_metric("val_loss", 0.4, step=EPOCHS - 1)
        mlflow.log_artifact(str(report))
        mlflow.log_artifacts(str(plots), artifact_path="plots")

    # --- through MLflow --------------------------------------------------------------------
    got = client.get_run(run_id)
    assert got.info.status == "FINISHED"
    assert got.info.run_name == "baseline"
    assert got.info.experiment_id == experiment
    assert got.info.user_id == CLIENT_USER
    assert got.info.lifecycle_stage == "active"
    assert got.info.end_time is not None and got.info.end_time >= got.info.start_time
    assert got.data.params == {k: str(v) for k, v in PARAMS.items()}
    last = _curve(EPOCHS - 1)
    assert got.data.metrics == {"loss": last["loss"], "accuracy": last["accuracy"], "val_loss": 0.4}
    for key, value in {**GIT, "team": "vision", "stage": "dev", "mlflow.runName": "baseline",
                       "mlflow.user": CLIENT_USER}.items():
        assert got.data.tags[key] == value, key

    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(e, _curve(e)["loss"]) for e in range(EPOCHS)]

    [inp] = got.inputs.dataset_inputs
    assert {t.key: t.value for t in inp.tags} == {"mlflow.data.context": "training"}
    assert inp.dataset.name == "iris-train"
    assert inp.dataset.digest == dataset.digest
    assert inp.dataset.source_type == "local"
    assert json.loads(inp.dataset.source)["uri"] == str(csv)
    assert json.loads(inp.dataset.profile)["num_rows"] == len(df)
    assert json.loads(inp.dataset.schema) == json.loads(dataset.to_dict()["schema"])

    top = {(f.path, f.is_dir, f.file_size) for f in client.list_artifacts(run_id)}
    assert top == {("report.txt", False, report.stat().st_size), ("plots", True, None)}
    inner = {(f.path, f.is_dir) for f in client.list_artifacts(run_id, "plots")}
    assert inner == {("plots/confusion.png", False), ("plots/curves", True)}

    down = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(tmp_path / "dl")))
    assert (down / "report.txt").read_bytes() == report.read_bytes()
    cmp = filecmp.dircmp(plots, down / "plots")
    assert _all_same(cmp), "downloaded plots/ differ from the logged directory"
    one = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="plots/curves/loss.csv", dst_path=str(tmp_path / "one"))
    assert Path(one).read_bytes() == (plots / "curves" / "loss.csv").read_bytes()

    # --- through Cairn ---------------------------------------------------------------------
    r = cairn.run(run_id)
    assert r["id"] == run_id
    assert r["name"] == "baseline"
    assert r["status"] == "finished"
    assert r["owner"] == CLIENT_USER
    assert r["experiment"] == experiment
    assert r["experiment_name"] == client.get_experiment(experiment).name
    assert r["start_ms"] == got.info.start_time
    assert r["end_ms"] == got.info.end_time
    assert r["params"] == {k: str(v) for k, v in PARAMS.items()}
    for key, value in {**GIT, "team": "vision", "stage": "dev"}.items():
        assert r["tags"][key] == value, key
    losses = [_curve(e)["loss"] for e in range(EPOCHS)]
    assert r["metrics"]["loss"] == {
        "last": losses[-1], "step": EPOCHS - 1, "ts_ms": r["metrics"]["loss"]["ts_ms"],
        "min": min(losses), "max": max(losses), "count": EPOCHS,
    }
    assert r["metrics"]["val_loss"]["count"] == 1
    assert r["metrics"].keys() == {"loss", "accuracy", "val_loss"}
    assert [p["value"] for p in cairn.metric(run_id, "loss")] == losses

    assert r["lineage"]["code"] == {
        "commit": GIT["mlflow.source.git.commit"],
        "branch": GIT["mlflow.source.git.branch"],
        "repo": GIT["mlflow.source.git.repoURL"],
        "dirty": False,
    }
    ds = r["lineage"]["datasets"]["training"]
    assert ds["name"] == "iris-train"
    assert ds["digest"] == dataset.digest
    assert ds["rows"] == len(df)
    assert ds["uri"] == str(csv)
    assert ds["source_type"] == "local"
    # The default schema asks for a code commit and a dataset digest: both came through MLflow.
    assert "incomplete" not in r, f"run marked incomplete: {r.get('incomplete')}"

    files = {p: (a["kind"], a["size"]) for p, a in r["artifacts"].items()}
    expected = {"report.txt": ("file", report.stat().st_size)}
    for f in plots.rglob("*"):
        if f.is_file():
            expected[f"plots/{f.relative_to(plots).as_posix()}"] = ("file", f.stat().st_size)
    assert files == expected
    out = tmp_path / "via-cairn.png"
    res = cairn.cli("artifact", "get", run_id, "plots/confusion.png", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == (plots / "confusion.png").read_bytes()


def _all_same(cmp: filecmp.dircmp) -> bool:
    if cmp.left_only or cmp.right_only or cmp.diff_files or cmp.funny_files:
        return False
    # dircmp compares shallowly by stat; compare contents for real.
    for name in cmp.common_files:
        if Path(cmp.left, name).read_bytes() != Path(cmp.right, name).read_bytes():
            return False
    return all(_all_same(sub) for sub in cmp.subdirs.values())


def test_nested_runs_link_to_their_parent(cairn, client, experiment):
    with mlflow.start_run(run_name="sweep") as parent:
        children = []
        for lr in (0.1, 0.01, 0.001):
            with mlflow.start_run(run_name=f"trial-lr-{lr}", nested=True) as child:
                mlflow.log_param("lr", lr)
                mlflow.log_metric("loss", lr * 10)
                children.append(child.info.run_id)
    pid = parent.info.run_id

    for cid in children:
        got = client.get_run(cid)
        assert got.data.tags["mlflow.parentRunId"] == pid
        assert got.info.status == "FINISHED"
        r = cairn.run(cid)
        assert r["parent"] == pid
        assert r["parent_kind"] == "child"
    assert "parent" not in cairn.run(pid)

    found = mlflow.search_runs(
        experiment_ids=[experiment], filter_string=f"tags.mlflow.parentRunId = '{pid}'",
        order_by=["params.lr DESC"], output_format="list")
    assert [r.info.run_id for r in found] == children


def test_a_failing_script_ends_its_run_failed(cairn, client, experiment):
    try:
        with mlflow.start_run() as run:
            mlflow.log_metric("loss", 1.5)
            raise RuntimeError("CUDA out of memory")
    except RuntimeError:
        pass
    assert client.get_run(run.info.run_id).info.status == "FAILED"
    r = cairn.run(run.info.run_id)
    assert r["status"] == "failed"
    assert r["end_ms"] is not None
    assert r["metrics"]["loss"]["last"] == 1.5


def test_a_run_killed_and_a_run_still_running(cairn, client, experiment):
    running = client.create_run(experiment, run_name="still-going")
    killed = client.create_run(experiment, run_name="stopped")
    client.set_terminated(killed.info.run_id, status=RunStatus.to_string(RunStatus.KILLED))

    assert client.get_run(running.info.run_id).info.status == "RUNNING"
    assert cairn.run(running.info.run_id)["status"] == "running"
    assert "end_ms" not in cairn.run(running.info.run_id)
    assert client.get_run(killed.info.run_id).info.status == "KILLED"
    assert cairn.run(killed.info.run_id)["status"] == "killed"


def test_non_finite_metrics_are_kept(cairn, client, experiment):
    with mlflow.start_run() as run:
        mlflow.log_metric("grad_norm", 1.0, step=0)
        mlflow.log_metric("grad_norm", float("nan"), step=1)
        mlflow.log_metric("grad_norm", float("inf"), step=2)
        mlflow.log_metric("grad_norm", float("-inf"), step=3)
    got = [m.value for m in client.get_metric_history(run.info.run_id, "grad_norm")]
    assert got[0] == 1.0 and math.isnan(got[1]) and got[2] == math.inf and got[3] == -math.inf
    assert client.get_run(run.info.run_id).data.metrics["grad_norm"] == -math.inf
    stored = cairn.metric(run.info.run_id, "grad_norm")
    assert [p["value"] for p in stored] == [1.0, "NaN", "Infinity", "-Infinity"]
    assert cairn.run(run.info.run_id)["metrics"]["grad_norm"]["last"] == "-Infinity"


def test_two_datasets_in_one_context_are_both_kept(cairn, client, experiment):
    # Features and labels, both used for training: MLflow keeps one input per dataset.
    features = mlflow.data.from_pandas(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), name="features")
    labels = mlflow.data.from_pandas(pd.DataFrame({"y": [0, 1, 1]}), name="labels")
    with mlflow.start_run() as run:
        mlflow.log_input(features, context="training")
        mlflow.log_input(labels, context="training")
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    got = sorted((i.dataset.name, i.dataset.digest, {t.key: t.value for t in i.tags}["mlflow.data.context"])
                 for i in inputs)
    assert got == sorted([("features", features.digest, "training"), ("labels", labels.digest, "training")])
    stored = cairn.run(run.info.run_id)["lineage"]["datasets"]
    assert sorted(d["digest"] for d in stored.values()) == sorted([features.digest, labels.digest])
