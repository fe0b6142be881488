"""The whole pipeline through `dvc repro` on a small simulation, in a fresh git + DVC project with
its own MLflow store: the outputs, a no-op rerun, byte-identical reruns, no id in MLflow. The runs
that change the project are in test_end_to_end_changes.py, so the two files run on two workers."""

import json
import pwd
import re
import shutil
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.core.partitions import read_snapshots
from pipeline.core.tables import pandera_schema, read_table, validate
from tests.conftest import every_customer, outputs_of, stage_cmd
from tests.content import ids_in, plant

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_repro_writes_a_valid_score_file_and_registers_the_model(project, first_run):
    files = sorted((project / "data/scores").glob("churn_scores_*.csv"))
    assert [f.name for f in files] == ["churn_scores_2026-W47.csv"]
    # read and checked through the schema published for CRM teams, not through the pipeline's code path
    published = json.loads((ROOT / "docs" / "score_file.schema.json").read_text(encoding="utf-8"))
    scores = validate(read_table(files[0], published), pandera_schema(published), str(files[0]))
    assert scores["customer_id"].is_monotonic_increasing
    assert (scores["model_version"] == "churn-model/1").all()
    listed = scores[scores["outreach"]]
    params = yaml.safe_load((project / "params.yaml").read_text())["score"]
    assert abs(listed["holdout"].mean() - params["holdout_share"]) <= 0.01
    manifest = json.loads(files[0].with_suffix(".manifest.json").read_text())
    assert manifest["rows"] == len(scores) and manifest["holdout_rows"] == int(listed["holdout"].sum())
    # the exploration sample: exactly min(budget, round(share x pool)) of the customers off the list
    # who have a campaign and may be contacted, each with a known chance of its own
    pool = scores[scores["contact_policy"] == "exploration"]
    k = min(params["exploration_budget"], round(params["exploration_share"] * len(pool)))
    assert int(pool["exploration"].sum()) == k == manifest["exploration_rows"] > 0
    assert (
        not (pool["outreach"] | pool["do_not_contact"]).any()
        and (pool["recommended_campaign"] != "none").all()
    )
    # the published formula, uncapped on this small pool: k x (e / N + (1 - e) x value / total value)
    even = params["exploration_even_share"]
    value = pool["predicted_value"].clip(lower=0)
    expected = k * (even / len(pool) + (1 - even) * value / value.sum())
    assert expected.max() < 1
    np.testing.assert_allclose(pool["contact_probability"], expected, rtol=0, atol=2e-6)
    assert (listed["contact_probability"] == round(1 - listed["holdout"].sum() / len(listed), 6)).all()
    assert (scores["contact"] == ((scores["outreach"] & ~scores["holdout"]) | scores["exploration"])).all()
    others = scores[scores["contact_policy"] == "none"]
    assert (others["contact_probability"] == 0).all() and not others["contact"].any()
    assert manifest["contact_rows"] == int(scores["contact"].sum()) and manifest["ranking"] == "value_at_risk"
    with sqlite3.connect(project / "mlflow.db") as db:
        versions = db.execute("select name, version from model_versions").fetchall()
        tags = dict(db.execute("select key, value from tags").fetchall())
    assert versions == [("churn-model", 1)]
    assert "git_commit" in tags and "dvc_lock_sha256" in tags
    metrics = yaml.safe_load((project / "models/metrics/evaluate.json").read_text())
    assert 0.5 < metrics["model"]["roc_auc"] <= metrics["oracle_roc_auc"] + 0.05
    assert set(metrics["baselines"]) == {"recency", "logistic_rfm", "lightgbm_rfm", "pareto_nbd", "bg_nbd"}
    ingest = yaml.safe_load((project / "models/metrics/ingest.json").read_text())
    assert ingest["input_rows"] == ingest["kept_rows"] + ingest["quarantined_rows"]


def test_the_report_is_one_self_contained_page_whose_churn_reconciles_with_the_labels(project, first_run):
    page = (project / "models/report/report.html").read_text(encoding="utf-8")
    assert page.count("src='data:image/png;base64,") >= 6
    assert not re.search(r"(src|href)=['\"]?https?:", page)  # nothing to fetch: opens offline
    for title in ("Cohort retention", "Churn and retention over time", "Risk and value at risk by segment"):
        assert f"<h2>{title}</h2>" in page
    rates = pd.read_csv(project / "models/report/rates.csv")
    train = read_snapshots(project / "data/features/train")
    label_rate = train.groupby(train["cutoff"].dt.date.astype(str))["churned"].mean()
    np.testing.assert_allclose(rates.set_index("period_start")["churn_rate"], label_rate, rtol=0, atol=1e-6)
    assert "churn rate, last closed period" in (project / "models/report/summary.md").read_text()


def test_second_repro_runs_nothing(project, first_run, run):
    out = run(["dvc", "repro"], project)
    assert "Running stage" not in out


def test_measure_recovers_the_outreach_effect_injected_in_the_next_horizon(project, first_run, run):
    scores = project / "data/scores/churn_scores_2026-W47.csv"
    followup = project / "followup"  # the user's own folder
    later, truth_path, out = followup / "later.parquet", followup / "later.json", followup / "m"
    run(
        ["churn", "simulate-followup", "--customers", "data/raw/customers.parquet", "--scores", str(scores),
         "--effect", "0.4", "--out", str(later), "--truth", str(truth_path)],
        project,
    )  # fmt: skip
    run(
        ["churn", "measure", "--scores", str(scores), "--transactions", str(later), "--out-dir", str(out)],
        project,
    )
    truth = json.loads(truth_path.read_text())
    lift = json.loads((out / "measure.json").read_text())["outreach"]
    assert lift["ci_low"] <= truth["true_retention_lift"] <= lift["ci_high"]
    assert lift["contacted"] == truth["contacted"]


def test_features_and_score_file_are_byte_identical_on_a_rerun(project, first_run, run, tmp_path):
    env_copy = {}
    for stage in ("featurize", "score"):
        cmd = stage_cmd(project, stage)
        outputs = [p for p in outputs_of(project, stage) if p.name != "mlflow_run.json"]
        before = {p: p.read_bytes() for p in outputs}
        if stage == "featurize":  # no cutoff reused: every one is computed again
            shutil.rmtree(project / "data/features/train")
        run(cmd, project)
        after = {p: p.read_bytes() for p in outputs}
        env_copy[stage] = [p.name for p in outputs]
        assert after == before, f"{stage} wrote different bytes on the same inputs"
    assert (
        "index.json" in env_copy["featurize"]
        and len(env_copy["featurize"]) > 20
        and any(n.endswith(".csv") for n in env_copy["score"])
    )


@pytest.mark.parametrize("threads", [1, 2])
def test_the_shipped_model_is_byte_identical_on_a_rerun(project, first_run, run, set_train, threads):
    """The train params as params.yaml ships them, on one and on two threads: two runs of
    `churn train` write the same bytes."""
    set_train(**{**yaml.safe_load((ROOT / "params.yaml").read_text())["train"], "num_threads": threads})
    cmd = stage_cmd(project, "train")
    outputs = [p for p in outputs_of(project, "train") if p.name != "mlflow_run.json"]
    run(cmd, project)
    first = {p: p.read_bytes() for p in outputs}
    summary = json.loads((project / "models/candidate/train.json").read_text())
    assert summary["calibration"] == "blend" and summary["best_iteration"] > 10  # not a one-tree stub
    assert any(p.name == "model.txt" for p in first)
    run(cmd, project)
    assert {p: p.read_bytes() for p in outputs} == first, (
        f"train wrote different bytes on {threads} thread(s)"
    )


def test_no_customer_id_reaches_mlflow(project, first_run, tmp_path):
    ids = every_customer(project)
    assert len(ids) > 2000
    stored = [project / "mlflow.db", *sorted(p for p in (project / "mlartifacts").rglob("*") if p.is_file())]
    assert len(stored) > 10
    leaks = {str(p.relative_to(project)): hit for p in stored if (hit := ids_in(p, ids))}
    assert leaks == {}
    # the control: the same search finds an id planted in each kind of file, the store included
    planted = min(ids)
    strangers = [f"9{i:05d}" for i in range(1200)]  # ids of no customer of this shop
    assert not ids & set(strangers)
    files = plant(tmp_path / "planted", planted, strangers)
    store = tmp_path / "mlflow.db"
    shutil.copy(project / "mlflow.db", store)
    with sqlite3.connect(store) as con:
        run = con.execute("SELECT run_uuid FROM runs LIMIT 1").fetchone()[0]
        con.execute("INSERT INTO tags (key, value, run_uuid) VALUES ('note', ?, ?)", (planted, run))
    con.close()
    assert {kind: ids_in(path, ids) for kind, path in {**files, "mlflow store": store}.items()} == {
        kind: {planted} for kind in [*files, "mlflow store"]
    }


def test_the_pipeline_ran_as_an_ordinary_user_and_every_folder_it_made_can_be_entered(
    project, first_run, as_user
):
    if as_user.user is None:
        pytest.skip("the tests run as an ordinary user: every command here already ran unprivileged")
    scores = project / "data/scores"
    assert pwd.getpwuid(scores.stat().st_uid).pw_name == as_user.user
    folders = [p for p in [project, *project.rglob("*")] if p.is_dir() and ".git" not in p.parts]
    assert len(folders) > 10
    # the owner can enter, list and write every folder; a mode from a file's (0o644) would lock them out
    shut = {str(p.relative_to(project)): oct(stat.S_IMODE(p.stat().st_mode)) for p in folders
            if stat.S_IMODE(p.stat().st_mode) & 0o700 != 0o700}  # fmt: skip
    assert shut == {}
    listed = as_user.run(["ls", "-A", str(scores)], cwd=project)
    assert listed.returncode == 0 and "churn_scores_2026-W47.csv" in listed.stdout


def test_dvc_metrics_show_fits_a_terminal(project, first_run, run):
    out = run(["dvc", "metrics", "show"], project)
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines[0].split()[:3] == ["Path", "auc", "churn_rate"]
    assert {line.split()[0] for line in lines[1:]} == {
        f"metrics/{stage}.json"
        for stage in ("ingest", "featurize", "evaluate", "backtest", "monitor", "score", "report")
    }
    assert max(len(line) for line in lines) <= 120, out


def test_every_plot_has_data_dates_as_time_and_the_page_needs_no_network(project, first_run, run):
    plots = json.loads(run(["dvc", "plots", "show", "--json"], project))["data"]
    vega = {name: items[0]["content"] for name, items in plots.items() if items[0]["type"] == "vega"}
    assert len(vega) == 12
    for name, spec in vega.items():
        assert len(spec["data"]["values"]) > 0, name
    dated = ["backtest_roc_auc", "churn_and_retention", "predicted_vs_realized_churn",
             "models/report/rates.csv", "models/report/predicted_vs_realized.csv"]  # fmt: skip
    assert [vega[name]["encoding"]["x"]["type"] for name in dated] == ["temporal"] * 5
    lift = vega["models/plots/evaluate/lift.csv"]
    # deciles as numbers on an ordered axis (as text, 10 would come after 1), lift upwards
    assert lift["transform"] == [{"calculate": "toNumber(datum['decile'])", "as": "_x"}]
    assert (lift["encoding"]["x"]["type"], lift["encoding"]["y"]["field"], lift["mark"]["type"]) == (
        "ordinal",
        "lift",
        "bar",
    )
    by_segment = vega["models/plots/evaluate/reliability_by_segment.csv"]["encoding"]
    assert by_segment["color"]["field"] == "segment"
    for curve in ("roc", "pr"):  # the model beside every baseline, a line each
        spec = vega[f"models/plots/evaluate/{curve}.csv"]
        assert spec["encoding"]["color"]["field"] == "scorer"
        assert {row["scorer"] for row in spec["data"]["values"]} >= {"model", "recency", "logistic_rfm"}
    out = project / "dvc_plots"
    run(["dvc", "plots", "show", "-o", str(out)], project)
    page = (out / "index.html").read_text()
    assert page.count("vegaEmbed('#") == 12 and "window.__churnPlots" in page
    assert re.findall(r"<script[^>]+src=", page) == []  # no library fetched from anywhere
