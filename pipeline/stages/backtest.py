"""Stage backtest: rolling-origin evaluation over the last K cutoffs. At each origin the model is
trained by `train`'s recipe on every cutoff whose label window closed by it (early stopping and
calibration on held-out customers of those cutoffs) and scored beside the baselines on that
origin, the baselines trained on the same rows."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import pandas as pd

from pipeline.core import tracking
from pipeline.core.baselines import baseline_scores, load_scores
from pipeline.core.columns import HORIZON, KEYS, LABEL
from pipeline.core.fitting import (
    Split,
    TrainError,
    cap_rows,
    capped_mask,
    fit_churn_model,
    fitted_by,
    select,
    split_snapshots,
)
from pipeline.core.io import atomic_path, csv_bytes, read_json, write_headline, write_json
from pipeline.core.metrics import best_baseline, classification_metrics
from pipeline.core.model import SUMMARY_FILE, ChurnModel
from pipeline.core.params import Params, TrainParams
from pipeline.core.partitions import read_snapshots

log = logging.getLogger(__name__)
MODEL = "model"


@dataclass(frozen=True)
class Judged:
    """The train stage's judged model, fitted by this recipe from these snapshots on `split`: the
    model of the origin with that split, read instead of fitted again (the fit is deterministic, so
    it is the same model; at the latest origin this saves one of the three trainings). `baselines`:
    evaluate's baseline scores of that origin's rows (`baselines.save_scores`), read instead of
    fitting the baselines again when they were fitted as `fitted_by` says."""

    model: ChurnModel
    split: Split
    fitted_by: dict[str, str]
    baselines: Path | None = None


def read_judged(
    folder: Path | None, snapshots_path: Path, params: TrainParams, baselines: Path | None = None
) -> Judged | None:
    """`folder`'s model when its summary says it was fitted by `params` from `snapshots_path`."""
    if folder is None:
        return None
    about = read_json(Path(folder) / SUMMARY_FILE)
    fitted = fitted_by(params, snapshots_path)
    if any(about.get(k) != v for k, v in fitted.items()):
        log.info("%s was fitted by another recipe or from other snapshots: every origin is fitted", folder)
        return None
    dates = {k: [pd.Timestamp(d) for d in about[f"{k}_cutoffs"]] for k in ("train", "test")}
    return Judged(model=ChurnModel.load(folder), split=Split(**dates), fitted_by=fitted, baselines=baselines)


def origin_split(keys: pd.DataFrame, origin: pd.Timestamp, params: TrainParams) -> Split:
    """The purged split at `origin` of a table with these keys: tested on the origin, trained on
    every cutoff whose label window closed by it."""
    known = keys[keys["cutoff"] <= origin]
    return split_snapshots(known, params.model_copy(update={"test_cutoffs": 1}))


def origin_metrics(
    snapshots: pd.DataFrame,
    origin: pd.Timestamp,
    params: Params,
    judged: Judged | None = None,
    keys: pd.DataFrame | None = None,
) -> list[dict]:
    """Model and baseline metrics at one origin, trained on what was known before it. `keys`: the
    whole table's customer_id, cutoff and horizon columns when `snapshots` hold only the rows the
    fits learn from (`backtest_rows`); by default `snapshots` are the whole table."""
    keys = snapshots if keys is None else keys
    split = origin_split(keys, origin, params.train)
    total = int(keys["cutoff"].isin(split.train).sum())
    train, test = select(snapshots, split.train), select(snapshots, split.test)
    baselines = None
    if judged is not None and judged.split == split:
        model = judged.model
        baselines = load_scores(judged.baselines, held_out=test, fitted_by=judged.fitted_by)
    else:
        model = fit_churn_model(train, params.train, total=total).model
    if baselines is None:
        # the baselines learn from the rows the model learnt from (the same `train.max_rows` cap)
        capped = cap_rows(train, params.train.max_rows, params.train.seed, total=total)
        baselines = baseline_scores(capped, test, params.train.num_threads)
    else:
        log.info("baselines at %s: evaluate's scores of these rows, read", origin.date())
    y = test[LABEL].to_numpy()
    p = model.probability(test)
    scores = {MODEL: (p, True), **baselines}
    top = params.evaluate.top_share
    head = {"cutoff": origin.date().isoformat(), "rows": len(test), "churn_rate": float(y.mean())}
    return [
        {
            **head,
            "scorer": name,
            **classification_metrics(y=y, p=score, top_share=top, probability=probability),
        }
        for name, (score, probability) in scores.items()
    ]


def backtest(
    snapshots: pd.DataFrame,
    params: Params,
    origins: int,
    judged: Judged | None = None,
    keys: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per origin and scorer: ROC AUC, PR AUC, lift and capture, and for probabilities Brier, log
    loss and ECE. Origins whose purged split has no training cutoff left are skipped. `keys`: as
    for `origin_metrics`."""
    keys = snapshots if keys is None else keys
    cutoffs = sorted(keys["cutoff"].unique())
    rows, skipped = [], []
    for k, origin in enumerate(cutoffs[-origins:], 1):
        log.info("backtest origin %s (%d/%d)", pd.Timestamp(origin).date(), k, min(origins, len(cutoffs)))
        try:
            rows += origin_metrics(
                snapshots=snapshots, origin=pd.Timestamp(origin), params=params, judged=judged, keys=keys
            )
        except TrainError as exc:  # only a split the cutoffs cannot give; anything else is a fault
            skipped.append(f"{pd.Timestamp(origin).date()}: {exc}")
            log.warning("origin %s skipped: %s", pd.Timestamp(origin).date(), exc)
    if not rows:
        raise TrainError("no backtest origin can be trained and tested:\n  " + "\n  ".join(skipped))
    return pd.DataFrame(rows)


def backtest_rows(path: Path, params: Params) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The snapshots' keys (customer_id, cutoff, horizon) for every row, and every column of only
    the rows the backtest uses: each origin's rows and, of its training cutoffs, the rows the fits
    learn from after `train.max_rows`'s cap. At 5M snapshot rows that is about a third of them."""
    keys = read_snapshots(path, columns=[*KEYS, HORIZON])
    cutoffs = sorted(keys["cutoff"].unique())
    splits = []
    for origin in cutoffs[-params.backtest.origins :]:
        try:
            splits.append(origin_split(keys, pd.Timestamp(origin), params.train))
        except TrainError:  # backtest skips it, saying why
            continue
    mask = capped_mask(keys, [s.train for s in splits], params.train)
    mask |= keys["cutoff"].isin([c for s in splits for c in s.test]).to_numpy()
    return read_snapshots(path, mask=mask), keys


def summary(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Mean of each metric over the origins, per scorer, and how often the model won on ROC AUC."""
    numeric = table.drop(columns=["cutoff", "rows", "churn_rate"])
    means = numeric.groupby("scorer").mean().round(6)
    out = {name: {k: float(v) for k, v in row.dropna().items()} for name, row in means.iterrows()}
    wide = table.pivot(index="cutoff", columns="scorer", values="roc_auc")
    others = [c for c in wide.columns if c != MODEL]
    out[MODEL]["origins_won_roc_auc"] = float((wide[MODEL] > wide[others].max(axis=1)).sum())
    out[MODEL]["origins"] = float(len(wide))
    return out


def figure(table: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(12, 4))
    for name, rows in table.groupby("scorer"):
        style = {"lw": 2.5, "color": "black"} if name == MODEL else {"lw": 1.2}
        axes[0].plot(pd.to_datetime(rows["cutoff"]), rows["roc_auc"], marker="o", label=name, **style)
        axes[1].plot(pd.to_datetime(rows["cutoff"]), rows["pr_auc"], marker="o", label=name, **style)
    axes[0].set(title="Backtest: ROC AUC by origin", ylabel="ROC AUC")
    axes[1].set(title="Backtest: PR AUC by origin", ylabel="PR AUC")
    axes[0].legend(fontsize=8)
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    return fig


def write_outputs(
    table: pd.DataFrame, metrics_out: Path, table_out: Path, auc_out: Path, figure_out: Path
) -> dict:
    result = summary(table)
    write_json(result, metrics_out)
    with atomic_path(table_out) as tmp:
        tmp.write_bytes(csv_bytes(table.round(6)))
    # one column per scorer, so `dvc plots` draws a line each
    wide = table.pivot(index="cutoff", columns="scorer", values="roc_auc").reset_index()
    with atomic_path(auc_out) as tmp:
        tmp.write_bytes(csv_bytes(wide.round(6)))
    fig = figure(table)
    with atomic_path(figure_out) as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    return result


def main(
    params_path: Path,
    snapshots_path: Path,
    run_path: Path,
    metrics_out: Path,
    table_out: Path,
    auc_out: Path,
    figure_out: Path,
    headline_out: Path | None = None,
    judged_dir: Path | None = None,
    baselines_path: Path | None = None,
) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    judged = read_judged(judged_dir, snapshots_path, params.train, baselines=baselines_path)
    snapshots, keys = backtest_rows(snapshots_path, params)
    table = backtest(snapshots, params=params, origins=params.backtest.origins, judged=judged, keys=keys)
    result = write_outputs(
        table=table, metrics_out=metrics_out, table_out=table_out, auc_out=auc_out, figure_out=figure_out
    )
    model = result[MODEL]
    _, best = best_baseline({k: v for k, v in result.items() if k != MODEL})
    write_headline(
        {
            "auc": model["roc_auc"],
            "pr_auc": model["pr_auc"],
            "ece": model["ece"],
            "gap": model["roc_auc"] - best,
        },
        headline_out,
    )
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_id=tracking.run_id_for(read_json(run_path))):
        mlflow.log_metrics(tracking.flat_metrics(result, "backtest"))
        mlflow.log_artifact(str(table_out), "backtest")
        mlflow.log_artifact(str(figure_out), "backtest")
    log.info(
        "backtest over %d origins: %s", params.backtest.origins, {k: v["roc_auc"] for k, v in result.items()}
    )
