import mlflow
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss

from pipeline.core.fitting import fit, holdout_customers
from pipeline.core.model import model_frame
from pipeline.core.params import load_params
from pipeline.stages.tune import tune
from tests.conftest import ROOT
from tests.conftest import train_snapshots as _snapshots


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
    # the held-out cutoff never reaches the search: flipping its labels changes no trial
    flipped = snapshots.copy()
    last = flipped["cutoff"] == cutoffs[-1]
    flipped.loc[last, "churned"] = 1 - flipped.loc[last, "churned"]
    with mlflow.start_run():
        _, history_flipped = tune(flipped, params, trials=3)
    assert history_flipped == history
    # trial 0 again by hand: its params, fitted on the training cutoffs' customers, scored on the
    # held-out customers of those cutoffs
    rows = snapshots[snapshots["cutoff"].isin(cutoffs[:-1])]
    held = holdout_customers(rows, params.train.valid_share, params.train.seed)
    first = {k: v for k, v in history[0].items() if k not in ("trial", "valid_log_loss", "valid_auc")}
    booster = fit(rows[~held], rows[held], params.train.model_copy(update=first))
    raw = booster.predict(model_frame(rows[held], booster.feature_name()), raw_score=True)
    start = rows[held]["bgnbd_p_no_order"].to_numpy()  # boosted from BG/NBD's log-odds
    p = 1.0 / (1.0 + np.exp(-(raw + np.log(start / (1 - start)))))
    assert history[0]["valid_log_loss"] == log_loss(rows[held]["churned"], p, labels=[0, 1])
    assert [h["trial"] for h in history] == [0, 1, 2]
    assert best["best_valid_log_loss"] == min(h["valid_log_loss"] for h in history)
    assert set(best["best_params"]) == {
        "learning_rate",
        "num_leaves",
        "min_child_samples",
        "feature_fraction",
        "lambda_l2",
    }
