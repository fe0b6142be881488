import ibis
import pandas as pd
import pytest

from pipeline.core.orders import orders_from_lines

LINES = pd.DataFrame(
    {
        "customer_id": ["c1", "c1", "c1", "c1", "c2"],
        # 2024-01-06 is a Saturday, 2024-01-08 a Monday, 2024-01-07 a Sunday
        "order_ts": pd.to_datetime(
            [
                "2024-01-06 10:00",
                "2024-01-06 10:00",
                "2024-01-06 10:00",
                "2024-01-08 09:30",
                "2024-01-07 12:00",
            ]
        ),
        "order_id": ["A", "A", "A", "A", None],
        "amount": [10.1, 0.2, -5.0, 3.0, 7.0],
        "quantity": [1.0, 2.0, -1.0, 1.0, 1.0],
    }
)


def test_lines_become_purchase_events_in_exact_decimals():
    """Positive lines of one customer, order id and time are one order (the return line is not);
    the same order id at another time is another event; gaps in whole seconds."""
    got = orders_from_lines(ibis.memtable(LINES)).to_pandas().sort_values(["customer_id", "order_ts"])
    assert got["customer_id"].tolist() == ["c1", "c1", "c2"]
    assert [str(v) for v in got["value"]] == ["10.3000", "3.0000", "7.0000"]
    assert got["n_lines"].tolist() == [2, 1, 1]
    assert [str(v) for v in got["items"]] == ["3.0000", "1.0000", "1.0000"]
    assert got["order_rank"].tolist() == [0, 1, 0]  # ibis numbers rows from 0
    assert got["minute_of_day"].tolist() == [600, 570, 720]
    assert got["weekend"].tolist() == [1, 0, 1]
    assert got["gap_s"].isna().tolist() == [True, False, True]
    assert got["gap_s"].iloc[1] == 2 * 86_400 - 30 * 60
    assert got["gap_days"].iloc[1] == pytest.approx(2 - 30 / 1440, abs=1e-15)


def test_without_order_ids_lines_at_one_time_are_one_order():
    lines = LINES.drop(columns=["order_id", "quantity"])
    got = orders_from_lines(ibis.memtable(lines)).to_pandas().sort_values(["customer_id", "order_ts"])
    assert got["n_lines"].tolist() == [2, 1, 1]
    assert "items" not in got.columns and "order_key" not in got.columns
