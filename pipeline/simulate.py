"""Stage simulate: seeded retail transactions in an invoice-line export shape, plus the ground truth.

Each customer follows a Pareto/NBD-style process: the first order at acquisition, then orders as a
Poisson process of individual rate lambda (modulated by a shared seasonal curve) until an unobserved
exponential dropout of individual rate mu. Dropout depends on observable traits (channel, country,
return habit), so a model can learn from the history what a Pareto/NBD model alone cannot.

The truth file holds, for every cutoff of the schedule and for every customer with an order in the
eligibility lookback before it, the Bayes probability of placing no order in [cutoff, cutoff + H)
given that customer's true lambda and mu and the order history before the cutoff. Its AUC against
the labels is the oracle AUC: the best any model that sees only the history could hope for.
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


@dataclass(frozen=True)
class Population:
    customer_id: np.ndarray
    birth: np.ndarray  # day of the first order (fractional)
    death: np.ndarray  # dropout time, unobserved
    lam: np.ndarray
    mu: np.ndarray
    country: np.ndarray
    channel: np.ndarray
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
    return_prob = rng.beta(0.5, 0.5 / p.return_share - 0.5, n)
    lam = rng.gamma(shape=0.9, scale=0.025, size=n)  # orders per day while alive
    log_mu = (
        np.log(1 / 300)
        + COUNTRY_DROPOUT[country]
        + CHANNEL_DROPOUT[channel]
        + 4.0 * (return_prob - p.return_share)
        + rng.normal(0.0, 0.6, n)
    )
    mu = np.exp(log_mu)
    # a share of acquisitions are one-off buyers who leave almost at once
    one_off = rng.random(n) < 0.3
    mu = np.where(one_off, mu * 20, mu)
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
) -> pd.DataFrame:
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
    ret["minutes"] = ret["minutes"] + rng.integers(1, 31, len(ret)) * 1440
    ret = ret[ret["minutes"] < n_days * 1440]
    lines = pd.concat([lines, ret], ignore_index=True)
    lines = lines.sort_values(["minutes", "invoice", "product"], kind="stable").reset_index(drop=True)
    lines["price"] = product_price[lines["product"].to_numpy()]
    lines["category"] = CATEGORIES[product_category[lines["product"].to_numpy()]]
    return lines


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
    rng = np.random.default_rng(p.seed)
    n_days = (p.end_date - p.start_date).days
    cal = Calendar.build(p.start_date, n_days + fp.horizon_days + 2)
    pop = draw_population(rng, p, cal, n_days)
    orders = draw_orders(rng, pop, cal, n_days)
    lines = draw_lines(rng, p, pop, orders, n_days)
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


def truth_at_cutoffs(
    p: SimulateParams, fp: FeaturizeParams, cal: Calendar, pop: Population, orders: pd.DataFrame
) -> pd.DataFrame:
    score_date = fp.score_date or p.end_date
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
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": pop.customer_id[eligible],
                    "cutoff": pd.Timestamp(cutoff),
                    "true_p_no_order": prob,
                    "alive_at_cutoff": pop.death[eligible] > c,
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
