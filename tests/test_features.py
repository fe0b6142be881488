import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.cutoffs import SplitNeeds, cutoffs_needed
from pipeline.core.features import (
    LineTables,
    finish,
    horizon_report,
    make_snapshots,
    query_batches,
    training_snapshots,
)
from tests.conftest import FEATURE_CUTOFF as CUTOFF
from tests.conftest import FEATURE_LINES as LINES
from tests.conftest import FEATURE_PARAMS as PARAMS
from tests.conftest import canonical, examples, featurize_params, temporary_tables

EXPECTED = {
    "L": dict(
        n_orders=3, repeat_orders=2, spend=100, avg_order_value=100 / 3, max_order_value=40,
        recency_days=30 + 14 / 24, tenure_days=90 + 14 / 24, gap_mean=30, gap_std=0, gap_max=30, gap_last=30,
        overdue_ratio=(30 + 14 / 24) / 30, orders_30d=0, orders_90d=2, spend_30d=0, spend_90d=70,
        order_trend=-1, lines_per_order=4 / 3, items_per_order=7 / 3, weekend_share=0,
        n_return_lines=1, return_value=5, distinct_products=3, distinct_categories=2,
        days_since_second_order=60 + 14 / 24, hour_mean=10, return_rate=1 / 3,
        orders_same_window_last_year=0, season_window_intensity=0, country="UK", churned=0,
        days_overdue=14 / 24, rhythm_z=np.nan, recency_over_max_gap=(30 + 14 / 24) / 30, gap_last_ratio=1,
        rate_ratio=0, spend_trend=0 - 40, last_value_ratio=40 / (100 / 3),
    ),
    "N": dict(
        n_orders=1, repeat_orders=0, spend=12, avg_order_value=12, max_order_value=12,
        recency_days=11.5, tenure_days=11.5, gap_mean=np.nan, gap_std=np.nan, gap_max=np.nan, gap_last=np.nan,
        overdue_ratio=np.nan, orders_30d=1, orders_90d=1, spend_30d=12, spend_90d=12,
        order_trend=1, lines_per_order=1, items_per_order=2, weekend_share=0,
        n_return_lines=0, return_value=0, distinct_products=1, distinct_categories=1,
        days_since_second_order=np.nan, hour_mean=12, return_rate=0,
        orders_same_window_last_year=0, season_window_intensity=0, country="NL", churned=0,
        days_overdue=np.nan, rhythm_z=np.nan, recency_over_max_gap=np.nan, gap_last_ratio=np.nan,
        rate_ratio=1, spend_trend=12, last_value_ratio=1,
    ),
    "P": dict(
        n_orders=2, repeat_orders=1, spend=40, avg_order_value=20, max_order_value=25,
        recency_days=137.5, tenure_days=182.5, gap_mean=45, gap_std=np.nan, gap_max=45, gap_last=45,
        overdue_ratio=137.5 / 45, orders_30d=0, orders_90d=0, spend_30d=0, spend_90d=0,
        order_trend=0, lines_per_order=1, items_per_order=1, weekend_share=0.5,
        n_return_lines=0, return_value=0, distinct_products=2, distinct_categories=2,
        days_since_second_order=137.5, hour_mean=12, return_rate=0,
        orders_same_window_last_year=0, season_window_intensity=0, country="FR", churned=1,
        days_overdue=92.5, rhythm_z=np.nan, recency_over_max_gap=137.5 / 45, gap_last_ratio=1,
        rate_ratio=0, spend_trend=0, last_value_ratio=25 / 20,
    ),
}  # fmt: skip


def snapshot(lines: pd.DataFrame, cutoffs=(CUTOFF,), params=PARAMS) -> pd.DataFrame:
    return finish(
        training_snapshots(ibis.memtable(lines), list(cutoffs), params).to_pandas(), params.horizon_days
    )


def test_hand_made_features_and_labels():
    snap = snapshot(LINES)
    assert snap["customer_id"].tolist() == ["L", "N", "P"]  # X's last order is beyond the lookback
    assert (snap["cutoff"] == pd.Timestamp(CUTOFF)).all()
    for customer, expected in EXPECTED.items():
        row = snap.set_index("customer_id").loc[customer]
        for name, value in expected.items():
            if isinstance(value, str):
                assert row[name] == value, (customer, name)
            elif np.isnan(value):
                assert np.isnan(row[name]), (customer, name)
            else:
                assert row[name] == pytest.approx(value, abs=1e-9), (customer, name)
    assert set(snap.columns) == {"customer_id", "cutoff", "horizon_days", *EXPECTED["L"]}


def test_rate_ratio_compares_the_recent_order_rate_with_the_lifetime_rate():
    # cutoff 2024-04-01, trend_days 30: orders 100, 50, 20 and 10 days before it
    lines = canonical(
        """
customer_id order_id order_ts            amount
R           r1       2023-12-23T00:00:00 10
R           r2       2024-02-11T00:00:00 20
R           r3       2024-03-12T00:00:00 30
R           r4       2024-03-22T00:00:00 60
"""
    )
    row = snapshot(lines).set_index("customer_id").loc["R"]
    # 2 orders in the last 30 days against 4 in 100 days
    assert row["rate_ratio"] == pytest.approx((2 / 30) / (4 / 100), abs=1e-9)
    # spend in the last 30 days (30 + 60) minus the 30 days before (20); the last order against the mean
    assert row["spend_trend"] == 70
    assert row["last_value_ratio"] == pytest.approx(60 / 30, abs=1e-9)
    # gaps 50, 30, 10: mean 30, sample sd 20; recency 10
    assert row["rhythm_z"] == pytest.approx((10 - 30) / 20, abs=1e-9)
    assert row["days_overdue"] == pytest.approx(-20, abs=1e-9)
    assert row["recency_over_max_gap"] == pytest.approx(10 / 50, abs=1e-9)
    assert row["gap_last_ratio"] == pytest.approx(10 / 30, abs=1e-9)


def test_last_years_label_window_personal_and_shop_wide():
    lines = canonical(
        """
customer_id order_id order_ts            amount
S           s1       2023-05-01T12:00:00 10
S           s2       2024-02-01T12:00:00 10
T           t1       2024-03-01T12:00:00 10
"""
    )
    snap = snapshot(lines).set_index("customer_id")
    # the label window [2024-04-01, +90 days) one year earlier holds S's order of 2023-05-01
    assert snap["orders_same_window_last_year"].to_dict() == {"S": 1.0, "T": 0.0}
    # shop-wide: 1 order in those 90 days against 3 in the year: (1 / 90) / (3 / 365)
    assert snap["season_window_intensity"].tolist() == pytest.approx([365 / 270] * 2)


def test_an_order_at_the_cutoff_counts_in_the_label_not_the_features():
    lines = LINES[LINES["order_id"].isin(["o3", "o4"])]
    snap = snapshot(lines).set_index("customer_id")
    assert snap.loc["L", "n_orders"] == 1  # o3 only: o4 is at the cutoff
    assert snap.loc["L", "churned"] == 0  # o4 is inside [cutoff, cutoff + 90 days)
    snap_after = snapshot(lines, cutoffs=(dt.date(2024, 4, 2),)).set_index("customer_id")
    assert snap_after.loc["L", "n_orders"] == 2


def test_two_orders_at_one_time_give_the_gap_of_the_later_order_id():
    # a and b share a timestamp: by (time, order id) b is the latest order, 0 days after a
    lines = canonical(
        """
        customer_id order_ts            amount order_id
        T           2024-01-01T10:00:00 10     z
        T           2024-03-01T10:00:00 20     b
        T           2024-03-01T10:00:00 30     a
        """
    )
    for seed in range(5):  # whatever the engine's row order
        snap = snapshot(lines.sample(frac=1.0, random_state=seed)).set_index("customer_id")
        assert snap.loc["T", "gap_last"] == 0.0 and snap.loc["T", "gap_max"] == 60.0
        assert snap.loc["T", "n_orders"] == 3


def test_label_window_is_half_open_at_its_end():
    lines = LINES[LINES["order_id"].isin(["o3"])].copy()
    at_end = lines.assign(order_id="o10", order_ts=pd.Timestamp(CUTOFF) + pd.Timedelta(days=90))
    snap = snapshot(pd.concat([lines, at_end], ignore_index=True)).set_index("customer_id")
    assert snap.loc["L", "churned"] == 1


def test_make_snapshots_resolves_the_scoring_date_from_the_data():
    spec = PARAMS.model_copy(update={"horizon_days": 30, "eligibility_lookback_days": 60, "n_cutoffs": 8})
    snaps = make_snapshots(ibis.memtable(LINES), spec, SplitNeeds(1, 1))
    # last order 2024-05-15 12:00: scoring date is the next day; cutoffs end on the last date of
    # the 14-day grid at least 30 days before it (2024-04-16 is a Tuesday)
    assert snaps.score_date == dt.date(2024, 5, 16)
    assert snaps.schedule.cutoffs == [dt.date(2024, 1, 8) + dt.timedelta(days=14 * k) for k in range(8)]
    assert snaps.schedule.cutoffs[-1] == dt.date(2024, 4, 15)
    assert snaps.train["horizon_days"].unique().tolist() == [30]
    assert snaps.score["horizon_days"].unique().tolist() == [30]
    assert "churned" not in snaps.score.columns
    assert snaps.score["customer_id"].tolist() == ["L", "N"]  # P's last order is 183 days old
    btyd = ["pnbd_p_no_order", "pnbd_expected_orders", "pnbd_p_alive", "bgnbd_p_no_order", "bgnbd_p_alive"]
    for frame in (snaps.train, snaps.score):
        assert frame[btyd].notna().all().all()
        assert frame[[c for c in btyd if "expected" not in c]].stack().between(0, 1).all()
    assert set(snaps.btyd_params) == {c.isoformat() for c in [*snaps.schedule.cutoffs, snaps.score_date]}


def test_make_snapshots_keeps_the_horizon_on_a_short_history_and_records_what_changed():
    # 2023-10-01 .. 2024-05-16 is 228 days: too short for a 365-day lookback before the first cutoff.
    # H = 90 needs ceil(90 / 14) + 1 = 8 cutoffs, the last on the grid 11 days before 2024-05-16 - 90:
    # 228 - 90 - 11 - 7 x 14 = 29 days of data before the first
    spec = PARAMS.model_copy(
        update={"adapt_to_history": True, "horizon_candidates": [30, 90], "n_cutoffs": 2}
    )
    snaps = make_snapshots(ibis.memtable(LINES[LINES["customer_id"] != "X"]), spec, SplitNeeds(1, 1))
    assert snaps.schedule.changes == ("history before the first cutoff (days) 365 -> 29", "n_cutoffs 2 -> 8")
    assert len(snaps.schedule.cutoffs) == cutoffs_needed(90, 14, SplitNeeds(1, 1)) == 8
    assert snaps.train["horizon_days"].unique().tolist() == [90]
    assert snaps.train["cutoff"].nunique() == 8


# ---- properties -----------------------------------------------------------------------------

START = pd.Timestamp("2023-06-01")
C = pd.Timestamp(CUTOFF)
CUTOFF_MINUTE = int((C - START).total_seconds() // 60)


@st.composite
def transactions(draw, min_minute=0, max_minute=CUTOFF_MINUTE + 200 * 1440):
    n = draw(st.integers(1, 25))
    rows = {
        "customer_id": draw(st.lists(st.sampled_from(["a", "b", "c", "007"]), min_size=n, max_size=n)),
        "order_id": [f"o{i}" for i in draw(st.lists(st.integers(0, 30), min_size=n, max_size=n))],
        "order_ts": [
            START + pd.Timedelta(minutes=m)
            for m in draw(st.lists(st.integers(min_minute, max_minute), min_size=n, max_size=n))
        ],
        "amount": draw(
            st.lists(st.sampled_from([-7.5, -1.0, 0.5, 3.0, 12.25, 99.0]), min_size=n, max_size=n)
        ),
        "product_id": draw(st.lists(st.sampled_from(["p1", "p2", "p3"]), min_size=n, max_size=n)),
    }
    frame = pd.DataFrame(rows)
    frame["order_ts"] = frame["order_ts"].astype("datetime64[us]")
    return frame


FEATURE_SETTINGS = settings(
    max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _features_only(snap: pd.DataFrame) -> pd.DataFrame:
    return snap.drop(columns=["churned"])


@FEATURE_SETTINGS
@given(history=transactions(), later=transactions(min_minute=CUTOFF_MINUTE))
def test_rows_at_or_after_the_cutoff_never_change_its_features(history, later):
    before = _features_only(snapshot(history))
    after = _features_only(snapshot(pd.concat([history, later], ignore_index=True)))
    pd.testing.assert_frame_equal(before, after)


@FEATURE_SETTINGS
@given(lines=transactions(), seed=st.integers(0, 2**16))
def test_row_order_does_not_matter(lines, seed):
    shuffled = lines.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    pd.testing.assert_frame_equal(snapshot(lines), snapshot(shuffled))


@FEATURE_SETTINGS
@given(lines=transactions())
def test_a_query_per_cutoff_over_the_held_tables_gives_the_rows_of_one_query_over_every_cutoff(lines):
    """The stage's way (what the lines give held by the engine, then a query per cutoff) against
    the plain definition over every cutoff at once; the held tables are dropped afterwards."""
    cutoffs = [CUTOFF - dt.timedelta(days=45), CUTOFF, CUTOFF + dt.timedelta(days=10)]
    whole = finish(training_snapshots(ibis.memtable(lines), cutoffs, PARAMS).to_pandas(), PARAMS.horizon_days)
    before = temporary_tables()
    assert not LineTables.of(ibis.memtable(lines)).held
    # each query building the customers' histories at its own cutoff, or reading them held at all
    for at, tables_held in (((), 1), (cutoffs, 2)):
        with LineTables.of(ibis.memtable(lines)).cached(at=at) as tables:
            assert tables.held
            # the events and, when asked, the histories at the cutoffs (the first products are
            # computed within them, as nothing else reads them)
            assert len(temporary_tables() - before) == tables_held
            parts = [training_snapshots(tables, [c], PARAMS).to_pandas() for c in cutoffs]
        assert temporary_tables() == before
        got = finish(pd.concat(parts, ignore_index=True), PARAMS.horizon_days)
        pd.testing.assert_frame_equal(got, whole)


def test_cutoffs_are_queried_in_runs_of_at_most_the_groups_allowed_and_a_large_one_alone():
    day = [dt.date(2025, 1, 1) + dt.timedelta(days=14 * k) for k in range(6)]
    customers = {day[4]: 30, day[0]: 40, day[1]: 60, day[2]: 120, day[3]: 10, day[5]: 100}
    assert query_batches(customers, most=100) == [[day[0], day[1]], [day[2]], [day[3], day[4]], [day[5]]]
    assert query_batches(customers, most=1000) == [day]
    assert query_batches(customers, most=1) == [[d] for d in day]
    assert query_batches({}, most=100) == []


def test_horizon_report_counts_churn_and_later_returns():
    params = PARAMS.model_copy(update={"horizon_candidates": [10, 30]})
    table, gaps, reference = horizon_report(
        lines=ibis.memtable(LINES),
        first_day=dt.date(2023, 10, 1),
        score_date=dt.date(2024, 5, 16),
        params=params,
    )
    # reference 2024-03-17: L (next order 15 days later) and P (never again) are eligible
    assert reference == dt.date(2024, 3, 17)
    assert table.to_dict(orient="list") == {
        "horizon_days": [10, 30],
        "customers": [2, 2],
        "churn_rate": [1.0, 0.5],
        "false_churn_share": [0.5, 0.0],
    }
    assert gaps["p50"] == pytest.approx(30 + 14 / 24)


def _many_lines(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` order lines of 20,000 customers over two years, amounts with cents and odd fractions,
    enough rows for DuckDB to split every aggregation across threads."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2024-01-01")
    return pd.DataFrame(
        {
            "source_row": np.arange(1, n + 1, dtype="int64"),
            "customer_id": pd.Series(rng.integers(0, 20_000, n)).map("c{:05d}".format),
            "order_ts": (start + pd.to_timedelta(rng.integers(0, 730 * 1440, n), unit="min")).astype(
                "datetime64[us]"
            ),
            "amount": np.round(rng.lognormal(3.0, 1.0, n) * np.where(rng.random(n) < 0.03, -1, 1), 2) / 3,
            "quantity": rng.integers(1, 5, n) / 4,
        }
    )


def test_features_are_the_same_bytes_with_any_number_of_threads(tmp_path):
    """A float sum depends on the order of its terms and a parallel engine varies that order with
    its thread count: the raw query output (before any rounding) must not."""
    _many_lines(400_000).to_parquet(tmp_path / "lines.parquet")
    params = featurize_params(windows_days=[30, 90])
    cutoffs = [dt.date(2025, 3, 1) + dt.timedelta(days=28 * k) for k in range(6)]
    frames = []
    for threads in (1, 3):
        con = ibis.duckdb.connect(threads=threads)
        lines = con.read_parquet(tmp_path / "lines.parquet")
        table = training_snapshots(lines, cutoffs, params).to_pandas()
        frames.append(table.sort_values(["customer_id", "cutoff"], ignore_index=True))
    assert len(frames[0]) > 50_000
    pd.testing.assert_frame_equal(frames[0], frames[1], check_exact=True)


def test_a_feature_that_is_not_a_number_stops_featurize_naming_the_column_and_the_count():
    from pipeline.core.features import FeatureError, check_finite

    frame = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "cutoff": pd.to_datetime(["2026-01-05"] * 3),
            "gap_mean": [np.nan, 3.0, 4.0],  # one order, no gap: missing by definition
            "spend": [1.0, np.inf, 2.0],
            "pnbd_p_no_order": [0.2, np.nan, np.nan],
        }
    )
    with pytest.raises(FeatureError) as err:
        check_finite(frame, "training snapshots")
    assert str(err.value) == (
        "training snapshots: features that must be numbers are not:\n"
        "  spend: 1 customer-cutoff(s) not a number (e.g. b at 2026-01-05)\n"
        "  pnbd_p_no_order: 2 customer-cutoff(s) not a number (e.g. b at 2026-01-05, c at 2026-01-05)"
    )
    check_finite(frame.drop(columns=["spend", "pnbd_p_no_order"]), "fine")  # a missing gap is allowed


def test_fits_in_parallel_processes_are_those_fitted_one_after_another():
    from pipeline.core.btyd import fit_models
    from pipeline.core.features import fit_each
    from tests.test_btyd import simulate_pareto

    samples = [simulate_pareto((0.55, 10.6, 0.6, 11.7), n=800, seed=k) for k in range(3)]
    assert fit_each(samples, parallel_from=0) == [fit_models(s) for s in samples]


def test_fits_run_where_the_os_cannot_say_which_cores_a_process_may_use(monkeypatch):
    import os

    from pipeline.core.btyd import fit_models
    from pipeline.core.features import fit_each
    from tests.test_btyd import simulate_pareto

    monkeypatch.delattr(os, "sched_getaffinity", raising=False)  # as on macOS and Windows
    samples = [simulate_pareto((0.55, 10.6, 0.6, 11.7), n=300, seed=k) for k in range(2)]
    assert fit_each(samples, parallel_from=0) == [fit_models(s) for s in samples]
