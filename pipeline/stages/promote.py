"""Stage promote: the promotion gate. The new model becomes `champion` in the registry only if it
beats every baseline on held-out ROC AUC and PR AUC and its calibration error is within bounds;
otherwise the run records why and the old champion stays. Either way the champion's model folder
is materialised for explain and score."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.core import tracking
from pipeline.core.errors import PipelineError
from pipeline.core.io import read_json, write_json
from pipeline.core.model import CHAMPION_FILE, MODEL_ARTIFACTS, MODEL_FILES
from pipeline.core.params import PromoteParams

log = logging.getLogger(__name__)
ALIAS = "champion"
RANKING_METRICS = ("roc_auc", "pr_auc")


class PromoteError(PipelineError):
    """No model can be scored with: the new one failed the gate and there is no champion."""


def gate(report: dict[str, Any], params: PromoteParams) -> list[str]:
    """Why the evaluated model may not become champion; an empty list when it passes."""
    model = report["model"]
    missing = sorted(set(params.must_beat) - set(report["baselines"]))
    refusals = [f"baseline {name} was not evaluated" for name in missing]
    refusals += [
        f"{metric} {model[metric]:.4f} does not beat baseline {name} ({scores[metric]:.4f})"
        for name, scores in sorted(report["baselines"].items())
        if name in params.must_beat
        for metric in RANKING_METRICS
        if not model[metric] > scores[metric]
    ]
    if model["ece"] > params.max_ece:
        refusals.append(f"ECE {model['ece']:.4f} is above promote.max_ece = {params.max_ece}")
    return refusals


def _copy_model(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copyfile(source / name, target / name)


def main(params_path: Path, judged_path: Path, candidate_dir: Path, run_path: Path, out_dir: Path) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    report, run = read_json(judged_path), read_json(run_path)
    refusals = gate(report, params.promote)
    tracking.configure(params.mlflow.experiment)
    client = MlflowClient()
    name = run["registered_model"]
    with mlflow.start_run(run_id=tracking.run_id_for(run)):
        mlflow.set_tag("promotion", "refused" if refusals else "promoted")
        mlflow.set_tag("promotion_refusals", "; ".join(refusals) or "none")
    if not refusals:
        client.set_registered_model_alias(name, ALIAS, run["model_version"])
        _copy_model(candidate_dir, out_dir)
        champion = {"model_version": run["model_version"]}
        log.info("model version %s promoted to %s", run["model_version"], ALIAS)
    else:
        try:
            current = client.get_model_version_by_alias(name, ALIAS)
        except MlflowException:
            raise PromoteError(
                f"model version {run['model_version']} failed the promotion gate and '{name}' has no "
                f"{ALIAS} to score with:\n  " + "\n  ".join(refusals)
            ) from None
        downloaded = Path(
            mlflow.artifacts.download_artifacts(run_id=current.run_id, artifact_path=MODEL_ARTIFACTS)
        )
        _copy_model(downloaded, out_dir)
        champion = {"model_version": str(current.version)}
        log.warning(
            "model version %s refused (%s); %s stays version %s",
            run["model_version"],
            "; ".join(refusals),
            ALIAS,
            current.version,
        )
    write_json(
        {
            **champion,
            tracking.MODEL_DIGEST_TAG: tracking.folder_digest(out_dir, MODEL_FILES),
            "registered_model": name,
            "candidate_version": run["model_version"],
            "refusals": refusals,
        },
        out_dir / CHAMPION_FILE,
    )
