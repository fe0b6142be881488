"""Probability calibration fitted on held-out predictions: Platt scaling or isotonic regression,
whichever has the lower cross-validated log loss; and the calibration error measures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import log_loss

from pipeline.core.baselines import RFM, rfm_matrix
from pipeline.core.columns import LABEL
from pipeline.core.numerics import Logistic, logistic_regression

EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def level_shift(q: np.ndarray, target: float) -> float:
    """The shift d of the log-odds of `q` after which their mean probability is `target`: the
    mean of sigmoid(logit(q) + d) rises strictly with d, so the root is unique."""
    z = _logit(np.asarray(q, dtype=float))
    target = float(np.clip(target, EPS, 1 - EPS))
    return float(brentq(lambda d: float(np.mean(_sigmoid(z + d))) - target, -30.0, 30.0, xtol=1e-12))


def level_shifts(q: np.ndarray, p: np.ndarray, groups: np.ndarray) -> dict[Any, float]:
    """Per group (a cutoff): the shift that gives `q` the mean of `p` there."""
    q, p = np.asarray(q, dtype=float), np.asarray(p, dtype=float)
    return {g: level_shift(q[groups == g], float(np.mean(p[groups == g]))) for g in pd.unique(groups)}


def shifted(q: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    return _sigmoid(_logit(np.asarray(q, dtype=float)) + shifts)


def initial_score(snapshot: pd.DataFrame, column: str | None) -> np.ndarray | float:
    """The booster's initial score for each row: the log-odds of `column`, else 0."""
    if not column:
        return 0.0
    return _logit(snapshot[column].to_numpy(dtype=float))


@dataclass(frozen=True)
class Calibrator:
    """A map from the booster's probabilities to calibrated ones, stored as plain numbers. "blend"
    also reads the snapshot: a logistic regression over the booster's log-odds, a logistic regression
    on the four RFM numbers and the BTYD models' log-odds of no order (see `fit_blend`).

    `boost_from` names the BTYD column whose log-odds the booster started from (LightGBM's initial
    score, `offset`); its trees learn corrections to that model, fitted at each cutoff, so the
    booster's level follows it where the training cutoffs end. `offset_mean` is the offset's mean
    over the training rows (the explanations' base value moves by it). With `level`, the blend
    ranks and the booster sets the level: at each cutoff the blend's log-odds are shifted so that
    their mean probability is the booster's mean there (`level_shift`)."""

    method: str  # "platt", "isotonic", "blend" or "identity"
    coef: tuple[float, ...] = (1.0, 0.0)  # platt: sigmoid(a * logit(p) + b); blend: one per input
    x: tuple[float, ...] = field(default=())  # isotonic: knots, interpolated linearly
    y: tuple[float, ...] = field(default=())
    intercept: float = 0.0  # blend
    inputs: tuple[str, ...] = ()  # blend: "model", "rfm" and BTYD probability columns
    rfm: dict[str, Any] = field(default_factory=dict)  # blend: the RFM logistic regression
    boost_from: str = ""
    offset_mean: float = 0.0
    level: bool = False

    def offset(self, snapshot: pd.DataFrame) -> np.ndarray | float:
        return initial_score(snapshot, self.boost_from)

    def apply(self, p: np.ndarray, snapshot: pd.DataFrame | None = None) -> np.ndarray:
        """Calibrated probabilities of the rows of `snapshot`; with `level`, the rows of each cutoff
        are leveled together, so pass every row of a cutoff at once (`pipeline.spark` does the
        same in two passes)."""
        q = self.unleveled(p, snapshot)
        if not self.level:
            return q
        if snapshot is None:
            raise ValueError("a leveled blend needs the snapshot's cutoff column")
        groups = snapshot["cutoff"].to_numpy()
        shifts = level_shifts(q, p, groups)
        codes, cutoffs = pd.factorize(groups)  # each row's shift by its cutoff's index, not one lookup a row
        return shifted(q, np.array([shifts[g] for g in cutoffs], dtype=float)[codes])

    def unleveled(self, p: np.ndarray, snapshot: pd.DataFrame | None = None) -> np.ndarray:
        p = np.asarray(p, dtype=float)
        if self.method == "platt":
            a, b = self.coef
            return _sigmoid(a * _logit(p) + b)
        if self.method == "isotonic":
            return np.clip(np.interp(p, self.x, self.y), EPS, 1 - EPS)
        if self.method == "blend":
            if snapshot is None:
                raise ValueError("a blended model needs the snapshot's RFM and BTYD columns")
            z = np.full(len(p), self.intercept)
            for w, column in zip(
                self.coef,
                blend_inputs(p=p, snapshot=snapshot, inputs=self.inputs, rfm=self.rfm).T,
                strict=True,
            ):
                z = z + w * column
            return _sigmoid(z)
        return p

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": self.method,
            "coef": list(self.coef),
            "x": list(self.x),
            "y": list(self.y),
        }
        if self.boost_from:
            out |= {"boost_from": self.boost_from, "offset_mean": self.offset_mean}
        if self.level:
            out["level"] = True
        if self.method == "blend":
            out |= {"intercept": self.intercept, "inputs": list(self.inputs), "rfm": self.rfm}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        return cls(
            data["method"],
            tuple(data["coef"]),
            tuple(data["x"]),
            tuple(data["y"]),
            data.get("intercept", 0.0),
            tuple(data.get("inputs", ())),
            data.get("rfm", {}),
            data.get("boost_from", ""),
            data.get("offset_mean", 0.0),
            data.get("level", False),
        )


BTYD_INPUTS = ("pnbd_p_no_order", "bgnbd_p_no_order")


def _rfm_model(rfm: dict[str, Any]) -> Logistic:
    return Logistic(
        coef=tuple(rfm["coef"]),
        intercept=rfm["intercept"],
        mean=tuple(rfm["mean"]),
        scale=tuple(rfm["scale"]),
    )


def blend_inputs(
    p: np.ndarray, snapshot: pd.DataFrame, inputs: tuple[str, ...], rfm: dict[str, Any]
) -> np.ndarray:
    """The blend's inputs as log-odds, one column each: the model, the RFM regression, the BTYD."""
    columns = []
    for name in inputs:
        if name == "model":
            columns.append(_logit(p))
        elif name == "rfm":
            columns.append(_rfm_model(rfm).decision(rfm_matrix(snapshot)))
        else:
            columns.append(_logit(snapshot[name].to_numpy(dtype=float)))
    return np.column_stack(columns)


def fit_rfm(rows: pd.DataFrame) -> dict[str, Any]:
    model = logistic_regression(rfm_matrix(rows), rows[LABEL].to_numpy(), c=1.0)
    return {
        "coef": list(model.coef),
        "intercept": model.intercept,
        "mean": list(model.mean),
        "scale": list(model.scale),
    }


def fit_blend(p: np.ndarray, rows: pd.DataFrame, rfm: dict[str, Any]) -> Calibrator:
    """Weights over the inputs by maximum likelihood on held-out rows: the booster learns
    interactions, the RFM regression extrapolates smoothly where trees cannot (older customers
    than any seen in training), and the BTYD models are fitted at the cutoff itself, so they follow a
    churn level that moved since the training labels closed. Inputs missing from the snapshot
    are left out.

    The weights are kept non-negative, as in stacked regression (Breiman 1996): an input whose
    weight comes out negative is given weight 0, most negative first, and the rest refitted. The
    inputs overlap (the booster starts from a BTYD column and reads the others), and on the few
    held-out cutoffs a negative weight only plays one copy of a signal against another; that
    contrast fits those cutoffs and fails on the next (on a seasonal shop it cost 0.002 AUC)."""
    inputs: tuple[str, ...] = ("model",)
    if all(c in rows.columns for c in RFM) and rfm:
        inputs += ("rfm",)
    inputs += tuple(c for c in BTYD_INPUTS if c in rows.columns)
    x = blend_inputs(p=p, snapshot=rows, inputs=inputs, rfm=rfm)
    y = rows[LABEL].to_numpy()
    kept = list(range(len(inputs)))
    model = logistic_regression(x, y, c=1e6, standardize=False)
    while kept and min(model.coef) < 0.0:  # with none left: the held-out churn rate alone
        del kept[int(np.argmin(model.coef))]
        model = logistic_regression(x[:, kept], y, c=1e6, standardize=False)
    coef = [0.0] * len(inputs)
    for j, w in zip(kept, model.coef, strict=True):
        coef[j] = float(w)
    return Calibrator("blend", coef=tuple(coef), intercept=model.intercept, inputs=inputs, rfm=rfm)


def fit_platt(p: np.ndarray, y: np.ndarray) -> Calibrator:
    model = logistic_regression(_logit(p), y, c=1e6, standardize=False)
    return Calibrator("platt", coef=(model.coef[0], model.intercept))


def fit_isotonic(p: np.ndarray, y: np.ndarray) -> Calibrator:
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
    return Calibrator(
        "isotonic",
        x=tuple(float(v) for v in iso.X_thresholds_),
        y=tuple(float(v) for v in iso.y_thresholds_),
    )


FITTERS = {"platt": fit_platt, "isotonic": fit_isotonic}


def choose(
    p: np.ndarray, y: np.ndarray, folds: np.ndarray, min_gain: float = 0.0
) -> tuple[Calibrator, dict[str, float]]:
    """Each method's log loss when fitted on all folds but one and scored on that one; the winner
    is refitted on everything. `folds` assigns each row to a fold (customers, not rows, should
    share a fold). A calibrator must cut the uncalibrated log loss by at least the relative
    `min_gain` to be used: a model trained on log loss is close to calibrated already, and a
    calibrator fitted on one period also learns that period's churn rate, which need not last."""
    losses = {}
    for name, fit in FITTERS.items():
        out = np.empty_like(p)
        for fold in np.unique(folds):
            held = folds == fold
            out[held] = fit(p[~held], y[~held]).apply(p[held])
        losses[name] = float(log_loss(y, np.clip(out, EPS, 1 - EPS), labels=[0, 1]))
    losses["identity"] = float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0, 1]))
    best = min(losses, key=losses.__getitem__)
    if losses[best] > losses["identity"] * (1.0 - min_gain):
        best = "identity"
    chosen = Calibrator("identity") if best == "identity" else FITTERS[best](p, y)
    return chosen, losses


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-width bins: the row-weighted mean |observed rate - mean prediction|."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    which = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in np.unique(which):
        in_bin = which == b
        total += in_bin.sum() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(total / len(y))


def reliability_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per equal-width bin: mean prediction, observed rate and rows (the reliability diagram)."""
    which = np.minimum((np.asarray(p) * bins).astype(int), bins - 1)
    rows = []
    for b in np.unique(which):
        in_bin = which == b
        rows.append(
            {
                "predicted": float(p[in_bin].mean()),
                "observed": float(y[in_bin].mean()),
                "rows": int(in_bin.sum()),
            }
        )
    return rows
