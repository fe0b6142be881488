"""Stage score: scoring snapshot + model + SHAP -> the weekly churn-risk CSV for CRM import.

One row per eligible customer, sorted by customer id, validated against the file contract before
it is written; the file is named by the ISO week of the scoring date.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.cutoffs import iso_week_label
from pipeline.io import atomic_path, read_json
from pipeline.model import CHAMPION_FILE, ChurnModel, risk_deciles
from pipeline.params import ScoreParams
from pipeline.reasons import top_reasons
from pipeline.tables import SCORES, validate

log = logging.getLogger(__name__)


def risk_tiers(p: np.ndarray, params: ScoreParams) -> np.ndarray:
    t = params.risk_tiers
    return np.where(p >= t.high, "high", np.where(p >= t.medium, "medium", "low"))


def score_table(
    snapshot: pd.DataFrame, p: np.ndarray, contrib: pd.DataFrame, model_version: str, params: ScoreParams
) -> pd.DataFrame:
    if not snapshot["customer_id"].equals(contrib["customer_id"]):
        raise ValueError("SHAP contributions are not aligned with the scoring snapshot; rerun explain")
    score_date = pd.Timestamp(snapshot["cutoff"].iloc[0]).date().isoformat()
    reasons = top_reasons(contrib, snapshot, params.n_reasons)
    table = pd.DataFrame(
        {
            "customer_id": snapshot["customer_id"].astype(str).to_numpy(),
            "score_date": score_date,
            "churn_probability": np.round(p, 6),
            "risk_tier": risk_tiers(p, params),
            "risk_decile": risk_deciles(p),
        }
    )
    for k in range(3):
        table[f"reason_{k + 1}"] = [r[k] if k < len(r) else "" for r in reasons]
    table["model_version"] = model_version
    return table.sort_values("customer_id", kind="stable", ignore_index=True)


def main(params_path: Path, snapshot_path: Path, model_dir: Path, shap_path: Path, scores_dir: Path) -> Path:
    from pipeline.params import load_params

    params = load_params(params_path)
    snapshot = pd.read_parquet(snapshot_path)
    if snapshot.empty:
        raise ValueError(f"{snapshot_path}: no eligible customers to score")
    champion = read_json(model_dir / CHAMPION_FILE)
    p = ChurnModel.load(model_dir).probability(snapshot)
    version = f"{champion['registered_model']}/{champion['model_version']}"
    table = score_table(snapshot, p, pd.read_parquet(shap_path), version, params.score)
    table = validate(table, SCORES, "weekly score file")
    out = scores_dir / f"churn_scores_{iso_week_label(pd.Timestamp(table['score_date'].iloc[0]).date())}.csv"
    with atomic_path(out) as tmp:
        table.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n", float_format="%.6f")
    log.info("%s: %d customers, tiers %s", out, len(table), table["risk_tier"].value_counts().to_dict())
    return out
