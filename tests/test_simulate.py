import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.params import FeaturizeParams, SimulateParams
from pipeline.simulate import Calendar, simulate, true_no_order_probability

SMALL = SimulateParams(
    seed=7,
    n_customers=400,
    start_date=dt.date(2024, 1, 1),
    end_date=dt.date(2025, 1, 1),
    mean_lines_per_order=3.0,
    malformed_share=0.01,
    return_share=0.05,
)
FEAT = FeaturizeParams(
    horizon_days=60,
    cutoff_every_days=14,
    n_cutoffs=3,
    eligibility_lookback_days=365,
    windows_days=[30],
    trend_days=30,
    btyd_fit_customers=1000,
    horizon_candidates=[30, 90],
)


def flat_calendar(days: int) -> Calendar:
    rate = np.ones(days)
    return Calendar(dt.date(2024, 1, 1), rate, np.concatenate([[0.0], np.cumsum(rate)]))


def test_truth_matches_the_pareto_nbd_closed_form_for_a_flat_season():
    lam = np.array([0.05, 0.01, 0.2])
    mu = np.array([0.01, 0.002, 0.05])
    last, cutoff, horizon = np.array([100.3, 20.0, 149.5]), 150.0, 60
    got = true_no_order_probability(flat_calendar(400), last, cutoff, horizon, lam, mu)
    # Pareto/NBD individual-level results (Schmittlein et al. 1987) with constant rates
    total = lam + mu
    p_alive = 1.0 / (1.0 + mu / total * (np.exp(total * (cutoff - last)) - 1.0))
    quiet_if_alive = mu / total + lam / total * np.exp(-total * horizon)
    expected = 1.0 - p_alive * (1.0 - quiet_if_alive)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_same_seed_same_export_and_truth():
    raw_a, customers_a, truth_a = simulate(SMALL, FEAT)
    raw_b, _, truth_b = simulate(SMALL, FEAT)
    assert raw_a.equals(raw_b)
    pd.testing.assert_frame_equal(truth_a, truth_b)
    assert len(customers_a) == 400
    assert customers_a["customer_id"].str.fullmatch(r"\d{6}").all()


def test_truth_covers_every_cutoff_and_is_a_probability():
    _, _, truth = simulate(SMALL, FEAT)
    assert sorted(truth["cutoff"].unique()) == [
        pd.Timestamp("2024-10-05"),
        pd.Timestamp("2024-10-19"),
        pd.Timestamp("2024-11-02"),
        pd.Timestamp("2025-01-01"),
    ]
    assert truth["true_p_no_order"].between(0.0, 1.0).all()
    assert not truth.duplicated(["customer_id", "cutoff"]).any()
    # those who truly dropped out are likelier to be predicted quiet
    dead = truth.loc[~truth["alive_at_cutoff"], "true_p_no_order"].mean()
    alive = truth.loc[truth["alive_at_cutoff"], "true_p_no_order"].mean()
    assert dead > alive


def test_export_has_returns_and_damaged_rows():
    raw, _, _ = simulate(SMALL, FEAT)
    frame = raw.to_pandas()
    assert frame["Invoice"].str.startswith("C").any()
    assert (frame["Customer ID"] == "").sum() > 0
    assert (frame["Price"] == "n/a").sum() > 0
    assert frame.shape[1] == 9


@pytest.mark.parametrize("share", [0.0])
def test_no_damage_when_share_is_zero(share):
    raw, _, _ = simulate(SMALL.model_copy(update={"malformed_share": share}), FEAT)
    frame = raw.to_pandas()
    assert (frame["Customer ID"] != "").all()
    assert (frame["Quantity"] != "").all()
