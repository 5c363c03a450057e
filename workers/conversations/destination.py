"""Where a chat message lands: the chat, its endpoint and the channel (or user) in it.

Everything that groups chat messages is per destination, never per contact: the conversations, the
dedupe of one notification sent to several contacts, the worker's lanes and rate limits (the key is the
worker's target). The endpoint is a hash (a webhook URL is a secret; an API URL may hold credentials),
never the token; the channel is written as the operator wrote it (`team/channel`, `@user`, `C…`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from schemas.alert import AlertEvent

Chat = Literal["mattermost", "slack"]


def endpoint_hash(url: str) -> str:
    """12 hex digits of SHA-256: tells endpoints apart without showing them (as `Notifier.target` does)."""
    return hashlib.sha256(url.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Destination:
    chat: Chat
    endpoint: str  # endpoint_hash of the API base or webhook URL
    channel: str  # "" for a webhook's own channel

    @property
    def key(self) -> str:
        return f"{self.chat}:{self.endpoint}:{self.channel}"


def channel_for(event: AlertEvent, configured: str | None) -> str:
    """An escalation step's contact address (the routing file's channel or @user for this chat) wins over
    the configured channel."""
    address = event.contact.address if event.contact is not None else None
    return (address or configured or "").strip()
