import subprocess
import sys

from pipeline.core.columns import HORIZON, KEYS, LABEL
from pipeline.core.model import feature_columns
from tests.conftest import FEATURE_LINES, FEATURE_PARAMS
from tests.test_features import snapshot


def test_the_snapshot_rows_are_keyed_labelled_and_carry_their_horizon():
    snap = snapshot(FEATURE_LINES)
    assert KEYS == ["customer_id", "cutoff"]
    assert not snap.duplicated(KEYS).any()
    assert snap.set_index("customer_id")[LABEL].to_dict() == {"L": 0, "N": 0, "P": 1}
    assert snap[HORIZON].tolist() == [FEATURE_PARAMS.horizon_days] * 3
    features = feature_columns(snap)
    assert not {*KEYS, LABEL, HORIZON} & set(features)
    assert len(features) == len(snap.columns) - 4


def test_the_featurize_stage_starts_without_the_contracts():
    """The contracts load pandera (and with it pyspark): about 0.3 s of the weekly refresh's start.
    (The stages that log to MLflow load pyspark through it anyway.)"""
    loaded = "sorted(m for m in ('pandera', 'pyspark') if m in sys.modules)"
    code = f"import sys, pipeline.stages.featurize; print({loaded})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
