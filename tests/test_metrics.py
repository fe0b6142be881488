import numpy as np
import pytest

from pipeline.core.metrics import classification_metrics, top_share_lift


def test_lift_and_capture_in_the_top_share():
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    p = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0])
    lift, capture = top_share_lift(y, p, 0.2)
    assert lift == pytest.approx(1.0 / 0.3)  # both top-2 churn; base rate 0.3
    assert capture == pytest.approx(2 / 3)


def test_classification_metrics_on_a_perfect_ranking():
    y = np.array([0, 0, 1, 1])
    m = classification_metrics(y, np.array([0.1, 0.2, 0.8, 0.9]), top_share=0.5)
    assert m["roc_auc"] == 1.0 and m["pr_auc"] == 1.0
    assert m["brier"] == pytest.approx((0.01 + 0.04 + 0.04 + 0.01) / 4)
    assert m["lift_top50"] == 2.0 and m["capture_top50"] == 1.0


def test_the_best_baseline_is_the_highest_on_the_metric_and_ties_go_to_the_first():
    from pipeline.core.metrics import best_baseline

    scores = {"recency": {"roc_auc": 0.85, "pr_auc": 0.95}, "bg_nbd": {"roc_auc": 0.88, "pr_auc": 0.94}}
    assert best_baseline(scores) == ("bg_nbd", 0.88)
    assert best_baseline(scores, "pr_auc") == ("recency", 0.95)
    assert best_baseline({"a": {"roc_auc": 0.9}, "b": {"roc_auc": 0.9}}) == ("a", 0.9)
