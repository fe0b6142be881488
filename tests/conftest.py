"""Shared fixtures: small hand-made data, typed params, and one MLflow store per test session."""

from __future__ import annotations

import datetime as dt
import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import ibis
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import settings

from pipeline.commands.data import ONLINE_RETAIL_II_MAPPING
from pipeline.core.btyd import ParetoNBD
from pipeline.core.params import (
    FeaturizeParams,
    IngestParams,
    Params,
    SimulateParams,
    TrainParams,
    load_params,
)
from pipeline.stages.score import score_table

ROOT = Path(__file__).resolve().parents[1]
# the date tests check exports as of (ingest quarantines orders after it unless valid_until is set)
TODAY = dt.date(2026, 11, 27)


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

# `make test-fast` (CHURN_TEST_TIER=fast) runs every property test on a quarter of its examples;
# the full suite, and CI, on all of them
FAST_TIER = os.environ.get("CHURN_TEST_TIER") == "fast"


def examples(n: int) -> int:
    """The number of examples a property test runs: `n`, or a quarter of it (at least 5) in the
    fast tier."""
    return max(5, n // 4) if FAST_TIER else n


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

    tmp = tmp_path_factory.mktemp("shop")
    raw, _ = simulate(SMALL_SHOP.model_copy(update={"n_customers": 300}))
    pacsv.write_csv(raw, tmp / "raw.csv")
    ingest(
        path=tmp / "raw.csv",
        params=load_params(ROOT / "params.yaml").ingest,
        kept_out=tmp / "kept.parquet",
        quarantine_out=tmp / "q.parquet",
        today=TODAY,
    )
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
            # temporary folders inside the home: what a killed command leaves goes with the home
            TMPDIR=str(self.home / "tmp"),
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
    (home / "tmp").mkdir()
    mirror = None
    if os.geteuid() != 0:
        runner = UserRunner(user=None, bin_dir=Path(sys.executable).parent, home=home)
    else:
        home.chmod(0o755)
        group = grp.getgrgid(pwd.getpwnam(UNPRIVILEGED).pw_gid).gr_name
        for folder in (home, home / "tmp"):
            shutil.chown(folder, UNPRIVILEGED, group)
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


# builders shared by several test files


def temporary_tables() -> set[str]:
    """The names of the default DuckDB connection's temporary tables."""
    rows = ibis.get_backend().raw_sql("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()
    return {name for (name,) in rows}


TRAIN_PARAMS = TrainParams(
    test_cutoffs=1,
    valid_share=0.25,
    calibration_cutoffs=1,
    seed=3,
    num_threads=1,
    learning_rate=0.1,
    num_leaves=7,
    min_child_samples=5,
    feature_fraction=1.0,
    lambda_l2=0.0,
    max_rounds=60,
    early_stopping_rounds=10,
    min_customers=50,
    calibration_min_gain=0.01,
    min_class_rows=10,
)


def train_snapshots(n: int = 600, seed: int = 0, horizon_days: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 300, n)
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:04d}" for i in range(n)],
            "cutoff": pd.Timestamp("2024-01-01"),
            "horizon_days": np.int32(horizon_days),
            "recency_days": recency,
            "n_orders": rng.integers(1, 10, n).astype(float),
            "channel": rng.choice(["web", "store"], n),
        }
    )
    frame["churned"] = (rng.uniform(0, 300, n) < recency).astype("int8")
    # a BTYD-like probability the booster starts from: right in level, blurred in rank
    frame["bgnbd_p_no_order"] = np.clip(recency / 300 + rng.normal(0, 0.25, n), 0.02, 0.98)
    return frame


@pytest.fixture(scope="session")
def booster():
    """A booster fitted on two draws of `train_snapshots`, shared by the tests that read one."""
    from pipeline.core.fitting import fit

    return fit(train_snapshots(seed=1), train_snapshots(seed=2), TRAIN_PARAMS)


FEATURE_PARAMS = featurize_params(windows_days=[30, 90])


FEATURE_CUTOFF = dt.date(2024, 4, 1)


# a loyal customer (one order exactly at the cutoff), a lapsing one, a new one, and one too old
FEATURE_LINES = canonical(
    """
customer_id order_id order_ts            amount product_id category quantity country
L           o1       2024-01-01T10:00:00 10     p1         a        1        UK
L           o1       2024-01-01T10:00:00 20     p2         b        2        UK
L           o2       2024-01-31T10:00:00 30     p1         a        3        UK
L           r1       2024-02-05T10:00:00 -5     p1         a        -1       UK
L           o3       2024-03-01T10:00:00 40     p3         a        1        UK
L           o4       2024-04-01T00:00:00 50     p4         c        1        DE
P           o5       2023-10-01T12:00:00 15     p1         a        1        FR
P           o6       2023-11-15T12:00:00 25     p2         b        1        FR
N           o7       2024-03-20T12:00:00 12     p5         d        2        NL
N           o8       2024-05-15T12:00:00 8      p5         d        1        NL
X           o9       2022-01-01T12:00:00 99     p1         a        1        UK
"""
)


SMALL_SHOP = SimulateParams(
    seed=7,
    n_customers=400,
    start_date=dt.date(2024, 1, 1),
    end_date=dt.date(2025, 1, 1),
    mean_lines_per_order=3.0,
    malformed_share=0.01,
    return_share=0.05,
)


# the Online Retail II mapping without the country column
RETAIL_MAPPING = IngestParams(
    columns={k: v for k, v in ONLINE_RETAIL_II_MAPPING["columns"].items() if k != "country"},
    date_formats=["%Y-%m-%d %H:%M"],
    max_quarantine_share=0.9,
    valid_from=dt.date(2010, 1, 1),
    valid_until=dt.date(2026, 11, 16),
)


RETAIL_HEADER = "Invoice,StockCode,Quantity,InvoiceDate,Price,Customer ID"


RETAIL_GOOD_ROW = "1,p1,2,2026-01-05 10:00,3.50,c1"


def scoring_inputs(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = [f"{i:05d}" for i in range(n)]
    ids[:3] = ['=HYPERLINK("http://x")', "+44123", "@SUM(A1)"]
    snapshot = pd.DataFrame(
        {
            "customer_id": ids,
            "cutoff": pd.Timestamp("2026-11-16"),
            "horizon_days": np.int32(90),
            "recency_days": rng.uniform(0, 300, n),
            "gap_mean": rng.uniform(10, 60, n),
            "gap_last": rng.uniform(10, 250, n),
            "n_orders": rng.integers(1, 10, n).astype(float),
            "tenure_days": rng.uniform(20, 700, n),
            "avg_order_value": rng.gamma(3.0, 20.0, n),
            "channel": rng.choice(["web", "store"], n),
        }
    )
    contrib = pd.DataFrame(
        {"customer_id": ids, **{c: rng.normal(0, 0.5, n) for c in ("recency_days", "n_orders", "channel")}}
    ).assign(base_value=0.3)
    return snapshot, contrib, rng.uniform(0, 1, n)


def explainer(contrib: pd.DataFrame):
    """What the score stage's `explain` does, from contributions made up for every row."""
    by_id = contrib.set_index("customer_id")
    return lambda rows: by_id.loc[rows["customer_id"]].reset_index()


def score_table_example(uplift=None):
    snapshot, contrib, p = scoring_inputs()
    pnbd = ParetoNBD(r=0.55, alpha=10.6, s=0.61, beta=11.7)
    return score_table(
        snapshot=snapshot,
        p=p,
        explain=explainer(contrib),
        pnbd=pnbd,
        model_version="churn-model/3",
        params=load_params(ROOT / "params.yaml").score.model_copy(update={"contact_budget": 50}),
        uplift=uplift,
    )


# the end-to-end project: one per test module that asks for it (module scope)


@pytest.fixture(scope="module")
def run(as_user: UserRunner) -> Callable[[list[str], Path], str]:
    """Runs a command in the project as an ordinary user (as `nobody` when the tests run as root):
    most people who run `dvc repro` are not root, and root ignores the permission bits."""

    def run_(args: list[str], cwd: Path) -> str:
        done = as_user.run(args, cwd)
        assert done.returncode == 0, f"{args} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        return done.stdout + done.stderr

    return run_


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, as_user: UserRunner, run) -> Path:
    # a folder every user can reach, handed to the user who runs the pipeline
    work = Path(tempfile.mkdtemp(prefix="churn-project-"))
    shutil.copytree(ROOT / "pipeline", work / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", work / "dvc.yaml")
    (work / "data").mkdir()
    shutil.copy(ROOT / "data" / "suppression.csv", work / "data" / "suppression.csv")
    (work / "data" / "uplift").mkdir()
    shutil.copy(ROOT / "data" / "uplift" / "uplift.json", work / "data" / "uplift" / "uplift.json")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["simulate"]["n_customers"] = 2500
    params["train"]["num_threads"] = 1
    params["explain"]["sample_rows"] = 300
    params["backtest"]["origins"] = 1  # the wiring is under test here; docs/quality.md has the model
    # a 2,500-customer shop is too small to promise beating the BTYD models; recency it must beat
    params["promote"] |= {"max_ece": 0.1, "must_beat": ["recency"]}
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    as_user.own(work)
    run(["git", "init", "-q"], work)
    run(["dvc", "init", "-q"], work)
    # the project's DVC settings: no analytics, the plot templates and the offline plots page
    shutil.copy(ROOT / ".dvc" / "config", work / ".dvc" / "config")
    shutil.copytree(ROOT / ".dvc" / "plots", work / ".dvc" / "plots")
    as_user.own(work / ".dvc")
    yield work
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def first_run(project: Path, run) -> str:
    return run(["dvc", "repro"], project)


@pytest.fixture
def set_train(project: Path) -> Iterator[Callable[..., None]]:
    """Changes params.yaml's train section for one test and puts the file back after it, so no
    test runs on params another test left behind."""
    shipped = (project / "params.yaml").read_text()

    def set_(**changes: object) -> None:
        params = yaml.safe_load(shipped)
        params["train"].update(changes)
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    yield set_
    (project / "params.yaml").write_text(shipped)


def stages_run(out: str) -> set[str]:
    return {line.split("'")[1] for line in out.splitlines() if line.startswith("Running stage")}


def every_customer(project: Path) -> set[str]:
    raw = pd.read_csv(project / "data/raw/transactions.csv", dtype=str, keep_default_na=False)
    return set(raw["Customer ID"]) - {""}


def stage_cmd(project: Path, stage: str) -> list[str]:
    return yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]["cmd"].split()


def outputs_of(project: Path, stage: str) -> list[Path]:
    spec = yaml.safe_load((project / "dvc.yaml").read_text())["stages"][stage]
    names = [
        next(iter(o)) if isinstance(o, dict) else o
        for kind in ("outs", "metrics", "plots")
        for o in spec.get(kind, [])
    ]
    files = []
    for name in names:
        path = project / name
        files += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return files
