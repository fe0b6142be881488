"""Stage train: training snapshots -> LightGBM churn model, recorded and registered in MLflow.

The latest cutoff(s) are held out for evaluation. Training uses only cutoffs whose label window has
closed by the first held-out cutoff, so no training label saw anything after it; the latest of those
stops boosting early. Customers recur across cutoffs, so a random split would leak.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

import lightgbm as lgb
import mlflow
import numpy as np
import pandas as pd
from mlflow.data.dataset_source_registry import resolve_dataset_source
from mlflow.data.meta_dataset import MetaDataset
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from pipeline.core import registry, tracking
from pipeline.core.columns import HORIZON, KEYS, LABEL
from pipeline.core.fitting import (
    Fitted,
    capped_mask,
    fit_churn_model,
    fitted_by,
    preflight,
    select,
    split_snapshots,
)
from pipeline.core.io import atomic_path, write_json
from pipeline.core.model import (
    CALIBRATOR_FILE,
    EVALUATION_DIR,
    MODEL_ARTIFACTS,
    MODEL_FILE,
    MODEL_FILES,
    SUMMARY_FILE,
    label_horizon,
    model_frame,
)
from pipeline.core.params import Params
from pipeline.core.partitions import read_snapshots
from pipeline.core.runs import params_digest, run_kind

log = logging.getLogger(__name__)


def _dates(cutoffs: list[pd.Timestamp]) -> list[str]:
    return [c.date().isoformat() for c in cutoffs]


def save_model(fitted: Fitted, folder: Path, summary: dict[str, Any]) -> None:
    with atomic_path(folder / MODEL_FILE) as tmp:
        fitted.booster.save_model(str(tmp))
    write_json(fitted.calibrator.to_dict(), folder / CALIBRATOR_FILE)
    write_json(summary, folder / SUMMARY_FILE)


def _about(fitted: Fitted, rows: int) -> dict[str, Any]:
    return {
        "best_iteration": fitted.best_iteration,
        "rows": rows,
        "calibration": fitted.calibrator.method,
        "calibration_cutoffs": _dates(fitted.calibration_cutoffs),
        "calibration_log_loss": {k: round(v, 6) for k, v in fitted.calibration_losses.items()},
        **{k: round(v, 6) for k, v in fitted.valid_scores.items()},
    }


def main(params_path: Path, snapshots_path: Path, out_dir: Path, run_out: Path) -> None:
    from pipeline.core.params import load_params

    params: Params = load_params(params_path)
    # the keys and labels of every row first; then only the rows the two fits learn from
    keys = read_snapshots(snapshots_path, columns=[*KEYS, LABEL, HORIZON])
    split = split_snapshots(keys, params.train)
    preflight({"training": select(keys, split.train), "test": select(keys, split.test)}, params.train)
    every = sorted(pd.Timestamp(c) for c in keys["cutoff"].unique())
    n_train, n_every = int(keys["cutoff"].isin(split.train).sum()), len(keys)
    rows = read_snapshots(snapshots_path, mask=capped_mask(keys, [split.train, every], params.train))
    # judged: trained on what was known at the test cutoffs; scores: every closed label
    judged = fit_churn_model(select(rows, split.train), params.train, total=n_train)
    scoring = fit_churn_model(rows, params.train, total=n_every)
    out_dir.mkdir(parents=True, exist_ok=True)
    common = {
        "features": scoring.booster.feature_name(),
        "horizon_days": label_horizon(keys),
        "train_cutoffs": _dates(split.train),
        "test_cutoffs": _dates(split.test),
        # what the models were fitted from, so a stage can tell whether refitting would repeat them
        **fitted_by(params.train, snapshots_path),
    }
    judged_summary = {**common, **_about(judged, n_train)}
    save_model(judged, out_dir / EVALUATION_DIR, judged_summary)
    summary = {**common, "scoring_cutoffs": _dates(every), **_about(scoring, n_every)}
    save_model(scoring, out_dir, summary)
    log.info(
        "judged model: %d rounds on %d rows (%s); scoring model: %d rounds on %d rows; calibration %s",
        judged.best_iteration,
        n_train,
        judged.valid_scores,
        scoring.best_iteration,
        n_every,
        scoring.calibrator.method,
    )
    identity = {
        "run": run_kind(os.environ).label,
        "params_sha256": params_digest(params_path),
    }
    write_json(
        record_run(
            params=params,
            booster=scoring.booster,
            train=rows,
            snapshots_path=snapshots_path,
            model_dir=out_dir,
            summary=summary,
            identity=identity,
        ),
        run_out,
    )


def snapshot_dataset(train: pd.DataFrame, snapshots_path: Path, summary: dict[str, Any]) -> MetaDataset:
    """The training snapshot as an MLflow dataset: its file, rows and cutoffs (from the scoring
    model's `summary`), content digest (`snapshots_digest`) and schema (from the rows `train` the
    model learnt from). (MLflow's pandas dataset infers the schema row by row in Python: 9 s for
    200k rows.)"""
    with warnings.catch_warnings():
        # MLflow registers its local source for two schemes and warns that a path matches both: the
        # same class either way
        warnings.filterwarnings("ignore", "The specified dataset source can be interpreted in multiple ways")
        source = resolve_dataset_source(str(Path(snapshots_path).resolve()))
    return MetaDataset(
        source=source,
        name=f"training-snapshots ({summary['rows']} rows, cutoffs {summary['scoring_cutoffs'][0]}"
        f"..{summary['scoring_cutoffs'][-1]})",
        digest=summary["snapshots_sha256"][:16],
        schema=infer_signature(train.head(1000).astype({LABEL: "float64"})).inputs,
    )


def record_run(
    params: Params,
    booster: lgb.Booster,
    train: pd.DataFrame,
    snapshots_path: Path,
    model_dir: Path,
    summary: dict[str, Any],
    identity: dict[str, str],
) -> dict[str, str]:
    """One MLflow run per training: params, metrics, lineage, the dataset, the model folder as
    artifacts (booster, calibrator, summary) and the booster registered with its signature. The
    run's name and tags tell runs apart: production or the experiment's name, the params digest,
    and the champion the candidate would replace."""
    tracking.configure(params.mlflow.experiment)
    current = registry.champion(MlflowClient(), params.mlflow.registered_model)
    parent = str(current.version) if current is not None else "none"
    name = f"train-{summary['test_cutoffs'][-1]}-{identity['run']}-{identity['params_sha256'][:8]}"
    with mlflow.start_run(run_name=name):
        mlflow.set_tags({**tracking.lineage_tags(), **identity, "parent_champion": parent})
        mlflow.log_params({f"train.{k}": v for k, v in params.train.model_dump().items()})
        mlflow.log_params({f"featurize.{k}": v for k, v in params.featurize.model_dump().items()})
        mlflow.log_params(
            {
                "best_iteration": summary["best_iteration"],
                "n_features": len(summary["features"]),
                "calibration": summary["calibration"],
            }
        )
        # the early-stopping customers' scores, grouped as `valid/` beside evaluate's `test/`
        mlflow.log_metrics(
            {
                f"valid/{k.removeprefix('valid_')}": v
                for k, v in summary.items()
                if k.startswith("valid_") and isinstance(v, float)
            }
        )
        mlflow.log_artifacts(str(model_dir), MODEL_ARTIFACTS)
        mlflow.log_input(snapshot_dataset(train, snapshots_path, summary), context="training")
        x = model_frame(train.head(200), booster.feature_name())
        signature = infer_signature(
            x.astype({c: "string" for c in x.select_dtypes("category")}), np.zeros(len(x))
        )
        info = mlflow.lightgbm.log_model(
            booster,
            name="model",
            signature=signature,
            pip_requirements=tracking.model_requirements(),
            registered_model_name=params.mlflow.registered_model,
        )
        digest = tracking.folder_digest(model_dir, MODEL_FILES)
        mlflow.set_tags(
            {tracking.MODEL_DIGEST_TAG: digest, tracking.VERSION_TAG: str(info.registered_model_version)}
        )
    return {
        "experiment": params.mlflow.experiment,
        "registered_model": params.mlflow.registered_model,
        "model_version": str(info.registered_model_version),
        tracking.MODEL_DIGEST_TAG: digest,
    }
