"""The target contract, the channel contract's twin: `acknowledge(ack)` returns once the core has the
acknowledgement, or raises `Retryable` (try again later) / `Permanent` (never works: dead-letter now).

`still_unacknowledged_problem(host_id, service_id)` is the escalator's question to the core: True (a
problem nobody has acknowledged), False (recovered or acknowledged), None (cannot tell: core
unreachable, object unknown, never checked). None never raises: callers fail open and escalate."""

from __future__ import annotations

from abc import ABC, abstractmethod

from delivery.outcomes import Permanent, Retryable
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings
from schemas.channels import HttpSettings

__all__ = ["Permanent", "Retryable", "Target", "http_settings"]


class Target(ABC):
    name: str

    @abstractmethod
    def acknowledge(self, ack: AckMessage) -> None: ...

    @abstractmethod
    def still_unacknowledged_problem(self, host_id: str, service_id: str | None) -> bool | None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""


def http_settings(settings: AckTargetSettings) -> HttpSettings:
    return HttpSettings(
        connect_timeout=settings.timeout,
        read_timeout=settings.timeout,
        verify_tls=settings.verify_tls,
        ca_bundle=settings.ca_bundle,
    )
