import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.btyd import ParetoNBD
from pipeline.core.outreach import (
    campaigns,
    exploration_chances,
    exploration_sample,
    holdout_draw,
    lifecycle_stages,
    outreach_plan,
    predicted_value,
    segment_names,
    systematic_draw,
    value_tiers,
)
from pipeline.core.params import load_params
from tests.conftest import ROOT, examples

PARAMS = load_params(ROOT / "params.yaml").score  # new <= 90 days, lapsed > 180 days


def test_value_tiers_take_exact_shares_from_the_top():
    value = np.array([5.0, 50.0, 1.0, 20.0, 0.0, 7.0, 9.0, 3.0, 2.0, 30.0])
    # top 20% = 2 customers (50, 30), next 30% = 3 (20, 9, 7), the rest low
    assert value_tiers(value, PARAMS).tolist() == [
        "low", "high", "low", "mid", "low", "mid", "mid", "low", "low", "high",
    ]  # fmt: skip


def test_lifecycle_stages_in_order_of_precedence():
    snapshot = pd.DataFrame(
        {
            "recency_days": [200.0, 10.0, 10.0, 10.0, 10.0, 200.0],
            "tenure_days": [400.0, 30.0, 400.0, 400.0, 400.0, 200.0],
            "gap_last": [20.0, np.nan, 20.0, 190.0, 20.0, np.nan],
        }
    )
    risk = np.array(["high", "high", "high", "low", "low", "low"])
    # lapsed beats everything; new beats at-risk; at-risk beats reactivated
    assert lifecycle_stages(snapshot, risk, PARAMS).tolist() == [
        "lapsed", "new", "at_risk", "reactivated", "active", "lapsed",
    ]  # fmt: skip
    assert segment_names(np.array(["high", "low"]), np.array(["at_risk", "new"])).tolist() == [
        "High-value at-risk",
        "Low-value new",
    ]


def test_campaign_is_the_first_rule_that_fits():
    lifecycle = np.array(["lapsed", "new", "active", "active", "at_risk", "active"])
    value = np.array(["high", "high", "high", "low", "low", "mid"])
    risk = np.array(["low", "high", "medium", "high", "high", "low"])
    assert campaigns(lifecycle=lifecycle, value_tier=value, risk_tier=risk, params=PARAMS).tolist() == [
        "win_back", "onboarding", "churn_prevention", "churn_prevention", "churn_prevention", "none",
    ]  # fmt: skip
    assert campaigns(
        lifecycle=np.array(["active"]),
        value_tier=np.array(["high"]),
        risk_tier=np.array(["low"]),
        params=PARAMS,
    ).tolist() == ["loyalty_care"]


def test_outreach_takes_the_highest_value_at_risk_within_budget_and_skips_no_campaign():
    params = PARAMS.model_copy(update={"contact_budget": 3, "holdout_share": 0.0})
    ids = pd.Series(["a", "b", "c", "d", "e"])
    var = np.array([10.0, 50.0, 30.0, 40.0, 30.0])
    campaign = np.array(["win_back", "none", "onboarding", "churn_prevention", "loyalty_care"])
    tier = np.array(["high", "high", "medium", "high", "medium"])
    outreach, holdout, rank = outreach_plan(
        customer_ids=ids, value_at_risk=var, campaign=campaign, risk_tier=tier, week="2026-W47", params=params
    )
    # b has the most at risk but no campaign; c and e tie at 30: the id breaks the tie
    assert rank.tolist() == [0, 0, 2, 1, 3]
    assert outreach.tolist() == [False, False, True, True, True]
    assert not holdout.any()


def test_the_list_takes_only_the_risk_tiers_asked_for_then_ranks_by_value_at_risk():
    """A valuable customer at low risk (d: the most value at risk) is not called about risk."""
    params = PARAMS.model_copy(update={"contact_budget": 3, "holdout_share": 0.0})
    assert params.outreach_tiers == ["high", "medium"]
    ids = pd.Series(["a", "b", "c", "d", "e"])
    var = np.array([10.0, 20.0, 30.0, 90.0, 5.0])
    campaign = np.array(
        ["win_back", "churn_prevention", "churn_prevention", "loyalty_care", "churn_prevention"]
    )
    tier = np.array(["high", "medium", "high", "low", "medium"])
    kwargs = {
        "customer_ids": ids,
        "value_at_risk": var,
        "campaign": campaign,
        "risk_tier": tier,
        "week": "2026-W47",
    }
    _, _, rank = outreach_plan(**kwargs, params=params)
    assert rank.tolist() == [3, 2, 1, 0, 0]
    _, _, rank = outreach_plan(**kwargs, params=params.model_copy(update={"outreach_tiers": ["high"]}))
    assert rank.tolist() == [2, 0, 1, 0, 0]
    _, _, rank = outreach_plan(
        **kwargs, params=params.model_copy(update={"outreach_tiers": ["high", "medium", "low"]})
    )
    assert rank.tolist() == [0, 3, 2, 1, 0]


def test_holdout_draw_is_a_stable_keyed_hash_of_customer_and_week():
    ids = pd.Series(["c1", "c2"])
    a = holdout_draw(ids, "2026-W47", "k1")
    assert a.tolist() == holdout_draw(ids, "2026-W47", "k1").tolist()
    assert a.tolist() != holdout_draw(ids, "2026-W48", "k1").tolist()
    assert a.tolist() != holdout_draw(ids, "2026-W47", "k2").tolist()
    assert ((a >= 0) & (a < 1)).all()


@settings(max_examples=examples(30), deadline=None)
@given(
    n=st.integers(0, 3000), share=st.floats(0.0, 0.5), budget=st.integers(0, 3000), seed=st.integers(0, 100)
)
def test_holdout_share_is_exact_and_does_not_depend_on_row_order(n, share, budget, seed):
    params = PARAMS.model_copy(update={"contact_budget": budget, "holdout_share": share})
    rng = np.random.default_rng(seed)
    ids = pd.Series([f"c{i:05d}" for i in range(n)])
    var = rng.gamma(1.0, 10.0, n)
    campaign = np.where(rng.random(n) < 0.8, "churn_prevention", "none")
    tier = np.where(rng.random(n) < 0.7, "high", "low")
    outreach, holdout, rank = outreach_plan(
        customer_ids=ids, value_at_risk=var, campaign=campaign, risk_tier=tier, week="2026-W47", params=params
    )
    listed = int(outreach.sum())
    assert listed == min(budget, int(((campaign != "none") & (tier == "high")).sum()))
    assert int(holdout.sum()) == round(share * listed)
    assert not (holdout & ~outreach).any()
    if listed:
        assert abs(holdout.sum() / listed - share) <= 0.5 / listed + 1e-12
    perm = rng.permutation(n)
    o2, h2, r2 = outreach_plan(
        customer_ids=ids.iloc[perm].reset_index(drop=True),
        value_at_risk=var[perm],
        campaign=campaign[perm],
        risk_tier=tier[perm],
        week="2026-W47",
        params=params,
    )
    assert set(ids[holdout]) == set(ids.iloc[perm][h2])
    assert dict(zip(ids[outreach], rank[outreach], strict=True)) == dict(
        zip(ids.iloc[perm][o2], r2[o2], strict=True)
    )


def test_predicted_value_is_expected_orders_times_expected_order_value():
    rng = np.random.default_rng(0)
    n = 2000
    snapshot = pd.DataFrame(
        {
            "n_orders": rng.integers(1, 8, n).astype(float),
            "recency_days": rng.uniform(0, 200, n),
            "tenure_days": 400.0,
            "avg_order_value": rng.gamma(4.0, 10.0, n),
        }
    )
    pnbd = ParetoNBD(r=0.55, alpha=10.6, s=0.61, beta=11.7)
    out = predicted_value(snapshot, pnbd, 365)
    np.testing.assert_allclose(out["value"], out["expected_orders"] * out["expected_order_value"])
    assert (out["value"] >= 0).all()
    # a customer who ordered just now is alive for sure, where the Pareto/NBD expectation has a
    # closed form (Schmittlein, Morrison and Colombo 1987): (r + x)(beta + T) / ((alpha + T)(s - 1))
    # x [1 - ((beta + T) / (beta + T + t))^(s - 1)], in weeks
    now = snapshot.iloc[[0]].assign(n_orders=3.0, recency_days=0.0, tenure_days=400.0)
    x, big_t, t = 2.0, 400 / 7, 365 / 7
    r, alpha, s_, beta = 0.55, 10.6, 0.61, 11.7
    expected = (
        (r + x) * (beta + big_t) / ((alpha + big_t) * (s_ - 1))
        * (1 - ((beta + big_t) / (beta + big_t + t)) ** (s_ - 1))
    )  # fmt: skip
    got = predicted_value(pd.concat([now, snapshot], ignore_index=True), pnbd, 365)["expected_orders"][0]
    assert got == pytest.approx(expected, rel=1e-9)
    # more recent buyers of the same frequency are worth more
    same = snapshot.iloc[[0, 0]].assign(recency_days=[5.0, 190.0])
    orders = predicted_value(pd.concat([same, snapshot], ignore_index=True), pnbd, 365)["expected_orders"]
    assert orders[0] > orders[1]


def test_the_exploration_sample_is_exact_and_every_row_carries_its_chance_of_contact():
    # ten customers: c0-c2 on the list (c1 held out), c3-c7 off it with a campaign, c8 with none,
    # c9 suppressed. 40% of the 5 in the pool: exactly 2, each with chance 0.4 without values
    ids = pd.Series([f"c{i}" for i in range(10)])
    outreach = np.array([True] * 3 + [False] * 7)
    holdout = np.array([False, True] + [False] * 8)
    campaign = np.array(["churn_prevention"] * 8 + ["none", "win_back"])
    suppressed = np.array([False] * 9 + [True])
    params = PARAMS.model_copy(update={"exploration_share": 0.4, "exploration_budget": 10})
    got = exploration_sample(
        customer_ids=ids, outreach=outreach, holdout=holdout, campaign=campaign, week="2026-W47",
        params=params, suppressed=suppressed,
    )  # fmt: skip
    # the pool in the order of its keyed draws, laid end to end 0.4 each: the keyed start s and
    # s + 1 fall in the stretches floor(s / 0.4) and floor((s + 1) / 0.4)
    draws = holdout_draw(ids.iloc[3:8], "explore|2026-W47", params.holdout_key)
    start = holdout_draw(pd.Series([""]), "explore-start|2026-W47", params.holdout_key)[0]
    in_order = ids.iloc[3:8].iloc[np.argsort(draws)].tolist()
    chosen = {in_order[int(start // 0.4)], in_order[int((start + 1) // 0.4)]}
    assert set(ids[got.contacted]) == chosen and len(chosen) == 2
    assert got.contact_probability.tolist() == pytest.approx([2 / 3] * 3 + [0.4] * 5 + [0.0, 0.0], abs=1e-15)
    assert got.policy.tolist() == ["value_at_risk"] * 3 + ["exploration"] * 5 + ["none", "none"]
    # the budget caps the sample, and the probability with it
    capped = exploration_sample(
        customer_ids=ids, outreach=outreach, holdout=holdout, campaign=campaign, week="2026-W47",
        params=params.model_copy(update={"exploration_budget": 1}), suppressed=suppressed,
    )  # fmt: skip
    assert int(capped.contacted.sum()) == 1 and capped.contact_probability[3:8] == pytest.approx([0.2] * 5)
    # by predicted value (even share 0.2): c3-c7 worth 0, 0, 10, 10, 20 -> chances
    # 2 x (0.2 / 5 + 0.8 x v / 40) = 0.08, 0.08, 0.48, 0.48, 0.88, adding up to the 2 explored
    value = np.array([500.0] * 3 + [0.0, 0.0, 10.0, 10.0, 20.0] + [99.0] * 2)
    weighted = exploration_sample(
        customer_ids=ids, outreach=outreach, holdout=holdout, campaign=campaign, week="2026-W47",
        params=params.model_copy(update={"exploration_even_share": 0.2}), value=value, suppressed=suppressed,
    )  # fmt: skip
    assert weighted.contact_probability[3:8] == pytest.approx([0.08, 0.08, 0.48, 0.48, 0.88])
    assert weighted.contact_probability[[0, 1, 2, 8, 9]] == pytest.approx([2 / 3] * 3 + [0.0, 0.0])
    assert int(weighted.contacted.sum()) == 2
    # another week draws again, independently of the holdout's draws
    weeks = {
        frozenset(ids[exploration_sample(
            customer_ids=ids, outreach=outreach, holdout=holdout, campaign=campaign, week=f"2026-W{w}",
            params=params, suppressed=suppressed,
        ).contacted]) for w in range(40, 52)
    }  # fmt: skip
    assert len(weeks) > 3


def test_exploration_chances_follow_value_and_a_capped_member_passes_its_excess_on():
    # even share 0.2, k = 2: 2 x (0.2 / 5 + 0.8 x v / 8)
    got = exploration_chances(np.array([1.0, 1.0, 2.0, 4.0, 0.0]), k=2, even_share=0.2)
    assert got == pytest.approx([0.28, 0.28, 0.48, 0.88, 0.08])
    # even share 0.5, k = 2, values 10, 1, 1, 0: weights 0.125 + 0.5 v / 12 give the first 1.083,
    # capped at 1; the other contact goes to the rest in proportion to 1/6, 1/6, 1/8: 4/11, 4/11, 3/11
    got = exploration_chances(np.array([10.0, 1.0, 1.0, 0.0]), k=2, even_share=0.5)
    assert got == pytest.approx([1.0, 4 / 11, 4 / 11, 3 / 11])
    # no values (or none positive, or missing): an even draw
    none = exploration_chances(np.array([0.0, np.nan, 0.0, 0.0]), k=1, even_share=0.3)
    assert none == pytest.approx([0.25] * 4)
    assert exploration_chances(np.array([]), k=0, even_share=0.3).tolist() == []


def test_the_systematic_draw_picks_the_stretches_the_points_fall_in_each_with_its_exact_chance():
    chance = np.array([0.28, 0.28, 0.48, 0.88, 0.08])
    # laid end to end: [0, 0.28) [0.28, 0.56) [0.56, 1.04) [1.04, 1.92) [1.92, 2); points 0.5, 1.5
    assert systematic_draw(chance, np.arange(5), start=0.5).tolist() == [False, True, False, True, False]
    # in the reverse order, from 0.0: stretches 4 [0, 0.08), 3 [0.08, 0.96), 2 [0.96, 1.44), ...;
    # the points 0 and 1 fall in members 4 and 2
    order = np.array([4, 3, 2, 1, 0])
    assert systematic_draw(chance, order, start=0.0).tolist() == [False, False, True, False, True]
    # over every start, each member is picked with exactly its chance, and always 2 are picked
    starts = (np.arange(10_000) + 0.5) / 10_000
    picks = np.array([systematic_draw(chance, order, start=s) for s in starts])
    assert (picks.sum(axis=1) == 2).all()
    assert picks.mean(axis=0) == pytest.approx(chance, abs=1e-4)


@settings(max_examples=examples(60), deadline=None)
@given(
    n=st.integers(1, 300),
    k=st.integers(0, 300),
    even=st.floats(0.01, 1.0),
    sigma=st.floats(0.0, 4.0),
    zeros=st.floats(0.0, 0.5),
    seed=st.integers(0, 1000),
)
def test_exploration_chances_add_up_to_k_and_none_falls_below_the_even_part(n, k, even, sigma, zeros, seed):
    k = min(k, n)
    rng = np.random.default_rng(seed)
    value = np.where(rng.random(n) < zeros, 0.0, rng.lognormal(3.0, sigma, n))
    chance = exploration_chances(value, k=k, even_share=even)
    assert chance.sum() == pytest.approx(k, abs=1e-9)
    assert (chance <= 1.0 + 1e-12).all()
    assert (chance >= min(1.0, even * k / n) - 1e-12).all()
    # a higher value never gets a lower chance
    by_value = np.argsort(value, kind="stable")
    assert (np.diff(chance[by_value]) >= -1e-12).all()
    # whatever the order and the start, exactly k are drawn
    picked = systematic_draw(chance, rng.permutation(n), start=float(rng.random()))
    assert int(picked.sum()) == k
    assert picked[chance >= 1.0 - 1e-12].all()


@settings(max_examples=examples(30), deadline=None)
@given(
    n=st.integers(0, 2000), share=st.floats(0.0, 1.0), budget=st.integers(0, 500), seed=st.integers(0, 100)
)
def test_exploration_takes_exactly_its_share_within_budget_whatever_the_row_order(n, share, budget, seed):
    params = PARAMS.model_copy(update={"exploration_share": share, "exploration_budget": budget})
    rng = np.random.default_rng(seed)
    ids = pd.Series([f"c{i:05d}" for i in range(n)])
    outreach = rng.random(n) < 0.2
    holdout = outreach & (rng.random(n) < 0.1)
    campaign = np.where(rng.random(n) < 0.8, "churn_prevention", "none")
    value = rng.lognormal(3.0, 1.5, n)
    got = exploration_sample(
        customer_ids=ids,
        outreach=outreach,
        holdout=holdout,
        campaign=campaign,
        week="2026-W47",
        params=params,
        value=value,
    )
    pool = ~outreach & (campaign != "none")
    k = min(budget, round(share * int(pool.sum())))
    assert int(got.contacted.sum()) == k and not (got.contacted & ~pool).any()
    # the probabilities add up to the contacts they promise, in the pool and on the list
    assert got.contact_probability[pool].sum() == pytest.approx(k)
    assert got.contact_probability[outreach].sum() == pytest.approx(int((outreach & ~holdout).sum()))
    assert (got.contact_probability[~pool & ~outreach] == 0).all()
    perm = rng.permutation(n)
    again = exploration_sample(
        customer_ids=ids.iloc[perm].reset_index(drop=True), outreach=outreach[perm], holdout=holdout[perm],
        campaign=campaign[perm], week="2026-W47", params=params, value=value[perm],
    )  # fmt: skip
    assert set(ids[got.contacted]) == set(ids.iloc[perm][again.contacted])
