"""File writing that never leaves a partial output behind: write a temporary sibling, then rename."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import queue
import stat
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# text a spreadsheet would run as a formula when it starts a cell (CSV injection)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


# Permission bits an output may carry: outputs derived from personal data are never readable by
# more people than the inputs they came from. A ceiling applied to each file as it is published,
# not a process umask: a umask would also strip the execute bit from every directory created
# afterwards (temp folders included), and a non-root owner cannot enter such a directory.
_FILE_MODE_CEILING = 0o666


def directory_mode(ceiling: int) -> int:
    """A folder for outputs under `ceiling`: its owner may always enter, list and write it; others
    may list and enter it only where they may read the files."""
    return 0o700 | (ceiling & 0o066) | ((ceiling & 0o044) >> 2)


@contextlib.contextmanager
def permissions_of(*inputs: Path) -> Iterator[None]:
    """Within the block, files published through `atomic_path` get no permission bit that one of
    `inputs` lacks, and folders made for them the matching mode with the owner's rwx kept."""
    global _FILE_MODE_CEILING
    before = _FILE_MODE_CEILING
    for path in inputs:
        _FILE_MODE_CEILING &= stat.S_IMODE(Path(path).stat().st_mode)
    try:
        yield
    finally:
        _FILE_MODE_CEILING = before


def make_dirs(folder: Path) -> None:
    """`folder` and its missing parents, each made with `directory_mode` of the current ceiling
    (and the process umask, as `mkdir` always applies it)."""
    folder = Path(folder)
    missing = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for new in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another writer made it meanwhile
            new.mkdir(mode=directory_mode(_FILE_MODE_CEILING))


def usable_folder(folder: Path) -> Path:
    """`folder`, made if missing; PermissionError naming it when this user cannot write in it."""
    make_dirs(folder)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(folder))
    return folder


# The crash-test hook: with CHURN_HOLD_WRITE="before:<file name>" (or "after:"), the writer of that
# output stops just before (after) its rename, creates the file CHURN_HOLD_SIGNAL names and waits to
# be killed, so a test can kill a stage at a known moment of a write (tests/test_end_to_end.py).
HOLD_WRITE, HOLD_SIGNAL = "CHURN_HOLD_WRITE", "CHURN_HOLD_SIGNAL"


def _hold(moment: str, path: Path) -> None:
    if os.environ.get(HOLD_WRITE) != f"{moment}:{path.name}":
        return
    Path(os.environ[HOLD_SIGNAL]).touch()
    while True:
        time.sleep(1.0)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename, with no
    permission bit beyond the current ceiling (`permissions_of`). A temporary file left by a writer
    that was killed (no `finally` runs on SIGKILL) is removed first: each output has one writer at
    a time."""
    path = Path(path)
    make_dirs(path.parent)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):
        stale.unlink(missing_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        mode = stat.S_IMODE(tmp.stat().st_mode)
        if mode & ~_FILE_MODE_CEILING:
            tmp.chmod(mode & _FILE_MODE_CEILING)
        _hold("before", path)
        os.replace(tmp, path)
        _hold("after", path)
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


def read_parquet(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet table as a DataFrame, each Arrow buffer freed as its column is converted: the same
    frame as `pd.read_parquet`, for 3.6 instead of 4.9 GB at peak and in 1.7 instead of 7.8 s on
    a 5M-row snapshot table (docs/benchmarks.md)."""
    return pq.read_table(path, columns=columns).to_pandas(self_destruct=True, split_blocks=True)


# at most this many rows in a row group: a table streamed in pieces through `parquet_stream` gets
# the same row groups, so the same bytes, as the whole written at once by `write_parquet`
ROW_GROUP_ROWS = 1024 * 1024
# LZ4 (Parquet's LZ4_RAW, which DuckDB, Spark 3.4+ and pyarrow read) rather than the default Snappy:
# on 1.3M snapshot rows x 51 columns the same write time as Snappy and reads 3.3x faster, for 3% more
# bytes (docs/benchmarks.md, "Writing the snapshots")
PARQUET_COMPRESSION = "lz4"


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """How `write_parquet` and `parquet_stream` write a table of `schema`. Dictionary encoding only
    for the columns that are not floating point: the features are mostly distinct doubles, whose
    dictionaries pyarrow builds and then abandons for plain encoding, a quarter of the write's time
    on the snapshots (docs/benchmarks.md, "Writing the snapshots")."""
    return {
        "compression": PARQUET_COMPRESSION,
        "use_dictionary": [field.name for field in schema if not pa.types.is_floating(field.type)],
    }


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP_ROWS, **parquet_options(table.schema))


@contextlib.contextmanager
def parquet_stream(
    path: Path, metadata: dict[bytes, bytes] | None = None
) -> Iterator[Callable[[pd.DataFrame], None]]:
    """Write a table piece by piece, atomically, holding at most one row group in memory: yields
    `write(frame)`; the pieces are cut into row groups of ROW_GROUP_ROWS whatever their sizes, so
    the file is byte-identical to `write_parquet` of all the pieces concatenated. The schema is
    the first piece's (later pieces are cast to it), with `metadata` added to its key-value
    metadata; at least one piece must be written."""
    with atomic_path(path) as tmp:
        writer: pq.ParquetWriter | None = None
        pending: list[pa.Table] = []
        held = 0

        def flush(rows: int) -> None:
            nonlocal held
            assert writer is not None
            table = pa.concat_tables(pending)
            writer.write_table(table.slice(0, rows).combine_chunks(), row_group_size=ROW_GROUP_ROWS)
            rest = table.slice(rows)
            pending[:] = [rest] if len(rest) else []
            held -= rows

        def write(frame: pd.DataFrame) -> None:
            nonlocal writer, held
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if writer is None:
                if metadata:
                    table = table.replace_schema_metadata({**(table.schema.metadata or {}), **metadata})
                writer = pq.ParquetWriter(tmp, table.schema, **parquet_options(table.schema))
            elif table.schema != writer.schema:
                table = table.cast(writer.schema)
            pending.append(table)
            held += len(table)
            while held >= ROW_GROUP_ROWS:
                flush(ROW_GROUP_ROWS)

        try:
            yield write
            if writer is None:
                raise ValueError(f"{path}: nothing was written")
            if held:
                flush(held)
        finally:
            if writer is not None:
                writer.close()


T = TypeVar("T")


def prefetched(items: Iterable[T], depth: int = 2) -> Iterator[T]:
    """`items` in order, produced on a thread of their own up to `depth` ahead of the consumer: an
    engine's query and NumPy's arithmetic (which release the GIL) overlap the writing of the items
    before them. An exception raised producing an item is raised here in its place; when the
    consumer stops early (an exception, a `break`) the producer stops after the item in progress,
    and a generator producing them is closed on the producer's thread before this returns (so an
    engine's cursor is not left to another thread). (The standard library has no bounded
    prefetching iterator; the packages that do are unmaintained.)"""
    done = object()
    slots: queue.Queue[tuple[Any, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(entry: tuple[Any, BaseException | None]) -> bool:
        """Queue `entry` unless the consumer has stopped (looked at every 0.1 s); whether it was."""
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                slots.put(entry, timeout=0.1)
                return True
        return False

    def produce() -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not offer((item, None)):
                    return
            offer((done, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            offer((done, exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name="prefetched", daemon=True)
    producer.start()
    try:
        while True:
            item, error = slots.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()  # a producer waiting on a full queue sees it within 0.1 s
        producer.join()


def write_json(payload: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_headline(values: dict[str, float | int], path: Path | None) -> None:
    """A stage's headline metrics for `dvc metrics show` and `dvc exp show`: a few numbers, floats
    to 4 decimals, under the keys every stage shares (rows, churn_rate, auc, pr_auc, ece, gap,
    psi, outreach, quarantined), so the table stays narrow. The details are in the stage's own
    JSON output. Nothing is written when `path` is None."""
    if path is not None:
        write_json({k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}, path)


PARQUET_MAGIC = b"PAR1"


def check_input(path: Path, kind: str = "") -> None:
    """Stop with one line naming `path` and the fix when it is missing, unreadable, or not in the
    format `kind` ("parquet" or "json"; by default the file's suffix decides): checked before a
    command starts, so a wrong path never ends in a library's traceback halfway through a stage.
    A folder passes for a Parquet input (a partitioned dataset)."""
    from pipeline.core.errors import ADVICE, InputError, user_name

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: {ADVICE[errno.ENOENT]}")
    if not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
        raise InputError(f"{path}: {ADVICE[errno.EACCES].format(user=user_name())}")
    if path.is_dir():
        return
    kind = kind or path.suffix.lstrip(".")
    if kind == "parquet":
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(4)
            f.seek(max(size - 4, 0))
            tail = f.read(4)
        if size < 12 or head != PARQUET_MAGIC or tail != PARQUET_MAGIC:
            raise InputError(
                f"{path}: not a Parquet file (it does not start and end with PAR1): pass the Parquet file "
                "the stage before this one writes, or rerun that stage (dvc repro)"
            )
    elif kind == "json":
        try:
            json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(
                f"{path}: not valid JSON ({exc}): rerun the stage that writes it (dvc repro)"
            ) from exc


def read_json(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))
