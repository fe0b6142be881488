"""Benchmark: training the churn model on the sample's snapshots, against the gradient boosting a
scikit-learn user would reach for, side by side in one run.

The input is data/features/train (run `dvc repro` first), split as the train stage splits
it (purged: training cutoffs, validation cutoffs, the held-out test cutoff); `--copies k` repeats
the training rows k times with suffixed ids, for the time at a larger size. Contenders, each in its
own process, interleaved over the repeats:

- `lightgbm`: the train stage's `fit` (params.yaml `train`: early stopping on the validation cutoffs);
- `sklearn hgb`: HistGradientBoostingClassifier with the same learning rate, leaves, minimum leaf
  size, L2 and number of rounds as LightGBM stopped at, categories native, no early stopping.

Each prints its test-cutoff ROC AUC as well as its time.

    python benchmarks/training.py --copies 1 4 --repeat 3
"""

from __future__ import annotations

import argparse
import os
import statistics

import timing

SETUP = """
import pandas as pd
from sklearn.metrics import roc_auc_score
from pipeline.core.model import feature_columns, model_frame
from pipeline.core.params import load_params
from pipeline.core.fitting import fit, select, split_snapshots
from pipeline.core.partitions import read_snapshots
params = load_params("params.yaml").train
snapshots = read_snapshots("data/features/train")
split = split_snapshots(snapshots, params)
train, valid, test = (select(snapshots, c) for c in (split.train, split.valid, split.test))
train = pd.concat([train.assign(customer_id=train.customer_id + f"-{k}") for k in range(COPIES)],
                  ignore_index=True)
"""

CONTENDERS = {
    "lightgbm": """
booster = fit(train, valid, params)
p = booster.predict(model_frame(test, booster.feature_name()))
ROWS = [len(train), booster.num_trees(), round(roc_auc_score(test.churned, p), 4)]
""",
    "sklearn hgb": """
from sklearn.ensemble import HistGradientBoostingClassifier
features = feature_columns(train)
x = model_frame(train, features)
model = HistGradientBoostingClassifier(
    learning_rate=params.learning_rate, max_iter=ROUNDS, max_leaf_nodes=params.num_leaves,
    min_samples_leaf=params.min_child_samples, l2_regularization=params.lambda_l2,
    categorical_features="from_dtype", early_stopping=False, random_state=params.seed)
model.fit(x, train.churned)
xt = model_frame(test, features)
for column in x.select_dtypes("category"):
    xt[column] = xt[column].cat.set_categories(x[column].cat.categories)
p = model.predict_proba(xt)[:, 1]
ROWS = [len(train), ROUNDS, round(roc_auc_score(test.churned, p), 4)]
""",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}; repeat: {args.repeat}")
    head = ("copies", " contender", "median s", "min s", "peak MiB", "rows", "trees", "AUC")
    widths = (">6", "<15", ">10", ">8", ">10", ">12", ">7", ">8")
    print("".join(f"{h:{w}}" for h, w in zip(head, widths, strict=True)))
    for copies in args.copies:
        results: dict[str, list] = {}
        rounds = 0
        for _ in range(args.repeat):
            for name, code in CONTENDERS.items():
                setup = f"COPIES = {copies}\nROUNDS = {rounds or 100}\n" + SETUP
                result = timing.run(name, setup, code)
                if name == "lightgbm":
                    rounds = result[2][1]  # sklearn gets as many rounds as LightGBM stopped at
                results.setdefault(name, []).append(result)
        for name, runs in results.items():
            times = [r[0] for r in runs]
            rows, trees, auc = runs[-1][2]
            print(
                f"{copies:>6} {name:<14}{statistics.median(times):>10.2f}{min(times):>8.2f}"
                f"{max(r[1] for r in runs):>10.0f}{rows:>12,}{trees:>7}{auc:>8.4f}"
            )


if __name__ == "__main__":
    main()
