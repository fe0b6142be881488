"""Stage tune: an Optuna search over the LightGBM parameters on `train`'s training cutoffs, scored by
the log loss of the customers `train` holds out for early stopping; every trial is a nested MLflow
run. Off by default (`tune.trials: 0`); `dvc exp run -S tune.trials=40` runs it, and the best
parameters, written to `models/metrics/tune.json`, go into `params.yaml` by hand or with
`dvc exp run -S`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.core.io import write_json
from pipeline.core.params import Params, TrainParams

if TYPE_CHECKING:
    import optuna
    import pandas as pd

log = logging.getLogger(__name__)


def suggest(trial: optuna.Trial, base: TrainParams) -> TrainParams:
    return base.model_copy(
        update={
            "learning_rate": trial.suggest_float("learning_rate", 0.01, 0.2, log=True),
            "num_leaves": trial.suggest_int("num_leaves", 4, 63, log=True),
            "min_child_samples": trial.suggest_int("min_child_samples", 10, 1000, log=True),
            "feature_fraction": trial.suggest_float("feature_fraction", 0.4, 1.0),
            "lambda_l2": trial.suggest_float("lambda_l2", 1e-3, 100.0, log=True),
        }
    )


def tune(snapshots: pd.DataFrame, params: Params, trials: int) -> tuple[dict, list[dict]]:
    import mlflow
    import optuna
    from sklearn.metrics import log_loss, roc_auc_score

    from pipeline.core.columns import LABEL
    from pipeline.core.fitting import fit, holdout_customers, select, split_snapshots
    from pipeline.core.model import booster_probability

    split = split_snapshots(snapshots, params.train)
    rows = select(snapshots, split.train)
    held = holdout_customers(rows, params.train.valid_share, params.train.seed)
    train, valid = rows[~held], rows[held]
    history: list[dict] = []

    def objective(trial: optuna.Trial) -> float:
        candidate = suggest(trial, params.train)
        booster = fit(train, valid, candidate)
        p = booster_probability(booster, valid, candidate.boost_from)
        loss = float(log_loss(valid[LABEL], p, labels=[0, 1]))
        auc = float(roc_auc_score(valid[LABEL], p))
        with mlflow.start_run(run_name=f"trial-{trial.number}", nested=True):
            mlflow.log_params(trial.params)
            mlflow.log_metrics({"valid_log_loss": loss, "valid_auc": auc, "rounds": booster.best_iteration})
        history.append({"trial": trial.number, **trial.params, "valid_log_loss": loss, "valid_auc": auc})
        return loss

    sampler = optuna.samplers.TPESampler(seed=params.train.seed)
    study = optuna.create_study(direction="minimize", sampler=sampler)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study.optimize(objective, n_trials=trials)
    return {"best_params": study.best_params, "best_valid_log_loss": study.best_value}, history


def main(params_path: Path, snapshots_path: Path, out: Path) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    if params.tune.trials == 0:
        write_json({"trials": 0, "note": "tuning off; set tune.trials to search"}, out)
        return
    # imported only for a search: the stage runs in every repro, and these imports are 3 s of it
    import mlflow

    from pipeline.core import tracking
    from pipeline.core.partitions import read_snapshots

    snapshots = read_snapshots(snapshots_path)
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_name=f"tune-{params.tune.trials}"):
        best, history = tune(snapshots, params, params.tune.trials)
        mlflow.log_params({f"best.{k}": v for k, v in best["best_params"].items()})
        mlflow.log_metric("best_valid_log_loss", best["best_valid_log_loss"])
    write_json({"trials": params.tune.trials, **best, "trials_by_number": history}, out)
    log.info("best of %d trials: %s", params.tune.trials, best)
