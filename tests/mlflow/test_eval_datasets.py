"""MLflow 3's evaluation datasets API (`/api/3.0/mlflow/datasets/…`) through the real client
(`MlflowClient`'s dataset calls, `mlflow.genai.datasets`), beside a real `mlflow server` in the
same session: each answer compared field by field once identities and clocks are set aside."""

import json
import uuid

import mlflow
import pytest
from mlflow.genai import datasets as genai_datasets

from reference import Http, normalise

# What two servers may answer differently: ids, clocks, the digest (a hash of the update time).
IGNORED = {"dataset_id", "dataset_record_id", "created_time", "last_update_time", "digest",
           "next_page_token"}


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _both(cairn, mlflow_server):
    """(http, client) for Cairn and for MLflow's server."""
    return ((Http(cairn.uri), mlflow.MlflowClient(cairn.uri)),
            (mlflow_server.http, mlflow.MlflowClient(mlflow_server.uri)))


def _dataset(d, experiments=None) -> dict:
    """A client `EvaluationDataset` as comparable fields (its experiments as their names)."""
    out = {k: getattr(d, k) for k in ("name", "tags", "created_by", "last_updated_by")}
    out["schema"] = json.loads(d.schema) if d.schema else None
    out["profile"] = d.profile
    if experiments is not None:
        out["experiments"] = sorted(experiments[e] for e in d._experiment_ids or [])
    return out


def _records(http, dataset_id) -> list:
    status, body = http.get(f"/api/3.0/mlflow/datasets/{dataset_id}/records")
    assert status == 200, body
    records = json.loads(body["records"])
    for r in records:
        for k in IGNORED:
            r.pop(k, None)
    return sorted(records, key=lambda r: json.dumps(r["inputs"], sort_keys=True))


RECORDS = [
    {"inputs": {"question": "What is MLflow?", "n": 1},
     "expectations": {"expected_response": "A platform"},
     "tags": {"mlflow.user": "bob", "team": "ml"}},
    {"inputs": {"question": "What is Cairn?"}, "outputs": "a tracker",
     "source": {"source_type": "trace", "source_data": {"trace_id": "tr-123"}}},
    {"inputs": {"question": "Why?"}, "outputs": None,
     "source": {"source_type": "HUMAN", "source_data": {"source_id": "ann"}}},
]


def test_datasets_lifecycle_matches_mlflow(cairn, mlflow_server):
    got = []
    for http, client in _both(cairn, mlflow_server):
        exps = {client.create_experiment(_unique("ds-a")): "a",
                client.create_experiment(_unique("ds-b")): "b"}
        ea, eb = list(exps)
        steps = {}
        d = client.create_dataset(_unique("qa").rsplit("-", 1)[0],
                                  tags={"stage": "dev", "mlflow.user": "carol"},
                                  experiment_id=[ea])
        steps["created"] = _dataset(d, exps)
        steps["got"] = _dataset(client.get_dataset(d.dataset_id))
        steps["experiment_ids"] = sorted(exps[e] for e in
                                         client._tracking_client.store.get_dataset_experiment_ids(d.dataset_id))
        # Records: inserted, then merged by their inputs (the same inputs in another order).
        steps["upsert1"] = client._tracking_client.store.upsert_dataset_records(
            d.dataset_id, RECORDS)
        steps["upsert2"] = client._tracking_client.store.upsert_dataset_records(
            d.dataset_id, [{"inputs": {"n": 1, "question": "What is MLflow?"},
                            "expectations": {"score": 0.5}, "outputs": "replaced",
                            "tags": {"extra": "y"}},
                           {"inputs": {"question": "new"}, "expectations": {"k": [1, 2]}}])
        steps["after_upsert"] = _dataset(client.get_dataset(d.dataset_id))
        steps["records"] = _records(http, d.dataset_id)
        # Pages of records.
        status, page = http.call("GET", f"/api/3.0/mlflow/datasets/{d.dataset_id}/records"
                                        "?max_results=2")
        steps["page"] = (status, len(json.loads(page["records"])), "next_page_token" in page)
        status, rest = http.call(
            "GET", f"/api/3.0/mlflow/datasets/{d.dataset_id}/records?max_results=2"
                   f"&page_token={page['next_page_token']}")
        steps["rest"] = (status, len(json.loads(rest["records"])), "next_page_token" in rest)
        # Tags: set (an upsert, None passed over), delete (a missing one is no error).
        client.set_dataset_tags(d.dataset_id, {"stage": "prod", "owner": "dan", "gone": None})
        client.delete_dataset_tag(d.dataset_id, "owner")
        client.delete_dataset_tag(d.dataset_id, "never-there")
        steps["tags"] = client.get_dataset(d.dataset_id).tags
        # Experiments: add (twice is once), remove (one not linked is passed over).
        added = client.add_dataset_to_experiments(d.dataset_id, [eb, ea])
        steps["added"] = _dataset(added, exps)
        steps["after_add"] = sorted(exps[e] for e in
                                    client._tracking_client.store.get_dataset_experiment_ids(d.dataset_id))
        removed = client.remove_dataset_from_experiments(d.dataset_id, [ea])
        steps["removed"] = _dataset(removed, exps)
        steps["after_remove"] = sorted(exps[e] for e in
                                       client._tracking_client.store.get_dataset_experiment_ids(d.dataset_id))
        # Deleting records counts them off the profile.
        ids = [r["dataset_record_id"] for r in json.loads(
            http.get(f"/api/3.0/mlflow/datasets/{d.dataset_id}/records")[1]["records"])]
        steps["deleted_records"] = client._tracking_client.store.delete_dataset_records(
            d.dataset_id, ids[:2] + ["dr-00000000000000000000000000000000"])
        steps["after_delete"] = _dataset(client.get_dataset(d.dataset_id))
        steps["deleted_all"] = client._tracking_client.store.delete_dataset_records(
            d.dataset_id, ids)
        steps["profile_empty"] = client.get_dataset(d.dataset_id).profile
        # Raw answers, as the web UI would read them.
        for name, (method, path, body) in {
            "raw_get": ("GET", f"/api/3.0/mlflow/datasets/{d.dataset_id}", None),
            "raw_ajax": ("GET", f"/ajax-api/3.0/mlflow/datasets/{d.dataset_id}", None),
            "raw_exp_ids_none": ("GET", "/api/3.0/mlflow/datasets/"
                                        "d-00000000000000000000000000000000/experiment-ids", None),
        }.items():
            status, answer = http.call(method, path, body)
            if isinstance(answer, dict) and "dataset" in answer:
                answer["dataset"].pop("experiment_ids", None)
                # JSON carried as text: the same object (Cairn writes keys sorted, MLflow in
                # the order they came).
                for k in ("tags", "schema"):
                    answer["dataset"][k] = json.loads(answer["dataset"][k])
            steps[name] = [status, answer]
        # Delete: gone for get, a second delete is no error.
        client.delete_dataset(d.dataset_id)
        with pytest.raises(mlflow.exceptions.MlflowException) as e:
            client.get_dataset(d.dataset_id)
        steps["get_deleted"] = (e.value.error_code, e.value.message.replace(d.dataset_id, "ID"))
        client.delete_dataset(d.dataset_id)
        got.append(steps)
    ours, theirs = got
    for k in theirs:
        a, b = normalise(ours[k], IGNORED), normalise(theirs[k], IGNORED)
        assert a == b, f"{k}:\n  cairn:  {a}\n  mlflow: {b}"


def test_search_finds_by_name_tags_times_and_experiment(cairn, mlflow_server):
    got = []
    for http, client in _both(cairn, mlflow_server):
        tag = _unique("run")
        exp = client.create_experiment(_unique("search"))
        made = []
        for name, team in (("alpha", "ml"), ("beta", "ml"), ("gamma", "ops")):
            made.append(client.create_dataset(
                f"{tag}-{name}", tags={"team": team, "batch": tag},
                experiment_id=[exp] if name != "gamma" else None))
        results = {}
        for f, order in [
            (f"tags.batch = '{tag}'", ["name DESC"]),
            (f"name = '{tag}-alpha'", None),
            (f"name IN ('{tag}-alpha', '{tag}-gamma')", ["name"]),
            (f"name LIKE '{tag}-%a' AND tags.team = 'ml'", ["name ASC"]),
            (f"tags.batch = '{tag}' AND tags.team != 'ml'", None),
            (f"tags.batch = '{tag}' AND created_time >= {made[1].created_time}", ["name"]),
            (f"tags.batch ILIKE '{tag.upper()}'", ["last_update_time DESC", "name"]),
            (f"tags.batch = '{tag}' AND name > '{tag}-alpha'", ["name"]),
        ]:
            page = client.search_datasets(filter_string=f, order_by=order)
            key = (f.replace(tag, "T").replace(tag.upper(), "T")
                   .replace(str(made[1].created_time), "CREATED"))
            results[key] = [d.name.replace(tag, "T") for d in page]
        results["by experiment"] = sorted(
            d.name.replace(tag, "T") for d in client.search_datasets(experiment_ids=[exp]))
        first = client.search_datasets(filter_string=f"tags.batch = '{tag}'",
                                       order_by=["name"], max_results=2)
        rest = client.search_datasets(filter_string=f"tags.batch = '{tag}'",
                                      order_by=["name"], max_results=2, page_token=first.token)
        results["pages"] = ([d.name.replace(tag, "T") for d in first],
                            [d.name.replace(tag, "T") for d in rest], rest.token)
        # The GET form, as the web UI may send it.
        status, body = http.get(f"/ajax-api/3.0/mlflow/datasets/search?filter_string=name%20%3D%20"
                                f"%27{tag}-beta%27&max_results=5")
        results["get"] = (status, [d["name"].replace(tag, "T") for d in body["datasets"]])
        # mlflow.genai.datasets finds one by name.
        mlflow.set_tracking_uri(client.tracking_uri)
        try:
            found = genai_datasets.get_dataset(name=f"{tag}-gamma")
            results["genai by name"] = (found.name.replace(tag, "T"), found.tags["team"])
        finally:
            mlflow.set_tracking_uri(cairn.uri)
        got.append(results)
    assert got[0] == got[1]


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/api/3.0/mlflow/datasets/create", {}),
    ("POST", "/api/3.0/mlflow/datasets/create", {"name": 123}),
    ("POST", "/api/3.0/mlflow/datasets/create", {"name": "x", "experiment_ids": "1"}),
    ("POST", "/api/3.0/mlflow/datasets/search", {"max_results": 0}),
    ("POST", "/api/3.0/mlflow/datasets/search", {"max_results": 50001}),
    ("POST", "/api/3.0/mlflow/datasets/search", {"filter_string": "colour = 'x'"}),
    ("POST", "/api/3.0/mlflow/datasets/search", {"filter_string": "tags.k > 'x'"}),
    ("POST", "/api/3.0/mlflow/datasets/search", {"filter_string": "created_time LIKE 'x'"}),
    ("POST", "/api/3.0/mlflow/datasets/search", {"filter_string": "created_time LIKE 5"}),
    ("POST", "/api/3.0/mlflow/datasets/search", {"filter_string": "name > '~~'"}),
    ("POST", "/api/3.0/mlflow/datasets/search", {"order_by": ["colour"]}),
    ("GET", "/api/3.0/mlflow/datasets/d-00000000000000000000000000000000", None),
    ("PATCH", "/api/3.0/mlflow/datasets/d-00000000000000000000000000000000/tags",
     {"tags": "{\"a\": \"b\"}"}),
    ("PATCH", "/api/3.0/mlflow/datasets/d-00000000000000000000000000000000/tags", {}),
    ("POST", "/api/3.0/mlflow/datasets/d-00000000000000000000000000000000/add-experiments",
     {"experiment_ids": ["0"]}),
    ("POST", "/api/3.0/mlflow/datasets/d-00000000000000000000000000000000/remove-experiments",
     {"experiment_ids": ["0"]}),
    ("DELETE", "/api/3.0/mlflow/datasets/d-00000000000000000000000000000000", None),
    ("DELETE", "/api/3.0/mlflow/datasets/d-00000000000000000000000000000000/tags/k", None),
])
def test_refusals_read_as_mlflows(cairn, mlflow_server, method, path, body):
    ours = Http(cairn.uri).call(method, path, body)
    theirs = mlflow_server.http.call(method, path, body)
    assert ours[0] == theirs[0], (ours, theirs)
    if theirs[0] != 200:
        # MLflow lists the valid keys as a Python set, in an order that changes between runs.
        assert (ours[1]["error_code"], ours[1]["message"].split("{")[0]) == \
            (theirs[1]["error_code"], theirs[1]["message"].split("{")[0])
    else:
        assert ours[1] == theirs[1]


def test_adding_an_unknown_experiment_is_refused_as_mlflow(cairn, mlflow_server):
    got = []
    for http, client in _both(cairn, mlflow_server):
        d = client.create_dataset(_unique("lonely"))
        status, body = http.post(f"/api/3.0/mlflow/datasets/{d.dataset_id}/add-experiments",
                                 {"experiment_ids": ["987654321"]})
        got.append((status, body["error_code"], body["message"]))
        assert client._tracking_client.store.get_dataset_experiment_ids(d.dataset_id) == []
    assert got[0] == got[1]


def test_a_dataset_is_bounded_and_refusals_name_what(cairn):
    http = Http(cairn.uri)
    client = mlflow.MlflowClient(cairn.uri)
    d = client.create_dataset(_unique("bounded"))
    status, body = http.post(f"/api/3.0/mlflow/datasets/{d.dataset_id}/records",
                             {"records": json.dumps([{"inputs": {"q": i}} for i in range(10001)])})
    assert (status, body["error_code"]) == (400, "INVALID_PARAMETER_VALUE"), body
    assert "at most 10000 records" in body["message"]
    for bad, says in [("[1]", "record 0 is not a JSON object"),
                      ('[{"inputs": 3}]', "inputs of record 0"),
                      ('[{"inputs": {}, "source": {"source_type": "radio"}}]',
                       "Invalid dataset record source type: RADIO"),
                      ("{", "not JSON")]:
        status, body = http.post(f"/api/3.0/mlflow/datasets/{d.dataset_id}/records",
                                 {"records": bad})
        assert status == 400 and says in body["message"], (bad, body)
    status, body = http.post("/api/3.0/mlflow/datasets/search",
                             {"filter_string": "name = 'a' AND " * 200 + "name = 'a'"})
    assert status == 400 and "comparisons" in body["message"], body
    # Nothing of the refused upserts was stored.
    assert client.get_dataset(d.dataset_id).profile is None
