"""Age limit: news older than `retry.max_age` helps nobody, so it goes to the dead letters as `expired`
instead of being delivered late. Checked before every attempt.

The age counts from the event's `created_at`, or, for a replayed dead letter, from its last replay
(`alertq-replayed-at`, set by `alertq dlq replay`): an SRE who replays an `expired` dead letter wants
it delivered now, and the replay grants it a full `max_age` again (as it grants full retries). A
fallback copy (workers/fallback.py) counts from when it was re-addressed (`fallback.at`): the channel
that gave up may have used up the whole `max_age` on its retries, and the copy must still go out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from broker import names
from schemas.alert import AlertEvent


def replayed_at(headers: Mapping[str, Any]) -> datetime | None:
    """When the message was last replayed, if it was (and the header is a timezone-aware ISO time)."""
    value = headers.get(names.HEADER_REPLAYED_AT)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        return None
    return when if when.tzinfo is not None else None


def counted_from(event: AlertEvent, headers: Mapping[str, Any]) -> datetime:
    """Where the age starts: the latest of creation, the fallback re-addressing and the last replay."""
    starts = [event.created_at]
    if event.fallback is not None:
        starts.append(event.fallback.at)
    replayed = replayed_at(headers)
    if replayed is not None:
        starts.append(replayed)
    return max(starts)


def age(event: AlertEvent, headers: Mapping[str, Any], now: datetime) -> float:
    return (now - counted_from(event, headers)).total_seconds()


def remaining(event: AlertEvent, headers: Mapping[str, Any], max_age: float, now: datetime) -> float:
    """Seconds the event may still be delivered in; zero or less: expired."""
    return max_age - age(event, headers, now)


def expired(event: AlertEvent, headers: Mapping[str, Any], max_age: float, now: datetime) -> bool:
    return remaining(event, headers, max_age, now) <= 0
