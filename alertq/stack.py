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
    ]
