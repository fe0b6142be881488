"""MLflow wiring: one tracking store per project, and the facts that tie a run to the code and data."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import mlflow

STORE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"


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


def configure(experiment: str) -> None:
    """Point MLflow at the project's store; a new experiment keeps its artifacts beside the store."""
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if mlflow.get_experiment_by_name(experiment) is None and uri.startswith("sqlite:///"):
        artifacts = Path(uri.removeprefix("sqlite:///")).parent / ARTIFACTS_DIR
        mlflow.create_experiment(experiment, artifact_location=artifacts.as_uri())
    mlflow.set_experiment(experiment)


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
