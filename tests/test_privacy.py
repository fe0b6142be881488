import hashlib
import hmac
import logging

import pandas as pd
import pytest

from pipeline.core.privacy import PrivacyError, erase, pseudonyms
from pipeline.stages.ingest import ingest
from pipeline.stages.score import publish
from tests.conftest import RETAIL_GOOD_ROW as GOOD
from tests.conftest import RETAIL_HEADER as HEADER
from tests.conftest import RETAIL_MAPPING as M
from tests.conftest import TODAY
from tests.conftest import score_table_example as _table

KEY = "a-long-random-secret-for-tests"


def test_pseudonyms_are_keyed_hmac_sha256():
    expected = "p_" + hmac.new(KEY.encode(), b"c1", hashlib.sha256).hexdigest()[:24]
    assert pseudonyms(KEY.encode(), ["c1", "c1"]) == [expected, expected]
    assert pseudonyms(b"another-key-of-enough-length", ["c1"]) != [expected]


def test_ingest_pseudonymizes_ids_everywhere_and_never_logs_the_key(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("CHURN_PSEUDONYM_KEY", KEY)
    params = M.model_copy(update={"pseudonymize": True})
    raw = tmp_path / "export.csv"
    one, two = "alice.smith@example.com", "bob.jones@example.com"
    rows = [GOOD.replace("c1", one), f"2,p1,1,not a date,1,{two}", GOOD.replace("c1", f"  {one} ")]
    raw.write_text("\n".join([HEADER, *rows]) + "\n")
    with caplog.at_level(logging.DEBUG):
        ingest(
            path=raw,
            params=params,
            kept_out=tmp_path / "k.parquet",
            quarantine_out=tmp_path / "q.parquet",
            today=TODAY,
        )
    kept, quarantine = pd.read_parquet(tmp_path / "k.parquet"), pd.read_parquet(tmp_path / "q.parquet")
    p1, p2 = pseudonyms(KEY.encode(), [one, two])
    assert kept["customer_id"].tolist() == [p1]  # the padded copy is the same customer: a duplicate
    assert quarantine["raw:Customer ID"].tolist() == [p2, p1]
    for path in (tmp_path / "k.parquet", tmp_path / "q.parquet"):
        assert b"example.com" not in path.read_bytes()
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("key", "message"),
    [(None, "environment variable CHURN_PSEUDONYM_KEY is not set"), ("short", "shorter than 16 characters")],
)
def test_pseudonymizing_without_a_strong_key_is_refused(tmp_path, monkeypatch, key, message):
    if key is None:
        monkeypatch.delenv("CHURN_PSEUDONYM_KEY", raising=False)
    else:
        monkeypatch.setenv("CHURN_PSEUDONYM_KEY", key)
    (tmp_path / "export.csv").write_text(HEADER + "\n" + GOOD + "\n")
    params = M.model_copy(update={"pseudonymize": True})
    with pytest.raises(PrivacyError, match=message):
        ingest(
            path=tmp_path / "export.csv",
            params=params,
            kept_out=tmp_path / "k",
            quarantine_out=tmp_path / "q",
            today=TODAY,
        )


def test_erase_removes_a_customer_from_every_table_and_restates_the_manifests(tmp_path):
    data = tmp_path / "data"
    (data / "raw").mkdir(parents=True)
    (data / "raw" / "export.csv").write_text("Customer ID,x\nR-42,1\nR-43,2\n")
    pd.DataFrame({"customer_id": ["R-42", "R-43"], "f": [1.0, 2.0]}).to_parquet(data / "features.parquet")
    pd.DataFrame({"source_row": [1], "reason": ["zero_amount"], "raw:Customer ID": [" R-42 "]}).to_parquet(
        data / "quarantine.parquet"
    )
    table = _table()
    score_file = publish(table, data / "scores", {})
    victim = table.loc[table["outreach"], "customer_id"].iloc[0]
    removed = erase(tmp_path, ["R-42", victim], "Customer ID", key=None)
    assert removed == {
        "data/features.parquet": 1,
        "data/quarantine.parquet": 1,
        "data/raw/export.csv": 1,
        f"data/scores/{score_file.name}": 1,
    }
    assert (data / "raw" / "export.csv").read_text() == "Customer ID,x\nR-43,2\n"
    assert pd.read_parquet(data / "features.parquet")["customer_id"].tolist() == ["R-43"]
    import json

    manifest = json.loads(score_file.with_suffix(".manifest.json").read_text())
    assert (
        manifest["rows"] == len(table) - 1 and manifest["outreach_rows"] == int(table["outreach"].sum()) - 1
    )
    assert manifest["sha256"] == hashlib.sha256(score_file.read_bytes()).hexdigest()
    assert victim.encode() not in score_file.read_bytes()
    # formula-escaped ids are found too
    assert erase(tmp_path, ['=HYPERLINK("http://x")'], "Customer ID", key=None) == {
        f"data/scores/{score_file.name}": 1
    }


def test_outputs_are_never_more_readable_than_the_export_and_their_folders_stay_usable(tmp_path):
    import os
    import stat
    import subprocess
    import sys

    import yaml

    from tests.conftest import ROOT

    raw = tmp_path / "export.csv"
    raw.write_text(HEADER + "\n" + GOOD + "\n")
    raw.chmod(0o640)
    params = tmp_path / "params.yaml"
    settings = yaml.safe_load((ROOT / "params.yaml").read_text())
    settings["ingest"] = {**M.model_dump(mode="json"), "valid_until": "2026-11-16"}
    params.write_text(yaml.safe_dump(settings))
    out = tmp_path / "new" / "validated"  # folders the stage has to make
    env = {**os.environ, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    done = subprocess.run(
        ["churn", "ingest", "--raw", str(raw), "--out", str(out / "k.parquet"), "--quarantine",
         str(out / "q.parquet"), "--metrics", str(tmp_path / "m.json"), "--params", str(params)],
        env=env, capture_output=True, text=True, timeout=300, preexec_fn=lambda: os.umask(0o002),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr

    def mode(path):
        return stat.S_IMODE(path.stat().st_mode)

    # umask 002 would give 0o664 files and 0o775 folders; the export's 0o640 caps them
    assert {name: mode(out / name) for name in ("k.parquet", "q.parquet")} == {
        "k.parquet": 0o640,
        "q.parquet": 0o640,
    }
    assert mode(tmp_path / "m.json") == 0o640
    # folders: the owner keeps rwx, the group may enter and list as it may read, others nothing
    assert (mode(tmp_path / "new"), mode(out)) == (0o750, 0o750)
