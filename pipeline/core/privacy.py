"""Personal data: keyed pseudonyms for customer ids, and the erasure of one customer everywhere.

Pseudonyms are HMAC-SHA256 of the id under a secret key read from an environment variable (never
from params, never stored, logged or sent to MLflow): the same id always maps to the same pseudonym
under the same key, so the CRM, which holds the key, can join the score file back to its customers,
while anyone without the key cannot reverse it or test a guess.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipeline.core import manifest
from pipeline.core.errors import PipelineError
from pipeline.core.io import FORMULA_START, atomic_path, csv_bytes, write_parquet

log = logging.getLogger(__name__)
MIN_KEY_CHARS = 16


class PrivacyError(PipelineError):
    """The pseudonym key is missing or weak, or an erasure could not be completed."""


def pseudonym_key(env_name: str) -> bytes:
    key = os.environ.get(env_name, "")
    if len(key) < MIN_KEY_CHARS:
        raise PrivacyError(
            f"ingest.pseudonymize is on but the environment variable {env_name} is "
            + ("not set" if not key else f"shorter than {MIN_KEY_CHARS} characters")
            + ": set it to a long random secret (the same one every week, kept outside the project)"
        )
    return key.encode("utf-8")


def keyed_digest(key: bytes, text: str) -> bytes:
    """HMAC-SHA256(key, text): the one keyed hash behind pseudonyms and holdout draws."""
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def pseudonyms(key: bytes, ids: Iterable[str]) -> list[str]:
    """`p_` + the first 24 hex digits (96 bits) of HMAC-SHA256(key, id)."""
    return ["p_" + keyed_digest(key, str(i)).hex()[:24] for i in ids]


# ---- erasure ------------------------------------------------------------------------------------


def _matches(values: pd.Series, ids: set[str]) -> pd.Series:
    text = values.astype(str).str.strip()
    unescaped = text.where(
        ~(text.str.startswith("'") & text.str[1:2].isin(list(FORMULA_START))), text.str[1:]
    )
    return unescaped.isin(ids)


RAW_FIELD_SEPARATORS = r"[,;\t|]"


def erase_from_table(path: Path, columns: list[str], ids: set[str]) -> int:
    """Remove every row of `path` (Parquet or CSV) whose id column holds one of `ids`; returns the
    number of rows removed. The file is rewritten atomically, or left alone when nothing matched."""
    path = Path(path)
    if path.suffix == ".parquet":
        present = [c for c in columns if c in pq.read_schema(path).names]
        if not present:
            return 0
        frame = pd.read_parquet(path)
    else:
        header = pd.read_csv(path, nrows=0, dtype=str).columns
        present = [c for c in columns if c in header]
        if not present:
            return 0
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    hit = pd.Series(False, index=frame.index)
    for column in present:
        hit |= _matches(frame[column], ids)
    if "raw_text" in frame.columns:  # a quarantined row whose fields did not line up: any field
        fields = frame["raw_text"].fillna("").str.split(RAW_FIELD_SEPARATORS, regex=True)
        hit |= fields.map(lambda values: any(v.strip().strip('"') in ids for v in values))
    if not hit.any():
        return 0
    kept = frame[~hit].reset_index(drop=True)
    if path.suffix == ".parquet":
        write_parquet(kept, path)
    else:  # cells are rewritten as they were read; escaping is idempotent
        with atomic_path(path) as tmp:
            tmp.write_bytes(csv_bytes(kept))
    manifest.restate(path, kept)
    return int(hit.sum())


def erase(root: Path, customer_ids: list[str], raw_id_column: str, key: bytes | None) -> dict[str, int]:
    """Remove the customers from every table under `root`/data (raw export, quarantine, validated
    transactions, snapshots, explanations, every week's score file and its manifest, the
    simulator's truth) and check that no MLflow artifact holds them. Returns rows removed per file.
    Derived outputs are then rebuilt without them by `dvc repro`; old versions in the DVC cache are
    removed by `dvc gc --workspace --force`."""
    ids = {str(c).strip() for c in customer_ids}
    if key is not None:
        ids |= set(pseudonyms(key, sorted(ids)))
    columns = ["customer_id", raw_id_column, f"raw:{raw_id_column}"]
    removed = {}
    for path in sorted((Path(root) / "data").rglob("*")):
        if path.suffix in (".parquet", ".csv") and path.is_file():
            count = erase_from_table(path, columns, ids)
            if count:
                removed[str(path.relative_to(root))] = count
    # an id as a whole token: digits inside a number (a model threshold) are not the customer
    pattern = re.compile(
        rb"(?<![0-9A-Za-z.])(" + b"|".join(re.escape(i.encode()) for i in sorted(ids)) + rb")(?![0-9A-Za-z])"
    )
    leaks = (
        [
            str(p.relative_to(root))
            for p in sorted((Path(root) / "mlartifacts").rglob("*"))
            if p.is_file() and pattern.search(p.read_bytes())
        ]
        if (Path(root) / "mlartifacts").exists()
        else []
    )
    if leaks:
        raise PrivacyError(f"MLflow artifacts hold the customer: {leaks}; delete those runs' artifacts")
    log.info("erased %d customer id(s): rows removed per file %s", len(customer_ids), removed)
    return removed
