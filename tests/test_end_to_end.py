"""The whole pipeline through `dvc repro` on a small simulation, in a fresh git + DVC project with
its own MLflow store; then a no-op rerun, and a train param change that reruns train and after."""

import json
import os
import pwd
import re
import shutil
import sqlite3
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from pipeline.core.tables import pandera_schema, read_table, validate
from tests.conftest import UserRunner
from tests.content import ids_in, plant

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(as_user: UserRunner) -> Callable[[list[str], Path], str]:
    """Runs a command in the project as an ordinary user (as `nobody` when the tests run as root):
    most people who run `dvc repro` are not root, and root ignores the permission bits."""

    def run_(args: list[str], cwd: Path) -> str:
        done = as_user.run(args, cwd)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout + done.stderr

    return run_


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, as_user: UserRunner, run) -> Path:
    # a folder every user can reach, handed to the user who runs the pipeline
    work = Path(tempfile.mkdtemp(prefix="churn-project-"))
    shutil.copytree(ROOT / "pipeline", work / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", work / "dvc.yaml")
    (work / "data").mkdir()
    shutil.copy(ROOT / "data" / "suppression.csv", work / "data" / "suppression.csv")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["simulate"]["n_customers"] = 2500
    params["train"]["num_threads"] = 1
    params["explain"]["sample_rows"] = 300
    params["backtest"]["origins"] = 1  # the wiring is under test here; docs/quality.md has the model
    # a 2,500-customer shop is too small to promise beating the BTYD models; recency it must beat
    params["promote"] = {"max_ece": 0.1, "must_beat": ["recency"]}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    as_user.own(work)
    run(["git", "init", "-q"], work)
    run(["dvc", "init", "-q"], work)
    yield work
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def first_run(project: Path, run) -> str:
    return run(["dvc", "repro"], project)


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
    train = pd.read_parquet(project / "data/features/train.parquet")
    label_rate = train.groupby(train["cutoff"].dt.date.astype(str))["churned"].mean()
    np.testing.assert_allclose(rates.set_index("period_start")["churn_rate"], label_rate, rtol=0, atol=1e-6)
    assert "churn rate, last closed period" in (project / "models/report/summary.md").read_text()


def test_second_repro_runs_nothing(project, first_run, run):
    out = run(["dvc", "repro"], project)
    assert "Running stage" not in out


@pytest.fixture
def set_train(project: Path) -> Iterator[Callable[..., None]]:
    """Changes params.yaml's train section for one test and puts the file back after it, so no
    test runs on params another test left behind."""
    shipped = (project / "params.yaml").read_text()

    def set_(**changes: object) -> None:
        params = yaml.safe_load(shipped)
        params["train"].update(changes)
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    yield set_
    (project / "params.yaml").write_text(shipped)


def _stages_run(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}


def test_a_train_param_change_reruns_train_and_what_follows_and_a_refused_model_keeps_the_champion(
    project, first_run, run, set_train
):
    champion_before = json.loads((project / "models/champion/champion.json").read_text())
    # one split from the training churn rate, with no BTYD start and no blend: worse than recency
    set_train(max_rounds=1, num_leaves=2, blend=False, boost_from=None)
    out = run(["dvc", "repro"], project)
    assert _stages_run(out) == {
        "train",
        "evaluate",
        "backtest",
        "tune",
        "promote",
        "explain",
        "monitor",
        "score",
        "report",
    }
    champion = json.loads((project / "models/champion/champion.json").read_text())
    assert champion["model_version"] == champion_before["model_version"]
    assert int(champion["candidate_version"]) == int(champion_before["model_version"]) + 1
    assert any("does not beat baseline recency" in r for r in champion["refusals"])
    scores = pd.read_csv(project / "data/scores/churn_scores_2026-W47.csv", keep_default_na=False)
    assert (scores["model_version"] == f"churn-model/{champion_before['model_version']}").all()
    with sqlite3.connect(project / "mlflow.db") as db:
        alias = db.execute("select version from registered_model_aliases where alias = 'champion'").fetchall()
    assert alias == [(int(champion_before["model_version"]),)]


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


def _stage_cmd(project: Path, stage: str) -> list[str]:
    return yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()


def _outputs(project: Path, stage: str) -> list[Path]:
    spec = yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]
    names = [
        next(iter(o)) if isinstance(o, dict) else o
        for kind in ("outs", "metrics", "plots")
        for o in spec.get(kind, [])
    ]
    files = []
    for name in names:
        path = project / name
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files


# each stage's output a reader or a CRM import picks up; the score file's manifest is written after it
PUBLISHED = [
    ("ingest", "data/validated/transactions.parquet"),
    ("featurize", "data/features/train.parquet"),
    ("score", "data/scores/churn_scores_2026-W47.csv"),
    ("score", "data/scores/churn_scores_2026-W47.manifest.json"),
]


def _held(
    as_user: UserRunner, project: Path, stage: str, moment: str, path: Path, signals: Path
) -> list[Path]:
    """Runs `stage` until the writer of `path` holds `moment` its rename (the crash-test hook in
    `pipeline.core.io.atomic_path`), then kills it with SIGKILL. Returns the temporary files of `path`
    that existed at the moment of the kill."""
    marker, log = signals / f"held-{moment}", signals / f"{stage}-{moment}.log"
    env = as_user.env(CHURN_HOLD_WRITE=f"{moment}:{path.name}", CHURN_HOLD_SIGNAL=str(marker))
    with log.open("w") as out:
        proc = as_user.popen(_stage_cmd(project, stage), project, env=env, stdout=out, stderr=out)
    try:
        for _ in range(6000):
            if marker.exists() or proc.poll() is not None:
                break
            time.sleep(0.05)
        assert marker.exists(), f"{stage} never reached the write of {path.name}:\n{log.read_text()[-3000:]}"
        temps = sorted(path.parent.glob(f".{path.name}.tmp-*"))
    finally:
        proc.kill()
        proc.wait()
    marker.unlink()
    return temps


@pytest.mark.parametrize(("stage", "output"), PUBLISHED)
def test_a_kill_inside_a_write_keeps_the_published_file_and_a_kill_after_it_leaves_the_new_one_whole(
    project, first_run, as_user, stage, output
):
    path = project / output
    new = path.read_bytes()  # what the stage writes: its reruns give the same bytes
    old = b"an earlier week's file: " + new[: len(new) // 2]
    path.write_bytes(old)
    signal_dir = Path(tempfile.mkdtemp(prefix="churn-hold-"))
    signal_dir.chmod(0o777)
    try:
        temps = _held(
            as_user=as_user, project=project, stage=stage, moment="before", path=path, signals=signal_dir
        )
        # killed inside the write: the new version was complete in its temporary sibling, and the
        # published file is still the earlier one, whole
        assert [t.read_bytes() for t in temps] == [new]
        assert path.read_bytes() == old
        temps = _held(
            as_user=as_user, project=project, stage=stage, moment="after", path=path, signals=signal_dir
        )
        # killed right after the rename: the new version is published whole, and the temporary
        # file the first kill left was cleared by this writer
        assert temps == [] and path.read_bytes() == new
        assert sorted(path.parent.glob(f".{path.name}.*")) == []
    finally:
        shutil.rmtree(signal_dir, ignore_errors=True)


def test_features_and_score_file_are_byte_identical_on_a_rerun(project, first_run, run, tmp_path):
    env_copy = {}
    for stage in ("featurize", "score"):
        cmd = _stage_cmd(project, stage)
        outputs = [p for p in _outputs(project, stage) if p.name != "mlflow_run.json"]
        before = {p: p.read_bytes() for p in outputs}
        run(cmd, project)
        after = {p: p.read_bytes() for p in outputs}
        env_copy[stage] = [p.name for p in outputs]
        assert after == before, f"{stage} wrote different bytes on the same inputs"
    assert "train.parquet" in env_copy["featurize"] and any(n.endswith(".csv") for n in env_copy["score"])


@pytest.mark.parametrize("threads", [1, 2])
def test_the_shipped_model_is_byte_identical_on_a_rerun(project, first_run, run, set_train, threads):
    """The train params as params.yaml ships them, on one and on two threads: two runs of
    `churn train` write the same bytes."""
    set_train(**{**yaml.safe_load((ROOT / "params.yaml").read_text())["train"], "num_threads": threads})
    cmd = _stage_cmd(project, "train")
    outputs = [p for p in _outputs(project, "train") if p.name != "mlflow_run.json"]
    run(cmd, project)
    first = {p: p.read_bytes() for p in outputs}
    summary = json.loads((project / "models/candidate/train.json").read_text())
    assert summary["calibration"] == "blend" and summary["best_iteration"] > 10  # not a one-tree stub
    assert any(p.name == "model.txt" for p in first)
    run(cmd, project)
    assert {p: p.read_bytes() for p in outputs} == first, (
        f"train wrote different bytes on {threads} thread(s)"
    )


def _every_customer(project: Path) -> set[str]:
    raw = pd.read_csv(project / "data/raw/transactions.csv", dtype=str, keep_default_na=False)
    return set(raw["Customer ID"]) - {""}


def test_no_customer_id_reaches_mlflow(project, first_run, tmp_path):
    ids = _every_customer(project)
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


def test_an_erased_customer_appears_nowhere_afterwards(project, first_run, run, tmp_path):
    scores = pd.read_csv(project / "data/scores/churn_scores_2026-W47.csv", dtype=str, keep_default_na=False)
    victim = scores["customer_id"].iloc[len(scores) // 2]
    # the control on real files: before the erasure the search finds the customer in the Parquet
    # tables and the score file
    data = [p for p in (project / "data").rglob("*") if p.is_file()]
    before = {str(p.relative_to(project)) for p in data if ids_in(p, {victim})}
    assert {"data/validated/transactions.parquet", "data/features/train.parquet",
            "data/scores/churn_scores_2026-W47.csv"} <= before  # fmt: skip
    # the sample's raw export is made by the simulator: freeze it, as a real export is an input
    run(["dvc", "freeze", "simulate"], project)
    out = run(["churn", "erase", "--customer", victim], project)
    assert "data/raw/transactions.csv: " in out and "data/validated/transactions.parquet: " in out
    run(["dvc", "repro"], project)
    run(["dvc", "gc", "--workspace", "--force"], project)
    everywhere = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts]
    assert len(everywhere) > 50
    found = [str(p.relative_to(project)) for p in everywhere if ids_in(p, {victim})]
    assert found == []
    # and the search is not blind to any kind of file the project holds
    files = plant(tmp_path / "planted", victim, sorted(_every_customer(project)))
    found = {kind: ids_in(path, {victim}) for kind, path in files.items()}
    assert found == {kind: {victim} for kind in files}


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


def _user_name(as_user: UserRunner) -> str:
    return as_user.user or pwd.getpwuid(os.geteuid()).pw_name


def test_a_read_only_scores_folder_stops_score_with_one_line_and_keeps_the_published_files(
    project, first_run, as_user
):
    scores = project / "data/scores"
    before = {p.name: p.read_bytes() for p in scores.iterdir()}
    scores.chmod(0o555)
    try:
        done = as_user.run(_stage_cmd(project, "score"), project)
    finally:
        scores.chmod(0o755)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "error: data/scores/churn_scores_2026-W47.csv (written in data/scores): permission denied for user "
        f"{_user_name(as_user)}: give this user access to it (chmod/chown), or run the stage on a copy the "
        "user owns"
    )
    assert {p.name: p.read_bytes() for p in scores.iterdir()} == before


def test_an_unwritable_temp_folder_stops_featurize_with_one_line_and_keeps_the_snapshots(
    project, first_run, as_user
):
    spill = project / "spill"
    spill.mkdir()
    as_user.own(spill)
    spill.chmod(0o555)
    settings = yaml.safe_load((project / "params.yaml").read_text())
    settings["featurize"]["temp_directory"] = str(spill)
    (project / "params-spill.yaml").write_text(yaml.safe_dump(settings, sort_keys=False))
    as_user.own(project / "params-spill.yaml")
    outputs = _outputs(project, "featurize")
    before = {p: p.read_bytes() for p in outputs}
    done = as_user.run([*_stage_cmd(project, "featurize"), "--params", "params-spill.yaml"], project)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: {spill}: permission denied for user {_user_name(as_user)}: give this user access to it "
        "(chmod/chown), or run the stage on a copy the user owns"
    )
    assert {p: p.read_bytes() for p in outputs} == before
