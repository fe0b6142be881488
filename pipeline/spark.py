"""Batch scoring on Spark, by partition: past one machine, the scoring snapshot is a Spark table
and each partition is scored (and optionally explained) by the champion inside its executor with
`mapInPandas`. The model travels once per executor as text (a broadcast of the LightGBM model and
the calibrator's numbers), so the probabilities and SHAP values are the ones `churn score` gives.

The rest of the weekly file (value, tiers, outreach list) needs the whole population's ranks and
runs on the driver over the scored table, whose size is one row per customer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.explain import BASE, contributions
from pipeline.model import ChurnModel

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkFrame

PROBABILITY = "churn_probability"


@lru_cache(maxsize=1)
def _model(text: str, calibrator: str) -> ChurnModel:
    """One model per executor process: built from the broadcast text on first use."""
    return ChurnModel.from_payload((text, json.loads(calibrator)))


def score_partitions(
    snapshot: SparkFrame, model: ChurnModel, explain: bool = False, chunk_rows: int = 50_000
) -> SparkFrame:
    """customer_id and churn probability for every row of `snapshot` (a Spark DataFrame with the
    model's feature columns), and with `explain` each feature's SHAP value and the base value."""
    from pyspark.sql.types import DoubleType, StringType, StructField, StructType

    features = model.booster.feature_name()
    fields = [StructField("customer_id", StringType()), StructField(PROBABILITY, DoubleType())]
    if explain:
        fields += [StructField(f, DoubleType()) for f in (*features, BASE)]
    text, calibrator = model.payload()
    # plain strings: picklable, and hashable so each executor builds the booster once
    shared = snapshot.sparkSession.sparkContext.broadcast((text, json.dumps(calibrator)))

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        churn_model = _model(*shared.value)
        for batch in batches:
            out = pd.DataFrame(
                {"customer_id": batch["customer_id"].astype(str), PROBABILITY: churn_model.probability(batch)}
            )
            if explain:
                contrib = contributions(churn_model.booster, batch, chunk_rows).drop(columns="customer_id")
                out = pd.concat([out.reset_index(drop=True), contrib], axis=1)
            yield out

    return snapshot.mapInPandas(score, StructType(fields))


def main(params_path: Path, snapshot: str, model_dir: Path, out: str, explain: bool) -> None:
    """Score a Parquet scoring snapshot (a path Spark can read: local, HDFS, S3, ...) with the
    champion on the Spark session `featurize.spark_master` names; write Parquet to `out`."""
    from pipeline.featurize import spark_session
    from pipeline.params import load_params

    params = load_params(params_path)
    spark = spark_session(params.featurize)
    frame = spark.read.parquet(snapshot)
    scored = score_partitions(frame, ChurnModel.load(model_dir), explain, params.explain.chunk_rows)
    scored.write.mode("overwrite").parquet(out)
