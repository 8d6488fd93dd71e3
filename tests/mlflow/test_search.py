"""`mlflow.search_runs` and `MlflowClient.search_runs`: filters, order, paging."""

import mlflow
import pandas as pd
import pytest
from mlflow.entities import ViewType

# One row per run: the values the filters below select on.
SPEC = [
    # name,   optimizer, acc,  team,       status,     dataset
    ("r0", "adam", 0.61, "vision-a", "FINISHED", "A"),
    ("r1", "sgd", 0.72, "vision-b", "FINISHED", "B"),
    ("r2", "adam", 0.55, "vision-a", "FINISHED", "B"),
    ("r3", "sgd", 0.83, "vision-a", "FINISHED", "A"),
    ("r4", "adam", 0.68, "nlp", "FINISHED", "B"),
    ("r5", "sgd", 0.90, "nlp", "FAILED", "B"),
    ("r6", "adam", 0.47, "nlp", "RUNNING", "A"),
    ("r7", "adam", 0.76, "vision-b", "KILLED", "A"),
]
NAME, OPT, ACC, TEAM, STATUS, DATA = range(6)


@pytest.fixture(scope="module")
def catalog(cairn):
    """An experiment holding the runs of SPEC; returns (experiment id, run ids by name, digests)."""
    client = mlflow.MlflowClient()
    exp = client.create_experiment("search")
    datasets = {
        "A": mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 3]}), source="s3://bucket/a.parquet", name="set-a"),
        "B": mlflow.data.from_pandas(pd.DataFrame({"x": [4, 5, 6, 7]}), source="s3://bucket/b.parquet", name="set-b"),
    }
    ids = {}
    for name, opt, acc, team, status, data in SPEC:
        with mlflow.start_run(experiment_id=exp, run_name=name) as run:
            mlflow.log_params({"optimizer": opt, "seed": len(ids)})
            mlflow.log_metrics({"acc": acc - 0.1}, step=0)
            mlflow.log_metrics({"acc": acc}, step=1)
            mlflow.set_tag("team", team)
            mlflow.log_input(datasets[data], context="train")
            ids[name] = run.info.run_id
        if status != "FINISHED":
            client.update_run(run.info.run_id, status=status)
    return exp, ids, {k: d.digest for k, d in datasets.items()}


def names(ids, runs):
    by_id = {v: k for k, v in ids.items()}
    return [by_id[r.info.run_id] for r in runs]


def expect(pred):
    return {row[NAME] for row in SPEC if pred(row)}


@pytest.mark.parametrize(
    ("filter_string", "pred"),
    [
        ("metrics.acc > 0.7", lambda r: r[ACC] > 0.7),
        ("metrics.acc <= 0.61", lambda r: r[ACC] <= 0.61),
        ("params.optimizer = 'adam'", lambda r: r[OPT] == "adam"),
        ("params.optimizer != 'adam'", lambda r: r[OPT] != "adam"),
        ("tags.team LIKE 'vision%'", lambda r: r[TEAM].startswith("vision")),
        ("tags.team ILIKE 'VISION-_'", lambda r: r[TEAM].startswith("vision-")),
        ("attributes.status = 'FAILED'", lambda r: r[STATUS] == "FAILED"),
        ("attributes.status IN ('RUNNING', 'KILLED')", lambda r: r[STATUS] in ("RUNNING", "KILLED")),
        ("attributes.run_name = 'r3'", lambda r: r[NAME] == "r3"),
        ("metrics.acc > 0.6 and params.optimizer = 'adam' and tags.team != 'nlp'",
         lambda r: r[ACC] > 0.6 and r[OPT] == "adam" and r[TEAM] != "nlp"),
        ("datasets.context = 'train'", lambda r: True),
        ("params.missing = 'x'", lambda r: False),
    ],
)
def test_filters_select_the_runs_they_describe(catalog, filter_string, pred):
    exp, ids, _ = catalog
    runs = mlflow.search_runs(experiment_ids=[exp], filter_string=filter_string, output_format="list")
    assert set(names(ids, runs)) == expect(pred)
    assert len(runs) == len(set(r.info.run_id for r in runs))


def test_dataset_digest_filter(catalog):
    exp, ids, digests = catalog
    for key in ("A", "B"):
        runs = mlflow.search_runs(
            experiment_ids=[exp], filter_string=f"datasets.digest = '{digests[key]}'", output_format="list")
        assert set(names(ids, runs)) == expect(lambda r, k=key: r[DATA] == k)


def test_dataset_name_filter_matches_the_dataset_name_not_its_context(catalog):
    exp, ids, _ = catalog
    # In MLflow `datasets.name` is the dataset's name (`context` is the role it played).
    runs = mlflow.search_runs(
        experiment_ids=[exp], filter_string="datasets.name = 'set-a'", output_format="list")
    assert set(names(ids, runs)) == expect(lambda r: r[DATA] == "A")


def test_search_runs_as_a_dataframe(catalog):
    exp, ids, _ = catalog
    df = mlflow.search_runs(experiment_ids=[exp], filter_string="params.optimizer = 'sgd'",
                            order_by=["metrics.acc ASC"])
    sgd = sorted((r for r in SPEC if r[OPT] == "sgd"), key=lambda r: r[ACC])
    assert list(df["run_id"]) == [ids[r[NAME]] for r in sgd]
    assert list(df["metrics.acc"]) == [r[ACC] for r in sgd]
    assert list(df["params.optimizer"]) == ["sgd"] * len(sgd)
    assert list(df["tags.team"]) == [r[TEAM] for r in sgd]
    assert list(df["status"]) == [r[STATUS] for r in sgd]


@pytest.mark.parametrize("page_size", [1, 2, 3, 5])
@pytest.mark.parametrize(
    ("order_by", "key", "reverse"),
    [
        (["metrics.acc DESC"], lambda r: r[ACC], True),
        (["metrics.acc ASC"], lambda r: r[ACC], False),
        (["params.optimizer ASC", "metrics.acc DESC"], lambda r: (r[OPT], -r[ACC]), False),
        (["attributes.run_name DESC"], lambda r: r[NAME], True),
    ],
)
def test_pages_see_every_run_once_in_order(catalog, client, page_size, order_by, key, reverse):
    exp, ids, _ = catalog
    seen, token, pages = [], None, 0
    while True:
        page = client.search_runs([exp], max_results=page_size, order_by=order_by, page_token=token,
                                  run_view_type=ViewType.ALL)
        assert len(page) <= page_size
        seen.extend(page)
        pages += 1
        token = page.token
        if not token:
            break
        assert len(page) == page_size, "a page before the last one came back short"
        assert pages <= len(SPEC), "paging does not end"
    assert names(ids, seen) == [r[NAME] for r in sorted(SPEC, key=key, reverse=reverse)]
    assert pages == -(-len(SPEC) // page_size)


def test_ties_are_broken_stably_across_pages(catalog, client):
    exp, ids, _ = catalog
    seen, token = [], None
    while True:
        page = client.search_runs([exp], order_by=["tags.team ASC"], max_results=2, page_token=token)
        seen.extend(page)
        token = page.token
        if not token:
            break
    got = names(ids, seen)
    assert sorted(got) == sorted(r[NAME] for r in SPEC), "a run was skipped or seen twice"
    teams = [dict((r[NAME], r[TEAM]) for r in SPEC)[n] for n in got]
    assert teams == sorted(teams)


def test_without_order_by_newest_runs_come_first(catalog, client):
    exp, ids, _ = catalog
    runs = client.search_runs([exp], max_results=100)
    starts = [r.info.start_time for r in runs]
    assert starts == sorted(starts, reverse=True)
    assert set(names(ids, runs)) == {r[NAME] for r in SPEC}


def test_deleted_runs_leave_the_default_view(catalog, client):
    exp, ids, _ = catalog
    client.delete_run(ids["r2"])
    try:
        active = names(ids, client.search_runs([exp], run_view_type=ViewType.ACTIVE_ONLY))
        deleted = names(ids, client.search_runs([exp], run_view_type=ViewType.DELETED_ONLY))
        every = names(ids, client.search_runs([exp], run_view_type=ViewType.ALL))
        assert "r2" not in active and deleted == ["r2"] and "r2" in every
        assert client.get_run(ids["r2"]).info.lifecycle_stage == "deleted"
    finally:
        client.restore_run(ids["r2"])
    assert client.get_run(ids["r2"]).info.lifecycle_stage == "active"
    assert "r2" in names(ids, client.search_runs([exp]))


def test_a_bad_filter_is_refused_with_invalid_parameter_value(catalog, client):
    exp, _, _ = catalog
    with pytest.raises(mlflow.exceptions.MlflowException) as err:
        client.search_runs([exp], filter_string="metrics.acc >>> 1")
    assert err.value.error_code == "INVALID_PARAMETER_VALUE"
