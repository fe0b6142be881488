"""Production runs and experiments.

A stage run by `dvc exp run` (DVC sets DVC_EXP_NAME in each of its stages), or any run with
CHURN_SANDBOX=1, is an experiment: it trains, registers and evaluates its model, and shows its
metrics and the file it would publish, but it never moves the `champion` alias and never writes
under data/scores/. Only a production run (`dvc repro`) publishes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

EXPERIMENT_ENV = "DVC_EXP_NAME"
SANDBOX_ENV = "CHURN_SANDBOX"
PRODUCTION = "production"


@dataclass(frozen=True)
class RunKind:
    experiment: str | None  # the experiment's name; None for the production run

    @property
    def publishes(self) -> bool:
        return self.experiment is None

    @property
    def label(self) -> str:
        return self.experiment or PRODUCTION


def run_kind(environ: Mapping[str, str]) -> RunKind:
    """What kind of run the environment `environ` (the stage's os.environ) describes."""
    name = environ.get(EXPERIMENT_ENV, "")
    if name:
        return RunKind(name)
    if environ.get(SANDBOX_ENV, "") not in ("", "0"):
        return RunKind("sandbox")
    return RunKind(None)


def params_digest(params_path: Path) -> str:
    """The first 12 hex digits of the sha256 of params.yaml: two runs with the same digest ran
    with the same settings."""
    return hashlib.sha256(Path(params_path).read_bytes()).hexdigest()[:12]
