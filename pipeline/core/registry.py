"""The model registry as the pipeline uses it: the `champion` alias, a version's model folder,
and the verdict of the promotion gate written onto the version (description and tags), where an
analyst browsing the registry finds it."""

from __future__ import annotations

from pathlib import Path

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.core.model import MODEL_ARTIFACTS

ALIAS = "champion"


def champion(client: MlflowClient, name: str) -> ModelVersion | None:
    """The version the `champion` alias points at, or None before the first promotion."""
    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except MlflowException:
        return None


def model_folder(version: ModelVersion, subfolder: str = "") -> Path:
    """A local copy of the model folder the version's training run logged (or of one of its
    subfolders, such as the judged model in `evaluation`)."""
    path = f"{MODEL_ARTIFACTS}/{subfolder}" if subfolder else MODEL_ARTIFACTS
    return Path(mlflow.artifacts.download_artifacts(run_id=version.run_id, artifact_path=path))


def record_verdict(
    client: MlflowClient, name: str, version: str, description: str, tags: dict[str, str]
) -> None:
    """The gate's verdict on the version itself: its description and tags."""
    client.update_model_version(name=name, version=version, description=description)
    for key, value in tags.items():
        client.set_model_version_tag(name=name, version=version, key=key, value=value)
