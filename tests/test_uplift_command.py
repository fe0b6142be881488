import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.commands.followup import PlantedEffects, play_weeks
from pipeline.core.params import load_params
from pipeline.core.uplift import Look, load_learner
from tests.conftest import ROOT
from tests.test_followup import shop

PARAMS = ROOT / "params.yaml"
THIRD_LOOK = Look(number=3, period_weeks=13, weeks=["2027-W33"])


def outcome_table(
    path, weeks: int, effects: PlantedEffects, n: int = 4000, exploration: float = 0.3
) -> pd.DataFrame:
    params = load_params(PARAMS).score.model_copy(
        update={"contact_budget": 400, "exploration_share": exploration, "exploration_budget": 2000}
    )
    scores, snapshot = shop(n)
    table, truth = play_weeks(
        customers=scores, snapshot=snapshot, params=params, weeks=weeks, seed=4, effects=effects
    )
    table.to_parquet(path)
    return truth


def run(outcomes, out, tmp_path, budget: int = 400) -> str:
    params = tmp_path / "params.yaml"
    text = PARAMS.read_text().replace("contact_budget: 2000", f"contact_budget: {budget}")
    params.write_text(text)
    result = CliRunner().invoke(
        app, ["uplift", "--outcomes", str(outcomes), "--out-dir", str(out), "--params", str(params)]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_a_strong_effect_switches_the_ranking_and_keeps_the_model(tmp_path):
    # contact keeps every persuadable (untreated 0.5 + 0.5) and loses every sleeping dog
    outcomes = tmp_path / "outcomes.parquet"
    outcome_table(outcomes, weeks=73, effects=PlantedEffects(persuadable=0.5, sleeping_dog=-0.5))
    out = tmp_path / "uplift"
    printed = run(outcomes, out, tmp_path)
    summary = json.loads((out / "uplift.json").read_text())
    # five kept weeks, one a period: the third look has the first four; each after the first is
    # judged by the learner fitted on the weeks before it
    assert summary["weeks"] == 5 and summary["look"]["number"] == 3 and summary["look"]["weeks_used"] == 4
    assert summary["train_weeks"] == ["2026-W47"]
    assert summary["test_weeks"] == ["2027-W07", "2027-W20", "2027-W33"]
    assert summary["ranking"] == "uplift" and "ranking uplift" in printed
    d = summary["policy_value_per_week"]["doubly_robust"]["difference"]
    dr = summary["policy_value_per_week"]["doubly_robust"]
    assert dr["switch_bound_z"] == summary["look"]["z"] == 2.9311 and dr["switch"]
    assert (
        d["value"] - THIRD_LOOK.z * d["se"] == pytest.approx(dr["switch_low"], abs=1e-3)
        and dr["switch_low"] > 0
    )
    kept = load_learner(out / "model")
    table = pd.read_parquet(outcomes)
    effect = kept.effect(table)
    kinds = PlantedEffects().of(
        pd.concat([table[["churn_probability"]], table[["channel", "avg_order_value"]]], axis=1)
    )[2]
    assert effect[kinds == "persuadable"].mean() > 0.3 and effect[kinds == "sleeping_dog"].mean() < -0.2
    guards = pd.read_csv(out / "guardrails.csv")
    assert guards["week"].tolist() == ["2026-W47", "2027-W07", "2027-W20", "2027-W33", "2027-W46"]
    assert (guards["list_contacted"] == 360).all()
    assert "Uplift: whom outreach changes" in (out / "uplift.md").read_text()
    assert (out / "qini.csv").exists() and len(pd.read_csv(out / "deciles.csv")) == 10
    runs = mlflow.search_runs(filter_string="tags.kind = 'uplift'")
    assert "uplift" in runs["tags.ranking"].tolist() and "metrics.uplift/weeks" in runs.columns


def test_no_effect_keeps_value_at_risk_and_says_why(tmp_path):
    outcomes = tmp_path / "outcomes.parquet"
    none = PlantedEffects(persuadable=0.0, sleeping_dog=0.0, other=0.0)
    outcome_table(outcomes, weeks=60, effects=none)
    out = tmp_path / "uplift"
    run(outcomes, out, tmp_path)
    summary = json.loads((out / "uplift.json").read_text())
    assert summary["ranking"] == "value_at_risk" and "not surely above zero" in summary["why"]
    assert not (out / "model").exists()


def test_one_week_of_outcomes_is_not_enough(tmp_path):
    outcomes = tmp_path / "outcomes.parquet"
    outcome_table(outcomes, weeks=20, effects=PlantedEffects())
    out = tmp_path / "uplift"
    run(outcomes, out, tmp_path)
    summary = json.loads((out / "uplift.json").read_text())
    assert summary["weeks"] == 1 and summary["ranking"] == "value_at_risk"
    assert "first looks at two periods of 13 weeks" in summary["why"]
    assert np.isfinite(pd.read_csv(out / "guardrails.csv")["list_churn_contacted"]).all()


def test_a_table_that_is_not_an_outcome_table_is_one_line(tmp_path):
    path = tmp_path / "other.parquet"
    pd.DataFrame({"customer_id": ["a"]}).to_parquet(path)
    result = CliRunner().invoke(app, ["uplift", "--outcomes", str(path), "--out-dir", str(tmp_path / "u")])
    assert result.exit_code == 2 and "not an outcome table" in result.output
