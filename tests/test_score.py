import numpy as np
import pandas as pd
import pytest

from pipeline.params import RiskTiers, ScoreParams
from pipeline.reasons import top_reasons
from pipeline.score import risk_tiers, score_table
from pipeline.tables import SCORES, ContractError, validate

PARAMS = ScoreParams(risk_tiers=RiskTiers(high=0.7, medium=0.4), n_reasons=3)

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


def test_reasons_group_related_features_and_use_the_customers_values():
    reasons = top_reasons(CONTRIB, SNAPSHOT, 3)
    # b: recency+gap+overdue form one cause (1.2); channel 0.2; tenure 0.05; n_orders pushes down
    assert reasons[0] == [
        "No order for 74 days; usually orders every 21 days",
        "Customers buying via web churn more often",
        "Customer for 400 days",
    ]
    # a: only two causes raise risk; the third slot stays empty
    assert reasons[1] == ["1 order(s) in 3 days as a customer", "Customer for 3 days", ""]


def test_risk_tiers():
    assert risk_tiers(np.array([0.7, 0.69, 0.4, 0.39]), PARAMS).tolist() == [
        "high",
        "medium",
        "medium",
        "low",
    ]


def test_score_table_is_sorted_and_valid():
    table = validate(
        score_table(SNAPSHOT, np.array([0.9, 0.2]), CONTRIB, "churn-model/3", PARAMS), SCORES, "t"
    )
    assert table["customer_id"].tolist() == ["a", "b"]
    assert table.loc[1].to_dict() == {
        "customer_id": "b",
        "score_date": "2026-11-16",
        "churn_probability": 0.9,
        "risk_tier": "high",
        "risk_decile": 1,
        "reason_1": "No order for 74 days; usually orders every 21 days",
        "reason_2": "Customers buying via web churn more often",
        "reason_3": "Customer for 400 days",
        "model_version": "churn-model/3",
    }


def test_contract_names_the_column_and_row():
    table = score_table(SNAPSHOT, np.array([1.5, 0.2]), CONTRIB, "churn-model/3", PARAMS)
    with pytest.raises(
        ContractError, match=r"column 'churn_probability' check 'in_range\(0.0, 1.0\)': value 1.5 at row 1"
    ):
        validate(table, SCORES, "weekly score file")


def test_misaligned_contributions_are_refused():
    with pytest.raises(ValueError, match="not aligned"):
        score_table(SNAPSHOT, np.array([0.9, 0.2]), CONTRIB.iloc[::-1], "m/1", PARAMS)
