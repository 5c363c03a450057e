"""The messages the sink has received, newest last, at most `max_messages` (the oldest is dropped).

Webhook posts and mails are messages on their own. Posts made through the chat APIs also carry their
place in the chat (`ApiPost`): channel, the API's own id (Mattermost post id, Slack ts), the root
they reply to, whether the chat would show them as edited. A root leaves with its thread: dropping
or deleting it drops its replies too, as deleting a root does in Mattermost.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from alertq.sink.render import Rendered, render

Channel = Literal["mattermost", "slack", "webhook", "email"]
Api = Literal["mattermost", "slack"]


@dataclass
class ApiPost:
    """Where an API-made message sits in the chat."""

    api: Api
    channel_id: str
    channel_name: str
    chat_id: str
    # Store id of the root this replies to; None for a root (or a Slack reply whose thread_ts named nothing).
    root: str | None = None
    # The thread_ts/root_id the client sent when no message had it: Slack takes it, the reply shows nowhere.
    orphan_of: str | None = None
    edited: bool = False
    # The API's own object as GET /posts/{id} or chat.update would answer it (Mattermost post fields, Slack ts…).
    native: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return index_key(self.api, self.channel_id, self.chat_id)

    def as_json(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "channel_id": self.channel_id,
            "channel_name": self.channel_name,
            "id": self.chat_id,
            "root": self.root,
            "orphan_of": self.orphan_of,
            "edited": self.edited,
        }


def index_key(api: Api, channel_id: str, chat_id: str) -> str:
    # Mattermost post ids are unique on the server; Slack ts only within a channel.
    return f"mattermost:{chat_id}" if api == "mattermost" else f"slack:{channel_id}:{chat_id}"


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
    api: ApiPost | None = None

    def replace_payload(self, payload: dict[str, Any], note: str | None = None) -> None:
        self.payload = payload
        self.rendered = render_message(self.channel, payload, self.api is not None)
        self.updated_at = _now()
        if note:
            self.notes.append(note)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "hook": self.hook,
            "source": "hook" if self.api is None else "api",
            "received_at": self.received_at,
            "updated_at": self.updated_at,
            "payload": self.payload,
            "rendered": self.rendered.model_dump(),
            "notes": self.notes,
            "headers": self.headers,
            "api": None if self.api is None else self.api.as_json(),
        }


def render_message(channel: Channel, payload: dict[str, Any], via_api: bool) -> Rendered:
    """API posts are kept in the API's shape; the renderer reads the webhook shape."""
    if via_api and channel == "mattermost":
        props = payload.get("props")
        attachments = props.get("attachments") if isinstance(props, dict) else None
        return render(channel, {"text": payload.get("message"), "attachments": attachments})
    if via_api and channel == "slack" and payload.get("blocks"):
        # With blocks, Slack shows the blocks; `text` is only the notification's fallback.
        return render(channel, {k: v for k, v in payload.items() if k != "text"})
    return render(channel, payload)


class Store:
    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self._messages: OrderedDict[str, Message] = OrderedDict()
        self._by_key: dict[str, str] = {}
        self._replies: dict[str, list[str]] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        # Bumped on every change: the page polls it to know when to redraw.
        self.version = 0
        self.dropped = 0

    def add(
        self,
        channel: Channel,
        hook: str,
        payload: dict[str, Any],
        headers: dict[str, str] | None = None,
        api: ApiPost | None = None,
    ) -> Message:
        rendered = render_message(channel, payload, api is not None)
        with self._lock:
            message = Message(
                str(self._next_id), channel, hook, _now(), payload, rendered, headers=headers or {}, api=api
            )
            self._next_id += 1
            self._messages[message.id] = message
            if api is not None:
                self._by_key[api.key()] = message.id
                if api.root is not None:
                    self._replies.setdefault(api.root, []).append(message.id)
            while len(self._messages) > self.max_messages:
                oldest = next(iter(self._messages))
                self.dropped += self._remove(oldest)
            self.version += 1
        return message

    def get(self, message_id: str) -> Message | None:
        with self._lock:
            return self._messages.get(message_id)

    def find(self, api: Api, channel_id: str, chat_id: str) -> Message | None:
        """The API post with this Mattermost post id, or this ts in this Slack channel."""
        with self._lock:
            found = self._by_key.get(index_key(api, channel_id, chat_id))
            return None if found is None else self._messages.get(found)

    def replies(self, message_id: str) -> list[Message]:
        with self._lock:
            return [self._messages[r] for r in self._replies.get(message_id, []) if r in self._messages]

    def all(self) -> list[Message]:
        with self._lock:
            return list(self._messages.values())

    def changed(self) -> None:
        with self._lock:
            self.version += 1

    def delete(self, message_id: str) -> bool:
        with self._lock:
            found = self._remove(message_id) > 0
            self.version += found
        return found

    def clear(self) -> int:
        with self._lock:
            count = len(self._messages)
            self._messages.clear()
            self._by_key.clear()
            self._replies.clear()
            self.version += 1
        return count

    def _remove(self, message_id: str) -> int:
        """Remove a message and, for a root, its thread; how many went. Caller holds the lock."""
        message = self._messages.pop(message_id, None)
        if message is None:
            return 0
        removed = 1
        if message.api is not None:
            self._by_key.pop(message.api.key(), None)
            if message.api.root is not None and message.api.root in self._replies:
                siblings = self._replies[message.api.root]
                if message_id in siblings:
                    siblings.remove(message_id)
        for reply in self._replies.pop(message_id, []):
            removed += self._remove(reply)
        return removed


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
