import pytest

from pipeline.core.engine import connect, read_transactions
from tests.conftest import FEATURE_PARAMS as PARAMS


def test_the_duckdb_connection_takes_its_memory_limit_and_spill_folder_from_params(tmp_path):
    con = connect(PARAMS.model_copy(update={"memory_limit": "512MB", "temp_directory": str(tmp_path)}))
    settings = con.raw_sql(
        "SELECT current_setting('memory_limit'), current_setting('temp_directory')"
    ).fetchall()
    assert settings == [("488.2 MiB", str(tmp_path))]


def test_a_url_for_the_transactions_needs_the_spark_backend():
    with pytest.raises(ValueError, match=r"only featurize\.backend pyspark reads a URL"):
        read_transactions("s3a://bucket/validated/transactions/", PARAMS)
