"""What the escalator decides to publish; the flow (escalator.py) publishes it with confirms."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pika


@dataclass(frozen=True)
class Outgoing:
    exchange: str
    routing_key: str
    body: bytes
    properties: pika.BasicProperties


@dataclass
class Decision:
    """Messages to publish for one input, and what to record once the broker settled them all:
    `settled(True)` when it confirmed every one, `settled(False)` when it refused one (the input goes
    back to the queue and the decision is made again)."""

    publish: list[Outgoing] = field(default_factory=list)
    settled: Callable[[bool], None] | None = None
