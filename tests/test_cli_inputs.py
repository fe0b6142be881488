"""Every stage command stops with one line naming the input and the fix, and exit code 2, when an
input is missing or not in its format: checked before the stage starts (`io.check_input`). Each
case runs in a folder of its own where every other input of the stage exists in its format."""

import shlex
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from tests.conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
CASES = [
    (name, dep)
    for name, stage in STAGES.items()
    for dep in stage.get("deps", [])
    if not dep.startswith("pipeline/") and dep in shlex.split(stage["cmd"])
]


def _invoke(stage: str, dep: str, replacement: str):
    args = [replacement if a == dep else a for a in shlex.split(STAGES[stage]["cmd"])[1:]]
    return CliRunner().invoke(app, args)


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """A folder holding params.yaml and, for the stage asked, every data input in its format."""

    def make(stage: str):
        shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
        for dep in STAGES[stage]["deps"]:
            path = tmp_path / dep
            if dep.startswith("pipeline/"):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if dep.endswith(".parquet"):
                pq.write_table(pa.table({"customer_id": ["a"]}), path)
            elif dep.endswith(".json"):
                path.write_text("{}")
            elif dep.endswith(".csv"):
                path.write_text("customer_id\n")
            else:
                path.mkdir()
        monkeypatch.chdir(tmp_path)
        return tmp_path

    return make


def test_every_stage_is_covered():
    assert {name for name, _ in CASES} == set(STAGES) - {"simulate"}  # simulate reads params only


@pytest.mark.parametrize(("stage", "dep"), CASES)
def test_a_missing_input_is_one_line_naming_it(stage, dep, inputs):
    missing = inputs(stage) / "misspelt" / dep.rsplit("/", 1)[-1]
    result = _invoke(stage, dep, str(missing))
    assert result.exit_code == 2, result.output
    advice = "no such file or folder: check the path, or run the stage that writes it (dvc repro)"
    assert result.stderr.splitlines() == [f"error: {missing}: {advice}"]


FORMATS = [(name, dep) for name, dep in CASES if dep.endswith((".parquet", ".json"))]


@pytest.mark.parametrize(("stage", "dep"), FORMATS)
def test_an_input_in_the_wrong_format_is_one_line_naming_it(stage, dep, inputs):
    # the raw CSV export where a stage's own output is expected
    wrong = inputs(stage) / "export.csv"
    wrong.write_text("Invoice,StockCode\\n489434,85048\\n")
    result = _invoke(stage, dep, str(wrong))
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.splitlines()
    if dep.endswith(".parquet"):
        assert line.startswith(f"error: {wrong}: not a Parquet file (it does not start and end with PAR1)")
    else:
        assert line.startswith(f"error: {wrong}: not valid JSON (")


def test_a_simulated_folder_without_the_latent_state_is_one_line(tmp_path):
    export = tmp_path / "export.csv"
    export.write_text("Invoice,StockCode\n489434,85048\n")
    (tmp_path / "sim").mkdir()
    result = CliRunner().invoke(
        app,
        ["benchmark", "quality", "--params", str(ROOT / "params.yaml"), "--transactions", str(export),
         "--simulated", str(tmp_path / "sim")],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    advice = "no such file or folder: check the path, or run the stage that writes it (dvc repro)"
    assert result.stderr.splitlines() == [f"error: {tmp_path / 'sim' / 'customers.parquet'}: {advice}"]
