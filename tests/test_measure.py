import datetime as dt
import json
import math

import mlflow
import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.commands.followup import followup
from pipeline.commands.measure import (
    MeasureError,
    apart,
    contact_columns,
    measure,
    outcome_table,
    realized_churn,
    retention_lift,
)
from pipeline.core.io import unescape_formulas
from pipeline.core.tables import SCORE_FILE_SCHEMA, TRANSACTIONS, validate
from pipeline.stages.score import publish, snapshot_archive


def test_retention_lift_with_a_wald_interval():
    retained = np.array([1, 1, 1, 1, 0, 1, 0, 0])
    contacted = np.array([1, 1, 1, 1, 1, 0, 0, 0], dtype=bool)
    held_out = np.array([0, 0, 0, 0, 0, 1, 1, 0], dtype=bool)
    lift = retention_lift(retained, contacted, held_out)
    assert (lift.contacted, lift.held_out) == (5, 2)
    assert (lift.retention_contacted, lift.retention_held_out) == (0.8, 0.5)
    se = math.sqrt(0.8 * 0.2 / 5 + 0.5 * 0.5 / 2)
    assert lift.lift == pytest.approx(0.3)
    assert (lift.ci_low, lift.ci_high) == pytest.approx((0.3 - 1.959964 * se, 0.3 + 1.959964 * se), abs=1e-6)
    with pytest.raises(MeasureError, match="0 held-out customers"):
        retention_lift(retained, contacted, np.zeros(8, dtype=bool))


def test_escaped_ids_are_restored():
    ids = pd.Series(["'=cmd", "'+44", "'plain", "007", "'@x"])
    assert unescape_formulas(ids).tolist() == ["=cmd", "+44", "'plain", "007", "@x"]


def _lines(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["customer_id", "order_ts", "amount"])
    frame["order_ts"] = pd.to_datetime(frame["order_ts"]).astype("datetime64[us]")
    frame.insert(0, "source_row", np.arange(1, len(frame) + 1, dtype="int64"))
    return validate(frame, TRANSACTIONS, "t")


def test_realized_churn_uses_the_half_open_window_and_ignores_returns(tmp_path):
    scores = pd.DataFrame(
        {"customer_id": ["a", "b", "c", "d"], "score_date": "2026-01-01", "horizon_days": 10}
    )
    lines = _lines(
        [
            ("a", "2026-01-01 00:00", 5.0),  # at the start: in the window
            ("b", "2026-01-11 00:00", 5.0),  # at the end: outside
            ("c", "2026-01-05 10:00", -5.0),  # a return is not an order
            ("d", "2025-12-31 23:59", 5.0),  # before the file
            ("x", "2026-01-10 23:00", 1.0),  # the data reaches the window's end
        ]
    )
    path = tmp_path / "later.parquet"
    lines.to_parquet(path)
    churned, start, end = realized_churn(scores, path)
    assert churned.tolist() == [0, 1, 1, 1]
    assert (start.isoformat(), end.isoformat()) == ("2026-01-01", "2026-01-11")
    lines.iloc[[0, 3]].to_parquet(path)
    with pytest.raises(MeasureError, match="the data ends 2026-01-01 00:00:00, before the 10-day window"):
        realized_churn(scores, path)


def _shop(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    ids = [f"c{i:05d}" for i in range(n)]
    start = pd.Timestamp("2026-11-16")
    customers = pd.DataFrame(
        {
            "customer_id": ids,
            "purchase_rate_per_day": rng.gamma(1.0, 0.02, n),
            "dropout_ts": start + pd.to_timedelta(rng.exponential(120.0, n), unit="D"),
        }
    )
    outreach = np.arange(n) < n // 2
    scores = pd.DataFrame(
        {
            "customer_id": ids,
            "score_date": "2026-11-16",
            "horizon_days": 90,
            "churn_probability": 0.5,
            "outreach": outreach,
            "holdout": outreach & (rng.random(n) < 0.3),
            "recommended_campaign": "churn_prevention",
            "risk_tier": "medium",
            "risk_decile": 5,
            "model_version": "m/1",
        }
    )
    return customers, scores


@pytest.mark.parametrize("effect", [0.0, 0.25])
def test_measure_recovers_the_injected_treatment_effect(tmp_path, effect):
    customers, scores = _shop(20_000, seed=4)
    lines, truth = followup(customers, scores, effect, seed=9)
    path = tmp_path / "later.parquet"
    lines.to_parquet(path)
    churned, _, _ = realized_churn(scores, path)
    result = measure(scores=scores, churned=churned, top_share=0.1, bins=10)["outreach"]
    assert result["ci_low"] <= truth["true_retention_lift"] <= result["ci_high"]
    assert result["ci_low"] <= truth["expected_retention_lift"] <= result["ci_high"]
    # derived by hand from _shop's population: lambda ~ Exponential(mean 0.02 per day) and alive
    # for A = min(D, 90) days, D ~ Exponential(mean 120): P(no order) = E[1 / (1 + 0.02 A)]
    quiet = quad(lambda a: np.exp(-a / 120) / 120 / (1 + 0.02 * a), 0, 90)[0] + np.exp(-90 / 120) / (
        1 + 0.02 * 90
    )
    contacted = truth["contacted"]
    assert contacted == int((scores["outreach"] & ~scores["holdout"]).sum())
    # the simulated untreated churn of the contacted agrees with the population's, within 4 SE
    assert truth["contacted_untreated_churn_rate"] == pytest.approx(
        quiet, abs=4 * math.sqrt(quiet * (1 - quiet) / contacted)
    )
    assert result["ci_low"] <= effect * quiet <= result["ci_high"]
    if effect:
        assert result["ci_low"] > 0  # the effect is detected, not only covered


def test_churn_measure_writes_the_report_and_logs_to_mlflow(tmp_path, monkeypatch):
    customers, scores = _shop(3000, seed=5)
    full = scores.assign(
        valid_until="2026-11-22",
        value_tier="mid",
        lifecycle_stage="active",
        segment="Mid-value active",
        predicted_value=10.0,
        value_at_risk=5.0,
        reason_1="",
        reason_1_points=np.nan,
        reason_2="",
        reason_2_points=np.nan,
        reason_3="",
        reason_3_points=np.nan,
        outreach_rank=pd.array(
            [i + 1 if o else None for i, o in enumerate(scores["outreach"])], dtype="Int64"
        ),
        do_not_contact=False,
        exploration=False,
        contact=scores["outreach"] & ~scores["holdout"],
        contact_probability=np.where(scores["outreach"], 0.9, 0.0),
        contact_policy=np.where(scores["outreach"], "value_at_risk", "none"),
        predicted_uplift=np.nan,
        schema_version="1.2",
    )
    full = full[[f["name"] for f in SCORE_FILE_SCHEMA["fields"]]].astype(
        {"horizon_days": "Int64", "risk_decile": "Int64"}
    )
    score_file = publish(full, tmp_path / "scores", {})
    lines, _ = followup(customers, scores, 0.3, seed=2)
    later = tmp_path / "later.parquet"
    lines.to_parquet(later)
    out = tmp_path / "measure"
    result = CliRunner().invoke(
        app, ["measure", "--scores", str(score_file), "--transactions", str(later), "--out-dir", str(out)]
    )
    assert result.exit_code == 0, result.output
    measured = json.loads((out / "measure.json").read_text())
    assert measured["window"] == ["2026-11-16", "2027-02-14"]
    assert measured["outreach"]["contacted"] == int((scores["outreach"] & ~scores["holdout"]).sum())
    assert "lift" in (out / "report.md").read_text() and (out / "by_decile.csv").exists()
    runs = mlflow.search_runs(filter_string="tags.kind = 'measure'")
    assert len(runs) >= 1 and "metrics.outreach/lift" in runs.columns


def test_apart_keeps_each_customers_weeks_whose_windows_do_not_overlap():
    table = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "a"],
            "score_date": ["2026-01-05", "2026-01-12", "2026-04-06", "2026-01-12", "2026-04-05"],
            "horizon_days": [90, 90, 90, 90, 90],
        }
    )
    # a: 01-05's window ends 04-05, so 01-12 overlaps it and 04-05 starts right at its end; 04-06
    # then overlaps 04-05's. b's one week is kept
    kept = apart(table)
    assert sorted(zip(kept["customer_id"], kept["score_date"], strict=True)) == [
        ("a", "2026-01-05"), ("a", "2026-04-05"), ("b", "2026-01-12")
    ]  # fmt: skip


def test_a_file_of_schema_1_0_gets_the_contact_columns_its_list_implies():
    scores = pd.DataFrame(
        {"outreach": [True, True, True, True, False], "holdout": [False, True, False, False, False]}
    )
    got = contact_columns(scores)
    assert got["contact"].tolist() == [True, False, True, True, False]
    assert got["contact_probability"].tolist() == [0.75, 0.75, 0.75, 0.75, 0.0]
    assert got["contact_policy"].tolist() == ["value_at_risk"] * 4 + ["none"]
    assert not got["exploration"].any()


def test_the_outcome_table_joins_each_closed_week_to_its_outcome_and_features(tmp_path):
    from tests.conftest import score_table_example, scoring_inputs

    table = score_table_example()
    scores_dir = tmp_path / "scores"
    path = publish(table, scores_dir, {})
    snapshot, _, _ = scoring_inputs()
    archive = snapshot_archive(scores_dir, dt.date(2026, 11, 16))
    archive.parent.mkdir(parents=True)
    snapshot.to_parquet(archive)
    buyers = ["00010", "00011", "00200"]
    lines = _lines(
        # 00012 orders the day the window ends: not in it
        [(c, "2026-12-01 10:00", 5.0) for c in buyers] + [("00012", "2027-02-14 00:00", 5.0)]
    )
    later = tmp_path / "later.parquet"
    lines.to_parquet(later)
    out, skipped = outcome_table([path], later)
    assert skipped == [] and len(out) == 300 and (out["week"] == "2026-W47").all()
    assert set(out.loc[out["retained"] == 1, "customer_id"]) == set(buyers)
    assert out["contact"].sum() == int(((table["outreach"] & ~table["holdout"]) | table["exploration"]).sum())
    by_id = out.set_index("customer_id")
    assert (
        by_id.loc["00010", "recency_days"] == snapshot.set_index("customer_id").loc["00010", "recency_days"]
    )
    assert set(out.columns) >= {"contact_probability", "contact_policy", "gap_mean", "channel"}
    # a file whose window has not closed yet is left out, with why
    early = tmp_path / "early.parquet"
    _lines([("00010", "2026-12-01 10:00", 5.0)]).to_parquet(early)
    with pytest.raises(MeasureError, match="no score file whose outcome window has closed"):
        outcome_table([path], early)
    result = CliRunner().invoke(
        app,
        ["outcomes", "--scores-dir", str(scores_dir), "--transactions", str(later),
         "--out", str(tmp_path / "o.parquet")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "300 customer-weeks from 1 week(s)" in result.output
    assert pd.read_parquet(tmp_path / "o.parquet").equals(out)
