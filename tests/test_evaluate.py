import numpy as np
import pytest

from pipeline.stages.evaluate import lift_table


def test_lift_table():
    y = np.array([1, 0] * 10)
    p = np.linspace(1, 0, 20)
    table = lift_table(y, p)
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["churn_rate"].tolist() == [0.5] * 10
    assert table["cumulative_capture"].iloc[-1] == pytest.approx(1.0)


def test_segments_and_their_reliability_tables():
    import pandas as pd

    from pipeline.stages.evaluate import segment_masks, segment_reliability

    held_out = pd.DataFrame(
        {
            "n_orders": [1.0, 1.0, 3.0, 5.0, 2.0, 1.0],
            "tenure_days": [10.0, 200.0, 400.0, 30.0, 500.0, 700.0],
            "spend_365d": [5.0, 10.0, 100.0, 300.0, 50.0, 20.0],
        }
    )
    masks = segment_masks(held_out, new_customer_days=90)
    assert masks["one_time"].tolist() == [True, True, False, False, False, True]
    assert masks["new"].tolist() == [True, False, False, True, False, False]
    assert masks["value_high"].tolist() == [False, False, True, True, False, False]
    assert masks["value_low"].tolist() == [True, True, False, False, False, False]  # terciles: 16.7, 66.7
    y = np.array([1, 1, 0, 0, 1, 1])
    p = np.array([0.95, 0.85, 0.15, 0.05, 0.55, 0.95])
    table = segment_reliability(y, p, {"one_time": masks["one_time"]}, bins=10)
    assert table.to_dict(orient="list") == {
        "segment": ["one_time", "one_time"],
        "predicted": [0.85, 0.95],
        "observed": [1.0, 1.0],
        "rows": [1, 2],
    }
