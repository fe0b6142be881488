"""Point-in-time features and churn labels as Ibis expressions, the BTYD features, and the
snapshots at the cutoffs the history supports.

Features see only orders strictly before the cutoff; the label is 1 (churned) when the customer places
no order in [cutoff, cutoff + horizon). A customer is in a snapshot when their last order falls in
the eligibility lookback before the cutoff. Definitions are Ibis expressions, executed on DuckDB
here and unchanged on any other Ibis backend.

Lines are aggregated to orders first, never joined to the cutoffs. A customer's lifetime features
(orders, spend, gaps, returns, distinct products...) are exact sums, maxima and minima, so they are
aggregated once per (customer, bucket of events between two cutoffs) and cumulated over the buckets
(`_state`): one pass over the events whatever the number of cutoffs, where joining every order to
every later cutoff aggregated about ten times as many rows. Only the windowed features (orders and
spend in the last 30 to 365 days) join orders to the cutoffs, and only the orders of the longest
window. The stage derives what it needs from the lines once (`LineTables.cached`, with the state
at every cutoff) and then asks for the snapshots a run of cutoffs at a time (`query_batches`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import itertools
import logging
import multiprocessing
import tempfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from pipeline.core import history
from pipeline.core.btyd import BGNBD, ParetoNBD, Summary, btyd_predictions, fit_models, fit_sample
from pipeline.core.columns import HORIZON, KEYS, LABEL
from pipeline.core.cutoffs import Schedule, ScheduleError, SplitNeeds, plan_schedule
from pipeline.core.engine import hold, record_batches, release
from pipeline.core.errors import PipelineError
from pipeline.core.history import FOREVER, epoch
from pipeline.core.io import parquet_stream, prefetched
from pipeline.core.orders import (
    DAY_SECONDS,
    EXACT,
    orders_from_lines,
    plain_orders,
    to_days,
    to_exact,
    to_float,
)
from pipeline.core.parallel import usable_cores
from pipeline.core.params import FeaturizeParams
from pipeline.core.partitions import (
    Partition,
    SnapshotFolder,
    context_digest,
    line_digests,
    partition_key,
    partition_metadata,
    read_snapshots,
)

log = logging.getLogger(__name__)

YEAR_DAYS = 365
CATEGORICAL_ATTRIBUTES = ("country", "channel")
FLOAT_DECIMALS = 9
# the row order of every snapshot table: cutoff by cutoff, so each cutoff's rows are one file
SNAPSHOT_ORDER = ["cutoff", "customer_id"]
# line columns whose distinct values bought so far are features, and the features' names
DISTINCT = (("product_id", "distinct_products"), ("category", "distinct_categories"))


def _first_purchases(lines: ir.Table, column: str, earlier: ir.Table | None = None) -> ir.Table:
    """Per customer and moment: how many values of `column` the customer bought for the first time
    then (every (customer, value) pair counted once, at its first purchase). `earlier`: the lines
    before `lines`, whose pairs are not new."""
    purchases = lines.filter((lines.amount > 0) & lines[column].notnull())
    seen = purchases.group_by([purchases.customer_id, purchases[column]]).aggregate(
        first_s=purchases.order_ts.min().epoch_seconds()
    )
    if earlier is not None:
        # the few new pairs looked up in the earlier lines (a semi-join builds on the new pairs)
        before = earlier.filter((earlier.amount > 0) & earlier[column].notnull())
        known = before.select("customer_id", column).semi_join(seen, ["customer_id", column]).distinct()
        seen = seen.anti_join(known, ["customer_id", column])
    return seen.group_by(["customer_id", "first_s"]).aggregate(n=seen.count())


@dataclass(frozen=True)
class LineTables:
    """What the feature, label and summary queries derive from the lines: the orders with their
    gaps (`orders.orders_from_lines`), orders and return lines as one event table, each customer's
    first-order attributes, and per column of `DISTINCT` the first purchases of its values.
    Built lazily by `of`; `cached` computes them once in the engine for many queries (`held`),
    and with them each customer's history at the cutoffs the queries will ask for (`state`, at
    `state_dates`). `carried_on` does the same from a carried history (`core.history`) and the
    lines after it: `orders` and `events` are then those of the new lines only, `recent` the orders
    the windowed features read, `earlier_gaps` the gaps before the new lines and `next_orders` each
    customer's next order after the cutoffs the history covers."""

    lines: ir.Table
    orders: ir.Table
    events: ir.Table
    attributes: ir.Table | None
    firsts: dict[str, ir.Table]
    held: bool = False
    state: ir.Table | None = None
    state_dates: frozenset[dt.date] = frozenset()
    recent: ir.Table | None = None
    earlier_gaps: ir.Table | None = None
    next_orders: ir.Table | None = None

    @classmethod
    def of(cls, lines: ir.Table | LineTables) -> LineTables:
        """The expressions over `lines` (itself when already derived)."""
        if isinstance(lines, LineTables):
            return lines
        orders = orders_from_lines(lines)
        return cls(
            lines=lines,
            orders=orders,
            events=_with_returns(orders, lines),
            attributes=_first_order_attributes(lines),
            firsts={
                column: _first_purchases(lines, column) for column, _ in DISTINCT if column in lines.columns
            },
        )

    @property
    def on_duckdb(self) -> bool:
        return self.lines._find_backend(use_default=True).name == "duckdb"

    @contextlib.contextmanager
    def cached(self, at: Iterable[dt.date] = ()) -> Iterator[LineTables]:
        """On DuckDB, these tables computed once into temporary tables (`engine.hold`) for the
        queries of the block, then dropped; the orders are read back from the event table, not
        held twice. With `at`, each customer's history at those dates (`_state`) too, which the
        queries of any of them then read. Other engines get the expressions as they are."""
        if not self.on_duckdb:
            yield self
            return
        with _holding() as kept:
            events = kept(self.events)
            tables = dataclasses.replace(
                self,
                orders=events.filter(events.return_amount.isnull()).drop("event_s", "return_amount"),
                events=events,
                attributes=kept(self.attributes) if self.attributes is not None else None,
                held=True,
            )
            dates = sorted(set(at))
            if dates:
                # the first purchases are read by the state alone: computed within it, not held
                tables = dataclasses.replace(
                    tables, state=kept(_state(tables, dates)), state_dates=frozenset(dates)
                )
            yield tables

    @contextlib.contextmanager
    def carried_on(
        self, carried: history.Carried, at: Iterable[dt.date], asked: list[dt.date], reach_days: int
    ) -> Iterator[LineTables]:
        """As `cached(at)`, from the history `carried` (which covers every date of `at` up to its
        scoring date) and the lines from its scoring date on: their orders ranked after the
        customer's earlier ones, their first purchases looked up in the earlier lines, and the
        state at the later dates cumulated on from the carried one. `asked`: the dates the queries
        will ask for, whose windowed features read the orders of the `reach_days` before them."""
        since = pd.Timestamp(carried.score_date)
        lines = self.lines
        new_lines = lines.filter(lines.order_ts >= since)
        earlier = lines.filter(lines.order_ts < since)
        base = carried.state.filter(carried.state.until_s == FOREVER)
        orders = orders_from_lines(new_lines, earlier=base)
        new = LineTables(
            lines=new_lines,
            orders=orders,
            events=_with_returns(orders, new_lines),
            attributes=None,
            firsts={
                column: _first_purchases(new_lines, column, earlier=earlier)
                for column, _ in DISTINCT
                if column in lines.columns
            },
        )
        later = sorted(d for d in set(at) if d > carried.score_date)
        fresh = _state(new, later, base=base)
        carried_rows = carried.state.filter(carried.state.until_s != FOREVER)
        state = _shaped(carried_rows, fresh.schema()).union(fresh)
        earlier_asked = [d for d in asked if d <= carried.score_date]
        start = pd.Timestamp(min(asked) - dt.timedelta(days=reach_days))
        attributes = None
        if carried.attributes is not None:
            first = _first_order_attributes(new_lines)
            assert first is not None
            attributes = carried.attributes.union(first.anti_join(carried.attributes, "customer_id"))
        with _holding() as kept:
            yield LineTables(
                lines=lines,
                orders=orders,
                events=new.events,
                attributes=kept(attributes) if attributes is not None else None,
                firsts={},
                held=True,
                state=kept(state),
                state_dates=frozenset(at),
                recent=kept(plain_orders(lines.filter(lines.order_ts >= start))),
                earlier_gaps=carried.gaps,
                next_orders=kept(_next_orders(lines, earlier_asked)) if earlier_asked else None,
            )

    def gaps(self, before: dt.date | None = None) -> ir.Table:
        """The gap before every order (before `before`), in whole seconds (`gap_s`)."""
        orders = self.orders.filter(self.orders.gap_s.notnull())
        if before is not None:
            orders = orders.filter(orders.ts_s < epoch(before))
        gaps = orders.select("gap_s")
        return self.earlier_gaps.union(gaps) if self.earlier_gaps is not None else gaps


@contextlib.contextmanager
def _holding() -> Iterator[Callable[[ir.Table], ir.Table]]:
    """`kept(expr)`: `expr` held in the engine (`engine.hold`) until the block ends."""
    held: list[ir.Table] = []

    def kept(expr: ir.Table) -> ir.Table:
        held.append(hold(expr, "churn_lines"))
        return held[-1]

    try:
        yield kept
    finally:
        for table in held:
            release(table)


def _next_orders(lines: ir.Table, dates: list[dt.date]) -> ir.Table:
    """Per customer and each of `dates` (`cutoff_s`): the customer's first order at or after it."""
    purchases = lines.filter(lines.amount > 0)
    per_date = []
    for day in sorted(set(dates)):
        after = purchases.filter(purchases.order_ts >= pd.Timestamp(day))
        per_date.append(
            after.group_by("customer_id").aggregate(
                cutoff_s=ibis.literal(epoch(day), type="int64"),
                next_order_s=after.order_ts.min().epoch_seconds(),
            )
        )
    return ibis.union(*per_date)


def _bucket(ts: ir.NumericValue, dates: list[dt.date]) -> ir.IntegerValue:
    """The rank of the first of `dates` (in order) after the moment `ts` (epoch seconds), the first
    cutoff whose features see it; len(dates) when none does."""
    if not dates:
        return ibis.literal(0, type="int64")
    return ibis.cases(*((ts < epoch(d), k) for k, d in enumerate(dates)), else_=len(dates))


# the lifetime aggregates of a customer's history, per bucket and then over the buckets so far:
# summed, or the largest, or the smallest
SUMMED = (
    "n_orders", "spend", "n_gaps", "gap_sum_s", "gap_sum_sq_s", "line_sum", "weekend_sum",
    "minute_sum", "items_sum", "n_return_lines", "return_sum", *(name for _, name in DISTINCT),
)  # fmt: skip
LARGEST = ("last_s", "max_value", "gap_max", "top_rank")
SMALLEST = ("first_s", "second_s")
# taken from the latest order (the one of the highest rank)
LATEST = ("gap_last", "last_value")


def _state(tables: LineTables, dates: list[dt.date], base: ir.Table | None = None) -> ir.Table:
    """Each customer's history as of each cutoff in `dates` (in order), in one pass over the events
    whatever the number of cutoffs. Events are put in buckets by the first cutoff after them
    (`_bucket`), aggregated per (customer, bucket), and the aggregates cumulated over the buckets
    in order: a row per (customer, bucket with an event) holds what every cutoff from its bucket's
    date (`from_s`) up to the date of the customer's next bucket (`until_s`, `FOREVER` when none)
    sees, and `next_order_s`, the customer's first order after those cutoffs. All exact (integer
    and decimal sums, maxima, minima), so the features are those of aggregating every event before
    each cutoff, which joined each order to every later cutoff and cost about 1.4 s per cutoff at
    10M lines. `base`: the customers' history before the events (rows of a carried state, with
    their `from_s`), which the buckets cumulate on."""
    e = tables.events.mutate(bucket=_bucket(tables.events.event_s, dates))
    gap = e.gap_s.cast("decimal(38, 0)")
    metrics: dict[str, ir.Value] = {
        "n_orders": e.ts_s.count(),
        "last_s": e.ts_s.max(),
        "first_s": e.ts_s.min(),
        "spend": e.value.sum(),
        "max_value": e.value.max(),
        "n_gaps": e.gap_s.count(),
        "gap_sum_s": gap.sum(),
        "gap_sum_sq_s": (gap * gap).sum(),
        "gap_max": e.gap_days.max(),
        # the wait before the latest order (a comeback?); by rank, as orders may share a timestamp
        "gap_last": e.gap_days.argmax(e.order_rank),
        "last_value": e.value.argmax(e.order_rank),
        "top_rank": e.order_rank.max(),
        "line_sum": e.n_lines.sum(),
        "weekend_sum": e.weekend.sum(),
        "minute_sum": e.minute_of_day.sum(),
        "second_s": e.ts_s.min(where=e.order_rank == 1),  # row_number starts at 0
        "n_return_lines": e.return_amount.count(),
        "return_sum": e.return_amount.sum(),
    }
    if "items" in e.columns:
        metrics["items_sum"] = e["items"].sum()
    per = e.group_by(["customer_id", "bucket"]).aggregate(**metrics)
    names = {column: name for column, name in DISTINCT if column in tables.firsts}
    if names:
        # a value counts from the first cutoff after its first purchase on; that purchase is an
        # order, so its bucket has a row in `per`
        stacked = ibis.union(
            *(tables.firsts[c].select("customer_id", "first_s", "n", column=ibis.literal(c)) for c in names)
        )
        firsts = stacked.group_by(
            [stacked.customer_id, _bucket(stacked.first_s, dates).name("bucket")]
        ).aggregate(**{name: stacked.n.sum(where=stacked.column == c) for c, name in names.items()})
        per = per.left_join(firsts, ["customer_id", "bucket"]).drop("customer_id_right", "bucket_right")
    present = [c for c in per.columns if c not in ("customer_id", "bucket")]
    # a bucket's date; none for the events after the last date, which no cutoff sees
    per = per.mutate(
        from_s=ibis.cases(*((per.bucket == k, epoch(d)) for k, d in enumerate(dates)), else_=ibis.null())
        if dates
        else ibis.null().cast("int64")
    )
    untouched = None
    if base is not None:
        # only the customers with new events are cumulated on; the others' rows hold as they are
        untouched = base.anti_join(per, "customer_id")
        base = base.semi_join(per, "customer_id")
        per = _shaped(base, per.schema(), bucket=ibis.literal(-1)).union(per)
    so_far = ibis.window(group_by=per.customer_id, order_by=per.bucket, rows=(None, 0))
    later = ibis.window(group_by=per.customer_id, order_by=per.bucket, rows=(1, None))
    ordered = ibis.window(group_by=per.customer_id, order_by=per.bucket)
    dtypes = per.schema()
    cumulated: dict[str, ir.Value] = {}
    for name in present:
        if name in SUMMED:
            cumulated[name] = per[name].sum().over(so_far).cast(dtypes[name])
        elif name in LARGEST:
            cumulated[name] = per[name].max().over(so_far)
        elif name in SMALLEST:
            cumulated[name] = per[name].min().over(so_far)
        elif name in LATEST:
            cumulated[name] = per[name].argmax(per.top_rank).over(so_far)
    state = per.select(
        "customer_id",
        "from_s",
        until_s=per.from_s.lead().over(ordered).fill_null(FOREVER),
        **cumulated,
        next_order_s=per.first_s.min().over(later),
    )
    state = state.filter(state.from_s.notnull())
    if untouched is not None:
        state = state.union(_shaped(untouched, state.schema(), until_s=ibis.literal(FOREVER)))
    return state


def _shaped(table: ir.Table, schema: ibis.Schema, **given: ir.Value) -> ir.Table:
    """`table` with the columns of `schema`, in its order and of its types: the `given` values,
    else `table`'s column, else null (for a union with a table of that schema)."""
    return table.select(
        **{
            name: (
                given[name] if name in given else table[name] if name in table.columns else ibis.null()
            ).cast(kind)
            for name, kind in schema.items()
        }
    )


def _at_cutoffs(tables: LineTables, dates: list[dt.date]) -> tuple[ir.Table, ir.Table]:
    """Each customer's history (`_state`) at each of `dates` where it has an event before the
    date, with `cutoff` and `cutoff_s`; and those cutoffs as a table with `cutoff_s`. Reads the
    state `tables` holds when it covers `dates`."""
    wanted = sorted(set(dates))
    if tables.state is not None and tables.state_dates.issuperset(wanted):
        state = tables.state
    elif tables.recent is not None:
        raise ValueError(f"the carried history covers {sorted(tables.state_dates)}, not {wanted}")
    else:
        state = _state(tables, wanted)
    cutoffs = cutoff_table(wanted).drop("rank")
    cutoffs = cutoffs.mutate(cutoff_s=cutoffs.cutoff.epoch_seconds())
    j = state.join(cutoffs, (state.from_s <= cutoffs.cutoff_s) & (cutoffs.cutoff_s < state.until_s))
    return j.drop("from_s", "until_s"), cutoffs


def _recent(orders: ir.Table, cutoffs: ir.Table, days: int) -> ir.Table:
    """The orders of the `days` before each cutoff (and one day more), joined to it."""
    return orders.join(
        cutoffs,
        (orders.ts_s < cutoffs.cutoff_s) & (orders.ts_s >= cutoffs.cutoff_s - (days + 1) * DAY_SECONDS),
    )


def _windows(orders: ir.Table, cutoffs: ir.Table, params: FeaturizeParams, longest: int) -> ir.Table:
    """Per (customer, cutoff): orders and spend in the recent windows before the cutoff, from the
    orders of the `longest` window only, not the whole history."""
    trend, h = params.trend_days, params.horizon
    j = _recent(orders, cutoffs, longest)
    age = to_days(j.cutoff_s - j.ts_s)
    metrics: dict[str, ir.Value] = {}
    for w in params.windows_days:
        metrics[f"orders_{w}d"] = j.count(where=age < w)
        metrics[f"spend_{w}d"] = to_float(j.value.sum(where=age < w))
    before = (age >= trend) & (age < 2 * trend)
    metrics["orders_trend_recent"] = j.count(where=age < trend)
    metrics["orders_trend_before"] = j.count(where=before)
    metrics["spend_trend_recent"] = to_float(j.value.sum(where=age < trend))
    metrics["spend_trend_before"] = to_float(j.value.sum(where=before))
    # the coming label window, one year earlier: seasonal buyers come back at the same time
    metrics["orders_same_window_last_year"] = j.count(where=(age > YEAR_DAYS - h) & (age <= YEAR_DAYS))
    return j.group_by(["customer_id", "cutoff"]).aggregate(**metrics)


def _snapshot_rows(tables: LineTables, dates: list[dt.date], params: FeaturizeParams) -> ir.Table:
    """The features of every eligible customer at every cutoff in `dates`, with `cutoff_s` and
    `next_order_s` (the customer's first order at or after the cutoff) for the label."""
    agg, cutoffs = _at_cutoffs(tables, dates)
    recency = to_days(agg.cutoff_s - agg.last_s)
    agg = agg.filter(recency <= params.eligibility_lookback_days)
    longest = reach_days(params) - 1
    recent = tables.recent if tables.recent is not None else tables.orders
    windows = _windows(recent, cutoffs=cutoffs, params=params, longest=longest)
    agg = agg.left_join(windows, KEYS).drop("customer_id_right", "cutoff_right")
    # no order in the longest window: none in any, and no spend
    counted = windows.schema()
    agg = agg.mutate(
        **{c: agg[c].fill_null(0.0 if counted[c].is_floating() else 0) for c in counted if c not in KEYS}
    )
    recency = to_days(agg.cutoff_s - agg.last_s)
    # mean and sample standard deviation of the gaps from exact sums: n S2 - S1^2 is exact
    n_gaps = agg.n_gaps.cast("decimal(38, 0)")
    gap_mean = ibis.ifelse(agg.n_gaps > 0, to_days(to_float(agg.gap_sum_s) / agg.n_gaps), ibis.null())
    spread = to_float(n_gaps * agg.gap_sum_sq_s - agg.gap_sum_s * agg.gap_sum_s)
    n = to_float(agg.n_gaps)
    gap_std = ibis.ifelse(agg.n_gaps > 1, (spread / (n * (n - 1.0))).sqrt() / DAY_SECONDS, ibis.null())
    extra = {"items_per_order": to_float(agg.items_sum) / agg.n_orders} if "items_sum" in agg.columns else {}
    counts = {name: agg[name].fill_null(0) for _, name in DISTINCT if name in agg.columns}
    tenure = to_days(agg.cutoff_s - agg.first_s)
    trend = params.trend_days
    spend = to_float(agg.spend)
    feats = agg.mutate(
        spend=spend,
        max_order_value=to_float(agg.max_value),
        return_value=to_float(-agg.return_sum).fill_null(0.0),
        recency_days=recency,
        tenure_days=tenure,
        repeat_orders=agg.n_orders - 1,
        avg_order_value=spend / agg.n_orders,
        days_since_second_order=to_days(agg.cutoff_s - agg.second_s),
        gap_mean=gap_mean,
        gap_std=gap_std,
        # recency in units of the customer's own mean gap; none when orders share one moment
        overdue_ratio=ibis.ifelse(gap_mean > 0, recency / gap_mean, ibis.null()),
        # the customer's own rhythm: days past the mean gap, in standard deviations of the gaps,
        # against the longest gap so far; the latest gap against the mean (slowing down?)
        days_overdue=recency - gap_mean,
        rhythm_z=ibis.ifelse(gap_std > 0, (recency - gap_mean) / gap_std, ibis.null()),
        recency_over_max_gap=ibis.ifelse(agg.gap_max > 0, recency / agg.gap_max, ibis.null()),
        gap_last_ratio=ibis.ifelse(gap_mean > 0, agg.gap_last / gap_mean, ibis.null()),
        # order rate over the last `trend_days` (or the tenure, if shorter) against the lifetime
        # rate: 1 = steady, below 1 = slowing down
        rate_ratio=(
            to_float(agg.orders_trend_recent) / ibis.least(tenure, float(trend)) / (agg.n_orders / tenure)
        ),
        spend_trend=agg.spend_trend_recent - agg.spend_trend_before,
        last_value_ratio=to_float(agg.last_value) / (spend / agg.n_orders),
        lines_per_order=to_float(agg.line_sum) / agg.n_orders,
        weekend_share=to_float(agg.weekend_sum) / agg.n_orders,
        hour_mean=to_float(agg.minute_sum) / agg.n_orders / 60.0,
        # orders in the last `trend_days` minus orders in the `trend_days` before them
        order_trend=agg.orders_trend_recent - agg.orders_trend_before,
        **counts,
        **extra,
    ).drop(
        "last_s", "first_s", "second_s", "orders_trend_recent", "orders_trend_before", "n_gaps", "gap_sum_s",
        "spend_trend_recent", "spend_trend_before", "last_value", "max_value", "top_rank", "return_sum",
        "gap_sum_sq_s", "line_sum", "weekend_sum", "minute_sum", *(["items_sum"] if extra else []),
    )  # fmt: skip
    season = _season(recent, cutoffs, params.horizon)
    feats = feats.left_join(season, "cutoff").drop("cutoff_right")
    feats = feats.mutate(return_rate=feats.n_return_lines / feats.n_orders)
    if tables.attributes is not None:
        feats = feats.left_join(tables.attributes, "customer_id").drop("customer_id_right")
    return feats


def reach_days(params: FeaturizeParams) -> int:
    """How far before a cutoff the windowed features and the season read orders (and a day more)."""
    return max([*params.windows_days, 2 * params.trend_days, YEAR_DAYS]) + 1


def build_features(lines: ir.Table | LineTables, dates: list[dt.date], params: FeaturizeParams) -> ir.Table:
    """Point-in-time features for every eligible customer at every cutoff (columns `cutoff`)."""
    return _snapshot_rows(LineTables.of(lines), dates, params).drop("cutoff_s", "next_order_s")


def _season(orders: ir.Table, cutoffs: ir.Table, horizon_days: int) -> ir.Table:
    """Shop-wide: how busy the coming label window was one year earlier, relative to that year's
    average (1 = an average stretch). Lets the model carry seasonal churn rates across cutoffs."""
    j = _recent(orders, cutoffs, YEAR_DAYS)
    age = to_days(j.cutoff_s - j.ts_s)
    counts = j.group_by("cutoff").aggregate(
        window=j.count(where=(age > YEAR_DAYS - horizon_days) & (age <= YEAR_DAYS)),
        year=j.count(where=age <= YEAR_DAYS),
    )
    intensity = (counts.window.cast("float64") / horizon_days) / (counts.year.cast("float64") / YEAR_DAYS)
    return counts.select("cutoff", season_window_intensity=intensity)


def _with_returns(orders: ir.Table, lines: ir.Table) -> ir.Table:
    """Orders and return lines as one event table, so one join to the cutoffs and one aggregation
    serve both (a separate return join and its merge cost 1.3 of 11 s at 10M lines). `event_s` is
    every event's time; order columns are null on return lines and `return_amount` on orders, and
    aggregates skip nulls."""
    returns = lines.filter(lines.amount < 0)
    schema = orders.schema()
    as_events = returns.select(
        **{
            name: returns.customer_id if name == "customer_id" else ibis.null().cast(dtype)
            for name, dtype in schema.items()
        },
        event_s=returns.order_ts.epoch_seconds(),
        return_amount=to_exact(returns.amount),
    )
    return orders.mutate(event_s=orders.ts_s, return_amount=ibis.null().cast(EXACT)).union(as_events)


def _first_order_attributes(lines: ir.Table) -> ir.Table | None:
    """Country and channel of the customer's first purchase: fixed once it happened."""
    present = [c for c in CATEGORICAL_ATTRIBUTES if c in lines.columns]
    if not present:
        return None
    purchases = lines.filter(lines.amount > 0)
    return purchases.group_by("customer_id").aggregate(
        **{c: purchases[c].argmin(purchases.order_ts) for c in present}
    )


def customer_summary(lines: ir.Table | LineTables, dates: list[dt.date]) -> ir.Table:
    """Per (customer, cutoff at `dates`), for every customer with an order before the cutoff
    (eligible or not): orders, days since the last and the first order. The BTYD models are
    fitted on these."""
    agg, _ = _at_cutoffs(LineTables.of(lines), dates)
    agg = agg.filter(agg.n_orders > 0)
    return agg.select(
        "customer_id",
        "cutoff",
        "n_orders",
        recency_days=to_days(agg.cutoff_s - agg.last_s),
        tenure_days=to_days(agg.cutoff_s - agg.first_s),
    )


@dataclass(frozen=True)
class BtydFits:
    """The BG/NBD and Pareto/NBD fitted at each cutoff, and their parameters by cutoff as fits.json
    records them."""

    models: dict[pd.Timestamp, tuple[BGNBD, ParetoNBD]]
    params: dict[str, dict]

    def outputs(self, frame: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
        """`frame` with the BTYD outputs of each row, by its cutoff's models, from its orders,
        recency and tenure (the same numbers the models were fitted on)."""
        columns: dict[str, np.ndarray] = {}
        cutoffs = frame["cutoff"].to_numpy()
        for cutoff in np.unique(cutoffs):
            rows = np.flatnonzero(cutoffs == cutoff)
            at = frame.iloc[rows]
            summary = Summary.from_days(at["n_orders"], at["recency_days"], at["tenure_days"])
            bg, pnbd = self.models[pd.Timestamp(cutoff)]
            for name, values in btyd_predictions(
                bg, pnbd, predict_for=summary, horizon_days=horizon_days
            ).items():
                columns.setdefault(name, np.full(len(frame), np.nan))[rows] = values
        return frame.assign(**columns)


def fit_btyd(summaries: Iterable[tuple[dt.date, pd.DataFrame]], params: FeaturizeParams) -> BtydFits:
    """Each cutoff's models fitted by maximum likelihood on a fixed sample of every customer with
    an order before it (`summaries`: per cutoff, its rows in customer order). Every fit starts
    from the same point, so a cutoff's fit depends on its own data only and a later run can reuse
    it."""
    samples, customers = {}, {}
    for cutoff, at in summaries:
        whole = Summary.from_days(at["n_orders"], at["recency_days"], at["tenure_days"])
        samples[cutoff] = fit_sample(
            whole, params.btyd_fit_customers, seed=int(pd.Timestamp(cutoff).value // 10**9)
        )
        customers[cutoff] = len(at)
    log.info("BTYD fits: %d cutoffs, %d customers at most", len(samples), max(customers.values(), default=0))
    models, fitted = {}, {}
    for cutoff, (bg, pnbd) in zip(samples, fit_each(list(samples.values())), strict=True):
        models[pd.Timestamp(cutoff)] = (bg, pnbd)
        fitted[cutoff.isoformat()] = {
            "bgnbd": {k: round(float(v), 6) for k, v in vars(bg).items()},
            "pareto_nbd": {k: round(float(v), 6) for k, v in vars(pnbd).items()},
            "customers": customers[cutoff],
        }
    return BtydFits(models=models, params=fitted)


# customers over all fit samples from which the fits run in parallel: a fresh process costs about
# half a second, a fit on 10,000 customers about a quarter
PARALLEL_FIT_CUSTOMERS = 50_000


def fit_each(
    samples: list[Summary], parallel_from: int = PARALLEL_FIT_CUSTOMERS
) -> list[tuple[BGNBD, ParetoNBD]]:
    """`fit_models` on each sample, one process per core once the samples hold `parallel_from`
    customers: each fit is its own (same start, its own sample), so the results are those of
    fitting them one after another, in about half the time on two cores. Fresh processes
    ("spawn"), not forks of this one, which runs the engine's threads."""
    workers = min(usable_cores(), len(samples))
    if workers <= 1 or sum(len(s.x) for s in samples) < parallel_from:
        return [fit_models(sample) for sample in samples]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fit_models, samples))


def per_cutoff(expr: ir.Table) -> Iterator[tuple[dt.date, pd.DataFrame]]:
    """The rows of `expr` (ordered by cutoff first) one cutoff at a time: never more than one
    cutoff's rows and a piece in memory."""
    held: list[pd.DataFrame] = []
    for batch in record_batches(expr, PIECE_ROWS):
        frame = batch.to_pandas()
        for cutoff, rows in frame.groupby("cutoff", sort=False):
            if held and held[0]["cutoff"].iloc[0] != cutoff:
                yield pd.Timestamp(held[0]["cutoff"].iloc[0]).date(), pd.concat(held, ignore_index=True)
                held = []
            held.append(rows)
    if held:
        yield pd.Timestamp(held[0]["cutoff"].iloc[0]).date(), pd.concat(held, ignore_index=True)


def horizon_report(
    lines: ir.Table | LineTables, first_day: dt.date, score_date: dt.date, params: FeaturizeParams
) -> tuple[pd.DataFrame, dict[str, float], dt.date]:
    """For each candidate horizon H: the churn rate it would give at a reference cutoff, and the
    share of those labelled churned who ordered again later, before the scoring date ("false
    churn"). The reference cutoff leaves at least the longest H plus as much again to watch for a
    return. Candidates the history cannot watch that long are left out. Also the inter-purchase
    gap quantiles the choice of H should respect."""
    span = (score_date - first_day).days
    watchable = sorted(h for h in params.horizon_candidates if 2 * h < span)
    candidates = watchable or [min(params.horizon_candidates)]
    longest = max(candidates)
    reference = score_date - dt.timedelta(days=2 * longest)
    ref_s = epoch(reference)
    tables = LineTables.of(lines)
    # an order's time is that of its lines; only the orders since the lookback before the
    # reference can make a customer eligible there
    purchases = tables.lines.filter(
        (tables.lines.amount > 0)
        & (
            tables.lines.order_ts
            >= pd.Timestamp(reference) - pd.Timedelta(days=params.eligibility_lookback_days)
        )
    )
    ts_s = purchases.order_ts.epoch_seconds()
    per_customer = purchases.group_by("customer_id").aggregate(
        last_before=ts_s.max(where=ts_s < ref_s), first_after=ts_s.min(where=ts_s >= ref_s)
    )
    eligible = per_customer.filter(
        per_customer.last_before >= ref_s - int(params.eligibility_lookback_days * DAY_SECONDS)
    ).to_pandas()
    first_after = eligible["first_after"].to_numpy(dtype=float)  # NaN: never ordered again
    days_to_return = (first_after - ref_s) / DAY_SECONDS
    rows = []
    for h in candidates:
        churned = ~(days_to_return < h)
        came_back = churned & ~np.isnan(days_to_return)
        rows.append(
            {
                "horizon_days": h,
                "customers": len(eligible),
                "churn_rate": float(churned.mean()) if len(eligible) else float("nan"),
                "false_churn_share": float(came_back.sum() / churned.sum()) if churned.any() else 0.0,
            }
        )
    every = tables.gaps()
    gaps = every.select(gap_days=to_days(every.gap_s)).to_pandas()["gap_days"]
    quantiles = (
        {f"p{int(q * 100)}": float(gaps.quantile(q)) for q in (0.5, 0.75, 0.9, 0.95)} if len(gaps) else {}
    )
    return pd.DataFrame(rows), quantiles, reference


def training_snapshots(
    lines: ir.Table | LineTables, cutoff_dates: list[dt.date], params: FeaturizeParams
) -> ir.Table:
    """Features and the label at each cutoff, from the lines or from what was derived from them.
    The label is 1 (churned) when the customer's next order is not in [cutoff, cutoff + horizon):
    an order exactly at the cutoff belongs to the label window, not the features."""
    tables = LineTables.of(lines)
    rows = _snapshot_rows(tables, cutoff_dates, params)
    if tables.next_orders is not None:  # the carried history's rows do not know the next order
        known = tables.next_orders
        rows = rows.left_join(known, ["customer_id", "cutoff_s"]).drop("customer_id_right", "cutoff_s_right")
        rows = rows.mutate(next_order_s=rows.next_order_s.fill_null(rows.next_order_s_right)).drop(
            "next_order_s_right"
        )
    churned = rows.next_order_s.isnull() | (rows.next_order_s >= rows.cutoff_s + params.horizon * DAY_SECONDS)
    return rows.mutate(**{LABEL: churned.cast("int8")}).drop("cutoff_s", "next_order_s")


def cutoff_table(dates: list[dt.date]) -> ir.Table:
    """The cutoffs and their rank (0 = earliest)."""
    ordered = sorted(set(dates))
    return ibis.memtable(
        pd.DataFrame(
            {
                "cutoff": pd.to_datetime(pd.Series(ordered)).astype("datetime64[us]"),
                "rank": np.arange(len(ordered), dtype="int64"),
            }
        )
    )


def resolve_score_date(params: FeaturizeParams, last_order: pd.Timestamp) -> dt.date:
    """The scoring date: the param, or the day after the last order in the data."""
    return params.score_date or (last_order.normalize() + pd.Timedelta(days=1)).date()


@dataclass(frozen=True)
class Snapshots:
    """What featurize makes. `train` is the training snapshots in memory (`make_snapshots`), or
    None when they were streamed to a file (`write_snapshots`); `by_cutoff` counts them either way."""

    train: pd.DataFrame | None
    by_cutoff: pd.DataFrame  # per cutoff: rows, churned
    score: pd.DataFrame
    score_date: dt.date
    schedule: Schedule
    btyd_params: dict[str, dict]
    horizons: pd.DataFrame
    gap_quantiles: dict[str, float]
    horizon_reference: dt.date


class FeatureError(PipelineError):
    """A feature is not a number where one is defined."""


BTYD_PREFIXES = ("pnbd_", "bgnbd_")


def check_finite(frame: pd.DataFrame, what: str) -> None:
    """Refuse infinities anywhere and missing BTYD outputs (defined for every customer); a feature
    missing by definition (the gap of a one-order customer) stays missing."""
    problems = []
    for column in frame.columns:
        if not pd.api.types.is_float_dtype(frame[column]):
            continue
        values = frame[column].to_numpy(dtype=float)
        infinite = int(np.isinf(values).sum())
        missing = int(np.isnan(values).sum()) if column.startswith(BTYD_PREFIXES) else 0
        if infinite or missing:
            rows = frame.loc[~np.isfinite(values) if missing else np.isinf(values), KEYS].head(3)
            examples = ", ".join(
                f"{r.customer_id} at {pd.Timestamp(r.cutoff).date()}" for r in rows.itertuples()
            )
            problems.append(
                f"{column}: {infinite + missing} customer-cutoff(s) not a number (e.g. {examples})"
            )
    if problems:
        raise FeatureError(f"{what}: features that must be numbers are not:\n  " + "\n  ".join(problems))


def finish(frame: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
    """Stable row order and dtypes, so the same input writes the same bytes."""
    frame = frame.assign(**{HORIZON: np.int32(horizon_days)})
    frame = frame.sort_values(SNAPSHOT_ORDER, kind="stable", ignore_index=True)
    front = [c for c in [*KEYS, HORIZON] if c in frame.columns]
    back = [LABEL] if LABEL in frame.columns else []
    middle = sorted(c for c in frame.columns if c not in front and c not in back)
    frame = frame[front + middle + back]
    for column in middle:
        if pd.api.types.is_integer_dtype(frame[column]) or pd.api.types.is_float_dtype(frame[column]):
            # the query's aggregates are exact; this guards against last-bit differences of
            # element-wise functions (exp, log) between CPU generations in the BTYD outputs
            frame[column] = frame[column].astype("float64").round(FLOAT_DECIMALS)
    frame["cutoff"] = frame["cutoff"].astype("datetime64[us]")
    return frame


# rows per piece of the training snapshots: the stage holds a piece and a row group, not the table
PIECE_ROWS = 250_000
# (customer, cutoff) groups one training query asks for, unless a single cutoff has more. Each
# query joins the held state to its cutoffs and aggregates the last year's orders: at 10M lines
# (about 460,000 customers a cutoff) runs of up to 2M took the stage 68.8 s at a 2.5 GB peak,
# against 77.8 s at 2.3 GB for runs of 500,000 (one cutoff a query)
QUERY_GROUPS = 2_000_000


def query_batches(customers: dict[dt.date, int], most: int = QUERY_GROUPS) -> list[list[dt.date]]:
    """The cutoffs in order, cut into runs of consecutive cutoffs whose customers with an order
    before them (`customers`, the BTYD summary's counts, an upper bound of the groups) add up to
    at most `most`; a cutoff with more is a run of its own."""
    batches: list[list[dt.date]] = []
    size = 0
    for cutoff in sorted(customers):
        if batches and size + customers[cutoff] <= most:
            batches[-1].append(cutoff)
            size += customers[cutoff]
        else:
            batches.append([cutoff])
            size = customers[cutoff]
    return batches


def write_snapshots(
    lines: ir.Table, params: FeaturizeParams, needs: SplitNeeds, *, train_out: Path
) -> Snapshots:
    """Labelled snapshots at the cutoffs the data supports (see `plan_schedule`), one Parquet file
    per cutoff in the folder `train_out` (`partitions`), and the scoring snapshot. A cutoff whose
    file is there under the key of its current inputs is reused, not recomputed, so the folder is
    byte-identical to a full recomputation's. `params` as declared; the snapshots record the
    horizon actually used."""
    folder = SnapshotFolder(train_out)
    bounds = (
        lines.aggregate(
            first=lines.order_ts.min(),
            last=lines.order_ts.max(),
            # an estimate (HyperLogLog) is cheap and enough unless it is near the minimum
            customers=lines.customer_id.approx_nunique(),
        )
        .to_pandas()
        .iloc[0]
    )
    if pd.isna(bounds["first"]):
        raise ScheduleError("no transactions to build features from")
    if bounds["customers"] < 2 * needs.min_customers:
        bounds["customers"] = int(lines.customer_id.nunique().execute())
    if bounds["customers"] < needs.min_customers:
        raise ScheduleError(
            f"only {bounds['customers']} distinct customer(s) in the transactions (train.min_customers = "
            f"{needs.min_customers}): too few to learn churn from"
        )
    score_date = resolve_score_date(params, pd.Timestamp(bounds["last"]))
    first_day = pd.Timestamp(bounds["first"]).date()
    schedule = plan_schedule(first_day=first_day, score_date=score_date, spec=params, needs=needs)
    for change in schedule.changes:
        log.warning("schedule adapted to the history: %s", change)
    params = params.model_copy(
        update={
            "horizon_days": schedule.horizon_days,
            "cutoff_every_days": schedule.every_days,
            "eligibility_lookback_days": schedule.lookback_days,
            "n_cutoffs": len(schedule.cutoffs),
        }
    )
    cutoffs = schedule.cutoffs
    horizon = dt.timedelta(days=params.horizon)
    context = context_digest(params, lines.columns)
    carried_date = history.carried_date(train_out)
    bounds = sorted({*(c + horizon for c in cutoffs), score_date, *([carried_date] if carried_date else [])})
    digest_at = dict(zip(bounds, line_digests(lines, bounds), strict=True))
    keys = {c: partition_key(digest_at[c + horizon], context) for c in cutoffs}
    kept = {c: p for c in cutoffs if (p := folder.reusable(c, keys[c])) is not None}
    missing = [c for c in cutoffs if c not in kept]
    log.info("training snapshots: %d cutoff(s) reused, %d to compute", len(kept), len(missing))
    # the dates whose history the next run can carry on from, and every date this one needs
    carrying = history.carry_dates(cutoffs[-1], score_date, params.cutoff_every_days)
    needed = sorted({*missing, *carrying})
    derived = LineTables.of(lines)
    carried = (
        history.read(train_out, lines._find_backend(use_default=True), context, digest_at)
        if derived.on_duckdb
        else None
    )
    if carried is not None and not carried.covers(needed):
        log.info("carried history: does not cover %s; the history is read again", needed)
        carried = None
    if carried is not None:
        log.info("carried history of %s: aggregating the lines from that date on", carried.score_date)
        holding = derived.carried_on(
            carried, at=needed, asked=[*missing, score_date], reach_days=reach_days(params)
        )
    else:
        holding = derived.cached(at=needed)
    with holding as tables:
        summary = customer_summary(tables, [*missing, score_date])
        # in (cutoff, customer) order: each cutoff's fit sample is drawn by position
        btyd = fit_btyd(per_cutoff(summary.order_by(SNAPSHOT_ORDER)), params)
        made = (
            _write_partitions(
                tables=tables, cutoffs=missing, params=params, btyd=btyd, folder=folder, keys=keys
            )
            if missing
            else []
        )
        partitions = sorted([*kept.values(), *made], key=lambda p: p.cutoff)
        if not partitions:
            raise ScheduleError("no customer is eligible at any cutoff: nothing to train on")
        folder.publish(partitions)
        score = finish(
            btyd.outputs(build_features(tables, [score_date], params).to_pandas(), params.horizon),
            params.horizon,
        )
        check_finite(score, "scoring snapshot")
        horizons, gap_quantiles, reference = horizon_report(
            lines=tables, first_day=first_day, score_date=score_date, params=params
        )
        if tables.held:
            _carry(tables, train_out, dates=carrying, context=context, lines_digest=digest_at[score_date])
    by_cutoff = pd.DataFrame(
        {"rows": [p.rows for p in partitions], "churned": [p.churned for p in partitions]},
        index=pd.DatetimeIndex([pd.Timestamp(p.cutoff) for p in partitions], name="cutoff").astype(
            "datetime64[us]"
        ),
    )
    btyd_params = {p.cutoff.isoformat(): p.btyd for p in partitions}
    btyd_params[score_date.isoformat()] = btyd.params[score_date.isoformat()]
    return Snapshots(
        train=None,
        by_cutoff=by_cutoff,
        score=score,
        score_date=score_date,
        schedule=schedule,
        btyd_params=dict(sorted(btyd_params.items())),
        horizons=horizons,
        gap_quantiles=gap_quantiles,
        horizon_reference=reference,
    )


def _carry(tables: LineTables, train: Path, dates: list[dt.date], context: str, lines_digest: str) -> None:
    """The history at `dates` written for the next run to carry on from (`core.history`)."""
    assert tables.state is not None
    state = history.canonical(tables.state, dates)
    score_date = max(dates)
    current = state.filter((state.until_s == FOREVER) & (state.n_orders > 0))
    history.write(
        train,
        state=state.drop("next_order_s"),
        gaps=tables.gaps(before=score_date),
        attributes=(
            tables.attributes.semi_join(current, "customer_id") if tables.attributes is not None else None
        ),
        score_date=score_date,
        dates=dates,
        context=context,
        lines_digest=lines_digest,
    )


def _write_partitions(
    tables: LineTables,
    cutoffs: list[dt.date],
    params: FeaturizeParams,
    btyd: BtydFits,
    folder: SnapshotFolder,
    keys: dict[dt.date, str],
) -> list[Partition]:
    """The snapshots at `cutoffs`, a query per run of cutoffs (`query_batches`), each streamed from
    the engine in (cutoff, customer) order piece by piece, each cutoff's rows to its own file. (One
    query over every cutoff computes the same rows, but groups every cutoff's customers at once:
    at 10M lines it spilled gigabytes under the 2 GB limit, docs/benchmarks.md.)"""

    def pieces() -> Iterator[tuple[dt.date, pd.DataFrame]]:
        # a cutoff no customer ordered before has no fit, and no rows
        customers = {c: int(btyd.params.get(c.isoformat(), {}).get("customers", 0)) for c in cutoffs}
        # where the engine does not hold the line tables, each query would derive them again: one
        # query (Spark spreads a large aggregation over its executors instead of spilling)
        runs = query_batches(customers) if tables.held else [sorted(cutoffs)]
        for batch_cutoffs in runs:
            expr = training_snapshots(tables, batch_cutoffs, params).order_by(SNAPSHOT_ORDER)
            for batch in record_batches(expr, PIECE_ROWS):
                piece = finish(btyd.outputs(batch.to_pandas(), params.horizon), params.horizon)
                check_finite(piece, "training snapshots")
                for cutoff, rows in piece.groupby("cutoff", sort=True):
                    yield pd.Timestamp(cutoff).date(), rows

    made = []
    # the queries and the BTYD arithmetic on a thread of their own, overlapping the writing
    for cutoff, parts in itertools.groupby(prefetched(pieces()), key=lambda item: item[0]):
        fit = btyd.params[cutoff.isoformat()]
        rows = churned = 0
        with parquet_stream(folder.path(cutoff, keys[cutoff]), metadata=partition_metadata(fit)) as write:
            for _, part in parts:
                write(part)
                rows, churned = rows + len(part), churned + int(part[LABEL].sum())
        made.append(Partition(cutoff=cutoff, key=keys[cutoff], rows=rows, churned=churned, btyd=fit))
    return made


def make_snapshots(lines: ir.Table, params: FeaturizeParams, needs: SplitNeeds) -> Snapshots:
    """`write_snapshots` with the training snapshots read back into memory, for commands and tests
    that use them at once."""
    with tempfile.TemporaryDirectory() as tmp:
        snaps = write_snapshots(lines, params, needs, train_out=Path(tmp) / "train")
        return dataclasses.replace(snaps, train=read_snapshots(Path(tmp) / "train"))
