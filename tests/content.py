"""What a file says, decoded, for the privacy tests: a search of raw bytes cannot see inside
compressed or dictionary-encoded Parquet, an SQLite page or a gzip stream, so each file is decoded
by what its first bytes say it is (Parquet, SQLite, gzip, zip, pickle) and read as text otherwise
(CSV, JSON, YAML, Markdown, HTML, LightGBM model text). Text drawn into an image's pixels is not
searchable; the pipeline draws no customer id."""

from __future__ import annotations

import gzip
import io
import json
import pickle
import re
import sqlite3
import zipfile
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

# an id is a whole token: not part of a longer word or number, and not the digits after a decimal
# point (a probability 0.000123 does not name customer 000123)
_TOKEN = re.compile(r"(?<![0-9A-Za-z.])[0-9A-Za-z_@+-]+(?![0-9A-Za-z])")


def decoded_text(data: bytes) -> str:
    if data[:4] == b"PAR1":
        table = pq.read_table(io.BytesIO(data))
        metadata = table.schema.metadata or {}
        parts = [" ".join(table.column_names), *(v.decode("utf-8", "replace") for v in metadata.values())]
        parts += ["\n".join(map(str, column.to_pylist())) for column in table.columns]
        return "\n".join(parts)
    if data[:16] == b"SQLite format 3\x00":
        con = sqlite3.connect(":memory:")
        try:
            con.deserialize(data)
            tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            rows = [row for t in tables for row in con.execute(f'SELECT * FROM "{t}"')]
        finally:
            con.close()
        return "\n".join(" ".join(_cell(v) for v in row) for row in rows)
    if data[:2] == b"\x1f\x8b":
        return decoded_text(gzip.decompress(data))
    if data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return "\n".join(decoded_text(archive.read(name)) for name in archive.namelist())
    if data[:1] == b"\x80" and data[-1:] == b".":  # a pickle (protocol 2 or later) ends with STOP
        value = pickle.loads(data)  # only files this project's tests wrote or the pipeline made
        if isinstance(value, pd.DataFrame):
            return value.to_csv(index=False)
        return repr(value)
    return data.decode("utf-8", errors="replace")


def _cell(value: object) -> str:
    return decoded_text(value) if isinstance(value, bytes) else str(value)


def ids_in(path: Path, ids: set[str]) -> set[str]:
    """The ids of `ids` that the decoded content of `path` names."""
    return ids & set(_TOKEN.findall(decoded_text(Path(path).read_bytes())))


def raw_ids_in(path: Path, ids: set[str]) -> set[str]:
    """The same search over the raw bytes: what a plain grep would see."""
    return ids & set(_TOKEN.findall(Path(path).read_bytes().decode("latin-1")))


def plant(folder: Path, planted: str, others: list[str]) -> dict[str, Path]:
    """One file of each kind the pipeline and MLflow write, each naming `planted` once among
    `others` (so Parquet dictionary-encodes the column and compresses it): the search's control."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [*others[:500], planted, *others[500:1000]]
    frame = pd.DataFrame({"customer_id": ids * 3, "churn_probability": np.linspace(0.0, 1.0, 3 * len(ids))})
    files = {kind: folder / name for kind, name in [
        ("parquet", "snapshot.parquet"), ("csv", "scores.csv"), ("json", "run.json"),
        ("sqlite", "mlflow.db"), ("gzip", "scores.csv.gz"), ("zip", "bundle.zip"),
        ("pickle", "frame.pkl"), ("model text", "model.txt"),
    ]}  # fmt: skip
    pq.write_table(pa.Table.from_pandas(frame), files["parquet"], compression="zstd", use_dictionary=True)
    frame.to_csv(files["csv"], index=False)
    files["json"].write_text(json.dumps({"tags": {"note": f"customer {planted} asked"}}))
    with sqlite3.connect(files["sqlite"]) as con:
        con.execute("CREATE TABLE tags (key TEXT, value TEXT)")
        con.executemany("INSERT INTO tags VALUES (?, ?)", [("customer", i) for i in ids])
    con.close()
    files["gzip"].write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    with zipfile.ZipFile(files["zip"], "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("scores.csv", frame.to_csv(index=False))
    files["pickle"].write_bytes(pickle.dumps(frame, protocol=4))
    x = pd.DataFrame({"f": np.arange(200.0)})
    model = lgb.train({"verbosity": -1, "num_leaves": 2}, lgb.Dataset(x, np.arange(200) % 2), 1)
    text = model.model_to_string().replace("feature_names=f", f"feature_names={planted}")
    files["model text"].write_text(text)
    return files
