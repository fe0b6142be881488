"""Stage simulate: seeded retail transactions in an invoice-line export shape, plus the ground truth.

Each customer follows a Pareto/NBD-style process: the first order at acquisition, then orders as a
Poisson process of individual rate lambda (modulated by a shared seasonal curve) until an unobserved
exponential dropout of individual rate mu. Dropout depends on observable traits (channel, country,
return habit), so a model can learn from the history what a Pareto/NBD model alone cannot.

The truth file holds, for every cutoff of the schedule and for every customer with an order in the
eligibility lookback before it, two probabilities of placing no order in [cutoff, cutoff + H):
`bayes_p_no_order`, the Bayes-optimal prediction from what the export shows before the cutoff and
the simulator's population model (the oracle: no model of the history can beat it on average),
and `true_p_no_order`, the same given the customer's true rates (a ceiling no history reaches).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.core.cutoffs import training_cutoffs
from pipeline.core.io import atomic_path, write_parquet
from pipeline.core.params import FeaturizeParams, ParamsError, SimulateParams
from pipeline.core.quadrature import gamma_nodes

log = logging.getLogger(__name__)

RAW_DATE_FORMAT = "%d/%m/%Y %H:%M"
COUNTRIES = np.array(
    ["United Kingdom", "Germany", "France", "Netherlands", "Spain", "Ireland", "Belgium", "Norway"]
)
COUNTRY_WEIGHTS = np.array([0.55, 0.12, 0.1, 0.07, 0.06, 0.04, 0.03, 0.03])
COUNTRY_DROPOUT = np.array([0.0, -0.2, 0.1, -0.1, 0.3, 0.0, 0.2, -0.3])
CHANNELS = np.array(["web", "store", "app"])
CHANNEL_WEIGHTS = np.array([0.55, 0.3, 0.15])
CHANNEL_DROPOUT = np.array([0.0, -0.3, -0.6])
CATEGORIES = np.array(
    [
        "home", "kitchen", "garden", "toys", "stationery", "lighting", "textiles", "gifts",
        "party", "bags", "jewellery", "christmas", "bath", "storage", "pets", "outdoor",
    ]
)  # fmt: skip
N_PRODUCTS = 3000
YEAR = 365.0
RETURN_DAYS = 30  # a return comes back 1 to 30 whole days after its order
BASE_DROPOUT = 1 / 300
DROPOUT_NOISE = 0.6
RETURN_DROPOUT = 4.0
RAW_COLUMNS = [
    "Invoice", "StockCode", "Category", "Quantity", "InvoiceDate", "Price", "Customer ID",
    "Country", "Channel",
]  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    """The shop the simulator plays. Every scenario keeps the Pareto/NBD skeleton (orders while
    alive, an unobserved dropout) and the observable traits that move the dropout (country,
    channel, return habit), so that its Bayes oracle stays exact up to quadrature."""

    lambda_shape: float = 0.9  # orders per day while alive ~ Gamma(shape, rate) at acquisition
    lambda_rate: float = 40.0
    one_off_share: float = 0.3  # a share of acquisitions leave almost at once
    one_off_dropout: float = 20.0
    purchase_season: float = 0.2  # amplitude of the yearly swell of purchases
    # the log purchase rate changes by g per year of a customer's life, g ~ Normal(mean, sd)
    drift_mean: float = 0.0
    drift_sd: float = 0.0
    # amplitude of a yearly swing of the dropout hazard, highest in mid-January
    dropout_season: float = 0.0
    # shopper types: share, mean extra lines per order (x (mean_lines_per_order - 1)), dropout
    # log-effect. One type: the basket says nothing about the customer.
    basket_shares: tuple[float, ...] = (1.0,)
    basket_lines: tuple[float, ...] = (1.0,)
    basket_dropout: tuple[float, ...] = (0.0,)

    @property
    def drifts(self) -> bool:
        return self.drift_sd > 0 or self.drift_mean != 0


SCENARIOS = {
    # stationary customers: the bundled sample
    "retail": Scenario(),
    # purchase rates that drift over a customer's life, most of them down: RFM and BTYD assume
    # a constant rate, the order trend shows the change
    "drift": Scenario(drift_mean=-0.4, drift_sd=0.9),
    # a strong season in purchases and a churn hazard that peaks after Christmas: the base churn
    # rate moves between cutoffs
    "seasonal": Scenario(purchase_season=0.5, dropout_season=0.8),
    # most customers buy once
    "one_time": Scenario(one_off_share=0.75, lambda_shape=0.6),
    # weekly shopping: high order rates, and the basket tells top-up shoppers (who leave sooner)
    # from the weekly shop
    "grocery": Scenario(
        lambda_shape=3.0,
        lambda_rate=30.0,
        one_off_share=0.1,
        basket_shares=(0.35, 0.4, 0.25),
        basket_lines=(0.25, 1.0, 2.2),
        basket_dropout=(0.9, 0.0, -0.9),
    ),
}


def seasonality(days: np.ndarray, start: dt.date, amplitude: float = 0.2) -> np.ndarray:
    """Relative purchase intensity of each day since `start`: yearly swell, a pre-Christmas peak,
    busier weekends. Shared by all customers."""
    dates = pd.to_datetime(start) + pd.to_timedelta(days, unit="D")
    doy = dates.day_of_year.to_numpy()
    yearly = 1.0 + amplitude * np.sin(2 * np.pi * (doy - 80) / 365.25)
    xmas = np.where(
        (dates.month == 11) & (dates.day >= 15) | (dates.month == 12) & (dates.day <= 20), 1.6, 1.0
    )
    weekend = np.where(dates.day_of_week.to_numpy() >= 5, 1.25, 0.9)
    return yearly * xmas * weekend


def dropout_seasonality(days: np.ndarray, start: dt.date, amplitude: float) -> np.ndarray:
    """Relative dropout hazard of each day since `start`: a yearly swing peaking in mid-January."""
    doy = (pd.to_datetime(start) + pd.to_timedelta(days, unit="D")).day_of_year.to_numpy()
    return 1.0 + amplitude * np.sin(2 * np.pi * (doy + 76) / 365.25)


@dataclass(frozen=True)
class Calendar:
    """Piecewise-constant daily intensity and its running integral, in day units from `start`."""

    start: dt.date
    rate: np.ndarray  # rate[d]: seasonal multiplier on day d
    cum: np.ndarray  # cum[d] = sum(rate[:d]); len(rate) + 1

    @classmethod
    def of(cls, start: dt.date, rate: np.ndarray) -> Calendar:
        rate = rate / rate.mean()
        return cls(start, rate, np.concatenate([[0.0], np.cumsum(rate)]))

    @classmethod
    def build(cls, start: dt.date, n_days: int, amplitude: float = 0.2) -> Calendar:
        return cls.of(start, seasonality(np.arange(n_days), start, amplitude))

    def integral(self, t: np.ndarray) -> np.ndarray:
        """Integrated intensity from day 0 to (fractional) day t."""
        return np.interp(t, np.arange(self.cum.size), self.cum)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, self.cum, np.arange(self.cum.size))

    def drifted_integrals(
        self, g: np.ndarray, origin: np.ndarray, a: np.ndarray, b: np.ndarray
    ) -> np.ndarray:
        """int_a^b rate(t) exp(g (t - origin) / 365) dt for each customer (rows: origin, a, b) and
        drift (columns: g), with the drift factor taken at each day's middle, as the generator
        does. g = 0 gives `integral(b) - integral(a)`."""
        days = np.arange(self.rate.size) + 0.5
        out = np.empty((a.size, g.size))
        for k, slope in enumerate(g):
            cum = np.concatenate([[0.0], np.cumsum(self.rate * np.exp(slope * days / YEAR))])
            at = np.arange(cum.size)
            out[:, k] = np.exp(-slope * origin / YEAR) * (np.interp(b, at, cum) - np.interp(a, at, cum))
        return out


@dataclass(frozen=True)
class Rates:
    """True individual rates: purchases lam x season(day) x exp(drift (day + 1/2 - birth) / 365)
    while alive, dropout mu x dropout season(day)."""

    lam: np.ndarray
    mu: np.ndarray
    drift: np.ndarray
    birth: np.ndarray


def _no_purchase_then_death(
    cal: Calendar, dcal: Calendar, a: np.ndarray, b: np.ndarray, rates: Rates
) -> tuple[np.ndarray, np.ndarray]:
    """For an alive customer at time a: P(no purchase in [a, b] and still alive at b) and
    P(no purchase in [a, b] and dropout inside it), exact for the piecewise-constant intensities."""
    dead = np.zeros_like(a)
    at_lo = np.ones_like(a)  # P(no purchase and alive) from a to the start of the piece
    day0 = np.floor(a)
    n_pieces = int(np.ceil((b - day0).max())) if a.size else 0
    drifts = bool(rates.drift.any())
    for k in range(n_pieces):
        length = np.clip(np.minimum(b, day0 + k + 1) - np.maximum(a, day0 + k), 0.0, None)
        day = np.minimum(day0 + k, cal.rate.size - 1).astype(np.int64)
        mu = rates.mu * dcal.rate[day]
        lam = rates.lam * cal.rate[day]
        if drifts:
            lam = lam * np.exp(rates.drift * (day + 0.5 - rates.birth) / YEAR)
        hazard = mu + lam
        decay = np.exp(-hazard * length)
        dead += at_lo * mu / hazard * (1.0 - decay)
        at_lo *= decay
    return at_lo, dead


def true_no_order_probability(
    cal: Calendar, dcal: Calendar, last_order: np.ndarray, cutoff: float, horizon: int, rates: Rates
) -> np.ndarray:
    """Bayes P(no order in [cutoff, cutoff + horizon)) given the true rates and the last order time."""
    c = np.full_like(last_order, cutoff)
    alive_and_quiet, dead_quiet = _no_purchase_then_death(cal=cal, dcal=dcal, a=last_order, b=c, rates=rates)
    p_alive = alive_and_quiet / (alive_and_quiet + dead_quiet)
    quiet_alive, quiet_dead = _no_purchase_then_death(cal=cal, dcal=dcal, a=c, b=c + horizon, rates=rates)
    return 1.0 - p_alive * (1.0 - (quiet_alive + quiet_dead))


def _return_propensity_nodes(nodes: int, return_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes and weights for the Beta prior of a customer's return propensity."""
    from scipy.special import roots_jacobi

    a, b = 0.5, 0.5 / return_share - 0.5
    x, w = roots_jacobi(nodes, b - 1.0, a - 1.0)
    return (1 + x) / 2, w / w.sum()


def _basket_weights(history: pd.DataFrame, scenario: Scenario, extra_lines: float) -> np.ndarray:
    """Posterior over the shopper types from the extra lines seen on the customer's orders
    (Poisson per order given the type), one row per customer."""
    m = np.asarray(scenario.basket_lines) * extra_lines
    loglik = (
        np.log(np.asarray(scenario.basket_shares))[None, :]
        + history["extra_lines"].to_numpy()[:, None] * np.log(np.maximum(m, 1e-300))[None, :]
        - history["n"].to_numpy()[:, None] * m[None, :]
    )
    weight = np.exp(loglik - loglik.max(axis=1, keepdims=True))
    return weight / weight.sum(axis=1, keepdims=True)


def bayes_no_order_probability(
    cal: Calendar,
    dcal: Calendar,
    history: pd.DataFrame,
    open_orders: pd.DataFrame,
    cutoff: float,
    horizon: int,
    return_share: float,
    scenario: Scenario,
    extra_lines: float,
    nodes: int = 8,
) -> np.ndarray:
    """P(no order in [cutoff, cutoff + horizon)) given only what an observer of the export knows
    before the cutoff and the simulator's population model: the Bayes-optimal prediction, which no
    model of the history can beat on average.

    `history`, one row per customer: n (orders), first and last (order days + 0.5),
    covariate_dropout (country and channel effect), returned (orders whose return was seen),
    closed (orders whose return window closed with no return), age_sum (the orders' days since
    the first order, summed), extra_lines (lines beyond the first, summed over the orders).
    `open_orders`: row (position in `history`) and seen (the chance that a return of that order
    would have been seen by now). `extra_lines` is the scenario's mean extra lines per order.

    Integrates the purchase drift over its Normal prior (Hermite nodes, weighted by the order
    times), the purchase rate over its Gamma posterior given the drift (Laguerre), the dropout
    noise (Hermite), the return propensity (Jacobi, on its Beta prior, weighted by the returns
    seen), the shopper type (exact, weighted by the basket sizes) and the one-off flag. Within an
    interval after the last order the intensities are taken at their mean there: exact for flat
    seasons and no drift, and the tests check the drifting case against a Monte Carlo posterior."""
    from scipy.special import roots_hermitenorm

    n_c = len(history)
    first, last = history["first"].to_numpy(), history["last"].to_numpy()
    n = history["n"].to_numpy(dtype=float)
    gap = np.maximum(cutoff - last, 1e-9)
    z, w_z = roots_hermitenorm(nodes)
    w_z = w_z / w_z.sum()
    if scenario.drifts:
        g, w_g = scenario.drift_mean + scenario.drift_sd * z, w_z
    else:
        g, w_g = np.array([scenario.drift_mean]), np.ones(1)
    c, end = np.full(n_c, cutoff), np.full(n_c, cutoff + horizon)
    s_life = cal.drifted_integrals(g, first, first, last)  # customer x drift node
    rate_gap = cal.drifted_integrals(g, first, last, c) / gap[:, None]
    rate_win = cal.drifted_integrals(g, first, c, end) / horizon
    d_life = dcal.integral(last) - dcal.integral(first)
    d_gap = (dcal.integral(c) - dcal.integral(last)) / gap
    d_win = float(np.diff(dcal.integral(np.array([cutoff, cutoff + horizon])))[0]) / horizon
    shape_post = scenario.lambda_shape + n - 1
    # the drift's posterior: prior x exp(g x age_sum / 365) x (rate + S_g)^-(shape + n - 1)
    log_g = (
        np.log(w_g)[None, :]
        + g[None, :] * history["age_sum"].to_numpy()[:, None] / YEAR
        - shape_post[:, None] * np.log(scenario.lambda_rate + s_life)
    )
    weight_g = np.exp(log_g - log_g.max(axis=1, keepdims=True))
    rho, w_rho = _return_propensity_nodes(nodes, return_share)
    loglik_rho = (
        history["returned"].to_numpy()[:, None] * np.log(rho)[None, :]
        + history["closed"].to_numpy()[:, None] * np.log1p(-rho)[None, :]
    )
    np.add.at(loglik_rho, open_orders["row"].to_numpy(), np.log1p(-np.outer(open_orders["seen"], rho)))
    weight_rho = w_rho[None, :] * np.exp(loglik_rho - loglik_rho.max(axis=1, keepdims=True))
    weight_type = _basket_weights(history, scenario, extra_lines)
    type_dropout = np.asarray(scenario.basket_dropout)
    covariates = history["covariate_dropout"].to_numpy()
    numerator, denominator = np.zeros(n_c), np.zeros(n_c)
    for shape in np.unique(shape_post):
        rows = np.flatnonzero(shape_post == shape)
        r = rows.size
        lam_nodes, lam_w = gamma_nodes(shape, nodes)
        # axes: customer, (drift node x lambda node), dropout draw (one-off x noise x return
        # propensity x shopper type)
        lam = (lam_nodes[None, None, :] / (scenario.lambda_rate + s_life[rows])[:, :, None]).reshape(r, -1, 1)
        w_lam = (weight_g[rows][:, :, None] * lam_w[None, None, :]).reshape(r, -1, 1)
        at_gap = np.repeat(rate_gap[rows], nodes, axis=1)[:, :, None]
        at_win = np.repeat(rate_win[rows], nodes, axis=1)[:, :, None]
        log_mu = (
            np.log(BASE_DROPOUT)
            + covariates[rows][:, None, None, None, None]
            + np.array([0.0, np.log(scenario.one_off_dropout)])[None, :, None, None, None]
            + DROPOUT_NOISE * z[None, None, :, None, None]
            + RETURN_DROPOUT * (rho - return_share)[None, None, None, :, None]
            + type_dropout[None, None, None, None, :]
        ).reshape(r, -1)
        mu = np.exp(log_mu)[:, None, :]
        w_mu = (
            np.array([1 - scenario.one_off_share, scenario.one_off_share])[None, :, None, None, None]
            * w_z[None, None, :, None, None]
            * weight_rho[rows][:, None, None, :, None]
            * weight_type[rows][:, None, None, None, :]
        ).reshape(r, -1)[:, None, :]
        alive_life = np.exp(-mu * d_life[rows][:, None, None])
        mu_gap = mu * d_gap[rows][:, None, None]
        hazard = mu_gap + lam * at_gap
        alive_quiet = np.exp(-hazard * gap[rows][:, None, None])
        dead_quiet = mu_gap / hazard * (1 - alive_quiet)
        mu_win = mu * d_win
        hazard_w = mu_win + lam * at_win
        quiet_window = np.exp(-hazard_w * horizon) + mu_win / hazard_w * (1 - np.exp(-hazard_w * horizon))
        w = w_lam * w_mu * alive_life
        denominator[rows] = (w * (alive_quiet + dead_quiet)).sum(axis=(1, 2))
        numerator[rows] = (w * (alive_quiet * quiet_window + dead_quiet)).sum(axis=(1, 2))
    return numerator / denominator


@dataclass(frozen=True)
class Population:
    customer_id: np.ndarray
    birth: np.ndarray  # day of the first order (fractional)
    death: np.ndarray  # dropout time, unobserved
    lam: np.ndarray
    mu: np.ndarray
    drift: np.ndarray  # change of the log purchase rate per year of life
    basket: np.ndarray  # shopper type (index into the scenario's basket_* tuples)
    country: np.ndarray
    channel: np.ndarray
    covariate_dropout: np.ndarray
    favourite: np.ndarray
    return_prob: np.ndarray
    hour: np.ndarray

    @property
    def rates(self) -> Rates:
        return Rates(lam=self.lam, mu=self.mu, drift=self.drift, birth=self.birth)


def draw_population(
    rng: np.random.Generator, p: SimulateParams, cal: Calendar, dcal: Calendar, n_days: int
) -> Population:
    scenario = SCENARIOS[p.scenario]
    n = p.n_customers
    growth = (1.0 + 0.6 * np.arange(n_days) / n_days) * cal.rate[:n_days]
    # a third of the base predates the export window: they arrive in its first weeks
    existing = rng.random(n) < 0.3
    birth_day = np.where(
        existing,
        rng.integers(0, 28, n),
        rng.choice(n_days, size=n, p=growth / growth.sum()),
    )
    birth = birth_day + rng.uniform(0.0, 1.0, n)
    country = rng.choice(COUNTRIES.size, size=n, p=COUNTRY_WEIGHTS)
    channel = rng.choice(CHANNELS.size, size=n, p=CHANNEL_WEIGHTS)
    covariate_dropout = COUNTRY_DROPOUT[country] + CHANNEL_DROPOUT[channel]
    return_prob = rng.beta(0.5, 0.5 / p.return_share - 0.5, n)
    lam = rng.gamma(shape=scenario.lambda_shape, scale=1 / scenario.lambda_rate, size=n)
    log_mu = (
        np.log(BASE_DROPOUT)
        + COUNTRY_DROPOUT[country]
        + CHANNEL_DROPOUT[channel]
        + RETURN_DROPOUT * (return_prob - p.return_share)
        + rng.normal(0.0, DROPOUT_NOISE, n)
    )
    # a share of acquisitions are one-off buyers who leave almost at once
    one_off = rng.random(n) < scenario.one_off_share
    life = rng.exponential(1.0, n)  # in units of the integrated dropout hazard
    order = np.argsort(rng.random(n))
    favourite = rng.integers(0, CATEGORIES.size, n)
    hour = np.clip(rng.normal(rng.uniform(9, 20, n), 1.5), 7, 22.9)
    drift = rng.normal(scenario.drift_mean, scenario.drift_sd, n) if scenario.drifts else np.zeros(n)
    shares = np.asarray(scenario.basket_shares)
    basket = rng.choice(shares.size, size=n, p=shares) if shares.size > 1 else np.zeros(n, dtype=np.int64)
    log_mu = log_mu + np.asarray(scenario.basket_dropout)[basket]
    mu = np.where(one_off, np.exp(log_mu) * scenario.one_off_dropout, np.exp(log_mu))
    if scenario.dropout_season:
        target = dcal.integral(birth) + life * (1.0 / mu)
        # past the calendar the hazard is taken at its mean (1): only the truth's dropout_ts sees it
        beyond = dcal.rate.size + (target - dcal.cum[-1])
        death = np.where(target < dcal.cum[-1], dcal.inverse(target), beyond)
    else:
        death = birth + life * (1.0 / mu)
    return Population(
        customer_id=np.char.zfill((order + 1).astype(str), 6),
        birth=birth,
        death=death,
        lam=lam,
        mu=mu,
        drift=drift,
        basket=basket,
        country=COUNTRIES[country],
        channel=CHANNELS[channel],
        covariate_dropout=covariate_dropout,
        favourite=favourite,
        return_prob=return_prob,
        hour=hour,
    )


def _repeat_orders(
    rng: np.random.Generator, pop: Population, cal: Calendar, end_alive: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Times and owners of the repeat orders: a Poisson process of intensity lam x season while
    alive; with a drift, drawn at the highest drift factor of the life and thinned day by day."""
    c_birth = cal.integral(pop.birth)
    span = np.clip(cal.integral(end_alive) - c_birth, 0.0, None)
    top = np.exp((np.maximum(pop.drift * (end_alive - pop.birth), 0.0) + np.abs(pop.drift)) / YEAR)
    n_repeat = rng.poisson(pop.lam * top * span if pop.drift.any() else pop.lam * span)
    owner = np.repeat(np.arange(pop.birth.size), n_repeat)
    u = rng.uniform(c_birth[owner], cal.integral(end_alive)[owner])
    t = cal.inverse(u)
    if pop.drift.any():
        factor = np.exp(pop.drift[owner] * (np.floor(t) + 0.5 - pop.birth[owner]) / YEAR)
        keep = rng.random(t.size) * top[owner] < factor
        t, owner = t[keep], owner[keep]
    return t, owner


def draw_orders(rng: np.random.Generator, pop: Population, cal: Calendar, n_days: int) -> pd.DataFrame:
    """One row per order: the acquisition order, then the repeat orders while alive."""
    end_alive = np.minimum(pop.death, n_days)
    t_repeat, owner = _repeat_orders(rng=rng, pop=pop, cal=cal, end_alive=end_alive)
    t = np.concatenate([pop.birth, t_repeat])
    owner = np.concatenate([np.arange(pop.birth.size), owner])
    keep = t < n_days
    t, owner = t[keep], owner[keep]
    # the time of day is the customer's habit; the day itself carries the process
    day = np.floor(t)
    hour = np.clip(pop.hour[owner] + rng.normal(0, 1.0, owner.size), 0, 23.98)
    minutes = np.floor(hour * 60)
    orders = pd.DataFrame({"owner": owner, "t": t, "day": day, "minute": minutes})
    orders = orders.sort_values(["day", "minute", "owner"], kind="stable").reset_index(drop=True)
    orders["invoice"] = np.arange(len(orders)) + 500000
    return orders


def draw_lines(
    rng: np.random.Generator, p: SimulateParams, pop: Population, orders: pd.DataFrame, n_days: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Order lines with their returns, each order's return time in minutes (NaN: kept) and
    its lines beyond the first."""
    scenario = SCENARIOS[p.scenario]
    extra = p.mean_lines_per_order - 1.0
    if len(scenario.basket_lines) > 1:
        basket = pop.basket[orders["owner"].to_numpy()]
        extra = np.asarray(scenario.basket_lines)[basket] * extra
    n_lines = 1 + rng.poisson(extra, len(orders))
    idx = np.repeat(np.arange(len(orders)), n_lines)
    owner = orders["owner"].to_numpy()[idx]
    product_category = rng.integers(0, CATEGORIES.size, N_PRODUCTS)
    product_price = np.round(np.exp(rng.normal(1.2, 0.8, N_PRODUCTS)), 2) + 0.29
    by_category = [np.flatnonzero(product_category == c) for c in range(CATEGORIES.size)]
    category = np.where(
        rng.random(idx.size) < 0.5, pop.favourite[owner], rng.integers(0, CATEGORIES.size, idx.size)
    )
    product = np.empty(idx.size, dtype=np.int64)
    for c, members in enumerate(by_category):
        at = np.flatnonzero(category == c)
        product[at] = members[rng.integers(0, members.size, at.size)]
    quantity = rng.geometric(0.4, idx.size)
    ts_minutes = orders["day"].to_numpy()[idx] * 1440 + orders["minute"].to_numpy()[idx]
    lines = pd.DataFrame(
        {
            "invoice": orders["invoice"].to_numpy()[idx].astype(str),
            "product": product,
            "quantity": quantity,
            "minutes": ts_minutes,
            "owner": owner,
        }
    )
    # returns: one line of an order comes back 1-30 days later on a credit note
    first_line = np.r_[0, np.cumsum(n_lines)[:-1]]
    returned = rng.random(len(orders)) < pop.return_prob[orders["owner"].to_numpy()]
    ret_rows = first_line[returned]
    ret = lines.iloc[ret_rows].copy()
    ret["invoice"] = "C" + ret["invoice"]
    ret["quantity"] = -ret["quantity"]
    ret["minutes"] = ret["minutes"] + rng.integers(1, RETURN_DAYS + 1, len(ret)) * 1440
    # each order's return time (NaN: kept), which the Bayes oracle sees once it has happened
    return_minute = np.full(len(orders), np.nan)
    return_minute[returned] = ret["minutes"].to_numpy()
    ret = ret[ret["minutes"] < n_days * 1440]
    lines = pd.concat([lines, ret], ignore_index=True)
    lines = lines.sort_values(["minutes", "invoice", "product"], kind="stable").reset_index(drop=True)
    lines["price"] = product_price[lines["product"].to_numpy()]
    lines["category"] = CATEGORIES[product_category[lines["product"].to_numpy()]]
    return lines, return_minute, n_lines - 1


def to_raw_table(lines: pd.DataFrame, pop: Population, start: dt.date) -> pa.Table:
    ts = pd.Timestamp(start) + pd.to_timedelta(lines["minutes"].to_numpy(), unit="min")
    owner = lines["owner"].to_numpy()
    return pa.table(
        {
            "Invoice": lines["invoice"].to_numpy(),
            "StockCode": np.char.add("P", np.char.zfill(lines["product"].to_numpy().astype(str), 5)),
            "Category": lines["category"].to_numpy(),
            "Quantity": lines["quantity"].to_numpy().astype(str),
            "InvoiceDate": pc.strftime(pa.array(ts, pa.timestamp("s")), RAW_DATE_FORMAT).to_numpy(
                zero_copy_only=False
            ),
            "Price": np.char.mod("%.2f", lines["price"].to_numpy()),
            "Customer ID": pop.customer_id[owner],
            "Country": pop.country[owner],
            "Channel": pop.channel[owner],
        }
    )


def corrupt(rng: np.random.Generator, table: pa.Table, share: float) -> pa.Table:
    """Damage a small share of rows the way real exports are damaged."""
    n = table.num_rows
    hit = np.flatnonzero(rng.random(n) < share)
    kind = rng.integers(0, 4, hit.size)
    columns = {name: table.column(name).to_numpy(zero_copy_only=False).astype(object) for name in RAW_COLUMNS}
    columns["Customer ID"][hit[kind == 0]] = ""
    columns["InvoiceDate"][hit[kind == 1]] = "31/02/2025 25:61"
    columns["Price"][hit[kind == 2]] = "n/a"
    columns["Quantity"][hit[kind == 3]] = ""
    return pa.table({name: pa.array(values, pa.string()) for name, values in columns.items()})


def simulate(p: SimulateParams, fp: FeaturizeParams) -> tuple[pa.Table, pd.DataFrame, pd.DataFrame]:
    """Raw export table, per-customer latent truth, and per-cutoff true churn probabilities."""
    if fp.horizon_days == "auto":
        raise ParamsError(
            "simulate computes the true churn probability over featurize.horizon_days: set a number"
        )
    rng = np.random.default_rng(p.seed)
    n_days = (p.end_date - p.start_date).days
    scenario = SCENARIOS[p.scenario]
    calendar_days = n_days + fp.horizon + 2
    cal = Calendar.build(p.start_date, calendar_days, scenario.purchase_season)
    dropout = dropout_seasonality(np.arange(calendar_days), p.start_date, scenario.dropout_season)
    dcal = Calendar.of(p.start_date, dropout)
    pop = draw_population(rng=rng, p=p, cal=cal, dcal=dcal, n_days=n_days)
    orders = draw_orders(rng=rng, pop=pop, cal=cal, n_days=n_days)
    lines, return_minute, extra_lines = draw_lines(rng=rng, p=p, pop=pop, orders=orders, n_days=n_days)
    orders = orders.assign(return_minute=return_minute, extra_lines=extra_lines)
    raw = corrupt(rng, to_raw_table(lines, pop, p.start_date), p.malformed_share)
    customers = pd.DataFrame(
        {
            "customer_id": pop.customer_id,
            "first_order_ts": pd.Timestamp(p.start_date) + pd.to_timedelta(pop.birth, unit="D"),
            "dropout_ts": pd.Timestamp(p.start_date) + pd.to_timedelta(np.minimum(pop.death, 1e5), unit="D"),
            "purchase_rate_per_day": pop.lam,
            "dropout_rate_per_day": pop.mu,
        }
    ).sort_values("customer_id", ignore_index=True)
    truth = truth_at_cutoffs(p=p, fp=fp, cal=cal, dcal=dcal, pop=pop, orders=orders)
    return raw, customers, truth


def observed_history(
    before: pd.DataFrame, pop: Population, eligible: np.ndarray, c: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the export shows of each eligible customer's orders before day `c` (see
    `bayes_no_order_probability`): order days, returns seen, and return windows still open."""
    position = np.full(pop.birth.size, -1)
    position[eligible] = np.arange(eligible.size)
    mine = before[position[before["owner"].to_numpy()] >= 0]
    row = position[mine["owner"].to_numpy()]
    order_minute = mine["day"].to_numpy() * 1440 + mine["minute"].to_numpy()
    cutoff_minute = c * 1440
    returned = (mine["return_minute"] < cutoff_minute).to_numpy()
    closed = ~returned & (order_minute + RETURN_DAYS * 1440 < cutoff_minute)
    is_open = ~returned & ~closed
    # a return comes back after k whole days, k = 1..30 equally likely
    seen = np.clip(np.ceil((cutoff_minute - order_minute[is_open]) / 1440) - 1, 0, RETURN_DAYS) / RETURN_DAYS
    day = mine["day"].to_numpy()
    n = np.bincount(row, minlength=eligible.size)
    history = pd.DataFrame(
        {
            "n": n,
            "first": np.full(eligible.size, np.inf),
            "last": np.full(eligible.size, -np.inf),
            "covariate_dropout": pop.covariate_dropout[eligible],
            "returned": np.bincount(row, weights=returned, minlength=eligible.size),
            "closed": np.bincount(row, weights=closed, minlength=eligible.size),
            "extra_lines": np.bincount(row, weights=mine["extra_lines"].to_numpy(), minlength=eligible.size),
        }
    )
    first, last = history["first"].to_numpy().copy(), history["last"].to_numpy().copy()
    np.minimum.at(first, row, day + 0.5)
    np.maximum.at(last, row, day + 0.5)
    history["first"], history["last"] = first, last
    history["age_sum"] = np.bincount(row, weights=day + 0.5, minlength=eligible.size) - n * first
    return history, pd.DataFrame({"row": row[is_open], "seen": seen})


def truth_at_cutoffs(
    p: SimulateParams,
    fp: FeaturizeParams,
    cal: Calendar,
    dcal: Calendar,
    pop: Population,
    orders: pd.DataFrame,
) -> pd.DataFrame:
    scenario = SCENARIOS[p.scenario]
    nodes = 8
    # the oracle's quadrature grid per customer, to size the chunks (about 4M points each)
    grid = (nodes if scenario.drifts else 1) * nodes * 2 * nodes * nodes * len(scenario.basket_shares)
    score_date = fp.score_date or p.end_date
    n_days = (p.end_date - p.start_date).days
    cutoffs = training_cutoffs(
        score_date=score_date,
        horizon_days=fp.horizon,
        every_days=fp.cutoff_every_days,
        n_cutoffs=fp.n_cutoffs,
    )
    # the cutoffs a model is judged at (the evaluation cutoff and the backtest origins), and the
    # scoring date: the oracle's quadrature is two thirds of the stage's time
    cutoffs = [*cutoffs[-p.truth_cutoffs :], score_date]
    # cutoffs fall on midnights, so an order's day decides its side of a cutoff
    order_t = orders["t"].to_numpy()
    owner = orders["owner"].to_numpy()
    frames = []
    for cutoff in cutoffs:
        c = float((cutoff - p.start_date).days)
        before = order_t < c
        last = np.full(pop.birth.size, -np.inf)
        np.maximum.at(last, owner[before], order_t[before])
        eligible = np.flatnonzero(last >= c - fp.eligibility_lookback_days)
        rates = pop.rates
        prob = true_no_order_probability(
            cal=cal,
            dcal=dcal,
            last_order=last[eligible],
            cutoff=c,
            horizon=fp.horizon,
            rates=Rates(
                lam=rates.lam[eligible],
                mu=rates.mu[eligible],
                drift=rates.drift[eligible],
                birth=rates.birth[eligible],
            ),
        )
        history, open_orders = observed_history(before=orders[before], pop=pop, eligible=eligible, c=c)
        bayes = np.empty(eligible.size)
        for chunk in np.array_split(np.arange(eligible.size), max(1, eligible.size * grid // 4_096_000)):
            rows = open_orders[open_orders["row"].isin(chunk)]
            rows = rows.assign(row=rows["row"] - chunk[0])
            bayes[chunk] = bayes_no_order_probability(
                cal=cal,
                dcal=dcal,
                history=history.iloc[chunk],
                open_orders=rows,
                cutoff=c,
                horizon=fp.horizon,
                return_share=p.return_share,
                scenario=scenario,
                extra_lines=p.mean_lines_per_order - 1.0,
                nodes=nodes,
            )
        in_window = (order_t >= c) & (order_t < c + fp.horizon)
        ordered = np.bincount(owner[in_window], minlength=pop.birth.size)[eligible] > 0
        observed = c + fp.horizon <= n_days
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": pop.customer_id[eligible],
                    "cutoff": pd.Timestamp(cutoff),
                    "true_p_no_order": prob,
                    "bayes_p_no_order": bayes,
                    "alive_at_cutoff": pop.death[eligible] > c,
                    # the label from the clean order stream; unknown past the end of the data
                    "churned": np.where(ordered, 0.0, 1.0) if observed else np.nan,
                }
            )
        )
    truth = pd.concat(frames, ignore_index=True)
    return truth.sort_values(["cutoff", "customer_id"], ignore_index=True)


def main(params_path: Path, raw_path: Path, truth_path: Path, customers_path: Path) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    raw, customers, truth = simulate(params.simulate, params.featurize)
    with atomic_path(raw_path) as tmp:
        pacsv.write_csv(raw, tmp, pacsv.WriteOptions(quoting_style="needed"))
    write_parquet(truth, truth_path)
    write_parquet(customers, customers_path)
    log.info(
        "simulated %d customers, %d order lines; truth for %d customer-cutoffs",
        len(customers),
        raw.num_rows,
        len(truth),
    )
