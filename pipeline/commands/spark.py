"""Batch scoring on Spark, by partition: past one machine, the scoring snapshot is a Spark table
and each partition is scored (and optionally explained) by the champion inside its executor with
`mapInPandas`. The model travels once per executor as text (a broadcast of the LightGBM model and
the calibrator's numbers), so the probabilities and SHAP values are the ones `churn score` gives.
A leveled blend needs each cutoff's mean, which no partition sees: the partitions write the blend
before leveling and the booster's probability, the driver finds each cutoff's shift from those
two columns, and a second pass applies it.

The rest of the weekly file (value, tiers, outreach list) needs the whole population's ranks and
runs on the driver over the scored table, whose size is one row per customer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pipeline.core.calibration import level_shifts, shifted
from pipeline.core.contributions import BASE, contributions
from pipeline.core.model import ChurnModel

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame as SparkFrame

PROBABILITY = "churn_probability"
CUTOFF, BOOSTER = "_cutoff", "_booster_probability"  # between the two passes of a leveled blend


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
    level = model.calibrator.level
    between = [StructField(CUTOFF, StringType()), StructField(BOOSTER, DoubleType())]
    staged = fields + (between if level else [])
    text, calibrator = model.payload()
    # plain strings: picklable, and hashable so each executor builds the booster once
    shared = snapshot.sparkSession.sparkContext.broadcast((text, json.dumps(calibrator)))

    def score(batches: Iterable[pd.DataFrame]) -> Iterable[pd.DataFrame]:
        churn_model = _model(*shared.value)
        for batch in batches:
            p = churn_model.raw_probability(batch)
            q = churn_model.calibrator.unleveled(p, batch)
            out = pd.DataFrame({"customer_id": batch["customer_id"].astype(str), PROBABILITY: q})
            if explain:
                contrib = contributions(churn_model, batch, chunk_rows).drop(columns="customer_id")
                out = pd.concat([out.reset_index(drop=True), contrib], axis=1)
            if level:
                out[CUTOFF] = batch["cutoff"].astype(str).to_numpy()
                out[BOOSTER] = p
            yield out

    scored = snapshot.mapInPandas(score, StructType(staged))
    if not level:
        return scored
    scored = scored.persist()
    sums = pd.DataFrame(scored.select(CUTOFF, PROBABILITY, BOOSTER).toPandas())
    found = level_shifts(sums[PROBABILITY].to_numpy(), sums[BOOSTER].to_numpy(), sums[CUTOFF].to_numpy())
    shifts = snapshot.sparkSession.sparkContext.broadcast(found)

    def finish(batches: Iterable[pd.DataFrame]) -> Iterable[pd.DataFrame]:
        for batch in batches:
            d = batch[CUTOFF].map(shifts.value).to_numpy(dtype=float)
            batch[PROBABILITY] = shifted(batch[PROBABILITY].to_numpy(), d)
            yield batch.drop(columns=[CUTOFF, BOOSTER])

    return scored.mapInPandas(finish, StructType(fields))


def main(params_path: Path, snapshot: str, model_dir: Path, out: str, explain: bool) -> None:
    """Score a Parquet scoring snapshot (a path Spark can read: local, HDFS, S3, ...) with the
    champion on the Spark session `featurize.spark_master` names; write Parquet to `out`."""
    from pipeline.core.engine import spark_session
    from pipeline.core.params import load_params

    params = load_params(params_path)
    spark = spark_session(params.featurize)
    frame = spark.read.parquet(snapshot)
    scored = score_partitions(
        snapshot=frame,
        model=ChurnModel.load(model_dir),
        explain=explain,
        chunk_rows=params.explain.chunk_rows,
    )
    scored.write.mode("overwrite").parquet(out)
