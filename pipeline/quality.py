"""`churn benchmark quality`: the pipeline and its baselines on any transactions file, as a
rolling-origin backtest table (model and every baseline, per origin cutoff)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import ibis
import pandas as pd
import yaml

from pipeline.backtest import backtest
from pipeline.featurize import make_snapshots
from pipeline.ingest import ingest
from pipeline.params import IngestParams, Params, ParamsError

log = logging.getLogger(__name__)
COLUMNS = ["roc_auc", "pr_auc", "brier", "ece", "lift_top10"]


def load_mapping(path: Path, base: IngestParams) -> IngestParams:
    """An `ingest` section (columns, date_formats, ...) from its own YAML file, over the params'."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ParamsError(f"{path}: cannot read the mapping: {exc}") from exc
    raw = raw.get("ingest", raw)
    try:
        return IngestParams.model_validate({**base.model_dump(), **raw})
    except ValueError as exc:
        raise ParamsError(f"{path}: invalid mapping: {exc}") from exc


def quality_table(transactions: Path, params: Params) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        kept = Path(tmp) / "transactions.parquet"
        tally = ingest(transactions, params.ingest, kept, Path(tmp) / "quarantine.parquet")
        log.info("%s: %d rows kept, %d quarantined", transactions, tally.kept_rows, tally.quarantined_rows)
        snaps = make_snapshots(ibis.duckdb.connect().read_parquet(kept), params.featurize)
        return backtest(snaps.train, params, params.backtest.origins)


def render(table: pd.DataFrame) -> str:
    """One line per origin and scorer, then the mean over origins."""
    present = [c for c in COLUMNS if c in table.columns]
    shown = table[["cutoff", "scorer", "rows", "churn_rate", *present]].copy()
    mean = table.groupby("scorer", sort=False)[["churn_rate", *present]].mean().reset_index()
    mean.insert(0, "cutoff", "mean")
    mean.insert(2, "rows", table.groupby("scorer", sort=False)["rows"].sum().to_numpy())
    out = pd.concat([shown, mean], ignore_index=True)
    return out.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-")
