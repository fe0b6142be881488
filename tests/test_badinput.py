"""The bad-input suite (`pytest -m badinput`): every case ends in a clear error that names the file,
column or rows and what to do, or in an exact quarantine count, and input = kept + quarantined."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from pipeline.core.cutoffs import ScheduleError, SplitNeeds
from pipeline.core.features import make_snapshots
from pipeline.core.fitting import TrainError, preflight
from pipeline.core.params import IngestParams, load_params
from pipeline.stages.ingest import IngestError, ingest
from tests.conftest import RETAIL_GOOD_ROW as GOOD
from tests.conftest import RETAIL_HEADER as HEADER
from tests.conftest import RETAIL_MAPPING as M
from tests.conftest import ROOT, TODAY, featurize_params

pytestmark = pytest.mark.badinput


def run(tmp_path: Path, *rows: str, params: IngestParams = M, header: str = HEADER, raw: bytes | None = None):
    path = tmp_path / "export.csv"
    if raw is None:
        path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    else:
        path.write_bytes(raw)
    kept_path, quarantine_path = tmp_path / "kept.parquet", tmp_path / "quarantine.parquet"
    tally = ingest(path=path, params=params, kept_out=kept_path, quarantine_out=quarantine_path, today=TODAY)
    kept, quarantine = pd.read_parquet(kept_path), pd.read_parquet(quarantine_path)
    assert tally.input_rows == len(kept) + len(quarantine) == tally.kept_rows + tally.quarantined_rows
    assert quarantine["reason"].notna().all()
    return kept, quarantine


def reasons(quarantine: pd.DataFrame) -> list[tuple[int, str]]:
    return list(zip(quarantine["source_row"], quarantine["reason"], strict=True))


def refused(
    tmp_path: Path, *rows: str, params: IngestParams = M, header: str = HEADER, raw: bytes | None = None
):
    with pytest.raises(IngestError) as err:
        run(tmp_path, *rows, params=params, header=header, raw=raw)
    assert not (tmp_path / "kept.parquet").exists() and not (tmp_path / "quarantine.parquet").exists()
    return str(err.value)


# ---- columns and mapping ------------------------------------------------------------------------


def test_01_mapping_points_at_a_missing_column(tmp_path):
    message = refused(tmp_path, GOOD.replace(",c1", ""), header=HEADER.replace(",Customer ID", ""))
    assert (
        "export.csv: column(s) 'Customer ID' (for customer_id) named in ingest.columns are not in the file"
        in message
    )
    assert "Fix the mapping in params.yaml" in message


def test_02_extra_columns_are_ignored(tmp_path):
    kept, quarantine = run(tmp_path, GOOD + ",x,y", header=HEADER + ",Note,Other")
    assert list(kept.columns) == [
        "source_row",
        "customer_id",
        "order_ts",
        "amount",
        "order_id",
        "product_id",
        "quantity",
        "unit_price",
    ]
    assert len(quarantine) == 0


def test_03_a_repeated_header_column(tmp_path):
    message = refused(tmp_path, GOOD + ",1", header=HEADER + ",Price")
    assert message.endswith("export.csv: header repeats column(s) ['Price']")


def test_04_wrong_types_are_quarantined_by_column(tmp_path):
    _, quarantine = run(tmp_path, GOOD, "2,p1,two,2026-01-05 10:00,3.50,c1", "3,p1,1,2026-01-05 10:00,€3,c1")
    assert reasons(quarantine) == [(2, "non_numeric_quantity"), (3, "non_numeric_unit_price")]
    assert quarantine["raw:Quantity"].tolist() == ["two", "1"]


# ---- dates --------------------------------------------------------------------------------------


def test_05_unparseable_dates(tmp_path):
    _, quarantine = run(tmp_path, GOOD, "2,p1,1,2026-02-30 10:00,1,c1", "3,p1,1,yesterday,1,c1")
    assert reasons(quarantine) == [(2, "unparseable_order_ts"), (3, "unparseable_order_ts")]


def test_06_mixed_date_formats_all_listed(tmp_path):
    params = M.model_copy(update={"date_formats": ["%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d"]})
    kept, _ = run(tmp_path, GOOD, "2,p1,1,06/01/2026 09:30,1,c1", "3,p1,1,2026-01-07,1,c1", params=params)
    assert kept["order_ts"].tolist() == [
        pd.Timestamp(s) for s in ("2026-01-05 10:00", "2026-01-06 09:30", "2026-01-07")
    ]


def test_07_time_zone_offsets_become_the_shops_wall_clock(tmp_path):
    params = M.model_copy(
        update={"date_formats": ["%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M%z"], "timezone": "Europe/London"}
    )
    kept, _ = run(
        tmp_path,
        GOOD,
        "2,p1,1,2026-01-05 23:30+02:00,1,c1",
        "3,p1,1,2026-07-01 23:30+00:00,1,c1",
        params=params,
    )
    # 21:30 UTC in winter is 21:30 in London; 23:30 UTC in summer is 00:30 the next day (BST)
    assert kept["order_ts"].tolist()[1:] == [
        pd.Timestamp("2026-01-05 21:30"),
        pd.Timestamp("2026-07-02 00:30"),
    ]


def test_08_offsets_without_a_time_zone_are_a_params_error():
    with pytest.raises(ValidationError) as err:
        M.model_copy(update={"timezone": None}).model_validate(
            {**M.model_dump(), "date_formats": ["%Y-%m-%d %H:%M%z"]}
        )
    assert [e["msg"] for e in err.value.errors()] == [
        "Value error, ingest.date_formats parse UTC offsets (%z): set ingest.timezone, e.g. Europe/London"
    ]


def test_09_future_dated_rows(tmp_path):
    _, quarantine = run(
        tmp_path,
        GOOD,
        "2,p1,1,2026-11-16 23:59,1,c1",
        "3,p1,1,2026-11-17 00:00,1,c1",
        "4,p1,1,2099-01-01 00:00,1,c1",
    )
    assert reasons(quarantine) == [(3, "future_order_ts"), (4, "future_order_ts")]


def test_10_dates_before_the_business_existed(tmp_path):
    _, quarantine = run(tmp_path, GOOD, "2,p1,1,1900-01-01 00:00,1,c1", "3,p1,1,2009-12-31 23:59,1,c1")
    assert reasons(quarantine) == [(2, "before_valid_from"), (3, "before_valid_from")]


# ---- amounts ------------------------------------------------------------------------------------


def test_11_zero_amounts(tmp_path):
    _, quarantine = run(tmp_path, GOOD, "2,p1,0,2026-01-05 10:00,3.50,c1", "3,p1,1,2026-01-05 10:00,0,c1")
    assert reasons(quarantine) == [(2, "zero_amount"), (3, "zero_amount")]


def test_12_negative_unit_price(tmp_path):
    _, quarantine = run(tmp_path, GOOD, "2,p1,1,2026-01-05 10:00,-3.50,c1")
    assert reasons(quarantine) == [(2, "negative_unit_price")]


def test_13_absurd_amounts(tmp_path):
    _kept, quarantine = run(
        tmp_path, GOOD, "2,p1,80995,2026-01-05 10:00,20.00,c1", "3,p1,1,2026-01-05 10:00,1e308,c1"
    )
    assert reasons(quarantine) == [(2, "absurd_amount"), (3, "absurd_amount")]


def test_14_returns_with_a_matching_order_are_kept_without_one_quarantined(tmp_path):
    kept, quarantine = run(
        tmp_path,
        GOOD,
        "C1,p1,-1,2026-01-06 10:00,3.50,c1",  # after c1's order: a return
        "C2,p1,-1,2026-01-04 10:00,3.50,c1",  # before c1's first order
        "C3,p9,-2,2026-01-06 10:00,1.00,c2",  # c2 never ordered
    )
    assert kept["source_row"].tolist() == [1, 2]
    assert reasons(quarantine) == [(3, "unmatched_return"), (4, "unmatched_return")]


# ---- duplicates ---------------------------------------------------------------------------------


def test_15_exact_duplicate_rows(tmp_path):
    kept, quarantine = run(tmp_path, GOOD, GOOD, GOOD, "1,p2,2,2026-01-05 10:00,3.50,c1")
    assert kept["source_row"].tolist() == [1, 4]
    assert reasons(quarantine) == [(2, "duplicate_line"), (3, "duplicate_line")]


def test_15b_a_line_two_rules_flag_takes_the_first_rules_reason_once(tmp_path):
    """A return without an earlier order, exported twice: the copy is a duplicate line (the first
    rule), the first an unmatched return; each row is quarantined once and the counts add up."""
    unmatched = "C3,p9,-2,2026-01-06 10:00,1.00,c2"
    kept, quarantine = run(tmp_path, GOOD, unmatched, unmatched)
    assert kept["source_row"].tolist() == [1]
    assert reasons(quarantine) == [(2, "unmatched_return"), (3, "duplicate_line")]


def test_16_near_duplicates_equal_after_parsing(tmp_path):
    params = M.model_copy(update={"date_formats": ["%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M"]})
    _kept, quarantine = run(tmp_path, GOOD, " 1 , p1 ,2.0,05/01/2026 10:00,3.5, c1 ", params=params)
    assert reasons(quarantine) == [(2, "duplicate_line")]
    assert quarantine["raw:Quantity"].tolist() == ["2.0"]


# ---- empty and degenerate files -----------------------------------------------------------------


def test_17_empty_file(tmp_path):
    assert refused(tmp_path, raw=b"") == (
        f"{tmp_path / 'export.csv'}: the file is empty; expected a header row and data rows"
    )


def test_18_header_only(tmp_path):
    assert refused(tmp_path) == f"{tmp_path / 'export.csv'}: the file has a header but no data rows"


def test_19_every_row_bad_is_refused_with_the_first_rows(tmp_path):
    message = refused(tmp_path, *[f"{i},p1,1,not a date,1,c{i}" for i in range(1, 8)])
    assert (
        "7 of 7 rows (100.0%) fail the transactions contract, above ingest.max_quarantine_share = 90.0%"
        in message
    )
    assert "unparseable_order_ts: 7 rows, column 'InvoiceDate' (mapped to order_ts); first rows:" in message
    assert "row 1: Invoice='1', StockCode='p1'" in message and "row 6:" not in message


# ---- customer ids -------------------------------------------------------------------------------


def test_20_nan_and_empty_ids_are_missing(tmp_path):
    rows = [GOOD] + [
        f"{i},p1,1,2026-01-05 10:00,1,{v}"
        for i, v in enumerate(["", "  ", "NaN", "null", "None", "N/A", "#N/A"], 2)
    ]
    _, quarantine = run(tmp_path, *rows)
    assert reasons(quarantine) == [(i, "missing_customer_id") for i in range(2, 9)]


def test_21_ids_that_look_like_numbers_keep_their_leading_zeros(tmp_path):
    kept, _ = run(
        tmp_path,
        GOOD.replace("c1", "007"),
        GOOD.replace("c1", "0007").replace("p1", "p2"),
        GOOD.replace("c1", "7").replace("p1", "p3"),
    )
    assert kept["customer_id"].tolist() == ["007", "0007", "7"]


def test_22_ids_that_start_a_formula_are_kept_as_text_and_escaped_on_output(tmp_path):
    from pipeline.core.io import escape_formulas

    ids = ["=1+1", "+44", "-5", "@SUM(A1)"]
    kept, _ = run(tmp_path, *[GOOD.replace("c1", v).replace("p1", f"p{i}") for i, v in enumerate(ids)])
    assert kept["customer_id"].tolist() == ids
    assert escape_formulas(kept[["customer_id"]])["customer_id"].tolist() == [
        "'=1+1",
        "'+44",
        "'-5",
        "'@SUM(A1)",
    ]


# ---- encodings ----------------------------------------------------------------------------------


def test_23_non_utf8_bytes_name_the_line(tmp_path):
    raw = (HEADER + "\n" + GOOD + "\n").encode() + "2,p1,1,2026-01-05 10:00,1,Müller\n".encode("cp1252")
    message = refused(tmp_path, raw=raw)
    assert message.startswith(f"{tmp_path / 'export.csv'}: line 3 (data row 2, byte ")
    assert "is not valid utf-8 text; set ingest.encoding to the file's encoding (e.g. cp1252)" in message


def test_24_a_declared_legacy_encoding_is_read(tmp_path):
    raw = (HEADER + "\n2,p1,1,2026-01-05 10:00,1,Müller\n").encode("cp1252")
    kept, _ = run(tmp_path, raw=raw, params=M.model_copy(update={"encoding": "cp1252"}))
    assert kept["customer_id"].tolist() == ["Müller"]


def test_25_a_utf8_byte_order_mark_is_not_part_of_the_header(tmp_path):
    kept, _ = run(tmp_path, raw=("\ufeff" + HEADER + "\n" + GOOD + "\n").encode("utf-8"))
    assert kept["customer_id"].tolist() == ["c1"]


# ---- memory -------------------------------------------------------------------------------------


def _ingest_in_a_fresh_process(path: Path | None, params: IngestParams, out: Path) -> dict:
    """Ingest `path` in a fresh process: its tally and its peak resident memory in MiB (with `path`
    None, only the imports ingest needs). VmHWM, as ru_maxrss would include the forked parent's."""
    code = f"""
import datetime
import json
from pipeline.stages.ingest import ingest
from pipeline.core.params import IngestParams
params = IngestParams.model_validate_json({params.model_dump_json()!r})
tally = {{}}
if {path is not None}:
    t = ingest(
        {str(path)!r}, params, {str(out / "k.parquet")!r}, {str(out / "q.parquet")!r},
        today=datetime.date.fromisoformat({TODAY.isoformat()!r}),
    )
    tally = {{"input": t.input_rows, "kept": t.kept_rows, "quarantined": t.quarantined_rows,
              "reasons": sorted(t.by_reason)}}
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({{**tally, "peak_mib": int(hwm.split()[1]) // 1024}}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(run.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def big_ingest(tmp_path_factory) -> tuple[dict, dict]:
    """2M lines (84 MB) ingested with DuckDB held to 64 MB, and a process that only imports."""
    n = 2_000_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "Invoice": np.arange(n) // 3,
            "StockCode": rng.integers(0, 5000, n).astype(str),
            "Quantity": rng.integers(1, 5, n),
            "InvoiceDate": pd.Timestamp("2025-01-01")
            + pd.to_timedelta(rng.integers(0, 500 * 1440, n), unit="min"),
            "Price": rng.uniform(0.5, 20, n).round(2),
            "Customer ID": [f"c{v:06d}" for v in rng.integers(0, 50_000, n)],
        }
    )
    frame["InvoiceDate"] = frame["InvoiceDate"].dt.strftime("%Y-%m-%d %H:%M")
    folder = tmp_path_factory.mktemp("big")
    path = folder / "export.csv"
    frame.to_csv(path, index=False)
    del frame
    assert path.stat().st_size > 64 * 2**20  # the file is larger than the memory given to DuckDB
    params = M.model_copy(update={"memory_limit": "64MB"})
    return _ingest_in_a_fresh_process(path, params, folder), _ingest_in_a_fresh_process(None, params, folder)


@pytest.mark.slow
def test_26_an_input_larger_than_the_memory_limit_is_ingested_whole(big_ingest):
    tally, _ = big_ingest
    assert tally["input"] == 2_000_000 == tally["kept"] + tally["quarantined"]
    assert set(tally["reasons"]) <= {"duplicate_line"}


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason="ingest's peak grows with the file, DuckDB held to 64 MB: 551 MiB at 0.5M lines, 886 at 2M, "
    "1,026 at 4M, against 145 for the imports alone; the blocks and DuckDB's limit do not bound it",
)
def test_26b_ingest_memory_is_bounded_by_the_blocks_and_the_duckdb_limit_not_the_file(big_ingest):
    tally, imports = big_ingest
    # 32 MiB blocks, their DuckDB parse and 64 MB for the checks across rows, with room to spare
    assert tally["peak_mib"] - imports["peak_mib"] < 256, (tally["peak_mib"], imports["peak_mib"])


# ---- after ingest: data that cannot train a model ---------------------------------------------


def _lines(
    customers: int, every_days: int, start: str = "2024-01-01", end: str = "2026-11-16"
) -> pd.DataFrame:
    days = pd.date_range(start, end, freq=f"{every_days}D")
    frame = pd.DataFrame(
        [(f"c{c}", d + pd.Timedelta(hours=10 + c % 5)) for c in range(customers) for d in days],
        columns=["customer_id", "order_ts"],
    )
    return frame.assign(amount=10.0, order_ts=frame["order_ts"].astype("datetime64[us]"))


def test_27_a_single_customer_is_refused_before_any_feature_is_built():
    needs = SplitNeeds(1, 1, min_customers=200)
    with pytest.raises(ScheduleError) as err:
        make_snapshots(ibis.memtable(_lines(1, 7)), featurize_params(), needs)
    assert str(err.value) == (
        "only 1 distinct customer(s) in the transactions (train.min_customers = 200): "
        "too few to learn churn from"
    )


def _parts(lines: pd.DataFrame) -> dict[str, pd.DataFrame]:
    spec = featurize_params(horizon_days=30, eligibility_lookback_days=120, n_cutoffs=12)
    snaps = make_snapshots(ibis.memtable(lines), spec, SplitNeeds(1, 1, min_customers=10))
    return {"training": snaps.train}


def test_28_no_churners_at_any_cutoff_is_refused_with_the_reason():
    params = load_params(ROOT / "params.yaml").train
    with pytest.raises(TrainError) as err:
        preflight(_parts(_lines(300, 7)), params)  # everyone orders every week: nobody churns in 30 days
    # 300 customers, each eligible at all 12 cutoffs
    assert str(err.value) == (
        "cannot train on these snapshots:\n  the training cutoffs hold 0 churners and 3600 non-churners; "
        "each needs at least train.min_class_rows = 30. A horizon this short labels few churners; change "
        "featurize.horizon_days or add cutoffs"
    )


def test_29_no_non_churners_at_any_cutoff_is_refused_with_the_reason():
    params = load_params(ROOT / "params.yaml").train
    lines = _lines(300, 200)  # orders 200 days apart: within 120 days of one, none comes in the next 30
    with pytest.raises(TrainError) as err:
        preflight(_parts(lines), params)
    # each customer's last order before the 12 cutoffs (2026-03-16 .. 08-17) is of 2026-03-11: it is
    # eligible at the 9 up to 07-06, within 120 days of it
    assert str(err.value) == (
        "cannot train on these snapshots:\n  the training cutoffs hold 2700 churners and 0 non-churners; "
        "each needs at least train.min_class_rows = 30. A horizon this long labels nearly everyone churned; "
        "change featurize.horizon_days or add cutoffs"
    )


def test_30_the_stage_commands_print_one_clear_line_not_a_traceback(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    (tmp_path / "export.csv").write_text(HEADER + "\n")
    result = CliRunner().invoke(
        app,
        ["ingest", "--raw", str(tmp_path / "export.csv"), "--out", str(tmp_path / "k.parquet"),
         "--quarantine", str(tmp_path / "q.parquet"), "--metrics", str(tmp_path / "m.json"),
         "--params", str(ROOT / "params.yaml")],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output == (
        f"error: {tmp_path / 'export.csv'}: column(s) 'Category' (for category), 'Country' (for country), "
        "'Channel' (for channel) named in ingest.columns are not in the file; its columns are ['Invoice', "
        "'StockCode', 'Quantity', 'InvoiceDate', 'Price', 'Customer ID']. Fix the mapping in params.yaml.\n"
    )


# ---- exports as they come: delimiters, decimal commas, ragged rows, control characters -----------

SEMI = M.model_copy(update={"delimiter": ";", "decimal": ","})


def run_semicolon(tmp_path: Path, *rows: str):
    """An export as a spreadsheet writes it where the decimal mark is a comma."""
    return run(tmp_path, *rows, header=HEADER.replace(",", ";"), params=SEMI)


def test_31_a_semicolon_export_names_the_delimiter_to_set(tmp_path):
    message = refused(tmp_path, GOOD.replace(",", ";"), header=HEADER.replace(",", ";"))
    assert message == (
        f"{tmp_path / 'export.csv'}: the header is one column, {HEADER.replace(',', ';')!r}, holding the "
        "mapped names separated by ';': set ingest.delimiter: ';' in params.yaml (and ingest.decimal: ',' "
        "if amounts are written 11,77)"
    )


def test_32_a_semicolon_export_with_decimal_commas_loads_with_two_settings(tmp_path):
    kept, quarantine = run_semicolon(
        tmp_path,
        "1;p1;2;2026-01-05 10:00;3,50;c1",
        "2;p2;1;2026-01-06 10:00;1.234,5;c2",
        "3;p3;1;2026-01-06 11:00;7;c3",
    )
    assert kept["unit_price"].tolist() == [3.5, 1234.5, 7.0]
    assert kept["amount"].tolist() == [7.0, 1234.5, 7.0]
    assert len(quarantine) == 0


def test_33_a_point_in_a_decimal_comma_file_is_ambiguous_and_quarantined(tmp_path):
    _, quarantine = run_semicolon(
        tmp_path,
        "1;p1;2;2026-01-05 10:00;3,50;c1",
        "2;p2;1;2026-01-06 10:00;3.50;c2",
        "3;p3;1;2026-01-06 10:00;12.34.5;c3",
    )
    assert reasons(quarantine) == [(2, "non_numeric_unit_price"), (3, "non_numeric_unit_price")]


def test_34_the_same_character_cannot_separate_fields_and_decimals():
    with pytest.raises(ValidationError) as err:
        IngestParams(**{**M.model_dump(), "decimal": ","})
    assert [e["msg"] for e in err.value.errors()] == [
        "Value error, ingest.delimiter and ingest.decimal are both ',': a decimal comma needs another "
        "field separator, usually ';'"
    ]


def test_35_rows_with_the_wrong_number_of_fields_are_quarantined_with_their_line(tmp_path):
    rows = [GOOD, "2,p2,1,2026-01-05 10:00,1,c2,extra", '3,p3,1,2026-01-05 10:00,1,"c\n3"',
            "4,p4,1,2026-01-05", "", "5,p5,1,2026-01-05 10:00,1,c5"]  # fmt: skip
    kept, quarantine = run(tmp_path, *rows)
    assert kept[["source_row", "customer_id"]].values.tolist() == [[1, "c1"], [5, "c5"]]
    assert reasons(quarantine) == [(3, "control_character_customer_id"), (2, "wrong_field_count"),
                                   (4, "wrong_field_count")]  # fmt: skip
    ragged = quarantine[quarantine["reason"] == "wrong_field_count"]
    assert ragged["line"].tolist() == [3, 6]  # the quoted line break moves the next row down a line
    assert ragged["raw_text"].tolist() == ["2,p2,1,2026-01-05 10:00,1,c2,extra", "4,p4,1,2026-01-05"]
    assert ragged["raw:Customer ID"].fillna("<none>").tolist() == ["c2", "<none>"]  # 4 fields of 6


def test_36_ragged_rows_count_towards_the_quarantine_share(tmp_path):
    message = refused(
        tmp_path, GOOD, "2,p2", "3,p3", params=M.model_copy(update={"max_quarantine_share": 0.5})
    )
    assert "2 of 3 rows (66.7%) fail the transactions contract" in message
    assert (
        "  wrong_field_count: 2 rows whose number of fields is not the header's, with ingest.delimiter = ','"
        in message
    )
    assert "    row 2: line 3: '2,p2'" in message


def test_37_control_characters_in_ids_and_dates_are_quarantined(tmp_path):
    rows = [
        GOOD,
        "2,p1,1,2026-01-05 10:00,1,c\t2",
        "3,p1,1,2026-01-05\x0b10:00,1,c3",
        "4,p1,1,2026-01-05 10:00,1,c\x7f4",
    ]
    _, quarantine = run(tmp_path, *rows)
    assert reasons(quarantine) == [
        (2, "control_character_customer_id"),
        (3, "control_character_order_ts"),
        (4, "control_character_customer_id"),
    ]
