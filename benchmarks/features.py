"""Benchmark: features and labels for N order lines x 12 cutoffs (`--cutoffs`), side by side in one run.

Contenders, each in its own process so its peak memory is its own:
- `pipeline`: the featurize definitions (`training_snapshots`: every feature and the label) on
  DuckDB, one query over every cutoff, collected to Arrow;
- `pipeline per cutoff`: the same definitions as the featurize stage runs them at 10M lines:
  what the lines give (`LineTables`) computed once into DuckDB tables, then one query per cutoff;
- `pandas`: the idiomatic pandas way to the same snapshot, a groupby per cutoff
  (`benchmarks/pandas_idiom.py`; a test checks it gives the pipeline's values);
- `scan`: the floor, a DuckDB scan of the same columns with a trivial aggregate.

The input is the sample's validated transactions (data/validated/transactions.parquet, 1.04M lines),
repeated with suffixed customer ids to reach the larger sizes.

    python benchmarks/features.py --lines 1 10 --repeat 3
    python benchmarks/features.py --lines 10 --cutoffs 1 --contenders pipeline   # one cutoff
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import timing

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "data" / "validated" / "transactions.parquet"
N_CUTOFFS = 12


def make_input(millions: int, out: Path) -> int:
    import duckdb

    con = duckdb.connect()
    base = con.execute(f"SELECT count(*) FROM read_parquet('{SOURCE}')").fetchone()[0]
    copies = max(1, round(millions * 1_000_000 / base))
    con.execute(
        f"""COPY (SELECT c.k * 10000000 + t.source_row AS source_row,
                 t.customer_id || '-' || c.k AS customer_id, t.* EXCLUDE (source_row, customer_id)
          FROM read_parquet('{SOURCE}') t, range({copies}) c(k)) TO '{out}' (FORMAT parquet)"""
    )
    return base * copies


def cutoffs() -> list[str]:
    import pandas as pd

    last = pd.read_parquet(SOURCE, columns=["order_ts"])["order_ts"].max().normalize() + pd.Timedelta(days=1)
    latest = last - pd.Timedelta(days=90)
    return [(latest - pd.Timedelta(days=14 * k)).date().isoformat() for k in range(N_CUTOFFS)][::-1]


# held to a DuckDB memory limit, spilling to a temp folder, the result streamed to Parquet
PIPELINE_LIMITED = """
import datetime as dt, pyarrow.parquet as pq, tempfile
from pipeline.core.engine import connect
from pipeline.core.features import training_snapshots
from pipeline.core.params import load_params
with tempfile.TemporaryDirectory() as spill:
    params = load_params("params.yaml").featurize.model_copy(
        update={"memory_limit": LIMIT, "temp_directory": spill})
    con = connect(params)
    dates = [dt.date.fromisoformat(c) for c in CUTOFFS]
    out = spill + "/snapshots.parquet"
    con.to_parquet(training_snapshots(con.read_parquet(PATH), dates, params), out)
    ROWS = pq.ParquetFile(out).metadata.num_rows
"""

CONTENDERS = {
    "pipeline": """
import ibis, datetime as dt
from pipeline.core.features import training_snapshots
from pipeline.core.params import load_params
params = load_params("params.yaml").featurize
con = ibis.duckdb.connect()
dates = [dt.date.fromisoformat(c) for c in CUTOFFS]
out = training_snapshots(con.read_parquet(PATH), dates, params).to_pyarrow()
ROWS = out.num_rows
""",
    # as the featurize stage runs it at 10M lines: what the lines give derived once, then a query
    # per cutoff (on a smaller shop the stage puts several cutoffs in one query, `query_batches`)
    "pipeline per cutoff": """
import ibis, datetime as dt
from pipeline.core.features import LineTables, training_snapshots
from pipeline.core.params import load_params
params = load_params("params.yaml").featurize
con = ibis.duckdb.connect()
dates = [dt.date.fromisoformat(c) for c in CUTOFFS]
with LineTables.of(con.read_parquet(PATH)).cached(at=dates) as tables:
    ROWS = sum(training_snapshots(tables, [d], params).to_pyarrow().num_rows for d in dates)
""",
    "pandas": """
import sys, pandas as pd
sys.path.insert(0, "benchmarks")
from pandas_idiom import training_snapshots
lines = pd.read_parquet(PATH)
ROWS = len(training_snapshots(lines, list(pd.to_datetime(CUTOFFS))))
""",
    # the same definitions on local Spark (local[2], session start included), streamed to Parquet
    "pipeline on spark": """
import datetime as dt, tempfile
from pipeline.core.engine import connect
from pipeline.core.features import training_snapshots
from pipeline.core.params import load_params
params = load_params("params.yaml").featurize.model_copy(update={"backend": "pyspark", "spark_conf": {
    "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", "spark.driver.memory": "6g",
    "spark.sql.shuffle.partitions": "8"}})
con = connect(params)
con._session.sparkContext.setLogLevel("ERROR")
with tempfile.TemporaryDirectory() as out:
    dates = [dt.date.fromisoformat(c) for c in CUTOFFS]
    con.to_parquet_dir(training_snapshots(con.read_parquet(PATH), dates, params), out + "/s")
    ROWS = con._session.read.parquet(out + "/s").count()
""",
    # the two below run in a separate environment with pandas < 3 (--anchors-python)
    "lifetimes RFM": """
import pandas as pd
from lifetimes.utils import summary_data_from_transaction_data
lines = pd.read_parquet(PATH, columns=["customer_id", "order_ts", "amount"])
buys = lines[lines.amount > 0]
ROWS = 0
for c in pd.to_datetime(CUTOFFS):
    # frequency, recency, T and mean order value per customer at the cutoff (days as the period)
    before = buys[buys.order_ts < c]
    ROWS += len(summary_data_from_transaction_data(
        before, "customer_id", "order_ts", monetary_value_col="amount", observation_period_end=c, freq="D"))
""",
    "featuretools DFS": """
import pandas as pd, featuretools as ft
lines = pd.read_parquet(PATH)
buys = lines[lines.amount > 0].assign(order_id=lambda d: d.order_id.fillna(""))
orders = buys.groupby(["customer_id", "order_ts", "order_id"], as_index=False).agg(
    value=("amount", "sum"), n_lines=("amount", "size"), items=("quantity", "sum"))
orders["order_key"] = range(len(orders))
orders["weekend"] = (orders.order_ts.dt.day_of_week >= 5).astype(int)
customers = buys.sort_values("order_ts").drop_duplicates("customer_id")[["customer_id", "country", "channel"]]
es = ft.EntitySet("shop")
es.add_dataframe(dataframe_name="customers", dataframe=customers, index="customer_id")
es.add_dataframe(dataframe_name="orders", dataframe=orders[["order_key", "customer_id", "order_ts", "value",
                 "n_lines", "items", "weekend"]], index="order_key", time_index="order_ts")
es.add_relationship("customers", "customer_id", "orders", "customer_id")
# one row per (customer, cutoff) for customers with an order in the year before: the pipeline's rows
times = []
for c in pd.to_datetime(CUTOFFS):
    year = (orders.order_ts < c) & (orders.order_ts >= c - pd.Timedelta(days=365))
    active = orders.loc[year, "customer_id"]
    times.append(pd.DataFrame({"customer_id": active.unique(), "time": c - pd.Timedelta(microseconds=1)}))
fm = ft.dfs(entityset=es, target_dataframe_name="customers", cutoff_time=pd.concat(times),
            agg_primitives=["count", "sum", "mean", "max", "min", "std"], trans_primitives=[],
            cutoff_time_in_index=True, max_depth=1)[0]
ROWS = len(fm)
""",
    "scan": """
import duckdb
sums = "count(*), sum(hash(customer_id)), sum(epoch(order_ts)), sum(amount)"
ROWS = duckdb.sql(f"SELECT {sums} FROM read_parquet('{PATH}')").fetchall()[0][0]
""",
}


ANCHORS = ("lifetimes RFM", "featuretools DFS")
ANCHORS_PYTHON = sys.executable


def run(name: str, path: Path) -> tuple[float, float, int]:
    """Seconds, peak RSS (MiB) and output rows of one contender in a fresh process."""
    python = ANCHORS_PYTHON if name in ANCHORS else sys.executable
    return timing.run(name, f"PATH = {str(path)!r}\nCUTOFFS = {cutoffs()!r}", CONTENDERS[name], python)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--make-input":
        print(make_input(int(sys.argv[2]), Path(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1, 10], help="millions of order lines")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cutoffs", type=int, default=12, help="cutoffs, 14 days apart (1: as the scoring snapshot)"
    )
    parser.add_argument(
        "--contenders", nargs="+", default=["pipeline", "pipeline per cutoff", "pandas", "scan"]
    )
    parser.add_argument(
        "--anchors-python",
        help="a Python with pandas<3, featuretools 1.31 and lifetimes 0.11 (they need pandas 2): adds "
        "lifetimes RFM at every size and featuretools DFS up to --featuretools-max millions of lines",
    )
    parser.add_argument("--featuretools-max", type=int, default=10)
    parser.add_argument("--spark", action="store_true", help="also the pipeline on local Spark")
    parser.add_argument("--spark-max", type=int, default=1, help="largest size for Spark (millions)")
    parser.add_argument(
        "--memory-limit", help="also run the pipeline with this DuckDB memory limit, e.g. 2GB"
    )
    args = parser.parse_args()
    global ANCHORS_PYTHON, N_CUTOFFS
    N_CUTOFFS = args.cutoffs
    if args.anchors_python:
        ANCHORS_PYTHON = args.anchors_python
        args.contenders += list(ANCHORS)
    if args.spark:
        args.contenders.append("pipeline on spark")
    if args.memory_limit:
        name = f"pipeline@{args.memory_limit}"
        CONTENDERS[name] = f"LIMIT = {args.memory_limit!r}\n" + PIPELINE_LIMITED
        args.contenders.append(name)
    print(f"cores: {os.cpu_count()}; cutoffs: {N_CUTOFFS}; repeat: {args.repeat}")
    head = ("lines", " contender", "median s", "min s", "peak MiB", "rows", "x scan", "x pipeline")
    widths = (">12", "<21", ">10", ">8", ">10", ">12", ">8", ">12")
    print("".join(f"{h:{w}}" for h, w in zip(head, widths, strict=True)))
    with tempfile.TemporaryDirectory() as tmp:
        for millions in args.lines:
            path = Path(tmp) / f"lines_{millions}m.parquet"
            # in a child process: a forked child's peak RSS counts the parent's pages at fork time
            made = subprocess.run(
                [sys.executable, __file__, "--make-input", str(millions), str(path)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            n = int(made.stdout.strip())
            results = {}
            for _ in range(args.repeat):  # interleaved, so load spikes hit every contender alike
                for name in args.contenders:
                    if name == "featuretools DFS" and millions > args.featuretools_max:
                        continue
                    if name == "pipeline on spark" and millions > args.spark_max:
                        continue
                    results.setdefault(name, []).append(run(name, path))
            nothing = [(float("nan"), 0, 0)]
            scan = statistics.median(r[0] for r in results.get("scan", nothing))
            pipeline = statistics.median(r[0] for r in results.get("pipeline", nothing))
            for name, runs in results.items():
                times = [r[0] for r in runs]
                median = statistics.median(times)
                print(
                    f"{n:>12,} {name:<20}{median:>10.2f}{min(times):>8.2f}{max(r[1] for r in runs):>10.0f}"
                    f"{runs[0][2]:>12,}{median / scan:>8.1f}{median / pipeline:>12.2f}"
                )
            path.unlink()


if __name__ == "__main__":
    main()
