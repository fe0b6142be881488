"""Churn reasons an agent can say: SHAP contributions grouped by cause, written with the customer's
own values. One table maps features to causes and causes to sentences.

A reason is said only when a sentence of its cause is true of the customer and names a direction
(longer than their usual gap, fewer orders than before, a smaller last order): the contribution
says the cause raises this customer's risk, the sentence says how, in plain words. A cause with no
such sentence for the customer is not said, and the next one is. Causes a person cannot act on or
should not say to a customer (by default tenure, time of day and country) still move the
probability but are never reasons: `score.reason_causes` lists the causes that may be said.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.core.errors import PipelineError

Values = Mapping[str, object]


class ReasonError(PipelineError):
    """The reason settings name a cause the table does not have."""


def _always(_: Values) -> bool:
    return True


def _num(values: Values, name: str) -> float:
    value = values.get(name)
    return float(value) if isinstance(value, int | float) else math.nan


@dataclass(frozen=True)
class Sentence:
    """A template and the condition under which it is true of the customer."""

    text: str
    when: Callable[[Values], bool] = field(default=_always)


@dataclass(frozen=True)
class Cause:
    """Features that express one cause, and its sentences tried in order: the first whose
    condition holds and whose fields are all present for the customer is said."""

    name: str
    features: tuple[str, ...]
    sentences: tuple[Sentence, ...]


def _less(a: str, b: str) -> Callable[[Values], bool]:
    return lambda v: _num(v, a) < _num(v, b)


# a rate "fell" when it is at most this share of what it was: 15 orders against 15.1 is no drop
FELL = 0.75


def _fell(now: str, before: str) -> Callable[[Values], bool]:
    return lambda v: _num(v, now) <= FELL * _num(v, before)


def _at_most(a: str, limit: float) -> Callable[[Values], bool]:
    return lambda v: _num(v, a) <= limit


def _below(a: str, limit: float) -> Callable[[Values], bool]:
    return lambda v: _num(v, a) < limit


CAUSES: tuple[Cause, ...] = (
    Cause(
        "lapse",
        # the BTYD outputs are functions of recency against the customer's own order rate
        ("recency_days", "overdue_ratio", "gap_mean", "gap_max", "gap_std", "gap_last", "pnbd_p_no_order",
         "pnbd_expected_orders", "pnbd_p_alive", "bgnbd_p_no_order", "bgnbd_p_alive", "days_overdue",
         "rhythm_z", "recency_over_max_gap", "gap_last_ratio"),
        (Sentence("No order for {recency_days:.0f} days, longer than their usual {gap_mean:.0f} days "
                  "between orders", _less("gap_mean", "recency_days")),
         Sentence("No second order {recency_days:.0f} days after the first", _at_most("n_orders", 1)),
         Sentence("No order for {recency_days:.0f} days")),
    ),
    Cause(
        "order_rate",
        ("n_orders", "repeat_orders", "orders_30d", "orders_90d", "orders_180d", "orders_365d",
         "days_since_second_order", "order_trend", "rate_ratio"),
        (Sentence("Ordering less often: {orders_90d:.0f} order(s) in the last 90 days, against "
                  "{orders_per_90d_before:.1f} per 90 days before",
                  _fell("orders_90d", "orders_per_90d_before")),
         Sentence("Only one order so far", _at_most("n_orders", 1)),
         Sentence("Only {n_orders:.0f} orders so far", _at_most("n_orders", 3))),
    ),
    Cause(
        "spend",
        ("spend", "spend_30d", "spend_90d", "spend_180d", "spend_365d", "avg_order_value", "max_order_value",
         "spend_trend", "last_value_ratio"),
        (Sentence("Spending less: {spend_90d:,.2f} {currency} in the last 90 days, against "
                  "{spend_per_90d_before:,.2f} per 90 days before",
                  _fell("spend_90d", "spend_per_90d_before")),
         Sentence("Last order smaller than usual: {last_order_value:,.2f} {currency}, against "
                  "{avg_order_value:,.2f} on average", _at_most("last_value_ratio", 0.8))),
    ),
    Cause(
        "returns",
        ("n_return_lines", "return_value", "return_rate"),
        (Sentence("Returned {n_return_lines:.0f} item(s) worth {return_value:,.2f} {currency}",
                  lambda v: _num(v, "n_return_lines") > 0),),
    ),
    Cause(
        "breadth",
        ("distinct_products", "distinct_categories"),
        (Sentence("Buys from one product category only", _at_most("distinct_categories", 1)),
         Sentence("Buys from only {distinct_categories:.0f} product categories",
                  _at_most("distinct_categories", 2))),
    ),
    Cause(
        "basket",
        ("lines_per_order", "items_per_order"),
        (Sentence("Small orders: {items_per_order:.1f} items per order on average",
                  _below("items_per_order", 2.0)),),
    ),
    Cause(
        "season",
        ("orders_same_window_last_year", "season_window_intensity"),
        (Sentence("No order in these weeks last year",
                  lambda v: _num(v, "orders_same_window_last_year") == 0 and _num(v, "tenure_days") > 365),),
    ),
    Cause("channel", ("channel",), (Sentence("Buys via {channel}, where customers leave more often"),)),
    Cause("tenure", ("tenure_days",), (Sentence("Customer for {tenure_days:.0f} days"),)),
    Cause("habits", ("weekend_share", "hour_mean"),
          (Sentence("Weekend orders: {weekend_share:.0%}; usual order time {hour_mean:.0f}h"),)),
    Cause("country", ("country",), (Sentence("Customers in {country} leave more often"),)),
)  # fmt: skip

CAUSE_NAMES = tuple(cause.name for cause in CAUSES)

# Reasons for contact, once the list is ranked by uplift: the causes that raise the predicted
# effect of a contact, said as plain facts of the customer's own values. The risk sentences above
# would not be true here ("where customers leave more often" says nothing of a contact's effect).
CONTACT_SENTENCES: dict[str, tuple[Sentence, ...]] = {
    "lapse": (Sentence("No order for {recency_days:.0f} days; usually {gap_mean:.0f} days between orders"),
              Sentence("No order for {recency_days:.0f} days")),
    "order_rate": (Sentence("{n_orders:.0f} order(s) so far, {orders_90d:.0f} in the last 90 days"),
                   Sentence("{n_orders:.0f} order(s) so far")),
    "spend": (Sentence("Spends {avg_order_value:,.2f} {currency} an order on average"),),
    "returns": (Sentence("Returned {n_return_lines:.0f} item(s)", lambda v: _num(v, "n_return_lines") > 0),
                Sentence("Has returned nothing", lambda v: _num(v, "n_return_lines") == 0)),
    "breadth": (Sentence("Buys from {distinct_categories:.0f} product categories"),),
    "basket": (Sentence("{items_per_order:.1f} items per order on average"),),
    "season": (Sentence("{orders_same_window_last_year:.0f} order(s) in these weeks last year",
                        lambda v: _num(v, "tenure_days") > 365),),
    "channel": (Sentence("Buys via {channel}"),),
    "tenure": (Sentence("Customer for {tenure_days:.0f} days"),),
    "habits": (Sentence("Weekend orders: {weekend_share:.0%}; usual order time {hour_mean:.0f}h"),),
    "country": (Sentence("Buys from {country}"),),
}  # fmt: skip


def cause_of(feature: str) -> Cause:
    """The cause a feature belongs to; a feature no cause lists is its own cause, never said."""
    for cause in CAUSES:
        if feature in cause.features:
            return cause
    return Cause(feature, (feature,), ())


def derived(values: dict[str, object], currency: str) -> dict[str, object]:
    """The customer's values with the comparisons the sentences use: order and spend rates per 90
    days before the last 90 (for customers of more than 90 days), the last order's value, and the
    currency."""
    out = {**values, "currency": currency}
    before = _num(values, "tenure_days") - 90.0
    if before > 0:
        out["orders_per_90d_before"] = (_num(values, "n_orders") - _num(values, "orders_90d")) / before * 90.0
        out["spend_per_90d_before"] = (_num(values, "spend") - _num(values, "spend_90d")) / before * 90.0
    out["last_order_value"] = _num(values, "last_value_ratio") * _num(values, "avg_order_value")
    return {k: v for k, v in out.items() if not (isinstance(v, float) and math.isnan(v))}


def render(cause: Cause, values: Values) -> str | None:
    """The first sentence of `cause` that is true of the customer, or None: then it is not said."""
    for sentence in cause.sentences:
        try:
            if not sentence.when(values):
                continue
            text = sentence.text.format_map(values)
        except (KeyError, ValueError, TypeError):
            continue
        if "nan" not in text:
            return text
    return None


@dataclass(frozen=True)
class Reason:
    text: str
    points: float  # percentage points of churn probability (or of predicted uplift) this cause adds


def top_reasons(
    contrib: pd.DataFrame,
    snapshot: pd.DataFrame,
    n: int,
    *,
    eligible: Collection[str],
    min_points: float = 0.0,
    currency: str = "",
    base: str = "base_value",
    why: Literal["risk", "contact"] = "risk",
) -> list[list[Reason]]:
    """For each row, up to `n` causes from `eligible` that raise churn risk most and have a true
    sentence for the customer, with their weight in probability points: the model's probability
    minus what it would be without the cause's SHAP contributions, sigma(f) - sigma(f - phi_cause),
    f the raw score. Causes group correlated features, so one cause is never listed twice. Causes
    adding less than `min_points` are left out, so a row may get fewer than `n` reasons.
    With `why="contact"` the contributions are an uplift model's, already on the probability scale
    (retention points): the causes that raise the predicted effect of a contact most, weighed
    100 phi_cause and said by `CONTACT_SENTENCES`."""
    unknown = sorted(set(eligible) - set(CAUSE_NAMES))
    if unknown:
        raise ReasonError(
            f"score.reason_causes names unknown causes {unknown}; the causes are {list(CAUSE_NAMES)}"
        )
    features = [c for c in contrib.columns if c in snapshot.columns and c != "customer_id"]
    causes: dict[str, Cause] = {}
    members: dict[str, list[str]] = {}
    for feature in features:
        cause = cause_of(feature)
        if why == "contact":
            cause = Cause(cause.name, cause.features, CONTACT_SENTENCES.get(cause.name, ()))
        causes.setdefault(cause.name, cause)
        members.setdefault(cause.name, []).append(feature)
    names = list(members)
    pushes = np.column_stack([contrib[members[c]].to_numpy().sum(axis=1) for c in names])
    model_features = [c for c in contrib.columns if c not in ("customer_id", base)]
    raw = contrib[model_features].to_numpy().sum(axis=1) + (
        contrib[base].to_numpy() if base in contrib else 0.0
    )
    if why == "contact":
        points = 100.0 * pushes
    else:
        points = 100.0 * (_sigmoid(raw)[:, None] - _sigmoid(raw[:, None] - pushes))
    sayable = np.array([name in eligible for name in names])
    order = np.argsort(-pushes, axis=1, kind="stable")
    out = []
    for i, record in enumerate(snapshot.to_dict(orient="records")):
        values = derived(record, currency)
        said: list[Reason] = []
        for j in order[i]:
            if len(said) == n or pushes[i, j] <= 0 or points[i, j] < min_points:
                break
            text = render(causes[names[j]], values) if sayable[j] else None
            if text is not None:
                said.append(Reason(text, float(points[i, j])))
        out.append(said)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
