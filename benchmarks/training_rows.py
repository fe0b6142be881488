"""Benchmark: held-out quality and cost of the churn model against the number of training rows, the
curve `train.max_rows` is chosen from.

Reads the training snapshots (featurize's folder `train`, or one Parquet file), splits them as
the train stage splits them (training cutoffs, the held-out test cutoff), and for each cap trains
the stage's recipe (`fit_churn_model`, blend and all) on the training cutoffs cut to that many rows
by the rule the stage uses (`fitting.cap_rows`: every row of a hash-chosen share of customers), in
a process of its own. Prints the rows used, ROC AUC and PR AUC on the whole test cutoff, seconds and peak MiB.
A cap of 0 means every row.

    python benchmarks/training_rows.py --snapshots /tmp/s10/train \
        --rows 250000 500000 1000000 2000000 0
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import timing

SETUP = """
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from pipeline.core.fitting import cap_rows, fit_churn_model, select, split_snapshots
from pipeline.core.partitions import read_snapshots
from pipeline.core.params import load_params
params = load_params("params.yaml").train.model_copy(update={{"max_rows": {cap} or None}})
snapshots = read_snapshots({snapshots!r})
split = split_snapshots(snapshots, params)
train, test = select(snapshots, split.train), select(snapshots, split.test)
"""

TIMED = """
fitted = fit_churn_model(train, params)
p = fitted.model.probability(test)
used = len(cap_rows(train, params.max_rows, params.seed))
auc, ap = roc_auc_score(test.churned, p), average_precision_score(test.churned, p)
ROWS = [used, len(train), round(auc, 5), round(ap, 5)]
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=Path, required=True)
    parser.add_argument("--rows", type=int, nargs="+", required=True, help="caps; 0 = every row")
    args = parser.parse_args()
    print(f"{'cap':>10}{'rows used':>12}{'of':>12}{'ROC AUC':>10}{'PR AUC':>10}{'s':>8}{'peak MiB':>10}")
    for cap in args.rows:
        setup = SETUP.format(cap=cap, snapshots=str(args.snapshots.resolve()))
        seconds, peak, (used, total, auc, ap) = timing.run(f"cap {cap}", setup, TIMED)
        print(f"{cap or 'all':>10}{used:>12,}{total:>12,}{auc:>10.4f}{ap:>10.4f}{seconds:>8.1f}{peak:>10.0f}")
        print(
            json.dumps({"cap": cap, "rows": used, "roc_auc": auc, "pr_auc": ap, "seconds": seconds}),
            flush=True,
        )


if __name__ == "__main__":
    main()
