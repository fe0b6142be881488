"""MLflow wiring: one tracking store per project, and the facts that tie a run to the code and data."""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow

STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
# what loading a logged booster needs. Stated, because MLflow's inference of them starts a Python
# process that imports the model: 4.5 s of the train stage's 27 s on the sample
MODEL_REQUIREMENTS = ("mlflow", "lightgbm", "narwhals", "numpy", "pandas", "scikit-learn", "scipy")


def project_root(start: Path | None = None) -> Path:
    """The folder holding dvc.yaml: DVC_ROOT inside a DVC stage, else the nearest one upwards."""
    if os.environ.get("DVC_ROOT"):
        return Path(os.environ["DVC_ROOT"]).resolve()
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "dvc.yaml").exists():
            return folder
    return here


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite store at one absolute path in the project root.
    (MLflow's own default resolves against the working directory: one store per stage copy.)"""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / STORE_FILE}"


# MLflow 3 opens an experiment on its GenAI overview unless the experiment says it trains models
EXPERIMENT_TAGS = {
    "mlflow.experimentKind": "custom_model_development",
    "mlflow.note.content": (
        "Churn model training runs, named train-{test cutoff}-{production or experiment name}-{params "
        "digest}, weekly monitor runs and outreach measurements. Metric groups: test/ (the model on the "
        "held-out cutoff), valid/ (early stopping), baseline/ (name.metric), segment/ (name.metric), "
        "champion/ (the current champion on the same rows), backtest/ (scorer.metric), drift/ and psi/. "
        "Figures: each training run's Artifacts, evaluation/ and explain/. README: Reading the runs in MLflow"
    ),
}


def model_requirements() -> list[str]:
    """The pip requirements of a logged booster, pinned to the versions installed here."""
    return [f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS]


def configure(experiment: str) -> None:
    """Point MLflow at the project's store; a new experiment keeps its artifacts beside the store
    and opens on its training runs, with a description of its metric groups."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None and uri.startswith("sqlite:///"):
        artifacts = Path(uri.removeprefix("sqlite:///")).parent / ARTIFACTS_DIR
        mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri(), tags=EXPERIMENT_TAGS)
    elif found is None:
        mlflow.create_experiment(experiment, tags=EXPERIMENT_TAGS)
    elif any(found.tags.get(k) != v for k, v in EXPERIMENT_TAGS.items()):
        for key, value in EXPERIMENT_TAGS.items():
            mlflow.MlflowClient().set_experiment_tag(found.experiment_id, key, value)
    mlflow.set_experiment(experiment)


def flat_metrics(tree: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """Every number in a nested dict as one MLflow metric named `prefix/key.subkey`: MLflow's UI
    makes a chart section of each part before the last "/", so each prefix is one section.
    Text and flags are left out (they are tags)."""
    out: dict[str, float] = {}

    def walk(node: Mapping[str, Any], path: str) -> None:
        for key, value in node.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(value, Mapping):
                walk(value, name)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{prefix}/{name}"] = float(value)

    walk(tree, "")
    return out


def lineage_tags(root: Path | None = None) -> dict[str, str]:
    """Git commit and the hash of dvc.lock as they stand when the run starts."""
    root = root or project_root()
    tags = {}
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        tags["git_commit"] = commit
    except (OSError, subprocess.CalledProcessError):
        tags["git_commit"] = "unknown"
    lock = root / "dvc.lock"
    tags["dvc_lock_sha256"] = hashlib.sha256(lock.read_bytes()).hexdigest() if lock.exists() else "none"
    return tags


# A training run is found by the model it made, never by MLflow's random run id: the files DVC
# tracks (the run pointer, the champion, the score manifest) then hold only what the data and code
# decide, and a fresh clone reproduces dvc.lock byte for byte.
MODEL_DIGEST_TAG = "model_sha256"
VERSION_TAG = "registered_version"


def folder_digest(folder: Path, names: tuple[str, ...]) -> str:
    """sha256 over the named files of a folder (a model's, the training snapshots'), each name and
    its bytes."""
    digest = hashlib.sha256()
    for name in names:
        digest.update(name.encode() + b"\0" + (Path(folder) / name).read_bytes() + b"\0")
    return digest.hexdigest()


def snapshots_digest(path: Path) -> str:
    """sha256 of a training snapshot table: every file of it, in cutoff order."""
    from pipeline.core.partitions import snapshot_files

    files = snapshot_files(path)
    return folder_digest(files[0].parent, tuple(f.name for f in files))


def run_id_for(run: dict[str, str]) -> str:
    """The MLflow run that trained `run` (the train stage's pointer: experiment, model digest and
    registered version)."""
    found = mlflow.search_runs(
        experiment_names=[run["experiment"]],
        filter_string=f"tags.{MODEL_DIGEST_TAG} = '{run[MODEL_DIGEST_TAG]}' "
        f"and tags.{VERSION_TAG} = '{run['model_version']}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
        output_format="list",
    )
    if not found:
        raise LookupError(
            f"no MLflow run in experiment {run['experiment']!r} trained model {run[MODEL_DIGEST_TAG][:12]} "
            f"(version {run['model_version']}) in {tracking_uri()}: rerun train (dvc repro -f train)"
        )
    return found[0].info.run_id
