"""The simulated shop's truth: for each customer with an order in the eligibility lookback before
a cutoff, two probabilities of placing no order in [cutoff, cutoff + H).

- `bayes_p_no_order`: the Bayes-optimal prediction from what the export shows before the cutoff
  and the simulator's population model. This is the oracle: no model of the history can beat it
  on average.
- `true_p_no_order`: the same given the customer's true rates, a ceiling no history reaches.

The inputs are what the simulator knows and an observer does not (`shop.SimulatedShop`): every
customer's latent rates and dropout time, and the clean order stream with each order's return.
The cutoffs and H are whatever schedule the features were built on (stage `truth` reads them from
featurize's fits.json), so the oracle is judged on the same rows as the model.
"""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np
import pandas as pd

from pipeline.core.errors import PipelineError
from pipeline.core.parallel import usable_cores
from pipeline.core.quadrature import gamma_nodes
from pipeline.core.shop import (
    BASE_DROPOUT,
    BEYOND_DAYS,
    DROPOUT_NOISE,
    RETURN_DAYS,
    RETURN_DROPOUT,
    SCENARIOS,
    YEAR,
    Calendar,
    Rates,
    Scenario,
    SimulatedShop,
    calendars,
)


class TruthError(PipelineError):
    """The simulated shop cannot answer the question asked of its truth."""


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


def observed_history(
    before: pd.DataFrame, covariate_dropout: np.ndarray, eligible: np.ndarray, c: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What the export shows of each eligible customer's orders before day `c` (see
    `bayes_no_order_probability`): order days, returns seen, and return windows still open.
    `before["owner"]` is a position in `covariate_dropout`, one entry per customer."""
    position = np.full(covariate_dropout.size, -1)
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
            "covariate_dropout": covariate_dropout[eligible],
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


def _open_orders_of(open_orders: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The open orders of the consecutive customers `rows`, positioned within them."""
    mine = open_orders[open_orders["row"].isin(rows)]
    return mine.assign(row=mine["row"] - rows[0])


def _days_since(start: dt.date, ts: pd.Series) -> np.ndarray:
    return ((ts - pd.Timestamp(start)) / pd.Timedelta(days=1)).to_numpy(dtype=float)


# quadrature points of the oracle's grid per piece of customers: about 32 MB per float array
CHUNK_POINTS = 4_096_000


def truth_at(
    shop: SimulatedShop,
    cutoffs: list[dt.date],
    horizon: int,
    lookback: int,
    chunk_points: int = CHUNK_POINTS,
) -> pd.DataFrame:
    """The truth at each cutoff (a midnight) for the customers with an order in the `lookback`
    days before it: both probabilities of no order in [cutoff, cutoff + `horizon`), whether the
    customer was still alive, and the label from the clean order stream (NaN where the window runs
    past the export's end). One row per customer and cutoff, sorted by cutoff and customer.

    Each customer's probabilities are their own arithmetic, so the customers are cut into pieces
    of about `chunk_points` quadrature points, computed on a thread per core (NumPy releases the
    interpreter during its array operations): the same numbers as one piece on one thread."""
    p = shop.params
    n_days = (p.end_date - p.start_date).days
    too_late = [c for c in cutoffs if (c - p.start_date).days + horizon > n_days + BEYOND_DAYS]
    if too_late:
        raise TruthError(
            f"the simulated calendar ends {BEYOND_DAYS} days after {p.end_date}: no truth for a "
            f"{horizon}-day window from {too_late[0]}"
        )
    scenario = SCENARIOS[p.scenario]
    cal, dcal = calendars(p)
    nodes = 8
    # the oracle's quadrature grid per customer, to size the pieces
    grid = (nodes if scenario.drifts else 1) * nodes * 2 * nodes * nodes * len(scenario.basket_shares)
    customers = shop.customers.sort_values("customer_id", ignore_index=True)
    customer_id = customers["customer_id"].to_numpy()
    birth = _days_since(p.start_date, customers["first_order_ts"])
    death = _days_since(p.start_date, customers["dropout_ts"])
    rates = Rates(
        lam=customers["purchase_rate_per_day"].to_numpy(dtype=float),
        mu=customers["dropout_rate_per_day"].to_numpy(dtype=float),
        drift=customers["purchase_drift_per_year"].to_numpy(dtype=float),
        birth=birth,
    )
    covariate_dropout = customers["covariate_log_dropout"].to_numpy(dtype=float)
    owner = pd.Index(customer_id).get_indexer(shop.orders["customer_id"])
    if (owner < 0).any():
        raise TruthError(f"{int((owner < 0).sum())} simulated orders belong to no simulated customer")
    orders = shop.orders.assign(owner=owner, day=np.floor(shop.orders["t"].to_numpy()))
    order_t = orders["t"].to_numpy()
    frames = []
    cores = usable_cores()
    with ThreadPoolExecutor(cores) as pool:
        for cutoff in cutoffs:
            c = float((cutoff - p.start_date).days)
            before = order_t < c
            last = np.full(customer_id.size, -np.inf)
            np.maximum.at(last, owner[before], order_t[before])
            eligible = np.flatnonzero(last >= c - lookback)
            history, open_orders = observed_history(
                before=orders[before], covariate_dropout=covariate_dropout, eligible=eligible, c=c
            )
            pieces = np.array_split(np.arange(eligible.size), max(1, eligible.size * grid // chunk_points))
            pieces = [piece for piece in pieces if piece.size]  # none when nobody is eligible
            # the known-rates truth loops over the days of the longest gap: a share per core
            true_p = partial(true_no_order_probability, cal=cal, dcal=dcal, cutoff=c, horizon=horizon)
            shares = [at for at in np.array_split(eligible, cores) if at.size]
            true_parts = [pool.submit(true_p, last_order=last[at], rates=rates.of(at)) for at in shares]
            bayes_p = partial(
                bayes_no_order_probability,
                cal=cal,
                dcal=dcal,
                cutoff=c,
                horizon=horizon,
                return_share=p.return_share,
                scenario=scenario,
                extra_lines=p.mean_lines_per_order - 1.0,
                nodes=nodes,
            )
            bayes_parts = [
                pool.submit(
                    bayes_p, history=history.iloc[rows], open_orders=_open_orders_of(open_orders, rows)
                )
                for rows in pieces
            ]
            # in the customers' order; the empty array stands for a cutoff nobody is eligible at
            prob = np.concatenate([np.empty(0), *(part.result() for part in true_parts)])
            bayes = np.concatenate([np.empty(0), *(part.result() for part in bayes_parts)])
            in_window = (order_t >= c) & (order_t < c + horizon)
            ordered = np.bincount(owner[in_window], minlength=customer_id.size)[eligible] > 0
            observed = c + horizon <= n_days
            frames.append(
                pd.DataFrame(
                    {
                        "customer_id": customer_id[eligible],
                        "cutoff": pd.Timestamp(cutoff),
                        "true_p_no_order": prob,
                        "bayes_p_no_order": bayes,
                        "alive_at_cutoff": death[eligible] > c,
                        # the label from the clean order stream; unknown past the end of the data
                        "churned": np.where(ordered, 0.0, 1.0) if observed else np.nan,
                    }
                )
            )
    truth = pd.concat(frames, ignore_index=True)
    return truth.sort_values(["cutoff", "customer_id"], ignore_index=True)
