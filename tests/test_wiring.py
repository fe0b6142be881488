"""dvc.yaml, params.yaml and the code agree: every stage runs its own module through the CLI, lists
that module in its deps, passes only options the command takes, and names params that exist."""

import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_runs_its_module_and_lists_it(name):
    stage = STAGES[name]
    argv = shlex.split(stage["cmd"])
    assert argv[:2] == ["churn", name]
    module = f"pipeline/{name}.py"
    assert (ROOT / module).exists()
    assert module in stage["deps"]


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_options_exist_on_the_command(name):
    result = CliRunner().invoke(app, [name, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    for option in (a for a in shlex.split(STAGES[name]["cmd"]) if a.startswith("--")):
        assert option in text, (name, option)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_params_exist(name):
    for key in STAGES[name].get("params", []):
        node = PARAMS
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, (name, key)
            node = node[part]


def test_every_module_read_by_a_stage_is_tracked_somewhere():
    deps = {d for stage in STAGES.values() for d in stage["deps"]}
    modules = {f"pipeline/{p.name}" for p in (ROOT / "pipeline").glob("*.py")}
    untracked = (
        modules - deps - {"pipeline/__init__.py", "pipeline/cli.py", "pipeline/params.py", "pipeline/io.py"}
    )
    assert untracked == set()
