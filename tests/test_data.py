"""The Online Retail II conversion on a small workbook in the public file's format (no network)."""

import datetime as dt
import zipfile

import pandas as pd
import pytest

from pipeline.commands.data import ONLINE_RETAIL_II_MAPPING, convert_online_retail_ii
from pipeline.core.params import IngestParams
from pipeline.stages.ingest import ingest
from tests.conftest import TODAY

HEADER = ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]
UK = "United Kingdom"
SHEET_2009 = [
    ["489434", "85048", "15CM CHRISTMAS GLASS BALL", 12, dt.datetime(2009, 12, 1, 7, 45), 6.95, 13085.0, UK],
    ["489434", "79323P", "PINK CHERRY LIGHTS", 12, dt.datetime(2009, 12, 1, 7, 45), 6.75, 13085.0, UK],
    ["C489449", "22087", "PAPER BUNTING", -12, dt.datetime(2009, 12, 1, 10, 33), 2.95, 16321.0, "Australia"],
    ["489436", "21755", "LOVE BUILDING BLOCK", 18, dt.datetime(2009, 12, 1, 9, 6), 5.45, None, UK],
]
SHEET_2010 = [
    ["538171", "22900", "SET 2 TEA TOWELS", 6, dt.datetime(2010, 12, 9, 20, 1), 2.95, 17530.0, UK],
    ["538172", "M", "Manual", 1, dt.datetime(2010, 12, 9, 20, 2), 0.0, 17530.0, UK],
]


def _archive(tmp_path):
    workbook = tmp_path / "online_retail_II.xlsx"
    with pd.ExcelWriter(workbook) as writer:
        pd.DataFrame(SHEET_2009, columns=HEADER).to_excel(writer, sheet_name="Year 2009-2010", index=False)
        pd.DataFrame(SHEET_2010, columns=HEADER).to_excel(writer, sheet_name="Year 2010-2011", index=False)
    archive = tmp_path / "online+retail+ii.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(workbook, "online_retail_II.xlsx")
    return archive


def test_conversion_and_documented_mapping_ingest_the_public_format(tmp_path):
    out = tmp_path / "online_retail_ii.csv"
    assert convert_online_retail_ii(_archive(tmp_path), out) == 6
    csv = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert csv["Customer ID"].tolist() == ["13085", "13085", "16321", "", "17530", "17530"]
    assert csv["InvoiceDate"].iloc[0] == "2009-12-01 07:45:00"
    params = IngestParams(**ONLINE_RETAIL_II_MAPPING, max_quarantine_share=0.5)
    tally = ingest(
        path=out,
        params=params,
        kept_out=tmp_path / "kept.parquet",
        quarantine_out=tmp_path / "quarantine.parquet",
        today=TODAY,
    )
    kept = pd.read_parquet(tmp_path / "kept.parquet")
    # the cancellation refers to an order from before the export starts: nothing to cancel in it
    assert tally.by_reason == {"missing_customer_id": 1, "unmatched_return": 1, "zero_amount": 1}
    assert kept["amount"].tolist() == pytest.approx([83.4, 81.0, 17.7])
    assert kept["order_id"].tolist() == ["489434", "489434", "538171"]


def test_an_unknown_data_set_is_refused_by_name_without_a_download(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(app, ["data", "download", "nope", "--out", str(tmp_path / "x.csv")])
    assert result.exit_code == 2
    assert "unknown data set 'nope'; available: online-retail-ii" in result.output
    assert not (tmp_path / "x.csv").exists()
