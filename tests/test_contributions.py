import numpy as np

from pipeline.core.calibration import Calibrator
from pipeline.core.contributions import BASE, contributions
from pipeline.core.model import ChurnModel, model_frame
from tests.conftest import train_snapshots as _snapshots

START = Calibrator("identity", boost_from="bgnbd_p_no_order", offset_mean=0.25)


def test_shap_contributions_plus_base_value_equal_the_boosters_log_odds(booster):
    snap = _snapshots(seed=5)
    contrib = contributions(ChurnModel(booster, START), snap)
    trees = booster.predict(model_frame(snap, booster.feature_name()), raw_score=True)
    offset = np.log(snap["bgnbd_p_no_order"] / (1 - snap["bgnbd_p_no_order"])).to_numpy()
    features = booster.feature_name()
    np.testing.assert_allclose(contrib[features].sum(axis=1) + contrib[BASE], trees + offset, atol=1e-9)
    assert contrib["customer_id"].tolist() == snap["customer_id"].tolist()
    # the initial score's Shapley value, its deviation from its training mean, is its column's
    plain = contributions(ChurnModel(booster, Calibrator("identity")), snap)
    moved = contrib["bgnbd_p_no_order"] - plain["bgnbd_p_no_order"]
    np.testing.assert_allclose(moved, offset - 0.25, atol=1e-12)
    np.testing.assert_allclose(contrib[BASE] - plain[BASE], 0.25, atol=1e-12)
    other = [f for f in features if f != "bgnbd_p_no_order"]
    np.testing.assert_array_equal(contrib[other].to_numpy(), plain[other].to_numpy())
    # recency drives churn in this data beyond what the blurred BTYD column says
    assert contrib[other].abs().mean().idxmax() == "recency_days"
