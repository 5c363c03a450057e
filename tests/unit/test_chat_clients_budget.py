"""The chat clients' rate budget: a token bucket that also obeys the server (pure, no sleeping)."""

from __future__ import annotations

import email.utils

import pytest

from delivery.chat.budget import RateBudget, ServerBudget, retry_after, server_budget


def test_a_burst_goes_at_once_then_calls_are_spaced_at_the_rate() -> None:
    budget = RateBudget(per_second=2.0, burst=3)
    assert [budget.reserve(100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    # Booked in order: each further call one interval (0.5 s) after the previous one.
    assert budget.reserve(100.0) == pytest.approx(0.5)
    assert budget.reserve(100.0) == pytest.approx(1.0)
    assert budget.delay(100.0) == pytest.approx(1.5)
    # Time refills the bucket.
    assert budget.delay(101.5) == 0.0


def test_delay_takes_nothing() -> None:
    budget = RateBudget(per_second=1.0, burst=1)
    for _ in range(5):
        assert budget.delay(10.0) == 0.0
    assert budget.reserve(10.0) == 0.0
    assert budget.delay(10.0) == pytest.approx(1.0)


def test_a_wait_longer_than_max_wait_takes_nothing() -> None:
    budget = RateBudget(per_second=1.0, burst=1)
    assert budget.reserve(0.0, max_wait=0.0) == 0.0
    assert budget.reserve(0.0, max_wait=0.5) is None
    assert budget.reserve(0.0, max_wait=0.5) is None
    # Nothing was booked by the refused reservations: the next slot is still one interval away.
    assert budget.reserve(0.0) == pytest.approx(1.0)


def test_a_hold_blocks_until_then_and_resumes_at_the_rate_not_in_a_burst() -> None:
    budget = RateBudget(per_second=10.0, burst=100)
    budget.hold(3.0, now=50.0)
    assert budget.delay(50.0) == pytest.approx(3.0)
    assert budget.reserve(53.0) == 0.0
    assert budget.reserve(53.0) == pytest.approx(0.1)


def test_the_servers_remaining_count_is_believed_when_lower() -> None:
    budget = RateBudget(per_second=10.0, burst=100)
    budget.observe(ServerBudget(limit=100, remaining=2, reset_after=10.0, observed_at=0.0))
    assert budget.server is not None and budget.server.remaining == 2
    assert budget.reserve(0.0) == 0.0
    assert budget.reserve(0.0) == 0.0
    assert budget.reserve(0.0) == pytest.approx(0.1)


def test_a_higher_remaining_count_does_not_undo_local_spending() -> None:
    budget = RateBudget(per_second=1.0, burst=1)
    budget.reserve(0.0)
    budget.observe(ServerBudget(limit=100, remaining=100, reset_after=0.0, observed_at=0.0))
    assert budget.delay(0.0) == pytest.approx(1.0)


def test_an_empty_server_budget_waits_for_one_call_of_its_refill() -> None:
    # The server refills 60 calls in 30 s: one every 0.5 s, slower than the local 10/s.
    budget = RateBudget(per_second=10.0, burst=20)
    budget.observe(ServerBudget(limit=60, remaining=0, reset_after=30.0, observed_at=5.0))
    assert budget.delay(5.0) == pytest.approx(0.5)


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        RateBudget(per_second=0.0, burst=1)
    with pytest.raises(ValueError):
        RateBudget(per_second=1.0, burst=0)


def test_server_budget_reads_the_headers_in_any_case() -> None:
    report = server_budget({"x-ratelimit-limit": "101", "X-RATELIMIT-REMAINING": "7", "X-RateLimit-Reset": "3"}, 9.0)
    assert report == ServerBudget(limit=101, remaining=7, reset_after=3.0, observed_at=9.0)
    assert server_budget({"Content-Type": "application/json"}, 9.0) is None
    # Unreadable values count as missing.
    assert server_budget({"X-RateLimit-Remaining": "many", "X-RateLimit-Reset": "-1"}, 9.0) is None
    assert server_budget({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "soon"}, 9.0) == ServerBudget(
        limit=None, remaining=0, reset_after=None, observed_at=9.0
    )


def test_server_budget_wait() -> None:
    assert ServerBudget(10, 0, 4.0, observed_at=1.0).wait(2.0) == pytest.approx(3.0)
    assert ServerBudget(10, 1, 4.0, observed_at=1.0).wait(2.0) == 0.0
    assert ServerBudget(10, 0, None, observed_at=1.0).wait(2.0) == 0.0


def test_retry_after_as_seconds_or_as_a_date() -> None:
    assert retry_after("30", 0.0) == 30.0
    assert retry_after(" 1.5 ", 0.0) == 1.5
    assert retry_after(None, 0.0) is None
    assert retry_after("soon", 0.0) is None
    assert retry_after("-3", 0.0) is None
    date = email.utils.formatdate(1_000_060.0, usegmt=True)
    assert retry_after(date, 1_000_000.0) == pytest.approx(60.0)
    assert retry_after(date, 2_000_000.0) == 0.0


def test_a_budget_for_a_server_keeps_a_call_of_the_burst_in_reserve_or_a_longer_interval() -> None:
    with_burst = RateBudget.for_server(per_second=1.0, burst=5)
    assert [with_burst.reserve(0.0) for _ in range(5)] == [0.0, 0.0, 0.0, 0.0, 1.0]  # 4 at once, not 5
    alone = RateBudget.for_server(per_second=1.0, burst=1)
    assert alone.reserve(0.0) == 0.0 and alone.reserve(0.0) == pytest.approx(1.1)
