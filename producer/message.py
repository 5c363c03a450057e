"""How a spooled event becomes an AMQP message; shared by the direct path and the relay (pika only)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import pika

from broker import names
from broker.publisher import json_properties


class SpooledEvent(NamedTuple):
    """An event's body and routing; `path` is its spool file, None if it could not be spooled.

    A NamedTuple rather than a dataclass: pika already imports typing, while dataclasses would be one
    more import for every direct-path enqueue."""

    path: str | None
    body: bytes
    routing_key: str
    event_id: str

    @classmethod
    def load(cls, path: str) -> SpooledEvent:
        """Read a spool file. Raises OSError, or ValueError for a file that is not an alertq event."""
        with open(path, "rb") as fh:
            body = fh.read()
        event = json.loads(body)
        if not isinstance(event, dict) or not isinstance(event.get("channel"), str):
            raise ValueError("not an alertq event: no channel")
        return cls(
            path=path,
            body=body,
            routing_key=names.notify_key(event["channel"]),
            event_id=str(event.get("event_id", "")),
        )


def properties(event_id: str, headers: dict[str, Any] | None = None) -> pika.BasicProperties:
    return json_properties(event_id or None, headers, type_="alertq.alert/1")
