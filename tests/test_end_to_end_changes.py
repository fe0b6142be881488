"""End to end, the runs that change the project: a train param change, kills inside writes, an
erasure, unwritable folders. Apart from test_end_to_end.py so the two run on separate workers."""

import json
import os
import pwd
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import UserRunner, every_customer, outputs_of, stage_cmd, stages_run
from tests.content import ids_in, plant

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def test_a_train_param_change_reruns_train_and_what_follows_and_a_refused_model_keeps_the_champion(
    project, first_run, run, set_train
):
    champion_before = json.loads((project / "models/champion/champion.json").read_text())
    # one split from the training churn rate, with no BTYD start and no blend: worse than recency
    set_train(max_rounds=1, num_leaves=2, blend=False, boost_from=None)
    out = run(["dvc", "repro"], project)
    assert stages_run(out) == {
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


def _registry(project: Path) -> tuple[list, list]:
    with sqlite3.connect(project / "mlflow.db") as db:
        alias = db.execute("select version from registered_model_aliases where alias = 'champion'").fetchall()
        tags = db.execute(
            "select version, key, value from model_version_tags order by version, key"
        ).fetchall()
    return alias, tags


def test_an_experiment_registers_and_judges_its_model_but_publishes_nothing(project, first_run, run):
    """`dvc exp run` after a production run: the experiment's model passes the gate (set wide open
    for it), is registered with the verdict on its version, and is still not promoted; the weekly
    files and their manifests keep their bytes; the file it would publish is its preview."""
    published = {
        str(p.relative_to(project)): p.read_bytes()
        for p in (project / "data/scores").rglob("*")
        if p.is_file()
    }
    alias_before, tags_before = _registry(project)
    run(["git", "add", "-A"], project)
    run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.com", "commit", "-qm", "production"],
        project,
    )
    try:
        run(
            ["dvc", "exp", "run", "-n", "faster", "-S", "train.learning_rate=0.1",
             "-S", "promote.champion_tolerance=0.5", "-S", "promote.max_ece=0.5"],
            project,
        )  # fmt: skip
        after = {
            str(p.relative_to(project)): p.read_bytes()
            for p in (project / "data/scores").rglob("*")
            if p.is_file()
        }
        assert after == published
        alias, tags = _registry(project)
        assert alias == alias_before
        version = max(v for v, _, _ in tags)
        mine = {key: value for v, key, value in tags if v == version}
        assert version > max(v for v, _, _ in tags_before)
        assert (mine["run"], mine["gate"], mine["promoted"]) == ("faster", "passed", "false")
        summary = json.loads((project / "models/score/summary.json").read_text())
        assert (summary["run"], summary["published"]) == ("faster", False)
        preview = project / "models/score/preview/churn_scores_2026-W47.csv"
        assert summary["file"] == "models/score/preview/churn_scores_2026-W47.csv" and preview.exists()
        champion = json.loads((project / "models/champion/champion.json").read_text())
        assert champion["model_version"] == str(alias_before[0][0]) and champion["refusals"] == []
    finally:
        # back to the production run's workspace for the tests after this one
        run(["git", "reset", "-q", "--hard"], project)
        run(["dvc", "checkout", "-q", "--force"], project)


def _held(
    as_user: UserRunner, project: Path, stage: str, moment: str, path: Path, signals: Path
) -> list[Path]:
    """Runs `stage` until the writer of `path` holds `moment` its rename (the crash-test hook in
    `pipeline.core.io.atomic_path`), then kills it with SIGKILL. Returns the temporary files of `path`
    that existed at the moment of the kill."""
    marker, log = signals / f"held-{moment}", signals / f"{stage}-{moment}.log"
    env = as_user.env(CHURN_HOLD_WRITE=f"{moment}:{path.name}", CHURN_HOLD_SIGNAL=str(marker))
    with log.open("w") as out:
        proc = as_user.popen(stage_cmd(project, stage), project, env=env, stdout=out, stderr=out)
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


# each stage's output a reader or a CRM import picks up; the score file's manifest is written after it
PUBLISHED = [
    ("ingest", "data/validated/transactions.parquet"),
    ("featurize", "data/features/train/index.json"),  # the snapshot folder is published by its index
    ("score", "data/scores/churn_scores_2026-W47.csv"),
    ("score", "data/scores/churn_scores_2026-W47.manifest.json"),
]


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


def test_an_erased_customer_appears_nowhere_afterwards(project, first_run, run, as_user, tmp_path):
    scores = pd.read_csv(project / "data/scores/churn_scores_2026-W47.csv", dtype=str, keep_default_na=False)
    victim = scores["customer_id"].iloc[len(scores) // 2]
    # the control on real files: before the erasure the search finds the customer in the Parquet
    # tables and the score file
    data = [p for p in (project / "data").rglob("*") if p.is_file()]
    before = {str(p.relative_to(project)) for p in data if ids_in(p, {victim})}
    assert {"data/validated/transactions.parquet", "data/scores/churn_scores_2026-W47.csv"} <= before
    assert any(p.startswith("data/features/train/") for p in before)
    # the sample's raw export is made by the simulator: freeze it, as a real export is an input
    run(["dvc", "freeze", "simulate"], project)
    out = run(["churn", "erase", "--customer", victim], project)
    assert "data/raw/transactions.csv: " in out and "data/validated/transactions.parquet: " in out
    # the data changed, so a new model may score this week: replacing its file is on purpose here
    done = as_user.run(["dvc", "repro"], project, CHURN_REPUBLISH="1")
    assert done.returncode == 0, done.stderr[-4000:]
    run(["dvc", "gc", "--workspace", "--force"], project)
    everywhere = [p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts]
    assert len(everywhere) > 50
    found = [str(p.relative_to(project)) for p in everywhere if ids_in(p, {victim})]
    assert found == []
    # and the search is not blind to any kind of file the project holds
    files = plant(tmp_path / "planted", victim, sorted(every_customer(project)))
    found = {kind: ids_in(path, {victim}) for kind, path in files.items()}
    assert found == {kind: {victim} for kind in files}


def _user_name(as_user: UserRunner) -> str:
    return as_user.user or pwd.getpwuid(os.geteuid()).pw_name


def test_a_read_only_scores_folder_stops_score_with_one_line_and_keeps_the_published_files(
    project, first_run, as_user
):
    scores = project / "data/scores"
    before = {p.name: p.read_bytes() for p in scores.iterdir() if p.is_file()}
    scores.chmod(0o555)
    try:
        done = as_user.run(stage_cmd(project, "score"), project)
    finally:
        scores.chmod(0o755)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "error: data/scores/churn_scores_2026-W47.csv (written in data/scores): permission denied for user "
        f"{_user_name(as_user)}: give this user access to it (chmod/chown), or run the stage on a copy the "
        "user owns"
    )
    assert {p.name: p.read_bytes() for p in scores.iterdir() if p.is_file()} == before


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
    outputs = outputs_of(project, "featurize")
    before = {p: p.read_bytes() for p in outputs}
    done = as_user.run([*stage_cmd(project, "featurize"), "--params", "params-spill.yaml"], project)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"error: {spill}: permission denied for user {_user_name(as_user)}: give this user access to it "
        "(chmod/chown), or run the stage on a copy the user owns"
    )
    assert {p: p.read_bytes() for p in outputs} == before
