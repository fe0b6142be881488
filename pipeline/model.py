"""The churn model's view of a snapshot, shared by training, evaluation, explanation and scoring."""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.featurize import KEYS, LABEL


def feature_columns(snapshot: pd.DataFrame) -> list[str]:
    return [c for c in snapshot.columns if c not in (*KEYS, LABEL)]


def model_frame(snapshot: pd.DataFrame, features: list[str] | None = None) -> pd.DataFrame:
    """Feature matrix: text attributes become pandas categories (LightGBM refuses `str` columns
    and maps categories to the training levels it stored), numbers stay float64."""
    features = features or feature_columns(snapshot)
    missing = [c for c in features if c not in snapshot.columns]
    if missing:
        raise ValueError(f"snapshot lacks feature column(s) {missing} the model was trained on")
    frame = snapshot[features].copy()
    for column in features:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype("category")
    return frame


def load_booster(path: Path) -> lgb.Booster:
    return lgb.Booster(model_file=str(path))


def predict_proba(booster: lgb.Booster, snapshot: pd.DataFrame) -> np.ndarray:
    return booster.predict(model_frame(snapshot, booster.feature_name()))


def risk_deciles(p: np.ndarray) -> np.ndarray:
    """Decile of each row by descending probability: 1 holds the riskiest tenth. Ties keep row order."""
    order = np.argsort(-np.asarray(p), kind="stable")
    decile = np.empty(len(order), dtype=np.int64)
    decile[order] = np.arange(len(order)) * 10 // max(len(order), 1) + 1
    return decile
