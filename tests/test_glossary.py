"""Readable feature names: every column the features and the BTYD fits produce has one."""

import numpy as np

from pipeline.core.btyd import Summary, btyd_predictions, fit_models
from pipeline.core.glossary import LABELS, feature_label
from tests.conftest import FEATURE_LINES
from tests.test_features import snapshot


def test_every_feature_the_stage_makes_has_a_readable_name_and_names_are_distinct():
    columns = [c for c in snapshot(FEATURE_LINES).columns if c not in ("customer_id", "cutoff", "churned")]
    summary = Summary(x=np.array([1.0, 3.0]), t_x=np.array([5.0, 20.0]), T=np.array([30.0, 30.0]))
    outputs = btyd_predictions(*fit_models(summary), predict_for=summary, horizon_days=90)
    names = [*columns, *outputs]
    unnamed = [c for c in names if feature_label(c) == c and c != "horizon_days"]
    assert unnamed == []
    labels = [feature_label(c) for c in names]
    assert len(set(labels)) == len(labels)


def test_windowed_features_are_named_from_their_window_and_unknown_columns_keep_their_name():
    assert feature_label("orders_45d") == "Orders in last 45 days"
    assert feature_label("spend_365d") == "Spend in last 365 days"
    assert feature_label("distinct_brand_names") == "Distinct brand names bought"
    assert feature_label("recency_days") == LABELS["recency_days"] == "Days since last order"
    assert feature_label("loyalty_points") == "loyalty_points"
