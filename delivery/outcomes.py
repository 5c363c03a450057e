"""What a delivery attempt came to, when not delivered: the runtime's vocabulary for every endpoint (a
channel's webhook or SMTP server, a monitoring core). Alertmanager's notifier shape: `Retryable`
(try again, at the earliest `after` seconds from now), `Unreachable` (nothing got through: safe to
repeat at once), `Permanent` (dead-letter with this reason).
"""

from __future__ import annotations


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
