"""Measuring whole processes against baselines run in the same benchmark, interleaved.

The machine is shared and noisy, so nothing here is an absolute figure to assert: a candidate and its
baseline run alternately (baseline, candidate, baseline, …) so that a burst of load from a neighbour
hits both, and the figure that matters is the ratio of their medians.

Bytecode: see `deployed`.

Peak RSS: `os.wait4`'s ru_maxrss of a child of this (large) pytest process is useless on Linux: at
exec the kernel folds the forked copy of the parent's memory into the child's maximum, so every child
looks as big as pytest. GNU time (`/usr/bin/time -f %M`) is a small process; its children's maximum is
their own.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

GNU_TIME = "/usr/bin/time"
WARMUP = 3


def deployed(env: dict[str, str]) -> dict[str, str]:
    """The environment without PYTHONDONTWRITEBYTECODE: an installed alertq runs from compiled bytecode
    (pip compiles it at install time); compiling our modules from source on every run would measure
    this sandbox, not the product. The warm-up rounds write the bytecode of the editable install."""
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass
class Runs:
    """Wall and CPU (user + system) seconds of each run of one command."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median_wall(self) -> float:
        return statistics.median(self.wall)

    @property
    def median_cpu(self) -> float:
        return statistics.median(self.cpu)


def run_once(argv: Sequence[str], env: dict[str, str], into: Runs) -> None:
    """Run a process to its end, stdin closed and output discarded; it must exit 0."""
    started = time.perf_counter()
    process = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    into.wall.append(time.perf_counter() - started)
    into.cpu.append(usage.ru_utime + usage.ru_stime)
    process.returncode = os.waitstatus_to_exitcode(status)
    assert process.returncode == 0, f"{argv[0]} exited {process.returncode}: {errors.decode(errors='replace')}"
    process.stderr.close()


def interleaved(
    commands: dict[str, Sequence[str]],
    env: dict[str, str],
    runs: int,
    warmup: int = WARMUP,
    before_each: Callable[[str], None] | None = None,
) -> dict[str, Runs]:
    """Run each command `runs` times, taking turns, after `warmup` untimed rounds (page cache, pyc)."""
    results = {name: Runs() for name in commands}
    for round_number in range(warmup + runs):
        for name, argv in commands.items():
            if before_each is not None:
                before_each(name)
            target = results[name] if round_number >= warmup else Runs()
            run_once(argv, env, target)
    return results


def gnu_time_available() -> bool:
    return shutil.which(GNU_TIME) is not None


def peak_rss_mib(argv: Sequence[str], env: dict[str, str], runs: int = 10) -> float:
    """Largest peak resident set size over `runs` runs, in MiB (GNU time reports KiB)."""
    peak_kib = 0
    for _ in range(runs):
        result = subprocess.run(
            [GNU_TIME, "-f", "alertq-bench-maxrss=%M", *argv],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        line = next(x for x in result.stderr.splitlines() if x.startswith("alertq-bench-maxrss="))
        peak_kib = max(peak_kib, int(line.split("=", 1)[1]))
    return peak_kib / 1024


@dataclass
class Row:
    figure: str
    value: str
    baseline: str
    ratio: str
    target: str
    met: bool | None  # None: a figure for the record, no target


def print_table(title: str, rows: list[Row], notes: Sequence[str] = ()) -> None:
    header = ("figure", "value", "baseline", "ratio", "target", "result")
    cells = [header] + [
        (r.figure, r.value, r.baseline, r.ratio, r.target, "" if r.met is None else ("PASS" if r.met else "MISS"))
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(f"\n== {title} ==")
    for i, row in enumerate(cells):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print(line)
    for note in notes:
        print(f"   {note}")
    print()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
