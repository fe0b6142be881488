"""Conventions the linters do not check: a call of the project's own functions passes keywords
when it passes more than three arguments, and no module of the project reads the clock except at
a stage's or command's edge."""

import ast

from tests.conftest import ROOT

MAX_POSITIONAL = 3


def _trees() -> dict[str, ast.Module]:
    return {
        str(f.relative_to(ROOT)): ast.parse(f.read_text())
        for d in ("pipeline", "tests", "benchmarks")
        for f in sorted((ROOT / d).rglob("*.py"))
    }


def _project_callables(trees: dict[str, ast.Module]) -> set[str]:
    """Names of the project's module-level functions and classes (methods are left out: a formula's
    bounds, such as integral(g, origin, a, b), read best in their order)."""
    return {
        node.name
        for path, tree in trees.items()
        if path.startswith("pipeline/")
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
    }


def _long_positional_calls(trees: dict[str, ast.Module], names: set[str]) -> list[str]:
    found = []
    for path, tree in trees.items():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names):
                continue
            if len(node.args) > MAX_POSITIONAL and not any(isinstance(a, ast.Starred) for a in node.args):
                found.append(f"{path}:{node.lineno} {node.func.id}() with {len(node.args)} positional")
    return found


def test_calls_of_project_functions_with_more_than_three_arguments_pass_keywords():
    trees = _trees()
    assert _long_positional_calls(trees, _project_callables(trees)) == []


def test_the_keyword_check_finds_a_long_positional_call():
    tree = ast.parse("def f(a, b, c, d):\n    pass\n\nf(1, 2, 3, 4)\nf(1, 2, 3, d=4)\n")
    assert _long_positional_calls({"pipeline/x.py": tree}, {"f"}) == ["pipeline/x.py:4 f() with 4 positional"]


CLOCK = {("date", "today"), ("datetime", "now"), ("datetime", "utcnow"), ("datetime", "today")}


def test_the_core_and_the_stages_logic_never_read_the_clock():
    """Dates come from params or the caller: a stage's `main` (its edge) may pass today's date in."""
    found = []
    for path, tree in _trees().items():
        if not path.startswith("pipeline/"):
            continue
        edges = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        allowed = {id(n) for edge in edges for n in ast.walk(edge)}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute | ast.Name)
                and (getattr(node.value, "attr", None) or getattr(node.value, "id", None), node.attr) in CLOCK
                and id(node) not in allowed
            ):
                found.append(f"{path}:{node.lineno}")
    assert found == []
