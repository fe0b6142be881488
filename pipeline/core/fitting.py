"""How a churn model is fitted: the purged temporal split, customers held out of the training
cutoffs, LightGBM from the BTYD start, and the blend or calibrator on the newest closed labels.
The one recipe for train, backtest, tune and the quality benchmark.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from pipeline.core.baselines import RFM
from pipeline.core.calibration import Calibrator, choose, fit_blend, fit_rfm, initial_score
from pipeline.core.columns import LABEL
from pipeline.core.errors import PipelineError
from pipeline.core.model import ChurnModel, booster_probability, feature_columns, label_horizon, model_frame
from pipeline.core.params import TrainParams

log = logging.getLogger(__name__)


class TrainError(PipelineError):
    """The snapshots cannot support the requested split."""


@dataclass(frozen=True)
class Split:
    train: list[pd.Timestamp]
    test: list[pd.Timestamp]


def temporal_split(cutoffs: list[pd.Timestamp], horizon_days: int, params: TrainParams) -> Split:
    """Test = the latest cutoffs; train = every cutoff whose label window has closed by the first
    test cutoff, so no training label saw anything after it. Early stopping and calibration use
    customers held out of those same cutoffs (`holdout_customers`), so they cost no history."""
    cutoffs = sorted(set(cutoffs))
    horizon = pd.Timedelta(days=horizon_days)
    test = cutoffs[-params.test_cutoffs :]
    train = [c for c in cutoffs if c + horizon <= test[0]]
    if not train:
        raise TrainError(
            f"no cutoff's {horizon_days}-day label window closes by the first test cutoff "
            f"{test[0].date()}: the earliest cutoff, {cutoffs[0].date()}, closes on "
            f"{(cutoffs[0] + horizon).date()}. A history at least one horizon longer is needed; "
            "raise featurize.n_cutoffs or lower featurize.horizon_days."
        )
    return Split(train=train, test=test)


def holdout_customers(frame: pd.DataFrame, share: float, seed: int) -> np.ndarray:
    """True for the customers held out for early stopping and calibration: a keyed hash of the id,
    so all of a customer's cutoffs fall on one side (their labels overlap) and every run draws the
    same customers."""
    hashed = pd.util.hash_array(frame["customer_id"].to_numpy(dtype=object), hash_key=f"{seed:016d}"[-16:])
    return (hashed % 10_000) < round(share * 10_000)


def recipe_digest(params: TrainParams) -> str:
    """sha256 of the recipe's settings: two fits of the same rows with the same digest are the same
    model (the fit is deterministic)."""
    return hashlib.sha256(params.model_dump_json().encode()).hexdigest()


def fitted_by(params: TrainParams, snapshots_path: Path) -> dict[str, str]:
    """What a fit of the recipe depends on besides the code: the digests of its settings and of the
    snapshot files. A model or baseline score recorded with the same digests is the same bytes."""
    from pipeline.core import tracking  # MLflow comes with it; only the stages that record need it

    return {
        "recipe_sha256": recipe_digest(params),
        "snapshots_sha256": tracking.snapshots_digest(snapshots_path),
    }


CAP_SCALE = 1_000_000  # the cap's hash is read modulo this: shares in steps of one in a million


def cap_threshold(n_rows: int, max_rows: int | None) -> int | None:
    """The cap on a set of `n_rows` rows: a customer is kept when `cap_hash` of the id falls below
    it, a share max_rows / n_rows of the customers. None: every row (no cap, or few enough rows)."""
    if max_rows is None or n_rows <= max_rows:
        return None
    return round(max_rows / n_rows * CAP_SCALE)


def cap_hash(customer_ids: pd.Series, seed: int) -> np.ndarray:
    """A keyed hash of each id in [0, CAP_SCALE), independent of `holdout_customers`'s."""
    hashed = pd.util.hash_array(customer_ids.to_numpy(dtype=object), hash_key=f"cap{seed:013d}"[-16:])
    return hashed % CAP_SCALE


def cap_rows(rows: pd.DataFrame, max_rows: int | None, seed: int, total: int | None = None) -> pd.DataFrame:
    """`rows` cut to about `max_rows` when longer: every row of a share max_rows / len(rows) of the
    customers, chosen by `cap_hash`, so a kept customer keeps every cutoff and the held-out share
    stays what it was. None: every row. `total`: the number of rows of the set being capped when
    `rows` hold only part of it, every row of the customers the cap keeps among them (a stage that
    read only those, `capped_mask`); the same rows are kept as from the whole set."""
    total = len(rows) if total is None else total
    threshold = cap_threshold(total, max_rows)
    if threshold is None:
        return rows
    keep = cap_hash(rows["customer_id"], seed) < threshold
    log.info("training rows capped by train.max_rows: %d of %d", int(keep.sum()), total)
    return rows[keep]


def capped_mask(keys: pd.DataFrame, fits: list[list[pd.Timestamp]], params: TrainParams) -> np.ndarray:
    """One flag per row of `keys` (the snapshots' customer_id and cutoff columns, in the table's
    order): the rows that fits of the recipe on each set of cutoffs in `fits` learn from after the
    cap, so that a stage reads only those (`read_snapshots(mask=...)`) and holds about
    `train.max_rows` rows per fit whatever the size of the table. Fit such rows with `total`, the
    set's number of rows in `keys`."""
    keep = np.zeros(len(keys), dtype=bool)
    hashed = None
    for cutoffs in fits:
        in_set = keys["cutoff"].isin(cutoffs).to_numpy()
        threshold = cap_threshold(int(in_set.sum()), params.max_rows)
        if threshold is None:
            keep |= in_set
            continue
        if hashed is None:
            hashed = cap_hash(keys["customer_id"], params.seed)
        keep |= in_set & (hashed < threshold)
    return keep


@dataclass(frozen=True)
class Fitted:
    """A booster with its calibrator (or blend), and what choosing them learnt."""

    booster: lgb.Booster
    calibrator: Calibrator
    best_iteration: int
    valid_scores: dict[str, float]
    calibration_losses: dict[str, float]
    calibration_cutoffs: list[pd.Timestamp]

    @property
    def model(self) -> ChurnModel:
        return ChurnModel(self.booster, self.calibrator)


def fit_churn_model(rows: pd.DataFrame, params: TrainParams, total: int | None = None) -> Fitted:
    """The recipe for every model that scores or is judged. Boost on the training customers with
    early stopping on the customers held out of the same cutoffs, so every closed label counts and
    no cutoff is set aside; the boosting starts from `train.boost_from`'s log-odds. Then, on the
    held-out customers of the latest `calibration_cutoffs` cutoffs (the newest closed labels: churn
    rates move), fit the blend of the booster, an RFM regression and the BTYD models
    (`train.blend`), leveled to the booster (`train.level`), or else the calibrator of lowest
    cross-validated log loss. With `train.refit`, boost again on every row with the rounds found.
    Above `train.max_rows` rows, the recipe runs on a share of the customers (`cap_rows`; `total`:
    the number of rows when `rows` were read cut to that share by `capped_mask`)."""
    rows = cap_rows(rows, params.max_rows, params.seed, total=total)
    held = holdout_customers(rows, params.valid_share, params.seed)
    probe = fit(rows[~held], rows[held], params)
    best = probe.best_iteration or probe.current_iteration()
    start = _init(rows[~held], params)
    offset_mean = float(np.mean(start)) if start is not None else 0.0
    latest = sorted(rows["cutoff"].unique())[-params.calibration_cutoffs :]
    valid = rows[held]
    p_valid = booster_probability(probe, valid, params.boost_from)
    is_recent = valid["cutoff"].isin(latest).to_numpy()
    recent, p_recent = valid[is_recent], p_valid[is_recent]
    has_rfm = all(c in rows.columns for c in RFM)
    if params.blend:
        # weights from the probe and an RFM regression that saw neither the held-out customers
        calibrator = fit_blend(p_recent, recent, fit_rfm(rows[~held]) if has_rfm else {})
        p_blend = np.clip(calibrator.apply(p_recent, recent), 1e-6, 1 - 1e-6)
        losses = {"blend (in sample)": float(log_loss(recent[LABEL], p_blend, labels=[0, 1]))}
    else:
        calibrator, losses = calibrate(p_recent, recent, params.calibration_min_gain)
    calibrator = replace(
        calibrator,
        boost_from=params.boost_from or "",
        offset_mean=offset_mean,
        level=params.level and calibrator.method == "blend",
    )
    booster = probe
    if params.refit:
        x = model_frame(rows, feature_columns(rows))
        whole = lgb.Dataset(x, rows[LABEL], init_score=_init(rows, params))
        booster = lgb.train(lgb_params(params), whole, num_boost_round=best)
        if params.blend:  # the blend then reads an RFM regression on every row too
            calibrator = replace(calibrator, rfm=fit_rfm(rows) if has_rfm else {})
    return Fitted(
        booster=booster,
        calibrator=calibrator,
        best_iteration=best,
        valid_scores=_valid_scores(probe, valid[LABEL].to_numpy(), p_valid),
        calibration_losses=losses,
        calibration_cutoffs=[pd.Timestamp(c) for c in latest],
    )


def _valid_scores(probe: lgb.Booster, y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The early-stopping customers' log loss at the best round and their ROC AUC, computed once
    here rather than by LightGBM at every round (the AUC's sort was 2.7 s of the backtest's 33 s).
    No AUC when the held-out customers are of one class."""
    scores = {"valid_binary_logloss": float(probe.best_score["valid"]["binary_logloss"])}
    if 0 < y.sum() < len(y):
        scores["valid_auc"] = float(roc_auc_score(y, p))
    return scores


def split_snapshots(snapshots: pd.DataFrame, params: TrainParams) -> Split:
    """The purged split of a snapshot table, at the label horizon it was built with."""
    return temporal_split(list(snapshots["cutoff"].unique()), label_horizon(snapshots), params)


def preflight(parts: dict[str, pd.DataFrame], params: TrainParams) -> None:
    """Refuse, with the reason, to train on data that cannot support the configuration."""
    problems = []
    customers = parts["training"]["customer_id"].nunique()
    if customers < params.min_customers:
        problems.append(
            f"only {customers} distinct customers in the training cutoffs (train.min_customers = "
            f"{params.min_customers}): too few to learn from"
        )
    for name, part in parts.items():
        churners = int(part[LABEL].sum())
        stayers = len(part) - churners
        if min(churners, stayers) < params.min_class_rows:
            problems.append(
                f"the {name} cutoffs hold {churners} churners and {stayers} non-churners; each needs at "
                f"least train.min_class_rows = {params.min_class_rows}. A horizon this "
                + (
                    "long labels nearly everyone churned"
                    if stayers < churners
                    else "short labels few churners"
                )
                + "; change featurize.horizon_days or add cutoffs"
            )
    if problems:
        raise TrainError("cannot train on these snapshots:\n  " + "\n  ".join(problems))


def lgb_params(params: TrainParams) -> dict[str, object]:
    return {
        "objective": "binary",
        "metric": ["binary_logloss"],
        "learning_rate": params.learning_rate,
        "num_leaves": params.num_leaves,
        "min_child_samples": params.min_child_samples,
        "feature_fraction": params.feature_fraction,
        "lambda_l2": params.lambda_l2,
        "seed": params.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": params.num_threads,
        "verbosity": -1,
    }


def fit(train: pd.DataFrame, valid: pd.DataFrame, params: TrainParams) -> lgb.Booster:
    features = feature_columns(train)
    x_train, x_valid = model_frame(train, features), model_frame(valid, features)
    # the validation frame must share the training category levels
    for column in x_train.select_dtypes("category"):
        x_valid[column] = x_valid[column].cat.set_categories(x_train[column].cat.categories)
    train_set = lgb.Dataset(x_train, train[LABEL], init_score=_init(train, params), free_raw_data=False)
    valid_set = lgb.Dataset(x_valid, valid[LABEL], init_score=_init(valid, params), reference=train_set)
    return lgb.train(
        lgb_params(params),
        train_set,
        num_boost_round=params.max_rounds,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, first_metric_only=True, verbose=False)],
    )


def _init(rows: pd.DataFrame, params: TrainParams) -> np.ndarray | None:
    """LightGBM's initial score: `train.boost_from`'s log-odds, or none (the training churn rate)."""
    if not params.boost_from:
        return None
    if params.boost_from not in rows.columns:
        raise TrainError(
            f"train.boost_from = {params.boost_from}, but the snapshots have no such column; set it "
            "to null or to another BTYD probability the snapshots have"
        )
    return np.asarray(initial_score(rows, params.boost_from))


def select(snapshots: pd.DataFrame, cutoffs: list[pd.Timestamp]) -> pd.DataFrame:
    return snapshots[snapshots["cutoff"].isin(cutoffs)]


def calibrate(p: np.ndarray, valid: pd.DataFrame, min_gain: float) -> tuple[Calibrator, dict[str, float]]:
    """Calibrator fitted on the booster's probabilities `p` for the held-out rows `valid`; methods
    (and no calibration) compared by cross-validated log loss. With several cutoffs each is a fold,
    so a calibrator that only fits one period's churn rate loses; with one, customers are split in
    two."""
    if valid["cutoff"].nunique() > 1:
        folds = valid["cutoff"].rank(method="dense").astype(int).to_numpy()
    else:
        folds = (pd.util.hash_array(valid["customer_id"].to_numpy(dtype=object)) % 2).astype(int)
    return choose(p=p, y=valid[LABEL].to_numpy(), folds=folds, min_gain=min_gain)
