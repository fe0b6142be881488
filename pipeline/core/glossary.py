"""Readable names of the model's features, for every figure and table an analyst reads (SHAP
figures, drift tables, the report). The column names stay as they are in the data; only what is
drawn is renamed. A windowed feature (`orders_90d`) is named from its pattern, so any window in
`featurize.windows_days` has a name."""

from __future__ import annotations

import re

LABELS = {
    "recency_days": "Days since last order",
    "tenure_days": "Days since first order",
    "n_orders": "Orders to date",
    "repeat_orders": "Repeat orders to date",
    "spend": "Spend to date",
    "avg_order_value": "Average order value",
    "max_order_value": "Largest order value",
    "last_value_ratio": "Last order value / average order",
    "gap_mean": "Mean days between orders",
    "gap_std": "Spread of days between orders",
    "gap_max": "Longest gap between orders (days)",
    "gap_last": "Last gap between orders (days)",
    "gap_last_ratio": "Last gap / usual gap",
    "days_overdue": "Days past usual reorder",
    "overdue_ratio": "Days since last order / usual gap",
    "rhythm_z": "Days overdue, in gaps' spread",
    "recency_over_max_gap": "Days since last order / longest gap",
    "days_since_second_order": "Days since second order",
    "rate_ratio": "Recent order rate / lifetime rate",
    "order_trend": "Orders: recent minus earlier period",
    "spend_trend": "Spend: recent minus earlier period",
    "orders_same_window_last_year": "Orders in the same season last year",
    "season_window_intensity": "Shop's season: next window last year",
    "n_return_lines": "Items returned",
    "return_value": "Value returned",
    "return_rate": "Returns per order",
    "lines_per_order": "Items per order",
    "items_per_order": "Units per order",
    "distinct_products": "Distinct products bought",
    "distinct_categories": "Distinct categories bought",
    "weekend_share": "Share of orders at weekends",
    "hour_mean": "Usual hour of ordering",
    "country": "Country",
    "channel": "Channel",
    "bgnbd_p_alive": "BG/NBD: P(still a customer)",
    "bgnbd_p_no_order": "BG/NBD: P(no order in horizon)",
    "pnbd_p_alive": "Pareto/NBD: P(still a customer)",
    "pnbd_p_no_order": "Pareto/NBD: P(no order in horizon)",
    "pnbd_expected_orders": "Pareto/NBD: expected orders in horizon",
}
WINDOWED = re.compile(r"^(orders|spend)_(\d+)d$")
DISTINCT = re.compile(r"^distinct_(\w+)$")


def feature_label(name: str) -> str:
    """The name an analyst reads for a feature column; the column name itself when it has none."""
    if name in LABELS:
        return LABELS[name]
    if match := WINDOWED.match(name):
        what, days = match.groups()
        return f"{what.capitalize()} in last {days} days"
    if match := DISTINCT.match(name):
        return f"Distinct {match.group(1).replace('_', ' ')} bought"
    return name
