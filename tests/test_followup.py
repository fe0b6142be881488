import numpy as np
import pandas as pd
import pytest

from pipeline.commands.followup import PlantedEffects, RiskEffects, play_weeks
from pipeline.core.params import load_params
from tests.conftest import ROOT

PARAMS = load_params(ROOT / "params.yaml").score.model_copy(
    update={"contact_budget": 40, "exploration_share": 0.05, "exploration_budget": 200}
)
EXACT = PlantedEffects(persuadable=0.5, sleeping_dog=-0.5)  # at risk 0.5: always or never retained


def test_planted_effects_by_kind_in_order_of_precedence_and_within_bounds():
    frame = pd.DataFrame(
        {
            "churn_probability": [0.95, 0.10, 0.50, 0.50, 0.50, 0.30],
            "channel": ["app", "app", "app", "web", "web", "web"],
            "avg_order_value": [90.0, 90.0, 90.0, 90.0, 10.0, 90.0],
        }
    )
    untreated, effect, kind = PlantedEffects(persuadable=0.9).of(frame)
    assert kind.tolist() == [
        "lost_cause",
        "sure_thing",
        "sleeping_dog",
        "persuadable",
        "other",
        "persuadable",
    ]
    # the persuadables' 0.9 is cut to 1 - their untreated retention, 0.5 and 0.7
    assert effect == pytest.approx([0.0, 0.0, -0.05, 0.5, 0.02, 0.3])
    assert untreated == pytest.approx([0.05, 0.9, 0.5, 0.5, 0.5, 0.7])


def test_effects_that_follow_risk_make_value_at_risk_the_best_ranking():
    frame = pd.DataFrame({"churn_probability": [0.9, 0.5, 0.1]})
    untreated, effect, kind = RiskEffects(share=0.2).of(frame)
    assert effect == pytest.approx([0.18, 0.1, 0.02]) and untreated == pytest.approx([0.1, 0.5, 0.9])
    assert kind.tolist() == ["follows_risk"] * 3
    # each contact's true worth, effect x value, ranks as the value at risk does
    value = np.array([10.0, 100.0, 50.0])
    worth, at_risk = effect * value, frame["churn_probability"].to_numpy() * value
    assert np.argsort(worth).tolist() == np.argsort(at_risk).tolist() == [2, 0, 1]


def shop(n: int = 300) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(3)
    risk = np.full(n, 0.5)
    risk[:10], risk[10:20] = 0.0, 1.0
    campaign = np.where(np.arange(n) % 15 == 14, "none", "churn_prevention")
    value = rng.gamma(2.0, 50.0, n)
    scores = pd.DataFrame(
        {
            "customer_id": [f"C{i:03d}" for i in range(n)],
            "score_date": "2026-11-16",
            "horizon_days": 90,
            "churn_probability": risk,
            "risk_tier": np.where(risk >= 0.4, "medium", "low"),
            "predicted_value": value,
            "value_at_risk": risk * value,
            "recommended_campaign": campaign,
            "do_not_contact": np.arange(n) % 50 == 7,
        }
    )
    snapshot = pd.DataFrame(
        {
            "customer_id": scores["customer_id"],
            "channel": np.where(np.arange(n) % 3 == 0, "app", "web"),
            "avg_order_value": rng.gamma(2.0, 20.0, n),
            "n_orders": rng.integers(1, 9, n).astype(float),
        }
    )
    return scores, snapshot


def test_play_weeks_keeps_every_thirteenth_week_whose_window_has_closed():
    scores, snapshot = shop()
    table, truth = play_weeks(
        customers=scores, snapshot=snapshot, params=PARAMS, weeks=30, seed=1, effects=EXACT
    )
    # 90-day windows: weeks 0 and 13 close by week 26 and 30; week 26 would close at 39
    assert table["week"].drop_duplicates().tolist() == ["2026-W47", "2027-W07"]
    assert table["score_date"].drop_duplicates().tolist() == ["2026-11-16", "2027-02-15"]
    assert len(table) == len(truth) == 600
    assert list(table.columns[-3:]) == ["channel", "avg_order_value", "n_orders"]


def test_each_weeks_contacts_and_their_exact_chances():
    scores, snapshot = shop()
    table, _ = play_weeks(customers=scores, snapshot=snapshot, params=PARAMS, weeks=30, seed=1, effects=EXACT)
    for _, week in table.groupby("week"):
        listed, held = week["outreach"], week["holdout"]
        assert listed.sum() == 40 and held.sum() == 4 and not (held & ~listed).any()
        pool = ~listed & (week["recommended_campaign"] != "none") & ~scores["do_not_contact"].to_numpy()
        k = round(0.05 * pool.sum())
        assert week["exploration"].sum() == k and not (week["exploration"] & ~pool).any()
        assert (week["contact"] == ((listed & ~held) | week["exploration"])).all()
        # off the list by predicted value: k x (even / N + (1 - even) x v / sum v), none capped here
        value, even = week["predicted_value"].to_numpy(), PARAMS.exploration_even_share
        by_value = k * (even / pool.sum() + (1 - even) * value / value[pool].sum())
        assert by_value[pool].max() < 1 and by_value[pool].max() > 2 * by_value[pool].min()
        expected = np.where(listed, 0.9, np.where(pool, by_value, 0.0))
        assert week["contact_probability"].to_numpy() == pytest.approx(expected)
        assert not week.loc[week["recommended_campaign"] == "none", "contact"].any()


def test_outcomes_follow_the_planted_effects_exactly_where_they_are_certain():
    scores, snapshot = shop()
    table, truth = play_weeks(
        customers=scores, snapshot=snapshot, params=PARAMS, weeks=30, seed=1, effects=EXACT
    )
    contacted = table["contact"].to_numpy()
    kind = truth["effect_type"].to_numpy()
    assert table.loc[(table["churn_probability"] == 0.0).to_numpy(), "retained"].eq(1).all()
    assert table.loc[(table["churn_probability"] == 1.0).to_numpy(), "retained"].eq(0).all()
    persuaded, driven_away = contacted & (kind == "persuadable"), contacted & (kind == "sleeping_dog")
    assert persuaded.sum() > 5 and driven_away.sum() > 5
    assert table.loc[persuaded, "retained"].eq(1).all() and table.loc[driven_away, "retained"].eq(0).all()
    assert truth.loc[kind == "persuadable", "true_uplift"].eq(0.5).all()


def test_the_same_seed_plays_the_same_weeks_and_another_draws_anew():
    scores, snapshot = shop()
    first = play_weeks(customers=scores, snapshot=snapshot, params=PARAMS, weeks=30, seed=1)[0]
    again = play_weeks(customers=scores, snapshot=snapshot, params=PARAMS, weeks=30, seed=1)[0]
    other = play_weeks(customers=scores, snapshot=snapshot, params=PARAMS, weeks=30, seed=2)[0]
    pd.testing.assert_frame_equal(first, again)
    assert not first["exploration"].equals(other["exploration"])


def test_too_few_weeks_for_a_closed_window_are_refused():
    scores, snapshot = shop()
    with pytest.raises(ValueError, match="no 90-day window"):
        play_weeks(customers=scores, snapshot=snapshot, params=PARAMS, weeks=12, seed=1)


def test_simulate_outcomes_writes_an_outcome_table_churn_uplift_reads(tmp_path):
    import datetime as dt

    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.commands.uplift import read_outcomes
    from pipeline.core.uplift import OUTCOME_COLUMNS
    from pipeline.stages.score import publish, snapshot_archive
    from tests.conftest import score_table_example, scoring_inputs

    snapshot, _, _ = scoring_inputs()
    scores = publish(score_table_example(), tmp_path / "scores", {"model_version": "churn-model/3"})
    archive = snapshot_archive(tmp_path / "scores", dt.date(2026, 11, 16))
    archive.parent.mkdir()
    snapshot.to_parquet(archive)
    out, truth = tmp_path / "outcomes.parquet", tmp_path / "truth.parquet"
    result = CliRunner().invoke(
        app,
        [
            "simulate-outcomes",
            "--scores",
            str(scores),
            "--out",
            str(out),
            "--truth",
            str(truth),
            "--weeks",
            "30",
        ],
    )
    assert result.exit_code == 0, result.output
    table = read_outcomes(out)
    assert len(table) == 600 and list(table.columns[: len(OUTCOME_COLUMNS)]) == OUTCOME_COLUMNS
    assert "channel" in table.columns and "cutoff" not in table.columns
    known = pd.read_parquet(truth)
    assert (known["customer_id"] == table["customer_id"]).all() and set(known["effect_type"]) <= {
        "lost_cause", "sure_thing", "sleeping_dog", "persuadable", "other",
    }  # fmt: skip
    assert "600 customer-weeks in 2 week(s)" in result.output
