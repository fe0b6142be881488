import ibis
import pandas as pd
import pytest

from pipeline.core.engine import connect, hold, read_transactions, release
from tests.conftest import FEATURE_PARAMS as PARAMS
from tests.conftest import temporary_tables


def test_the_duckdb_connection_takes_its_memory_limit_and_spill_folder_from_params(tmp_path):
    con = connect(PARAMS.model_copy(update={"memory_limit": "512MB", "temp_directory": str(tmp_path)}))
    settings = con.raw_sql(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchall()
    assert settings == [("488.2 MiB", str(tmp_path))]


def test_a_url_for_the_transactions_needs_the_spark_backend():
    with pytest.raises(ValueError, match=r"only featurize\.backend pyspark reads a URL"):
        read_transactions("s3a://bucket/validated/transactions/", PARAMS)


def test_record_batches_come_in_pieces_of_the_asked_size_in_ibis_types():
    import ibis
    import pandas as pd
    import pyarrow as pa

    from pipeline.core.engine import record_batches

    t = ibis.memtable(pd.DataFrame({"k": [1, 1, 2, 3, 3, 3, 4], "n": [5, 6, 7, 8, 9, 10, 11]}))
    expr = t.group_by("k").aggregate(total=t.n.sum()).order_by("k")
    pieces = list(record_batches(expr, 2))
    assert [len(p) for p in pieces] == [2, 2]
    # DuckDB sums integers into a 128-bit decimal; the pieces carry Ibis's int64
    assert all(p.schema == pa.schema([("k", pa.int64()), ("total", pa.int64())]) for p in pieces)
    assert pa.concat_tables(pieces).to_pydict() == {"k": [1, 2, 3, 4], "total": [11, 7, 27, 11]}


def test_without_a_spill_folder_duckdb_spills_to_a_private_folder_of_its_own_removed_with_it():
    import gc
    import tempfile
    from pathlib import Path

    con = connect(PARAMS.model_copy(update={"memory_limit": "512MB", "temp_directory": None}))
    [(spill,)] = con.raw_sql("SELECT current_setting('temp_directory')").fetchall()
    folder = Path(spill)
    assert folder.parent == Path(tempfile.gettempdir()) and folder.name.startswith("churn-duckdb-")
    assert folder.is_dir() and folder.stat().st_mode & 0o077 == 0  # nobody else's to read
    del con
    gc.collect()
    assert not folder.exists()


def test_a_held_table_has_the_rows_of_its_expression_until_it_is_released():
    before = temporary_tables()
    source = ibis.memtable(pd.DataFrame({"a": [3, 1, 2]}))
    held = hold(source.filter(source.a > 1), "test")
    (name,) = temporary_tables() - before
    assert name.startswith("test_")
    assert sorted(held.to_pandas()["a"]) == [2, 3]
    release(held)
    assert temporary_tables() == before
