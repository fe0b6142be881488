"""Stage simulate: a seeded retail shop's transactions in an invoice-line export shape, and the
latent state behind them.

Each customer follows a Pareto/NBD-style process: the first order at acquisition, then orders as a
Poisson process of individual rate lambda (modulated by a shared seasonal curve) until an unobserved
exponential dropout of individual rate mu. Dropout depends on observable traits (channel, country,
return habit), so a model can learn from the history what a Pareto/NBD model alone cannot. The
scenarios and calendars are in `core/shop.py`.

Besides the export it writes what only the simulator knows: each customer's rates and dropout
time (customers.parquet) and the clean order stream with each order's return (orders.parquet).
Stage `truth` turns them into the oracle's probabilities at the cutoffs featurize used.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.core.io import atomic_path, write_parquet
from pipeline.core.params import SimulateParams
from pipeline.core.shop import (
    BASE_DROPOUT,
    DROPOUT_NOISE,
    RETURN_DAYS,
    RETURN_DROPOUT,
    SCENARIOS,
    YEAR,
    Calendar,
    SimulatedShop,
    calendars,
)

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
            "invoice": orders["invoice"].to_numpy()[idx],
            "credit": np.zeros(idx.size, dtype=bool),
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
    ret["credit"] = True  # its invoice is "C" and the order's number
    ret["quantity"] = -ret["quantity"]
    ret["minutes"] = ret["minutes"] + rng.integers(1, RETURN_DAYS + 1, len(ret)) * 1440
    # each order's return time (NaN: kept), which the Bayes oracle sees once it has happened
    return_minute = np.full(len(orders), np.nan)
    return_minute[returned] = ret["minutes"].to_numpy()
    ret = ret[ret["minutes"] < n_days * 1440]
    lines = pd.concat([lines, ret], ignore_index=True)
    lines = lines.iloc[export_order(lines)].reset_index(drop=True)
    lines["price"] = product_price[lines["product"].to_numpy()]
    lines["category"] = CATEGORIES[product_category[lines["product"].to_numpy()]]
    return lines, return_minute, n_lines - 1


def export_order(lines: pd.DataFrame) -> np.ndarray:
    """The positions of `lines` in the export's order: by minute, then by the invoice as text, then
    by product; ties keep their order. The invoice's text ("C" and the number for a credit note)
    is compared through integers: a credit note after every plain invoice, and among either a
    number's digits right-padded with zeros to the longest, a shorter number first where they tie
    (it is a prefix of the other). Sorting the text itself took a quarter of the stage."""
    invoice = lines["invoice"].to_numpy()
    digits = np.searchsorted(10 ** np.arange(1, 19, dtype=np.int64), invoice, side="right") + 1
    padded = invoice * 10 ** (digits.max(initial=1) - digits)
    keys = (
        lines["product"].to_numpy(),
        digits,
        padded,
        lines["credit"].to_numpy(),
        lines["minutes"].to_numpy(),
    )
    return np.lexsort(keys)  # stable; the last key sorts first


def invoice_text(lines: pd.DataFrame) -> pa.Array:
    """The export's invoice column: the number as text, after "C" for a credit note."""
    text = pc.cast(pa.array(lines["invoice"].to_numpy()), pa.string())
    return pc.if_else(pa.array(lines["credit"].to_numpy()), pc.binary_join_element_wise("C", text, ""), text)


def _distinct(values: np.ndarray, text: Callable[[np.ndarray], np.ndarray]) -> pa.Array:
    """`text(values)` as Arrow strings, each distinct value turned into text once: 10M lines hold
    a few thousand products, prices and quantities and about a million distinct minutes."""
    distinct, index = np.unique(values, return_inverse=True)
    return _taken(text(distinct), index)


def _taken(labels: np.ndarray, index: np.ndarray) -> pa.Array:
    """`labels[index]` as Arrow strings, taken by Arrow rather than as a NumPy array of strings."""
    return pa.DictionaryArray.from_arrays(pa.array(index, pa.int64()), pa.array(labels)).dictionary_decode()


def to_raw_table(lines: pd.DataFrame, pop: Population, start: dt.date) -> pa.Table:
    owner = lines["owner"].to_numpy()

    def stamps(minutes: np.ndarray) -> np.ndarray:
        ts = pd.Timestamp(start) + pd.to_timedelta(minutes, unit="min")
        return pc.strftime(pa.array(ts, pa.timestamp("s")), RAW_DATE_FORMAT).to_numpy(zero_copy_only=False)

    return pa.table(
        {
            "Invoice": invoice_text(lines),
            "StockCode": _distinct(
                lines["product"].to_numpy(), lambda p: np.char.add("P", np.char.zfill(p.astype(str), 5))
            ),
            "Category": pa.Array.from_pandas(lines["category"]).cast(pa.string()),
            "Quantity": _distinct(lines["quantity"].to_numpy(), lambda q: q.astype(str)),
            "InvoiceDate": _distinct(lines["minutes"].to_numpy(), stamps),
            "Price": _distinct(lines["price"].to_numpy(), lambda p: np.char.mod("%.2f", p)),
            "Customer ID": _taken(pop.customer_id, owner),
            "Country": _taken(pop.country, owner),
            "Channel": _taken(pop.channel, owner),
        }
    )


# how `corrupt` damages a cell: (column, what it becomes), one kind per damaged row
DAMAGE = (("Customer ID", ""), ("InvoiceDate", "31/02/2025 25:61"), ("Price", "n/a"), ("Quantity", ""))


def corrupt(rng: np.random.Generator, table: pa.Table, share: float) -> pa.Table:
    """Damage a small share of rows the way real exports are damaged. Arrow strings throughout:
    a column of Python strings per field would hold the export several times over (9.4 GB at 10M
    lines)."""
    n = table.num_rows
    hit = np.flatnonzero(rng.random(n) < share)
    kind = rng.integers(0, 4, hit.size)
    columns = {name: pc.cast(table.column(name), pa.string()) for name in RAW_COLUMNS}
    for k, (name, value) in enumerate(DAMAGE):
        mask = np.zeros(n, dtype=bool)
        mask[hit[kind == k]] = True
        columns[name] = pc.replace_with_mask(columns[name], pa.array(mask), pa.scalar(value, pa.string()))
    return pa.table(columns)


def simulate(p: SimulateParams) -> tuple[pa.Table, SimulatedShop]:
    """The raw export table and the shop's latent state behind it, for its truth."""
    rng = np.random.default_rng(p.seed)
    n_days = (p.end_date - p.start_date).days
    cal, dcal = calendars(p)
    pop = draw_population(rng=rng, p=p, cal=cal, dcal=dcal, n_days=n_days)
    orders = draw_orders(rng=rng, pop=pop, cal=cal, n_days=n_days)
    lines, return_minute, extra_lines = draw_lines(rng=rng, p=p, pop=pop, orders=orders, n_days=n_days)
    raw = corrupt(rng, to_raw_table(lines, pop, p.start_date), p.malformed_share)
    customers = pd.DataFrame(
        {
            "customer_id": pop.customer_id,
            "first_order_ts": pd.Timestamp(p.start_date) + pd.to_timedelta(pop.birth, unit="D"),
            "dropout_ts": pd.Timestamp(p.start_date) + pd.to_timedelta(np.minimum(pop.death, 1e5), unit="D"),
            "purchase_rate_per_day": pop.lam,
            "dropout_rate_per_day": pop.mu,
            "purchase_drift_per_year": pop.drift,
            "covariate_log_dropout": pop.covariate_dropout,
        }
    ).sort_values("customer_id", ignore_index=True)
    clean = pd.DataFrame(
        {
            "customer_id": pop.customer_id[orders["owner"].to_numpy()],
            "t": orders["t"].to_numpy(),
            "minute": orders["minute"].to_numpy(),
            "return_minute": return_minute,
            "extra_lines": extra_lines,
        }
    )
    return raw, SimulatedShop(params=p, customers=customers, orders=clean)


def main(params_path: Path, raw_path: Path, customers_path: Path, orders_path: Path) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    raw, shop = simulate(params.simulate)
    with atomic_path(raw_path) as tmp:
        pacsv.write_csv(raw, tmp, pacsv.WriteOptions(quoting_style="needed"))
    write_parquet(shop.customers, customers_path)
    write_parquet(shop.orders, orders_path)
    log.info(
        "simulated %d customers, %d orders, %d order lines",
        len(shop.customers),
        len(shop.orders),
        raw.num_rows,
    )
