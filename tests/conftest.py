"""Shared fixtures: small hand-made data, typed params, and one MLflow store per test session."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

from pipeline.core.params import FeaturizeParams, Params, load_params

ROOT = Path(__file__).resolve().parents[1]


def featurize_params(**changes: object) -> FeaturizeParams:
    """A small, fixed featurize spec for tests (not the project's params.yaml), with changes."""
    base = {
        "horizon_days": 90,
        "cutoff_every_days": 14,
        "n_cutoffs": 1,
        "eligibility_lookback_days": 365,
        "windows_days": [30],
        "trend_days": 30,
        "btyd_fit_customers": 1000,
        "horizon_candidates": [30, 90],
        "adapt_to_history": False,
    }
    return FeaturizeParams(**{**base, **changes})


# CI explores the same examples every run, so a red build is reproducible from its log
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def params() -> Params:
    return load_params(ROOT / "params.yaml")


@pytest.fixture(scope="session", autouse=True)
def mlflow_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A fresh SQLite store costs seconds of migrations: one per session, never the project's own."""
    store = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{store / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    return uri


def frame(text: str) -> pd.DataFrame:
    """A table written as whitespace-separated columns, the first line the header."""
    rows = [line.split() for line in text.strip().splitlines()]
    return pd.DataFrame(rows[1:], columns=rows[0])


def canonical(text: str) -> pd.DataFrame:
    """Canonical transactions from a text table: customer_id, order_ts (ISO, 'T' between date and
    time), amount, and any optional columns."""
    df = frame(text)
    df["order_ts"] = pd.to_datetime(df["order_ts"]).astype("datetime64[us]")
    df["amount"] = df["amount"].astype(float)
    for column in ("quantity", "unit_price"):
        if column in df:
            df[column] = df[column].astype(float)
    df.insert(0, "source_row", range(1, len(df) + 1))
    df["source_row"] = df["source_row"].astype("int64")
    return df


@pytest.fixture(scope="session")
def small_shop(tmp_path_factory) -> pd.DataFrame:
    """A small simulated shop through ingest: every optional column, returns included."""
    import pyarrow.csv as pacsv

    from pipeline.stages.ingest import ingest
    from pipeline.stages.simulate import simulate
    from tests.test_simulate import SMALL

    tmp = tmp_path_factory.mktemp("shop")
    raw, _, _ = simulate(
        SMALL.model_copy(update={"n_customers": 300}), featurize_params(horizon_days=60, n_cutoffs=3)
    )
    pacsv.write_csv(raw, tmp / "raw.csv")
    ingest(tmp / "raw.csv", load_params(ROOT / "params.yaml").ingest, tmp / "kept.parquet", tmp / "q.parquet")
    return pd.read_parquet(tmp / "kept.parquet")


# ---- running commands as an unprivileged user ---------------------------------------------------

UNPRIVILEGED = "nobody"


@dataclass(frozen=True)
class UserRunner:
    """Runs the project's commands as an ordinary user: the current one when the tests do not run
    as root; as root, `nobody`, since root ignores permission bits and would hide what breaks for
    everyone else. `bin_dir` holds `python`, `churn` and `dvc` that this user can run."""

    user: str | None
    bin_dir: Path
    home: Path
    pythonpath: str | None = None
    library_path: str | None = None  # the mirrored interpreter's libpython, not the system's

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_", "PYTHON"))}
        # the system's default PATH after the project's tools, as a new login would have it
        env.update(
            PATH=f"{self.bin_dir}:/usr/local/bin:/usr/bin:/bin",
            HOME=str(self.home),
            OMP_WAIT_POLICY="passive",
        )
        env.pop("VIRTUAL_ENV", None)
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        if self.library_path:
            env["LD_LIBRARY_PATH"] = self.library_path
        return {**env, **extra}

    def own(self, path: Path) -> Path:
        """Hand `path` (a folder made by the tests) to the user, as a checkout of their own."""
        if self.user:
            for item in [path, *path.rglob("*")]:
                shutil.chown(item, self.user, self.user_group)
        return path

    @property
    def user_group(self) -> str:
        return grp.getgrgid(pwd.getpwnam(self.user).pw_gid).gr_name if self.user else ""

    def popen(self, args: list[str], cwd: Path, **kwargs: object) -> subprocess.Popen:
        who = {"user": self.user, "group": self.user_group, "extra_groups": []} if self.user else {}
        return subprocess.Popen(args, cwd=cwd, env=kwargs.pop("env", None) or self.env(), **who, **kwargs)

    def run(
        self, args: list[str], cwd: Path, timeout: float = 900, **extra_env: str
    ) -> subprocess.CompletedProcess:
        with self.popen(
            args, cwd, env=self.env(**extra_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as proc:
            out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _world_readable_mirror(target: Path) -> tuple[Path, str, str]:
    """The interpreter, the installed packages and the project's code, hard-linked (copied across
    file systems) under `target`, where any user can read them: a venv under a root-only folder
    (a pyenv in /root, a checkout in a private temp folder) cannot be run by `nobody` as it is."""
    base, venv = Path(sys.base_prefix), Path(sys.prefix)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"

    def mirror(src: Path, dst: Path, skip: tuple[str, ...] = ()) -> None:
        for folder, dirs, files in os.walk(src):
            dirs[:] = [d for d in dirs if d not in skip]  # compiled modules too: nobody cannot write them
            out = dst / Path(folder).relative_to(src)
            out.mkdir(parents=True, exist_ok=True)
            out.chmod(0o755)
            for name in files:
                source = Path(folder) / name
                if source.is_symlink() and not source.exists():
                    continue
                try:
                    os.link(source, out / name, follow_symlinks=True)
                except OSError:
                    shutil.copy2(source, out / name)

    target.chmod(0o755)
    mirror(base / "lib" / version, target / "base/lib" / version, skip=("site-packages", "test"))
    for lib in (base / "lib").glob("libpython*"):
        shutil.copy2(lib, target / "base/lib" / lib.name)
    (target / "base/bin").mkdir(parents=True)
    shutil.copy2(Path(sys.base_prefix) / "bin" / version, target / "base/bin" / version)
    site = venv / "lib" / version / "site-packages"
    mirror(site, target / "venv/lib" / version / "site-packages")
    (target / "venv/bin").mkdir(parents=True)
    (target / "venv/pyvenv.cfg").write_text(
        f"home = {target / 'base/bin'}\ninclude-system-site-packages = false\n"
    )
    python = target / "venv/bin/python"
    python.symlink_to(target / "base/bin" / version)
    for script in ("churn", "dvc"):
        lines = (venv / "bin" / script).read_text().splitlines()
        (target / "venv/bin" / script).write_text("\n".join([f"#!{python}", *lines[1:]]) + "\n")
        (target / "venv/bin" / script).chmod(0o755)
    mirror(ROOT / "pipeline", target / "src/pipeline")
    for folder in [target, *target.rglob("*")]:
        if folder.is_dir():
            folder.chmod(0o755)
    return target / "venv/bin", str(target / "src"), str(target / "base/lib")


@pytest.fixture(scope="session")
def as_user() -> Iterator[UserRunner]:
    home = Path(tempfile.mkdtemp(prefix="churn-home-"))
    mirror = None
    if os.geteuid() != 0:
        runner = UserRunner(user=None, bin_dir=Path(sys.executable).parent, home=home)
    else:
        home.chmod(0o755)
        shutil.chown(home, UNPRIVILEGED, grp.getgrgid(pwd.getpwnam(UNPRIVILEGED).pw_gid).gr_name)
        mirror = Path(tempfile.mkdtemp(prefix="churn-mirror-"))
        bin_dir, src, lib = _world_readable_mirror(mirror)
        runner = UserRunner(user=UNPRIVILEGED, bin_dir=bin_dir, home=home, pythonpath=src, library_path=lib)
        check = "import sys, ssl, pipeline.cli, duckdb, lightgbm, mlflow; print(sys.version.split()[0])"
        done = runner.run(["python", "-c", check], cwd=home, timeout=300)
        assert done.returncode == 0, f"the mirrored environment does not run as {UNPRIVILEGED}: {done.stderr}"
        assert done.stdout.strip() == sys.version.split()[0], "the mirror runs another Python than the tests"
    yield runner
    for folder in (mirror, home):
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
