import numpy as np
import pytest

from pipeline.evaluate import classification_metrics, lift_table, top_share_lift
from pipeline.model import risk_deciles


def test_lift_and_capture_in_the_top_share():
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    lift, capture = top_share_lift(y, p, 0.2)
    assert lift == pytest.approx(1.0 / 0.3)  # both top-2 churn; base rate 0.3
    assert capture == pytest.approx(2 / 3)


def test_deciles_put_the_riskiest_tenth_first_and_keep_row_order_on_ties():
    p = np.array([0.1, 0.9, 0.5, 0.5, 0.3, 0.7, 0.2, 0.8, 0.6, 0.4])
    assert risk_deciles(p).tolist() == [10, 1, 5, 6, 8, 3, 9, 2, 4, 7]
    assert risk_deciles(np.array([0.2, 0.2, 0.2])).tolist() == [1, 4, 7]


def test_lift_table():
    y = np.array([1, 0] * 10)
    p = np.linspace(1, 0, 20)
    table = lift_table(y, p)
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["churn_rate"].tolist() == [0.5] * 10
    assert table["cumulative_capture"].iloc[-1] == pytest.approx(1.0)


def test_classification_metrics_on_a_perfect_ranking():
    y = np.array([0, 0, 1, 1])
    m = classification_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]), top_share=0.5)
    assert m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    assert m["lift_top50"] == 2.0 and m["capture_top50"] == 1.0
