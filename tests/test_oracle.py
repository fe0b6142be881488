import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.core import shop as model
from pipeline.core.oracle import TruthError, bayes_no_order_probability, true_no_order_probability, truth_at
from pipeline.core.shop import SCENARIOS, Calendar, Rates, Scenario
from pipeline.stages.simulate import simulate
from tests.conftest import SMALL_SHOP as SMALL

# the small shop's last three cutoffs 14 days apart whose 60-day windows close by its end, and its end
CUTOFFS = [dt.date(2024, 10, 5), dt.date(2024, 10, 19), dt.date(2024, 11, 2), dt.date(2025, 1, 1)]


def small_truth(shop, cutoffs=CUTOFFS, horizon=60, lookback=365):
    return truth_at(shop, cutoffs=cutoffs, horizon=horizon, lookback=lookback)


def flat_calendar(days: int, level: float = 1.0) -> Calendar:
    rate = np.full(days, level)
    return Calendar(dt.date(2024, 1, 1), rate, np.concatenate([[0.0], np.cumsum(rate)]))


@pytest.mark.parametrize("dropout_level", [1.0, 2.5])
def test_truth_matches_the_pareto_nbd_closed_form_for_a_flat_season(dropout_level):
    lam = np.array([0.05, 0.01, 0.2])
    mu = np.array([0.01, 0.002, 0.05])
    last, cutoff, horizon = np.array([100.3, 20.0, 149.5]), 150.0, 60
    flat, none = flat_calendar(400), np.zeros(3)
    got = true_no_order_probability(
        cal=flat,
        dcal=flat_calendar(400, dropout_level),
        last_order=last,
        cutoff=cutoff,
        horizon=horizon,
        rates=Rates(lam=lam, mu=mu, drift=none, birth=none),
    )
    # Pareto/NBD individual-level results (Schmittlein et al. 1987) with constant rates
    mu = mu * dropout_level
    total = lam + mu
    p_alive = 1.0 / (1.0 + mu / total * (np.exp(total * (cutoff - last)) - 1.0))
    quiet_if_alive = mu / total + lam / total * np.exp(-total * horizon)
    expected = 1.0 - p_alive * (1.0 - quiet_if_alive)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_truth_covers_every_cutoff_and_is_a_probability():
    _, shop = simulate(SMALL)
    truth = small_truth(shop)
    assert sorted(truth["cutoff"].unique()) == [pd.Timestamp(c) for c in CUTOFFS]
    assert truth["true_p_no_order"].between(0.0, 1.0).all()
    assert truth["bayes_p_no_order"].between(0.0, 1.0).all()
    assert not truth.duplicated(["customer_id", "cutoff"]).any()
    # each cutoff is computed on its own: fewer cutoffs give the same values
    latest = small_truth(shop, cutoffs=CUTOFFS[2:])
    pd.testing.assert_frame_equal(
        latest, truth[truth["cutoff"] >= pd.Timestamp(CUTOFFS[2])].reset_index(drop=True)
    )
    # those who truly dropped out are likelier to be predicted quiet
    dead = truth.loc[~truth["alive_at_cutoff"], "true_p_no_order"].mean()
    alive = truth.loc[truth["alive_at_cutoff"], "true_p_no_order"].mean()
    assert dead > alive


def _flat_history():
    history = pd.DataFrame(
        {
            "n": [1, 3, 6],
            "first": [100.5, 20.5, 10.5],
            "last": [100.5, 140.5, 180.5],
            "covariate_dropout": [0.0, -0.3, 0.2],
            "returned": [0.0, 1.0, 0.0],
            "closed": [0.0, 1.0, 5.0],
            "age_sum": [0.0, 150.0, 420.0],
            "extra_lines": [1.0, 9.0, 4.0],
        }
    )
    open_orders = pd.DataFrame({"row": [0, 1, 2], "seen": [0.5, 0.9, 0.2]})
    return history, open_orders


GROCERY_LIKE = Scenario(
    drift_mean=-0.4,
    drift_sd=0.9,
    basket_shares=(0.35, 0.4, 0.25),
    basket_lines=(0.25, 1.0, 2.2),
    basket_dropout=(0.9, 0.0, -0.9),
)


@pytest.mark.parametrize("scenario", [SCENARIOS["retail"], SCENARIOS["one_time"], GROCERY_LIKE])
def test_bayes_oracle_quadrature_matches_importance_sampling_from_the_prior(scenario):
    """The same posterior expectation by Monte Carlo: draw every latent from its prior (drift,
    purchase rate, dropout noise, return propensity, shopper type, one-off flag), weight by the
    likelihood of the history, and average the oracle's prediction given the latents (flat
    season; with a drift, the rate after the last order at its mean over each interval, as the
    oracle takes it)."""
    history, open_orders = _flat_history()
    cal, cutoff, horizon, share, extra = flat_calendar(400), 200.0, 90, 0.04, 3.0
    got = bayes_no_order_probability(
        cal=cal,
        dcal=cal,
        history=history,
        open_orders=open_orders,
        cutoff=cutoff,
        horizon=horizon,
        return_share=share,
        scenario=scenario,
        extra_lines=extra,
    )
    rng = np.random.default_rng(0)
    draws = 2_000_000
    for i, row in history.iterrows():
        g = rng.normal(scenario.drift_mean, scenario.drift_sd, draws)
        lam = rng.gamma(scenario.lambda_shape, 1 / scenario.lambda_rate, draws)
        rho = rng.beta(0.5, 0.5 / share - 0.5, draws)
        kind = rng.choice(len(scenario.basket_shares), size=draws, p=scenario.basket_shares)
        m = np.asarray(scenario.basket_lines)[kind] * extra
        one_off = rng.random(draws) < scenario.one_off_share
        mu = np.exp(
            np.log(model.BASE_DROPOUT) + row.covariate_dropout + model.RETURN_DROPOUT * (rho - share)
            + np.asarray(scenario.basket_dropout)[kind]
            + rng.normal(0, model.DROPOUT_NOISE, draws)
            + np.where(one_off, np.log(scenario.one_off_dropout), 0.0)
        )  # fmt: skip
        seen = open_orders.loc[open_orders["row"] == i, "seen"].to_numpy()

        def purchases(a, b, g=g, first=row["first"]):
            """int_a^b exp(g (t - first) / 365) dt, per draw (flat season)."""
            y = model.YEAR
            with np.errstate(divide="ignore", invalid="ignore"):
                exact = y / g * (np.exp(g * (b - first) / y) - np.exp(g * (a - first) / y))
            return np.where(np.abs(g) > 1e-12, exact, b - a)

        life = row["last"] - row["first"]
        weight = (
            lam ** (row.n - 1)
            * np.exp(g * row.age_sum / model.YEAR - lam * purchases(row["first"], row["last"]))
            * np.exp(-mu * life) * m**row.extra_lines * np.exp(-row.n * m)
            * rho**row.returned * (1 - rho) ** row.closed * np.prod(1 - np.outer(rho, seen), axis=1)
        )  # fmt: skip
        gap = cutoff - row["last"]
        hazard = mu + lam * purchases(row["last"], cutoff) / gap
        alive_quiet = np.exp(-hazard * gap)
        dead_quiet = mu / hazard * (1 - alive_quiet)
        hazard_w = mu + lam * purchases(cutoff, cutoff + horizon) / horizon
        quiet_window = np.exp(-hazard_w * horizon) + mu / hazard_w * (1 - np.exp(-hazard_w * horizon))
        expected = np.sum(weight * (alive_quiet * quiet_window + dead_quiet)) / np.sum(
            weight * (alive_quiet + dead_quiet)
        )
        assert got[i] == pytest.approx(expected, abs=4e-3)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_scenario_has_calibrated_truths_between_history_and_known_rates(scenario):
    """The generator and both truths agree: the known-rates probability and the Bayes oracle
    average to the realised churn rate, and the oracle ranks below the known rates."""
    from sklearn.metrics import roc_auc_score

    _, shop = simulate(SMALL.model_copy(update={"n_customers": 6000, "scenario": scenario}))
    truth = small_truth(shop)
    labelled = truth.dropna(subset=["churned"])
    assert len(labelled) > 10_000
    assert abs(labelled["true_p_no_order"].mean() - labelled["churned"].mean()) < 0.01
    assert abs(labelled["bayes_p_no_order"].mean() - labelled["churned"].mean()) < 0.015
    ceiling = roc_auc_score(labelled["churned"], labelled["true_p_no_order"])
    oracle = roc_auc_score(labelled["churned"], labelled["bayes_p_no_order"])
    assert 0.7 < oracle < ceiling


def test_truth_in_pieces_on_threads_is_the_truth_in_one_piece():
    """Cut into pieces of a few customers each (computed on a thread per core), every number is
    the one computed in a single piece, to the last bit."""
    _, shop = simulate(SMALL)
    whole = truth_at(shop, cutoffs=CUTOFFS, horizon=60, lookback=365, chunk_points=10**12)
    pieces = truth_at(shop, cutoffs=CUTOFFS, horizon=60, lookback=365, chunk_points=50_000)
    assert len(whole) > 1_000  # about 150 pieces a cutoff
    pd.testing.assert_frame_equal(pieces, whole, check_exact=True)


def test_truth_rows_and_labels_follow_the_clean_order_stream():
    """Who is in the truth at a cutoff (an order in the lookback before it) and the label (no order
    in the window), counted by hand from the simulator's orders."""
    _, shop = simulate(SMALL)
    cutoff, horizon, lookback = CUTOFFS[1], 30, 120
    truth = small_truth(shop, cutoffs=[cutoff], horizon=horizon, lookback=lookback)
    c = (cutoff - SMALL.start_date).days
    t = shop.orders.set_index("customer_id")["t"]
    eligible = sorted(set(t[(t < c) & (t >= c - lookback)].index))
    assert truth["customer_id"].tolist() == eligible
    ordered = set(t[(t >= c) & (t < c + horizon)].index)
    expected = [0.0 if customer in ordered else 1.0 for customer in eligible]
    assert truth["churned"].tolist() == expected


def test_a_longer_window_is_never_quieter():
    """P(no order in 30 days) >= P(no order in 60 days), customer by customer, for both truths."""
    _, shop = simulate(SMALL)
    short = small_truth(shop, cutoffs=CUTOFFS[:1], horizon=30)
    long = small_truth(shop, cutoffs=CUTOFFS[:1], horizon=60)
    assert short["customer_id"].tolist() == long["customer_id"].tolist()
    assert (short["true_p_no_order"] >= long["true_p_no_order"] - 1e-12).all()
    assert (short["bayes_p_no_order"] >= long["bayes_p_no_order"] - 1e-12).all()
    assert (short["true_p_no_order"] > long["true_p_no_order"]).mean() > 0.9


def test_no_truth_past_the_simulated_calendar():
    _, shop = simulate(SMALL)
    last_day = SMALL.end_date + dt.timedelta(days=model.BEYOND_DAYS)
    small_truth(shop, cutoffs=[last_day - dt.timedelta(days=60)])  # the window closes on the last day
    with pytest.raises(
        TruthError, match=r"calendar ends 731 days after 2025-01-01: no truth for a 60-day window"
    ):
        small_truth(shop, cutoffs=[last_day - dt.timedelta(days=59)])
