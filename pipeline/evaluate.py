"""Stage evaluate: the trained model on the held-out cutoffs -> metrics, curves and figures.

Reports ROC AUC, PR AUC, Brier, log loss, and lift and capture in the top share of customers by
risk; with the simulator's truth, the oracle AUC of the same rows beside the model's.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from pipeline import tracking
from pipeline.featurize import LABEL
from pipeline.io import atomic_path, read_json, write_json
from pipeline.model import load_booster, predict_proba, risk_deciles
from pipeline.params import EvaluateParams

log = logging.getLogger(__name__)
CURVE_POINTS = 200


def top_share_lift(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """Lift (churn rate in the riskiest `share` / overall rate) and capture (share of all churners
    found there). Ties at the boundary are broken by order of appearance after a stable sort."""
    n_top = max(1, round(share * len(y)))
    top = np.argsort(-p, kind="stable")[:n_top]
    rate = y.mean()
    return float(y[top].mean() / rate), float(y[top].sum() / y.sum())


def classification_metrics(y: np.ndarray, p: np.ndarray, top_share: float) -> dict[str, float]:
    lift, capture = top_share_lift(y, p, top_share)
    pct = round(top_share * 100)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
        f"lift_top{pct}": lift,
        f"capture_top{pct}": capture,
        "churn_rate": float(y.mean()),
        "rows": float(len(y)),
    }


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


def curves(y: np.ndarray, p: np.ndarray, params: EvaluateParams) -> dict[str, pd.DataFrame]:
    fpr, tpr, _ = roc_curve(y, p)
    precision, recall, _ = precision_recall_curve(y, p)
    observed, predicted = calibration_curve(y, p, n_bins=params.calibration_bins, strategy="quantile")
    return {
        "roc": _thin(pd.DataFrame({"fpr": fpr, "tpr": tpr})),
        "pr": _thin(pd.DataFrame({"recall": recall[::-1], "precision": precision[::-1]})),
        "calibration": pd.DataFrame({"predicted": predicted, "observed": observed}),
        "lift": lift_table(y, p),
    }


def figure(tables: dict[str, pd.DataFrame], metrics: dict[str, float]) -> plt.Figure:
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    roc, pr, cal, lift = (tables[k] for k in ("roc", "pr", "calibration", "lift"))
    label = f"model AUC {metrics['roc_auc']:.3f}"
    if "oracle_roc_auc" in metrics:
        label += f" (oracle {metrics['oracle_roc_auc']:.3f})"
    axes[0].plot(roc["fpr"], roc["tpr"], label=label)
    axes[0].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[0].set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    axes[0].legend(loc="lower right")
    axes[1].plot(pr["recall"], pr["precision"])
    axes[1].axhline(metrics["churn_rate"], color="k", ls="--", lw=0.8)
    axes[1].set(title=f"Precision-recall (AP {metrics['pr_auc']:.3f})", xlabel="recall", ylabel="precision")
    axes[2].plot(cal["predicted"], cal["observed"], "o-")
    axes[2].plot([0, 1], [0, 1], "k--", lw=0.8)
    axes[2].set(title=f"Calibration (Brier {metrics['brier']:.3f})", xlabel="predicted", ylabel="observed")
    axes[3].bar(lift["decile"], lift["lift"])
    axes[3].axhline(1.0, color="k", ls="--", lw=0.8)
    axes[3].set(title="Lift by risk decile", xlabel="decile (1 = riskiest)", ylabel="lift")
    fig.tight_layout()
    return fig


def oracle_auc(held_out: pd.DataFrame, truth_path: Path | None) -> float | None:
    """AUC of the simulator's true probabilities on the same rows, when the truth covers them."""
    if truth_path is None or not Path(truth_path).exists():
        return None
    truth = pd.read_parquet(truth_path, columns=["customer_id", "cutoff", "true_p_no_order"])
    joined = held_out[["customer_id", "cutoff", LABEL]].merge(truth, on=["customer_id", "cutoff"], how="left")
    covered = joined["true_p_no_order"].notna()
    if covered.mean() < 0.99:
        log.warning("truth covers only %.1f%% of held-out rows: no oracle AUC", 100 * covered.mean())
        return None
    joined = joined[covered]
    return float(roc_auc_score(joined[LABEL], joined["true_p_no_order"]))


def main(
    params_path: Path,
    snapshots_path: Path,
    model_path: Path,
    train_meta: Path,
    run_path: Path,
    truth_path: Path | None,
    metrics_out: Path,
    plots_dir: Path,
) -> None:
    from pipeline.params import load_params

    params = load_params(params_path)
    test_cutoffs = pd.to_datetime(read_json(train_meta)["test_cutoffs"])
    snapshots = pd.read_parquet(snapshots_path)
    held_out = snapshots[snapshots["cutoff"].isin(test_cutoffs)].reset_index(drop=True)
    y = held_out[LABEL].to_numpy()
    p = predict_proba(load_booster(model_path), held_out)
    metrics = classification_metrics(y, p, params.evaluate.top_share)
    oracle = oracle_auc(held_out, truth_path)
    if oracle is not None:
        metrics["oracle_roc_auc"] = oracle
        metrics["roc_auc_gap_to_oracle"] = oracle - metrics["roc_auc"]
    metrics = {k: round(v, 6) for k, v in metrics.items()}
    write_json(metrics, metrics_out)
    tables = curves(y, p, params.evaluate)
    plots_dir.mkdir(parents=True, exist_ok=True)
    for name, table in tables.items():
        with atomic_path(plots_dir / f"{name}.csv") as tmp:
            table.round(6).to_csv(tmp, index=False)
    fig = figure(tables, metrics)
    with atomic_path(plots_dir / "evaluation.png") as tmp:
        fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_id=read_json(run_path)["run_id"]):
        mlflow.log_metrics({f"test_{k}": v for k, v in metrics.items()})
        mlflow.log_figure(fig, "evaluation/evaluation.png")
        for name in tables:
            mlflow.log_artifact(str(plots_dir / f"{name}.csv"), "evaluation")
    plt.close(fig)
    log.info("held-out %s: %s", [c.date().isoformat() for c in test_cutoffs], metrics)
