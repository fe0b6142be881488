"""Churn reasons an agent can say: SHAP contributions grouped by cause, written with the customer's
own values. One table maps features to causes and causes to templates."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Cause:
    """Features that express one cause, and templates tried in order: the first whose fields are
    all present and not missing for the customer is used."""

    name: str
    features: tuple[str, ...]
    templates: tuple[str, ...]


CAUSES: tuple[Cause, ...] = (
    Cause(
        "lapse",
        # the BTYD outputs are functions of recency against the customer's own order rate
        ("recency_days", "overdue_ratio", "gap_mean", "gap_max", "gap_std", "gap_last", "pnbd_p_no_order",
         "pnbd_expected_orders", "pnbd_p_alive", "bgnbd_p_no_order", "bgnbd_p_alive", "days_overdue",
         "rhythm_z", "recency_over_max_gap", "gap_last_ratio"),
        ("No order for {recency_days:.0f} days; usually orders every {gap_mean:.0f} days",
         "No order for {recency_days:.0f} days"),
    ),
    Cause(
        "frequency",
        ("n_orders", "repeat_orders", "orders_30d", "orders_90d", "orders_180d", "orders_365d",
         "days_since_second_order"),
        ("{n_orders:.0f} order(s) in {tenure_days:.0f} days as a customer",
         "{n_orders:.0f} order(s) so far"),
    ),
    Cause(
        "trend",
        ("order_trend", "rate_ratio"),
        ("Order trend: {order_trend:+.0f} orders vs the period before",),
    ),
    Cause(
        "spend",
        ("spend", "spend_30d", "spend_90d", "spend_180d", "spend_365d", "avg_order_value", "max_order_value",
         "spend_trend", "last_value_ratio"),
        ("Spent {spend_365d:.2f} in the last year; average order {avg_order_value:.2f}",
         "Average order {avg_order_value:.2f}"),
    ),
    Cause("tenure", ("tenure_days",), ("Customer for {tenure_days:.0f} days",)),
    Cause(
        "returns",
        ("n_return_lines", "return_value", "return_rate"),
        ("Returned {n_return_lines:.0f} item line(s) worth {return_value:.2f}",),
    ),
    Cause(
        "breadth",
        ("distinct_products", "distinct_categories"),
        ("Bought {distinct_products:.0f} product(s) from {distinct_categories:.0f} categories",
         "Bought {distinct_products:.0f} product(s)"),
    ),
    Cause(
        "basket",
        ("lines_per_order", "items_per_order"),
        ("Basket size: {items_per_order:.1f} items per order",
         "Basket size: {lines_per_order:.1f} lines per order"),
    ),
    Cause(
        "habits",
        ("weekend_share", "hour_mean"),
        ("Weekend orders: {weekend_share:.0%}; usual order time {hour_mean:.0f}h",),
    ),
    Cause("country", ("country",), ("Customers in {country} churn more often",)),
    Cause("channel", ("channel",), ("Customers buying via {channel} churn more often",)),
)  # fmt: skip


def cause_of(feature: str) -> Cause:
    for cause in CAUSES:
        if feature in cause.features:
            return cause
    return Cause(feature, (feature,), (feature.replace("_", " ") + ": {" + feature + "}",))


def _render(cause: Cause, values: dict[str, object]) -> str:
    for template in cause.templates:
        try:
            text = template.format_map(values)
        except (KeyError, ValueError, TypeError):
            continue
        if "nan" not in text:
            return text
    return cause.name


@dataclass(frozen=True)
class Reason:
    text: str
    points: float  # percentage points of churn probability this cause adds


def top_reasons(
    contrib: pd.DataFrame, snapshot: pd.DataFrame, n: int, min_points: float = 0.0, base: str = "base_value"
) -> list[list[Reason]]:
    """For each row, up to `n` causes that raise churn risk most, as sentences with their weight in
    probability points: the model's probability minus what it would be without the cause's SHAP
    contributions, sigma(f) - sigma(f - phi_cause), f the raw score. Causes group correlated
    features, so one cause is never listed twice. Causes adding less than `min_points` are left
    out, so a row may get fewer than `n` reasons."""
    features = [c for c in contrib.columns if c in snapshot.columns and c != "customer_id"]
    causes: dict[str, Cause] = {}
    members: dict[str, list[str]] = {}
    for feature in features:
        cause = cause_of(feature)
        causes.setdefault(cause.name, cause)
        members.setdefault(cause.name, []).append(feature)
    names = list(members)
    pushes = np.column_stack([contrib[members[c]].to_numpy().sum(axis=1) for c in names])
    model_features = [c for c in contrib.columns if c not in ("customer_id", base)]
    raw = contrib[model_features].to_numpy().sum(axis=1) + (
        contrib[base].to_numpy() if base in contrib else 0.0
    )
    points = 100.0 * (_sigmoid(raw)[:, None] - _sigmoid(raw[:, None] - pushes))
    order = np.argsort(-pushes, axis=1, kind="stable")[:, :n]
    records = snapshot.to_dict(orient="records")
    out = []
    for i, record in enumerate(records):
        values = {k: v for k, v in record.items() if not (isinstance(v, float) and math.isnan(v))}
        out.append(
            [
                Reason(_render(causes[names[j]], values), float(points[i, j]))
                for j in order[i]
                if pushes[i, j] > 0 and points[i, j] >= min_points
            ]
        )
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
