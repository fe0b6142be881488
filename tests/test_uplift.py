import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.core.uplift import (
    SWITCH_ALPHA,
    Z_95,
    Boosting,
    Estimate,
    Look,
    PolicyComparison,
    clustered_mean,
    compare_policies,
    customer_folds,
    decile_edges,
    decile_of,
    decile_table,
    dr_scores,
    evaluate,
    fit_dr,
    fit_t,
    fit_x,
    last_look,
    load_learner,
    qini_coefficient,
    qini_curve,
    randomized,
    rolling,
    save_learner,
    top_k,
    uplift_features,
    uplift_policy,
)
from tests.conftest import examples

SMALL = Boosting(n_estimators=60, learning_rate=0.1, num_leaves=4, min_child_samples=40)


def test_clustered_mean_sums_each_customers_deviations_before_squaring():
    got = clustered_mean(np.array([1.0, 2.0, 3.0, 4.0]), np.array(["a", "a", "b", "c"]))
    # mean 2.5; cluster sums of deviations a: -2, b: 0.5, c: 1.5; G/(G-1) = 3/2
    assert got.value == 2.5 and got.clusters == 3
    assert got.se == pytest.approx(math.sqrt(1.5 * (4 + 0.25 + 2.25)) / 4, rel=1e-12)
    assert (got.low, got.high) == pytest.approx(
        (2.5 - 1.959963984540054 * got.se, 2.5 + 1.959963984540054 * got.se)
    )


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=40))
def test_clustered_mean_of_singletons_is_the_usual_standard_error(values):
    values = np.array(values)
    got = clustered_mean(values, np.arange(len(values)))
    assert got.se == pytest.approx(values.std(ddof=1) / math.sqrt(len(values)), rel=1e-9, abs=1e-9)


def test_dr_and_ipw_scores_on_hand_made_rows():
    y, t = np.array([1, 0, 1, 0]), np.array([1, 1, 0, 0])
    e = np.array([0.5, 0.25, 0.5, 0.8])
    mu0, mu1 = np.full(4, 0.2), np.full(4, 0.6)
    assert dr_scores(y=y, t=t, e=e, mu0=mu0, mu1=mu1) == pytest.approx([1.2, -2.0, -1.2, 1.4])
    ipw = dr_scores(y=y, t=t, e=e, mu0=np.zeros(4), mu1=np.zeros(4))
    assert ipw == pytest.approx([2.0, 0.0, -2.0, 0.0])


def test_dr_scores_refuse_a_chance_of_zero_or_one():
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        dr_scores(y=np.array([1]), t=np.array([1]), e=np.array([1.0]), mu0=np.zeros(1), mu1=np.zeros(1))


@settings(max_examples=examples(100), deadline=None)
@given(
    y0=st.integers(0, 1),
    y1=st.integers(0, 1),
    e=st.floats(0.001, 0.999),
    mu0=st.floats(-2, 2),
    mu1=st.floats(-2, 2),
)
def test_dr_score_averaged_over_the_draw_is_the_customers_own_effect(y0, y1, e, mu0, mu1):
    # whatever the outcome models, e Gamma(contacted) + (1 - e) Gamma(not) = y1 - y0
    models = {"e": np.array([e]), "mu0": np.array([mu0]), "mu1": np.array([mu1])}
    contacted = dr_scores(y=np.array([y1]), t=np.array([1]), **models)
    untouched = dr_scores(y=np.array([y0]), t=np.array([0]), **models)
    assert e * contacted[0] + (1 - e) * untouched[0] == pytest.approx(y1 - y0, abs=1e-9)


def test_qini_and_auuc_on_a_hand_made_ranking():
    # C(k) = 0, 2, 2, 3: AUUC = (2 + 2 + 3) / 3 / 3; Qini = ((2 - 1) + (2 - 2) + (3 - 3)) / 3 / 3
    got = qini_coefficient(np.array([3.0, 2.0, 1.0]), np.array([2.0, 0.0, 1.0]))
    assert got == pytest.approx({"qini": 1 / 9, "auuc": 7 / 9})
    curve = qini_curve(np.array([3.0, 2.0, 1.0]), np.array([2.0, 0.0, 1.0]))
    assert curve["gain"].tolist() == pytest.approx([0, 2 / 3, 2 / 3, 1])
    assert curve["random"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])


def test_tied_scores_share_their_gain():
    # the first two tie: C(1) = 1, C(2) = 2, C(3) = 3, the random line itself
    assert qini_coefficient(np.array([1.0, 1.0, 0.0]), np.array([2.0, 0.0, 1.0])) == pytest.approx(
        {"qini": 0.0, "auuc": 6 / 9}
    )


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.floats(-1, 1)), min_size=1, max_size=30),
    st.randoms(use_true_random=False),
)
def test_qini_does_not_depend_on_row_order_and_the_true_effects_rank_best(rows, rnd):
    score, gain = np.array([r[0] for r in rows], dtype=float), np.array([r[1] for r in rows])
    order = list(range(len(rows)))
    rnd.shuffle(order)
    got = qini_coefficient(score, gain)
    assert qini_coefficient(score[order], gain[order]) == pytest.approx(got, abs=1e-9)
    assert qini_coefficient(gain, gain)["qini"] >= got["qini"] - 1e-9


def test_top_k_per_week_among_the_allowed():
    score = np.array([5.0, 4.0, 3.0, 9.0, 1.0, 2.0])
    weeks = np.array(["a", "a", "a", "b", "b", "b"])
    allowed = np.array([False, True, True, True, True, True])
    assert top_k(score=score, groups=weeks, k=2, allowed=allowed).tolist() == [
        False,
        True,
        True,
        True,
        False,
        True,
    ]


def test_uplift_policy_contacts_only_a_positive_net_gain_and_never_an_excluded_row():
    effect = np.array([0.10, 0.05, -0.02, 0.20, 0.01, 0.30])
    value = np.array([100.0, 100.0, 500.0, 10.0, 50.0, 100.0])
    # net gain: 9, 4, -11, 1, -0.5, 29
    got = uplift_policy(
        effect=effect,
        value=value,
        eligible=np.array([True, True, True, True, True, False]),
        weeks=np.zeros(6),
        budget=3,
        cost=1.0,
        excluded=np.array([False, False, False, True, False, False]),
    )
    assert got.tolist() == [True, True, False, False, False, False]


def test_policy_comparison_per_week_with_clustered_intervals():
    gamma = np.array([1.0, 2.0, 0.2, -1.0])
    value = np.array([10.0, 10.0, 20.0, 10.0])
    got = compare_policies(
        gamma=gamma,
        value=value,
        uplift=np.array([True, True, False, False]),
        value_at_risk=np.array([False, True, True, False]),
        clusters=pd.Series(["a", "b", "c", "d"]),
        weeks=np.array(["w", "w", "w", "w"]),
        cost=1.0,
        bound=Z_95,
    )
    # per row: uplift 9 + 19 = 28; value at risk 19 + 3 = 22; difference rows 9, 0, -3, 0
    assert (got.uplift.value, got.value_at_risk.value, got.difference.value) == pytest.approx((28, 22, 6))
    assert got.difference.se == pytest.approx(math.sqrt(108))
    assert got.weeks == 1 and not got.switch


def test_the_switch_fires_only_when_the_whole_interval_is_above_zero():
    n = 400
    gamma = np.where(np.arange(n) % 2 == 0, 0.3, 0.1)
    uplift = np.arange(n) < 200
    got = compare_policies(
        gamma=gamma,
        value=np.full(n, 100.0),
        uplift=uplift,
        value_at_risk=~uplift,
        clusters=pd.Series(np.arange(n) % 100),
        weeks=np.repeat(["w1", "w2"], n // 2),
        cost=1.0,
        bound=Z_95,
    )
    assert got.weeks == 2
    # each half has 100 rows at 0.3 and 100 at 0.1: the policies are worth the same
    assert got.difference.value == pytest.approx(0.0, abs=1e-9) and not got.switch
    better = compare_policies(
        gamma=np.where(uplift, 0.3, 0.1) + 0.01 * (np.arange(n) % 3),
        value=np.full(n, 100.0),
        uplift=uplift,
        value_at_risk=~uplift,
        clusters=pd.Series(np.arange(n)),
        weeks=np.repeat(["w1", "w2"], n // 2),
        cost=1.0,
        bound=Z_95,
    )
    assert better.difference.value > 0 and better.difference.low > 0 and better.switch


def test_each_look_of_the_switch_rule_asks_more_and_every_look_together_at_most_alpha():
    looks = [Look(number=j, period_weeks=13, weeks=["w"]) for j in range(1, 5)]
    # alpha 6 / (pi^2 j^2): 0.0152, 0.0038, 0.0017, 0.00095
    assert [round(look.alpha, 6) for look in looks] == [0.015198, 0.0038, 0.001689, 0.00095]
    assert [round(look.z, 3) for look in looks] == [2.165, 2.669, 2.931, 3.105]
    total = sum(SWITCH_ALPHA * 6 / (math.pi**2 * j**2) for j in range(1, 100_000))
    assert 0.02499 < total < SWITCH_ALPHA
    # the same estimate, 2.5 standard errors above zero: enough at the first look, not the second
    same = Estimate(value=250.0, se=100.0, clusters=300)
    at = {
        j: PolicyComparison(uplift=same, value_at_risk=same, difference=same, weeks=4, bound=looks[j - 1].z)
        for j in (1, 2)
    }
    assert at[1].switch_low == pytest.approx(33.51, abs=0.05) and at[1].switch
    assert at[2].switch_low == pytest.approx(-16.9, abs=0.05) and not at[2].switch
    assert same.low > 0  # a plain 95% interval would switch at both


def outcome_weeks(days: list[int], horizon_days: int = 90) -> pd.DataFrame:
    start = pd.Timestamp("2026-01-05")
    return pd.DataFrame(
        {
            "week": [(start + pd.Timedelta(days=d)).strftime("%G-W%V") for d in days],
            "score_date": [(start + pd.Timedelta(days=d)).date().isoformat() for d in days],
            "horizon_days": horizon_days,
        }
    )


def test_a_look_uses_whole_periods_of_one_horizon_once_a_later_week_has_closed():
    # 90 days: periods of 13 weeks (91 days) from the first week: [0, 91), [91, 182), [182, 273)
    table = outcome_weeks([0, 7, 84, 91, 175, 182])
    seen, look = last_look(table)
    assert seen.index.tolist() == [0, 1, 2, 3, 4] and look.number == 1 and look.period_weeks == 13
    assert look.as_dict() == {
        "number": 1,
        "period_weeks": 13,
        "weeks_used": 5,
        "through_week": "2026-W27",
        "alpha": 0.01519818,
        "z": 2.1649,
    }
    # the next period's first week closing makes the second look, with the third period whole
    seen, look = last_look(outcome_weeks([0, 7, 84, 91, 175, 182, 273]))
    assert look.number == 2 and seen.index.tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match="two periods of 13 weeks"):
        last_look(outcome_weeks([0, 7, 84, 91, 175]))


@given(st.lists(st.integers(0, 400), min_size=1, max_size=30), st.integers(0, 12))
def test_weeks_arriving_within_the_open_period_never_change_a_look(weeks, extra):
    days = sorted({7 * w for w in weeks})
    try:
        before, look = last_look(outcome_weeks(days))
    except ValueError:
        return
    period_days = 91  # periods count from the first week
    open_start = days[0] + (days[-1] - days[0]) // period_days * period_days
    later = sorted({*days, open_start + 7 * extra})
    after, again = last_look(outcome_weeks(later))
    assert again.number == look.number and again.weeks == look.weeks
    assert len(after) == len(before)


def test_deciles_of_predicted_uplift():
    predicted = np.arange(1.0, 21.0)
    edges = decile_edges(predicted)
    assert decile_of(predicted, edges).tolist() == [
        10,
        10,
        9,
        9,
        8,
        8,
        7,
        7,
        6,
        6,
        5,
        5,
        4,
        4,
        3,
        3,
        2,
        2,
        1,
        1,
    ]
    table = decile_table(predicted, gamma=predicted / 10, clusters=pd.Series(np.arange(20)))
    assert table["decile"].tolist() == list(range(1, 11))
    assert table["rows"].tolist() == [2] * 10
    assert table["realized"].tolist() == pytest.approx(
        [1.95, 1.75, 1.55, 1.35, 1.15, 0.95, 0.75, 0.55, 0.35, 0.15]
    )
    assert table["ci_low"].iloc[0] < 1.95 < table["ci_high"].iloc[0]


def test_customer_folds_keep_a_customers_rows_together():
    ids = pd.Series(["a", "b", "a", "c", "b", "a"])
    folds = customer_folds(ids, 2)
    assert all(len(set(folds[(ids == c).to_numpy()])) == 1 for c in "abc")
    assert customer_folds(ids, 2).tolist() == folds.tolist()


def planted(n: int = 6000, seed: int = 0, weeks: int = 2) -> pd.DataFrame:
    """Randomized rows whose contact adds 0.4 to retention for segment A only."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["A", "B"], n)
    noise = rng.random(n)
    e = np.where(noise < 0.5, 0.5, 0.2)
    t = rng.random(n) < e
    effect = np.where(segment == "A", 0.4, 0.0)
    return pd.DataFrame(
        {
            "customer_id": [f"c{i % (n // weeks)}" for i in range(n)],
            "week": np.repeat([f"2026-W{10 + w:02d}" for w in range(weeks)], n // weeks),
            "score_date": np.repeat([f"2026-03-{2 + 7 * w:02d}" for w in range(weeks)], n // weeks),
            "horizon_days": 7,
            "churn_probability": np.full(n, 0.6),
            "predicted_value": np.full(n, 100.0),
            "outreach": noise < 1 / 6,  # a list of about a sixth, its segments at random
            "contact": t,
            "contact_probability": e,
            "retained": (rng.random(n) < 0.3 + effect * t).astype(int),
            "segment": segment,
            "noise": noise,
        }
    )


@pytest.mark.parametrize("fit", [fit_t, fit_x, fit_dr])
def test_each_learner_recovers_a_planted_effect(fit):
    table = planted()
    effect = fit(table, SMALL).effect(table)
    a = (table["segment"] == "A").to_numpy()
    assert effect[a].mean() == pytest.approx(0.4, abs=0.08)
    assert effect[~a].mean() == pytest.approx(0.0, abs=0.08)


def test_the_x_learner_on_a_given_first_stage_is_the_x_learner():
    table = planted(2000)
    given_first = fit_x(table, SMALL, first=fit_t(table, SMALL)).effect(table)
    np.testing.assert_array_equal(given_first, fit_x(table, SMALL).effect(table))


def test_a_learner_needs_both_arms():
    table = planted(200).assign(contact=True)
    with pytest.raises(ValueError, match="contacted and uncontacted"):
        fit_t(table, SMALL)


def test_features_leave_out_ids_dates_decisions_and_the_outcome():
    assert uplift_features(planted(20)) == ["churn_probability", "predicted_value", "segment", "noise"]


def test_only_rows_left_to_chance_are_randomized():
    table = planted(10).assign(contact_probability=[0.0, 1.0, 0.5, 0.9, 0.0, 0.01, 0.2, 1.0, 0.3, 0.0])
    assert randomized(table).index.tolist() == [2, 3, 5, 6, 8]


def test_each_period_is_judged_by_a_learner_fitted_on_the_periods_before_it(monkeypatch):
    import pipeline.core.uplift as uplift

    learned: list[list[str]] = []

    def recording(table, boosting, first=None):
        learned.append(sorted(table["week"].unique()))
        return fit_x(table, boosting, first)

    monkeypatch.setattr(uplift, "fit_x", recording)
    table = planted(n=10000, weeks=5)
    judged, look, first = rolling(table, budget=100, cost=1.0, learner="x", boosting=SMALL)
    # one-week periods: the latest look has the first four weeks (the fifth's period is open)
    assert look.number == 3 and first == ["2026-W10"]
    assert learned == [["2026-W10"], ["2026-W10", "2026-W11"], ["2026-W10", "2026-W11", "2026-W12"]]
    assert [j.period for j in judged] == [1, 2, 3]
    assert [sorted(j.test["week"].unique()) for j in judged] == [["2026-W11"], ["2026-W12"], ["2026-W13"]]
    # an earlier look's judged periods are the same, so each look is a prefix of the last one
    earlier, look2, _ = rolling(
        table[table["week"] <= "2026-W13"], budget=100, cost=1.0, learner="x", boosting=SMALL
    )
    assert look2.number == 2 and [j.period for j in earlier] == [1, 2]
    for a, b in zip(earlier, judged, strict=False):
        np.testing.assert_array_equal(a.effect, b.effect)
        np.testing.assert_array_equal(a.gamma, b.gamma)


def test_evaluate_judges_every_week_after_the_first_and_contacts_within_the_budget():
    table = planted(n=12000, weeks=4)
    got = evaluate(table, budget=500, cost=1.0, learner="x", boosting=SMALL)
    # one-week periods: the latest look has the first three weeks (the fourth's period is open);
    # the second judged by the learner fitted on the first, the third by the one fitted on both
    assert got.look.number == 2 and got.look.weeks == ["2026-W10", "2026-W11", "2026-W12"]
    assert got.train_weeks == ["2026-W10"] and got.test_weeks == ["2026-W11", "2026-W12"]
    assert got.uplift_contacts.sum() == 2 * 500 and len(got.test) == 2 * 3000
    a = (got.test["segment"] == "A").to_numpy()
    assert a[got.uplift_contacts].all()  # the planted effect is in segment A only
    # contacting segment A is worth 0.4 x 100 - 1 a contact, B -1: uplift's 500 contacts a week in
    # A are worth about 19,500 a week; the list of about 500 has half of them in A, about 9,500
    # (within three of their clustered standard errors)
    u, d = got.comparison.uplift, got.comparison.difference
    assert abs(u.value - 19_500) < 3 * u.se and abs(d.value - 10_000) < 3 * d.se
    assert got.qini["qini"] > 0


def test_judging_needs_a_period_after_the_first():
    from pipeline.core.uplift import pooled

    with pytest.raises(ValueError, match="a period after the first"):
        pooled(
            [], learner="x", look=Look(number=1, period_weeks=1, weeks=["2026-W10"]), train_weeks=[], cost=1.0
        )


@pytest.mark.parametrize("fit", [fit_t, fit_x, fit_dr])
def test_a_kept_learner_predicts_what_it_predicted_when_fitted(fit, tmp_path):
    table = planted()
    model = fit(table, SMALL)
    save_learner(model, tmp_path / "model")
    kept = load_learner(tmp_path / "model")
    np.testing.assert_allclose(kept.effect(table), model.effect(table), rtol=0, atol=1e-12)


@pytest.mark.parametrize("fit", [fit_x, fit_dr])
def test_a_kept_learners_shap_values_add_up_to_its_uplift(fit, tmp_path):
    table = planted()
    save_learner(fit(table, SMALL), tmp_path / "model")
    kept = load_learner(tmp_path / "model")
    contrib = kept.contributions(table)
    assert contrib["customer_id"].tolist() == table["customer_id"].tolist()
    total = contrib.drop(columns="customer_id").sum(axis=1).to_numpy()
    np.testing.assert_allclose(total, kept.effect(table), rtol=0, atol=1e-9)
    a = (table["segment"] == "A").to_numpy()
    assert contrib.loc[a, "segment"].mean() > 0.1 > -0.1 > contrib.loc[~a, "segment"].mean()


def test_the_t_learners_uplift_has_no_additive_shap_values(tmp_path):
    save_learner(fit_t(planted(), SMALL), tmp_path / "model")
    kept = load_learner(tmp_path / "model")
    assert not kept.explains
    with pytest.raises(ValueError, match="no additive SHAP"):
        kept.contributions(planted(20))


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"ranking": "uplift", "why": "x"}', '["uplift"]'],
)
def test_a_damaged_decision_is_one_clear_error_naming_the_file(text, tmp_path):
    from pipeline.core.uplift import DecisionError, read_ranking

    (tmp_path / "uplift.json").write_text(text)
    with pytest.raises(DecisionError, match=r"uplift\.json: not a decision of churn uplift"):
        read_ranking(tmp_path)
