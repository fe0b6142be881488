"""The baselines a churn model must beat, scored on the same held-out rows: recency alone,
the BTYD models' P(no order in the horizon), and a logistic regression and gradient boosting on
the four RFM features."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from pipeline.core.columns import KEYS, LABEL
from pipeline.core.io import parquet_stream
from pipeline.core.numerics import logistic_regression

RFM = ("recency_days", "n_orders", "spend", "tenure_days")
# the snapshot columns the baselines learn from: a stage that only fits them reads no others
TRAINING_INPUTS = ("customer_id", "cutoff", LABEL, *RFM)


def rfm_matrix(snapshot: pd.DataFrame) -> np.ndarray:
    return np.column_stack([np.log1p(snapshot[c].clip(lower=0).to_numpy()) for c in RFM])


def logistic_rfm(train: pd.DataFrame, held_out: pd.DataFrame) -> np.ndarray:
    """Standardised log RFM features, L2 penalty C = 1 (scikit-learn's defaults), fitted by
    `numerics.logistic_regression`: the same coefficients on any CPU."""
    model = logistic_regression(rfm_matrix(train), train[LABEL].to_numpy(), c=1.0)
    return model.predict_proba(rfm_matrix(held_out))


def lightgbm_rfm(train: pd.DataFrame, held_out: pd.DataFrame, threads: int) -> np.ndarray:
    """Gradient boosting on the same four RFM numbers: what a strong analyst gets without any
    feature engineering. Trained on four fifths of the training customers with early stopping on
    the rest (by a hash of the id, so all of a customer's cutoffs fall on one side), as the churn
    model is. A fixed number of threads (`train.num_threads`, as the churn model) and
    `deterministic`: the same trees on any machine."""
    x, y = rfm_matrix(train), train[LABEL].to_numpy()
    held = pd.util.hash_array(train["customer_id"].to_numpy(dtype=object)) % 5 == 0
    settings = {
        "objective": "binary",
        "learning_rate": 0.1,
        "num_leaves": 15,
        "min_child_samples": 100,
        "seed": 0,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": threads,
        "verbosity": -1,
    }
    model = lgb.train(
        settings,
        lgb.Dataset(x[~held], y[~held]),
        num_boost_round=1000,
        valid_sets=[lgb.Dataset(x[held], y[held])],
        callbacks=[lgb.early_stopping(50, verbose=False)],
    )
    return np.asarray(model.predict(rfm_matrix(held_out), num_iteration=model.best_iteration))


def baseline_scores(
    train: pd.DataFrame, held_out: pd.DataFrame, threads: int
) -> dict[str, tuple[np.ndarray, bool]]:
    """Name -> (score, is_probability). Higher scores mean likelier churn. `threads`: LightGBM's."""
    scores: dict[str, tuple[np.ndarray, bool]] = {
        "recency": (held_out["recency_days"].to_numpy(), False),
        "logistic_rfm": (logistic_rfm(train, held_out), True),
        "lightgbm_rfm": (lightgbm_rfm(train, held_out, threads), True),
    }
    for name, column in (("pareto_nbd", "pnbd_p_no_order"), ("bg_nbd", "bgnbd_p_no_order")):
        if column in held_out.columns:
            scores[name] = (held_out[column].to_numpy(), True)
    return scores


SCORES_META = b"churn.baselines"


def save_scores(
    scores: dict[str, tuple[np.ndarray, bool]], held_out: pd.DataFrame, fitted_by: dict[str, str], path: Path
) -> None:
    """The baselines' scores of the held-out rows, with the rows' keys and what the baselines were
    fitted by (`fitted_by`: the recipe's and the snapshots' digests), so that a stage scoring the
    same rows with baselines fitted the same way reads them (`load_scores`) instead of fitting
    them again."""
    about = {"fitted_by": fitted_by, "probability": {name: flag for name, (_, flag) in scores.items()}}
    frame = held_out[KEYS].reset_index(drop=True).assign(**{name: s for name, (s, _) in scores.items()})
    with parquet_stream(path, metadata={SCORES_META: json.dumps(about, sort_keys=True).encode()}) as write:
        write(frame)


def load_scores(
    path: Path | None, held_out: pd.DataFrame, fitted_by: dict[str, str]
) -> dict[str, tuple[np.ndarray, bool]] | None:
    """The scores `save_scores` wrote for exactly these rows (the same keys in the same order) by
    baselines fitted as `fitted_by` says; None when there is no such file or it is of other rows,
    another recipe or other snapshots."""
    if path is None or not Path(path).is_file():
        return None
    table = pq.read_table(path)
    about = json.loads((table.schema.metadata or {}).get(SCORES_META, b"{}"))
    if about.get("fitted_by") != fitted_by:
        return None
    frame = table.to_pandas()
    if not frame[KEYS].equals(held_out[KEYS].reset_index(drop=True)):
        return None
    names = [c for c in frame.columns if c not in KEYS]  # in the order they were scored
    return {name: (frame[name].to_numpy(), bool(about["probability"][name])) for name in names}
