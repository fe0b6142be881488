import numpy as np
import pandas as pd

from pipeline.core.reasons import top_reasons

SNAPSHOT = pd.DataFrame(
    {
        "customer_id": ["b", "a"],
        "cutoff": pd.Timestamp("2026-11-16"),
        "recency_days": [74.0, 3.0],
        "gap_mean": [21.0, np.nan],
        "overdue_ratio": [74 / 21, np.nan],
        "n_orders": [5.0, 1.0],
        "tenure_days": [400.0, 3.0],
        "channel": ["web", "app"],
    }
)
CONTRIB = pd.DataFrame(
    {
        "customer_id": ["b", "a"],
        "recency_days": [0.8, -0.5],
        "gap_mean": [0.1, 0.0],
        "overdue_ratio": [0.3, 0.0],
        "n_orders": [-0.2, 0.6],
        "tenure_days": [0.05, 0.4],
        "channel": [0.2, -0.1],
        "base_value": [0.5, 0.5],
    }
)


def test_reasons_group_related_features_use_the_customers_values_and_weigh_in_points():
    reasons = top_reasons(CONTRIB, SNAPSHOT, 3)
    # b: raw score 0.5 + 1.25 = 1.75; recency+gap+overdue form one cause (1.2 log-odds), then channel
    # 0.2 and tenure 0.05; n_orders pushes down. Points: 100 (sigma(1.75) - sigma(1.75 - push))
    assert [r.text for r in reasons[0]] == [
        "No order for 74 days; usually orders every 21 days",
        "Customers buying via web churn more often",
        "Customer for 400 days",
    ]
    assert [round(r.points, 4) for r in reasons[0]] == [21.7817, 2.7039, 0.6418]
    # causes adding less than the minimum are not said at all
    assert [round(r.points, 4) for r in top_reasons(CONTRIB, SNAPSHOT, 3, min_points=1.0)[0]] == [
        21.7817,
        2.7039,
    ]
    # a: raw score 0.9; only two causes raise risk
    assert [(r.text, round(r.points, 4)) for r in reasons[1]] == [
        ("1 order(s) in 3 days as a customer", 13.6507),
        ("Customer for 3 days", 8.849),
    ]
