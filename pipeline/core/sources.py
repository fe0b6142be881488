"""The project's own import graph, read from the source (never by importing): which project modules
a module reaches. The wiring test checks each stage's DVC deps against it, and the training
snapshots' file keys digest the sources featurize reaches (`partitions.context_digest`)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the folder holding the `pipeline` package


def module_file(dotted: str, root: Path = ROOT) -> str | None:
    """`pipeline.core.io` -> `pipeline/core/io.py` when that file exists under `root`, else None
    (a package's `__init__` or a name imported from a module)."""
    path = dotted.replace(".", "/") + ".py"
    return path if (root / path).exists() else None


def imports(module: str, root: Path = ROOT) -> set[str]:
    """The project modules `module` (a path under `root`) imports, as paths."""
    found = set()
    for node in ast.walk(ast.parse((root / module).read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            for target in [node.module, *(f"{node.module}.{a.name}" for a in node.names)]:
                if path := module_file(target, root):
                    found.add(path)
    return found


def reached(module: str, skip: frozenset[str] = frozenset(), root: Path = ROOT) -> set[str]:
    """Every project module `module` imports, directly or through others, except `skip` (which are
    not followed either) and `module` itself."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        for found in imports(todo.pop(), root) - skip - seen - {module}:
            seen.add(found)
            todo.append(found)
    return seen
