import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipeline.stages.simulate import SCENARIOS, Calendar, Rates, Scenario, simulate, true_no_order_probability
from tests.conftest import SMALL_SHOP as SMALL
from tests.conftest import featurize_params

FEAT = featurize_params(horizon_days=60, n_cutoffs=3)


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
    # with fewer truth cutoffs, the latest ones and the scoring date, with the same values
    _, _, latest = simulate(SMALL.model_copy(update={"truth_cutoffs": 1}), FEAT)
    assert sorted(latest["cutoff"].unique()) == [pd.Timestamp("2024-11-02"), pd.Timestamp("2025-01-01")]
    pd.testing.assert_frame_equal(
        latest, truth[truth["cutoff"] >= pd.Timestamp("2024-11-02")].reset_index(drop=True)
    )
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
    from pipeline.stages import simulate as sim

    history, open_orders = _flat_history()
    cal, cutoff, horizon, share, extra = flat_calendar(400), 200.0, 90, 0.04, 3.0
    got = sim.bayes_no_order_probability(
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
            np.log(sim.BASE_DROPOUT) + row.covariate_dropout + sim.RETURN_DROPOUT * (rho - share)
            + np.asarray(scenario.basket_dropout)[kind]
            + rng.normal(0, sim.DROPOUT_NOISE, draws)
            + np.where(one_off, np.log(scenario.one_off_dropout), 0.0)
        )  # fmt: skip
        seen = open_orders.loc[open_orders["row"] == i, "seen"].to_numpy()

        def purchases(a, b, g=g, first=row["first"]):
            """int_a^b exp(g (t - first) / 365) dt, per draw (flat season)."""
            y = sim.YEAR
            with np.errstate(divide="ignore", invalid="ignore"):
                exact = y / g * (np.exp(g * (b - first) / y) - np.exp(g * (a - first) / y))
            return np.where(np.abs(g) > 1e-12, exact, b - a)

        life = row["last"] - row["first"]
        weight = (
            lam ** (row.n - 1)
            * np.exp(g * row.age_sum / sim.YEAR - lam * purchases(row["first"], row["last"]))
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

    _, _, truth = simulate(SMALL.model_copy(update={"n_customers": 6000, "scenario": scenario}), FEAT)
    labelled = truth.dropna(subset=["churned"])
    assert len(labelled) > 10_000
    assert abs(labelled["true_p_no_order"].mean() - labelled["churned"].mean()) < 0.01
    assert abs(labelled["bayes_p_no_order"].mean() - labelled["churned"].mean()) < 0.015
    ceiling = roc_auc_score(labelled["churned"], labelled["true_p_no_order"])
    oracle = roc_auc_score(labelled["churned"], labelled["bayes_p_no_order"])
    assert 0.7 < oracle < ceiling


def test_scenarios_differ_as_described():
    """Each scenario shows its mechanism in the export it writes."""
    base = SMALL.model_copy(update={"n_customers": 3000})
    exports = {
        name: simulate(base.model_copy(update={"scenario": name}), FEAT)
        for name in ("retail", "one_time", "grocery")
    }
    orders = {
        name: raw.to_pandas().query("Invoice.str.match(r'^\\d')").groupby("Customer ID")["Invoice"].nunique()
        for name, (raw, _, _) in exports.items()
    }
    # most one_time customers buy once; grocery customers buy far more often than retail ones
    assert (orders["one_time"] == 1).mean() > 0.7 > (orders["retail"] == 1).mean()
    assert orders["grocery"].median() > 3 * orders["retail"].median()
