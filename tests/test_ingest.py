from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.params import IngestParams
from pipeline.stages.ingest import IngestError, ingest
from tests.conftest import TODAY

MAPPING = IngestParams(
    columns={
        "customer_id": "Customer ID",
        "order_ts": "InvoiceDate",
        "order_id": "Invoice",
        "quantity": "Quantity",
        "unit_price": "Price",
        "country": "Country",
    },
    date_formats=["%d/%m/%Y %H:%M", "%Y-%m-%d"],
    max_quarantine_share=0.7,
)

EXPORT = """Invoice,Quantity,InvoiceDate,Price,Customer ID,Country
500001,2,06/05/2024 10:15,3.50,007,United Kingdom
500001,1,06/05/2024 10:15,1.25,007,United Kingdom
C500001,-1,09/05/2024 11:00,1.25,007,United Kingdom
500002,3,2024-05-07,2.00, 042 ,France
500003,1,31/02/2025 25:61,2.00,042,France
500004,x,07/05/2024 09:00,2.00,042,France
500005,1,07/05/2024 09:00,,042,France
500006,1,07/05/2024 09:00,2.00,,France
500007,0,07/05/2024 09:00,2.00,042,France
500008,1,07/05/2024 09:00,-2.00,042,France
"""


def _run(tmp_path: Path, text: str, params: IngestParams = MAPPING, name: str = "export.csv"):
    raw = tmp_path / name
    raw.write_text(text, encoding="utf-8")
    kept, quarantine = tmp_path / "kept.parquet", tmp_path / "quarantine.parquet"
    tally = ingest(path=raw, params=params, kept_out=kept, quarantine_out=quarantine, today=TODAY)
    return tally, kept, quarantine


def test_rows_are_kept_or_quarantined_with_a_reason(tmp_path):
    tally, kept_path, quarantine_path = _run(tmp_path, EXPORT)
    kept = pd.read_parquet(kept_path)
    quarantine = pd.read_parquet(quarantine_path)
    assert tally.input_rows == 10 == tally.kept_rows + tally.quarantined_rows
    assert kept["source_row"].tolist() == [1, 2, 3, 4]
    # ids stay text: leading zeros kept, surrounding blanks trimmed
    assert kept["customer_id"].tolist() == ["007", "007", "007", "042"]
    assert kept["amount"].tolist() == [7.0, 1.25, -1.25, 6.0]
    assert kept["order_ts"].tolist() == [
        pd.Timestamp("2024-05-06 10:15"),
        pd.Timestamp("2024-05-06 10:15"),
        pd.Timestamp("2024-05-09 11:00"),
        pd.Timestamp("2024-05-07 00:00"),
    ]
    assert list(zip(quarantine["source_row"], quarantine["reason"], strict=True)) == [
        (5, "unparseable_order_ts"),
        (6, "non_numeric_quantity"),
        (7, "non_numeric_unit_price"),
        (8, "missing_customer_id"),
        (9, "zero_amount"),
        (10, "negative_unit_price"),
    ]
    # the quarantine keeps the raw values as they came
    assert quarantine.loc[0, "raw:InvoiceDate"] == "31/02/2025 25:61"
    assert tally.as_metrics()["quarantined_by_reason"]["zero_amount"] == 1


def test_amount_column_is_used_when_mapped(tmp_path):
    params = IngestParams(
        columns={"customer_id": "cust", "order_ts": "date", "amount": "revenue"},
        date_formats=["%Y-%m-%d"],
        max_quarantine_share=0.0,
    )
    tally, kept, _ = _run(tmp_path, "cust,date,revenue\na,2024-01-02,10.5\na,2024-01-03,-3\n", params)
    assert pd.read_parquet(kept)["amount"].tolist() == [10.5, -3.0]
    assert tally.quarantined_rows == 0


def test_parquet_export_with_typed_columns(tmp_path):
    source = pd.DataFrame(
        {
            "cust": ["a", "b"],
            "ts": pd.to_datetime(["2024-01-02 10:00", "2024-01-03"], format="ISO8601"),
            "revenue": [1.5, 2.0],
        }
    )
    source.to_parquet(tmp_path / "export.parquet")
    params = IngestParams(
        columns={"customer_id": "cust", "order_ts": "ts", "amount": "revenue"},
        date_formats=["%Y-%m-%d"],
        max_quarantine_share=0.0,
    )
    ingest(
        path=tmp_path / "export.parquet",
        params=params,
        kept_out=tmp_path / "k.parquet",
        quarantine_out=tmp_path / "q.parquet",
        today=TODAY,
    )
    kept = pd.read_parquet(tmp_path / "k.parquet")
    assert kept["order_ts"].tolist() == [pd.Timestamp("2024-01-02 10:00"), pd.Timestamp("2024-01-03")]


def test_missing_column_names_file_and_column(tmp_path):
    text = EXPORT.replace("Customer ID", "Client")
    with pytest.raises(IngestError) as err:
        _run(tmp_path, text)
    assert "export.csv" in str(err.value)
    assert "'Customer ID' (for customer_id)" in str(err.value)
    assert not (tmp_path / "kept.parquet").exists()


def test_empty_file(tmp_path):
    with pytest.raises(IngestError, match=r"export\.csv: the file is empty"):
        _run(tmp_path, "")


def test_header_only(tmp_path):
    with pytest.raises(IngestError, match=r"export\.csv: the file has a header but no data rows"):
        _run(tmp_path, EXPORT.splitlines()[0] + "\n")
    assert list(tmp_path.glob("*.parquet")) == []


def test_wrong_date_format_stops_with_the_first_rows_and_writes_nothing(tmp_path):
    params = MAPPING.model_copy(update={"date_formats": ["%m-%d-%Y"], "max_quarantine_share": 0.05})
    text = "Invoice,Quantity,InvoiceDate,Price,Customer ID,Country\n" + "".join(
        f"50000{i},1,0{i}/05/2024 10:15,1.00,00{i},UK\n" for i in range(1, 8)
    )
    with pytest.raises(IngestError) as err:
        _run(tmp_path, text, params)
    message = str(err.value)
    assert "7 of 7 rows (100.0%) fail" in message
    assert "unparseable_order_ts: 7 rows, column 'InvoiceDate' (mapped to order_ts)" in message
    assert "row 1: Invoice='500001'" in message
    assert "InvoiceDate='01/05/2024 10:15'" in message
    assert "row 6:" not in message  # only the first five rows are shown
    assert "ingest.date_formats = ['%m-%d-%Y']" in message
    assert list(tmp_path.glob("*.parquet")) == []


def test_non_utf8_bytes_give_a_clear_error(tmp_path):
    raw = tmp_path / "export.csv"
    raw.write_bytes(EXPORT.encode() + b"500009,1,07/05/2024 09:00,2.00,\xff\xfe,France\n")
    with pytest.raises(
        IngestError, match=r"export\.csv: line 12 \(data row 11, byte \d+\) is not valid utf-8"
    ):
        ingest(
            path=raw,
            params=MAPPING,
            kept_out=tmp_path / "k.parquet",
            quarantine_out=tmp_path / "q.parquet",
            today=TODAY,
        )


def test_counts_that_do_not_add_up_are_an_error():
    from collections import Counter

    from pipeline.stages.ingest import Tally

    with pytest.raises(IngestError, match="3 rows read but 1 kept \\+ 1 quarantined"):
        Tally(input_rows=3, kept_rows=1, by_reason=Counter({"zero_amount": 1})).as_metrics()
