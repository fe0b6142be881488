import ibis
import numpy as np
import pandas as pd
import pytest

from pipeline.core.features import finish, training_snapshots
from pipeline.stages.report import cohort_matrix, orders_of, period_rates
from tests.conftest import FEATURE_CUTOFF as CUTOFF
from tests.conftest import FEATURE_LINES as LINES
from tests.conftest import FEATURE_PARAMS as PARAMS


def _orders(rows: list[tuple[str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "order_ts"]).assign(amount=10.0)
    frame["order_ts"] = pd.to_datetime(frame["order_ts"]).astype("datetime64[us]")
    return orders_of(ibis.memtable(frame))


def test_churn_and_retention_rates_by_their_formulas():
    orders = _orders(
        [
            ("a", "2024-01-10"), ("a", "2024-02-05"),  # active before and during: retained
            ("b", "2024-01-20"),  # active before, silent during: lost
            ("c", "2023-01-01"), ("c", "2024-02-10"),  # back after more than the lookback: reactivated
            ("d", "2024-02-15"),  # first order in the period: new
            ("e", "2023-12-15"),  # active before (within 60 days), silent during: lost
        ]
    )  # fmt: skip
    rates = period_rates(orders, [pd.Timestamp("2024-02-01")], horizon_days=28, lookback_days=60)
    row = rates.iloc[0].to_dict()
    assert row == {
        "period_start": "2024-02-01",
        "customers_at_start": 3,  # a, b, e
        "customers_lost": 2,  # b, e
        "customers_at_end": 3,  # a, c, d ordered in the period
        "new_customers": 1,  # d
        "churn_rate": pytest.approx(2 / 3),
        "retention_rate": pytest.approx((3 - 1) / 3),
        "reactivated_share": pytest.approx(1 / 3),  # c
    }
    assert row["retention_rate"] == pytest.approx(1 - row["churn_rate"] + row["reactivated_share"])


def test_reported_churn_at_a_past_cutoff_equals_the_label_churn_rate():
    labels = finish(
        training_snapshots(ibis.memtable(LINES), [CUTOFF], PARAMS).to_pandas(), PARAMS.horizon_days
    )
    orders = orders_of(ibis.memtable(LINES))
    rates = period_rates(
        orders=orders,
        starts=[pd.Timestamp(CUTOFF)],
        horizon_days=PARAMS.horizon_days,
        lookback_days=PARAMS.eligibility_lookback_days,
    )
    assert rates["customers_at_start"].iloc[0] == len(labels) == 3
    assert rates["churn_rate"].iloc[0] == labels["churned"].mean() == pytest.approx(1 / 3)


def test_cohort_matrix_shares_and_months_not_over_yet():
    orders = _orders(
        [
            ("a", "2024-01-05"), ("a", "2024-02-07"), ("a", "2024-03-01"),
            ("b", "2024-01-20"), ("b", "2024-03-02"),
            ("c", "2024-02-10"), ("c", "2024-03-15"),
        ]
    )  # fmt: skip
    matrix = cohort_matrix(orders, until=pd.Timestamp("2024-03-20"))
    # March is not over on the 20th: its column is unknown, not a share
    assert matrix["customers"].to_dict() == {"2024-01": 2, "2024-02": 1}
    assert matrix.loc["2024-01", 0] == 1.0 and matrix.loc["2024-01", 1] == 0.5
    assert np.isnan(matrix.loc["2024-01", 2]) and np.isnan(matrix.loc["2024-02", 1])
