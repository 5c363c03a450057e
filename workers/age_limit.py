"""Age limit: news older than `retry.max_age` (counted from the event's `created_at`) helps nobody,
so it goes to the dead letters as `expired` instead of being delivered late. Checked before every attempt."""

from __future__ import annotations

from datetime import datetime

from schemas.alert import AlertEvent


def age(event: AlertEvent, now: datetime) -> float:
    return (now - event.created_at).total_seconds()


def remaining(event: AlertEvent, max_age: float, now: datetime) -> float:
    """Seconds the event may still be delivered in; zero or less: expired."""
    return max_age - age(event, now)


def expired(event: AlertEvent, max_age: float, now: datetime) -> bool:
    return remaining(event, max_age, now) <= 0
