"""Stage evaluate: the trained model on the held-out cutoffs -> metrics, curves and figures.

Reports ROC AUC, PR AUC, Brier, log loss, and lift and capture in the top share of customers by
risk; with the simulator's truth, the Bayes-optimal oracle and the known-rates ceiling on the
same rows beside the model's.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

from pipeline.core.metrics import best_baseline, classification_metrics

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sklearn.metrics import (
    brier_score_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from pipeline.core import registry, tracking
from pipeline.core.baselines import TRAINING_INPUTS, baseline_scores, save_scores
from pipeline.core.calibration import expected_calibration_error, reliability_table
from pipeline.core.columns import LABEL
from pipeline.core.errors import SnapshotError
from pipeline.core.fitting import cap_rows, fitted_by
from pipeline.core.io import atomic_path, csv_bytes, read_json, write_headline, write_json
from pipeline.core.model import EVALUATION_DIR, SUMMARY_FILE, ChurnModel, risk_deciles
from pipeline.core.params import EvaluateParams, TrainParams
from pipeline.core.partitions import read_snapshots

log = logging.getLogger(__name__)
CURVE_POINTS = 200
MODEL = "model"
# the held-out results the promotion gate reads (and `champion`, when there is one)
JUDGED = ("rows", "churn_rate", "model", "baselines", "champion")


def segment_masks(held_out: pd.DataFrame, new_customer_days: int) -> dict[str, np.ndarray]:
    """One-time vs repeat buyers, new customers, and value tiers (terciles of last-year spend)."""
    spend = held_out["spend_365d"] if "spend_365d" in held_out.columns else held_out["spend"]
    low, high = np.quantile(spend, [1 / 3, 2 / 3])
    return {
        "one_time": (held_out["n_orders"] == 1).to_numpy(),
        "repeat": (held_out["n_orders"] > 1).to_numpy(),
        "new": (held_out["tenure_days"] < new_customer_days).to_numpy(),
        "value_low": (spend <= low).to_numpy(),
        "value_mid": ((spend > low) & (spend <= high)).to_numpy(),
        "value_high": (spend > high).to_numpy(),
    }


def segment_metrics(
    y: np.ndarray, p: np.ndarray, masks: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    out = {}
    for name, mask in masks.items():
        ys, ps = y[mask], p[mask]
        row = {"rows": float(mask.sum())}
        if mask.any():
            row |= {
                "churn_rate": float(ys.mean()),
                "mean_predicted": float(ps.mean()),
                "brier": float(brier_score_loss(ys, ps)),
                "ece": expected_calibration_error(ys, ps),
            }
            if 0 < ys.sum() < len(ys):
                row["roc_auc"] = float(roc_auc_score(ys, ps))
        out[name] = row
    return out


def lift_table(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Per risk decile (1 = riskiest): churn rate, lift and cumulative capture."""
    frame = pd.DataFrame({"decile": risk_deciles(p), "y": y})
    table = frame.groupby("decile")["y"].agg(["size", "sum"]).reset_index()
    table["churn_rate"] = table["sum"] / table["size"]
    table["lift"] = table["churn_rate"] / y.mean()
    table["cumulative_capture"] = table["sum"].cumsum() / y.sum()
    return table[["decile", "churn_rate", "lift", "cumulative_capture"]]


def _thin(frame: pd.DataFrame) -> pd.DataFrame:
    if len(frame) <= CURVE_POINTS:
        return frame
    keep = np.unique(np.linspace(0, len(frame) - 1, CURVE_POINTS).round().astype(int))
    return frame.iloc[keep].reset_index(drop=True)


def curves(
    y: np.ndarray, scores: dict[str, np.ndarray], p: np.ndarray, params: EvaluateParams
) -> dict[str, pd.DataFrame]:
    """ROC and precision-recall curves of the model and of every baseline (a `scorer` column, the
    model first), and the model's reliability and lift tables."""
    roc, pr = [], []
    for name, score in {MODEL: p, **scores}.items():
        fpr, tpr, _ = roc_curve(y, score)
        precision, recall, _ = precision_recall_curve(y, score)
        roc.append(_thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})).assign(scorer=name))
        pr.append(
            _thin(pd.DataFrame({"recall": recall[::-1], "precision": precision[::-1]})).assign(scorer=name)
        )
    return {
        "roc": pd.concat(roc, ignore_index=True)[["scorer", "fpr", "tpr"]],
        "pr": pd.concat(pr, ignore_index=True)[["scorer", "recall", "precision"]],
        "calibration": pd.DataFrame(reliability_table(y, p, params.calibration_bins)),
        "lift": lift_table(y, p),
    }


def figure(tables: dict[str, pd.DataFrame], report: dict) -> plt.Figure:
    """ROC and precision-recall of the model beside every baseline (AUC and AP in the legend),
    reliability and lift by decile: four panels in a 2 x 2 grid, 1,080 px wide at 90 dpi."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 9.5))
    (ax_roc, ax_pr), (ax_cal, ax_lift) = axes
    cal, lift = tables["calibration"], tables["lift"]
    metrics = {MODEL: report["model"], **report["baselines"]}
    for name, rows in tables["roc"].groupby("scorer", sort=False):
        style = {"lw": 2.5, "color": "black", "zorder": 3} if name == MODEL else {"lw": 1.1}
        label = f"{name} {metrics[name]['roc_auc']:.3f}"
        if name == MODEL and "oracle_roc_auc" in report:
            label += f" (oracle {report['oracle_roc_auc']:.3f})"
        ax_roc.plot(rows["fpr"], rows["tpr"], label=label, **style)
        pr = tables["pr"][tables["pr"]["scorer"] == name]
        ax_pr.plot(pr["recall"], pr["precision"], label=f"{name} {metrics[name]['pr_auc']:.3f}", **style)
    ax_roc.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax_roc.set(title="ROC (legend: ROC AUC)", xlabel="false positive rate", ylabel="true positive rate")
    ax_roc.legend(loc="lower right", fontsize=8)
    ax_pr.axhline(report["churn_rate"], color="k", ls="--", lw=0.8)
    ax_pr.set(title="Precision-recall (legend: average precision)", xlabel="recall", ylabel="precision")
    ax_pr.legend(loc="lower left", fontsize=8)
    model = report["model"]
    ax_cal.plot(cal["predicted"], cal["observed"], "o-", color="black")
    ax_cal.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax_cal.set(
        title=f"Reliability (ECE {model['ece']:.3f}, Brier {model['brier']:.3f})",
        xlabel="mean predicted",
        ylabel="observed churn rate",
    )
    ax_lift.bar(lift["decile"], lift["lift"], color="0.35")
    ax_lift.axhline(1.0, color="k", ls="--", lw=0.8)
    ax_lift.set(
        title="Lift by risk decile", xlabel="decile (1 = riskiest)", ylabel="lift", xticks=range(1, 11)
    )
    fig.tight_layout()
    return fig


TRUTH_COLUMNS = {"oracle": "bayes_p_no_order", "ceiling": "true_p_no_order"}


def oracle_metrics(held_out: pd.DataFrame, truth_path: Path | None, top_share: float) -> dict[str, dict]:
    """The simulator's two truths scored on the same rows, when the truth covers them: `oracle`,
    the Bayes-optimal probability from what the export shows (the best a model can do), and
    `ceiling`, the probability given each customer's true rates (unreachable from the history)."""
    if truth_path is None or not Path(truth_path).exists():
        return {}
    truth = pd.read_parquet(truth_path, columns=["customer_id", "cutoff", *TRUTH_COLUMNS.values()])
    joined = held_out[["customer_id", "cutoff", LABEL]].merge(truth, on=["customer_id", "cutoff"], how="left")
    covered = joined[TRUTH_COLUMNS["oracle"]].notna()
    if covered.mean() < 0.99:
        log.warning("truth covers only %.1f%% of held-out rows: no oracle", 100 * covered.mean())
        return {}
    joined = joined[covered]
    y = joined[LABEL].to_numpy()
    return {
        name: classification_metrics(y, joined[column].to_numpy(), top_share)
        for name, column in TRUTH_COLUMNS.items()
    }


def segment_reliability(
    y: np.ndarray, p: np.ndarray, masks: dict[str, np.ndarray], bins: int
) -> pd.DataFrame:
    """The reliability diagram of each segment: per equal-width bin, mean prediction, observed
    churn rate and rows."""
    frames = [
        pd.DataFrame(reliability_table(y[mask], p[mask], bins)).assign(segment=name)
        for name, mask in masks.items()
        if mask.any()
    ]
    return pd.concat(frames, ignore_index=True)[["segment", "predicted", "observed", "rows"]]


def segment_figure(table: pd.DataFrame, segments: dict[str, dict[str, float]]) -> plt.Figure:
    names = list(dict.fromkeys(table["segment"]))
    fig, axes = plt.subplots(2, (len(names) + 1) // 2, figsize=(4 * ((len(names) + 1) // 2), 7.5))
    for ax, name in zip(axes.flat, names, strict=False):
        rows = table[table["segment"] == name]
        ax.plot(rows["predicted"], rows["observed"], "o-")
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ece = segments[name].get("ece", float("nan"))
        ax.set(title=f"{name} ({int(rows['rows'].sum())} rows, ECE {ece:.3f})", xlim=(0, 1), ylim=(0, 1))
        ax.set(xlabel="mean predicted", ylabel="observed churn rate")
    fig.tight_layout()
    return fig


def held_out_rows(snapshots_path: Path, summary: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test cutoffs' rows, every column (they are the latest cutoffs: only their files are
    read), and the training cutoffs' rows with only the columns the baselines learn from."""
    test_cutoffs = pd.to_datetime(summary["test_cutoffs"])
    test = read_snapshots(snapshots_path, latest=len(test_cutoffs))
    test = test[test["cutoff"].isin(test_cutoffs)].reset_index(drop=True)
    fit_rows = read_snapshots(snapshots_path, columns=list(TRAINING_INPUTS))
    return test, fit_rows[fit_rows["cutoff"].isin(pd.to_datetime(summary["train_cutoffs"]))]


def evaluate(
    test: pd.DataFrame, fit_rows: pd.DataFrame, model: ChurnModel, params: EvaluateParams, train: TrainParams
) -> tuple[dict, np.ndarray, dict[str, tuple[np.ndarray, bool]]]:
    """Metrics of the calibrated model, the raw model and every baseline on the held-out rows
    `test`, the baselines fitted on `fit_rows`; the model's probabilities and each baseline's
    score with whether it is a probability."""
    y = test[LABEL].to_numpy()
    raw = model.raw_probability(test)
    p = model.calibrator.apply(raw, test)
    # the baselines learn from the rows the judged model learnt from (the same `train.max_rows` cap)
    baselines = baseline_scores(cap_rows(fit_rows, train.max_rows, train.seed), test, train.num_threads)
    report: dict = {
        "rows": len(test),
        "churn_rate": float(y.mean()),
        "calibration": model.calibrator.method,
        "model": classification_metrics(y, p, params.top_share),
        "model_uncalibrated": classification_metrics(y, raw, params.top_share),
        "baselines": {
            name: classification_metrics(y=y, p=score, top_share=params.top_share, probability=probability)
            for name, (score, probability) in baselines.items()
        },
        "segments": segment_metrics(y, p, segment_masks(test, params.new_customer_days)),
    }
    return report, p, baselines


def champion_metrics(test: pd.DataFrame, name: str, horizon_days: int, top_share: float) -> dict | None:
    """The current champion on the candidate's held-out rows, judged as the candidate is: by the
    model its training run judged (`evaluation/`, trained only on labels that closed by its own
    test cutoffs, never on these rows' labels when the data has moved on). None before the first
    promotion; `compared: false` with the reason when the two cannot be set side by side."""
    current = registry.champion(MlflowClient(), name)
    if current is None:
        return None
    head = {"version": str(current.version)}
    try:
        folder = registry.model_folder(current, EVALUATION_DIR)
        model = ChurnModel.load(folder)
    except (MlflowException, OSError):
        return head | {"compared": False, "why": "its training run logged no judged model"}
    answers = read_json(folder / SUMMARY_FILE).get("horizon_days")
    if answers != horizon_days:
        return head | {
            "compared": False,
            "why": f"it predicts churn over {answers} days, the candidate over {horizon_days}",
        }
    try:
        p = model.probability(test)
    except SnapshotError as exc:
        return head | {"compared": False, "why": str(exc)}
    return head | {"compared": True, **classification_metrics(test[LABEL].to_numpy(), p, top_share)}


def headline(report: dict) -> dict[str, float | int]:
    """The held-out figures an analyst compares between runs: the model's ROC AUC, PR AUC and ECE,
    its ROC AUC gap to the best baseline, and the rows."""
    model, baselines = report["model"], report["baselines"]
    return {
        "auc": model["roc_auc"],
        "pr_auc": model["pr_auc"],
        "ece": model["ece"],
        "gap": model["roc_auc"] - best_baseline(baselines)[1],
        "rows": report["rows"],
    }


def _rounded(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 6) if isinstance(value, float) else value


# MLflow groups charts by the part of a metric's name before the first "/"
GROUPS = {
    "model": "test",
    "model_uncalibrated": "uncalibrated",
    "baselines": "baseline",
    "segments": "segment",
    "champion": "champion",
    "oracle": "oracle",
    "ceiling": "ceiling",
}


def mlflow_metrics(report: dict) -> dict[str, float]:
    """The held-out report as MLflow metrics, grouped by prefix: `test/` (the model, its rows,
    churn rate and gaps), `uncalibrated/`, `baseline/<name>.<metric>`, `segment/<name>.<metric>`, `champion/`,
    and on a simulation `oracle/` and `ceiling/`."""
    out = tracking.flat_metrics({k: report[k] for k in ("rows", "churn_rate")}, "test")
    out["test/roc_auc_gap_to_best_baseline"] = (
        report["model"]["roc_auc"] - best_baseline(report["baselines"])[1]
    )
    if "roc_auc_gap_to_oracle" in report:
        out["test/roc_auc_gap_to_oracle"] = report["roc_auc_gap_to_oracle"]
    for key, group in GROUPS.items():
        out |= tracking.flat_metrics(report.get(key, {}), group)
    return out


def main(
    params_path: Path,
    snapshots_path: Path,
    model_dir: Path,
    run_path: Path,
    truth_path: Path | None,
    metrics_out: Path,
    plots_dir: Path,
    judged_out: Path,
    headline_out: Path | None = None,
    baselines_out: Path | None = None,
) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    summary = read_json(model_dir / SUMMARY_FILE)
    # the model trained only on what was known at the test cutoffs; the scoring model saw them
    judged = ChurnModel.load(model_dir / EVALUATION_DIR)
    test, fit_rows = held_out_rows(snapshots_path, summary)
    report, p, baselines = evaluate(
        test=test, fit_rows=fit_rows, model=judged, params=params.evaluate, train=params.train
    )
    if baselines_out is not None:  # backtest's latest origin is these rows with these baselines
        used = fitted_by(params.train, snapshots_path)  # what they were fitted by here, not train's record
        save_scores(baselines, held_out=test, fitted_by=used, path=baselines_out)
    scores = {name: score for name, (score, _) in baselines.items()}
    y = test[LABEL].to_numpy()
    tracking.configure(params.mlflow.experiment)
    held_by_champion = champion_metrics(
        test,
        name=params.mlflow.registered_model,
        horizon_days=summary["horizon_days"],
        top_share=params.evaluate.top_share,
    )
    if held_by_champion is not None:
        report["champion"] = held_by_champion
    truths = oracle_metrics(test, truth_path, params.evaluate.top_share)
    if truths:
        report |= truths
        report["oracle_roc_auc"] = truths["oracle"]["roc_auc"]
        report["roc_auc_gap_to_oracle"] = truths["oracle"]["roc_auc"] - report["model"]["roc_auc"]
    report = _rounded(report)
    write_json(report, metrics_out)
    write_headline(headline(report), headline_out)
    # what promotion judges, as an output of its own: the metrics file is for people and `dvc metrics`
    write_json({k: report[k] for k in JUDGED if k in report}, judged_out)
    tables = curves(y=y, scores=scores, p=p, params=params.evaluate)
    masks = segment_masks(test, params.evaluate.new_customer_days)
    tables["reliability_by_segment"] = segment_reliability(
        y=y, p=p, masks=masks, bins=params.evaluate.calibration_bins
    )
    plots_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        with atomic_path(plots_dir / f"{name}.csv") as tmp:
            tmp.write_bytes(csv_bytes(table.round(6)))
    fig = figure(tables, report)
    seg_fig = segment_figure(tables["reliability_by_segment"], report["segments"])
    for name, figure_ in (("evaluation", fig), ("reliability_by_segment", seg_fig)):
        with atomic_path(plots_dir / f"{name}.png") as tmp:
            figure_.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    with mlflow.start_run(run_id=tracking.run_id_for(read_json(run_path))):
        mlflow.log_metrics(mlflow_metrics(report))
        mlflow.log_dict(report, "evaluation/metrics.json")
        mlflow.log_figure(fig, "evaluation/evaluation.png")
        mlflow.log_figure(seg_fig, "evaluation/reliability_by_segment.png")
        for name in tables:
            mlflow.log_artifact(str(plots_dir / f"{name}.csv"), "evaluation")
    plt.close(fig)
    plt.close(seg_fig)
    log.info(
        "held-out %s: model %s; baselines %s; oracle AUC %s",
        summary["test_cutoffs"],
        report["model"],
        {k: v["roc_auc"] for k, v in report["baselines"].items()},
        report.get("oracle_roc_auc"),
    )
