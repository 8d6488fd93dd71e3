"""Evaluations with fairness slices: Cairn's figures against fairlearn's own on a small table.

A fairlearn `MetricFrame` over a hand-written table of labels, predictions and two sensitive
features is written as fairlearn users write it (`by_group.to_csv()`, `to_json(orient="table")`)
and logged with `cairn eval log --file`; every figure Cairn computes from the slices must equal
what fairlearn answers: `MetricFrame.difference()` / `.ratio()` per metric, and
`demographic_parity_difference` / `_ratio`, `equalized_odds_difference` / `_ratio` (fairlearn's
defaults: `method="between_groups"`, `agg="worst_case"`). Metrics an MLflow client logs against
a dataset become the run's evaluation on it.
"""

import math

import mlflow
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score

# 20 applicants: the label, the model's decision, and two sensitive features.
TABLE = pd.DataFrame(
    {
        "y_true": [1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0],
        "y_pred": [1, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0],
        "sex": ["f", "f", "f", "f", "f", "f", "f", "f", "f", "m",
                "m", "m", "m", "m", "m", "m", "m", "m", "m", "m"],
        "race": ["a", "b", "a", "b", "a", "b", "a", "b", "a", "a",
                 "b", "b", "a", "b", "a", "b", "b", "a", "a", "b"],
    }
)
METRICS = {
    "accuracy": accuracy_score,
    "selection_rate": selection_rate,
    "true_positive_rate": true_positive_rate,
    "false_positive_rate": false_positive_rate,
}


def frame(features) -> MetricFrame:
    return MetricFrame(
        metrics=METRICS,
        y_true=TABLE["y_true"],
        y_pred=TABLE["y_pred"],
        sensitive_features=TABLE[features],
    )


def fairlearn_figures(features) -> dict:
    """What fairlearn answers, keyed as Cairn keys its figures: (metric, difference|ratio)."""
    mf = frame(features)
    out = {}
    for metric in METRICS:
        out[(metric, "difference")] = float(mf.difference()[metric])
        out[(metric, "ratio")] = float(mf.ratio()[metric])
    args = dict(y_true=TABLE["y_true"], y_pred=TABLE["y_pred"], sensitive_features=TABLE[features])
    out[("demographic_parity", "difference")] = demographic_parity_difference(**args)
    out[("demographic_parity", "ratio")] = demographic_parity_ratio(**args)
    out[("equalized_odds", "difference")] = equalized_odds_difference(**args)
    out[("equalized_odds", "ratio")] = equalized_odds_ratio(**args)
    return out


def cairn_figures(view: dict, attribute: str) -> dict:
    out = {}
    for f in view["fairness"]:
        if f["attribute"] == attribute:
            out[(f["metric"], "difference")] = f["difference"]
            out[(f["metric"], "ratio")] = f["ratio"]
    return out


def assert_same_figures(cairn_view: dict, attribute: str, features) -> None:
    want = fairlearn_figures(features)
    got = cairn_figures(cairn_view, attribute)
    assert set(got) == set(want), f"figures: {sorted(got)} vs fairlearn's {sorted(want)}"
    for key, value in want.items():
        assert math.isclose(got[key], value, rel_tol=0, abs_tol=1e-12), (
            f"{key} over {attribute}: Cairn {got[key]!r}, fairlearn {value!r}"
        )


def log_file(cairn, run_id: str, benchmark: str, path) -> dict:
    return cairn.cli_json("eval", "log", run_id, "--benchmark", benchmark, "--file", str(path))


def test_figures_from_a_by_group_csv_equal_fairlearns(cairn, experiment, tmp_path):
    with mlflow.start_run() as run:
        pass
    mf = frame(["sex"])
    path = tmp_path / "by_group.csv"
    mf.by_group.to_csv(path)
    view = log_file(cairn, run.info.run_id, "credit-test", path)
    assert sorted(view["slices"]) == ["sex=f", "sex=m"]
    for group in ("f", "m"):
        for metric in METRICS:
            assert math.isclose(
                view["slices"][f"sex={group}"][metric], float(mf.by_group.loc[group, metric]),
                rel_tol=0, abs_tol=1e-15,
            )
    assert_same_figures(view, "sex", ["sex"])
    # The widest gap is fairlearn's largest difference.
    dp = next(f for f in view["fairness"] if f["metric"] == "demographic_parity")
    assert dp["groups"] == 2
    assert (dp["lowest"], dp["highest"]) == (
        f"sex={mf.by_group['selection_rate'].idxmin()}",
        f"sex={mf.by_group['selection_rate'].idxmax()}",
    )


def test_intersections_from_a_table_json_equal_fairlearns(cairn, experiment, tmp_path):
    with mlflow.start_run() as run:
        pass
    path = tmp_path / "by_group.json"
    # pandas writes 10 significant digits unless asked for more.
    frame(["race", "sex"]).by_group.to_json(path, orient="table", double_precision=15)
    view = log_file(cairn, run.info.run_id, "credit-test", path)
    assert sorted(view["slices"]) == ["race=a&sex=f", "race=a&sex=m", "race=b&sex=f", "race=b&sex=m"]
    assert_same_figures(view, "race&sex", ["race", "sex"])
    # What `cairn eval show` answers later is what `eval log` answered.
    assert cairn.cli_json("eval", "show", run.info.run_id) == [view]


def test_metrics_an_mlflow_client_logs_against_a_dataset_become_an_evaluation(cairn, experiment):
    dataset = mlflow.data.from_pandas(TABLE, name="credit test")
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.75, dataset=dataset)
        mlflow.log_metrics({"f1": 0.7, "precision": 0.8}, dataset=dataset)
        mlflow.log_metric("loss", 0.3)
    views = cairn.cli_json("eval", "show", run.info.run_id)
    assert len(views) == 1, views
    view = views[0]
    assert view["benchmark"] == "credit-test"
    assert view["dataset"] == dataset.digest
    assert view["metrics"] == {"accuracy": 0.75, "f1": 0.7, "precision": 0.8}
    # They stay run metrics too.
    assert mlflow.get_run(run.info.run_id).data.metrics["accuracy"] == pytest.approx(0.75)
