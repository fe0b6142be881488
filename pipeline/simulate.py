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

from pipeline.cutoffs import training_cutoffs
from pipeline.io import atomic_path, write_parquet
from pipeline.params import FeaturizeParams, SimulateParams
from pipeline.quadrature import gamma_nodes

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
RETURN_DAYS = 30  # a return comes back 1 to 30 whole days after its order
ONE_OFF_SHARE = 0.3
ONE_OFF_DROPOUT = 20.0
LAMBDA_SHAPE, LAMBDA_RATE = 0.9, 40.0  # orders per day while alive ~ Gamma(shape, rate)
BASE_DROPOUT = 1 / 300
DROPOUT_NOISE = 0.6
RETURN_DROPOUT = 4.0
RAW_COLUMNS = [
    "Invoice", "StockCode", "Category", "Quantity", "InvoiceDate", "Price", "Customer ID",
    "Country", "Channel",
]  # fmt: skip


def seasonality(days: np.ndarray, start: dt.date) -> np.ndarray:
    """Relative purchase intensity of each day since `start`: yearly swell, a pre-Christmas peak,
    busier weekends. Shared by all customers."""
    dates = pd.to_datetime(start) + pd.to_timedelta(days, unit="D")
    doy = dates.dayofyear.to_numpy()
    yearly = 1.0 + 0.2 * np.sin(2 * np.pi * (doy - 80) / 365.25)
    xmas = np.where(
        (dates.month == 11) & (dates.day >= 15) | (dates.month == 12) & (dates.day <= 20), 1.6, 1.0
    )
    weekend = np.where(dates.dayofweek.to_numpy() >= 5, 1.25, 0.9)
    return yearly * xmas * weekend


@dataclass(frozen=True)
class Calendar:
    """Piecewise-constant daily intensity and its running integral, in day units from `start`."""

    start: dt.date
    rate: np.ndarray  # rate[d]: seasonal multiplier on day d
    cum: np.ndarray  # cum[d] = sum(rate[:d]); len(rate) + 1

    @classmethod
    def build(cls, start: dt.date, n_days: int) -> Calendar:
        rate = seasonality(np.arange(n_days), start)
        rate = rate / rate.mean()
        return cls(start, rate, np.concatenate([[0.0], np.cumsum(rate)]))

    def integral(self, t: np.ndarray) -> np.ndarray:
        """Integrated intensity from day 0 to (fractional) day t."""
        return np.interp(t, np.arange(self.cum.size), self.cum)

    def inverse(self, u: np.ndarray) -> np.ndarray:
        return np.interp(u, self.cum, np.arange(self.cum.size))


def _no_purchase_then_death(
    cal: Calendar, a: np.ndarray, b: np.ndarray, lam: np.ndarray, mu: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For an alive customer at time a: P(no purchase in [a, b] and still alive at b) and
    P(no purchase in [a, b] and dropout inside it), exact for the piecewise-constant intensity."""
    survive = np.exp(-mu * (b - a) - lam * (cal.integral(b) - cal.integral(a)))
    dead = np.zeros_like(a)
    at_lo = np.ones_like(a)  # P(no purchase and alive) from a to the start of the piece
    day0 = np.floor(a)
    n_pieces = int(np.ceil((b - day0).max())) if a.size else 0
    for k in range(n_pieces):
        length = np.clip(np.minimum(b, day0 + k + 1) - np.maximum(a, day0 + k), 0.0, None)
        s = cal.rate[np.minimum(day0 + k, cal.rate.size - 1).astype(np.int64)]
        hazard = mu + lam * s
        decay = np.exp(-hazard * length)
        dead += at_lo * mu / hazard * (1.0 - decay)
        at_lo *= decay
    return survive, dead


def true_no_order_probability(
    cal: Calendar, last_order: np.ndarray, cutoff: float, horizon: int, lam: np.ndarray, mu: np.ndarray
) -> np.ndarray:
    """Bayes P(no order in [cutoff, cutoff + horizon)) given the true rates and the last order time."""
    c = np.full_like(last_order, cutoff)
    alive_and_quiet, dead_quiet = _no_purchase_then_death(cal, last_order, c, lam, mu)
    p_alive = alive_and_quiet / (alive_and_quiet + dead_quiet)
    quiet_alive, quiet_dead = _no_purchase_then_death(cal, c, c + horizon, lam, mu)
    return 1.0 - p_alive * (1.0 - (quiet_alive + quiet_dead))


def _return_propensity_nodes(nodes: int, return_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes and weights for the Beta prior of a customer's return propensity."""
    from scipy.special import roots_jacobi

    a, b = 0.5, 0.5 / return_share - 0.5
    x, w = roots_jacobi(nodes, b - 1.0, a - 1.0)
    return (1 + x) / 2, w / w.sum()


def bayes_no_order_probability(
    cal: Calendar,
    history: pd.DataFrame,
    open_orders: pd.DataFrame,
    cutoff: float,
    horizon: int,
    return_share: float,
    nodes: int = 8,
) -> np.ndarray:
    """P(no order in [cutoff, cutoff + horizon)) given only what an observer of the export knows
    before the cutoff and the simulator's population model: the Bayes-optimal prediction, which no
    model of the history can beat on average.

    `history`, one row per customer: n (orders), first and last (order days + 0.5),
    covariate_dropout (country and channel effect), returned (orders whose return was seen),
    closed (orders whose return window closed with no return). `open_orders`: row (position in
    `history`) and seen (the chance that a return of that order would have been seen by now).

    Integrates the purchase rate over its Gamma posterior (Laguerre nodes), the dropout noise
    (Hermite), the return propensity (Jacobi, on its Beta prior, weighted by the returns seen) and
    the one-off flag. Within an interval the seasonal rate is taken at its mean there: exact for a
    flat season, and the test checks that case against the individual-level truth averaged over
    the same posterior."""
    from scipy.special import roots_hermitenorm

    n_c = len(history)
    first, last = history["first"].to_numpy(), history["last"].to_numpy()
    n = history["n"].to_numpy(dtype=float)
    s_life = cal.integral(last) - cal.integral(first)
    gap = np.maximum(cutoff - last, 1e-9)
    rate_gap = (cal.integral(np.full(n_c, cutoff)) - cal.integral(last)) / gap
    rate_win = float(np.diff(cal.integral(np.array([cutoff, cutoff + horizon])))[0]) / horizon
    rho, w_rho = _return_propensity_nodes(nodes, return_share)
    loglik_rho = (
        history["returned"].to_numpy()[:, None] * np.log(rho)[None, :]
        + history["closed"].to_numpy()[:, None] * np.log1p(-rho)[None, :]
    )
    np.add.at(loglik_rho, open_orders["row"].to_numpy(), np.log1p(-np.outer(open_orders["seen"], rho)))
    weight_rho = w_rho[None, :] * np.exp(loglik_rho - loglik_rho.max(axis=1, keepdims=True))
    z, w_z = roots_hermitenorm(nodes)
    w_z = w_z / w_z.sum()
    covariates = history["covariate_dropout"].to_numpy()
    numerator, denominator = np.zeros(n_c), np.zeros(n_c)
    for shape in np.unique(n):
        rows = np.flatnonzero(n == shape)
        lam_nodes, lam_w = gamma_nodes(LAMBDA_SHAPE + shape - 1, nodes)
        # axes: customer, lambda node, dropout draw (one-off x noise x return propensity)
        lam = (lam_nodes[None, :] / (LAMBDA_RATE + s_life[rows])[:, None])[:, :, None]
        log_mu = (
            np.log(BASE_DROPOUT)
            + covariates[rows][:, None, None, None, None]
            + np.array([0.0, np.log(ONE_OFF_DROPOUT)])[None, :, None, None, None]
            + DROPOUT_NOISE * z[None, None, :, None, None]
            + RETURN_DROPOUT * (rho - return_share)[None, None, None, :, None]
        ).reshape(len(rows), -1)
        mu = np.exp(log_mu)[:, None, :]
        w_mu = (
            np.array([1 - ONE_OFF_SHARE, ONE_OFF_SHARE])[None, :, None, None]
            * w_z[None, None, :, None]
            * weight_rho[rows][:, None, None, :]
        ).reshape(len(rows), -1)[:, None, :]
        alive_life = np.exp(-mu * (last[rows] - first[rows])[:, None, None])
        hazard = mu + lam * rate_gap[rows][:, None, None]
        alive_quiet = np.exp(-hazard * gap[rows][:, None, None])
        dead_quiet = mu / hazard * (1 - alive_quiet)
        hazard_w = mu + lam * rate_win
        quiet_window = np.exp(-hazard_w * horizon) + mu / hazard_w * (1 - np.exp(-hazard_w * horizon))
        w = lam_w[None, :, None] * w_mu * alive_life
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
    country: np.ndarray
    channel: np.ndarray
    covariate_dropout: np.ndarray
    favourite: np.ndarray
    return_prob: np.ndarray
    hour: np.ndarray


def draw_population(rng: np.random.Generator, p: SimulateParams, cal: Calendar, n_days: int) -> Population:
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
    lam = rng.gamma(shape=LAMBDA_SHAPE, scale=1 / LAMBDA_RATE, size=n)
    log_mu = (
        np.log(BASE_DROPOUT)
        + COUNTRY_DROPOUT[country]
        + CHANNEL_DROPOUT[channel]
        + RETURN_DROPOUT * (return_prob - p.return_share)
        + rng.normal(0.0, DROPOUT_NOISE, n)
    )
    mu = np.exp(log_mu)
    # a share of acquisitions are one-off buyers who leave almost at once
    one_off = rng.random(n) < ONE_OFF_SHARE
    mu = np.where(one_off, mu * ONE_OFF_DROPOUT, mu)
    death = birth + rng.exponential(1.0 / mu)
    order = np.argsort(rng.random(n))
    return Population(
        customer_id=np.char.zfill((order + 1).astype(str), 6),
        birth=birth,
        death=death,
        lam=lam,
        mu=mu,
        country=COUNTRIES[country],
        channel=CHANNELS[channel],
        covariate_dropout=covariate_dropout,
        favourite=rng.integers(0, CATEGORIES.size, n),
        return_prob=return_prob,
        hour=np.clip(rng.normal(rng.uniform(9, 20, n), 1.5), 7, 22.9),
    )


def draw_orders(rng: np.random.Generator, pop: Population, cal: Calendar, n_days: int) -> pd.DataFrame:
    """One row per order: the acquisition order, then the repeat orders while alive."""
    end_alive = np.minimum(pop.death, n_days)
    c_birth = cal.integral(pop.birth)
    expected = pop.lam * np.clip(cal.integral(end_alive) - c_birth, 0.0, None)
    n_repeat = rng.poisson(expected)
    owner = np.repeat(np.arange(pop.birth.size), n_repeat)
    u = rng.uniform(c_birth[owner], cal.integral(end_alive)[owner])
    t = np.concatenate([pop.birth, cal.inverse(u)])
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
) -> tuple[pd.DataFrame, np.ndarray]:
    """Order lines with their returns, and each order's return time in minutes (NaN: kept)."""
    n_lines = 1 + rng.poisson(p.mean_lines_per_order - 1.0, len(orders))
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
    return lines, return_minute


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
        raise ValueError(
            "simulate computes the true churn probability over featurize.horizon_days: set a number"
        )
    rng = np.random.default_rng(p.seed)
    n_days = (p.end_date - p.start_date).days
    cal = Calendar.build(p.start_date, n_days + fp.horizon_days + 2)
    pop = draw_population(rng, p, cal, n_days)
    orders = draw_orders(rng, pop, cal, n_days)
    lines, return_minute = draw_lines(rng, p, pop, orders, n_days)
    orders = orders.assign(return_minute=return_minute)
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
    truth = truth_at_cutoffs(p, fp, cal, pop, orders)
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
    history = pd.DataFrame(
        {
            "n": np.bincount(row, minlength=eligible.size),
            "first": np.full(eligible.size, np.inf),
            "last": np.full(eligible.size, -np.inf),
            "covariate_dropout": pop.covariate_dropout[eligible],
            "returned": np.bincount(row, weights=returned, minlength=eligible.size),
            "closed": np.bincount(row, weights=closed, minlength=eligible.size),
        }
    )
    first, last = history["first"].to_numpy().copy(), history["last"].to_numpy().copy()
    np.minimum.at(first, row, day + 0.5)
    np.maximum.at(last, row, day + 0.5)
    history["first"], history["last"] = first, last
    return history, pd.DataFrame({"row": row[is_open], "seen": seen})


def truth_at_cutoffs(
    p: SimulateParams, fp: FeaturizeParams, cal: Calendar, pop: Population, orders: pd.DataFrame
) -> pd.DataFrame:
    score_date = fp.score_date or p.end_date
    n_days = (p.end_date - p.start_date).days
    cutoffs = training_cutoffs(score_date, fp.horizon_days, fp.cutoff_every_days, fp.n_cutoffs)
    cutoffs = [*cutoffs, score_date]
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
        prob = true_no_order_probability(
            cal, last[eligible], c, fp.horizon_days, pop.lam[eligible], pop.mu[eligible]
        )
        history, open_orders = observed_history(orders[before], pop, eligible, c)
        bayes = np.empty(eligible.size)
        for chunk in np.array_split(np.arange(eligible.size), max(1, eligible.size // 4000)):
            rows = open_orders[open_orders["row"].isin(chunk)]
            rows = rows.assign(row=rows["row"] - chunk[0])
            bayes[chunk] = bayes_no_order_probability(
                cal, history.iloc[chunk], rows, c, fp.horizon_days, p.return_share
            )
        in_window = (order_t >= c) & (order_t < c + fp.horizon_days)
        ordered = np.bincount(owner[in_window], minlength=pop.birth.size)[eligible] > 0
        observed = c + fp.horizon_days <= n_days
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
    from pipeline.params import load_params

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
