"""The benchmarks' anchors compute what they are said to compute, so a ratio against them compares
like with like."""

from __future__ import annotations

import datetime as dt
import sys

import ibis
import pandas as pd

from pipeline.core.features import finish, training_snapshots
from tests.conftest import ROOT, featurize_params

sys.path.insert(0, str(ROOT / "benchmarks"))
import pandas_idiom


def test_the_pandas_anchor_gives_the_pipelines_snapshot(small_shop):
    windows = [30, 90, 180, 365]
    params = featurize_params(
        horizon_days=60, windows_days=windows, trend_days=45, eligibility_lookback_days=200
    )
    cutoffs = [dt.date(2024, 6, 1), dt.date(2024, 9, 1), dt.date(2024, 10, 15)]
    expected = training_snapshots(ibis.memtable(small_shop), cutoffs, params).to_pandas()
    got = pandas_idiom.training_snapshots(
        small_shop,
        [pd.Timestamp(c) for c in cutoffs],
        horizon_days=60,
        windows_days=tuple(windows),
        trend_days=45,
        lookback_days=200,
    )
    expected, got = finish(expected, 60), finish(got, 60)
    assert len(expected) > 300 and expected["churned"].sum() > 50
    assert sorted(got.columns) == sorted(expected.columns)
    # equal to 1e-12: pandas reaches the spread of the gaps by another order of float operations
    # than the pipeline's exact sums, and a few values differ in their last bits
    pd.testing.assert_frame_equal(
        got[expected.columns], expected, check_dtype=False, check_categorical=False, rtol=1e-12, atol=1e-12
    )
