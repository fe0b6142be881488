"""The anchor a pandas user would write: the pipeline's training snapshot (every feature and the
label, same eligibility) as a groupby per cutoff over an orders frame. Used by
`benchmarks/features.py`; `tests/test_benchmarks.py` checks it gives the pipeline's values, so the
benchmark compares like with like."""

from __future__ import annotations

import pandas as pd

DAY = pd.Timedelta(days=1)
YEAR_DAYS = 365


def training_snapshots(
    lines: pd.DataFrame,
    cutoffs: list[pd.Timestamp],
    horizon_days: int = 90,
    windows_days: tuple[int, ...] = (30, 90, 180, 365),
    trend_days: int = 90,
    lookback_days: int = 365,
) -> pd.DataFrame:
    buys = lines[lines["amount"] > 0].assign(order_id=lambda d: d["order_id"].fillna(""))
    orders = buys.groupby(["customer_id", "order_ts", "order_id"], as_index=False, observed=True).agg(
        value=("amount", "sum"), n_lines=("amount", "size"), items=("quantity", "sum")
    )
    orders = orders.sort_values(["customer_id", "order_ts", "order_id"], ignore_index=True)
    by_customer = orders.groupby("customer_id", observed=True)
    orders["gap"] = by_customer["order_ts"].diff() / DAY
    orders["rank"] = by_customer.cumcount()
    orders["hour"] = orders["order_ts"].dt.hour + orders["order_ts"].dt.minute / 60
    orders["weekend"] = (orders["order_ts"].dt.day_of_week >= 5).astype("int64")
    returns = lines[lines["amount"] < 0]
    attributes = buys.sort_values("order_ts", kind="stable").drop_duplicates("customer_id")
    attributes = attributes.set_index("customer_id")[["country", "channel"]]
    first_seen = {
        column: buys.dropna(subset=[column]).groupby(["customer_id", column], observed=True)["order_ts"].min()
        for column in ("product_id", "category")
    }
    frames = []
    for cutoff in cutoffs:
        before = orders[orders["order_ts"] < cutoff]
        age = (cutoff - before["order_ts"]) / DAY
        g = before.groupby("customer_id", observed=True)
        f = g.agg(
            n_orders=("value", "size"),
            spend=("value", "sum"),
            max_order_value=("value", "max"),
            gap_mean=("gap", "mean"),
            gap_std=("gap", "std"),
            gap_max=("gap", "max"),
            gap_last=("gap", "last"),
            lines_per_order=("n_lines", "mean"),
            weekend_share=("weekend", "mean"),
            hour_mean=("hour", "mean"),
            items_per_order=("items", "mean"),
            last_value=("value", "last"),
            first=("order_ts", "min"),
            last=("order_ts", "max"),
        )
        f["recency_days"] = (cutoff - f["last"]) / DAY
        f = f[f["recency_days"] <= lookback_days]
        customer = before["customer_id"]
        for w in windows_days:
            recent = before[age < w].groupby("customer_id", observed=True)["value"]
            f[f"orders_{w}d"] = recent.size().reindex(f.index, fill_value=0)
            f[f"spend_{w}d"] = recent.sum().reindex(f.index, fill_value=0.0)
        recent = (age < trend_days).groupby(customer).sum()
        earlier = ((age >= trend_days) & (age < 2 * trend_days)).groupby(customer).sum()
        f["order_trend"] = (recent - earlier).reindex(f.index)
        value = before["value"]
        spend_recent = value.where(age < trend_days, 0.0).groupby(customer).sum()
        spend_earlier = value.where((age >= trend_days) & (age < 2 * trend_days), 0.0).groupby(customer).sum()
        f["spend_trend"] = (spend_recent - spend_earlier).reindex(f.index)
        recent_orders = recent.reindex(f.index)
        last_year = (age > YEAR_DAYS - horizon_days) & (age <= YEAR_DAYS)
        f["orders_same_window_last_year"] = last_year.groupby(customer).sum().reindex(f.index)
        in_year = (age <= YEAR_DAYS).sum()
        f["season_window_intensity"] = (last_year.sum() / horizon_days) / (in_year / YEAR_DAYS)
        second = before.loc[before["rank"] == 1].set_index("customer_id")["order_ts"]
        f["days_since_second_order"] = (cutoff - second.reindex(f.index)) / DAY
        f["tenure_days"] = (cutoff - f["first"]) / DAY
        f["repeat_orders"] = f["n_orders"] - 1
        f["avg_order_value"] = f["spend"] / f["n_orders"]
        f["overdue_ratio"] = f["recency_days"] / f["gap_mean"]
        f["days_overdue"] = f["recency_days"] - f["gap_mean"]
        f["rhythm_z"] = ((f["recency_days"] - f["gap_mean"]) / f["gap_std"]).where(f["gap_std"] > 0)
        f["recency_over_max_gap"] = (f["recency_days"] / f["gap_max"]).where(f["gap_max"] > 0)
        f["gap_last_ratio"] = (f["gap_last"] / f["gap_mean"]).where(f["gap_mean"] > 0)
        f["rate_ratio"] = (recent_orders / f["tenure_days"].clip(upper=trend_days)) / (
            f["n_orders"] / f["tenure_days"]
        )
        f["last_value_ratio"] = f["last_value"] / f["avg_order_value"]
        back = returns[returns["order_ts"] < cutoff].groupby("customer_id", observed=True)["amount"]
        f["n_return_lines"] = back.size().reindex(f.index, fill_value=0)
        f["return_value"] = -back.sum().reindex(f.index, fill_value=0.0)
        f["return_rate"] = f["n_return_lines"] / f["n_orders"]
        for column, name in (("product_id", "distinct_products"), ("category", "distinct_categories")):
            seen = first_seen[column]
            known = seen[seen < cutoff].groupby(level="customer_id", observed=True).size()
            f[name] = known.reindex(f.index, fill_value=0)
        f = f.join(attributes)
        coming = orders[(orders["order_ts"] >= cutoff) & (orders["order_ts"] < cutoff + horizon_days * DAY)]
        f["churned"] = (~f.index.isin(coming["customer_id"].unique())).astype("int8")
        frames.append(f.drop(columns=["first", "last", "last_value"]).assign(cutoff=cutoff).reset_index())
    return pd.concat(frames, ignore_index=True)
