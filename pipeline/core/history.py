"""The customers' history carried from one featurize run to the next, so that next week's run
aggregates only the new lines instead of the whole history again.

A run ends by writing, next to the training snapshots (`<train>/.history/`):

- `state.parquet`: each customer's cumulated history (`features._state`) at the carry dates: the
  grid dates after the latest training cutoff up to the scoring date, which later runs will
  need as training cutoffs, and the scoring date itself. A row holds what every carry date from
  `from_s` up to (not including) `until_s` sees; both are carry dates (epoch seconds), `until_s`
  is `FOREVER` for the row current at the scoring date. Rows are in (customer, from_s) order;
- `gaps.parquet`: the gap before every order placed before the scoring date (`gap_s`, sorted),
  which the horizon report's gap quantiles read;
- `attributes.parquet`: each customer's first-order attributes, for those with an order before the
  scoring date (when the lines have any);
- `history.json`, written last: the scoring date, the carry dates, the digest of the lines before
  the scoring date (`partitions.line_digests`) and of everything else the rows depend on
  (`partitions.context_digest`).

The next run reads it only when those digests still hold (no line before the scoring date
changed, the same params, code and libraries) and every date it needs up to that scoring date is a
carry date; otherwise it computes from the lines as if the folder were empty. The rows depend only
on the lines, so a carried history is the one a full run would write, byte for byte. The files are
written to a fresh folder that replaces the old one whole, so a run killed halfway leaves the old
history or none.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.io import read_json, write_json

log = logging.getLogger(__name__)

FOLDER = ".history"
META = "history.json"
TABLES = ("state", "gaps", "attributes")
# `until_s` of a row that holds from its date on: later than any date
FOREVER = 2**62
VERSION = 1


def epoch(day: dt.date) -> int:
    return int(pd.Timestamp(day).timestamp())


def carry_dates(last_cutoff: dt.date, score_date: dt.date, every_days: int) -> list[dt.date]:
    """The grid dates after `last_cutoff` (every `every_days`) up to `score_date`, and
    `score_date`: the dates whose history a later run can read."""
    step = dt.timedelta(days=every_days)
    grid = []
    day = last_cutoff + step
    while day <= score_date:
        grid.append(day)
        day += step
    return sorted({*grid, score_date})


def canonical(state: ir.Table, dates: list[dt.date]) -> ir.Table:
    """The rows of `state` (with `from_s` and `until_s`, epoch seconds) that hold at any of `dates`,
    their bounds moved to the first of `dates` at or after them: the same rows whatever other dates
    the run computed."""
    stamps = [epoch(d) for d in sorted(dates)]

    def first_at_or_after(value: ir.IntegerValue) -> ir.IntegerValue:
        return ibis.cases(*((value <= s, s) for s in stamps), else_=FOREVER)

    moved = state.mutate(from_s=first_at_or_after(state.from_s), until_s=first_at_or_after(state.until_s))
    return moved.filter(moved.from_s < moved.until_s).order_by(["customer_id", "from_s"])


@dataclass(frozen=True)
class Carried:
    """A history read back: its tables (on the run's engine) and what it covers."""

    score_date: dt.date
    dates: frozenset[dt.date]
    state: ir.Table
    gaps: ir.Table
    attributes: ir.Table | None

    def covers(self, dates: list[dt.date]) -> bool:
        """Whether every one of `dates` up to the scoring date is a carry date."""
        return all(d in self.dates for d in dates if d <= self.score_date)


def folder_of(train: Path) -> Path:
    return Path(train) / FOLDER


def carried_date(train: Path) -> dt.date | None:
    """The scoring date of the history carried in `train`, if it has a readable one."""
    try:
        return dt.date.fromisoformat(read_json(folder_of(train) / META)["score_date"])
    except (OSError, KeyError, ValueError, TypeError):
        return None


def read(
    train: Path, backend: ibis.BaseBackend, context: str, lines_digest: dict[dt.date, str]
) -> Carried | None:
    """The history carried in `train`, when there is one and it still holds: the same `context`
    and the same digest of the lines before its scoring date (`lines_digest`, by date)."""
    folder = folder_of(train)
    if not (folder / META).is_file():
        return None
    try:
        meta = read_json(folder / META)
        score_date = dt.date.fromisoformat(meta["score_date"])
        dates = frozenset(dt.date.fromisoformat(d) for d in meta["dates"])
        if meta["version"] != VERSION or meta["context"] != context:
            log.info("carried history: of other params, code or libraries; the history is read again")
            return None
        if lines_digest.get(score_date) != meta["lines"]:
            log.info("carried history: lines before %s changed; the history is read again", score_date)
            return None
        present = {name: path for name in TABLES if (path := folder / f"{name}.parquet").is_file()}
        for path in present.values():
            pq.read_metadata(path)  # a damaged file is refused here, not halfway through the run
        tables = {
            name: backend.read_parquet(present[name], table_name=f"churn_history_{uuid.uuid4().hex}")
            if name in present
            else None
            for name in TABLES
        }
        if tables["state"] is None or tables["gaps"] is None:
            raise ValueError("state or gaps missing")
    except (OSError, KeyError, ValueError, TypeError, pa.ArrowException) as exc:
        log.warning("carried history in %s unreadable (%s); the history is read again", folder, exc)
        return None
    return Carried(score_date=score_date, dates=dates, **tables)


def write(
    train: Path,
    *,
    state: ir.Table,
    gaps: ir.Table,
    attributes: ir.Table | None,
    score_date: dt.date,
    dates: list[dt.date],
    context: str,
    lines_digest: str,
) -> None:
    """The history at `dates` (`state` already `canonical`), written to a new folder that then
    replaces the old one."""
    folder = folder_of(train)
    for stale in Path(train).glob(f"{FOLDER}.*.tmp"):  # left by a run killed while writing
        shutil.rmtree(stale, ignore_errors=True)
    fresh = folder.with_name(f"{FOLDER}.{uuid.uuid4().hex}.tmp")
    fresh.mkdir(parents=True)
    try:
        state.to_parquet(fresh / "state.parquet")
        # through Arrow with a nullable field: the engine marks the column not null or not
        # depending on the query, which would change the file's bytes
        sorted_gaps = gaps.order_by("gap_s").to_pyarrow()
        pq.write_table(sorted_gaps.cast(pa.schema([pa.field("gap_s", pa.int64())])), fresh / "gaps.parquet")
        if attributes is not None:
            attributes.order_by("customer_id").to_parquet(fresh / "attributes.parquet")
        write_json(
            {
                "version": VERSION,
                "score_date": score_date.isoformat(),
                "dates": [d.isoformat() for d in sorted(dates)],
                "context": context,
                "lines": lines_digest,
            },
            fresh / META,
        )
        if folder.exists():
            shutil.rmtree(folder)
        fresh.rename(folder)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
