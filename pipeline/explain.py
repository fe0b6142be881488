"""Stage explain: exact TreeSHAP contributions for the scoring snapshot, and global figures.

Contributions come from LightGBM's own `pred_contrib` (exact TreeSHAP, what shap.TreeExplainer
calls for LightGBM too); they are in log-odds and, with the base value, sum to the raw score.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import lightgbm as lgb
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import shap

from pipeline import tracking
from pipeline.io import atomic_path, inherit_permissions, read_json, write_parquet
from pipeline.model import ChurnModel, model_frame

log = logging.getLogger(__name__)
BASE = "base_value"


def contributions(booster: lgb.Booster, snapshot: pd.DataFrame) -> pd.DataFrame:
    """One row per customer: each feature's SHAP value (log-odds) and the base value.
    LightGBM puts the base value in the last column."""
    features = booster.feature_name()
    raw = booster.predict(model_frame(snapshot, features), pred_contrib=True)
    frame = pd.DataFrame(raw[:, :-1], columns=features)
    frame.insert(0, "customer_id", snapshot["customer_id"].to_numpy())
    frame[BASE] = raw[:, -1]
    return frame


def explanation(contrib: pd.DataFrame, snapshot: pd.DataFrame, rows: int) -> shap.Explanation:
    """A shap.Explanation of a fixed, evenly spaced subset of rows, for the global figures."""
    features = [c for c in contrib.columns if c not in ("customer_id", BASE)]
    take = np.unique(np.linspace(0, len(contrib) - 1, min(rows, len(contrib))).round().astype(int))
    data = model_frame(snapshot.iloc[take], features)
    numeric = data.apply(lambda s: s.cat.codes if isinstance(s.dtype, pd.CategoricalDtype) else s)
    return shap.Explanation(
        values=contrib.iloc[take][features].to_numpy(),
        base_values=contrib.iloc[take][BASE].to_numpy(),
        data=numeric.to_numpy(dtype=float),
        feature_names=features,
    )


def figures(exp: shap.Explanation) -> dict[str, plt.Figure]:
    out = {}
    for name, draw in (("beeswarm", shap.plots.beeswarm), ("bar", shap.plots.bar)):
        # the beeswarm shuffles its points with numpy's global generator: seed it for stable bytes
        np.random.seed(0)
        plt.figure()
        draw(exp, max_display=15, show=False)
        fig = plt.gcf()
        fig.set_size_inches(9, 6)
        fig.tight_layout()
        out[name] = fig
    return out


def main(
    params_path: Path, snapshot_path: Path, model_dir: Path, run_path: Path, shap_out: Path, plots_dir: Path
) -> None:
    from pipeline.params import load_params

    params = load_params(params_path)
    inherit_permissions(snapshot_path)
    snapshot = pd.read_parquet(snapshot_path)
    booster = ChurnModel.load(model_dir).booster
    contrib = contributions(booster, snapshot)
    write_parquet(contrib, shap_out)
    figs = figures(explanation(contrib, snapshot, params.explain.beeswarm_rows))
    plots_dir.mkdir(parents=True, exist_ok=True)
    for name, fig in figs.items():
        with atomic_path(plots_dir / f"shap_{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_id=read_json(run_path)["run_id"]):
        for name, fig in figs.items():
            mlflow.log_figure(fig, f"explain/shap_{name}.png")
        mean_abs = contrib.drop(columns=["customer_id", BASE]).abs().mean().sort_values(ascending=False)
        mlflow.log_dict({k: round(float(v), 6) for k, v in mean_abs.items()}, "explain/mean_abs_shap.json")
    for fig in figs.values():
        plt.close(fig)
    log.info("explained %d customers; top drivers %s", len(contrib), list(mean_abs.index[:5]))
