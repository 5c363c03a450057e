"""Keep all of a worker's threads on one CPU (`worker.one_cpu`).

The worker's threads (the connection thread and the lane threads) run Python one at a time under the
GIL and hand it over at every socket call. Spread over two cores, each hand-over wakes a thread
sleeping on the other core: a futex wake-up, an inter-processor interrupt and cold caches, per
syscall. Measured on the 2-core machine (quiet, `make bench`): 0.35 ms CPU and 8 voluntary context
switches per delivery spread over both cores, 0.18 ms and 1.3 on one core, at twice the rate. The
threads gain nothing from a second core (the GIL), the broker and the endpoints keep the other ones.

The CPU is the one the process starts on, the one the kernel found least busy just then; several
workers started together land on different ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

log = structlog.get_logger("alertq.worker")


def current_cpu() -> int | None:
    """The CPU this process runs on now (field 39 of /proc/self/stat), None where there is none."""
    try:
        stat = Path("/proc/self/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[36])  # field 39; the split starts at field 3


def pin() -> int | None:
    """Confine this process (and the threads it starts after this) to the CPU it runs on; returns it,
    or None when there is nothing to do (no affinity API, already on one CPU)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    cpu = current_cpu()
    if len(allowed) < 2 or cpu is None or cpu not in allowed:
        return None
    os.sched_setaffinity(0, {cpu})
    return cpu
