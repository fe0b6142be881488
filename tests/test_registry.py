import mlflow
from mlflow.tracking import MlflowClient

from pipeline.core import registry, tracking


def _version(tmp_path, name: str) -> str:
    """A registered version whose run logged a model folder with an `evaluation` subfolder."""
    folder = tmp_path / "model"
    (folder / "evaluation").mkdir(parents=True)
    (folder / "model.txt").write_text("scoring trees")
    (folder / "evaluation" / "model.txt").write_text("judged trees")
    tracking.configure("registry-test")
    client = MlflowClient()
    client.create_registered_model(name)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(folder), "churn_model")
    version = client.create_model_version(
        name, source=f"runs:/{run.info.run_id}/churn_model", run_id=run.info.run_id
    )
    return str(version.version)


def test_the_champion_is_none_before_the_first_promotion_then_the_aliased_version(tmp_path):
    version = _version(tmp_path, "registry-champion")
    client = MlflowClient()
    assert registry.champion(client, "registry-champion") is None
    client.set_registered_model_alias("registry-champion", registry.ALIAS, version)
    current = registry.champion(client, "registry-champion")
    assert current is not None and str(current.version) == version
    assert (registry.model_folder(current) / "model.txt").read_text() == "scoring trees"
    assert (registry.model_folder(current, "evaluation") / "model.txt").read_text() == "judged trees"


def test_the_verdict_is_written_on_the_version(tmp_path):
    version = _version(tmp_path, "registry-verdict")
    client = MlflowClient()
    registry.record_verdict(
        client, "registry-verdict", version, "Refused: ECE too high.", {"gate": "refused", "run": "lr-0.1"}
    )
    found = client.get_model_version("registry-verdict", version)
    assert found.description == "Refused: ECE too high."
    assert found.tags == {"gate": "refused", "run": "lr-0.1"}
