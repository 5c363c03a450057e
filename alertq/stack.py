"""What `alertq up` runs: the whole pipeline on one machine, one child process per part.

Each later part adds its entry here (workers per channel, sink, ack listener, escalator).
"""

from __future__ import annotations

from dataclasses import dataclass

from schemas.settings import Settings


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]


def processes(settings: Settings) -> list[Process]:
    return [
        Process("relay", ["alertq", "relay"]),
        *channel_workers(settings),
    ]


def channel_workers(settings: Settings) -> list[Process]:
    """One `alertq worker <channel>` per channel that is enabled and configured (others would only
    crash-loop); with `worker.metrics_port` set, each gets its own port counting up from it."""
    from workers.configured import problem

    result = []
    port = settings.worker.metrics_port
    for name in settings.channels.enabled_names():
        if problem(settings, name) is not None:
            continue
        argv = ["alertq", "worker", name]
        if port:
            argv += ["--metrics-port", str(port)]
            port += 1
        result.append(Process(f"worker-{name}", argv))
    return result
