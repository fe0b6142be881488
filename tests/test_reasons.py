import numpy as np
import pandas as pd
import pytest

from pipeline.core.params import load_params
from pipeline.core.reasons import CAUSE_NAMES, CAUSES, ReasonError, cause_of, derived, render, top_reasons
from tests.conftest import ROOT

CAUSES_BY_NAME = {c.name: c for c in CAUSES}
DEFAULT_CAUSES = set(load_params(ROOT / "params.yaml").score.reason_causes)

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
    reasons = top_reasons(CONTRIB, SNAPSHOT, 3, eligible=DEFAULT_CAUSES)
    # b: raw score 0.5 + 1.25 = 1.75; recency+gap+overdue form one cause (1.2 log-odds), then channel
    # 0.2; tenure (0.05) is not a cause that may be said, and n_orders pushes down. Points:
    # 100 (sigma(1.75) - sigma(1.75 - push))
    assert [(r.text, round(r.points, 4)) for r in reasons[0]] == [
        ("No order for 74 days, longer than their usual 21 days between orders", 21.7817),
        ("Buys via web, where customers leave more often", 2.7039),
    ]
    # a: raw score 0.9; only the order count raises risk among the causes that may be said
    assert [(r.text, round(r.points, 4)) for r in reasons[1]] == [("Only one order so far", 13.6507)]
    # causes adding less than the minimum are not said at all
    assert [
        round(r.points, 4)
        for r in top_reasons(CONTRIB, SNAPSHOT, 3, eligible=DEFAULT_CAUSES, min_points=3.0)[0]
    ] == [21.7817]
    # with tenure allowed, it is said for b in its place
    everything = top_reasons(CONTRIB, SNAPSHOT, 3, eligible=CAUSE_NAMES)
    assert [(r.text, round(r.points, 4)) for r in everything[0]][2] == ("Customer for 400 days", 0.6418)


def test_only_the_causes_params_allow_are_said_and_unknown_ones_are_refused():
    assert {
        "lapse",
        "order_rate",
        "spend",
        "returns",
        "breadth",
        "basket",
        "season",
        "channel",
    } == DEFAULT_CAUSES
    said = top_reasons(CONTRIB, SNAPSHOT, 3, eligible=["channel"])
    assert [[r.text for r in row] for row in said] == [["Buys via web, where customers leave more often"], []]
    with pytest.raises(ReasonError, match=r"score.reason_causes names unknown causes \['mood'\]"):
        top_reasons(CONTRIB, SNAPSHOT, 3, eligible=["lapse", "mood"])


CUSTOMER = {
    "recency_days": 40.0,
    "gap_mean": 45.0,
    "n_orders": 12.0,
    "orders_90d": 1.0,
    "tenure_days": 455.0,
    "spend": 1460.0,
    "spend_90d": 60.0,
    "avg_order_value": 121.6667,
    "last_value_ratio": 0.5,
    "n_return_lines": 2.0,
    "return_value": 1234.5,
    "distinct_categories": 2.0,
    "items_per_order": 1.5,
    "orders_same_window_last_year": 0.0,
}


@pytest.mark.parametrize(
    ("cause", "changes", "said"),
    [
        # 11 orders in the 365 days before the last 90: 2.7 per 90 days, against 1 now
        (
            "order_rate",
            {},
            "Ordering less often: 1 order(s) in the last 90 days, against 2.7 per 90 days before",
        ),
        ("order_rate", {"orders_90d": 3.0}, None),  # as often as before: nothing true to say
        ("order_rate", {"orders_90d": 2.0}, None),  # 2 against 2.5 before: not a quarter less
        ("order_rate", {"orders_90d": 3.0, "n_orders": 3.0}, "Only 3 orders so far"),
        ("spend", {}, "Spending less: 60.00 GBP in the last 90 days, against 345.21 per 90 days before"),
        (
            "spend",
            {"spend_90d": 400.0},
            "Last order smaller than usual: 60.83 GBP, against 121.67 on average",
        ),
        ("spend", {"spend_90d": 400.0, "last_value_ratio": 1.2}, None),
        ("lapse", {}, "No order for 40 days"),  # within the usual gap: no comparison is claimed
        ("returns", {}, "Returned 2 item(s) worth 1,234.50 GBP"),
        ("returns", {"n_return_lines": 0.0}, None),
        ("breadth", {}, "Buys from only 2 product categories"),
        ("breadth", {"distinct_categories": 1.0}, "Buys from one product category only"),
        ("basket", {}, "Small orders: 1.5 items per order on average"),
        ("season", {}, "No order in these weeks last year"),
        ("season", {"tenure_days": 200.0}, None),  # no last year to speak of
    ],
)
def test_a_sentence_is_said_only_when_it_is_true_of_the_customer(cause, changes, said):
    values = derived({**CUSTOMER, **changes}, "GBP")
    assert render(cause_of(CAUSES_BY_NAME[cause].features[0]), values) == said


def test_every_model_feature_belongs_to_a_cause_with_something_to_say():
    import ibis

    from pipeline.core.features import training_snapshots
    from pipeline.core.model import feature_columns
    from tests.conftest import FEATURE_CUTOFF, FEATURE_LINES, FEATURE_PARAMS

    snapshot = training_snapshots(ibis.memtable(FEATURE_LINES), [FEATURE_CUTOFF], FEATURE_PARAMS).to_pandas()
    btyd = ["pnbd_p_no_order", "pnbd_expected_orders", "pnbd_p_alive", "bgnbd_p_no_order", "bgnbd_p_alive"]
    for feature in [*feature_columns(snapshot), *btyd]:
        assert cause_of(feature).sentences, feature


def test_reasons_for_contact_are_plain_facts_weighed_in_points_of_uplift():
    # the same contributions read as an uplift model's, in retention probability: b's lapse cause
    # adds 0.8 + 0.1 + 0.3 = 1.2, channel 0.2; a's order count 0.6
    reasons = top_reasons(CONTRIB, SNAPSHOT, 3, eligible=DEFAULT_CAUSES, why="contact")
    assert [(r.text, round(r.points, 4)) for r in reasons[0]] == [
        ("No order for 74 days; usually 21 days between orders", 120.0),
        ("Buys via web", 20.0),
    ]
    assert [(r.text, round(r.points, 4)) for r in reasons[1]] == [("1 order(s) so far", 60.0)]


def test_every_cause_has_a_plain_sentence_for_contact():
    from pipeline.core.reasons import CONTACT_SENTENCES

    assert set(CONTACT_SENTENCES) == set(CAUSE_NAMES)
    assert not any(
        "leave more often" in s.text for sentences in CONTACT_SENTENCES.values() for s in sentences
    )
