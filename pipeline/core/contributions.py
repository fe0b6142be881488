"""SHAP contributions of the churn model, in log-odds: read by explain, monitor, score and batch
scoring on Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.core.model import ChurnModel, model_frame

BASE = "base_value"


def contributions(model: ChurnModel, snapshot: pd.DataFrame, chunk_rows: int = 50_000) -> pd.DataFrame:
    """One row per customer: each feature's SHAP value (log-odds) and the base value.
    LightGBM puts the base value in the last column. A booster boosted from a BTYD column's
    log-odds adds them to its trees' score: that term's exact Shapley value, its deviation from
    its training mean, goes to the column it was read from, and the mean to the base value, so
    each row still sums to the booster's log-odds. Rows go through in chunks, so memory stays at a
    chunk's matrices whatever the snapshot's size; within a chunk LightGBM spreads rows over its
    threads (OpenMP), and past one machine each Spark partition is a chunk (`pipeline.spark`)."""
    booster, calibrator = model.booster, model.calibrator
    features = booster.feature_name()
    parts = []
    for start in range(0, len(snapshot), chunk_rows):
        rows = snapshot.iloc[start : start + chunk_rows]
        parts.append(booster.predict(model_frame(rows, features), pred_contrib=True))
    raw = np.vstack(parts) if parts else np.empty((0, len(features) + 1))
    frame = pd.DataFrame(raw[:, :-1], columns=features)
    frame.insert(0, "customer_id", snapshot["customer_id"].to_numpy())
    frame[BASE] = raw[:, -1]
    if calibrator.boost_from:
        frame[calibrator.boost_from] += calibrator.offset(snapshot) - calibrator.offset_mean
        frame[BASE] += calibrator.offset_mean
    return frame


def evenly_spaced(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    """A fixed subset of `rows` rows spread over the whole frame (its order is customer id)."""
    take = np.unique(np.linspace(0, len(frame) - 1, min(rows, len(frame))).round().astype(int))
    return frame.iloc[take].reset_index(drop=True)
