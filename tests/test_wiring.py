"""dvc.yaml, params.yaml and the code agree: every stage runs its own module through the CLI, lists
that module in its deps, passes only options the command takes, and names params that exist."""

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.sources import imports, reached

ROOT = Path(__file__).resolve().parents[1]
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_runs_its_module_and_lists_it(name):
    stage = STAGES[name]
    argv = shlex.split(stage["cmd"])
    assert argv[:2] == ["churn", name]
    module = f"pipeline/stages/{name}.py"
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
PLUMBING = {"pipeline/core/params.py", "pipeline/core/io.py", "pipeline/core/tracking.py"}
LAYERS = ("core", "stages", "commands")


def _modules() -> list[str]:
    return sorted(str(f.relative_to(ROOT)) for f in (ROOT / "pipeline").rglob("*.py") if f.stem != "__init__")


def _imports(module: str) -> set[str]:
    return imports(module, ROOT)


def _layer(module: str) -> str:
    parts = module.split("/")
    return parts[1] if len(parts) == 3 else "top"


def _reached(module: str) -> set[str]:
    """Every project module `module` imports, directly or through others, plumbing excluded."""
    return reached(module, skip=frozenset(PLUMBING), root=ROOT)


def test_every_module_is_in_a_layer_and_the_layers_import_downwards_only():
    """The core imports no stage and no command; a stage imports the core only, never another stage;
    commands may compose stages. Only the CLI sits above them all."""
    allowed = {"core": {"core"}, "stages": {"core"}, "commands": {"core", "stages", "commands"}}
    wrong = []
    for module in _modules():
        layer = _layer(module)
        assert layer in LAYERS or module == "pipeline/cli.py", module
        for target in _imports(module):
            if layer in allowed and _layer(target) not in allowed[layer]:
                wrong.append(f"{module} -> {target}")
    assert wrong == []


def test_no_module_imports_itself_back():
    """Depth-first search over the import graph: a module met again while still on the path closes
    a cycle."""
    graph = {m: sorted(_imports(m)) for m in _modules()}
    done: set[str] = set()
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        for target in graph.get(module, []):
            if target in path:
                cycles.append([*path[path.index(target) :], target])
            elif target not in done:
                visit(target, [*path, target])
        done.add(module)

    for module in graph:
        if module not in done:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("name", sorted(STAGES))
def test_a_stages_code_deps_are_exactly_the_modules_it_reaches(name):
    """Editing a module re-runs every stage whose result it shapes, also through other modules,
    and no stage whose result it cannot shape."""
    own = f"pipeline/stages/{name}.py"
    listed = {d for d in STAGES[name]["deps"] if d.startswith("pipeline/")}
    assert listed == _reached(own) | {own}


def test_a_stage_module_is_a_dep_of_its_own_stage_only():
    """So editing `pipeline/stages/train.py` re-runs train and what follows it, not backtest or tune."""
    for module in (m for m in _modules() if _layer(m) == "stages"):
        users = sorted(name for name, stage in STAGES.items() if module in stage.get("deps", []))
        assert users == [Path(module).stem], (module, users)


def test_no_stage_reads_a_metrics_file():
    """Metrics files are for people and `dvc metrics`; what a stage needs from another is an output."""
    metrics = {
        next(iter(m)) if isinstance(m, dict) else m
        for stage in STAGES.values()
        for m in stage.get("metrics", [])
    }
    assert metrics, "dvc.yaml declares no metrics"
    readers = {name: sorted(metrics & set(stage.get("deps", []))) for name, stage in STAGES.items()}
    assert {name: found for name, found in readers.items() if found} == {}


def test_the_export_depends_on_the_shops_params_only():
    """simulate reruns on a change of anything that shapes the export, and on nothing else: not on
    featurize's schedule (the calendars do not depend on it) nor on the truth's cutoffs."""
    from pipeline.core.params import SimulateParams

    shaping = {f"simulate.{field}" for field in SimulateParams.model_fields} - {"simulate.truth_cutoffs"}
    assert set(STAGES["simulate"]["params"]) == shaping
    assert STAGES["truth"]["params"] == ["simulate"]
    assert "data/features/fits.json" in STAGES["truth"]["deps"]


@pytest.mark.parametrize(
    "module", sorted(p.stem for p in (ROOT / "pipeline" / "core").glob("*.py") if p.stem != "__init__")
)
def test_every_core_module_has_its_own_test_file(module):
    """`tests/test_<module>.py` exists and imports the module it is named after."""
    path = ROOT / "tests" / f"test_{module}.py"
    assert path.exists(), f"no tests/test_{module}.py"
    text = path.read_text(encoding="utf-8")
    assert f"pipeline.core.{module} import" in text or f"from pipeline.core import {module}" in text, path


HEADLINE_KEYS = {"rows", "churn_rate", "auc", "pr_auc", "ece", "gap", "psi", "outreach", "quarantined"}


def test_the_declared_metrics_are_one_small_headline_file_per_stage():
    """`dvc metrics show` reads only metrics/<stage>.json; each stage's details are a plain output.
    The committed files use the shared keys, at most five each, so the table stays narrow."""
    for name, stage in STAGES.items():
        declared = [next(iter(m)) if isinstance(m, dict) else m for m in stage.get("metrics", [])]
        assert declared in ([], [f"metrics/{name}.json"]), (name, declared)
        if declared:
            assert f"--headline metrics/{name}.json" in stage["cmd"], name
            values = json.loads((ROOT / declared[0]).read_text())
            assert set(values) <= HEADLINE_KEYS and len(values) <= 5, (name, values)
            assert all(isinstance(v, int | float) for v in values.values()), (name, values)
