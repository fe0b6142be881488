"""The simulated shop's model, shared by its generator (stage `simulate`) and its Bayes oracle
(`core/oracle.py`): the scenarios, the seasonal calendars and the individual rates.

The calendars are scaled over the export window only and run two years past its end, so the
export depends on the `simulate` params alone: a label horizon chosen later (by `featurize`, or an
experiment) changes the truth's windows, never the orders drawn.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.params import SimulateParams

YEAR = 365.0
RETURN_DAYS = 30  # a return comes back 1 to 30 whole days after its order
BASE_DROPOUT = 1 / 300
DROPOUT_NOISE = 0.6
RETURN_DROPOUT = 4.0


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
    def of(cls, start: dt.date, rate: np.ndarray, mean_over_days: int | None = None) -> Calendar:
        """The calendar of `rate`, scaled to mean 1 over its first `mean_over_days` days (all)."""
        rate = rate / rate[:mean_over_days].mean()
        return cls(start, rate, np.concatenate([[0.0], np.cumsum(rate)]))

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

    def of(self, at: np.ndarray) -> Rates:
        """The rates of the customers at positions `at`."""
        return Rates(lam=self.lam[at], mu=self.mu[at], drift=self.drift[at], birth=self.birth[at])


# how far the calendars run past the export's end: a label window opened at the end closes inside
# them for any horizon up to two years
BEYOND_DAYS = 731


def calendars(p: SimulateParams) -> tuple[Calendar, Calendar]:
    """The purchase and dropout calendars of the shop `p` describes, from its start to BEYOND_DAYS
    past its end, each with mean 1 over the export window."""
    n_days = (p.end_date - p.start_date).days
    days = np.arange(n_days + BEYOND_DAYS)
    scenario = SCENARIOS[p.scenario]
    purchases = seasonality(days, p.start_date, scenario.purchase_season)
    dropouts = dropout_seasonality(days, p.start_date, scenario.dropout_season)
    return Calendar.of(p.start_date, purchases, n_days), Calendar.of(p.start_date, dropouts, n_days)


# what the simulator writes of each customer and order for the truth (stage `simulate`)
CUSTOMER_COLUMNS = [
    "customer_id",
    "first_order_ts",
    "dropout_ts",
    "purchase_rate_per_day",
    "dropout_rate_per_day",
    "purchase_drift_per_year",
    "covariate_log_dropout",
]
ORDER_COLUMNS = ["customer_id", "t", "minute", "return_minute", "extra_lines"]


@dataclass(frozen=True)
class SimulatedShop:
    """A simulated shop's latent state. `customers`: one row per customer (CUSTOMER_COLUMNS).
    `orders`: one row per order of the clean stream (ORDER_COLUMNS): its time in days since the
    start (`t`), its minute of the day, the minute its return came back (NaN: kept) and its lines
    beyond the first."""

    params: SimulateParams
    customers: pd.DataFrame
    orders: pd.DataFrame


def read_shop(params: SimulateParams, customers_path: Path, orders_path: Path) -> SimulatedShop:
    """The latent state `simulate` wrote, with the params it ran with."""
    return SimulatedShop(
        params=params,
        customers=pd.read_parquet(customers_path, columns=CUSTOMER_COLUMNS),
        orders=pd.read_parquet(orders_path, columns=ORDER_COLUMNS),
    )
