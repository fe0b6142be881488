import mlflow
import pandas as pd

from pipeline.params import load_params
from pipeline.tune import tune
from tests.conftest import ROOT
from tests.test_train import _snapshots


def test_tune_searches_on_the_purged_split_and_reports_the_best_trial():
    params = load_params(ROOT / "params.yaml")
    params = params.model_copy(
        update={"train": params.train.model_copy(update={"num_threads": 1, "max_rounds": 30})}
    )
    cutoffs = pd.date_range("2024-01-01", periods=4, freq="14D")
    snapshots = pd.concat(
        [_snapshots(seed=i, horizon_days=14).assign(cutoff=c) for i, c in enumerate(cutoffs)],
        ignore_index=True,
    )
    with mlflow.start_run():
        best, history = tune(snapshots, params, trials=3)
    assert [h["trial"] for h in history] == [0, 1, 2]
    assert best["best_valid_log_loss"] == min(h["valid_log_loss"] for h in history)
    assert set(best["best_params"]) == {
        "learning_rate",
        "num_leaves",
        "min_child_samples",
        "feature_fraction",
        "lambda_l2",
    }
