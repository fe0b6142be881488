"""Benchmark: model quality on every simulated shop, beside the baselines and the Bayes oracle.

For each scenario of `simulate` (retail, drift, seasonal, one_time, grocery) it simulates an
export and its truth, runs `churn benchmark quality` on it (the rolling-origin backtest of the
model and every baseline, each trained only on what was known at its origin) and scores the
simulator's Bayes oracle on the same rows. Prints one markdown row per origin and a summary per
scenario: mean ROC AUC gap to the best baseline, worst origin, worst ECE, and gap to the oracle.

    python benchmarks/scenarios.py                      # every scenario
    python benchmarks/scenarios.py --only drift grocery --customers 10000
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.commands import quality  # noqa: E402
from pipeline.core.params import validate_params  # noqa: E402
from pipeline.core.shop import read_shop  # noqa: E402
from pipeline.stages import simulate  # noqa: E402

# the shop each scenario plays: its own horizon and cutoff spacing where the sample's do not fit
SETTINGS = {
    "retail": {},
    "drift": {},
    "seasonal": {},
    "one_time": {},
    "grocery": {
        "simulate": {"start_date": "2025-05-05", "mean_lines_per_order": 8.0},
        "featurize": {"horizon_days": 30, "cutoff_every_days": 7},
    },
}


def scenario_params(name: str, customers: int) -> dict:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    extra = SETTINGS[name]
    raw["simulate"] |= {"scenario": name, "n_customers": customers, **extra.get("simulate", {})}
    # score at the export's end
    raw["featurize"] |= {**extra.get("featurize", {}), "score_date": raw["simulate"]["end_date"]}
    return raw


def run_scenario(name: str, customers: int) -> tuple[pd.DataFrame, str, float]:
    raw = scenario_params(name, customers)
    params = validate_params(raw, name)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "params.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
        start = time.perf_counter()
        simulate.main(
            params_path=work / "params.yaml",
            raw_path=work / "raw.csv",
            customers_path=work / "customers.parquet",
            orders_path=work / "orders.parquet",
        )
        shop = read_shop(params.simulate, work / "customers.parquet", work / "orders.parquet")
        table, schedule = quality.quality_table(work / "raw.csv", params, today=dt.date.today(), shop=shop)
        seconds = time.perf_counter() - start
    assert params.featurize.horizon_days == schedule.horizon_days
    return table, quality.describe(schedule), seconds


def summarise(name: str, table: pd.DataFrame) -> tuple[list[str], dict]:
    rows, gaps, oracle_gaps, eces = [], [], [], []
    for cutoff, at in table.groupby("cutoff"):
        at = at.set_index("scorer")
        others = at.drop(index=["model", quality.ORACLE])
        best = others["roc_auc"].idxmax()
        gap = at.loc["model", "roc_auc"] - others["roc_auc"].max()
        pr_gap = at.loc["model", "pr_auc"] - others["pr_auc"].max()
        to_oracle = at.loc["model", "roc_auc"] - at.loc[quality.ORACLE, "roc_auc"]
        gaps.append(gap)
        oracle_gaps.append(to_oracle)
        eces.append(at.loc["model", "ece"])
        rows.append(
            f"| {name} | {cutoff} | {at.loc['model', 'churn_rate']:.3f} | {at.loc['model', 'roc_auc']:.4f} "
            f"| {others['roc_auc'].max():.4f} {best} | {gap:+.4f} | {pr_gap:+.4f} "
            f"| {at.loc['model', 'ece']:.4f} "
            f"| {at.loc[quality.ORACLE, 'roc_auc']:.4f} | {to_oracle:+.4f} |"
        )
    summary = {
        "mean_gap": sum(gaps) / len(gaps),
        "worst_gap": min(gaps),
        "worst_ece": max(eces),
        "mean_gap_to_oracle": sum(oracle_gaps) / len(oracle_gaps),
    }
    return rows, summary


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", nargs="*", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--out", type=Path, help="Also write every scenario's full table as CSV here.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    header = (
        "| scenario | origin | churn rate | model | best baseline | gap | PR AUC gap | ECE | oracle "
        "| gap to oracle |\n"
        "|---|---|---|---|---|---|---|---|---|---|"
    )
    lines, summaries, tables = [header], [], []
    for name in args.only:
        table, described, seconds = run_scenario(name, args.customers)
        print(f"{name}: {described} ({seconds:.0f} s)", flush=True)
        rows, summary = summarise(name, table)
        print("\n".join(rows), flush=True)
        lines += rows
        summaries.append({"scenario": name, **summary})
        tables.append(table.assign(scenario=name))
    print("\n" + "\n".join(lines))
    print("\n" + pd.DataFrame(summaries).to_string(index=False, float_format=lambda v: f"{v:+.4f}"))
    if args.out is not None:
        pd.concat(tables, ignore_index=True).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
