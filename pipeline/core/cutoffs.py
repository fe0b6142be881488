"""Cutoff schedule: the dates at which labels and point-in-time features are taken.

`plan_schedule` turns the declared spec (horizon, spacing, number of cutoffs, eligibility lookback)
and the span of the data into the cutoffs the pipeline uses, after checking that the data can
support them: every cutoff needs a full lookback of data before it and a closed label window after
it, and there must be enough cutoffs for the purged train/validation/test split at every backtest
origin. When it cannot, the spec either shrinks to fit (`adapt_to_history`) or is refused.
Cutoffs lie on a fixed grid of the spacing (`latest_cutoff`), so that a week later most of them
are the same dates and their snapshots can be reused."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from pipeline.core.errors import PipelineError
from pipeline.core.params import FeaturizeParams, Params

# the coarsest spacing the schedule falls back to before it shortens the lookback or the horizon
WEEK = 7


class ScheduleError(PipelineError):
    """The data's history cannot support the cutoff schedule."""


@dataclass(frozen=True)
class SplitNeeds:
    """How many cutoffs the evaluation consumes: `train`'s test cutoffs and every `backtest` origin."""

    test_cutoffs: int
    origins: int
    min_customers: int = 1

    @classmethod
    def of(cls, params: Params) -> SplitNeeds:
        t = params.train
        return cls(t.test_cutoffs, params.backtest.origins, t.min_customers)


@dataclass(frozen=True)
class Schedule:
    horizon_days: int
    every_days: int
    lookback_days: int  # eligibility: a customer is in a snapshot with an order this recently
    cutoffs: list[dt.date]
    changes: tuple[str, ...] = ()  # how the declared spec was adapted to the history, in words
    history_days: int | None = None  # data required before the first cutoff (None: the lookback)

    def as_dict(self) -> dict:
        return {
            "horizon_days": self.horizon_days,
            "cutoff_every_days": self.every_days,
            "eligibility_lookback_days": self.lookback_days,
            "history_before_first_cutoff_days": self.history_days or self.lookback_days,
            "n_cutoffs": len(self.cutoffs),
            "first_cutoff": self.cutoffs[0].isoformat(),
            "last_cutoff": self.cutoffs[-1].isoformat(),
            "adapted": list(self.changes),
        }


# Cutoffs lie on a fixed grid: GRID_ANCHOR plus a whole number of spacings. Next week's run then
# keeps every cutoff but the newest, so its snapshots can be reused (`features.write_snapshots`);
# cutoffs counted back from each scoring date would all move by a week.
GRID_ANCHOR = dt.date(1970, 1, 5)  # a Monday: 7- and 14-day grids fall on Mondays


def latest_cutoff(score_date: dt.date, horizon_days: int, every_days: int) -> dt.date:
    """The last grid date whose label window [cutoff, cutoff + horizon) closes on or before the
    scoring date (up to `every_days - 1` days earlier than the scoring date minus the horizon)."""
    last = score_date - dt.timedelta(days=horizon_days)
    return last - dt.timedelta(days=(last - GRID_ANCHOR).days % every_days)


def training_cutoffs(
    score_date: dt.date, horizon_days: int, every_days: int, n_cutoffs: int
) -> list[dt.date]:
    """Cutoffs in ascending order, every `every_days` on the grid, the latest being `latest_cutoff`."""
    latest = latest_cutoff(score_date, horizon_days, every_days)
    return [latest - dt.timedelta(days=every_days * k) for k in range(n_cutoffs)][::-1]


def cutoffs_needed(horizon_days: int, every_days: int, needs: SplitNeeds) -> int:
    """The fewest evenly spaced cutoffs that let every test cutoff and backtest origin train on at
    least one cutoff whose label window closed by it: the origins, then a horizon's worth of
    cutoffs before the earliest, then one to train on."""
    return math.ceil(horizon_days / every_days) + max(needs.test_cutoffs, needs.origins)


# the least data a cutoff needs before it when the declared lookback does not fit the history
MIN_HISTORY_DAYS = 28


def _fit(room_days: int, horizon: int, every: int, history: int, wanted: int, needs: SplitNeeds) -> int:
    """How many cutoffs fit from the first day to the latest cutoff (`room_days` apart) with
    `history` days of data before the first one, capped at `wanted`; 0 when fewer than the split
    needs."""
    room = room_days - history
    fits = room // every + 1 if room >= 0 else 0
    return min(wanted, fits) if fits >= cutoffs_needed(horizon, every, needs) else 0


def plan_schedule(
    first_day: dt.date, score_date: dt.date, spec: FeaturizeParams, needs: SplitNeeds
) -> Schedule:
    """The cutoffs for data observed from `first_day` up to (not including) `score_date`.

    The horizon is the user's question and is never changed, unless `horizon_days` is `auto`
    (then the longest of `horizon_candidates` the history supports). With
    `spec.adapt_to_history`, a spec the history cannot hold shrinks in this order until it fits:
    cutoffs weekly instead of every `cutoff_every_days`; then the data required before the first
    cutoff, from the eligibility lookback down to 28 days (who is eligible does not change: early
    cutoffs simply see every customer so far). Otherwise, and when even that does not fit, it is
    refused with the arithmetic."""
    span = (score_date - first_day).days
    horizons = (
        sorted(spec.horizon_candidates, reverse=True) if spec.horizon_days == "auto" else [spec.horizon_days]
    )
    lookback, declared_every = spec.eligibility_lookback_days, spec.cutoff_every_days
    for horizon in horizons:
        need = cutoffs_needed(horizon, declared_every, needs)
        if spec.n_cutoffs < need and not spec.adapt_to_history:
            raise ScheduleError(
                f"featurize.n_cutoffs = {spec.n_cutoffs} is fewer than the {need} cutoffs a {horizon}-day "
                f"horizon needs with cutoffs every {declared_every} days and "
                f"{max(needs.test_cutoffs, needs.origins)} test/backtest origin(s)"
            )
        latest = latest_cutoff(score_date, horizon, declared_every)
        n = _fit(
            room_days=(latest - first_day).days,
            horizon=horizon,
            every=declared_every,
            history=lookback,
            wanted=max(spec.n_cutoffs, need),
            needs=needs,
        )
        if n:
            return _schedule(
                spec=spec,
                score_date=score_date,
                horizon=horizon,
                every=declared_every,
                lookback=lookback,
                n=n,
                history=None,
            )
        if not spec.adapt_to_history:
            continue
        for every in dict.fromkeys([declared_every, min(declared_every, WEEK)]):
            wanted = max(spec.n_cutoffs, cutoffs_needed(horizon, every, needs))
            # as many of the wanted cutoffs as fit with at least MIN_HISTORY_DAYS before the first
            to_latest = (latest_cutoff(score_date, horizon, every) - first_day).days
            room = to_latest - MIN_HISTORY_DAYS
            n = min(wanted, room // every + 1) if room >= 0 else 0
            if n < cutoffs_needed(horizon, every, needs):
                continue
            history = min(lookback, to_latest - (n - 1) * every)
            return _schedule(
                spec=spec,
                score_date=score_date,
                horizon=horizon,
                every=every,
                lookback=lookback,
                n=n,
                history=history,
            )
    horizon = horizons[-1]
    every = min(declared_every, WEEK) if spec.adapt_to_history else declared_every
    need = cutoffs_needed(horizon, every, needs)
    to_grid = (score_date - dt.timedelta(days=horizon) - latest_cutoff(score_date, horizon, every)).days
    least = (MIN_HISTORY_DAYS if spec.adapt_to_history else lookback) + horizon + (need - 1) * every + to_grid
    raise ScheduleError(
        f"the history from {first_day} to {score_date} spans {span} days, shorter than the {least} days "
        f"a {horizon}-day horizon needs: "
        + (
            f"{MIN_HISTORY_DAYS} days of data before the first cutoff"
            if spec.adapt_to_history
            else f"a {lookback}-day eligibility lookback before the first cutoff"
        )
        + f", then {need} cutoffs every {every} days (each of the {max(needs.test_cutoffs, needs.origins)} "
        f"test/backtest origin(s) needs a cutoff whose {horizon}-day label window closed by it), and the "
        f"last label window"
        + (f", {to_grid} day(s) more as cutoffs fall on a {every}-day grid" if to_grid else "")
        + ". Lower featurize.horizon_days"
        + ("" if spec.adapt_to_history else ", set featurize.adapt_to_history: true")
        + ", lower backtest.origins, or use a longer export"
    )


def _schedule(
    spec: FeaturizeParams,
    score_date: dt.date,
    horizon: int,
    every: int,
    lookback: int,
    n: int,
    history: int | None,
) -> Schedule:
    changes = tuple(
        f"{name} {old} -> {new}"
        for name, old, new in (
            ("horizon_days", spec.horizon_days, horizon),
            ("cutoff_every_days", spec.cutoff_every_days, every),
            (
                "history before the first cutoff (days)",
                lookback,
                history if history is not None else lookback,
            ),
            ("n_cutoffs", spec.n_cutoffs, n),
        )
        if old != new
    )
    cutoffs = training_cutoffs(score_date=score_date, horizon_days=horizon, every_days=every, n_cutoffs=n)
    return Schedule(
        horizon_days=horizon,
        every_days=every,
        lookback_days=lookback,
        cutoffs=cutoffs,
        changes=changes,
        history_days=history,
    )


def iso_week_label(day: dt.date) -> str:
    """ISO week of a date as YYYY-Www, the key of a weekly score file."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"
