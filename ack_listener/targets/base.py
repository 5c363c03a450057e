"""The target contract, the channel contract's twin: `acknowledge(ack)` returns once the core has the
acknowledgement, or raises `Retryable` (try again later) / `Permanent` (never works: dead-letter now)."""

from __future__ import annotations

from abc import ABC, abstractmethod

from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings
from schemas.channels import HttpSettings
from workers.channels.base import Permanent, Retryable

__all__ = ["Permanent", "Retryable", "Target", "http_settings"]


class Target(ABC):
    name: str

    @abstractmethod
    def acknowledge(self, ack: AckMessage) -> None: ...

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""


def http_settings(settings: AckTargetSettings) -> HttpSettings:
    return HttpSettings(
        connect_timeout=settings.timeout,
        read_timeout=settings.timeout,
        verify_tls=settings.verify_tls,
        ca_bundle=settings.ca_bundle,
    )
