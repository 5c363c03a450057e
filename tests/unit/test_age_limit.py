"""The age limit: from the event's creation, or from its last replay; timezone-less replay times are ignored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from broker import names
from schemas.alert import AlertEvent
from tests.support.alert_events import alert_event
from workers import age_limit

CREATED = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
MAX_AGE = 3600.0


def event() -> AlertEvent:
    return alert_event("PROBLEM", "service", "webhook", created_at=CREATED.isoformat())


def test_an_event_expires_max_age_after_its_creation() -> None:
    alert = event()
    assert not age_limit.expired(alert, {}, MAX_AGE, CREATED + timedelta(seconds=3599))
    assert age_limit.expired(alert, {}, MAX_AGE, CREATED + timedelta(seconds=3600))
    assert age_limit.remaining(alert, {}, MAX_AGE, CREATED + timedelta(seconds=600)) == 3000


def test_a_replay_grants_a_full_max_age_again() -> None:
    replayed = CREATED + timedelta(hours=5)
    headers = {names.HEADER_REPLAYED_AT: replayed.isoformat().encode()}
    now = replayed + timedelta(minutes=10)
    assert not age_limit.expired(event(), headers, MAX_AGE, now)
    assert age_limit.remaining(event(), headers, MAX_AGE, now) == 3000


def test_a_replay_time_before_the_creation_changes_nothing() -> None:
    headers = {names.HEADER_REPLAYED_AT: (CREATED - timedelta(days=1)).isoformat()}
    assert age_limit.counted_from(event(), headers) == CREATED


def test_unreadable_or_naive_replay_times_are_ignored() -> None:
    for value in ("yesterday", "2026-11-27T15:00:00", 12345, None):
        headers = {names.HEADER_REPLAYED_AT: value}
        assert age_limit.replayed_at(headers) is None
        assert age_limit.counted_from(event(), headers) == CREATED
