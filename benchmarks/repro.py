"""Benchmark: wall time and peak memory of each stage of a full `dvc repro`, on the bundled sample or
on a shop N times its size.

Copies the project into a temporary folder (its own git, DVC and MLflow store), runs `dvc repro`
`--repeat` times from scratch, and prints per stage the median seconds and the peak resident
memory of the stage's process (the largest over the runs) and the median seconds of its command
alone (the rest is DVC's hashing and caching of the outputs), then the whole run. `--lines N`
simulates a shop with N times the sample's customers (so about N times its order lines: 10 gives
about 10M lines); `--set section.key=value` changes a param in the copy (YAML values).

    python benchmarks/repro.py --repeat 3
    python benchmarks/repro.py --lines 10 --repeat 1 --set featurize.memory_limit=2GB
    python benchmarks/repro.py --lines 10 --repeat 1 --keep /tmp/x10-project   # to profile a stage

Each stage's `churn` command runs through a wrapper first on PATH that waits for it with
`os.wait4`, which gives that process's own peak memory. (The stages run the installed `churn`
command, so do not edit `pipeline/` while it runs.)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")
LOG_ENV = "CHURN_BENCHMARK_STAGE_LOG"

# the `churn` every stage calls: runs the real one and records its seconds and peak memory
WRAPPER = """#!{python}
import json, os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen([{real!r}, *sys.argv[1:]])
_, status, usage = os.wait4(proc.pid, 0)
with open(os.environ[{log!r}], "a") as log:
    log.write(json.dumps({{"command": sys.argv[1], "seconds": time.perf_counter() - start,
                          "peak_mib": usage.ru_maxrss / 1024}}) + "\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


def set_params(params: dict, settings: list[str]) -> None:
    for setting in settings:
        key, _, value = setting.partition("=")
        section, _, name = key.partition(".")
        if section not in params or not name:
            raise SystemExit(f"--set {setting}: expected section.key=value with a section of params.yaml")
        params[section][name] = yaml.safe_load(value)


def one_run(
    work: Path, env: dict[str, str]
) -> tuple[float, dict[str, float], dict[str, float], dict[str, float]]:
    """Seconds of the whole run, and per stage its seconds, its process's peak MiB and the seconds
    of its command alone (the rest is DVC's: hashing the outputs and storing them in its cache)."""
    outputs = ("data/raw", "data/validated", "data/features", "data/truth", "data/explain", "data/scores")
    for path in (*outputs, "models", "metrics", "mlflow.db", "mlartifacts", "dvc.lock", ".dvc/cache"):
        target = work / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    log = Path(env[LOG_ENV])
    log.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(
        ["dvc", "repro"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    stages: dict[str, float] = {}
    current, since = None, start
    assert proc.stdout is not None
    for line in proc.stdout:
        match = STAGE_LINE.match(line)
        if match:
            now = time.perf_counter()
            if current:
                stages[current] = now - since
            current, since = match.group(1), now
    if proc.wait() != 0:
        raise SystemExit("dvc repro failed")
    total = time.perf_counter() - start
    if current:
        stages[current] = time.perf_counter() - since
    peaks: dict[str, float] = {}
    commands: dict[str, float] = {}
    for entry in map(json.loads, log.read_text().splitlines()):
        peaks[entry["command"]] = max(peaks.get(entry["command"], 0.0), entry["peak_mib"])
        commands[entry["command"]] = commands.get(entry["command"], 0.0) + entry["seconds"]
    return total, stages, peaks, commands


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lines", type=int, default=1, help="the shop's size in multiples of the sample")
    parser.add_argument("--set", action="append", default=[], help="section.key=value, a param in the copy")
    parser.add_argument("--keep", type=Path, help="copy the last run's project here (to profile a stage)")
    args = parser.parse_args()
    if args.keep is not None and args.keep.exists():
        raise SystemExit(f"--keep {args.keep}: exists already")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "project"
        shutil.copytree(ROOT / "pipeline", work / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("dvc.yaml", "data/suppression.csv", "data/uplift/uplift.json"):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, work / name)
        params = yaml.safe_load((ROOT / "params.yaml").read_text())
        params["simulate"]["n_customers"] *= args.lines
        set_params(params, args.set)
        (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        subprocess.run([Path(sys.executable).parent / "dvc", "init", "-q"], cwd=work, check=True)
        shutil.copy(ROOT / ".dvc" / "config", work / ".dvc" / "config")  # no analytics; the plots page
        shutil.copytree(ROOT / ".dvc" / "plots", work / ".dvc" / "plots")
        bin_dir = Path(tmp) / "bin"
        bin_dir.mkdir()
        real = Path(sys.executable).parent / "churn"
        (bin_dir / "churn").write_text(WRAPPER.format(python=sys.executable, real=str(real), log=LOG_ENV))
        (bin_dir / "churn").chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
        env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env["PATH"]])
        env.setdefault("OMP_WAIT_POLICY", "passive")
        env[LOG_ENV] = str(Path(tmp) / "stages.jsonl")
        runs = [one_run(work, env) for _ in range(args.repeat)]
        with open(work / "data" / "raw" / "transactions.csv", "rb") as raw:
            lines = sum(1 for _ in raw) - 1
        if args.keep is not None:
            shutil.copytree(work, args.keep, symlinks=True)
    print(f"cores: {os.cpu_count()}; runs: {args.repeat}; order lines: {lines:,}; {' '.join(args.set)}")
    print(f"{'stage':<12}{'median s':>10}{'min s':>8}{'max s':>8}{'peak MiB':>10}{'command s':>11}")
    for stage in runs[0][1]:
        values = [r[1][stage] for r in runs]
        peak = max(r[2].get(stage, 0.0) for r in runs)
        command = statistics.median(r[3].get(stage, 0.0) for r in runs)
        print(
            f"{stage:<12}{statistics.median(values):>10.1f}{min(values):>8.1f}{max(values):>8.1f}{peak:>10.0f}"
            f"{command:>11.1f}"
        )
    totals = [r[0] for r in runs]
    largest = max(max(r[2].values()) for r in runs)
    median = statistics.median(totals)
    command = statistics.median(sum(r[3].values()) for r in runs)
    spread = f"{median:>10.1f}{min(totals):>8.1f}{max(totals):>8.1f}"
    print(f"{'dvc repro':<12}{spread}{largest:>10.0f}{command:>11.1f}")


if __name__ == "__main__":
    main()
