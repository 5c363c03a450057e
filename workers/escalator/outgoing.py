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
    """Messages to publish for one input, and what to record once the broker has confirmed them all."""

    publish: list[Outgoing] = field(default_factory=list)
    then: Callable[[], None] | None = None
