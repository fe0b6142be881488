"""Benchmark: features and labels for N order lines x 12 cutoffs, side by side in one run.

Contenders, each in its own process so its peak memory is its own:
- `pipeline`: the featurize definitions (`training_snapshots`: every feature and the label) on
  DuckDB, collected to Arrow;
- `pandas`: the idiomatic pandas way to the same snapshot, a groupby per cutoff
  (`benchmarks/pandas_idiom.py`; a test checks it gives the pipeline's values);
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


# held to a DuckDB memory limit, spilling to a temp folder, the result streamed to Parquet
PIPELINE_LIMITED = """
import datetime as dt, pyarrow.parquet as pq, tempfile
from pipeline.featurize import connect, training_snapshots
from pipeline.params import load_params
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
from pipeline.featurize import training_snapshots
from pipeline.params import load_params
params = load_params("params.yaml").featurize
con = ibis.duckdb.connect()
dates = [dt.date.fromisoformat(c) for c in CUTOFFS]
out = training_snapshots(con.read_parquet(PATH), dates, params).to_pyarrow()
ROWS = out.num_rows
""",
    "pandas": """
import sys, pandas as pd
sys.path.insert(0, "benchmarks")
from pandas_idiom import training_snapshots
lines = pd.read_parquet(PATH)
ROWS = len(training_snapshots(lines, list(pd.to_datetime(CUTOFFS))))
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
