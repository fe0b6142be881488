import json

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_money_has_two_decimals_separators_and_the_currency_and_the_segment_table_is_text():
    from pipeline.stages.report import formatted_segments, money

    assert money(1234567.891, "EUR") == "EUR 1,234,567.89"
    segments = pd.DataFrame(
        {
            "customers": [1500, 20],
            "mean_churn_probability": [0.1234, 0.5],
            "value_at_risk": [12345.678, 0.5],
            "average_order_value": [20.0, 3.333],
            "orders_per_year": [2.345, 1.0],
            "historic_clv": [100.0, 7.0],
            "predicted_clv": [50.0, 1.0],
            "on_outreach_list": [3, 0],
        },
        index=pd.Index(["high-value", "new"], name="segment"),
    )
    table = formatted_segments(segments, "GBP")
    assert table.loc["high-value"].tolist() == [
        "1,500", "12.3%", "GBP 12,345.68", "GBP 20.00", "GBP 100.00", "GBP 50.00", "2.35", "3",
    ]  # fmt: skip
    assert table.columns.tolist()[2:6] == [
        "value at risk",
        "average order value",
        "historic CLV",
        "predicted CLV",
    ]


def test_the_model_stands_beside_the_champion_the_baselines_and_the_oracle_with_its_backtest():
    from pipeline.stages.report import model_vs_baselines

    evaluation = {
        "model": {"roc_auc": 0.8, "pr_auc": 0.6, "ece": 0.01, "brier": 0.1, "lift_top10": 2.0},
        "champion": {"version": "4", "compared": True, "roc_auc": 0.79, "pr_auc": 0.59, "ece": 0.02},
        "baselines": {"recency": {"roc_auc": 0.7, "pr_auc": 0.5, "lift_top10": 1.5}},
        "oracle": {"roc_auc": 0.81, "pr_auc": 0.61, "ece": 0.0, "brier": 0.09, "lift_top10": 2.1},
    }
    backtest = {"model": {"roc_auc": 0.805}, "recency": {"roc_auc": 0.71}}
    table = model_vs_baselines(evaluation, backtest)
    assert table.index.tolist() == [
        "model (this run)",
        "champion (version 4)",
        "recency",
        "oracle (simulation)",
    ]
    assert table.columns.tolist() == [
        "ROC AUC",
        "PR AUC",
        "ECE",
        "Brier",
        "lift, top 10%",
        "backtest mean ROC AUC",
    ]
    assert table["ROC AUC"].tolist() == [0.8, 0.79, 0.7, 0.81]
    assert table["backtest mean ROC AUC"].tolist()[:3:2] == [0.805, 0.71]
    assert np.isnan(table.loc["recency", "ECE"])  # a rank is not a probability
    # a champion that could not be compared is left out, and without a backtest there is no column
    evaluation["champion"] = {"version": "4", "compared": False, "why": "another horizon"}
    assert model_vs_baselines(evaluation, None).index.tolist() == [
        "model (this run)",
        "recency",
        "oracle (simulation)",
    ]


def test_a_missing_section_says_why_and_every_table_scrolls_inside_the_page():
    from pipeline.stages.report import cohort_text, render_html

    cohorts = pd.DataFrame(
        {"customers": [1200, 30], 0: [1.0, 1.0], 1: [0.456, np.nan]}, index=["2024-01", "2024-02"]
    )
    text = cohort_text(cohorts)
    assert text.to_dict(orient="list") == {"customers": ["1,200", "30"], 0: ["100%", "100%"], 1: ["46%", ""]}
    page = render_html(
        title="t",
        summary={"as of": "2026-11-16"},
        tables={"Cohorts": text},
        images={},
        missing={"Segment movement": "only one weekly file <yet>"},
    )
    assert "<div class='scroll'><table" in page and ".scroll{max-width:100%;overflow-x:auto}" in page
    assert (
        "<h2>Segment movement</h2><p class='missing'>Not shown: only one weekly file &lt;yet&gt;</p>" in page
    )


def test_the_uplift_section_says_why_until_there_are_policy_values(tmp_path):
    from pipeline.stages.report import UPLIFT_TITLE, uplift_section

    (tmp_path / "uplift.json").write_text(
        json.dumps({"ranking": "value_at_risk", "weeks": 0, "why": "no week of outcomes yet"})
    )
    cards, tables, images, missing = uplift_section(tmp_path, "GBP")
    assert cards == {"outreach list ranked by": "value at risk", "weeks of outcomes for uplift": "0"}
    assert (tables, images, missing) == ({}, {}, {UPLIFT_TITLE: "no week of outcomes yet"})


def test_the_uplift_section_shows_policy_values_deciles_and_the_qini_curve(tmp_path):
    from pipeline.stages.report import uplift_section

    def estimate(value: float) -> dict:
        return {"value": value, "se": 1.0, "ci_low": value - 2, "ci_high": value + 2, "clusters": 9}

    comparison = {
        "uplift": estimate(30.0),
        "value_at_risk": estimate(10.0),
        "difference": estimate(20.0),
        "switch_bound_z": 2.6692,
        "switch_low": 17.3308,
    }
    decision = {
        "ranking": "uplift",
        "weeks": 8,
        "look": {"number": 2, "z": 2.6692},
        "why": "surely above zero",
        "qini": {"qini": 0.01, "auuc": 0.02},
        "policy_value_per_week": {"doubly_robust": comparison, "inverse_propensity": comparison},
    }
    (tmp_path / "uplift.json").write_text(json.dumps(decision))
    pd.DataFrame({"share": [0, 0.5, 1], "gain": [0, 0.02, 0.01], "random": [0, 0.005, 0.01]}).to_csv(
        tmp_path / "qini.csv", index=False
    )
    cards, tables, images, missing = uplift_section(tmp_path, "GBP")
    assert cards["outreach list ranked by"] == "uplift" and cards["weeks of outcomes for uplift"] == "8"
    assert cards["switch rule"] == "look 2: 2.67 standard errors above zero"
    (values,) = tables.values()
    assert values.index.tolist() == ["doubly robust", "inverse propensity"]
    assert values.loc["doubly robust"].tolist() == [30.0, 10.0, 20.0, 18.0, 22.0, 17.3308]
    assert len(images) == 1 and not missing


def _rates_by_definition(rows, start, horizon_days, lookback_days):
    """The module's formulas, customer by customer in plain Python."""
    end, since = start + pd.Timedelta(days=horizon_days), start - pd.Timedelta(days=lookback_days)
    by = {}
    for customer, ts in rows:
        by.setdefault(customer, []).append(pd.Timestamp(ts))
    at_start = {c for c, t in by.items() if any(since <= x < start for x in t)}
    during = {c for c, t in by.items() if any(start <= x < end for x in t)}
    new = {c for c, t in by.items() if start <= min(t) < end}
    return {
        "customers_at_start": len(at_start),
        "customers_lost": len(at_start - during),
        "customers_at_end": len(during),
        "new_customers": len(new),
        "reactivated": len(during - new - at_start),
    }


@settings(max_examples=40, deadline=None)
@given(
    orders=st.lists(
        st.tuples(st.sampled_from("abcdefg"), st.integers(0, 400), st.sampled_from([0, 7])),
        min_size=1,
        max_size=40,
    ),
    starts=st.lists(st.integers(0, 400), min_size=1, max_size=4, unique=True),
    horizon=st.integers(1, 120),
    lookback=st.integers(1, 200),
)
def test_period_rates_count_each_customer_by_the_definition(orders, starts, horizon, lookback):
    day0 = pd.Timestamp("2024-01-01")
    # orders at midnight fall exactly on period boundaries
    rows = [(c, day0 + pd.Timedelta(days=d, hours=h)) for c, d, h in orders]
    dates = [day0 + pd.Timedelta(days=d) for d in sorted(starts)]
    rates = period_rates(
        _orders([(c, str(t)) for c, t in rows]), dates, horizon_days=horizon, lookback_days=lookback
    )
    for start, row in zip(dates, rates.itertuples(), strict=True):
        expected = _rates_by_definition(rows, start, horizon, lookback)
        n = expected["customers_at_start"]
        assert row.period_start == start.date().isoformat()
        assert (row.customers_at_start, row.customers_lost, row.customers_at_end, row.new_customers) == (
            n,
            expected["customers_lost"],
            expected["customers_at_end"],
            expected["new_customers"],
        )
        if n:
            assert row.reactivated_share == expected["reactivated"] / n
            assert row.churn_rate == expected["customers_lost"] / n
        else:
            assert np.isnan(row.churn_rate) and np.isnan(row.retention_rate)
