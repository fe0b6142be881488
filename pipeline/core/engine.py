"""The engine the Ibis queries run on: DuckDB embedded, or Spark through a SparkSession, and the
reading of the validated transactions from either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

import os
import shutil
import sys
import tempfile
import uuid
import weakref
from collections.abc import Iterator
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from pipeline.core.cutoffs import ScheduleError
from pipeline.core.io import usable_folder
from pipeline.core.params import FeaturizeParams, ParamsError


def connect(params: FeaturizeParams) -> ibis.BaseBackend:
    """The Ibis backend `featurize.backend` names. DuckDB is embedded; Spark is reached through a
    SparkSession on `spark_master` (local[N] here, a cluster's URL elsewhere)."""
    if params.backend == "duckdb":
        if params.temp_directory:  # fail now, not when the first spill comes an hour in
            usable_folder(Path(params.temp_directory))
            spill = params.temp_directory
        else:
            # DuckDB's own default is `.tmp` in the working folder, which may not be writable, and
            # a shared folder under the system's would belong to whoever made it first: a private
            # folder of this connection's, removed with it
            spill = tempfile.mkdtemp(prefix="churn-duckdb-")
        settings = {"memory_limit": params.memory_limit, "temp_directory": spill}
        backend = ibis.duckdb.connect(**{k: v for k, v in settings.items() if v is not None})
        if not params.temp_directory:
            weakref.finalize(backend, shutil.rmtree, spill, True)
        return backend
    return ibis.pyspark.connect(spark_session(params))


def hold(expr: ir.Table, prefix: str) -> ir.Table:
    """`expr` computed once into a temporary table of its engine's (on DuckDB spilled past the
    memory limit), for many queries to read instead of each computing it again; it lasts until
    `release` or the connection's end. (Ibis's own `cache` cannot drop its tables here: the pinned
    sqlglot writes their DROP TABLE without the name.)"""
    name = f"{prefix}_{uuid.uuid4().hex}"
    return ibis.get_backend(expr).create_table(name, obj=expr, temp=True)


def release(table: ir.Table) -> None:
    """Drop a table `hold` made."""
    ibis.get_backend(table).raw_sql(f'DROP TABLE "{table.op().name}"')


def spark_session(params: FeaturizeParams) -> SparkSession:
    """The SparkSession on `featurize.spark_master` with `featurize.spark_conf`, times in UTC."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - pyspark is in the test extras
        raise ScheduleError("the Spark backend needs pyspark: pip install pyspark") from exc
    builder = SparkSession.builder.master(params.spark_master).appName("churn")
    if params.spark_master.startswith("local"):
        # local Python workers (batch scoring) need this environment's packages, not the system's
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in {"spark.sql.session.timeZone": "UTC", **params.spark_conf}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def record_batches(expr: ir.Table, rows: int) -> Iterator[pa.Table]:
    """The result of `expr` in Arrow tables of about `rows` rows each, never whole in memory, in
    the types Ibis's schema gives (DuckDB returns its sums of integers as decimals). (Ibis 11's own
    `to_pyarrow_batches` calls a cursor method DuckDB 2.0 no longer has.)"""
    schema = expr.schema().to_pyarrow()
    backend = expr._find_backend(use_default=True)
    if backend.name == "duckdb":
        backend._run_pre_execute_hooks(expr)  # registers the expression's in-memory tables
        reader = backend.con.sql(str(backend.compile(expr))).to_arrow_reader(rows)
    else:
        reader = expr.to_pyarrow_batches(chunk_size=rows)
    for batch in reader:
        yield pa.Table.from_batches([batch]).cast(schema)


def read_transactions(source: str | Path, params: FeaturizeParams) -> ir.Table:
    """The validated transactions: a local Parquet file, or with the pyspark backend any URL
    Spark reads (s3a://, hdfs://, file://; a folder of Parquet files too)."""
    source = str(source)
    if "://" in source and params.backend != "pyspark":
        raise ParamsError(f"{source}: only featurize.backend pyspark reads a URL; DuckDB reads local files")
    return connect(params).read_parquet(source)
