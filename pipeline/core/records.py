"""The small JSON files one stage writes for the next, each a typed record in one place: who writes
it, its fields, and the reader that turns a missing or wrong field into one line naming the file
and the field instead of a KeyError deep in the reader.

- `Fits` (data/features/fits.json): what featurize used and fitted. The scoring date, the cutoff
  schedule after any adaptation to the history, and the BTYD parameters at each cutoff. Read by
  score, report and truth.
- `Verdict` (models/monitor/verdict.json): whether the drift check lets `score` score the snapshot
  of its date. Written by monitor, read by score.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt, ValidationError

from pipeline.core.errors import PipelineError


class RecordError(PipelineError):
    """A stage-to-stage file is not what its writer writes: rerun the stage that writes it."""


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScheduleRecord(_Record):
    """The cutoff schedule as used, with how the declared one was adapted (in words)."""

    horizon_days: PositiveInt
    cutoff_every_days: PositiveInt
    eligibility_lookback_days: PositiveInt
    history_before_first_cutoff_days: NonNegativeInt
    n_cutoffs: PositiveInt
    first_cutoff: dt.date
    last_cutoff: dt.date
    adapted: list[str]


class Fits(_Record):
    score_date: dt.date
    schedule: ScheduleRecord
    cutoffs: list[dt.date]
    # cutoff (ISO date) -> {"customers": n, "bgnbd": {...}, "pareto_nbd": {...}}
    btyd_params_by_cutoff: dict[str, dict[str, Any]]

    def btyd_at(self, day: dt.date, model: str) -> dict[str, float]:
        fitted = self.btyd_params_by_cutoff.get(day.isoformat(), {}).get(model)
        if fitted is None:
            raise RecordError(f"fits.json has no {model} fit at {day}: rerun featurize (dvc repro)")
        return dict(fitted)


class Verdict(_Record):
    score_date: dt.date
    status: str
    may_score: bool


R = TypeVar("R", bound=_Record)


def read_record(path: Path, record: type[R]) -> R:
    """The record in `path`; a file that is not JSON, or lacks a field, or has one of the wrong
    type, raises RecordError naming the file and each field."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RecordError(f"{path}: not valid JSON ({exc}): rerun the stage that writes it") from exc
    try:
        return record.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
        )
        raise RecordError(
            f"{path}: not a {record.__name__.lower()} record ({problems}): rerun the stage that writes it"
        ) from exc
