"""Which dead letters an operator means: every option narrows (AND); a repeated option widens (OR).

Host and service match the event's name, display name or id, as shell globs, case-insensitively
(`--host 'web-*'`). Age is the time since the message was dead-lettered; a message that does not say
when never matches an age filter, so `purge --older-than 7d` never removes what it cannot date.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase

from broker.dlq.letter import DeadLetter

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90`, `90s`, `15m`, `2h`, `7d`, `1w`. Raises ValueError naming the accepted forms."""
    found = _DURATION.match(text)
    if not found:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 15m, 2h, 7d, 1w)")
    return timedelta(seconds=float(found.group(1)) * _UNIT_SECONDS[found.group(2).lower()])


def parse_point_in_time(text: str, now: datetime) -> datetime:
    """A duration back from now (`2h`) or an ISO-8601 time (`2026-11-27T08:00:00Z`, UTC if no zone)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (2h, 7d) nor an ISO-8601 time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Filter:
    channels: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    services: tuple[str, ...] = ()
    notification_types: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    dead_since: datetime | None = None  # dead-lettered at or after
    dead_before: datetime | None = None  # dead-lettered before

    def matches(self, letter: DeadLetter) -> bool:
        if self.channels and letter.channel not in self.channels:
            return False
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.event_ids and letter.event_id not in self.event_ids:
            return False
        if self.notification_types and letter.notification_type.upper() not in {
            t.upper() for t in self.notification_types
        }:
            return False
        if self.hosts and not _any_glob(self.hosts, letter.host_names):
            return False
        if self.services and not _any_glob(self.services, letter.service_names):
            return False
        if self.dead_since is not None or self.dead_before is not None:
            dead_at = letter.dead_at
            if dead_at is None:
                return False
            if self.dead_since is not None and dead_at < self.dead_since:
                return False
            if self.dead_before is not None and dead_at >= self.dead_before:
                return False
        return True

    @property
    def is_everything(self) -> bool:
        return self == Filter()

    def describe(self) -> str:
        parts = [
            f"{label}={'|'.join(values)}"
            for label, values in (
                ("channel", self.channels),
                ("reason", self.reasons),
                ("host", self.hosts),
                ("service", self.services),
                ("type", self.notification_types),
                ("event-id", self.event_ids),
            )
            if values
        ]
        if self.dead_since is not None:
            parts.append(f"dead since {self.dead_since.isoformat(timespec='seconds')}")
        if self.dead_before is not None:
            parts.append(f"dead before {self.dead_before.isoformat(timespec='seconds')}")
        return ", ".join(parts) or "all dead letters"


def _any_glob(patterns: Iterable[str], values: Iterable[str]) -> bool:
    lowered = [v.lower() for v in values]
    return any(fnmatchcase(value, pattern.lower()) for pattern in patterns for value in lowered)
