"""Stage explain: exact TreeSHAP contributions for an evenly spaced sample of the scoring snapshot,
and the global figures drawn from them. (The score file's per-customer reasons are computed by the
score stage, for the rows that get reasons, with the same `contributions`.)

Contributions come from LightGBM's own `pred_contrib` (exact TreeSHAP, what shap.TreeExplainer
calls for LightGBM too); they are in log-odds and, with the base value, sum to the raw score.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

from pipeline.core.contributions import BASE, contributions, evenly_spaced

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import shap

from pipeline.core import tracking
from pipeline.core.glossary import feature_label
from pipeline.core.io import atomic_path, permissions_of, read_json, write_parquet
from pipeline.core.model import ChurnModel, model_frame

log = logging.getLogger(__name__)


def explanation(contrib: pd.DataFrame, snapshot: pd.DataFrame) -> shap.Explanation:
    """A shap.Explanation of the explained rows, for the global figures, under the features'
    readable names."""
    features = [c for c in contrib.columns if c not in ("customer_id", BASE)]
    data = model_frame(snapshot, features)
    numeric = data.apply(lambda s: s.cat.codes if isinstance(s.dtype, pd.CategoricalDtype) else s)
    return shap.Explanation(
        values=contrib[features].to_numpy(),
        base_values=contrib[BASE].to_numpy(),
        data=numeric.to_numpy(dtype=float),
        feature_names=[feature_label(f) for f in features],
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
    from pipeline.core.params import load_params

    params = load_params(params_path)
    snapshot = evenly_spaced(pd.read_parquet(snapshot_path), params.explain.sample_rows)
    contrib = contributions(ChurnModel.load(model_dir), snapshot, params.explain.chunk_rows)
    with permissions_of(snapshot_path):
        write_parquet(contrib, shap_out)
    figs = figures(explanation(contrib, snapshot))
    for name, fig in figs.items():
        with atomic_path(plots_dir / f"shap_{name}.png") as tmp:
            fig.savefig(tmp, format="png", dpi=90, metadata={"Software": None})
    tracking.configure(params.mlflow.experiment)
    with mlflow.start_run(run_id=tracking.run_id_for(read_json(run_path))):
        for name, fig in figs.items():
            mlflow.log_figure(fig, f"explain/shap_{name}.png")
        mean_abs = contrib.drop(columns=["customer_id", BASE]).abs().mean().sort_values(ascending=False)
        mlflow.log_dict({k: round(float(v), 6) for k, v in mean_abs.items()}, "explain/mean_abs_shap.json")
    for fig in figs.values():
        plt.close(fig)
    log.info("explained %d customers; top drivers %s", len(contrib), list(mean_abs.index[:5]))
