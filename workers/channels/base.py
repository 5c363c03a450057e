"""The contract between the worker runtime and a channel (Alertmanager's notifier shape).

A channel module in this package defines one `Notifier` subclass, named in the registry
(`workers/channels/__init__.py`). Its `send(event, body)` either returns (delivered) or raises
`Retryable` (try again, at the earliest `after` seconds from now) or `Permanent` (dead-letter with this
reason; both from `delivery.outcomes`). Everything else, validation, rate limits, retry tiers, dead
letters, acking, is the runtime's job, so a channel module is only "event → request → classify the
answer". Whether its settings can work is the settings' own answer (`ChannelSettings.problem`).
"""

from __future__ import annotations

from typing import ClassVar, Final

from schemas.alert import AlertEvent
from schemas.channels import ChannelSettings
from workers.folds import NO_HOLD, Hold

ONE_BY_ONE: Final = "one-by-one"  # a folded batch's answer for an event the runtime delivers alone


class ConfigurationError(Exception):
    """The channel's settings cannot work (no URL, two-way without a signing secret): fix and restart.

    Raised when the notifier is made, so a worker refuses to start instead of sending broken messages."""


class Notifier:
    """Base of every channel. Subclasses set `name` and implement `send` and, if useful, `target`."""

    name: ClassVar[str]

    def __init__(self, settings: ChannelSettings) -> None:
        problem = settings.problem(self.name)
        if problem is not None:
            raise ConfigurationError(problem)
        self.settings = settings

    def target(self, event: AlertEvent) -> str:
        """What rate limits and concurrency lanes are kept per (a webhook URL, an SMTP server).

        Returned as an opaque key that must not contain secrets; the default is the channel itself."""
        return self.name

    def paces_itself(self, event: AlertEvent) -> bool:
        """True when the notifier keeps to the endpoint's rate limits itself (the chat API clients do, per
        call): then the runtime's token bucket (`rate_limit`) is not applied on top."""
        return False

    def may_fold(self, event: AlertEvent) -> bool:
        """True when `event` may be folded with others waiting for its target (a digest in a storm):
        then the runtime hands the target's waiting events to `fold` as one batch."""
        return False

    def fold(self, events: list[AlertEvent]) -> dict[str, object] | None:
        """Deliver what waits for one target together: per event id, None (delivered), a
        `DeliveryError` (as `send` would raise), or `ONE_BY_ONE` (the runtime sends it alone). None for
        the whole batch: nothing worth folding, send each alone."""
        return None

    def fold_hold(self) -> Hold:
        """How a target collects after a batch that was folded, before its next one (a storm)."""
        return NO_HOLD

    def send(self, event: AlertEvent, body: bytes | None = None) -> None:
        """Deliver `event`. `body` is the message exactly as it came from the broker (None: not from a
        broker); only channels that forward the event as it is (webhook) read it."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections (HTTP sessions, SMTP) at shutdown."""
