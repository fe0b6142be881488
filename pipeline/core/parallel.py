"""How many cores this process may use, for the stages that spread independent pieces of work
over them (processes for the BTYD fits, threads for the oracle's NumPy arithmetic)."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """The cores this process may run on (its affinity, on Linux; elsewhere every core)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
