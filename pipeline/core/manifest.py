"""The manifest beside each weekly score file, in one place: what the file holds (rows, content hash,
rows on the outreach list, held out, not to be contacted, explored, to be contacted), computed from
the file's bytes and rows.
`score` writes it with the file; `erase` restates it after removing rows, so a manifest always
describes the CSV beside it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.io import read_json, write_json

SUFFIX = ".manifest.json"
# boolean columns counted as <flag>_rows (a file of schema 1.0 has no exploration or contact: 0)
FLAGS = ("outreach", "holdout", "do_not_contact", "exploration", "contact")


def path_of(csv_path: Path) -> Path:
    return Path(csv_path).with_suffix(SUFFIX)


def sha256(path_or_bytes: Path | bytes) -> str:
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    return hashlib.sha256(data).hexdigest()


def contents(rows: pd.DataFrame, data: bytes) -> dict[str, Any]:
    """The fields that describe the file's contents. `rows` as built (flags boolean) or as read back
    from the CSV (flags the strings true/false); a flag column the rows lack counts 0."""
    facts: dict[str, Any] = {"rows": len(rows), "sha256": sha256(data)}
    for flag in FLAGS:
        values = rows[flag] if flag in rows.columns else pd.Series(dtype=bool)
        facts[f"{flag}_rows"] = int(values.astype(str).str.lower().eq("true").sum())
    return facts


def write(csv_path: Path, rows: pd.DataFrame, data: bytes, about: dict[str, Any]) -> None:
    """The manifest of `csv_path`, whose bytes are `data`: `about` (what scored it, for which
    dates) and the contents."""
    write_json({"file": Path(csv_path).name, **about, **contents(rows, data)}, path_of(csv_path))


def restate(csv_path: Path, rows: pd.DataFrame) -> None:
    """After rows were removed from `csv_path`: the same manifest with the contents recounted."""
    manifest = path_of(csv_path)
    if manifest.exists():
        write_json(read_json(manifest) | contents(rows, Path(csv_path).read_bytes()), manifest)
