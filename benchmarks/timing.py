"""Timing one contender: its code runs in a fresh process, so its peak memory is its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, setup: str, timed: str, python: str = sys.executable) -> tuple[float, float, int]:
    """Seconds spent in `timed` (after `setup`), the process's peak RSS (MiB) and the ROWS it sets."""
    code = (
        setup
        + "\nimport time, json\nt = time.perf_counter()\n"
        + timed
        + "\nprint(json.dumps([time.perf_counter() - t, ROWS]))\n"
    )
    env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
    proc = subprocess.Popen([python, "-c", code], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else ""
    if status != 0:
        raise SystemExit(f"{name} failed")
    seconds, rows = json.loads(out.strip().splitlines()[-1])
    return seconds, usage.ru_maxrss / 1024, rows
