"""The benchmarks' anchors compute what they are said to compute, so a ratio against them compares
like with like."""

from __future__ import annotations

import datetime as dt
import sys
import warnings

import ibis
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.features import finish, training_snapshots
from tests.conftest import ROOT, examples, featurize_params

sys.path.insert(0, str(ROOT / "benchmarks"))
import pandas_idiom


def both_snapshots(lines: pd.DataFrame, cutoffs: list[dt.date], params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The pipeline's snapshot and the pandas anchor's, with the same definitions, both finished
    (the anchor's None when it has no row)."""
    expected = finish(
        training_snapshots(ibis.memtable(lines), cutoffs, params).to_pandas(), params.horizon_days
    )
    with warnings.catch_warnings():
        # the anchor's shop-wide season divides by a year without orders at an early cutoff, where
        # no customer is eligible (the pipeline has no row there either)
        warnings.simplefilter("ignore", RuntimeWarning)
        got = pandas_idiom.training_snapshots(
            lines,
            [pd.Timestamp(c) for c in cutoffs],
            horizon_days=params.horizon_days,
            windows_days=tuple(params.windows_days),
            trend_days=params.trend_days,
            lookback_days=params.eligibility_lookback_days,
        )
    return expected, finish(got, params.horizon_days) if len(got) else None


def assert_same_snapshot(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    # equal to 1e-12: pandas reaches the spread of the gaps by another order of float operations
    # than the pipeline's exact sums, and a few values differ in their last bits
    assert sorted(got.columns) == sorted(expected.columns)
    pd.testing.assert_frame_equal(
        got[expected.columns], expected, check_dtype=False, check_categorical=False, rtol=1e-12, atol=1e-12
    )


def test_the_pandas_anchor_gives_the_pipelines_snapshot(small_shop):
    params = featurize_params(
        horizon_days=60, windows_days=[30, 90, 180, 365], trend_days=45, eligibility_lookback_days=200
    )
    cutoffs = [dt.date(2024, 6, 1), dt.date(2024, 9, 1), dt.date(2024, 10, 15)]
    expected, got = both_snapshots(small_shop, cutoffs, params)
    assert len(expected) > 300 and expected["churned"].sum() > 50
    assert_same_snapshot(got, expected)


START = pd.Timestamp("2024-01-01")
CUTOFFS = [dt.date(2024, 5, 1), dt.date(2024, 6, 10), dt.date(2024, 8, 1)]


@st.composite
def shops(draw):
    """Lines of a few customers over eight months: orders of several lines (each order id at one
    moment, so orders never share one), returns, missing categories, a country and channel per
    customer, and orders on both sides of each cutoff."""
    n = draw(st.integers(1, 40))
    customers = draw(st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=n, max_size=n))
    orders = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    # an order id's moment: any minute of the eight months, the same for all its lines
    moments = draw(st.lists(st.integers(0, 240 * 1440), min_size=61, max_size=61, unique=True))
    frame = pd.DataFrame(
        {
            "customer_id": customers,
            "order_id": [f"{c}{o}" for c, o in zip(customers, orders, strict=True)],
            "order_ts": [START + pd.Timedelta(minutes=moments[o]) for o in orders],
            "amount": draw(st.lists(st.sampled_from([-4.0, -0.5, 1.25, 7.0, 30.5]), min_size=n, max_size=n)),
            "quantity": draw(st.lists(st.integers(1, 5), min_size=n, max_size=n)),
            "product_id": draw(st.lists(st.sampled_from(["p1", "p2", "p3", "p4"]), min_size=n, max_size=n)),
            "category": draw(st.lists(st.sampled_from(["x", "y", None]), min_size=n, max_size=n)),
            "country": [{"a": "UK", "b": "FR"}.get(c, "DE") for c in customers],
            "channel": [{"c": "app"}.get(c, "web") for c in customers],
        }
    )
    frame["order_ts"] = frame["order_ts"].astype("datetime64[us]")
    return frame


@settings(max_examples=examples(20), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=shops())
def test_the_snapshot_is_the_pandas_anchors_on_any_small_shop(lines):
    """The pipeline's snapshot (each customer's history cumulated over the buckets between
    cutoffs) against the plain per-cutoff groupby of an independent implementation."""
    params = featurize_params(
        horizon_days=45, windows_days=[30, 60, 120], trend_days=30, eligibility_lookback_days=90
    )
    expected, got = both_snapshots(lines, CUTOFFS, params)
    if got is None:
        assert expected.empty
    else:
        assert_same_snapshot(got, expected)
