import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.core.btyd import ParetoNBD
from pipeline.core.params import load_params
from pipeline.core.tables import (
    SCORE_FILE_SCHEMA,
    SCORES,
    pandera_schema,
    read_table,
    validate,
)
from pipeline.stages.score import ScoreError, publish, risk_tiers, score_table
from tests.conftest import ROOT, examples
from tests.conftest import explainer as _explainer
from tests.conftest import score_table_example as _table
from tests.conftest import scoring_inputs as _scoring

PARAMS = load_params(ROOT / "params.yaml").score


def test_risk_tiers():
    assert risk_tiers(np.array([0.7, 0.69, 0.4, 0.39]), PARAMS).tolist() == [
        "high",
        "medium",
        "medium",
        "low",
    ]


def test_score_table_meets_the_contract_and_plans_the_outreach():
    table = validate(_table(), SCORES, "weekly score file")
    assert list(table.columns) == [f["name"] for f in SCORE_FILE_SCHEMA["fields"]]
    assert table["customer_id"].is_monotonic_increasing
    assert (table["valid_until"] == "2026-11-22").all() and (table["horizon_days"] == 90).all()
    np.testing.assert_allclose(
        table["value_at_risk"], table["churn_probability"] * table["predicted_value"], atol=0.01
    )
    listed = table[table["outreach"]].sort_values("outreach_rank")
    assert len(listed) == 50 and listed["outreach_rank"].tolist() == list(range(1, 51))
    assert listed["value_at_risk"].is_monotonic_decreasing
    assert (listed["recommended_campaign"] != "none").all()
    assert table["holdout"].sum() == 5 and not (table["holdout"] & ~table["outreach"]).any()
    assert (table["value_tier"] == "high").sum() == 60 and (table["value_tier"] == "mid").sum() == 90
    first = table["reason_1_points"].dropna()
    assert ((first > 0) & (first <= 100)).all()
    assert (table["reason_2_points"].isna() == (table["reason_2"] == "")).all()


def test_misaligned_contributions_are_refused():
    snapshot, contrib, p = _scoring()
    explain = _explainer(contrib)
    with pytest.raises(ValueError, match="not aligned"):
        score_table(
            snapshot=snapshot,
            p=p,
            explain=lambda rows: explain(rows).iloc[::-1],
            pnbd=ParetoNBD(r=0.5, alpha=10, s=0.6, beta=12),
            model_version="m/1",
            params=PARAMS,
        )


@pytest.mark.parametrize("reasons_for", ["outreach", "all"])
def test_reasons_are_computed_for_the_outreach_list_or_for_everyone(reasons_for):
    snapshot, contrib, p = _scoring()
    asked: list[int] = []
    explain = _explainer(contrib)

    def counting(rows: pd.DataFrame) -> pd.DataFrame:
        asked.append(len(rows))
        return explain(rows)

    params = PARAMS.model_copy(update={"contact_budget": 50, "reasons_for": reasons_for})
    table = score_table(
        snapshot=snapshot,
        p=p,
        explain=counting,
        pnbd=ParetoNBD(r=0.55, alpha=10.6, s=0.61, beta=11.7),
        model_version="m/1",
        params=params,
    )
    everyone = score_table(
        snapshot=snapshot,
        p=p,
        explain=explain,
        pnbd=ParetoNBD(r=0.55, alpha=10.6, s=0.61, beta=11.7),
        model_version="m/1",
        params=params.model_copy(update={"reasons_for": "all"}),
    )
    columns = [f"reason_{k}{s}" for k in (1, 2, 3) for s in ("", "_points")]
    listed = table["outreach"]
    assert asked == [50 if reasons_for == "outreach" else 300]
    # a listed customer's reasons do not depend on who else is explained
    pd.testing.assert_frame_equal(table.loc[listed, columns], everyone.loc[listed, columns])
    # some made-up rows have no cause pushing up, or none with a true sentence that may be said
    assert (table.loc[listed, "reason_1"] != "").sum() >= 35
    if reasons_for == "outreach":
        assert (table.loc[~listed, "reason_1"] == "").all() and table.loc[
            ~listed, "reason_1_points"
        ].isna().all()
    else:
        assert (table.loc[~listed, "reason_1"] != "").sum() >= 175  # of 250


def test_published_file_escapes_formulas_and_reads_back_valid_against_the_published_schema(tmp_path):
    out = publish(_table(), tmp_path, {"model_version": "churn-model/3"})
    assert out.name == "churn_scores_2026-W47.csv"
    text = out.read_text(encoding="utf-8")
    assert '\n\'=HYPERLINK(""http://x""),' in text or '\n"\'=HYPERLINK(""http://x"")",' in text
    assert "\n'+44123," in text and "\n'@SUM(A1)," in text and "\n00004," in text
    published = json.loads((ROOT / "docs" / "score_file.schema.json").read_text(encoding="utf-8"))
    back = validate(read_table(out, published), pandera_schema(published), str(out))
    assert back["customer_id"].iloc[1] == "00003" and back["outreach"].dtype == bool
    manifest = json.loads(out.with_suffix(".manifest.json").read_text())
    assert manifest["rows"] == 300 and manifest["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert (manifest["schema_version"], manifest["as_of"], manifest["horizon_days"]) == (
        "1.2",
        "2026-11-16",
        90,
    )
    assert (manifest["outreach_rows"], manifest["holdout_rows"]) == (50, 5)


def test_a_rerun_is_byte_identical_and_other_weeks_stay(tmp_path):
    older = tmp_path / "churn_scores_2026-W46.csv"
    older.write_text("last week\n")
    first = publish(_table(), tmp_path, {})
    before = first.read_bytes(), first.with_suffix(".manifest.json").read_bytes()
    again = publish(_table(), tmp_path, {})
    assert (again.read_bytes(), again.with_suffix(".manifest.json").read_bytes()) == before
    assert older.read_text() == "last week\n"


def test_an_interrupted_publish_leaves_the_previous_file_and_no_partial_one(tmp_path, monkeypatch):
    table = _table()
    out = publish(table, tmp_path, {})
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    changed = table.assign(churn_probability=table["churn_probability"] / 2)

    def killed(src, dst):
        raise KeyboardInterrupt("killed while publishing")

    monkeypatch.setattr("pipeline.core.io.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        publish(changed, tmp_path, {})
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == before
    assert out.exists()


def test_do_not_contact_customers_are_scored_and_counted_but_never_on_the_list(tmp_path):
    snapshot, contrib, p = _scoring()
    pnbd = ParetoNBD(r=0.55, alpha=10.6, s=0.61, beta=11.7)
    params = PARAMS.model_copy(update={"contact_budget": 50})
    before = score_table(
        snapshot=snapshot, p=p, explain=_explainer(contrib), pnbd=pnbd, model_version="m/1", params=params
    )
    first = before.loc[before["outreach_rank"] == 1, "customer_id"].iloc[0]
    after = score_table(
        snapshot=snapshot,
        p=p,
        explain=_explainer(contrib),
        pnbd=pnbd,
        model_version="m/1",
        params=params,
        do_not_contact={first, "not-a-customer"},
    )
    row = after.set_index("customer_id").loc[first]
    assert bool(row["do_not_contact"]) and not bool(row["outreach"]) and len(after) == len(before)
    assert after["outreach"].sum() == 50 and after["do_not_contact"].sum() == 1
    # everyone else moves up one place
    second = before.loc[before["outreach_rank"] == 2, "customer_id"].iloc[0]
    assert after.set_index("customer_id").loc[second, "outreach_rank"] == 1
    manifest = json.loads(publish(after, tmp_path, {}).with_suffix(".manifest.json").read_text())
    assert manifest["do_not_contact_rows"] == 1


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(5, 400),
    seed=st.integers(0, 10_000),
    budget=st.integers(0, 500),
    share=st.floats(0.0, 0.9),
    extreme=st.sampled_from([0.0, 1.0, None]),
)
def test_the_score_file_always_meets_its_contract(n, seed, budget, share, extreme):
    snapshot, contrib, p = _scoring(n, seed)
    if extreme is not None:
        p[: n // 2] = extreme  # certain churners or stayers
    snapshot.loc[snapshot.index[:2], "avg_order_value"] = 0.0  # orders worth nothing after returns
    params = PARAMS.model_copy(update={"contact_budget": budget, "holdout_share": share})
    table = score_table(
        snapshot=snapshot,
        p=p,
        explain=_explainer(contrib),
        pnbd=ParetoNBD(r=0.55, alpha=10.6, s=0.61, beta=11.7),
        model_version="m/1",
        params=params,
    )
    validate(table, SCORES, "weekly score file")
    may_be_listed = (table["recommended_campaign"] != "none") & table["risk_tier"].isin(params.outreach_tiers)
    assert table["outreach"].sum() == min(budget, int(may_be_listed.sum()))
    assert (table.loc[table["outreach"], "risk_tier"] != "low").all()
    assert table["holdout"].sum() == round(share * table["outreach"].sum())


def _week_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_week_published_by_another_model_is_replaced_only_on_purpose_and_kept(tmp_path):
    table = _table()
    first = publish(table, tmp_path, {"model_version": "churn-model/3"})
    earlier = first.read_bytes(), first.with_suffix(".manifest.json").read_bytes()
    other = table.assign(model_version="churn-model/4", churn_probability=table["churn_probability"] / 2)
    with pytest.raises(ScoreError) as err:
        publish(other, tmp_path, {"model_version": "churn-model/4"})
    assert str(err.value) == (
        f"{first}: this week was published by churn-model/3; this run scores with churn-model/4. A "
        "published week is replaced only on purpose: rerun with CHURN_REPUBLISH=1 (for example "
        f"`CHURN_REPUBLISH=1 dvc repro`), which keeps the earlier file in {tmp_path / 'superseded'}/"
    )
    assert (first.read_bytes(), first.with_suffix(".manifest.json").read_bytes()) == earlier
    assert _week_files(tmp_path) == ["churn_scores_2026-W47.csv", "churn_scores_2026-W47.manifest.json"]
    publish(other, tmp_path, {"model_version": "churn-model/4"}, republish=True)
    digest = hashlib.sha256(earlier[0]).hexdigest()[:12]
    kept = tmp_path / "superseded" / f"churn_scores_2026-W47.{digest}.csv"
    assert (kept.read_bytes(), kept.with_suffix(".manifest.json").read_bytes()) == earlier
    assert json.loads(first.with_suffix(".manifest.json").read_text())["model_version"] == "churn-model/4"


def test_the_same_model_on_new_data_replaces_the_week_and_keeps_the_earlier_file(tmp_path):
    table = _table()
    first = publish(table, tmp_path, {"model_version": "churn-model/3"})
    earlier = first.read_bytes()
    publish(table.iloc[:-1], tmp_path, {"model_version": "churn-model/3"})
    assert len(first.read_bytes()) < len(earlier)
    digest = hashlib.sha256(earlier).hexdigest()[:12]
    assert _week_files(tmp_path) == [
        "churn_scores_2026-W47.csv",
        "churn_scores_2026-W47.manifest.json",
        f"superseded/churn_scores_2026-W47.{digest}.csv",
        f"superseded/churn_scores_2026-W47.{digest}.manifest.json",
    ]
    # a rerun that gives the same bytes keeps nothing more
    publish(table.iloc[:-1], tmp_path, {"model_version": "churn-model/3"})
    assert len(_week_files(tmp_path)) == 4


def test_a_file_its_manifest_does_not_describe_is_kept_and_replaced_whatever_the_model(tmp_path):
    table = _table()
    first = publish(table, tmp_path, {"model_version": "churn-model/3"})
    first.write_bytes(b"edited by hand\n")
    publish(table.assign(model_version="churn-model/4"), tmp_path, {"model_version": "churn-model/4"})
    digest = hashlib.sha256(b"edited by hand\n").hexdigest()[:12]
    assert (
        tmp_path / "superseded" / f"churn_scores_2026-W47.{digest}.csv"
    ).read_bytes() == b"edited by hand\n"


def _uplift_folder(folder, cost: float = 1.0):
    """A kept X-learner that learned that a contact keeps web customers (+0.4) and drives store
    customers away (-0.3), with the decision that ranks by it."""
    from pipeline.core.uplift import Boosting, fit_x, save_learner, sleeping_dog_guard, training_scores

    snapshot, _, _ = _scoring(n=6000, seed=9)
    rng = np.random.default_rng(9)
    t = rng.random(len(snapshot)) < 0.5
    effect = np.where(snapshot["channel"] == "web", 0.4, -0.3)
    rows = snapshot.drop(columns=["cutoff", "horizon_days"]).assign(
        churn_probability=rng.uniform(0, 1, len(snapshot)),
        predicted_value=rng.gamma(2.0, 50.0, len(snapshot)),
        week=np.repeat(["2026-W01", "2026-W14"], len(snapshot) // 2),
        contact=t,
        contact_probability=0.5,
        retained=(rng.random(len(snapshot)) < 0.4 + effect * t).astype(int),
    )
    boosting = Boosting(n_estimators=60, learning_rate=0.1, num_leaves=4, min_child_samples=40)
    model = fit_x(rows, boosting)
    save_learner(model, folder / "model")
    gamma = training_scores(rows, boosting)
    guard = sleeping_dog_guard(model.effect(rows), gamma, rows["customer_id"])
    decision = {
        "ranking": "uplift",
        "model": "model",
        "guard": guard.as_dict(),
        "contact_cost": cost,
        "why": "test",
    }
    (folder / "uplift.json").write_text(json.dumps(decision))
    return guard


def test_once_uplift_ranks_the_list_holds_whom_a_contact_changes_most(tmp_path):
    from pipeline.core.uplift import read_ranking

    guard = _uplift_folder(tmp_path)
    assert guard.excluded  # the store customers' deciles are sleeping dogs
    decision, ranking = read_ranking(tmp_path)
    assert decision["why"] == "test" and ranking is not None and ranking.cost == 1.0
    snapshot, _, _ = _scoring()
    table = _table(uplift=ranking)
    table = validate(table, SCORES, "weekly score file")
    listed = table[table["outreach"]].sort_values("outreach_rank")
    channel = snapshot.set_index("customer_id").loc[listed["customer_id"], "channel"]
    assert len(listed) == 50 and (channel == "web").all()
    assert (listed["contact_policy"] == "uplift").all() and table["predicted_uplift"].notna().all()
    gain = listed["predicted_uplift"] * listed["predicted_value"] - 1.0
    assert (gain > 0).all() and gain.round(3).is_monotonic_decreasing
    web = snapshot.set_index("customer_id").loc[table["customer_id"], "channel"].to_numpy() == "web"
    assert (
        table.loc[web, "predicted_uplift"].mean() > 0.25 > -0.15 > table.loc[~web, "predicted_uplift"].mean()
    )
    assert (
        table["holdout"].sum() == 5
        and (table.loc[table["exploration"], "contact_policy"] == "exploration").all()
    )


def test_until_uplift_ranks_the_file_has_no_predicted_uplift():
    table = _table()
    assert table["predicted_uplift"].isna().all()
    assert set(table.loc[table["outreach"], "contact_policy"]) == {"value_at_risk"}
