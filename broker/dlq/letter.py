"""One dead letter as the SRE tools see it: the message untouched plus what it says about itself.

alertq's workers and relay write `alertq-dead-reason`, `alertq-dead-at` and friends. A message that a
quorum queue dead-lettered by itself (its `x-delivery-limit` ran out, or a consumer rejected it without
requeue) carries RabbitMQ's `x-death` and `x-first-death-*` headers instead; its reason is taken from
there, spelled like alertq's (`delivery_limit` → `delivery-limit`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pika

from broker import names

# Bookkeeping of the queue the message sits in now, not part of the message: never exported or replayed.
QUEUE_BOOKKEEPING_HEADERS = frozenset({"x-delivery-count"})
BROKER_DEAD_HEADERS = frozenset(
    {
        "x-death",
        "x-first-death-reason",
        "x-first-death-queue",
        "x-first-death-exchange",
        "x-last-death-reason",
        "x-last-death-queue",
        "x-last-death-exchange",
    }
)
ALERTQ_DEAD_HEADERS = frozenset({names.HEADER_DEAD_REASON, names.HEADER_DEAD_AT, names.HEADER_LAST_ERROR})
UNKNOWN = "unknown"


@dataclass
class DeadLetter:
    routing_key: str
    properties: pika.BasicProperties
    body: bytes
    delivery_tag: int = 0
    position: int = 0  # 0-based place in the queue when the pass began
    headers: dict[str, Any] = field(init=False)
    event: dict[str, Any] | None = field(init=False)

    def __post_init__(self) -> None:
        raw = dict(self.properties.headers or {})
        self.headers = {k: v for k, v in raw.items() if k not in QUEUE_BOOKKEEPING_HEADERS}
        self.event = _json_object(self.body)

    # ---- why and when --------------------------------------------------------------------------------

    @property
    def reason(self) -> str:
        own = self.headers.get(names.HEADER_DEAD_REASON)
        if own:
            return _text(own)
        broker = self.headers.get("x-first-death-reason") or self._first_death().get("reason")
        return _text(broker).replace("_", "-") if broker else UNKNOWN

    @property
    def dead_at(self) -> datetime | None:
        own = self.headers.get(names.HEADER_DEAD_AT)
        if own:
            return _parse_time(_text(own))
        when = self._first_death().get("time")
        return _aware(when) if isinstance(when, datetime) else None

    @property
    def last_error(self) -> str:
        return _text(self.headers.get(names.HEADER_LAST_ERROR, ""))

    @property
    def attempt(self) -> int | None:
        value = self.headers.get(names.HEADER_ATTEMPT)
        try:
            return int(_text(value)) if value is not None else None
        except ValueError:
            return None

    @property
    def replay_count(self) -> int:
        try:
            return int(_text(self.headers.get(names.HEADER_REPLAY_COUNT, 0)))
        except ValueError:
            return 0

    @property
    def dead_lettered_by_broker(self) -> bool:
        return names.HEADER_DEAD_REASON not in self.headers and (
            "x-death" in self.headers or "x-first-death-reason" in self.headers
        )

    # ---- where it was going --------------------------------------------------------------------------

    @property
    def channel(self) -> str | None:
        """The delivery channel: from the routing key (`notify.<c>`/`retry.<c>`), else the queue that
        dead-lettered it, else the event's own `channel` field."""
        for prefix in ("notify.", "retry."):
            if self.routing_key.startswith(prefix):
                return self.routing_key[len(prefix) :] or None
        queue = _text(self.headers.get("x-first-death-queue") or self._first_death().get("queue") or "")
        notify_prefix = names.notify_queue("")
        if queue.startswith(notify_prefix) and len(queue) > len(notify_prefix):
            return queue[len(notify_prefix) :]
        value = (self.event or {}).get("channel")
        return value if isinstance(value, str) and value else None

    @property
    def source_queue(self) -> str | None:
        queue = self.headers.get("x-first-death-queue") or self._first_death().get("queue")
        return _text(queue) if queue else None

    # ---- what it is about ----------------------------------------------------------------------------

    @property
    def event_id(self) -> str:
        return self.properties.message_id or _text((self.event or {}).get("event_id", ""))

    @property
    def notification_type(self) -> str:
        return _text((self.event or {}).get("notification_type", ""))

    @property
    def host_names(self) -> list[str]:
        return _names_of((self.event or {}).get("host"))

    @property
    def service_names(self) -> list[str]:
        return _names_of((self.event or {}).get("service"))

    @property
    def host(self) -> str:
        return _display((self.event or {}).get("host"))

    @property
    def service(self) -> str:
        return _display((self.event or {}).get("service"))

    def summary(self) -> dict[str, Any]:
        """The fields `list --json` prints, one object per dead letter."""
        dead_at = self.dead_at
        return {
            "position": self.position,
            "event_id": self.event_id,
            "reason": self.reason,
            "channel": self.channel,
            "routing_key": self.routing_key,
            "dead_at": dead_at.isoformat() if dead_at else None,
            "attempt": self.attempt,
            "replay_count": self.replay_count,
            "last_error": self.last_error,
            "notification_type": self.notification_type,
            "host": self.host,
            "service": self.service,
            "dead_lettered_by": "broker" if self.dead_lettered_by_broker else "alertq",
            "size": len(self.body),
        }

    def _first_death(self) -> dict[str, Any]:
        deaths = self.headers.get("x-death")
        if isinstance(deaths, list) and deaths and isinstance(deaths[-1], dict):
            # x-death lists the most recent death first; the first one is the cause.
            return deaths[-1]
        return {}


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _aware(value: datetime) -> datetime:
    # pika decodes AMQP timestamps as UTC; be safe with naive ones from elsewhere.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parse_time(text: str) -> datetime | None:
    try:
        return _aware(datetime.fromisoformat(text))
    except ValueError:
        return None


def _names_of(part: Any) -> list[str]:
    if not isinstance(part, dict):
        return []
    return [str(part[k]) for k in ("name", "display_name", "id") if isinstance(part.get(k), str) and part[k]]


def _display(part: Any) -> str:
    if not isinstance(part, dict):
        return ""
    for key in ("display_name", "name", "id"):
        value = part.get(key)
        if isinstance(value, str) and value:
            return value
    return ""
