"""File writing that never leaves a partial output behind: write a temporary sibling, then rename."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# text a spreadsheet would run as a formula when it starts a cell (CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename. A
    temporary file left by a writer that was killed (no `finally` runs on SIGKILL) is removed first:
    each output has one writer at a time."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def escape_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix text cells that a spreadsheet would run as a formula with a single quote (OWASP's
    advice against CSV injection); numbers are left alone."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            values = out[column].astype(str)
            out[column] = values.where(~values.str.startswith(FORMULA_START), "'" + values)
    return out


def unescape_formulas(values: pd.Series) -> pd.Series:
    """Undo `escape_formulas`: "'=x" was written for "=x"."""
    escaped = values.str.startswith("'") & values.str[1:2].isin(list(FORMULA_START))
    return values.where(~escaped, values.str[1:])


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """How every CSV of the pipeline is written: UTF-8, LF, formula-like text escaped, empty cells
    for missing values, floats at full (shortest round-trip) precision."""
    return escape_formulas(frame).to_csv(index=False, lineterminator="\n", na_rep="").encode("utf-8")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(csv_bytes(frame))


def inherit_permissions(*inputs: Path) -> None:
    """Files this process creates from now on get no permission bit that one of `inputs` lacks:
    outputs derived from personal data are never readable by more people than their inputs."""
    allowed = 0o666
    for path in inputs:
        allowed &= Path(path).stat().st_mode
    os.umask(0o777 & ~allowed | os.umask(0))


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp)


def write_json(payload: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
