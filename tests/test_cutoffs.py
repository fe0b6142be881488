import datetime as dt
import itertools

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.cutoffs import (
    GRID_ANCHOR,
    MIN_HISTORY_DAYS,
    ScheduleError,
    SplitNeeds,
    cutoffs_needed,
    iso_week_label,
    latest_cutoff,
    plan_schedule,
    training_cutoffs,
)
from pipeline.core.fitting import TrainError, temporal_split
from tests.conftest import TRAIN_PARAMS as TRAIN
from tests.conftest import examples, featurize_params

SPEC = featurize_params(
    n_cutoffs=24, trend_days=90, horizon_candidates=[14, 30, 60, 90, 180], adapt_to_history=True
)
NEEDS = SplitNeeds(test_cutoffs=1, origins=3)
D = dt.date.fromisoformat


def test_schedule_ends_at_the_last_grid_date_whose_label_window_closed():
    # 2026-11-16 - 90 days = Tuesday 2026-08-18; the 14-day grid from Monday 1970-01-05 has 08-17
    cutoffs = training_cutoffs(dt.date(2026, 11, 16), horizon_days=90, every_days=14, n_cutoffs=3)
    assert cutoffs == [dt.date(2026, 7, 20), dt.date(2026, 8, 3), dt.date(2026, 8, 17)]
    assert latest_cutoff(dt.date(2026, 11, 15), 90, 14) == dt.date(2026, 8, 17)  # 08-17 + 90 days
    assert latest_cutoff(dt.date(2026, 11, 14), 90, 14) == dt.date(2026, 8, 3)
    assert all((c - GRID_ANCHOR).days % 14 == 0 and c.weekday() == 0 for c in cutoffs)


def test_next_weeks_schedule_keeps_every_cutoff_but_adds_at_most_one():
    # the scoring date moves a week at a time; a 14-day grid keeps all cutoffs one week, and
    # drops the oldest for a new one the next
    weeks = [
        training_cutoffs(
            dt.date(2026, 11, 16) + dt.timedelta(days=7 * k), horizon_days=90, every_days=14, n_cutoffs=24
        )
        for k in range(4)
    ]
    for before, after in itertools.pairwise(weeks):
        assert len(set(after) - set(before)) <= 1 and len(set(before) & set(after)) >= 23
    assert weeks[0] == weeks[1] and weeks[2] == [*weeks[1][1:], dt.date(2026, 8, 31)]


def test_cutoffs_needed_counts_a_horizon_before_the_earliest_origin_and_the_origins():
    # ceil(90 / 14) = 7 cutoffs back from the earliest of 3 origins reach one whose label closed
    assert cutoffs_needed(90, 14, NEEDS) == 7 + 3
    assert cutoffs_needed(14, 7, SplitNeeds(1, 1)) == 2 + 1


def test_a_long_history_keeps_the_declared_spec():
    s = plan_schedule(first_day=D("2024-05-06"), score_date=D("2026-11-17"), spec=SPEC, needs=NEEDS)
    assert (s.horizon_days, s.every_days, s.lookback_days, len(s.cutoffs)) == (90, 14, 365, 24)
    assert (s.cutoffs[0], s.cutoffs[-1]) == (D("2025-09-29"), D("2026-08-17"))
    assert s.changes == () and s.history_days is None


def test_a_two_year_history_fits_fewer_cutoffs():
    # Online Retail II: 2009-12-01 .. 2011-12-09; the last cutoff is 2011-09-05, 6 days before
    # 2011-12-10 - 90 on the 14-day grid: (739 - 90 - 6 - 365) // 14 + 1 = 20 cutoffs fit
    s = plan_schedule(first_day=D("2009-12-01"), score_date=D("2011-12-10"), spec=SPEC, needs=NEEDS)
    assert (s.horizon_days, s.lookback_days, len(s.cutoffs)) == (90, 365, 20)
    assert s.cutoffs[-1] == D("2011-09-05")
    assert s.changes == ("n_cutoffs 24 -> 20",)
    assert s.cutoffs[0] - dt.timedelta(days=365) >= D("2009-12-01")


def test_an_eighteen_month_history_keeps_the_horizon_and_needs_less_history_before_the_first_cutoff():
    # CDNOW, 546 days, H = 180: the last cutoff is on the grid 4 days before 1998-07-01 - 180, and
    # 24 cutoffs every 14 days leave 546 - 180 - 4 - 23 * 14 = 40 days before the first; who is
    # eligible (ordered within 365 days) does not change
    s = plan_schedule(
        first_day=D("1997-01-01"),
        score_date=D("1998-07-01"),
        spec=SPEC.model_copy(update={"horizon_days": 180}),
        needs=NEEDS,
    )
    assert (s.horizon_days, s.every_days, s.lookback_days, s.history_days, len(s.cutoffs)) == (
        180,
        14,
        365,
        40,
        24,
    )
    assert s.changes == ("history before the first cutoff (days) 365 -> 40",)
    assert (s.cutoffs[0], s.cutoffs[-1]) == (D("1997-02-10"), D("1997-12-29"))


def test_a_four_month_history_never_changes_a_declared_horizon():
    # 120 days: H = 90 needs 28 days of data, then 13 + 3 weekly cutoffs, then 90, and the 4 days
    # from the last cutoff on the weekly grid to 2001-03-01 - 90: 28 + 105 + 90 + 4 = 227
    with pytest.raises(ScheduleError) as err:
        plan_schedule(first_day=D("2000-11-01"), score_date=D("2001-03-01"), spec=SPEC, needs=NEEDS)
    assert str(err.value) == (
        "the history from 2000-11-01 to 2001-03-01 spans 120 days, shorter than the 227 days a 90-day "
        "horizon needs: 28 days of data before the first cutoff, then 16 cutoffs every 7 days (each of "
        "the 3 test/backtest origin(s) needs a cutoff whose 90-day label window closed by it), and the "
        "last label window, 4 day(s) more as cutoffs fall on a 7-day grid. Lower featurize.horizon_days, "
        "lower backtest.origins, or use a longer export"
    )


def test_an_auto_horizon_is_the_longest_candidate_the_history_supports():
    # 120 days, weekly: H = 60 needs 28 + (9 + 3 - 1) * 7 + 60 = 165 > 120; H = 30 needs 28 + 49 + 30
    s = plan_schedule(
        first_day=D("2000-11-01"),
        score_date=D("2001-03-01"),
        spec=SPEC.model_copy(update={"horizon_days": "auto"}),
        needs=NEEDS,
    )
    assert (s.horizon_days, s.every_days, len(s.cutoffs)) == (30, 7, 9)
    assert s.changes[:2] == ("horizon_days auto -> 30", "cutoff_every_days 14 -> 7")


def test_without_adapting_a_short_history_is_refused_with_the_arithmetic():
    with pytest.raises(ScheduleError) as err:
        plan_schedule(
            first_day=D("1997-01-01"),
            score_date=D("1998-07-01"),
            spec=SPEC.model_copy(update={"adapt_to_history": False}),
            needs=NEEDS,
        )
    message = str(err.value)
    # 365 + 90 + 9 * 14 = 581, and 10 days from the last grid date to 1998-07-01 - 90
    assert "spans 546 days, shorter than the 591 days a 90-day horizon needs" in message
    assert "a 365-day eligibility lookback before the first cutoff" in message
    assert "set featurize.adapt_to_history: true" in message


def test_too_few_declared_cutoffs_for_the_split_is_refused_without_adapting():
    spec = SPEC.model_copy(update={"adapt_to_history": False, "n_cutoffs": 6})
    with pytest.raises(ScheduleError, match="n_cutoffs = 6 is fewer than the 10 cutoffs a 90-day horizon"):
        plan_schedule(first_day=D("2020-01-01"), score_date=D("2026-01-01"), spec=spec, needs=NEEDS)


PLANNED = {"fits": 0, "refused": 0}
PLAN_EXAMPLES = examples(300)


@settings(max_examples=PLAN_EXAMPLES)
@given(
    span=st.integers(30, 1500),
    horizon=st.sampled_from([14, 30, 60, 90, 180]),
    every=st.integers(1, 30),
    lookback=st.integers(7, 730),
    n_cutoffs=st.integers(1, 40),
    origins=st.integers(1, 4),
    adapt=st.booleans(),
)
def test_every_planned_schedule_fits_and_splits_and_every_refusal_is_owed_to_the_history(
    span, horizon, every, lookback, n_cutoffs, origins, adapt
):
    spec = SPEC.model_copy(
        update={
            "horizon_days": horizon,
            "cutoff_every_days": every,
            "eligibility_lookback_days": lookback,
            "n_cutoffs": n_cutoffs,
            "adapt_to_history": adapt,
        }
    )
    first, score = D("2020-01-01"), D("2020-01-01") + dt.timedelta(days=span)
    needs = SplitNeeds(1, origins)
    try:
        s = plan_schedule(first_day=first, score_date=score, spec=spec, needs=needs)
    except ScheduleError:
        PLANNED["refused"] += 1
        # a refusal is owed: no spacing the planner may use fits the needed cutoffs
        spacings = [every, min(every, 7)] if adapt else [every]
        least = MIN_HISTORY_DAYS if adapt else lookback
        fits = any(
            (latest_cutoff(score, horizon, e) - first).days - least
            >= (cutoffs_needed(horizon, e, needs) - 1) * e
            and (adapt or n_cutoffs >= cutoffs_needed(horizon, e, needs))
            for e in spacings
        )
        assert not fits
        return
    PLANNED["fits"] += 1
    history = s.history_days or s.lookback_days
    assert s.horizon_days == horizon and s.lookback_days == lookback  # the question never changes
    assert s.cutoffs == sorted(s.cutoffs) and len(s.cutoffs) >= cutoffs_needed(horizon, s.every_days, needs)
    assert s.cutoffs[0] - dt.timedelta(days=history) >= first and history >= min(MIN_HISTORY_DAYS, lookback)
    assert s.cutoffs[-1] + dt.timedelta(days=horizon) <= score
    resolved = (s.every_days, history, len(s.cutoffs))
    assert (s.changes == ()) == (resolved == (every, lookback, n_cutoffs))
    if not adapt:
        assert resolved[:2] == (every, lookback)
    stamps = [pd.Timestamp(c) for c in s.cutoffs]
    for k in range(origins):
        known = stamps[: len(stamps) - k]
        try:
            temporal_split(known, horizon, TRAIN.model_copy(update={"test_cutoffs": 1}))
        except TrainError as exc:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"origin {k} cannot be split: {exc}") from exc


def test_the_property_test_reaches_both_outcomes():
    """Hypothesis explored both schedules that fit and refusals (run after the property test)."""
    if PLANNED["fits"] + PLANNED["refused"] == 0:
        pytest.skip("run together with the property test")
    # at least a tenth of the examples fit and a fifteenth are refused (30 and 20 of 300; a fifth
    # to a third fit in practice)
    assert PLANNED["fits"] >= PLAN_EXAMPLES // 10 and PLANNED["refused"] >= PLAN_EXAMPLES // 15, PLANNED


def test_iso_week_label():
    assert iso_week_label(dt.date(2026, 11, 16)) == "2026-W47"
    assert iso_week_label(dt.date(2027, 1, 1)) == "2026-W53"
