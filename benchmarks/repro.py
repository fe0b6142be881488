"""Benchmark: wall time and peak memory of each stage of a full `dvc repro` on the bundled sample.

Copies the project into a temporary folder (its own git, DVC and MLflow store), runs `dvc repro`
`--repeat` times from scratch, and prints the median seconds per stage and for the whole run, with
the peak resident memory of the largest stage process.

    python benchmarks/repro.py --repeat 3
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STAGE_LINE = re.compile(r"^Running stage '([^']+)'")


def one_run(work: Path) -> tuple[float, dict[str, float]]:
    outputs = ("data/raw", "data/validated", "data/features", "data/explain", "data/scores")
    for path in (*outputs, "models", "mlflow.db", "mlartifacts", "dvc.lock", ".dvc/cache"):
        target = work / path
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "DVC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.setdefault("OMP_WAIT_POLICY", "passive")
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
    return total, stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "pipeline", work / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("dvc.yaml", "params.yaml", "data/suppression.csv"):
            (work / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / name, work / name)
        subprocess.run(["git", "init", "-q"], cwd=work, check=True)
        subprocess.run([Path(sys.executable).parent / "dvc", "init", "-q"], cwd=work, check=True)
        runs = [one_run(work) for _ in range(args.repeat)]
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"cores: {os.cpu_count()}; runs: {args.repeat}")
    print(f"{'stage':<12}{'median s':>10}{'min s':>8}{'max s':>8}")
    for stage in runs[0][1]:
        values = [r[1][stage] for r in runs]
        print(f"{stage:<12}{statistics.median(values):>10.1f}{min(values):>8.1f}{max(values):>8.1f}")
    totals = [r[0] for r in runs]
    print(f"{'dvc repro':<12}{statistics.median(totals):>10.1f}{min(totals):>8.1f}{max(totals):>8.1f}")
    print(f"peak RSS of the largest stage process: {peak_mib:.0f} MiB")


if __name__ == "__main__":
    main()
