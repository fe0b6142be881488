"""The training snapshots as a folder of one Parquet file per cutoff, each named by a digest of what
its rows depend on, so that next week's run recomputes only the cutoffs whose inputs changed.

A cutoff's rows depend on the lines before cutoff + horizon (the features on those before the
cutoff, the label on those in the window after it), on the featurize params that define the
features, on the code that computes them and on the versions of the libraries that run it. The
file is `<cutoff>.<key>.parquet`, the key a digest of all four. Cutoffs lie on a fixed grid
(`cutoffs.latest_cutoff`), so a week of new lines leaves every cutoff but the newest untouched; a
late or corrected old line changes the key of exactly the cutoffs whose window reaches it.

`index.json` lists the files of the current set; it is written last, and the files it no longer
lists are removed after it. A reader goes through the index (`read_snapshots`), so a run killed
halfway leaves the earlier set readable and whole, and the files it finished are reused by the
next run.

Each file carries its cutoff's row and churn counts and BTYD fit in its Parquet metadata, which is
all the stage needs from a cutoff it does not recompute.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.core.columns import LABEL
from pipeline.core.errors import PipelineError
from pipeline.core.io import read_json, write_json
from pipeline.core.params import FeaturizeParams
from pipeline.core.sources import ROOT, reached

INDEX = "index.json"
NAME = re.compile(r"^(\d{4}-\d{2}-\d{2})\.([0-9a-f]{16})\.parquet$")
META_KEY = b"churn.partition"

# featurize params that change which cutoffs there are or how they are computed, never the rows
# of a cutoff; every other param is part of the key
NOT_IN_KEY = frozenset(
    {
        "cutoff_every_days",
        "n_cutoffs",
        "score_date",
        "horizon_candidates",
        "adapt_to_history",
        "backend",
        "spark_master",
        "spark_conf",
        "memory_limit",
        "temp_directory",
    }
)
# the libraries whose arithmetic or encoding reaches the bytes of a snapshot file
LIBRARIES = ("duckdb", "ibis-framework", "numpy", "pandas", "pyarrow", "scipy")
FEATURES = "pipeline/core/features.py"  # its source and that of every project module it reaches

# two primes just above 2**31, so that every engine reads them as 64-bit (Spark's hash is 32-bit)
P, Q = 2_147_483_659, 2_147_483_693


class SnapshotFolderError(PipelineError):
    """The training snapshots' folder cannot be read or written as one."""


def context_digest(params: FeaturizeParams, columns: list[str]) -> str:
    """What every cutoff's rows depend on besides the lines: the params of the key (as resolved
    by the schedule), the input's columns, the core modules' source and the library versions."""
    h = hashlib.sha256()
    settings = {k: v for k, v in params.model_dump(mode="json").items() if k not in NOT_IN_KEY}
    h.update(json.dumps({"params": settings, "columns": sorted(columns)}, sort_keys=True).encode())
    h.update(json.dumps({name: metadata.version(name) for name in LIBRARIES}).encode())
    for module in sorted({FEATURES, *reached(FEATURES)}):
        h.update(module.encode() + b"\0" + (ROOT / module).read_bytes())
    return h.hexdigest()


def _row_residues(lines: ir.Table, columns: list[str]) -> tuple[ir.IntegerValue, ir.IntegerValue]:
    """Two residues (mod P and mod Q) of the engine's hash of each line's values, taken as one
    struct; their sums over a set of lines are the same whatever the order of the lines. (One hash
    per line: hashing each column apart and combining the hashes took 2.7 s at 10M lines against
    0.45 s, most of it DuckDB's cast of each hash to a signed integer.)"""
    p, q = (ibis.literal(v, type="int64") for v in (P, Q))
    h = ibis.struct({column: lines[column] for column in columns}).hash()
    return (h % p + p) % p, (h % q + q) % q


def line_digests(lines: ir.Table, bounds: list[dt.date]) -> list[str]:
    """For each bound, a digest of the lines with `order_ts` before it (midnight): their count and
    the sums of their residues, taken per day in one pass over the lines and cumulated. `source_row`
    is left out, as it moves when an export is reordered without any line changing."""
    columns = sorted(c for c in lines.columns if c != "source_row")
    r1, r2 = _row_residues(lines, columns)
    day = (lines.order_ts.epoch_seconds() // 86_400).name("day")
    per_day = (
        lines.group_by(day)
        .aggregate(n=lines.count(), s1=r1.sum().cast("int64"), s2=r2.sum().cast("int64"))
        .to_pandas()
        .sort_values("day")
    )
    days = per_day["day"].to_numpy(dtype="int64")
    # Python integers for the running sums: exact whatever their size
    cumulated = np.cumsum(per_day[["n", "s1", "s2"]].to_numpy(dtype=object), axis=0)
    digests = []
    for bound in bounds:
        k = int(np.searchsorted(days, (bound - dt.date(1970, 1, 1)).days, side="left"))
        n, s1, s2 = cumulated[k - 1] if k else (0, 0, 0)
        text = f"{columns}|{n}|{s1}|{s2}"
        digests.append(hashlib.sha256(text.encode()).hexdigest())
    return digests


def file_name(cutoff: dt.date, key: str) -> str:
    return f"{cutoff.isoformat()}.{key}.parquet"


def partition_key(lines_digest: str, context: str) -> str:
    return hashlib.sha256(f"{context}|{lines_digest}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Partition:
    """One cutoff's file and what the stage needs from it: its counts and BTYD fit."""

    cutoff: dt.date
    key: str
    rows: int
    churned: int
    btyd: dict

    @property
    def name(self) -> str:
        return file_name(self.cutoff, self.key)


def partition_metadata(btyd: dict) -> dict[bytes, bytes]:
    """The Parquet key-value metadata a new partition file is written with."""
    return {META_KEY: json.dumps({"btyd": btyd}, sort_keys=True).encode()}


class SnapshotFolder:
    """The folder of per-cutoff files: what it holds, reuse by key, and publication by the index."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        if self.folder.is_file():
            raise SnapshotFolderError(
                f"{self.folder}: a file; the training snapshots are a folder of per-cutoff files "
                "(point --train at a folder, e.g. data/features/train)"
            )
        if self.folder.exists():
            foreign = [
                p.name
                for p in self.folder.iterdir()
                if p.name != INDEX and not NAME.match(p.name) and not p.name.startswith(".")
            ]
            if foreign:
                raise SnapshotFolderError(
                    f"{self.folder}: holds {sorted(foreign)[:3]}, which featurize did not write; the "
                    "training snapshots need a folder of their own"
                )

    def path(self, cutoff: dt.date, key: str) -> Path:
        return self.folder / file_name(cutoff, key)

    def reusable(self, cutoff: dt.date, key: str) -> Partition | None:
        """The partition of `cutoff` with this key, when a finished file with its metadata is
        there (a file rewritten without it, as an erasure does, is recomputed)."""
        path = self.path(cutoff, key)
        if not path.is_file():
            return None
        try:
            file = pq.ParquetFile(path)
            meta = json.loads((file.schema_arrow.metadata or {})[META_KEY])
            churned = int(pc.sum(file.read(columns=[LABEL])[LABEL]).as_py() or 0)
        except (OSError, KeyError, ValueError, pa.ArrowException):
            return None
        return Partition(
            cutoff=cutoff, key=key, rows=file.metadata.num_rows, churned=churned, btyd=meta["btyd"]
        )

    def publish(self, partitions: list[Partition]) -> None:
        """Write the index of `partitions`, then remove every partition file it does not list."""
        write_json(
            {
                "cutoffs": [
                    {"cutoff": p.cutoff.isoformat(), "file": p.name, "rows": p.rows, "churned": p.churned}
                    for p in sorted(partitions, key=lambda p: p.cutoff)
                ]
            },
            self.folder / INDEX,
        )
        keep = {p.name for p in partitions}
        for path in self.folder.iterdir():
            if NAME.match(path.name) and path.name not in keep:
                path.unlink()


def snapshot_files(path: Path) -> list[Path]:
    """The files of the training snapshots in cutoff order: `path` itself when it is a file, else
    the files the folder's index lists."""
    path = Path(path)
    if path.is_file():
        return [path]
    index = path / INDEX
    if not index.is_file():
        raise SnapshotFolderError(
            f"{path}: no {INDEX}, so featurize never finished here: rerun it (dvc repro)"
        )
    try:
        names = [entry["file"] for entry in read_json(index)["cutoffs"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotFolderError(
            f"{index}: not an index of snapshot files ({exc}): rerun featurize"
        ) from exc
    missing = [n for n in names if not (path / n).is_file()]
    if missing:
        raise SnapshotFolderError(f"{index}: lists {missing[:3]}, missing from the folder: rerun featurize")
    return [path / n for n in names]


def _read_one(file: Path, columns: list[str] | None) -> pa.Table:
    table = pq.read_table(file, columns=columns)
    meta = {k: v for k, v in (table.schema.metadata or {}).items() if k != META_KEY}
    return table.replace_schema_metadata(meta)


def read_snapshots(
    path: Path, columns: list[str] | None = None, latest: int | None = None, mask: np.ndarray | None = None
) -> pd.DataFrame:
    """The training snapshots as one DataFrame in (cutoff, customer) order, each Arrow buffer freed
    as its column is converted (as `io.read_parquet`). `latest`: only the rows of the latest that
    many cutoffs (in a folder, only their files are read). `mask`: one flag per row of the whole
    table, in its order; only the flagged rows are kept, file by file, so the others are never
    held beside them."""
    files = snapshot_files(path)[-latest:] if latest is not None else snapshot_files(path)
    if mask is None:
        table = pa.concat_tables([_read_one(file, columns) for file in files], promote_options="default")
    else:
        if latest is not None:
            raise ValueError("read_snapshots: a mask covers the whole table, not the latest cutoffs")
        sizes = [pq.read_metadata(file).num_rows for file in files]
        if sum(sizes) != len(mask):
            raise ValueError(f"read_snapshots: a mask of {len(mask)} flags for a table of {sum(sizes)} rows")
        pieces, start = [], 0
        for file, size in zip(files, sizes, strict=True):
            pieces.append(_read_one(file, columns).filter(pa.array(mask[start : start + size])))
            start += size
        table = pa.concat_tables(pieces, promote_options="default")
    if latest is not None:  # a single file holds every cutoff
        kept = pc.unique(table.column("cutoff")).sort()[-latest:]
        table = table.filter(pc.is_in(table.column("cutoff"), kept))
    return table.to_pandas(self_destruct=True, split_blocks=True)


def each_snapshot_file(path: Path, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """The training snapshots one file at a time, in cutoff order (in a folder, one cutoff each):
    for a pass over every row that never holds the table whole."""
    for file in snapshot_files(path):
        yield _read_one(file, columns).to_pandas(self_destruct=True, split_blocks=True)
