"""MLflow's rules as its client sees them: params are immutable, tags overwrite, metrics append,
metric histories page; and what Cairn makes of MLflow's system tags."""

import math

import mlflow
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException

from conftest import CLIENT_USER


def test_relogging_a_param_with_another_value_is_refused(cairn, client, experiment):
    with mlflow.start_run() as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_param("lr", 0.01)  # the same value again is fine
        with pytest.raises(MlflowException) as err:
            mlflow.log_param("lr", 0.02)
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
        assert "lr" in str(err.value)
        # A batch with one changed param stores none of it.
        with pytest.raises(MlflowException) as err:
            mlflow.log_params({"batch_size": 32, "lr": 0.5})
        assert err.value.error_code == "INVALID_PARAMETER_VALUE"
    rid = run.info.run_id
    assert client.get_run(rid).data.params == {"lr": "0.01"}
    assert cairn.run(rid)["params"] == {"lr": "0.01"}


def test_tags_overwrite_and_can_be_deleted(cairn, client, experiment):
    with mlflow.start_run() as run:
        mlflow.set_tag("stage", "dev")
        mlflow.set_tag("stage", "staging")
        mlflow.set_tags({"stage": "prod", "owner-team": "vision"})
        mlflow.set_tag("scratch", "x")
        mlflow.delete_tag("scratch")
    rid = run.info.run_id
    tags = client.get_run(rid).data.tags
    assert tags["stage"] == "prod" and tags["owner-team"] == "vision" and "scratch" not in tags
    stored = cairn.run(rid)["tags"]
    assert stored["stage"] == "prod" and stored["owner-team"] == "vision" and "scratch" not in stored
    with pytest.raises(MlflowException) as err:
        client.delete_tag(rid, "never-set")
    assert err.value.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")


def test_metrics_append_even_at_the_same_step(cairn, client, experiment):
    with mlflow.start_run() as run:
        mlflow.log_metric("loss", 0.9, step=5, timestamp=1_000)
        mlflow.log_metric("loss", 0.8, step=5, timestamp=2_000)
        mlflow.log_metric("loss", 0.7, step=4, timestamp=3_000)
    rid = run.info.run_id
    got = [(m.step, m.timestamp, m.value) for m in client.get_metric_history(rid, "loss")]
    assert sorted(got) == sorted([(5, 1_000, 0.9), (5, 2_000, 0.8), (4, 3_000, 0.7)])
    stored = cairn.metric(rid, "loss")
    assert sorted((p["step"], p["ts_ms"], p["value"]) for p in stored) == sorted(got)
    assert cairn.run(rid)["metrics"]["loss"]["count"] == 3


def test_log_batch_through_the_client(cairn, client, experiment):
    run = client.create_run(experiment, run_name="batched")
    rid = run.info.run_id
    metrics = [Metric("m", float(i) / 7, 1_700_000_000_000 + i, i) for i in range(1000)]
    params = [Param(f"p{i:03}", str(i)) for i in range(100)]
    tags = [RunTag(f"t{i:03}", "v" * i) for i in range(100)]
    client.log_batch(rid, metrics=metrics, params=params, tags=tags)
    client.set_terminated(rid)
    got = client.get_run(rid)
    assert got.data.params == {p.key: p.value for p in params}
    for t in tags:
        assert got.data.tags[t.key] == t.value
    history = client.get_metric_history(rid, "m")
    assert [(m.step, m.timestamp, m.value) for m in history] == [
        (m.step, m.timestamp, m.value) for m in metrics]
    stored = cairn.run(rid)
    assert stored["params"] == {p.key: p.value for p in params}
    assert stored["metrics"]["m"]["count"] == 1000
    assert stored["metrics"]["m"]["last"] == 999 / 7


def test_metric_history_keeps_non_finite_values_and_pages(cairn, client, experiment):
    values = [math.nan if i % 97 == 3 else math.inf if i % 89 == 5 else -math.inf if i % 83 == 7
              else math.sin(i) for i in range(2_500)]
    run = client.create_run(experiment)
    rid = run.info.run_id
    for start in range(0, len(values), 1000):
        client.log_batch(rid, metrics=[Metric("wave", v, 1_000 + i, i)
                                       for i, v in enumerate(values[start:start + 1000], start)])

    def same(a, b):
        return (math.isnan(a) and math.isnan(b)) or a == b

    history = client.get_metric_history(rid, "wave")
    assert len(history) == len(values)
    assert all(h.step == i and same(h.value, v) for i, (h, v) in enumerate(zip(history, values)))

    # The REST store's own paging, as a client with a page size sees it.
    store = client._tracking_client.store
    pages, token, seen = 0, None, []
    while True:
        page = store.get_metric_history(rid, "wave", max_results=300, page_token=token)
        assert len(page) <= 300
        seen.extend(page)
        pages += 1
        token = page.token
        if not token:
            break
    assert pages == -(-len(values) // 300)
    assert [m.step for m in seen] == list(range(len(values)))
    assert all(same(m.value, v) for m, v in zip(seen, values))

    stored = cairn.metric(rid, "wave")
    assert len(stored) == len(values)
    for p, v in zip(stored, values):
        want = "NaN" if math.isnan(v) else "Infinity" if v == math.inf else "-Infinity" if v == -math.inf else v
        assert p["value"] == want


def test_a_history_longer_than_the_clients_page_comes_back_whole(cairn, client, experiment):
    # The client asks for 25,000 points at a time and follows next_page_token.
    n = 25_000 + 1_234
    run = client.create_run(experiment)
    rid = run.info.run_id
    for start in range(0, n, 1000):
        client.log_batch(rid, metrics=[Metric("step_time", i * 0.5, i, i)
                                       for i in range(start, min(n, start + 1000))])
    history = client.get_metric_history(rid, "step_time")
    assert [m.step for m in history] == list(range(n))
    assert history[-1].value == (n - 1) * 0.5
    assert cairn.run(rid)["live_metrics"]["step_time"]["count"] == n


def test_an_unknown_metric_has_an_empty_history(cairn, client, experiment):
    run = client.create_run(experiment)
    assert client.get_metric_history(run.info.run_id, "never-logged") == []


def test_git_tags_become_cairn_code_lineage(cairn, client, experiment):
    commit = "0123456789abcdef0123456789abcdef01234567"
    with mlflow.start_run(tags={"mlflow.source.git.commit": commit}) as run:
        mlflow.set_tag("mlflow.source.git.branch", "main")
    stored = cairn.run(run.info.run_id)
    assert stored["lineage"]["code"]["commit"] == commit
    assert stored["lineage"]["code"]["branch"] == "main"
    assert client.get_run(run.info.run_id).data.tags["mlflow.source.git.commit"] == commit

    # Set later through a tag, the commit is lineage as well.
    with mlflow.start_run() as later:
        mlflow.set_tag("mlflow.source.git.commit", "feedface" * 5)
    assert cairn.run(later.info.run_id)["lineage"]["code"]["commit"] == "feedface" * 5


def test_run_name_note_and_user_tags(cairn, client, experiment):
    with mlflow.start_run(run_name="first-name", description="tried a wider head") as run:
        mlflow.set_tag("mlflow.runName", "second-name")
    rid = run.info.run_id
    got = client.get_run(rid)
    assert got.info.run_name == "second-name"
    assert got.data.tags["mlflow.note.content"] == "tried a wider head"
    stored = cairn.run(rid)
    assert stored["name"] == "second-name"
    assert stored["notes"] == "tried a wider head"
    assert stored["owner"] == CLIENT_USER


def test_unknown_run_ids_are_resource_does_not_exist(cairn, client):
    for rid in ("0" * 32, "not-a-run-id", "f" * 31):
        with pytest.raises(MlflowException) as err:
            client.get_run(rid)
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST", rid
        with pytest.raises(MlflowException) as err:
            client.log_metric(rid, "m", 1.0)
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST", rid


def test_value_limits_count_characters_not_bytes(cairn, client, experiment):
    # MLflow limits param values to 6000 and tag values to 8000 characters (`len(value)`), and
    # its client checks that before sending. A prompt template in Japanese is well within them.
    prompt = "日本語のプロンプト" * 600  # 5400 characters, 16200 bytes in UTF-8
    summary = "説明" * 3900  # 7800 characters, 23400 bytes
    with mlflow.start_run() as run:
        mlflow.log_param("prompt", prompt)
        mlflow.set_tag("summary", summary)
    got = client.get_run(run.info.run_id).data
    assert got.params["prompt"] == prompt
    assert got.tags["summary"] == summary
    stored = cairn.run(run.info.run_id)
    assert stored["params"]["prompt"] == prompt
    assert stored["tags"]["summary"] == summary
