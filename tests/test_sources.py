from pathlib import Path

from pipeline.core.sources import ROOT, imports, module_file, reached


def _project(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_import_walk_follows_imports_of_imports():
    # score imports outreach, which imports btyd, which imports quadrature
    score = "pipeline/stages/score.py"
    assert "pipeline/core/quadrature.py" not in imports(score)
    assert {f"pipeline/core/{m}.py" for m in ("outreach", "btyd", "quadrature")} <= reached(score)


def test_imports_name_modules_not_the_names_taken_from_them_and_skip_stops_the_walk(tmp_path):
    root = _project(
        tmp_path,
        {
            "pipeline/a.py": "from pipeline.b import thing\nfrom pipeline import c\nimport os\n",
            "pipeline/b.py": "from pipeline.d import other\nthing = 1\n",
            "pipeline/c.py": "from pipeline.a import x\n",
            "pipeline/d.py": "other = 2\n",
        },
    )
    assert imports("pipeline/a.py", root) == {"pipeline/b.py", "pipeline/c.py"}
    assert reached("pipeline/a.py", root=root) == {"pipeline/b.py", "pipeline/c.py", "pipeline/d.py"}
    assert reached("pipeline/a.py", skip=frozenset({"pipeline/b.py"}), root=root) == {"pipeline/c.py"}
    assert module_file("pipeline.b.thing", root) is None
    assert module_file("pipeline.b", root) == "pipeline/b.py"


def test_the_root_is_the_project():
    assert (ROOT / "pipeline" / "core" / "sources.py").is_file()
