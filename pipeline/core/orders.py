"""What counts as an order: lines with a positive amount, grouped by customer, order id and
timestamp, in exact decimals; and the unit helpers the feature queries share. Read by features,
the analysts' report and campaign measurement.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

DAY_SECONDS = 86_400.0


def to_days(seconds: ir.NumericValue) -> ir.FloatingValue:
    return seconds.cast("float64") / DAY_SECONDS


# Money and quantities are summed as exact decimals, gaps as whole seconds: a float sum depends on
# the order of its terms, and a parallel engine adds them in an order that varies with its thread
# count, which would change the features' last bits from one machine to the next.
EXACT = "decimal(18, 4)"


def to_exact(column: ir.NumericValue) -> ir.DecimalValue:
    return column.cast(EXACT)


def to_float(value: ir.NumericValue) -> ir.FloatingValue:
    return value.cast("float64")


def plain_orders(lines: ir.Table) -> ir.Table:
    """The orders of `lines` (as `orders_from_lines`) without what depends on the customer's
    earlier orders (rank and gap), so that a filter on `order_ts` reaches the scan of the lines:
    `value`, `n_lines`, `items` and `ts_s`, with `order_key` when the export has order ids."""
    purchases = lines.filter(lines.amount > 0)
    keys = [purchases.customer_id, purchases.order_ts]
    if "order_id" in lines.columns:
        keys.append(purchases.order_id.fill_null("").name("order_key"))
    metrics = {"value": to_exact(purchases.amount).sum(), "n_lines": purchases.count()}
    if "quantity" in lines.columns:
        metrics["items"] = to_exact(purchases.quantity).sum()
    orders = purchases.group_by(keys).aggregate(**metrics)
    return orders.mutate(ts_s=orders.order_ts.epoch_seconds())


def orders_from_lines(lines: ir.Table, earlier: ir.Table | None = None) -> ir.Table:
    """One row per purchase event. Lines with a positive amount make an order; lines sharing the
    customer, the order id (when the export has one) and the timestamp are one order. Lines of one
    order id at different times are separate events, so no order ever mixes both sides of a cutoff.
    `value` (and `items`) are exact decimals, `gap_s` whole seconds, `order_rank` from 0.

    `earlier`: when `lines` are the later lines of a history, each customer's orders before them
    (`n_orders` and the latest `last_s`), from which the ranks count on and the first gap starts."""
    orders = plain_orders(lines)
    order_by = [orders.order_ts, orders.order_key] if "order_key" in orders.columns else [orders.order_ts]
    # a gap is known once its later order happens, so it is point-in-time safe as a column
    window = ibis.window(group_by=orders.customer_id, order_by=order_by)
    # whole seconds as 64-bit integers, written out: the engine's epoch may be a double where Ibis
    # types it as an integer, and Ibis drops a cast it believes is a no-op
    orders = orders.mutate(
        order_rank=ibis.row_number().over(window),
        prev_s=orders.order_ts.lag().over(window).epoch_seconds().cast("int64"),
    )
    if earlier is not None:
        before = earlier.select("customer_id", earlier_orders="n_orders", earlier_s="last_s")
        orders = orders.left_join(before, "customer_id").drop("customer_id_right")
        orders = orders.mutate(
            order_rank=orders.order_rank + orders.earlier_orders.fill_null(0),
            prev_s=orders.prev_s.fill_null(orders.earlier_s.cast("int64")),
        ).drop("earlier_orders", "earlier_s")
    gap_s = orders.ts_s.cast("int64") - orders.prev_s
    return orders.mutate(
        gap_s=gap_s,
        minute_of_day=(orders.order_ts.hour() * 60 + orders.order_ts.minute()).cast("int64"),
        gap_days=to_days(gap_s),
        weekend=(orders.order_ts.day_of_week.index() >= 5).cast("int64"),
    ).drop("prev_s")
