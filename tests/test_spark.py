"""The same Ibis feature and label definitions on PySpark (local, Java 17) and on DuckDB give the
same snapshots: the path past one machine is the code that runs here, not a second implementation."""

from __future__ import annotations

import datetime as dt
import os
import sys

import ibis
import numpy as np
import pandas as pd
import pytest

from pipeline.core.features import build_features, finish, training_snapshots
from pipeline.core.partitions import read_snapshots
from tests.conftest import ROOT, featurize_params

pyspark = pytest.importorskip("pyspark", reason="pyspark is in the test extras; CI installs it")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.spark,
    # py4j leaves its gateway sockets to the garbage collector
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


@pytest.fixture(scope="module")
def spark(tmp_path_factory):
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this environment's packages
    session = (
        SparkSession.builder.master("local[1]")
        .appName("churn-parity")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .config("spark.driver.extraJavaOptions", f"-Dderby.system.home={warehouse}")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def test_features_and_labels_are_identical_on_pyspark_and_duckdb(spark, small_shop):
    params = featurize_params(horizon_days=60, windows_days=[30, 90, 365], trend_days=60)
    cutoffs = [dt.date(2024, 6, 1), dt.date(2024, 9, 1), dt.date(2024, 10, 15)]
    on_spark = ibis.pyspark.connect(spark).create_table("lines", small_shop, overwrite=True)
    on_duckdb = ibis.memtable(small_shop)
    expected = finish(training_snapshots(on_duckdb, cutoffs, params).to_pandas(), 60)
    got = finish(training_snapshots(on_spark, cutoffs, params).to_pandas(), 60)
    assert len(expected) > 300 and expected["churned"].between(0, 1).all()
    assert list(got.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, check_exact=True)
    score_spark = finish(build_features(on_spark, [dt.date(2025, 1, 1)], params).to_pandas(), 60)
    score_duck = finish(build_features(on_duckdb, [dt.date(2025, 1, 1)], params).to_pandas(), 60)
    pd.testing.assert_frame_equal(score_spark, score_duck, check_dtype=False, check_exact=True)


def test_the_featurize_stage_gives_the_same_snapshots_on_either_backend(spark, small_shop, tmp_path):
    import yaml

    from pipeline.stages import featurize

    small_shop.to_parquet(tmp_path / "transactions.parquet")
    settings = yaml.safe_load((ROOT / "params.yaml").read_text())
    outputs = {}
    for backend in ("duckdb", "pyspark"):
        settings["featurize"] |= {"backend": backend, "spark_master": "local[1]"}
        (tmp_path / f"{backend}.yaml").write_text(yaml.safe_dump(settings))
        out = tmp_path / backend
        # Spark reads the transactions by URL, as it would from s3a:// or hdfs://
        source = (
            tmp_path / "transactions.parquet"
            if backend == "duckdb"
            else f"file://{tmp_path}/transactions.parquet"
        )
        featurize.main(
            params_path=tmp_path / f"{backend}.yaml",
            transactions=source,
            train_out=out / "train",
            score_out=out / "score.parquet",
            fits_out=out / "fits.json",
            metrics_out=out / "featurize.json",
            horizon_out=out / "horizons.csv",
        )
        outputs[backend] = out
    for name in ("train", "score.parquet"):
        duck, spk = (read_snapshots(outputs[b] / name) for b in ("duckdb", "pyspark"))
        assert len(duck) > 100
        pd.testing.assert_frame_equal(spk, duck, check_dtype=False, check_exact=True)
    for name in ("fits.json", "featurize.json"):
        assert (outputs["duckdb"] / name).read_text() == (outputs["pyspark"] / name).read_text()


def test_batch_scoring_by_partition_on_spark_gives_the_local_probabilities_and_shap(spark, tmp_path):
    from pipeline.commands.spark import PROBABILITY, score_partitions
    from pipeline.core.calibration import Calibrator
    from pipeline.core.contributions import contributions
    from pipeline.core.fitting import fit
    from pipeline.core.model import ChurnModel
    from tests.conftest import TRAIN_PARAMS as PARAMS
    from tests.conftest import train_snapshots as _snapshots

    # boosted from a BTYD column and leveled per cutoff, which no single partition can do alone
    link = Calibrator("platt", (1.3, 0.4), boost_from="bgnbd_p_no_order", offset_mean=0.1, level=True)
    model = ChurnModel(fit(_snapshots(seed=1), _snapshots(seed=2), PARAMS), link)
    snapshot = _snapshots(n=500, seed=3).drop(columns="churned")
    snapshot.loc[snapshot.index % 3 == 0, "cutoff"] = pd.Timestamp("2024-01-15")
    on_spark = spark.createDataFrame(snapshot).repartition(4)  # several batches, each its own model use
    got = score_partitions(on_spark, model, explain=True).toPandas()
    got = got.sort_values("customer_id", ignore_index=True)
    assert len(got) == 500 and got["customer_id"].tolist() == snapshot["customer_id"].tolist()
    np.testing.assert_allclose(got[PROBABILITY], model.probability(snapshot), rtol=0, atol=1e-12)
    unleveled = link.unleveled(model.raw_probability(snapshot), snapshot)
    assert np.abs(got[PROBABILITY] - unleveled).min() > 1e-3  # the level moved every row
    local = contributions(model, snapshot)
    features = [*model.booster.feature_name(), "base_value"]
    np.testing.assert_allclose(got[features].to_numpy(), local[features].to_numpy(), rtol=0, atol=1e-12)
    plain = score_partitions(on_spark, model).toPandas()
    assert list(plain.columns) == ["customer_id", PROBABILITY]
