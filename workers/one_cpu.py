"""Keep all of a worker's threads on one CPU (`worker.one_cpu`).

The worker's threads (the connection thread and the lane threads) run Python one at a time under the
GIL and hand it over at every socket call. Spread over two cores, each hand-over wakes a thread
sleeping on the other core: a futex wake-up, an inter-processor interrupt and cold caches, per
syscall. Measured on the 2-core machine (quiet, `make bench`): 0.35 ms CPU and 8 voluntary context
switches per delivery spread over both cores, 0.18 ms and 1.3 on one core, at twice the rate. The
threads gain nothing from a second core (the GIL), the broker and the endpoints keep the other ones.

Which CPU: the one with the fewest other alertq workers already confined to it (read from /proc), the
one this process runs on among equals. Several workers on one host so spread over the cores instead of
piling onto the core they happened to start on; a host with more workers than cores gets them evenly.
"""

from __future__ import annotations

import os
from collections import Counter
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


def pinned_workers(allowed: set[int]) -> Counter[int]:
    """How many other `alertq worker` processes are confined to each single CPU of `allowed`."""
    counts: Counter[int] = Counter()
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if b"worker" not in argv or not any(part.endswith(b"alertq") for part in argv[:2]):
                continue
            cpus = os.sched_getaffinity(int(entry.name))
        except OSError:
            continue  # gone meanwhile, or not ours to look at
        if len(cpus) == 1 and cpus <= allowed:
            counts[next(iter(cpus))] += 1
    return counts


def pin() -> int | None:
    """Confine this process (and the threads it starts after this) to one CPU, the least taken by other
    workers; returns it, or None when there is nothing to do (no affinity API, already on one CPU)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = os.sched_getaffinity(0)
    here = current_cpu()
    if len(allowed) < 2 or here is None or here not in allowed:
        return None
    cpu = choose(allowed, pinned_workers(allowed), here)
    os.sched_setaffinity(0, {cpu})
    return cpu


def choose(allowed: set[int], taken: Counter[int], here: int) -> int:
    """The allowed CPU with the fewest workers on it; among equals the one we run on, then the lowest."""
    return min(sorted(allowed), key=lambda cpu: (taken[cpu], cpu != here))
