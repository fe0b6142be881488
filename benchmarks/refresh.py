"""Benchmark: next week's featurize, reusing the snapshot files of this week's, against a full run on
the same lines, side by side in one run; and a check that both give the same bytes.

The input is the sample's validated transactions repeated `--lines` times with suffixed customer
ids (as `benchmarks/features.py --make-input`; 10 gives 10.4M lines). "Last week's export" is every
line before the scoring date minus 7 days. The week chosen is one that adds a cutoff (the 14-day
grid adds one every other week; in the weeks between, every cutoff is reused):

1. `churn featurize` on last week's export into a folder (not timed: last week's run);
2. `refresh`: `churn featurize` on this week's export into the same folder;
3. `full`: `churn featurize` on this week's export into an empty folder;
4. every file of 2 and 3 (snapshot files, index, scoring snapshot, fits) compared byte for byte.

Each run is its own process; its peak memory is its own (`os.wait4`).

    python benchmarks/refresh.py --lines 10 --repeat 3
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from features import make_input  # noqa: E402

CHURN = Path(sys.executable).parent / "churn"


def featurize(work: Path, transactions: Path, out: Path) -> tuple[float, float, str]:
    """Seconds, peak MiB and the log of `churn featurize` on `transactions` into the folder `out`."""
    out.mkdir(parents=True, exist_ok=True)
    command = [str(CHURN), "featurize", "--params", str(work / "params.yaml")]
    command += ["--transactions", str(transactions), "--train", str(out / "train")]
    command += ["--score", str(out / "score.parquet"), "--fits", str(out / "fits.json")]
    command += ["--metrics", str(out / "featurize.json"), "--horizons", str(out / "horizons.csv")]
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    log = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"churn featurize failed:\n{log[-3000:]}")
    return seconds, usage.ru_maxrss / 1024, log


def files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=10, help="millions of order lines")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--input", type=Path, help="validated transactions to use instead of making them")
    args = parser.parse_args()
    import duckdb

    with tempfile.TemporaryDirectory(prefix="churn-refresh-") as tmp:
        work = Path(tmp)
        shutil.copy(ROOT / "params.yaml", work / "params.yaml")
        this_week = args.input or work / "this_week.parquet"
        if not args.input:
            make_input(args.lines, this_week)
        con = duckdb.connect()
        last = con.execute(f"SELECT max(order_ts) FROM read_parquet('{this_week}')").fetchone()[0]
        week_ago = (last.date() + dt.timedelta(days=1)) - dt.timedelta(days=7)
        last_week = work / "last_week.parquet"
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{this_week}') WHERE order_ts < DATE '{week_ago}') "
            f"TO '{last_week}' (FORMAT parquet)"
        )
        lines = con.execute(f"SELECT count(*) FROM read_parquet('{this_week}')").fetchone()[0]
        print(f"cores: {os.cpu_count()}; lines: {lines:,}; last week's export: before {week_ago}")
        times: dict[str, list[float]] = {"refresh": [], "full": []}
        peaks: dict[str, float] = {"refresh": 0.0, "full": 0.0}
        for k in range(args.repeat):
            weekly, full = work / f"weekly-{k}", work / f"full-{k}"
            featurize(work, last_week, weekly)
            for name, out in (("refresh", weekly), ("full", full)):
                seconds, peak, log = featurize(work, this_week, out)
                times[name].append(seconds)
                peaks[name] = max(peaks[name], peak)
                reuse = next((line for line in log.splitlines() if "cutoff(s) reused" in line), "")
                print(f"  run {k + 1} {name:8} {seconds:7.1f} s  {peak:8,.0f} MiB  {reuse.split(': ')[-1]}")
            same = files(weekly) == files(full)
            print(f"  run {k + 1}: refresh and full byte-identical: {same}")
            if not same:
                raise SystemExit("the refresh differs from the full run")
            shutil.rmtree(weekly)
            shutil.rmtree(full)
        refresh, whole = statistics.median(times["refresh"]), statistics.median(times["full"])
        print(f"{'':10}{'median s':>10}{'peak MiB':>10}")
        for name in ("refresh", "full"):
            print(f"{name:10}{statistics.median(times[name]):10.1f}{peaks[name]:10,.0f}")
        print(f"refresh / full: {refresh / whole:.1%}")


if __name__ == "__main__":
    main()
