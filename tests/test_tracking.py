import hashlib

from pipeline.core import tracking


def test_the_project_root_is_the_folder_with_dvc_yaml_or_dvcs_own(tmp_path, monkeypatch):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    assert tracking.project_root(nested) == tmp_path.resolve()
    monkeypatch.setenv("DVC_ROOT", str(nested))
    assert tracking.project_root(tmp_path) == nested.resolve()


def test_one_store_per_project_unless_the_environment_names_one(tmp_path, monkeypatch):
    (tmp_path / "dvc.yaml").write_text("stages: {}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DVC_ROOT", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    assert tracking.tracking_uri() == "http://mlflow.internal:5000"


def test_lineage_outside_git_and_the_hash_of_dvc_lock(tmp_path):
    assert tracking.lineage_tags(tmp_path) == {"git_commit": "unknown", "dvc_lock_sha256": "none"}
    (tmp_path / "dvc.lock").write_bytes(b"schema: '2.0'\n")
    tags = tracking.lineage_tags(tmp_path)
    assert tags["dvc_lock_sha256"] == hashlib.sha256(b"schema: '2.0'\n").hexdigest()


def test_a_model_folders_digest_covers_each_name_and_its_bytes(tmp_path):
    (tmp_path / "model.txt").write_bytes(b"trees")
    (tmp_path / "train.json").write_bytes(b"{}")
    expected = hashlib.sha256(b"model.txt\0trees\0train.json\0{}\0").hexdigest()
    assert tracking.folder_digest(tmp_path, ("model.txt", "train.json")) == expected
    # renaming a file's role changes the digest even with the same bytes
    assert tracking.folder_digest(tmp_path, ("train.json", "model.txt")) != expected


def test_nested_figures_become_metrics_grouped_by_prefix_and_text_and_flags_are_left_out():
    tree = {"roc_auc": 0.8, "rows": 12, "compared": True, "version": "3", "lightgbm_rfm": {"ece": 0.01}}
    assert tracking.flat_metrics(tree, "baseline") == {
        "baseline/roc_auc": 0.8,
        "baseline/rows": 12.0,
        "baseline/lightgbm_rfm.ece": 0.01,
    }


def test_the_experiment_opens_on_its_training_runs_and_says_what_its_metric_groups_are(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setattr(mlflow, "set_tracking_uri", lambda uri: None)  # the session's store stays set
    monkeypatch.setattr(mlflow, "set_registry_uri", lambda uri: None)
    tracking.configure("shop-churn")
    tags = mlflow.get_experiment_by_name("shop-churn").tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    assert "test/" in tags["mlflow.note.content"] and "baseline/ (name.metric)" in tags["mlflow.note.content"]
    # an experiment made before (no tags) gets them the next time a stage configures it
    mlflow.create_experiment("older")
    tracking.configure("older")
    assert mlflow.get_experiment_by_name("older").tags["mlflow.experimentKind"] == "custom_model_development"


def test_a_logged_booster_states_its_requirements_pinned_to_what_is_installed():
    from importlib import metadata

    import lightgbm
    from packaging.requirements import Requirement

    pins = dict(r.split("==") for r in tracking.model_requirements())
    assert pins["lightgbm"] == lightgbm.__version__
    assert pins["mlflow"] == metadata.version("mlflow")
    # whatever lightgbm itself needs to load is stated too
    needed = {Requirement(r).name for r in metadata.requires("lightgbm") if "extra" not in r}
    assert needed <= set(pins)
