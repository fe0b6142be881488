"""Stage promote: the promotion gate. The new model becomes `champion` in the registry only if it
beats every baseline on held-out ROC AUC and PR AUC, is not worse than the current champion on the
same rows beyond `promote.champion_tolerance`, and its calibration error is within bounds. The
verdict goes onto the run and onto the model version (description and tags). Only a production
run moves the alias (`core/runs.py`): an experiment records what the gate said and leaves the
champion where it is. Either way the champion's model folder is materialised for explain and
score."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.core import registry, tracking
from pipeline.core.errors import PipelineError
from pipeline.core.io import read_json, write_json
from pipeline.core.metrics import best_baseline
from pipeline.core.model import CHAMPION_FILE, MODEL_FILES
from pipeline.core.params import PromoteParams
from pipeline.core.runs import RunKind, run_kind

log = logging.getLogger(__name__)
RANKING_METRICS = ("roc_auc", "pr_auc")


class PromoteError(PipelineError):
    """No model can be scored with: the new one was not promoted and there is no champion."""


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
    champion = report.get("champion")
    if champion is not None and champion["compared"]:
        refusals += [
            f"{metric} {model[metric]:.4f} is below champion version {champion['version']} "
            f"({champion[metric]:.4f}) by more than promote.champion_tolerance = {params.champion_tolerance}"
            for metric in RANKING_METRICS
            if model[metric] < champion[metric] - params.champion_tolerance
        ]
    if model["ece"] > params.max_ece:
        refusals.append(f"ECE {model['ece']:.4f} is above promote.max_ece = {params.max_ece}")
    return refusals


def verdict(report: dict[str, Any], refusals: list[str], kind: RunKind, promoted: bool) -> tuple[str, dict]:
    """The gate's verdict as the model version's description and tags."""
    model, baselines = report["model"], report["baselines"]
    best, best_auc = best_baseline(baselines)
    gap = model["roc_auc"] - best_auc
    tags = {
        "gate": "refused" if refusals else "passed",
        "promoted": str(promoted).lower(),
        "run": kind.label,
        "roc_auc": f"{model['roc_auc']:.4f}",
        "pr_auc": f"{model['pr_auc']:.4f}",
        "ece": f"{model['ece']:.4f}",
        "roc_auc_gap_to_best_baseline": f"{gap:+.4f}",
    }
    lines = [
        f"Held out: {report['rows']} customers, churn rate {report['churn_rate']:.3f}. ROC AUC "
        f"{model['roc_auc']:.4f}, PR AUC {model['pr_auc']:.4f}, ECE {model['ece']:.4f}; best baseline "
        f"{best} {best_auc:.4f} ({gap:+.4f})."
    ]
    champion = report.get("champion")
    if champion is not None:
        tags["compared_with_champion"] = champion["version"]
        if champion["compared"]:
            tags["roc_auc_gap_to_champion"] = f"{model['roc_auc'] - champion['roc_auc']:+.4f}"
            lines.append(
                f"Champion version {champion['version']} on the same rows: ROC AUC "
                f"{champion['roc_auc']:.4f}, PR AUC {champion['pr_auc']:.4f}."
            )
        else:
            lines.append(f"Not compared with champion version {champion['version']}: {champion['why']}.")
    if refusals:
        lines.append("Refused: " + "; ".join(refusals) + ".")
    elif promoted:
        lines.append("Passed the gate and promoted to champion.")
    else:
        lines.append(f"Passed the gate; not promoted, as experiment {kind.label} publishes nothing.")
    return " ".join(lines), tags


def _copy_model(source: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for name in MODEL_FILES:
        shutil.copyfile(source / name, target / name)


def main(params_path: Path, judged_path: Path, candidate_dir: Path, run_path: Path, out_dir: Path) -> None:
    from pipeline.core.params import load_params

    params = load_params(params_path)
    kind = run_kind(os.environ)
    report, run = read_json(judged_path), read_json(run_path)
    refusals = gate(report, params.promote)
    promoted = not refusals and kind.publishes
    tracking.configure(params.mlflow.experiment)
    client = MlflowClient()
    name = run["registered_model"]
    description, tags = verdict(report, refusals, kind=kind, promoted=promoted)
    with mlflow.start_run(run_id=tracking.run_id_for(run)):
        mlflow.set_tag("promotion", "promoted" if promoted else "refused" if refusals else "not promoted")
        mlflow.set_tag("promotion_refusals", "; ".join(refusals) or "none")
    registry.record_verdict(client, name, run["model_version"], description, tags)
    if promoted:
        client.set_registered_model_alias(name, registry.ALIAS, run["model_version"])
        _copy_model(candidate_dir, out_dir)
        champion = {"model_version": run["model_version"]}
        log.info("model version %s promoted to %s", run["model_version"], registry.ALIAS)
    else:
        current = registry.champion(client, name)
        if current is None:
            why = refusals or [f"experiment {kind.label} may not promote; a production run (dvc repro) may"]
            raise PromoteError(
                f"model version {run['model_version']} was not promoted and '{name}' has no "
                f"{registry.ALIAS} to score with:\n  " + "\n  ".join(why)
            )
        _copy_model(registry.model_folder(current), out_dir)
        champion = {"model_version": str(current.version)}
        log.warning(
            "model version %s not promoted (%s); %s stays version %s",
            run["model_version"],
            "; ".join(refusals) or f"experiment {kind.label}",
            registry.ALIAS,
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
