"""Cutoff schedule: the dates at which labels and point-in-time features are taken.

`plan_schedule` turns the declared spec (horizon, spacing, number of cutoffs, eligibility lookback)
and the span of the data into the cutoffs the pipeline uses, after checking that the data can
support them: every cutoff needs a full lookback of data before it and a closed label window after
it, and there must be enough cutoffs for the purged train/validation/test split at every backtest
origin. When it cannot, the spec either shrinks to fit (`adapt_to_history`) or is refused."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from pipeline.params import FeaturizeParams, Params

# the coarsest spacing the schedule falls back to before it shortens the lookback or the horizon
WEEK = 7


class ScheduleError(ValueError):
    """The data's history cannot support the cutoff schedule."""


@dataclass(frozen=True)
class SplitNeeds:
    """How many cutoffs the purged splits consume: `train` and every `backtest` origin."""

    valid_cutoffs: int
    test_cutoffs: int
    origins: int
    min_customers: int = 1

    @classmethod
    def of(cls, params: Params) -> SplitNeeds:
        t = params.train
        return cls(t.valid_cutoffs, t.test_cutoffs, params.backtest.origins, t.min_customers)


@dataclass(frozen=True)
class Schedule:
    horizon_days: int
    every_days: int
    lookback_days: int
    cutoffs: list[dt.date]
    changes: tuple[str, ...] = ()  # how the declared spec was adapted to the history, in words

    def as_dict(self) -> dict:
        return {
            "horizon_days": self.horizon_days,
            "cutoff_every_days": self.every_days,
            "eligibility_lookback_days": self.lookback_days,
            "n_cutoffs": len(self.cutoffs),
            "first_cutoff": self.cutoffs[0].isoformat(),
            "last_cutoff": self.cutoffs[-1].isoformat(),
            "adapted": list(self.changes),
        }


def training_cutoffs(
    score_date: dt.date, horizon_days: int, every_days: int, n_cutoffs: int
) -> list[dt.date]:
    """Cutoffs in ascending order, every `every_days`, the latest one being the last whose
    label window [cutoff, cutoff + horizon) closes on or before the scoring date."""
    latest = score_date - dt.timedelta(days=horizon_days)
    return [latest - dt.timedelta(days=every_days * k) for k in range(n_cutoffs)][::-1]


def cutoffs_needed(horizon_days: int, every_days: int, needs: SplitNeeds) -> int:
    """The fewest evenly spaced cutoffs on which the purged split works at every backtest origin:
    test, then a gap of one horizon, the validation cutoffs, another horizon, one training cutoff."""
    gap = math.ceil(horizon_days / every_days)
    return 2 * gap + needs.valid_cutoffs + max(needs.test_cutoffs, needs.origins)


def _fit(span: int, horizon: int, every: int, lookback: int, wanted: int, needs: SplitNeeds) -> int:
    """How many cutoffs fit in `span` days with a full lookback before the first one and a closed
    label window after the last, capped at `wanted`; 0 when fewer than the split needs fit."""
    room = span - lookback - horizon
    fits = room // every + 1 if room >= 0 else 0
    return min(wanted, fits) if fits >= cutoffs_needed(horizon, every, needs) else 0


def plan_schedule(
    first_day: dt.date, score_date: dt.date, spec: FeaturizeParams, needs: SplitNeeds
) -> Schedule:
    """The cutoffs for data observed from `first_day` up to (not including) `score_date`.

    With `spec.adapt_to_history`, a spec the history cannot hold shrinks in this order until it
    fits: cutoffs weekly instead of every `cutoff_every_days`; then the lookback, down to twice
    the horizon; then the horizon, to the next smaller of `horizon_candidates`; at each step the
    longest lookback that still fits is kept. The split's validation cutoffs and backtest origins
    never shrink: they are what makes the held-out numbers honest."""
    span = (score_date - first_day).days
    horizon, every, lookback = spec.horizon_days, spec.cutoff_every_days, spec.eligibility_lookback_days
    wanted = max(spec.n_cutoffs, cutoffs_needed(horizon, every, needs))
    if spec.n_cutoffs < cutoffs_needed(horizon, every, needs) and not spec.adapt_to_history:
        raise ScheduleError(
            f"featurize.n_cutoffs = {spec.n_cutoffs} is fewer than the "
            f"{cutoffs_needed(horizon, every, needs)} cutoffs the purged split needs with a "
            f"{horizon}-day horizon, cutoffs every {every} days, {needs.valid_cutoffs} validation "
            f"cutoff(s) and {max(needs.test_cutoffs, needs.origins)} test/backtest origin(s)"
        )
    n = _fit(span, horizon, every, lookback, wanted, needs)
    if n:
        return _schedule(spec, score_date, horizon, every, lookback, n)
    needed = lookback + horizon + (cutoffs_needed(horizon, every, needs) - 1) * every
    problem = (
        f"the history from {first_day} to {score_date} spans {span} days, shorter than the "
        f"{needed} days the schedule needs: a {lookback}-day eligibility lookback before the first "
        f"cutoff, {cutoffs_needed(horizon, every, needs)} cutoffs every {every} days for the purged "
        f"split and backtest, and a {horizon}-day label window after the last"
    )
    if not spec.adapt_to_history:
        raise ScheduleError(
            f"{problem}; lower featurize.horizon_days or featurize.eligibility_lookback_days, "
            "or set featurize.adapt_to_history: true"
        )
    horizons = [horizon, *sorted((h for h in spec.horizon_candidates if h < horizon), reverse=True)]
    for h in horizons:
        for e in dict.fromkeys([every, min(every, WEEK)]):
            need = cutoffs_needed(h, e, needs)
            longest = span - h - (need - 1) * e
            lb = min(lookback, longest)
            if lb < min(lookback, 2 * h):
                continue
            n = _fit(span, h, e, lb, max(spec.n_cutoffs, need), needs)
            return _schedule(spec, score_date, h, e, lb, n, problem)
    raise ScheduleError(
        f"{problem}; even the shortest candidate horizon ({horizons[-1]} days) with weekly cutoffs "
        "does not fit: the data is too short to train and test a churn model"
    )


def _schedule(
    spec: FeaturizeParams, score_date: dt.date, horizon: int, every: int, lookback: int, n: int, *why: str
) -> Schedule:
    changes = tuple(
        f"{name} {old} -> {new}"
        for name, old, new in (
            ("horizon_days", spec.horizon_days, horizon),
            ("cutoff_every_days", spec.cutoff_every_days, every),
            ("eligibility_lookback_days", spec.eligibility_lookback_days, lookback),
            ("n_cutoffs", spec.n_cutoffs, n),
        )
        if old != new
    )
    cutoffs = training_cutoffs(score_date, horizon, every, n)
    return Schedule(horizon, every, lookback, cutoffs, (*why, *changes) if changes else ())


def iso_week_label(day: dt.date) -> str:
    """ISO week of a date as YYYY-Www, the key of a weekly score file."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
