"""Benchmark: features and labels for N order lines x 12 cutoffs, side by side in one run.

Contenders, each in its own process so its peak memory is its own:
- `pipeline`: the featurize definitions (`training_snapshots`: every feature and the label) on
  DuckDB, collected to Arrow;
- `pandas`: the idiomatic pandas way for a core subset (orders, recency, tenure, frequency, spend,
  windows of 30/90/180/365 days, gap mean/max, label), a groupby per cutoff;
- `scan`: the floor, a DuckDB scan of the same columns with a trivial aggregate.

The input is the sample's validated transactions (data/validated/transactions.parquet, 1.04M lines),
repeated with suffixed customer ids to reach the larger sizes.

    python benchmarks/features.py --lines 1 10 --repeat 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

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


PIPELINE_LIMITED = """
import ibis, datetime as dt
from pipeline.featurize import training_snapshots
from pipeline.params import load_params
params = load_params("params.yaml").featurize
con = ibis.duckdb.connect(memory_limit=LIMIT)
dates = [dt.date.fromisoformat(c) for c in CUTOFFS]
out = training_snapshots(con.read_parquet(PATH), dates, params).to_pyarrow()
ROWS = out.num_rows
"""

CONTENDERS = {
    "pipeline": """
import ibis, datetime as dt
from pipeline.featurize import training_snapshots
from pipeline.params import load_params
params = load_params("params.yaml").featurize
con = ibis.duckdb.connect()
dates = [dt.date.fromisoformat(c) for c in CUTOFFS]
out = training_snapshots(con.read_parquet(PATH), dates, params).to_pyarrow()
ROWS = out.num_rows
""",
    "pandas": """
import pandas as pd, numpy as np
lines = pd.read_parquet(PATH, columns=["customer_id", "order_ts", "amount"])
orders = lines[lines.amount > 0].groupby(["customer_id", "order_ts"], as_index=False)["amount"].sum()
orders = orders.sort_values(["customer_id", "order_ts"])
orders["gap"] = orders.groupby("customer_id")["order_ts"].diff().dt.total_seconds() / 86400
frames = []
for c in pd.to_datetime(CUTOFFS):
    before = orders[orders.order_ts < c]
    age = (c - before.order_ts).dt.total_seconds() / 86400
    g = before.assign(age=age).groupby("customer_id")
    f = g.agg(n_orders=("amount", "size"), spend=("amount", "sum"), first=("order_ts", "min"),
              last=("order_ts", "max"), gap_mean=("gap", "mean"), gap_max=("gap", "max"))
    for w in (30, 90, 180, 365):
        recent = before[age < w].groupby("customer_id")["amount"]
        f[f"orders_{w}d"] = recent.size().reindex(f.index, fill_value=0)
        f[f"spend_{w}d"] = recent.sum().reindex(f.index, fill_value=0.0)
    f["recency_days"] = (c - f["last"]).dt.total_seconds() / 86400
    f["tenure_days"] = (c - f["first"]).dt.total_seconds() / 86400
    f = f[f.recency_days <= 365]
    window = orders[(orders.order_ts >= c) & (orders.order_ts < c + pd.Timedelta(days=90))]
    f["churned"] = (~f.index.isin(window.customer_id.unique())).astype("int8")
    frames.append(f.assign(cutoff=c))
ROWS = sum(len(f) for f in frames)
""",
    "scan": """
import duckdb
sums = "count(*), sum(hash(customer_id)), sum(epoch(order_ts)), sum(amount)"
ROWS = duckdb.sql(f"SELECT {sums} FROM read_parquet('{PATH}')").fetchall()[0][0]
""",
}


def run(name: str, path: Path) -> tuple[float, float, int]:
    """Seconds, peak RSS (MiB) and output rows of one contender in a fresh process."""
    code = (
        f"PATH = {str(path)!r}\nCUTOFFS = {cutoffs()!r}\nimport time, json\nt = time.perf_counter()\n"
        + CONTENDERS[name]
        + "\nprint(json.dumps([time.perf_counter() - t, ROWS]))\n"
    )
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"{name} failed")
    seconds, rows = json.loads(out.strip().splitlines()[-1])
    return seconds, usage.ru_maxrss / 1024, rows


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--make-input":
        print(make_input(int(sys.argv[2]), Path(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[1, 10], help="millions of order lines")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--contenders", nargs="+", default=list(CONTENDERS))
    parser.add_argument(
        "--memory-limit", help="also run the pipeline with this DuckDB memory limit, e.g. 2GB"
    )
    args = parser.parse_args()
    if args.memory_limit:
        name = f"pipeline@{args.memory_limit}"
        CONTENDERS[name] = f"LIMIT = {args.memory_limit!r}\n" + PIPELINE_LIMITED
        args.contenders.append(name)
    print(f"cores: {os.cpu_count()}; cutoffs: {N_CUTOFFS}; repeat: {args.repeat}")
    head = ("lines", "contender", "median s", "min s", "peak MiB", "rows", "x scan")
    print(f"{head[0]:>12} {head[1]:<16}{head[2]:>10}{head[3]:>8}{head[4]:>10}{head[5]:>12}{head[6]:>8}")
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
                    results.setdefault(name, []).append(run(name, path))
            scan = statistics.median(r[0] for r in results.get("scan", [(float("nan"), 0, 0)]))
            for name, runs in results.items():
                times = [r[0] for r in runs]
                median = statistics.median(times)
                print(
                    f"{n:>12,} {name:<16}{median:>10.2f}{min(times):>8.2f}{max(r[1] for r in runs):>10.0f}"
                    f"{runs[0][2]:>12,}{median / scan:>8.1f}"
                )
            path.unlink()


if __name__ == "__main__":
    main()
