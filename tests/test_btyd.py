"""BTYD likelihoods and predictions, checked by recovering known parameters from data simulated
in the CDNOW shape (2,357 customers acquired over 12 weeks, 39 calibration weeks)."""

import numpy as np
import pytest

from pipeline.core.btyd import BGNBD, GammaGamma, ParetoNBD, Summary

CDNOW_BGNBD = (0.243, 4.414, 0.793, 2.426)  # Fader, Hardie and Lee (2005), table in section 5
CDNOW_PARETO = (0.553, 10.578, 0.606, 11.669)  # the same paper's Pareto/NBD estimates


def cdnow_horizons(rng: np.random.Generator, n: int) -> np.ndarray:
    """Calibration length per customer: first purchase in weeks 0-12 of a 39-week period."""
    return 39.0 - rng.uniform(0.0, 12.0, n)


def simulate_bgnbd(params, n: int, seed: int) -> Summary:
    r, alpha, a, b = params
    rng = np.random.default_rng(seed)
    T = cdnow_horizons(rng, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    p = rng.beta(a, b, n)
    x, t_x, t = np.zeros(n), np.zeros(n), np.zeros(n)
    active = np.ones(n, dtype=bool)
    while active.any():
        t = np.where(active, t + rng.exponential(1.0 / np.maximum(lam, 1e-12)), t)
        bought = active & (t <= T)
        x[bought] += 1
        t_x[bought] = t[bought]
        # dropout is possible right after each repeat purchase
        active = bought & (rng.random(n) >= p)
    return Summary(x=x, t_x=t_x, T=T)


def simulate_pareto(params, n: int, seed: int) -> Summary:
    r, alpha, s, beta = params
    rng = np.random.default_rng(seed)
    T = cdnow_horizons(rng, n)
    lam = rng.gamma(r, 1.0 / alpha, n)
    mu = rng.gamma(s, 1.0 / beta, n)
    observed = np.minimum(rng.exponential(1.0 / mu), T)
    x = rng.poisson(lam * observed).astype(float)
    t_x = np.array([rng.uniform(0, o, int(k)).max() if k else 0.0 for k, o in zip(x, observed, strict=True)])
    return Summary(x=x, t_x=t_x, T=T)


def test_bgnbd_recovers_cdnow_parameters_at_cdnow_size():
    fitted = BGNBD.fit(simulate_bgnbd(CDNOW_BGNBD, 2357, seed=11))
    got = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])
    # at n = 2,357 the sampling error of a and b is large (the paper's own SEs are ~30%)
    np.testing.assert_allclose(got[:2], CDNOW_BGNBD[:2], rtol=0.15)
    np.testing.assert_allclose(got[2:], CDNOW_BGNBD[2:], rtol=0.5)


def test_bgnbd_recovers_parameters_tightly_on_a_large_sample():
    fitted = BGNBD.fit(simulate_bgnbd(CDNOW_BGNBD, 60_000, seed=12))
    got = np.array([fitted.r, fitted.alpha, fitted.a, fitted.b])
    np.testing.assert_allclose(got, CDNOW_BGNBD, rtol=0.1)


def test_pareto_nbd_recovers_parameters():
    fitted = ParetoNBD.fit(simulate_pareto(CDNOW_PARETO, 40_000, seed=13))
    got = np.array([fitted.r, fitted.alpha, fitted.s, fitted.beta])
    np.testing.assert_allclose(got, CDNOW_PARETO, rtol=0.15)


def test_pareto_nbd_with_a_common_dropout_rate_stops_at_the_shape_cap():
    """Dropout rates with almost no spread (s = 500) on a short history: the likelihood is flat
    along s, so the fit stops at the cap and still recovers the purchase side and the mean
    dropout rate s / beta."""
    from pipeline.core.btyd import MAX_DROPOUT_SHAPE

    truth = (0.553, 10.578, 500.0, 500.0 / 0.05)
    fitted = ParetoNBD.fit(simulate_pareto(truth, 20_000, seed=14))
    assert fitted.s == pytest.approx(MAX_DROPOUT_SHAPE)
    np.testing.assert_allclose([fitted.r, fitted.alpha], truth[:2], rtol=0.15)
    assert fitted.s / fitted.beta == pytest.approx(0.05, rel=0.2)


def test_bgnbd_one_time_buyers_are_always_alive():
    model = BGNBD(*CDNOW_BGNBD)
    s = Summary(x=np.array([0.0, 0.0, 3.0]), t_x=np.array([0.0, 0.0, 5.0]), T=np.array([10.0, 39.0, 39.0]))
    alive = model.p_alive(s)
    assert alive[:2].tolist() == [1.0, 1.0]
    assert 0.0 < alive[2] < 1.0
    # the weakness the issue names: a one-time buyer's P(alive) never falls, whatever the wait
    assert model.p_no_order(s, 13)[1] > model.p_no_order(s, 13)[0]


def test_pareto_quiet_probability_matches_monte_carlo_over_the_posterior():
    model = ParetoNBD(*CDNOW_PARETO)
    s = Summary(x=np.array([0.0, 2.0, 7.0]), t_x=np.array([0.0, 20.0, 30.0]), T=np.array([38.0, 38.0, 38.0]))
    t = 13.0
    got = model.p_no_order(s, t)
    rng = np.random.default_rng(5)
    alive = model.p_alive(s)
    for i in range(3):
        lam = rng.gamma(model.r + s.x[i], 1.0 / (model.alpha + s.T[i]), 400_000)
        mu = rng.gamma(model.s, 1.0 / (model.beta + s.T[i]), 400_000)
        quiet = np.mean(mu / (lam + mu) + lam / (lam + mu) * np.exp(-(lam + mu) * t))
        assert got[i] == pytest.approx(1 - alive[i] + alive[i] * quiet, abs=2e-3)


def test_pareto_alive_probability_falls_with_the_wait():
    model = ParetoNBD(*CDNOW_PARETO)
    s = Summary(x=np.array([3.0, 3.0, 3.0]), t_x=np.array([35.0, 20.0, 5.0]), T=np.array([38.0, 38.0, 38.0]))
    alive = model.p_alive(s)
    assert alive[0] > alive[1] > alive[2]
    expected = model.expected_orders(s, 13.0)
    assert expected[0] > expected[1] > expected[2] > 0


def test_summary_from_days():
    s = Summary.from_days(np.array([1, 4]), np.array([14.0, 7.0]), np.array([14.0, 70.0]))
    assert s.x.tolist() == [0.0, 3.0]
    assert s.T.tolist() == [2.0, 10.0]
    assert s.t_x.tolist() == [0.0, 9.0]


CDNOW_GAMMA_GAMMA = (6.25, 3.74, 15.44)  # Fader, Hardie and Lee (2005), "RFM and CLV", CDNOW spend


def simulate_spend(params, customers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    p, q, gamma = params
    rng = np.random.default_rng(seed)
    nu = rng.gamma(q, 1.0 / gamma, customers)  # each customer's rate
    n = 1 + rng.poisson(2.0, customers)
    totals = rng.gamma(p * n, 1.0 / nu)  # sum of n Gamma(p, nu) order values
    return n, totals / n


def test_gamma_gamma_recovers_the_cdnow_spend_parameters():
    n, mean_value = simulate_spend(CDNOW_GAMMA_GAMMA, 300_000, seed=5)
    fitted = GammaGamma.fit(n, mean_value)
    np.testing.assert_allclose([fitted.p, fitted.q, fitted.gamma], CDNOW_GAMMA_GAMMA, rtol=0.03)


def test_gamma_gamma_expected_value_shrinks_to_the_population_mean():
    model = GammaGamma(*CDNOW_GAMMA_GAMMA)
    population = 6.25 * 15.44 / (3.74 - 1)  # 35.22
    # one order of 100: (15.44 + 100) x 6.25 / (6.25 + 2.74) = 80.28...
    got = model.expected_value(np.array([1, 10, 1000]), np.array([100.0, 100.0, 100.0]))
    assert got[0] == pytest.approx(115.44 * 6.25 / 8.99)
    assert population < got[0] < got[1] < got[2] < 100.0
    assert got[2] == pytest.approx(100.0, rel=1e-3)
    assert model.expected_value(np.array([1]), np.array([population]))[0] == pytest.approx(population)


def test_gamma_gamma_refuses_non_positive_values():
    with pytest.raises(ValueError, match="positive order counts and values"):
        GammaGamma.fit(np.array([1, 2]), np.array([10.0, 0.0]))


# heavy buyers (hundreds of orders), one-day customers, a last order at the cutoff's moment
EDGE = Summary(
    x=np.array([0.0, 0.0, 1.0, 450.0, 730.0, 730.0, 2000.0]),
    t_x=np.array([0.0, 0.0, 0.0001, 39.9, 43.0, 1.0, 45.0]),
    T=np.array([1 / (7 * 24 * 60), 1 / 7, 0.0001, 40.0, 43.0, 43.0, 45.0]),
)


@pytest.mark.parametrize(
    "pnbd",
    [ParetoNBD(r=0.75, alpha=5.0, s=0.9, beta=15.0), ParetoNBD(r=0.75, alpha=15.0, s=0.9, beta=5.0)],
    ids=["alpha<beta", "alpha>=beta"],
)
def test_every_btyd_output_is_a_number_for_heavy_buyers_and_one_day_customers(pnbd):
    bg = BGNBD(r=0.27, alpha=1.55, a=0.82, b=3.6)
    with np.errstate(all="raise", under="ignore"):  # no overflow or NaN on the way, only underflow to 0
        probabilities = [
            pnbd.p_no_order(EDGE, 90 / 7),
            pnbd.p_alive(EDGE),
            bg.p_no_order(EDGE, 90 / 7),
            bg.p_alive(EDGE),
        ]
    for values in probabilities:
        assert np.all((values >= 0) & (values <= 1)), values
    expected = pnbd.expected_orders(EDGE, 90 / 7)
    assert np.all(np.isfinite(expected) & (expected >= 0))
    assert np.all(np.isfinite(ParetoNBD.log_likelihood(np.array(list(vars(pnbd).values())), EDGE)))
    # 730 orders in 43 weeks, the last at the cutoff: alive, buying at the posterior mean rate
    # (r + x) / (alpha + T) while alive; the window's expected orders lie between that rate over the
    # whole window and the same times the chance of surviving the window, ((beta+T)/(beta+T+t))^s
    t, T = 90 / 7, 43.0
    rate = (pnbd.r + 730) / (pnbd.alpha + T)
    survive = ((pnbd.beta + T) / (pnbd.beta + T + t)) ** pnbd.s
    assert pnbd.p_alive(EDGE)[4] > 0.999
    assert rate * t * survive < expected[4] < rate * t
    # the same buyer silent for 42 weeks is gone
    assert pnbd.p_alive(EDGE)[5] < 1e-100


def test_pareto_nbd_a0_matches_numerical_integration_for_a_heavy_buyer():
    from scipy.integrate import quad

    r, alpha, s, beta = 0.75, 15.0, 0.9, 5.0
    x, t_x, T = 450.0, 30.0, 40.0
    a, b = r + s + x, s + 1.0  # alpha >= beta

    def log_f(u):  # log of 2F1(a, b; a + 1; z) / (alpha + u)^a, the 2F1 as a's integral
        z = (alpha - beta) / (alpha + u)
        value, _ = quad(
            lambda t: a * t ** (a - 1) * (1 - z * t) ** (-b), 0, 1, epsabs=0, epsrel=1e-13, limit=200
        )
        return np.log(value) - a * np.log(alpha + u)

    exact = log_f(t_x) + np.log(-np.expm1(log_f(T) - log_f(t_x)))
    got = ParetoNBD._log_a0(np.array([r, alpha, s, beta]), np.array([x]), np.array([t_x]), np.array([T]))
    assert got[0] == pytest.approx(exact, abs=1e-9)
