import os
import subprocess
import sys

import pytest

from pipeline.core.parallel import usable_cores


def test_usable_cores_is_what_this_process_may_run_on():
    assert usable_cores() == len(os.sched_getaffinity(0)) >= 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this system")
def test_a_process_pinned_to_one_core_uses_one():
    """`os.cpu_count()` still says every core of the machine; the affinity is what counts."""
    code = (
        "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
        "from pipeline.core.parallel import usable_cores; print(usable_cores(), os.cpu_count())"
    )
    cores, machine = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert int(cores) == 1
    assert int(machine) == os.cpu_count()
