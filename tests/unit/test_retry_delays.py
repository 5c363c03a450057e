"""Which delay a retry gets: the attempt's tier, lengthened (never shortened) by the endpoint's wish."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broker import names
from delivery.outcomes import Permanent, Retryable, Unreachable
from workers import retries

TIERS = [10, 60, 300, 900]


@pytest.mark.parametrize(("attempt", "delay"), [(1, 10), (2, 60), (3, 300), (4, 900), (5, 900), (40, 900)])
def test_attempt_n_waits_tier_n_and_the_last_tier_repeats(attempt: int, delay: int) -> None:
    assert retries.delay_for(attempt, TIERS) == delay


@pytest.mark.parametrize(
    ("retry_after", "delay"),
    [
        (None, 10),
        (5, 10),  # shorter than the tier: the tier stands
        (11, 11),
        (10.2, 11),  # whole seconds, rounded up
        (59.5, 60),
        (61, 120),  # past a minute: whole minutes, so an endpoint's wishes make few delay queues
        (3600.5, 3660),
    ],
)
def test_retry_after_lengthens_the_tier_never_shortens_it(retry_after: float | None, delay: int) -> None:
    assert retries.delay_for(1, TIERS, retry_after) == delay


def test_bounded_seconds_is_at_least_one_second() -> None:
    assert retries.bounded_seconds(0) == 1
    assert retries.bounded_seconds(0.01) == 1


@pytest.mark.parametrize(("value", "attempt"), [(None, 1), (3, 3), ("4", 4), (0, 1), (-2, 1), ("x", 1), (b"2", 2)])
def test_the_attempt_header_is_read_forgivingly(value: object, attempt: int) -> None:
    headers = {} if value is None else {names.HEADER_ATTEMPT: value}
    assert retries.attempt_of(headers) == attempt


def test_first_attempt_time_is_kept_or_started_now() -> None:
    now = datetime(2026, 11, 27, 9, 30, tzinfo=UTC)
    assert retries.first_attempt_at({}, now) == now.isoformat()
    kept = {names.HEADER_FIRST_ATTEMPT_AT: b"2026-11-27T09:00:00+00:00"}
    assert retries.first_attempt_at(kept, now) == "2026-11-27T09:00:00+00:00"


def test_a_republished_message_drops_the_brokers_bookkeeping_only() -> None:
    headers = {"x-death": [{}], "x-delivery-count": 3, names.HEADER_ATTEMPT: 2, "custom": "kept"}
    assert retries.without_broker_headers(headers) == {names.HEADER_ATTEMPT: 2, "custom": "kept"}


def test_quick_retries_repeat_only_while_unreachable() -> None:
    calls: list[str] = []
    outcomes: list[Exception | None] = [Unreachable("refused"), Unreachable("refused"), None]

    def send() -> None:
        calls.append("try")
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome

    retries.quick(send, retries=3, first_wait=0)
    assert len(calls) == 3


@pytest.mark.parametrize("error", [Retryable("HTTP 503"), Permanent("HTTP 400")])
def test_quick_retries_leave_other_outcomes_to_the_caller_at_once(error: Exception) -> None:
    calls: list[str] = []

    def send() -> None:
        calls.append("try")
        raise error

    with pytest.raises(type(error)):
        retries.quick(send, retries=3, first_wait=0)
    assert calls == ["try"]


def test_quick_retries_give_up_with_the_last_unreachable() -> None:
    calls: list[str] = []

    def send() -> None:
        calls.append("try")
        raise Unreachable(f"refused {len(calls)}")

    with pytest.raises(Unreachable, match="refused 3"):
        retries.quick(send, retries=2, first_wait=0)
