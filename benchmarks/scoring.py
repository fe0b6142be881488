"""Benchmark: scoring and explaining N customers with the champion, side by side in one run.

The input is the sample's scoring snapshot (data/features/score.parquet) repeated with suffixed ids
to N rows; the model is models/champion (run `dvc repro` first). Contenders, each in its own
process so its peak memory is its own, interleaved over the repeats:

- `probabilities`: read the snapshot, calibrated churn probability for every customer;
- `score file`: the whole weekly table (`score_table`: probabilities, value, tiers, segments,
  campaigns, the outreach list of `--budget` customers with reasons for them, holdout);
- `reasons top N`: exact SHAP and reasons for the N customers with the highest value at risk only;
- `exact SHAP all`: exact SHAP for every customer, in chunks (`--all-shap`, slow by design);
- `spark probabilities`: the same probabilities by partition on local Spark (`--spark`).

    python benchmarks/scoring.py --customers 1000000 --budget 100000 --repeat 3
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
SOURCE = ROOT / "data" / "features" / "score.parquet"
MODEL = ROOT / "models" / "champion"
FEATURIZE = ROOT / "data" / "features" / "fits.json"


def make_input(customers: int, out: Path) -> int:
    import duckdb

    con = duckdb.connect()
    base = con.execute(f"SELECT count(*) FROM read_parquet('{SOURCE}')").fetchone()[0]
    copies = -(-customers // base)
    con.execute(
        f"""COPY (SELECT t.customer_id || '-' || lpad(c.k::VARCHAR, 4, '0') AS customer_id,
                 t.* EXCLUDE (customer_id)
          FROM read_parquet('{SOURCE}') t, range({copies}) c(k)
          ORDER BY 1 LIMIT {customers}) TO '{out}' (FORMAT parquet)"""
    )
    return customers


SETUP = """
import pandas as pd
from pipeline.core.model import ChurnModel
model = ChurnModel.load(MODEL)
"""

CONTENDERS = {
    "probabilities": """
snapshot = pd.read_parquet(PATH)
ROWS = len(model.probability(snapshot))
""",
    "score file": """
from pipeline.core.btyd import ParetoNBD
from pipeline.core.contributions import contributions
from pipeline.core.io import read_json
from pipeline.core.params import load_params
from pipeline.stages.score import score_table
params = load_params("params.yaml")
snapshot = pd.read_parquet(PATH)
p = model.probability(snapshot)
fitted = read_json(FEATURIZE)["btyd_params_by_cutoff"]
pnbd = ParetoNBD(**fitted[max(fitted)]["pareto_nbd"])
score = params.score.model_copy(update={"contact_budget": BUDGET})
def explain(rows):
    return contributions(model, rows, params.explain.chunk_rows)
table = score_table(snapshot=snapshot, p=p, explain=explain, pnbd=pnbd, model_version="m/1", params=score,
                    do_not_contact=set())
ROWS = int((table["reason_1"] != "").sum())
""",
    "reasons top N": """
import numpy as np
from pipeline.core.btyd import ParetoNBD
from pipeline.core.contributions import contributions
from pipeline.core.io import read_json
from pipeline.core.outreach import predicted_value
from pipeline.core.reasons import top_reasons
snapshot = pd.read_parquet(PATH)
p = model.probability(snapshot)
fitted = read_json(FEATURIZE)["btyd_params_by_cutoff"]
value = predicted_value(snapshot, ParetoNBD(**fitted[max(fitted)]["pareto_nbd"]), 365)["value"].to_numpy()
top = snapshot.iloc[np.argsort(-(p * value), kind="stable")[:BUDGET]]
from pipeline.core.params import load_params
causes = load_params("params.yaml").score.reason_causes
ROWS = len(top_reasons(contributions(model, top), top, 3, eligible=causes, min_points=0.5))
""",
    "exact SHAP all": """
from pipeline.core.contributions import contributions
snapshot = pd.read_parquet(PATH)
ROWS = len(contributions(model, snapshot))
""",
    "spark probabilities": """
import sys
from pipeline.core.engine import spark_session
from pipeline.core.params import load_params
from pipeline.commands.spark import score_partitions
params = load_params("params.yaml").featurize.model_copy(update={"spark_conf": {
    "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
    "spark.driver.memory": "4g"}})
spark = spark_session(params)
spark.sparkContext.setLogLevel("ERROR")
frame = spark.read.parquet(PATH)
out = PATH + ".scored"
score_partitions(frame, model).write.mode("overwrite").parquet(out)
ROWS = spark.read.parquet(out).count()
spark.stop()
""",
}


def run(name: str, path: Path, budget: int) -> tuple[float, float, int]:
    """Seconds, peak RSS (MiB) and rows of one contender in a fresh process (the model load and
    imports are outside the timing; Spark's session start is inside, and its executors, being child
    processes of the JVM, are not in the peak)."""
    constants = (
        f"PATH = {str(path)!r}\nMODEL = {str(MODEL)!r}\nFEATURIZE = {str(FEATURIZE)!r}\nBUDGET = {budget}\n"
    )
    return timing.run(name, constants + SETUP, CONTENDERS[name])


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--make-input":
        print(make_input(int(sys.argv[2]), Path(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--budget", type=int, default=100_000, help="N: the outreach list's size")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--all-shap", action="store_true", help="also exact SHAP for every customer")
    parser.add_argument("--spark", action="store_true", help="also probabilities on local Spark")
    args = parser.parse_args()
    names = ["probabilities", "score file", "reasons top N"]
    names += ["exact SHAP all"] * args.all_shap + ["spark probabilities"] * args.spark
    print(f"cores: {os.cpu_count()}; customers: {args.customers:,}; N: {args.budget:,}; repeat {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "score.parquet"
        subprocess.run([sys.executable, __file__, "--make-input", str(args.customers), str(path)], check=True)
        results: dict[str, list] = {}
        for _ in range(args.repeat):
            for name in names:
                results.setdefault(name, []).append(run(name, path, args.budget))
    print(f"{'contender':<22}{'median s':>10}{'min s':>8}{'peak MiB':>10}{'rows':>12}{'us/customer':>13}")
    for name, runs in results.items():
        times = [r[0] for r in runs]
        median = statistics.median(times)
        per = median / args.customers * 1e6 if name != "reasons top N" else median / args.budget * 1e6
        print(
            f"{name:<22}{median:>10.2f}{min(times):>8.2f}{max(r[1] for r in runs):>10.0f}"
            f"{runs[0][2]:>12,}{per:>13.1f}"
        )


if __name__ == "__main__":
    main()
