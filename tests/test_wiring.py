"""dvc.yaml, params.yaml and the code agree: every stage runs its own module through the CLI, lists
that module in its deps, passes only options the command takes, and names params that exist."""

import ast
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


# shared plumbing every stage uses; a change there is not a change in what a stage computes
PLUMBING = {"params", "io", "tracking"}


def _imports(module: str) -> set[str]:
    tree = ast.parse((ROOT / "pipeline" / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "pipeline":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("pipeline."):
                found.add(node.module.split(".")[1])
    return found


def _reached(module: str) -> set[str]:
    """Every project module `module` imports, directly or through others, plumbing excluded."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for found in _imports(todo.pop()) - PLUMBING - seen - {module}:
            seen.add(found)
            todo.append(found)
    return seen


def test_the_import_walk_follows_imports_of_imports():
    # score imports outreach, which imports btyd, which imports quadrature
    assert "quadrature" not in _imports("score")
    assert {"outreach", "btyd", "quadrature"} <= _reached("score")


@pytest.mark.parametrize("name", sorted(STAGES))
def test_every_module_a_stage_reaches_is_in_its_deps(name):
    """Editing a module re-runs every stage whose result it shapes, also through other modules."""
    needed = {f"pipeline/{m}.py" for m in _reached(name)}
    assert needed <= set(STAGES[name]["deps"]) | {f"pipeline/{name}.py"}, needed - set(STAGES[name]["deps"])
