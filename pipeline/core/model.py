"""The churn model's view of a snapshot, shared by training, evaluation, explanation and scoring."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.core.calibration import Calibrator, initial_score
from pipeline.core.columns import HORIZON, KEYS, LABEL
from pipeline.core.errors import SnapshotError
from pipeline.core.io import read_json


def feature_columns(snapshot: pd.DataFrame) -> list[str]:
    return [c for c in snapshot.columns if c not in (*KEYS, HORIZON, LABEL)]


def label_horizon(snapshot: pd.DataFrame) -> int:
    """The label window (days) the snapshot was built with."""
    values = snapshot[HORIZON].unique()
    if len(values) != 1:
        raise SnapshotError(f"a snapshot must have one label horizon, found {sorted(values)}")
    return int(values[0])


def model_frame(snapshot: pd.DataFrame, features: list[str] | None = None) -> pd.DataFrame:
    """Feature matrix: text attributes become pandas categories (LightGBM refuses `str` columns
    and maps categories to the training levels it stored), numbers stay float64."""
    features = features or feature_columns(snapshot)
    missing = [c for c in features if c not in snapshot.columns]
    if missing:
        raise SnapshotError(f"snapshot lacks feature column(s) {missing} the model was trained on")
    frame = snapshot[features].copy()
    for column in features:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype("category")
    return frame


def booster_probability(booster: lgb.Booster, snapshot: pd.DataFrame, boost_from: str | None) -> np.ndarray:
    """The booster's probability: its trees' raw score plus the initial score it was boosted from
    (the log-odds of the `boost_from` column, none when empty)."""
    raw = booster.predict(model_frame(snapshot, booster.feature_name()), raw_score=True)
    return 1.0 / (1.0 + np.exp(-(np.asarray(raw) + initial_score(snapshot, boost_from))))


MODEL_FILE = "model.txt"
CALIBRATOR_FILE = "calibrator.json"
SUMMARY_FILE = "train.json"
CHAMPION_FILE = "champion.json"  # in the champion's folder: its registry version and model digest
MODEL_FILES = (MODEL_FILE, CALIBRATOR_FILE, SUMMARY_FILE)  # what a model folder holds and its digest covers
EVALUATION_DIR = "evaluation"  # in a candidate folder: the model judged on the test cutoffs
MODEL_ARTIFACTS = "churn_model"  # a training run's copy of its model folder, for promotion and rollback


@dataclass(frozen=True)
class ChurnModel:
    """A LightGBM booster and the calibrator fitted on its held-out predictions: one model folder."""

    booster: lgb.Booster
    calibrator: Calibrator

    @classmethod
    def load(cls, folder: Path) -> ChurnModel:
        folder = Path(folder)
        booster = lgb.Booster(model_file=str(folder / MODEL_FILE))
        return cls(booster, Calibrator.from_dict(read_json(folder / CALIBRATOR_FILE)))

    def payload(self) -> tuple[str, dict]:
        """The model as plain text and numbers, to ship to other processes (Spark executors)."""
        return self.booster.model_to_string(), self.calibrator.to_dict()

    @classmethod
    def from_payload(cls, payload: tuple[str, dict]) -> ChurnModel:
        text, calibrator = payload
        return cls(lgb.Booster(model_str=text), Calibrator.from_dict(calibrator))

    def raw_probability(self, snapshot: pd.DataFrame) -> np.ndarray:
        return booster_probability(self.booster, snapshot, self.calibrator.boost_from)

    def probability(self, snapshot: pd.DataFrame) -> np.ndarray:
        return self.calibrator.apply(self.raw_probability(snapshot), snapshot)


def risk_deciles(p: np.ndarray) -> np.ndarray:
    """Decile of each row by descending probability: 1 holds the riskiest tenth. Ties keep row order."""
    order = np.argsort(-np.asarray(p), kind="stable")
    decile = np.empty(len(order), dtype=np.int64)
    decile[order] = np.arange(len(order)) * 10 // max(len(order), 1) + 1
    return decile
