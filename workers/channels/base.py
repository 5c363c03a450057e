"""The contract between the worker runtime and a channel (Alertmanager's notifier shape).

A channel module in this package defines one `Notifier` subclass. Its `send(event)` either returns
(delivered) or raises `Retryable` (try again, at the earliest `after` seconds from now) or `Permanent`
(dead-letter with this reason). Everything else, validation, rate limits, retry tiers, dead letters,
acking, is the runtime's job, so a channel module is only "event → request → classify the answer".
"""

from __future__ import annotations

import importlib
from typing import ClassVar

from schemas.alert import AlertEvent
from schemas.channels import ChannelSettings


class DeliveryError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Retryable(DeliveryError):
    """Temporary failure: retry later. `after` is the endpoint's own wish (Retry-After), if any."""

    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class Unreachable(Retryable):
    """The endpoint could not be reached at all (refused, reset, connect timeout): nothing was delivered,
    so the runtime first retries a couple of times in-process before it delays the message in the broker."""


class Permanent(DeliveryError):
    """The endpoint will never accept this (bad payload, channel gone): dead-letter it now."""


class ConfigurationError(Exception):
    """The channel's settings cannot work (no URL, two-way without a signing secret): fix and restart.

    Raised when the notifier is made, so a worker refuses to start instead of sending broken messages."""


class Notifier:
    """Base of every channel. Subclasses set `name` and implement `send` and, if useful, `target`."""

    name: ClassVar[str]

    def __init__(self, settings: ChannelSettings) -> None:
        self.settings = settings

    def target(self, event: AlertEvent) -> str:
        """What rate limits and concurrency lanes are kept per (a webhook URL, an SMTP server).

        Returned as an opaque key that must not contain secrets; the default is the channel itself."""
        return self.name

    def paces_itself(self, event: AlertEvent) -> bool:
        """True when the notifier keeps to the endpoint's rate limits itself (the chat API clients do, per
        call): then the runtime's token bucket (`rate_limit`) is not applied on top."""
        return False

    def send(self, event: AlertEvent) -> None:
        raise NotImplementedError

    def deliver(self, event: AlertEvent, body: bytes) -> None:
        """What the runtime calls: `body` is the message exactly as it came from the broker. Channels
        that forward the event as it is (webhook) override this; the others just `send`."""
        self.send(event)

    def close(self) -> None:
        """Release connections (HTTP sessions, SMTP) at shutdown."""


def load_notifier(name: str, settings: ChannelSettings) -> Notifier:
    """The notifier of channel `name`: the one `Notifier` subclass in `workers.channels.<name>`."""
    module = importlib.import_module(f"workers.channels.{name}")
    for value in vars(module).values():
        if (
            isinstance(value, type)
            and issubclass(value, Notifier)
            and value is not Notifier
            and getattr(value, "name", None) == name
        ):
            return value(settings)
    raise LookupError(f"workers.channels.{name} defines no Notifier named {name!r}")
