"""`cairn import mlflow` against a store the real `mlflow` package wrote (mlflow_history.py):
every value read back through Cairn's MLflow API with the real client, beside the same value
read from the source store with the same client, and a second import that adds nothing."""

import json
import math
import os
import tempfile
from pathlib import Path

import mlflow
import pytest

from conftest import _start, _stop
from mlflow_history import REGISTERED, log_history


@pytest.fixture(scope="module", params=["sqlite", "mlruns"])
def store(request):
    """A store and its artifacts, written by the real client: (uri, ids). The SQL store, and
    the file store MLflow still reads and writes when allowed to."""
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    with tempfile.TemporaryDirectory(prefix="mlflow-store-") as tmp:
        tmp = Path(tmp)
        if request.param == "sqlite":
            uri = f"sqlite:///{tmp / 'mlflow.db'}"
        else:
            uri = str(tmp / "mlruns")
        ids = log_history(uri, tmp / "artifacts")
        yield uri, ids


@pytest.fixture(scope="module")
def cairn(store):
    """A `cairn serve` of its own for each store (both hold the same names)."""
    with tempfile.TemporaryDirectory(prefix="cairn-import-") as tmp:
        server = _start(Path(tmp) / "ws")
        try:
            yield server
        finally:
            _stop(server)


@pytest.fixture(scope="module")
def imported(cairn, store):
    """The store imported once into the served workspace: the report."""
    uri, _ = store
    out = cairn.cli("import", "mlflow", uri, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _same(a, b):
    """Floats equal, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _logged(v):
    """What was logged: MLflow's SQL store keeps ±inf as ±float max."""
    if v == 1.7976931348623157e308:
        return math.inf
    if v == -1.7976931348623157e308:
        return -math.inf
    return v


def _runs(client):
    exps = [e.experiment_id for e in client.search_experiments()]
    return {r.info.run_id: r for r in client.search_runs(exps, max_results=1000)}


def test_the_report_reconciles_both_sides(imported):
    src, added, present = imported["in_source"], imported["added"], imported["present"]
    assert src["runs"] == 5 and added["runs"] == 5 and present["runs"] == 0
    assert added["points"] == src["points"] == 2 * (3000 + 5 + 1) + 1
    assert added["params"] == src["params"] == 7
    assert added["tags"] == src["tags"]
    assert added["datasets"] == src["datasets"] == 1
    assert added["artifacts"] == src["artifacts"] == 6
    assert (added["models"], added["versions"], added["aliases"]) == (1, 2, 1)
    assert imported["skipped"] == {}


def test_every_run_reads_back_as_in_mlflow(cairn, store, imported):
    uri, _ = store
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    here = mlflow.MlflowClient(tracking_uri=cairn.uri)
    want = _runs(source)
    assert len(want) == 5
    for rid, s in want.items():
        got = here.get_run(rid)
        assert got.info.run_id == rid
        assert got.info.run_name == s.info.run_name
        assert got.info.status == s.info.status
        assert got.info.start_time == s.info.start_time
        assert got.info.end_time == s.info.end_time
        assert got.info.user_id == s.info.user_id
        assert got.data.params == s.data.params
        for k, v in s.data.tags.items():
            assert got.data.tags.get(k) == v, (rid, k)
        assert here.get_experiment(got.info.experiment_id).name == \
            source.get_experiment(s.info.experiment_id).name
        for key in s.data.metrics:
            a = sorted((m.step, m.timestamp, _logged(m.value))
                       for m in source.get_metric_history(rid, key))
            b = sorted((m.step, m.timestamp, m.value) for m in here.get_metric_history(rid, key))
            assert len(a) == len(b), (rid, key)
            for x, y in zip(a, b):
                assert x[:2] == y[:2] and _same(x[2], y[2]), (rid, key, x, y)


def test_nan_and_infinities_are_kept(cairn, store, imported):
    _, ids = store
    points = cairn.metric(ids["children"][0], "grad_norm")
    values = [p["value"] for p in points]
    assert len(values) == 5
    # What `--json` writes for the values JSON has no number for.
    assert any(v in ("NaN", None) or (isinstance(v, float) and math.isnan(v)) for v in values)
    assert any(v in ("Infinity", "inf") or v == math.inf for v in values), values
    assert any(v in ("-Infinity", "-inf") or v == -math.inf for v in values), values


def test_system_tags_become_lineage(cairn, store, imported):
    _, ids = store
    child = cairn.run(ids["children"][0])
    assert child["parent"] == ids["parent"]
    parent = cairn.run(ids["parent"])
    assert parent["notes"] == "a sweep over depth"
    assert parent["lineage"]["code"]["commit"] == "0123456789abcdef" * 2 + "01234567"
    datasets = child["lineage"]["datasets"]
    assert datasets["training"]["name"] == "train-v1"
    assert datasets["training"]["uri"] == "s3://bucket/train.parquet"


def test_experiments_keep_their_mlflow_id_as_an_alias(cairn, store, imported):
    uri, ids = store
    here = mlflow.MlflowClient(tracking_uri=cairn.uri)
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    for eid in ids["experiments"]:
        want = source.get_experiment(eid)
        got = here.get_experiment(eid)
        assert got.name == want.name
        for k, v in want.tags.items():
            assert got.tags.get(k) == v


def test_datasets_read_back_as_inputs(cairn, store, imported):
    uri, ids = store
    rid = ids["children"][0]
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    want = source.get_run(rid).inputs.dataset_inputs
    got = mlflow.MlflowClient(tracking_uri=cairn.uri).get_run(rid).inputs.dataset_inputs
    assert len(got) == len(want) == 1
    for field in ("name", "digest", "source_type", "source", "schema", "profile"):
        assert getattr(got[0].dataset, field) == getattr(want[0].dataset, field), field
    assert {(t.key, t.value) for t in got[0].tags} == {(t.key, t.value) for t in want[0].tags}


def test_artifacts_are_the_same_bytes(cairn, store, imported, tmp_path):
    uri, ids = store
    here = mlflow.MlflowClient(tracking_uri=cairn.uri)
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    for rid in ids["children"]:
        a = Path(source.download_artifacts(rid, "", str(tmp_path / rid / "a")))
        b = Path(here.download_artifacts(rid, "", str(tmp_path / rid / "b")))
        files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
        assert files
        for f in files:
            assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_the_registry_comes_with_versions_tags_and_aliases(cairn, store, imported, tmp_path,
                                                          monkeypatch):
    uri, _ = store
    # MLflow's registry over a file store opens a side database in the working directory.
    monkeypatch.chdir(tmp_path)
    here = mlflow.MlflowClient(tracking_uri=cairn.uri, registry_uri=cairn.uri)
    source = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    want, got = source.get_registered_model(REGISTERED), here.get_registered_model(REGISTERED)
    assert got.description == want.description
    assert got.tags == want.tags
    # MLflow's stores hand the version as a number, its REST API as text.
    assert {k: str(v) for k, v in got.aliases.items()} == \
        {k: str(v) for k, v in want.aliases.items()} == {"champion": "2"}
    for n in (1, 2):
        w, g = source.get_model_version(REGISTERED, n), here.get_model_version(REGISTERED, n)
        assert g.run_id == w.run_id
        assert g.tags == w.tags
        # None in the store is "" over REST, from MLflow's server too.
        assert (g.description or None) == (w.description or None)
    champion = here.get_model_version_by_alias(REGISTERED, "champion")
    assert str(champion.version) == "2"


def test_a_second_import_adds_nothing(cairn, store, imported):
    uri, _ = store
    again = cairn.cli_json("import", "mlflow", uri)
    assert again["runs_created"] == 0 and again["runs_updated"] == 0
    assert again["runs_unchanged"] == 5
    assert all(v == 0 for v in again["added"].values()), again["added"]
    for k in ("runs", "params", "tags", "points", "datasets", "artifacts", "versions",
              "aliases"):
        assert again["present"][k] == imported["in_source"][k], k


def test_bad_sources_are_named_and_store_nothing(cairn, tmp_path):
    missing = cairn.cli("import", "mlflow", f"sqlite:///{tmp_path / 'nope.db'}")
    assert missing.returncode != 0 and "nope.db" in missing.stderr
    other = tmp_path / "other.db"
    import sqlite3
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    out = cairn.cli("import", "mlflow", f"sqlite:///{other}")
    assert out.returncode != 0
    assert "is not an MLflow store" in out.stderr and "other.db" in out.stderr
