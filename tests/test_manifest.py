"""The weekly file's manifest: the same contents whether counted on the table as built or on the
CSV as read back, and restated after an erasure."""

import hashlib

import pandas as pd

from pipeline.core import manifest
from pipeline.core.io import csv_bytes, read_json


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e"],
            "outreach": [True, True, False, False, False],
            "holdout": [False, True, False, False, False],
            "do_not_contact": [False, False, True, True, False],
            "exploration": [False, False, False, False, True],
            "contact": [True, False, False, False, True],
        }
    )


def _as_written(table: pd.DataFrame) -> bytes:
    out = table.copy()
    for flag in manifest.FLAGS:
        out[flag] = out[flag].map({True: "true", False: "false"})
    return csv_bytes(out)


def test_the_contents_are_counted_from_the_rows_and_hashed_from_the_bytes():
    data = _as_written(_table())
    facts = manifest.contents(_table(), data)
    assert facts == {
        "rows": 5,
        "sha256": hashlib.sha256(data).hexdigest(),
        "outreach_rows": 2,
        "holdout_rows": 1,
        "do_not_contact_rows": 2,
        "exploration_rows": 1,
        "contact_rows": 2,
    }
    read_back = pd.read_csv(pd.io.common.BytesIO(data), dtype=str, keep_default_na=False)
    assert manifest.contents(read_back, data) == facts
    # a file of schema 1.0 has neither flag: both count 0
    old = _table().drop(columns=["exploration", "contact"])
    assert manifest.contents(old, data) == facts | {"exploration_rows": 0, "contact_rows": 0}


def test_a_restated_manifest_recounts_every_flag_and_keeps_the_rest(tmp_path):
    csv = tmp_path / "churn_scores_2026-W48.csv"
    data = _as_written(_table())
    csv.write_bytes(data)
    manifest.write(csv, rows=_table(), data=data, about={"model_version": "m/1", "as_of": "2026-11-23"})
    kept = _table().iloc[[0, 1, 2, 4]]  # d erased: one do-not-contact row fewer
    csv.write_bytes(_as_written(kept))
    read_back = pd.read_csv(csv, dtype=str, keep_default_na=False)
    manifest.restate(csv, read_back)
    assert read_json(manifest.path_of(csv)) == {
        "file": csv.name,
        "model_version": "m/1",
        "as_of": "2026-11-23",
        "rows": 4,
        "sha256": hashlib.sha256(csv.read_bytes()).hexdigest(),
        "outreach_rows": 2,
        "holdout_rows": 1,
        "do_not_contact_rows": 1,
        "exploration_rows": 1,
        "contact_rows": 2,
    }


def test_restating_a_file_without_a_manifest_writes_none(tmp_path):
    csv = tmp_path / "other.csv"
    csv.write_bytes(_as_written(_table()))
    manifest.restate(csv, _table())
    assert not manifest.path_of(csv).exists()
