"""MLflow 3's logged models: `log_model` with real flavors, autologging, loading a model back,
registering `models:/<model_id>`, and every logged-model call — through the client against
`cairn serve`, and by raw HTTP against `cairn serve` and a real `mlflow server` (sqlite, in a
temporary directory, on loopback) in the same session, answers compared field by field with
ids and times set aside."""

import json
import re
from pathlib import Path

import mlflow
import numpy as np
import pytest
import requests
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression



def call(base: str, method: str, path: str, body=None, params=None):
    """One request to MLflow's REST API under `base`: (status, decoded JSON)."""
    r = requests.request(method, f"{base}/api/2.0/mlflow/{path}", json=body, params=params,
                         timeout=30)
    try:
        return r.status_code, r.json()
    except ValueError:
        return r.status_code, {"_text": r.text}


_TIMES = {"creation_timestamp_ms", "last_updated_timestamp_ms", "timestamp", "start_time",
          "end_time"}
# MLflow's server adds these to its errors; clients read the code and the message.
_ERROR_EXTRAS = {"sqlstate", "error_class"}


def normalized(answer, ids: dict):
    """An answer with ids replaced by their roles and times dropped; lists of keyed entries
    sorted (MLflow keeps insertion order, Cairn sorts by key)."""
    text = json.dumps(answer)
    for real, role in ids.items():
        text = text.replace(real, role)
    out = json.loads(text)

    def walk(v):
        if isinstance(v, dict):
            return {k: ("<exp>" if k == "experiment_id" else walk(x)) for k, x in v.items()
                    if k not in _TIMES | _ERROR_EXTRAS}
        if isinstance(v, str):
            # The experiment's id inside a model's artifact location.
            return re.sub(r"^mlflow-artifacts:/[^/]+/models/", "mlflow-artifacts:/<exp>/models/", v)
        if isinstance(v, list):
            items = [walk(x) for x in v]
            if items and all(isinstance(x, dict) and "key" in x for x in items):
                items.sort(key=lambda x: json.dumps(x, sort_keys=True))
            return items
        return v

    return walk(out)


# ---- through the client, against cairn -----------------------------------------------------


class Echo(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return [f"echo:{x}" for x in model_input]


def test_sklearn_autolog_keeps_params_metrics_and_the_model(cairn, client, experiment):
    mlflow.sklearn.autolog()
    try:
        X, y = load_iris(return_X_y=True)
        with mlflow.start_run() as run:
            LogisticRegression(max_iter=300).fit(X, y)
    finally:
        mlflow.sklearn.autolog(disable=True)
    got = client.get_run(run.info.run_id)
    assert len(got.data.params) >= 14
    assert got.data.params["max_iter"] == "300"
    assert 0.9 < got.data.metrics["training_accuracy_score"] <= 1.0
    [output] = got.outputs.model_outputs
    model = client.get_logged_model(output.model_id)
    assert model.status == LoggedModelStatus.READY
    assert model.source_run_id == run.info.run_id
    assert model.name == "model"
    assert model.params["max_iter"] == "300"
    # The training metrics are linked to the model, with the dataset they were measured on.
    linked = {m.key: m for m in model.metrics}
    assert linked["training_accuracy_score"].value == got.data.metrics["training_accuracy_score"]
    assert linked["training_accuracy_score"].run_id == run.info.run_id
    assert linked["training_accuracy_score"].model_id == model.model_id
    assert linked["training_accuracy_score"].dataset_name
    loaded = mlflow.sklearn.load_model(f"models:/{model.model_id}")
    assert list(loaded.predict(X[:2])) == [0, 0]
    # Cairn's own view: the run names the model it produced.
    shown = cairn.cli("runs", "show", run.info.run_id)
    assert shown.returncode == 0, shown.stderr
    assert model.model_id in shown.stdout


def test_pyfunc_log_model_then_load_and_predict(cairn, client, experiment):
    with mlflow.start_run() as run:
        mlflow.log_param("greeting", "echo")
        info = mlflow.pyfunc.log_model(name="echo", python_model=Echo())
    assert info.model_uri == f"models:/{info.model_id}"
    for uri in (info.model_uri, f"runs:/{run.info.run_id}/echo"):
        assert list(mlflow.pyfunc.load_model(uri).predict(["a", "b"])) == ["echo:a", "echo:b"]
    model = client.get_logged_model(info.model_id)
    assert model.params == {"greeting": "echo"}
    names = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert {"MLmodel", "python_model.pkl"} <= names
    # Cairn's own surface: the run's page (through /api/v1) and `cairn runs show --json`.
    listed = requests.get(f"{cairn.uri}/api/v1/runs/{run.info.run_id}/models", timeout=10).json()
    assert [(m["role"], m["model"]["id"], m["model"]["name"], m["model"]["status"])
            for m in listed] == [("output", info.model_id, "echo", "ready")]
    assert "MLmodel" in listed[0]["model"]["artifacts"]
    shown = cairn.run(run.info.run_id)
    assert [m["model"]["id"] for m in shown["logged_models"]] == [info.model_id]


def test_sklearn_log_model_outside_a_run_then_load(cairn, client, experiment):
    X, y = load_iris(return_X_y=True)
    clf = LogisticRegression(max_iter=300).fit(X, y)
    info = mlflow.sklearn.log_model(clf, name="iris", input_example=X[:2])
    model = client.get_logged_model(info.model_id)
    assert model.source_run_id in ("", None)
    assert model.status == LoggedModelStatus.READY
    pred = mlflow.pyfunc.load_model(info.model_uri).predict(X[:3])
    assert list(np.asarray(pred)) == list(clf.predict(X[:3]))


def test_register_a_logged_model_and_load_it_by_version(cairn, client, experiment):
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="echo", python_model=Echo())
    version = mlflow.register_model(info.model_uri, "echo-model")
    assert version.source == info.model_uri
    assert version.run_id == run.info.run_id
    loaded = mlflow.pyfunc.load_model(f"models:/echo-model/{version.version}")
    assert list(loaded.predict(["z"])) == ["echo:z"]
    # The model records the version made from it: the server notes it, then the client appends
    # it once more, as it does against MLflow's own server.
    tag = json.loads(client.get_logged_model(info.model_id).tags["mlflow.modelVersions"])
    assert tag == [{"name": "echo-model", "version": version.version}] * 2
    # Registering from `runs:/<run>/<name>` finds the same model.
    again = mlflow.register_model(f"runs:/{run.info.run_id}/echo", "echo-model")
    assert again.source == info.model_uri


def test_model_metrics_log_model_inputs_and_search(cairn, client, experiment):
    exp = experiment
    ids = {}
    with mlflow.start_run() as run:
        for name, acc, lr in [("small", 0.7, "0.1"), ("large", 0.9, "0.01"), ("mid", 0.8, "0.05")]:
            m = mlflow.initialize_logged_model(name=name, model_type="clf", params={"lr": lr},
                                               tags={"size": name})
            mlflow.log_metric("acc", acc, model_id=m.model_id, dataset=None)
            ids[name] = m.model_id
    with mlflow.start_run() as reader:
        # The fluent `log_inputs(models=…)` is Databricks-only; the client's call is not.
        client.log_inputs(reader.info.run_id,
                          models=[mlflow.entities.LoggedModelInput(ids["large"])])
    got = client.get_run(reader.info.run_id)
    assert [i.model_id for i in got.inputs.model_inputs] == [ids["large"]]

    def names(**kw):
        return [m.name for m in client.search_logged_models(experiment_ids=[exp], **kw)]

    assert names(order_by=[{"field_name": "metrics.acc", "ascending": False}]) == \
        ["large", "mid", "small"]
    assert names(filter_string="metrics.acc > 0.75",
                 order_by=[{"field_name": "name"}]) == ["large", "mid"]
    assert names(filter_string="params.lr = '0.1' AND tags.size = 'small'") == ["small"]
    assert names(filter_string="model_type = 'clf' AND status = 'PENDING'",
                 order_by=[{"field_name": "params.lr"}]) == ["large", "mid", "small"]
    page = client.search_logged_models(experiment_ids=[exp], max_results=2)
    rest = client.search_logged_models(experiment_ids=[exp], max_results=2, page_token=page.token)
    assert len(page) == 2 and len(rest) == 1 and rest.token is None
    assert {m.model_id for m in page} | {m.model_id for m in rest} == set(ids.values())
    # The DataFrame form the docs show.
    frame = mlflow.search_logged_models(experiment_ids=[exp], filter_string="name = 'mid'")
    assert list(frame["name"]) == ["mid"]
    with pytest.raises(MlflowException) as err:
        names(filter_string="params.lr > 1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "Invalid comparison operator for params.lr: '>'" in err.value.message


def test_every_logged_model_call_through_the_client(cairn, client, experiment, tmp_path):
    m = client.create_logged_model(experiment_id=experiment, name="calls",
                                   params={"a": "1"}, tags={"t": "v"}, model_type="demo")
    assert m.status == LoggedModelStatus.PENDING
    assert m.artifact_location.endswith(f"/models/{m.model_id}/artifacts")
    client.log_model_params(m.model_id, {"b": "2"})
    client.set_logged_model_tags(m.model_id, {"u": "w"})
    client.delete_logged_model_tag(m.model_id, "t")
    (tmp_path / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("hello")
    client.log_model_artifacts(m.model_id, str(tmp_path))
    listed = {f.path: f for f in client.list_logged_model_artifacts(m.model_id)}
    assert listed["weights.bin"].file_size == 1024 and listed["sub"].is_dir
    assert [f.path for f in client.list_logged_model_artifacts(m.model_id, "sub")] == \
        ["sub/notes.txt"]
    done = client.finalize_logged_model(m.model_id, LoggedModelStatus.READY)
    assert done.status == LoggedModelStatus.READY
    got = client.get_logged_model(m.model_id)
    assert got.params == {"a": "1", "b": "2"}
    assert got.tags == {"u": "w"}
    assert got.model_type == "demo"
    dl = Path(mlflow.artifacts.download_artifacts(f"models:/{m.model_id}",
                                                  dst_path=str(tmp_path / "dl")))
    assert (dl / "weights.bin").read_bytes() == bytes(range(256)) * 4
    assert (dl / "sub" / "notes.txt").read_text() == "hello"
    # The web UI's download of one file.
    r = requests.get(f"{cairn.uri}/ajax-api/2.0/mlflow/logged-models/{m.model_id}"
                     "/artifacts/files", params={"artifact_file_path": "sub/notes.txt"}, timeout=10)
    assert r.status_code == 200 and r.text == "hello"

    client.delete_logged_model(m.model_id)
    with pytest.raises(MlflowException) as err:
        client.get_logged_model(m.model_id)
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert err.value.message.endswith(f"Logged model with ID '{m.model_id}' not found.")
    assert client.search_logged_models(experiment_ids=[experiment]).to_list() == []
    # Deleting is a tombstone: the model is still there for whoever asks for deleted ones.
    kept = requests.get(f"{cairn.uri}/api/v1/logged-models/{m.model_id}", timeout=10).json()
    assert kept["model"]["deleted"]["by"] == "tester"
    assert {f["path"] for f in kept["files"]} == {"weights.bin", "sub/notes.txt"}


# ---- by raw HTTP, against cairn and MLflow's own server ------------------------------------


def _scenario(base: str):
    """The same calls on one server; returns each answer and the ids it made."""
    out, ids = {}, {}
    # Its own experiment: the reference server is shared by the whole session.
    s, e = call(base, "POST", "experiments/create", {"name": "logged-models-scenario"})
    exp = e["experiment_id"]
    s, run = call(base, "POST", "runs/create", {"experiment_id": exp})
    run_id = run["run"]["info"]["run_id"]
    ids[run_id] = "<run>"
    s, c = call(base, "POST", "logged-models", {
        "experiment_id": exp, "name": "cmp", "model_type": "clf", "source_run_id": run_id,
        "params": [{"key": "a", "value": "1"}, {"key": "b", "value": "x"}],
        "tags": [{"key": "team", "value": "ml"}]})
    out["create"] = (s, c)
    mid = c["model"]["info"]["model_id"]
    ids[mid] = "<model>"
    s, other = call(base, "POST", "logged-models", {"experiment_id": exp, "name": "other"})
    ids[other["model"]["info"]["model_id"]] = "<other>"
    out["get"] = call(base, "GET", f"logged-models/{mid}")
    out["params"] = call(base, "POST", f"logged-models/{mid}/params",
                         {"model_id": mid, "params": [{"key": "c", "value": "3"}]})
    out["tags"] = call(base, "PATCH", f"logged-models/{mid}/tags",
                       {"tags": [{"key": "stage", "value": "dev"}]})
    out["delete_tag"] = call(base, "DELETE", f"logged-models/{mid}/tags/stage")
    out["delete_missing_tag"] = call(base, "DELETE", f"logged-models/{mid}/tags/nope")
    out["metric"] = call(base, "POST", "runs/log-metric", {
        "run_id": run_id, "key": "acc", "value": 0.75, "timestamp": 1000, "step": 2,
        "model_id": mid, "dataset_name": "eval", "dataset_digest": "abc"})
    out["batch"] = call(base, "POST", "runs/log-batch", {"run_id": run_id, "metrics": [
        {"key": "loss", "value": 0.5, "timestamp": 1000, "step": 2, "model_id": mid}]})
    out["outputs"] = call(base, "POST", "runs/outputs",
                          {"run_id": run_id, "models": [{"model_id": mid, "step": 2}]})
    out["inputs"] = call(base, "POST", "runs/log-inputs",
                         {"run_id": run_id, "models": [{"model_id": mid}]})
    s, r = call(base, "GET", "runs/get", params={"run_id": run_id})
    out["run_links"] = (s, {"inputs": r["run"].get("inputs", {}).get("model_inputs"),
                            "outputs": r["run"].get("outputs")})
    out["finalize"] = call(base, "PATCH", f"logged-models/{mid}",
                           {"model_id": mid, "status": "LOGGED_MODEL_READY"})
    out["get_after"] = call(base, "GET", f"logged-models/{mid}")
    for name, body in {
        "search_all": {"experiment_ids": [exp]},
        "search_name": {"experiment_ids": [exp], "filter": "name = 'cmp'"},
        "search_metric": {"experiment_ids": [exp], "filter": "metrics.acc > 0.5"},
        "search_params_tags": {"experiment_ids": [exp],
                               "filter": "params.a = '1' AND tags.team = 'ml'"},
        "search_in_like": {"experiment_ids": [exp], "filter": "name IN ('cmp', 'zz') AND "
                           "model_type LIKE 'cl%'"},
        "search_order": {"experiment_ids": [exp],
                         "order_by": [{"field_name": "metrics.acc", "ascending": False}]},
        "search_order_name": {"experiment_ids": [exp], "order_by": [{"field_name": "name"}]},
        "search_page": {"experiment_ids": [exp], "max_results": 1,
                        "order_by": [{"field_name": "name"}]},
        "search_none": {"experiment_ids": [exp], "filter": "metrics.acc > 0.9"},
    }.items():
        s, a = call(base, "POST", "logged-models/search", body)
        # The page token is opaque: that there is one is what a client relies on.
        if "next_page_token" in a:
            a["next_page_token"] = "<token>"
        out[name] = (s, a)
    out["list_empty"] = call(base, "GET", f"logged-models/{mid}/artifacts/directories")
    requests.put(f"{base}/api/2.0/mlflow-artifacts/artifacts/{exp}/models/{mid}/artifacts/MLmodel",
                 data=b"flavors: {}\n", timeout=10)
    requests.put(f"{base}/api/2.0/mlflow-artifacts/artifacts/{exp}/models/{mid}/artifacts/d/w.bin",
                 data=b"\x00" * 10, timeout=10)
    out["list"] = call(base, "GET", f"logged-models/{mid}/artifacts/directories")
    out["list_sub"] = call(base, "GET", f"logged-models/{mid}/artifacts/directories",
                           params={"artifact_directory_path": "d"})
    r = requests.get(f"{base}/api/2.0/mlflow-artifacts/artifacts",
                     params={"path": f"{exp}/models/{mid}/artifacts"}, timeout=10)
    out["proxy_list"] = (r.status_code, r.json())
    r = requests.get(f"{base}/api/2.0/mlflow-artifacts/artifacts/{exp}/models/{mid}/artifacts/MLmodel",
                     timeout=10)
    out["proxy_get"] = (r.status_code, {"_bytes": r.text})
    r = requests.get(f"{base}/ajax-api/2.0/mlflow/logged-models/{mid}/artifacts/files",
                     params={"artifact_file_path": "d/w.bin"}, timeout=10)
    out["ui_file"] = (r.status_code, {"_len": len(r.content)})
    out["delete"] = call(base, "DELETE", f"logged-models/{mid}")
    out["get_deleted"] = call(base, "GET", f"logged-models/{mid}")
    s, a = call(base, "GET", f"logged-models/{mid}", params={"allow_deleted": "true"})
    out["get_allow_deleted"] = (s, a)
    out["search_after_delete"] = call(base, "POST", "logged-models/search",
                                      {"experiment_ids": [exp], "filter": "name = 'cmp'"})
    return out, ids


# What Cairn answers differently on purpose (MLflow's own behaviour there is a bug: an
# internal error for a user's mistake, or a dataset filter that never matches).
_ERRORS = {
    "unknown_model": ("GET", "logged-models/m-00000000000000000000000000000000", None),
    "not_an_id": ("GET", "logged-models/nope", None),
    "finalize_unknown": ("PATCH", "logged-models/m-00000000000000000000000000000000",
                         {"model_id": "m-00000000000000000000000000000000", "status": 2}),
    "finalize_no_status": ("PATCH", "logged-models/m-00000000000000000000000000000000",
                           {"model_id": "m-00000000000000000000000000000000"}),
    "create_no_experiment": ("POST", "logged-models", {"name": "x"}),
    "create_unknown_experiment": ("POST", "logged-models", {"experiment_id": "12345"}),
    "create_bad_name": ("POST", "logged-models", {"experiment_id": "0", "name": "a/b"}),
    "create_int_experiment": ("POST", "logged-models", {"experiment_id": 0}),
    "create_name_type": ("POST", "logged-models", {"experiment_id": "0", "name": 123}),
    "create_params_type": ("POST", "logged-models", {"experiment_id": "0", "params": "x"}),
    "search_no_experiments": ("POST", "logged-models/search", {}),
    "search_experiments_type": ("POST", "logged-models/search", {"experiment_ids": "0"}),
    "search_bad_experiment": ("POST", "logged-models/search", {"experiment_ids": ["abc"]}),
    "search_max_results_type": ("POST", "logged-models/search",
                                {"experiment_ids": ["0"], "max_results": "abc"}),
    "search_bad_entity": ("POST", "logged-models/search",
                          {"experiment_ids": ["0"], "filter": "bogus.x = 1"}),
    "search_bad_param_op": ("POST", "logged-models/search",
                            {"experiment_ids": ["0"], "filter": "params.a > 1"}),
    "search_bad_metric_op": ("POST", "logged-models/search",
                             {"experiment_ids": ["0"], "filter": "metrics.a LIKE 1"}),
    "search_or": ("POST", "logged-models/search",
                  {"experiment_ids": ["0"], "filter": "name = 'a' OR name = 'b'"}),
    "search_two_statements": ("POST", "logged-models/search",
                              {"experiment_ids": ["0"], "filter": "name = 'a'; name = 'b'"}),
    "search_bad_order": ("POST", "logged-models/search",
                         {"experiment_ids": ["0"], "order_by": [{"field_name": "bogus"}]}),
    "search_dataset_without_name": ("POST", "logged-models/search",
                                    {"experiment_ids": ["0"],
                                     "datasets": [{"dataset_digest": "x"}]}),
    "outputs_without_models": ("POST", "runs/outputs",
                               {"run_id": "0123456789abcdef0123456789abcdef"}),
    "params_without_model_id": ("POST", "logged-models/m-00000000000000000000000000000000/params",
                                {"params": []}),
}


def test_answers_match_mlflows_server_field_by_field(cairn, mlflow_server):
    ours, our_ids = _scenario(cairn.uri)
    theirs, their_ids = _scenario(mlflow_server.uri)
    assert ours.keys() == theirs.keys()
    for name in ours:
        a = normalized(ours[name], our_ids)
        b = normalized(theirs[name], their_ids)
        assert a == b, f"{name}: cairn answered\n{a}\nmlflow answered\n{b}"


@pytest.mark.parametrize("case", sorted(_ERRORS))
def test_refusals_match_mlflows_server(cairn, mlflow_server, case):
    method, path, body = _ERRORS[case]
    ours = call(cairn.uri, method, path, body)
    theirs = call(mlflow_server.uri, method, path, body)
    # MLflow's server adds `sqlstate`/`error_class`; the code and the words are what clients read.
    strip = lambda a: (a[0], {k: a[1].get(k) for k in ("error_code", "message")})  # noqa: E731
    assert strip(ours) == strip(theirs)


def test_mistakes_mlflow_answers_with_an_internal_error_are_named(cairn):
    for filt, words in [("foo = 1", "Invalid attribute key 'foo'"),
                        ("metrics.acc = 'x'", "Invalid value 'x' for metrics.acc"),
                        ("creation_time > abc", "Invalid value 'abc'")]:
        s, a = call(cairn.uri, "POST", "logged-models/search",
                    {"experiment_ids": ["0"], "filter": filt})
        assert (s, a["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), a
        assert words in a["message"], a
    s, a = call(cairn.uri, "POST", "logged-models",
                {"experiment_id": "0", "params": [{"key": 1, "value": "a"}]})
    assert (s, a["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert "'params[0].key'" in a["message"], a
    s, a = call(cairn.uri, "PATCH", "logged-models/m-00000000000000000000000000000000",
                {"model_id": "x", "status": "BOGUS"})
    assert s == 404, a
    s, run = call(cairn.uri, "POST", "runs/create", {"experiment_id": "0"})
    run_id = run["run"]["info"]["run_id"]
    s, a = call(cairn.uri, "POST", "runs/log-metric", {
        "run_id": run_id, "key": "acc", "value": 1.0, "model_id": "m-nope"})
    assert (s, a["message"]) == (404, "Logged model with ID 'm-nope' not found."), a
    # Nothing of a refused metric is stored on the run.
    s, r = call(cairn.uri, "GET", "runs/get", params={"run_id": run_id})
    assert r["run"]["data"]["metrics"] == []
