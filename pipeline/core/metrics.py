"""Metrics of a churn score against outcomes: ranking (ROC AUC, PR AUC, lift and capture in the
riskiest share) and, for probabilities, calibration (Brier, log loss, ECE). Stages and commands
that judge a scorer share these."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from pipeline.core.calibration import expected_calibration_error


def top_share_lift(y: np.ndarray, p: np.ndarray, share: float) -> tuple[float, float]:
    """Lift (churn rate in the riskiest `share` / overall rate) and capture (share of all churners
    found there). Ties at the boundary are broken by order of appearance after a stable sort."""
    n_top = max(1, round(share * len(y)))
    top = np.argsort(-p, kind="stable")[:n_top]
    rate = y.mean()
    return float(y[top].mean() / rate), float(y[top].sum() / y.sum())


def classification_metrics(
    y: np.ndarray, p: np.ndarray, top_share: float, probability: bool = True
) -> dict[str, float]:
    """Ranking metrics for any score; calibration metrics too when the score is a probability."""
    lift, capture = top_share_lift(y, p, top_share)
    pct = round(top_share * 100)
    metrics = {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        f"lift_top{pct}": lift,
        f"capture_top{pct}": capture,
    }
    if probability:
        metrics |= {
            "brier": float(brier_score_loss(y, p)),
            "log_loss": float(log_loss(y, np.clip(p, 1e-7, 1 - 1e-7), labels=[0, 1])),
            "ece": expected_calibration_error(y, p),
        }
    return metrics


def best_baseline(baselines: Mapping[str, Mapping[str, float]], metric: str = "roc_auc") -> tuple[str, float]:
    """The baseline with the highest `metric`, and that value (ties: the first listed)."""
    name = max(baselines, key=lambda b: baselines[b][metric])
    return name, baselines[name][metric]
