"""Shared fixtures: small hand-made data, typed params, and one MLflow store per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

from pipeline.params import FeaturizeParams, Params, load_params

ROOT = Path(__file__).resolve().parents[1]


def featurize_params(**changes: object) -> FeaturizeParams:
    """A small, fixed featurize spec for tests (not the project's params.yaml), with changes."""
    base = {
        "horizon_days": 90,
        "cutoff_every_days": 14,
        "n_cutoffs": 1,
        "eligibility_lookback_days": 365,
        "windows_days": [30],
        "trend_days": 30,
        "btyd_fit_customers": 1000,
        "horizon_candidates": [30, 90],
        "adapt_to_history": False,
    }
    return FeaturizeParams(**{**base, **changes})


# CI explores the same examples every run, so a red build is reproducible from its log
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SQLite store costs seconds of migrations: one per session, never the project's own."""
    store = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def frame(text: str) -> pd.DataFrame:
    """A table written as whitespace-separated columns, the first line the header."""
    rows = [line.split() for line in text.strip().splitlines()]
    return pd.DataFrame(rows[1:], columns=rows[0])


def canonical(text: str) -> pd.DataFrame:
    """Canonical transactions from a text table: customer_id, order_ts (ISO, 'T' between date and
    time), amount, and any optional columns."""
    df = frame(text)
    df["order_ts"] = pd.to_datetime(df["order_ts"]).astype("datetime64[us]")
    df["amount"] = df["amount"].astype(float)
    for column in ("quantity", "unit_price"):
        if column in df:
            df[column] = df[column].astype(float)
    df.insert(0, "source_row", range(1, len(df) + 1))
    df["source_row"] = df["source_row"].astype("int64")
    return df


@pytest.fixture(scope="session")
def small_shop(tmp_path_factory) -> pd.DataFrame:
    """A small simulated shop through ingest: every optional column, returns included."""
    import pyarrow.csv as pacsv

    from pipeline.ingest import ingest
    from pipeline.simulate import simulate
    from tests.test_simulate import SMALL

    tmp = tmp_path_factory.mktemp("shop")
    raw, _, _ = simulate(
        SMALL.model_copy(update={"n_customers": 300}), featurize_params(horizon_days=60, n_cutoffs=3)
    )
    pacsv.write_csv(raw, tmp / "raw.csv")
    ingest(tmp / "raw.csv", load_params(ROOT / "params.yaml").ingest, tmp / "kept.parquet", tmp / "q.parquet")
    return pd.read_parquet(tmp / "kept.parquet")
