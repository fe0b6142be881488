import datetime as dt

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.cutoffs import (
    ScheduleError,
    SplitNeeds,
    cutoffs_needed,
    iso_week_label,
    plan_schedule,
    training_cutoffs,
)
from pipeline.train import TrainError, temporal_split
from tests.conftest import featurize_params
from tests.test_train import PARAMS as TRAIN

SPEC = featurize_params(
    n_cutoffs=24, trend_days=90, horizon_candidates=[14, 30, 60, 90, 180], adapt_to_history=True
)
NEEDS = SplitNeeds(valid_cutoffs=3, test_cutoffs=1, origins=3)
D = dt.date.fromisoformat


def test_schedule_ends_where_the_last_label_window_closes():
    cutoffs = training_cutoffs(dt.date(2026, 11, 16), horizon_days=90, every_days=14, n_cutoffs=3)
    assert cutoffs == [dt.date(2026, 7, 21), dt.date(2026, 8, 4), dt.date(2026, 8, 18)]
    assert cutoffs[-1] + dt.timedelta(days=90) == dt.date(2026, 11, 16)


def test_cutoffs_needed_counts_two_purge_gaps_validation_and_origins():
    # gap = ceil(90 / 14) = 7 cutoffs; 7 + 3 validation + 7 + max(1 test, 3 origins)
    assert cutoffs_needed(90, 14, NEEDS) == 20
    assert cutoffs_needed(14, 7, SplitNeeds(1, 1, 1)) == 2 * 2 + 1 + 1


def test_a_long_history_keeps_the_declared_spec():
    s = plan_schedule(D("2024-05-06"), D("2026-11-17"), SPEC, NEEDS)
    assert (s.horizon_days, s.every_days, s.lookback_days, len(s.cutoffs)) == (90, 14, 365, 24)
    assert (s.cutoffs[0], s.cutoffs[-1]) == (D("2025-10-01"), D("2026-08-19"))
    assert s.changes == ()


def test_a_two_year_history_fits_fewer_cutoffs():
    # Online Retail II: 2009-12-01 .. 2011-12-09; (739 - 365 - 90) // 14 + 1 = 21 cutoffs fit
    s = plan_schedule(D("2009-12-01"), D("2011-12-10"), SPEC, NEEDS)
    assert (s.horizon_days, s.lookback_days, len(s.cutoffs)) == (90, 365, 21)
    assert s.changes == ("n_cutoffs 24 -> 21",)
    assert s.cutoffs[0] - dt.timedelta(days=365) >= D("2009-12-01")


def test_an_eighteen_month_history_shortens_the_lookback():
    # CDNOW: 546 days; 20 cutoffs every 14 days and H = 90 leave 546 - 90 - 266 = 190 days of lookback
    s = plan_schedule(D("1997-01-01"), D("1998-07-01"), SPEC, NEEDS)
    assert (s.horizon_days, s.every_days, s.lookback_days, len(s.cutoffs)) == (90, 14, 190, 20)
    assert s.changes[1:] == ("eligibility_lookback_days 365 -> 190", "n_cutoffs 24 -> 20")
    assert "spans 546 days, shorter than the 721 days" in s.changes[0]


def test_a_four_month_history_shortens_horizon_spacing_and_lookback():
    s = plan_schedule(D("2000-11-01"), D("2001-03-01"), SPEC, NEEDS)
    assert (s.horizon_days, s.every_days, s.lookback_days, len(s.cutoffs)) == (14, 7, 43, 10)
    assert s.changes[1:] == (
        "horizon_days 90 -> 14",
        "cutoff_every_days 14 -> 7",
        "eligibility_lookback_days 365 -> 43",
        "n_cutoffs 24 -> 10",
    )
    assert s.cutoffs[0] == D("2000-12-14") and s.cutoffs[-1] == D("2001-02-15")


def test_without_adapting_a_short_history_is_refused_with_the_arithmetic():
    with pytest.raises(ScheduleError) as err:
        plan_schedule(
            D("1997-01-01"), D("1998-07-01"), SPEC.model_copy(update={"adapt_to_history": False}), NEEDS
        )
    message = str(err.value)
    assert "spans 546 days, shorter than the 721 days the schedule needs" in message
    assert "a 365-day eligibility lookback" in message and "a 90-day label window" in message
    assert "set featurize.adapt_to_history: true" in message


def test_too_few_declared_cutoffs_for_the_split_is_refused_without_adapting():
    spec = SPEC.model_copy(update={"adapt_to_history": False, "n_cutoffs": 12})
    with pytest.raises(ScheduleError, match="n_cutoffs = 12 is fewer than the 20 cutoffs"):
        plan_schedule(D("2020-01-01"), D("2026-01-01"), spec, NEEDS)


def test_a_history_too_short_for_any_horizon_is_refused():
    with pytest.raises(ScheduleError, match="data is too short to train and test a churn model"):
        plan_schedule(D("2000-11-01"), D("2000-12-15"), SPEC, NEEDS)


@given(
    span=st.integers(30, 1500),
    horizon=st.sampled_from([14, 30, 60, 90, 180]),
    every=st.integers(1, 30),
    lookback=st.integers(7, 730),
    n_cutoffs=st.integers(1, 40),
    valid=st.integers(1, 4),
    origins=st.integers(1, 4),
    adapt=st.booleans(),
)
def test_every_planned_schedule_fits_the_history_and_splits_at_every_origin(
    span, horizon, every, lookback, n_cutoffs, valid, origins, adapt
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
    needs = SplitNeeds(valid, 1, origins)
    try:
        s = plan_schedule(first, score, spec, needs)
    except ScheduleError:
        return
    assert s.cutoffs == sorted(s.cutoffs) and len(s.cutoffs) >= cutoffs_needed(
        s.horizon_days, s.every_days, needs
    )
    assert s.cutoffs[0] - dt.timedelta(days=s.lookback_days) >= first
    assert s.cutoffs[-1] + dt.timedelta(days=s.horizon_days) <= score
    assert s.horizon_days <= horizon and s.lookback_days <= lookback
    resolved = (s.horizon_days, s.every_days, s.lookback_days, len(s.cutoffs))
    assert (s.changes == ()) == (resolved == (horizon, every, lookback, n_cutoffs))
    if not adapt:
        assert resolved[:3] == (horizon, every, lookback)
    stamps = [pd.Timestamp(c) for c in s.cutoffs]
    for k in range(origins):
        known = stamps[: len(stamps) - k]
        try:
            temporal_split(
                known, s.horizon_days, TRAIN.model_copy(update={"valid_cutoffs": valid, "test_cutoffs": 1})
            )
        except TrainError as exc:  # pragma: no cover - the assertion message is the point
            raise AssertionError(f"origin {k} cannot be split: {exc}") from exc


def test_iso_week_label():
    assert iso_week_label(dt.date(2026, 11, 16)) == "2026-W47"
    assert iso_week_label(dt.date(2027, 1, 1)) == "2026-W53"
