"""The messages the sink has received, newest last, at most `max_messages` (the oldest is dropped)."""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from alertq.sink.render import Rendered, render

Channel = Literal["mattermost", "slack", "webhook", "email"]


@dataclass
class Message:
    id: str
    channel: Channel
    hook: str
    received_at: str
    payload: dict[str, Any]
    rendered: Rendered
    # Secret part of this message's Slack response_url: only the listener that got the click knows it.
    response_token: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    notes: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    updated_at: str | None = None

    def replace_payload(self, payload: dict[str, Any], note: str | None = None) -> None:
        self.payload = payload
        self.rendered = render(self.channel, payload)
        self.updated_at = _now()
        if note:
            self.notes.append(note)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "hook": self.hook,
            "received_at": self.received_at,
            "updated_at": self.updated_at,
            "payload": self.payload,
            "rendered": self.rendered.model_dump(),
            "notes": self.notes,
            "headers": self.headers,
        }


class Store:
    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._messages: OrderedDict[str, Message] = OrderedDict()
        self._next_id = 1
        self._lock = threading.Lock()
        # Bumped on every change: the page polls it to know when to redraw.
        self.version = 0
        self.dropped = 0

    def add(
        self, channel: Channel, hook: str, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> Message:
        rendered = render(channel, payload)
        with self._lock:
            message = Message(str(self._next_id), channel, hook, _now(), payload, rendered, headers=headers or {})
            self._next_id += 1
            self._messages[message.id] = message
            while len(self._messages) > self.max_messages:
                self._messages.popitem(last=False)
                self.dropped += 1
            self.version += 1
        return message

    def get(self, message_id: str) -> Message | None:
        with self._lock:
            return self._messages.get(message_id)

    def all(self) -> list[Message]:
        with self._lock:
            return list(self._messages.values())

    def changed(self) -> None:
        with self._lock:
            self.version += 1

    def delete(self, message_id: str) -> bool:
        with self._lock:
            found = self._messages.pop(message_id, None) is not None
            self.version += found
        return found

    def clear(self) -> int:
        with self._lock:
            count = len(self._messages)
            self._messages.clear()
            self.version += 1
        return count


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
