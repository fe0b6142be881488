"""Uplift: whom a retention contact changes, learned from the randomized contacts of past weekly
files (the outcome table of `churn outcomes`), and judged by the value of the policy it implies.

Every row of the outcome table carries its exact chance of contact (`contact_probability`), fixed
by the file's design (the list's holdout, the exploration sample). Only rows with a chance strictly
between 0 and 1 say anything about the effect of a contact; they are the randomized rows. The
learners and estimators here always use the known chance, never an estimated one.

Learners (thin wrappers of LightGBM; docs/uplift.md says why not causalml):
- T-learner: P(retained | x) per arm, effect = mu1 - mu0.
- X-learner: imputed effects per arm (Kuenzel et al. 2019), combined with the training share of
  treated rows.
- DR-learner (Kennedy 2023): the doubly robust score of each row, with outcome models cross-fitted
  by customer, regressed on x.

Estimators: the doubly robust score Gamma (with outcome models of zero it is the inverse-propensity
score), means with standard errors clustered by customer (a customer recurs across weeks), the
Qini curve and coefficient, and the value of a contact policy against another at the same budget.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.core.errors import PipelineError
from pipeline.core.io import write_json
from pipeline.core.model import model_frame

Z_95 = 1.959963984540054

# the outcome table's own columns (`churn outcomes`): what the file said and decided, and the outcome;
# the features the customer was scored on follow them
OUTCOME_COLUMNS = [
    "customer_id", "week", "score_date", "horizon_days", "churn_probability", "value_at_risk",
    "predicted_value", "risk_tier", "recommended_campaign", "outreach", "holdout", "exploration",
    "contact", "contact_probability", "contact_policy", "retained",
]  # fmt: skip
TREATMENT, PROPENSITY, OUTCOME, CLUSTER, VALUE = (
    "contact",
    "contact_probability",
    "retained",
    "customer_id",
    "predicted_value",
)
# what the file predicted is known before the contact, so the learners may use it
PREDICTED_COLUMNS = ["churn_probability", "predicted_value"]


def uplift_features(table: pd.DataFrame) -> list[str]:
    """The columns an uplift model learns from: the scoring snapshot's features and the file's
    churn probability and predicted value. Never the ids, dates, decisions or outcome."""
    return PREDICTED_COLUMNS + [c for c in table.columns if c not in OUTCOME_COLUMNS]


def randomized(table: pd.DataFrame) -> pd.DataFrame:
    """The rows whose contact was left to chance (0 < chance < 1): the only rows that show the
    effect of a contact."""
    e = table[PROPENSITY].to_numpy(dtype=float)
    return table[(e > 0.0) & (e < 1.0)]


@dataclass(frozen=True)
class Boosting:
    """One fixed LightGBM setting for every model here: small trees (7 leaves) and leaves of at
    least 500 rows, since an effect of a few points is a small difference between two noisy binary
    outcomes, and a leaf of 50 rows fits their noise. One thread and deterministic, so a fit is
    reproducible on a shared machine."""

    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 7
    min_child_samples: int = 500
    seed: int = 0

    def _settings(self) -> dict:
        return {
            "n_estimators": self.n_estimators,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "random_state": self.seed,
            "n_jobs": 1,
            "deterministic": True,
            "verbose": -1,
        }

    def classifier(self, x: pd.DataFrame, y: np.ndarray) -> lgb.LGBMClassifier:
        return lgb.LGBMClassifier(**self._settings()).fit(x, y)

    def regressor(self, x: pd.DataFrame, y: np.ndarray) -> lgb.LGBMRegressor:
        return lgb.LGBMRegressor(**self._settings()).fit(x, y)


def _retention(model: lgb.LGBMClassifier, x: pd.DataFrame) -> np.ndarray:
    if len(model.classes_) == 1:  # an arm where every row had the same outcome
        return np.full(len(x), float(model.classes_[0]))
    return model.predict_proba(x)[:, 1]


def _arms(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    treated = np.asarray(t, dtype=bool)
    if treated.all() or not treated.any():
        raise ValueError(
            "an uplift model needs contacted and uncontacted rows, "
            f"got {int(treated.sum())} contacted of {len(treated)}"
        )
    return treated, ~treated


@dataclass(frozen=True)
class TLearner:
    """P(retained | x) per arm, fitted without weights: given x the contact was drawn at random
    with a chance known by design, so each arm's outcome model is unbiased for its arm."""

    features: list[str]
    mu0_model: lgb.LGBMClassifier
    mu1_model: lgb.LGBMClassifier

    def outcomes(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        x = model_frame(table, self.features)
        return _retention(self.mu0_model, x), _retention(self.mu1_model, x)

    def effect(self, table: pd.DataFrame) -> np.ndarray:
        mu0, mu1 = self.outcomes(table)
        return mu1 - mu0


def fit_t(table: pd.DataFrame, boosting: Boosting = Boosting()) -> TLearner:
    features = uplift_features(table)
    x, y = model_frame(table, features), table[OUTCOME].to_numpy(dtype=int)
    treated, control = _arms(table[TREATMENT].to_numpy())
    return TLearner(
        features=features,
        mu0_model=boosting.classifier(x[control], y[control]),
        mu1_model=boosting.classifier(x[treated], y[treated]),
    )


@dataclass(frozen=True)
class XLearner:
    """Kuenzel et al. (2019): the effect imputed on each arm from the other arm's outcome model,
    regressed on x per arm, then mixed by the training share of contacted rows g:
    tau = g tau0 + (1 - g) tau1."""

    features: list[str]
    tau0_model: lgb.LGBMRegressor
    tau1_model: lgb.LGBMRegressor
    treated_share: float

    def effect(self, table: pd.DataFrame) -> np.ndarray:
        x = model_frame(table, self.features)
        g = self.treated_share
        return g * self.tau0_model.predict(x) + (1.0 - g) * self.tau1_model.predict(x)


def fit_x(table: pd.DataFrame, boosting: Boosting = Boosting(), first: TLearner | None = None) -> XLearner:
    """`first`: the T-learner of the same rows, when already at hand."""
    first = first if first is not None else fit_t(table, boosting)
    x, y = model_frame(table, first.features), table[OUTCOME].to_numpy(dtype=float)
    treated, control = _arms(table[TREATMENT].to_numpy())
    mu0, mu1 = first.outcomes(table)
    return XLearner(
        features=first.features,
        tau0_model=boosting.regressor(x[control], mu1[control] - y[control]),
        tau1_model=boosting.regressor(x[treated], y[treated] - mu0[treated]),
        treated_share=float(treated.mean()),
    )


def dr_scores(y: np.ndarray, t: np.ndarray, e: np.ndarray, mu0: np.ndarray, mu1: np.ndarray) -> np.ndarray:
    """The doubly robust (AIPW) score of each row, whose mean is unbiased for the mean effect of a
    contact whenever the chance e is right, whatever the outcome models mu0 and mu1:
    Gamma = mu1 - mu0 + t (y - mu1) / e - (1 - t) (y - mu0) / (1 - e).
    With mu0 = mu1 = 0 it is the inverse-propensity score t y / e - (1 - t) y / (1 - e)."""
    y, t, e = np.asarray(y, dtype=float), np.asarray(t, dtype=float), np.asarray(e, dtype=float)
    if ((e <= 0.0) | (e >= 1.0)).any():
        raise ValueError(
            "doubly robust scores need a chance of contact strictly between 0 and 1 on every row"
        )
    return mu1 - mu0 + t * (y - mu1) / e - (1.0 - t) * (y - mu0) / (1.0 - e)


def customer_folds(customers: pd.Series, folds: int) -> np.ndarray:
    """A fold per row, the same for all of a customer's rows (a stable hash of the id), so that no
    customer's outcomes inform the model that scores them."""
    hashed = pd.util.hash_pandas_object(customers.astype(str), index=False).to_numpy()
    return (hashed % np.uint64(folds)).astype(int)


def cross_fitted_outcomes(
    table: pd.DataFrame, boosting: Boosting = Boosting(), folds: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """mu0 and mu1 of each row from T-learners fitted on the other folds of customers."""
    fold = customer_folds(table[CLUSTER], folds)
    mu0, mu1 = np.empty(len(table)), np.empty(len(table))
    for k in range(folds):
        inside = fold == k
        outcomes = fit_t(table[~inside], boosting).outcomes(table[inside])
        mu0[inside], mu1[inside] = outcomes
    return mu0, mu1


@dataclass(frozen=True)
class DRLearner:
    """Kennedy (2023): the doubly robust score of each row (outcome models cross-fitted by
    customer, the chance of contact as known) regressed on x."""

    features: list[str]
    tau_model: lgb.LGBMRegressor

    def effect(self, table: pd.DataFrame) -> np.ndarray:
        return self.tau_model.predict(model_frame(table, self.features))


def fit_dr(
    table: pd.DataFrame,
    boosting: Boosting = Boosting(),
    folds: int = 2,
    scores: np.ndarray | None = None,
) -> DRLearner:
    """`scores`: the rows' doubly robust scores (`training_scores`), when already at hand."""
    features = uplift_features(table)
    _arms(table[TREATMENT].to_numpy())
    gamma = scores if scores is not None else training_scores(table, boosting, folds)
    return DRLearner(features=features, tau_model=boosting.regressor(model_frame(table, features), gamma))


UpliftLearner = TLearner | XLearner | DRLearner
LEARNERS: dict[str, Callable[[pd.DataFrame, Boosting], UpliftLearner]] = {
    "t": fit_t,
    "x": fit_x,
    "dr": fit_dr,
}


@dataclass(frozen=True)
class Estimate:
    value: float
    se: float
    clusters: int
    low: float = field(init=False)
    high: float = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "low", self.value - Z_95 * self.se)
        object.__setattr__(self, "high", self.value + Z_95 * self.se)

    def scaled(self, factor: float) -> Estimate:
        return Estimate(value=self.value * factor, se=self.se * abs(factor), clusters=self.clusters)

    def as_dict(self) -> dict[str, float | int]:
        return {
            "value": round(self.value, 6),
            "se": round(self.se, 6),
            "ci_low": round(self.low, 6),
            "ci_high": round(self.high, 6),
            "clusters": self.clusters,
        }


def clustered_mean(values: np.ndarray, clusters: pd.Series | np.ndarray) -> Estimate:
    """The mean of `values` with a standard error that lets rows of one cluster (a customer's
    weeks) be correlated: the sandwich (CR0) estimate with the small-sample factor G / (G - 1),
    Var = G / (G - 1) * sum_g (S_g - n_g m)^2 / n^2, S_g the cluster's sum and n_g its rows."""
    values = np.asarray(values, dtype=float)
    n = len(values)
    if n == 0:
        raise ValueError("the mean of no rows")
    mean = float(values.mean())
    codes, _ = pd.factorize(pd.Series(np.asarray(clusters)).astype(str))
    sums = np.bincount(codes, weights=values - mean)
    g = len(sums)
    se = math.sqrt(g / (g - 1) * float((sums**2).sum())) / n if g > 1 else math.nan
    return Estimate(value=mean, se=se, clusters=g)


def _ranked_cumulative(score: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """C(k) for k = 0..n: the gain of the k rows with the highest score; rows with tied scores
    share their group's gain evenly, so the curve does not depend on row order."""
    score, gain = np.asarray(score, dtype=float), np.asarray(gain, dtype=float)
    order = np.argsort(-score, kind="stable")
    s, g = score[order], gain[order]
    n = len(s)
    ends = np.r_[np.flatnonzero(np.diff(s) != 0) + 1, n]  # one past each tie group
    starts = np.r_[0, ends[:-1]]
    at_end = np.r_[0.0, np.cumsum(g)][ends]
    before = np.r_[0.0, at_end[:-1]]
    curve = np.empty(n + 1)
    curve[0] = 0.0
    for lo, hi, c0, c1 in zip(starts, ends, before, at_end, strict=True):
        curve[lo + 1 : hi + 1] = c0 + (c1 - c0) * np.arange(1, hi - lo + 1) / (hi - lo)
    return curve


def qini_curve(score: np.ndarray, gain: np.ndarray) -> pd.DataFrame:
    """The cumulative gain of contacting customers in order of `score` against the share
    contacted: `gain` is each row's effect (the true one in a simulation, the doubly robust score
    on real data), `gain` columns are per row of the whole set."""
    curve = _ranked_cumulative(score, gain)
    n = len(curve) - 1
    k = np.arange(n + 1)
    return pd.DataFrame(
        {
            "share": k / n,
            "gain": curve / n,
            "random": k / n * curve[-1] / n,
        }
    )


def qini_coefficient(score: np.ndarray, gain: np.ndarray) -> dict[str, float]:
    """The area between the Qini curve and the random line (Qini) and under the curve (AUUC), as
    means over k = 1..n of C(k)/n - (k/n) C(n)/n and of C(k)/n."""
    curve = _ranked_cumulative(score, gain)
    n = len(curve) - 1
    k = np.arange(1, n + 1)
    auuc = float(curve[1:].mean()) / n
    qini = float((curve[1:] - k / n * curve[-1]).mean()) / n
    return {"qini": qini, "auuc": auuc}


def top_k(score: np.ndarray, groups: np.ndarray, k: int, allowed: np.ndarray | None = None) -> np.ndarray:
    """In each group (a week), the k allowed rows with the highest score (ties by position)."""
    score = np.asarray(score, dtype=float)
    allowed = np.ones(len(score), dtype=bool) if allowed is None else np.asarray(allowed, dtype=bool)
    chosen = np.zeros(len(score), dtype=bool)
    for _, rows in pd.Series(np.arange(len(score))).groupby(np.asarray(groups), sort=False):
        members = rows.to_numpy()[allowed[rows.to_numpy()]]
        best = members[np.argsort(-score[members], kind="stable")[:k]]
        chosen[best] = True
    return chosen


def decile_table(predicted: np.ndarray, gamma: np.ndarray, clusters: pd.Series) -> pd.DataFrame:
    """Per decile of predicted uplift (1 = highest): rows, the mean predicted uplift and the
    realized one (the mean doubly robust score) with a 95% interval clustered by customer."""
    predicted = np.asarray(predicted, dtype=float)
    n = len(predicted)
    order = np.argsort(-predicted, kind="stable")
    decile = np.empty(n, dtype=int)
    decile[order] = np.arange(n) * 10 // n + 1
    rows = []
    ids = np.asarray(clusters)
    for d in range(1, 11):
        inside = decile == d
        if not inside.any():
            continue
        realized = clustered_mean(np.asarray(gamma)[inside], ids[inside])
        rows.append(
            {
                "decile": d,
                "rows": int(inside.sum()),
                "predicted": float(predicted[inside].mean()),
                "realized": realized.value,
                "ci_low": realized.low,
                "ci_high": realized.high,
            }
        )
    return pd.DataFrame(rows)


def decile_edges(predicted: np.ndarray) -> np.ndarray:
    """The nine inner edges of the deciles of predicted uplift, highest first."""
    return np.quantile(np.asarray(predicted, dtype=float), np.linspace(0.9, 0.1, 9))


def decile_of(predicted: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """1 for the top decile of `edges` to 10 for the bottom."""
    return 1 + (np.asarray(predicted, dtype=float)[:, None] < np.asarray(edges)[None, :]).sum(axis=1)


@dataclass(frozen=True)
class SleepingDogGuard:
    """The deciles of predicted uplift whose realized uplift (the mean doubly robust score of the
    weeks learned from) has a 95% upper bound below zero: a contact drives those customers away,
    so they are never contacted. `edges` are the deciles' inner edges, highest first."""

    edges: list[float]
    excluded: list[int]

    def excludes(self, effect: np.ndarray) -> np.ndarray:
        return np.isin(decile_of(effect, np.asarray(self.edges)), self.excluded)

    def as_dict(self) -> dict:
        return {"edges": [round(e, 8) for e in self.edges], "excluded_deciles": self.excluded}


def sleeping_dog_guard(effect: np.ndarray, gamma: np.ndarray, clusters: pd.Series) -> SleepingDogGuard:
    table = decile_table(effect, gamma, clusters)
    return SleepingDogGuard(
        edges=[float(e) for e in decile_edges(effect)],
        excluded=table.loc[table["ci_high"] < 0, "decile"].astype(int).tolist(),
    )


def uplift_policy(
    effect: np.ndarray,
    value: np.ndarray,
    eligible: np.ndarray,
    weeks: np.ndarray,
    budget: int,
    cost: float,
    excluded: np.ndarray | None = None,
) -> np.ndarray:
    """Whom the uplift ranking contacts: per week, at most `budget` eligible rows with the highest
    expected incremental retained value minus the contact's cost, effect x value - cost, and only
    where it is above zero (so never a customer whose predicted uplift is not positive); rows in
    `excluded` (the sleeping dogs' deciles) never."""
    gain = np.asarray(effect, dtype=float) * np.asarray(value, dtype=float) - cost
    allowed = np.asarray(eligible, dtype=bool) & (gain > 0)
    if excluded is not None:
        allowed &= ~np.asarray(excluded, dtype=bool)
    return top_k(score=gain, groups=weeks, k=budget, allowed=allowed)


# the chance that the switch rule ever fires when uplift ranking truly gains nothing, over every
# look together (one-sided)
SWITCH_ALPHA = 0.025


@dataclass(frozen=True)
class Look:
    """One of the scheduled looks of the switch rule. The outcome weeks fall into periods of one
    horizon (ceil(horizon / 7) weeks) from the first week on; look j uses the weeks of the first
    j + 1 periods, once a week of a later period is in the table (windows close in week order, so
    by then every earlier week's has). Between two looks the rule sees the same weeks and so
    decides the same, however often it runs.

    Look j may be wrong with chance alpha 6 / (pi^2 j^2): the sum over every look is alpha
    (sum 1/j^2 = pi^2 / 6), so however long the rule keeps looking, it switches with chance at
    most alpha when uplift ranking truly gains nothing. Checking a plain 95% interval at every
    look would not bound that chance at all."""

    number: int  # 1 = the first look, at two periods
    period_weeks: int
    weeks: list[str]  # the weeks of outcomes it uses

    @property
    def alpha(self) -> float:
        return SWITCH_ALPHA * 6.0 / (math.pi**2 * self.number**2)

    @property
    def z(self) -> float:
        """How many standard errors above zero the difference must be at this look."""
        return NormalDist().inv_cdf(1.0 - self.alpha)

    def as_dict(self) -> dict:
        return {
            "number": self.number,
            "period_weeks": self.period_weeks,
            "weeks_used": len(self.weeks),
            "through_week": self.weeks[-1],
            "alpha": round(self.alpha, 8),
            "z": round(self.z, 4),
        }


def periods(table: pd.DataFrame, origin: pd.Timestamp | None = None) -> tuple[np.ndarray, int]:
    """Each row's period of one horizon (ceil(horizon / 7) weeks), counted from `origin` (by
    default the table's first week; 0 = the first period), and the period's length in days."""
    starts = pd.to_datetime(table["score_date"])
    period_days = 7 * math.ceil(int(table["horizon_days"].iloc[0]) / 7)
    first = starts.min() if origin is None else origin
    return ((starts - first).dt.days // period_days).to_numpy(), period_days


def last_look(table: pd.DataFrame) -> tuple[pd.DataFrame, Look]:
    """The rows of the latest look the outcome table allows, and that look."""
    period, period_days = periods(table)
    closed = int(period.max())  # periods before the latest one have every week closed
    if closed < 2:
        raise ValueError(
            f"the switch rule first looks at two periods of {period_days // 7} weeks of outcomes, "
            f"once a week after them has closed; the outcomes span {closed + 1} period(s)"
        )
    used = period < closed
    weeks = sorted(table.loc[used, "week"].unique())
    return table[used], Look(number=closed - 1, period_weeks=period_days // 7, weeks=weeks)


@dataclass(frozen=True)
class PolicyComparison:
    """Incremental retained value per week of two contact policies over the same rows, and their
    difference, each net of the contact's cost; `bound` is how many standard errors above zero
    the difference must be for the switch (the look's z)."""

    uplift: Estimate
    value_at_risk: Estimate
    difference: Estimate
    weeks: int
    bound: float

    @property
    def switch_low(self) -> float:
        return self.difference.value - self.bound * self.difference.se

    @property
    def switch(self) -> bool:
        """The file ranks by uplift only when the difference is above zero by the look's bound
        (`Look`): a one-sided interval at level 1 - alpha_j, wider than 95% from the second look
        on."""
        return bool(self.switch_low > 0)

    def as_dict(self) -> dict:
        return {
            "weeks": self.weeks,
            "uplift": self.uplift.as_dict(),
            "value_at_risk": self.value_at_risk.as_dict(),
            "difference": self.difference.as_dict(),
            "switch_bound_z": round(self.bound, 4),
            "switch_low": round(self.switch_low, 6),
            "switch": self.switch,
        }


def compare_policies(
    gamma: np.ndarray,
    value: np.ndarray,
    uplift: np.ndarray,
    value_at_risk: np.ndarray,
    clusters: pd.Series,
    weeks: np.ndarray,
    cost: float,
    bound: float,
) -> PolicyComparison:
    """Each policy's incremental value per week, sum_i pi_i (Gamma_i v_i - cost) / W, from every
    row of the weeks (pi_i is 1 where the policy contacts the row), with the intervals of a mean
    clustered by customer. Gamma is the doubly robust (or inverse-propensity) score, so the
    estimate is unbiased whatever the policy, as long as every row it contacts had a chance of
    contact between 0 and 1."""
    gamma, value = np.asarray(gamma, dtype=float), np.asarray(value, dtype=float)
    pu, pv = np.asarray(uplift, dtype=float), np.asarray(value_at_risk, dtype=float)
    w = len(np.unique(np.asarray(weeks)))
    per_row = len(gamma) / w  # the mean per row times the rows per week

    def total(contacts: np.ndarray) -> Estimate:
        return clustered_mean(contacts * (gamma * value - cost), clusters).scaled(per_row)

    return PolicyComparison(
        uplift=total(pu), value_at_risk=total(pv), difference=total(pu - pv), weeks=w, bound=bound
    )


def training_scores(train: pd.DataFrame, boosting: Boosting = Boosting(), folds: int = 2) -> np.ndarray:
    """The doubly robust score of every training row, its outcome models cross-fitted by customer."""
    mu0, mu1 = cross_fitted_outcomes(train, boosting, folds)
    return dr_scores(
        y=train[OUTCOME].to_numpy(),
        t=train[TREATMENT].to_numpy(),
        e=train[PROPENSITY].to_numpy(),
        mu0=mu0,
        mu1=mu1,
    )


@dataclass(frozen=True)
class Judged:
    """One period of randomized rows judged by a learner fitted on the periods before it: its
    predictions, each row's doubly robust and inverse-propensity scores (outcome models from the
    earlier periods), and whom each policy contacts."""

    period: int
    test: pd.DataFrame
    effect: np.ndarray
    gamma: np.ndarray
    ipw: np.ndarray
    uplift_contacts: np.ndarray
    value_at_risk_contacts: np.ndarray
    excluded_deciles: list[int]


def judge_period(
    rows: pd.DataFrame,
    period: np.ndarray,
    judged: int,
    budget: int,
    cost: float,
    learner: str = "x",
    boosting: Boosting = Boosting(),
) -> Judged:
    """Fit `learner` on the randomized rows of the periods before `judged` and judge the rows of
    period `judged` with it.

    - Sleeping dogs: the deciles of predicted uplift whose realized uplift on the training rows
      (mean cross-fitted doubly robust score) has a 95% upper bound below zero are never contacted.
    - The uplift policy: per week, the `budget` rows with the highest positive predicted uplift x
      predicted value - `cost`. The value-at-risk policy: the week's list (`outreach`), holdout
      included."""
    train, test = rows[period < judged], rows[period == judged]
    train_gamma = training_scores(train, boosting)
    outcome = fit_t(train, boosting)  # the test rows' mu0 and mu1, and the X-learner's first stage
    model: UpliftLearner
    if learner == "dr":
        model = fit_dr(train, boosting, scores=train_gamma)
    elif learner == "x":
        model = fit_x(train, boosting, first=outcome)
    elif learner == "t":
        model = outcome
    else:
        raise ValueError(f"unknown uplift learner {learner!r}: one of {sorted(LEARNERS)}")
    guard = sleeping_dog_guard(model.effect(train), train_gamma, train[CLUSTER])
    effect = model.effect(test)
    mu0, mu1 = outcome.outcomes(test)
    y, t, e = test[OUTCOME].to_numpy(), test[TREATMENT].to_numpy(), test[PROPENSITY].to_numpy()
    contacts = uplift_policy(
        effect=effect,
        value=test[VALUE].to_numpy(dtype=float),
        eligible=np.ones(len(test), dtype=bool),
        weeks=test["week"].to_numpy(),
        budget=budget,
        cost=cost,
        excluded=guard.excludes(effect),
    )
    return Judged(
        period=judged,
        test=test,
        effect=effect,
        gamma=dr_scores(y=y, t=t, e=e, mu0=mu0, mu1=mu1),
        ipw=dr_scores(y=y, t=t, e=e, mu0=np.zeros(len(y)), mu1=np.zeros(len(y))),
        uplift_contacts=contacts,
        value_at_risk_contacts=test["outreach"].to_numpy(dtype=bool),
        excluded_deciles=guard.excluded,
    )


@dataclass(frozen=True)
class Evaluation:
    """An uplift learner judged by rolling origin on the periods of a look: each period after the
    first judged by the learner fitted on the periods before it (`Judged`). The policies' values
    and their difference (what the switch rule weighs) pool every judged period; the Qini, the
    deciles and the uplift at the budget describe the latest one, whose learner saw the most."""

    learner: str
    look: Look
    train_weeks: list[str]  # the first period's weeks: learned from, never judged
    test: pd.DataFrame
    effect: np.ndarray
    gamma: np.ndarray
    ipw: np.ndarray  # the inverse-propensity score of each test row
    uplift_contacts: np.ndarray
    value_at_risk_contacts: np.ndarray
    excluded_deciles: list[int]  # those of the latest period's learner
    comparison: PolicyComparison
    ipw_comparison: PolicyComparison
    # the ranking as the file would use it: the latest period, judged by the learner fitted on
    # every period before it; its Qini, deciles and the realized uplift of its contacts
    latest: Judged
    qini: dict[str, float]
    deciles: pd.DataFrame
    at_budget: Estimate  # realized uplift (retention points) among the uplift policy's contacts

    @property
    def test_weeks(self) -> list[str]:
        return sorted(self.test["week"].unique())


def pooled(judged: list[Judged], learner: str, look: Look, train_weeks: list[str], cost: float) -> Evaluation:
    """The evaluation of the judged periods together: the policies' values per week over every
    judged week, their difference's interval clustered by customer (a customer recurs across
    periods), and the switch asked at `look`'s bound."""
    if not judged:
        raise ValueError("judging an uplift model by time needs a period after the first")
    test = pd.concat([j.test for j in judged])

    def cat(name: str) -> np.ndarray:
        return np.concatenate([getattr(j, name) for j in judged])

    effect, gamma, ipw, contacts, listed = (
        cat(n) for n in ("effect", "gamma", "ipw", "uplift_contacts", "value_at_risk_contacts")
    )
    value, weeks, ids = test[VALUE].to_numpy(dtype=float), test["week"].to_numpy(), test[CLUSTER]
    latest = judged[-1]
    latest_ids, chosen = latest.test[CLUSTER], latest.uplift_contacts

    def compare(scores: np.ndarray) -> PolicyComparison:
        return compare_policies(
            gamma=scores,
            value=value,
            uplift=contacts,
            value_at_risk=listed,
            clusters=ids,
            weeks=weeks,
            cost=cost,
            bound=look.z,
        )

    return Evaluation(
        learner=learner,
        look=look,
        train_weeks=train_weeks,
        test=test,
        effect=effect,
        gamma=gamma,
        ipw=ipw,
        uplift_contacts=contacts,
        value_at_risk_contacts=listed,
        excluded_deciles=latest.excluded_deciles,
        comparison=compare(gamma),
        ipw_comparison=compare(ipw),
        latest=latest,
        qini=qini_coefficient(latest.effect, latest.gamma),
        deciles=decile_table(latest.effect, latest.gamma, latest_ids),
        at_budget=(
            clustered_mean(latest.gamma[chosen], latest_ids[chosen])
            if chosen.any()
            else Estimate(0.0, 0.0, 0)
        ),
    )


def rolling(
    table: pd.DataFrame, budget: int, cost: float, learner: str = "x", boosting: Boosting = Boosting()
) -> tuple[list[Judged], Look, list[str]]:
    """Rolling origin over the randomized rows (0 < chance of contact < 1) of the periods the
    latest look of the switch rule uses (`last_look`): each period after the first judged by the
    learner fitted on every period before it (`judge_period`). Returns the judged periods, the
    look, and the first period's weeks (learned from, never judged). A judged period does not
    depend on any later one, so the earlier looks are the prefixes of the list."""
    seen, look = last_look(table)
    rows = randomized(seen)
    period, _ = periods(rows, origin=pd.to_datetime(seen["score_date"]).min())
    judged = [
        judge_period(rows, period, p, budget=budget, cost=cost, learner=learner, boosting=boosting)
        for p in range(1, look.number + 1)
        if (period == p).any()
    ]
    return judged, look, sorted(rows.loc[period == 0, "week"].unique())


def evaluate(
    table: pd.DataFrame,
    budget: int,
    cost: float,
    learner: str = "x",
    boosting: Boosting = Boosting(),
) -> Evaluation:
    """Judge `learner` by rolling origin on the outcome table (docs/uplift.md): each period after
    the first judged by the learner as the file would have used it then (`rolling`), and the judged
    periods pooled (`pooled`). Every judged week counts, not only a last third, and no row is
    judged by a model that saw it or its period."""
    judged, look, first = rolling(table, budget=budget, cost=cost, learner=learner, boosting=boosting)
    return pooled(judged, learner=learner, look=look, train_weeks=first, cost=cost)


@dataclass(frozen=True)
class SavedUplift:
    """An uplift learner as kept on disk: its LightGBM boosters (text) and how their predictions
    combine into an effect (T: mu1 - mu0; X: g tau0 + (1 - g) tau1; DR: tau)."""

    learner: str
    features: list[str]
    treated_share: float
    boosters: dict[str, lgb.Booster]

    def effect(self, table: pd.DataFrame) -> np.ndarray:
        x = model_frame(table, self.features)
        p = {name: np.asarray(b.predict(x)) for name, b in self.boosters.items()}
        if self.learner == "t":
            return p["mu1"] - p["mu0"]
        if self.learner == "x":
            return self.treated_share * p["tau0"] + (1.0 - self.treated_share) * p["tau1"]
        return p["tau"]

    @property
    def explains(self) -> bool:
        """Whether the effect's SHAP values add up on the probability scale: the X and DR
        learners' boosters are regressions of effects; the T-learner's are two classifiers in
        log-odds, whose difference of probabilities no sum of contributions gives."""
        return self.learner in ("x", "dr")

    def contributions(self, table: pd.DataFrame) -> pd.DataFrame:
        """One row per customer: each feature's SHAP value for the predicted uplift (retention
        probability) and the base value, summing to the prediction (TreeSHAP, linear in the
        X-learner's mix)."""
        if not self.explains:
            raise ValueError(f"the {self.learner}-learner's uplift has no additive SHAP values")
        x = model_frame(table, self.features)
        weights = (
            {"tau": 1.0}
            if self.learner == "dr"
            else {"tau0": self.treated_share, "tau1": 1.0 - self.treated_share}
        )
        raw = np.zeros((len(x), len(self.features) + 1))
        for name, w in weights.items():
            raw += w * np.asarray(self.boosters[name].predict(x, pred_contrib=True))
        frame = pd.DataFrame(raw[:, :-1], columns=self.features)
        frame.insert(0, "customer_id", table["customer_id"].to_numpy())
        frame["base_value"] = raw[:, -1]
        return frame


UPLIFT_MODEL_FILE = "uplift_model.json"


def save_learner(model: UpliftLearner, folder: Path) -> None:
    """The learner's boosters as LightGBM text beside a JSON that says how they combine."""
    if isinstance(model, TLearner):
        parts, learner, share = {"mu0": model.mu0_model, "mu1": model.mu1_model}, "t", 0.0
    elif isinstance(model, XLearner):
        parts, learner, share = {"tau0": model.tau0_model, "tau1": model.tau1_model}, "x", model.treated_share
    else:
        parts, learner, share = {"tau": model.tau_model}, "dr", 0.0
    folder.mkdir(parents=True, exist_ok=True)
    for name, estimator in parts.items():
        if getattr(estimator, "n_classes_", 2) != 2:
            raise ValueError(f"the {name} model saw one outcome only; it cannot be kept")
        estimator.booster_.save_model(str(folder / f"{name}.txt"))
    write_json(
        {"learner": learner, "features": model.features, "treated_share": share, "boosters": sorted(parts)},
        folder / UPLIFT_MODEL_FILE,
    )


def load_learner(folder: Path) -> SavedUplift:
    meta = json.loads((folder / UPLIFT_MODEL_FILE).read_text(encoding="utf-8"))
    return SavedUplift(
        learner=meta["learner"],
        features=meta["features"],
        treated_share=float(meta["treated_share"]),
        boosters={name: lgb.Booster(model_file=str(folder / f"{name}.txt")) for name in meta["boosters"]},
    )


DECISION_FILE = "uplift.json"  # `churn uplift`'s summary: the ranking it decided, and why


@dataclass(frozen=True)
class UpliftRanking:
    """What the score stage needs to rank by uplift: the kept learner, its sleeping-dog guard and
    the cost of a contact."""

    model: SavedUplift
    guard: SleepingDogGuard
    cost: float
    why: str

    def net_gain(self, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per row: the predicted uplift, effect x predicted value - cost, and whether the guard
        lets the row be contacted."""
        effect = self.model.effect(table)
        gain = effect * table[VALUE].to_numpy(dtype=float) - self.cost
        return effect, gain, ~self.guard.excludes(effect)


class DecisionError(PipelineError):
    """`churn uplift`'s decision cannot be read."""


def read_ranking(folder: Path) -> tuple[dict, UpliftRanking | None]:
    """`churn uplift`'s decision in `folder`, and the uplift ranking when it decided so."""
    path = Path(folder) / DECISION_FILE
    try:
        decision = json.loads(path.read_text(encoding="utf-8"))
        if decision.get("ranking") != "uplift":
            return decision, None
        guard = SleepingDogGuard(
            edges=decision["guard"]["edges"], excluded=decision["guard"]["excluded_deciles"]
        )
        model = load_learner(Path(folder) / decision["model"])
        return decision, UpliftRanking(
            model=model, guard=guard, cost=float(decision["contact_cost"]), why=decision["why"]
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DecisionError(
            f"{path}: not a decision of churn uplift ({type(exc).__name__}: {exc}); "
            f"rerun churn uplift --out-dir {folder}"
        ) from exc
