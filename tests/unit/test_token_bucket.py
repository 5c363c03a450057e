"""Rate limits: a token bucket per target, on a clock the test moves (no sleeping, no timing)."""

from __future__ import annotations

import pytest

from schemas.channels import RateLimit
from workers import rate_limit
from workers.rate_limit import RateLimits, TokenBucket


class Clock:
    """Stands in for the module's `time`: `monotonic` reads `now`, `sleep` records."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(rate_limit, "time", fake)
    return fake


def test_a_burst_goes_at_once_then_each_send_books_the_next_token(clock: Clock) -> None:
    bucket = TokenBucket(per_second=2.0, burst=3)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    # Concurrent senders queue up in order: each waits one interval more than the one before.
    assert [bucket.reserve() for _ in range(3)] == [0.5, 1.0, 1.5]


def test_tokens_come_back_at_the_steady_rate_up_to_the_burst(clock: Clock) -> None:
    bucket = TokenBucket(per_second=1.0, burst=3)
    for _ in range(3):
        bucket.reserve()
    clock.now += 2.0
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 1.0]
    clock.now += 3600.0  # a quiet hour refills the burst, not more
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]


def test_take_sleeps_for_its_reservation(clock: Clock) -> None:
    bucket = TokenBucket(per_second=4.0, burst=1)
    assert bucket.take() == 0.0
    assert bucket.take() == 0.25
    assert clock.slept == [0.25]


def test_each_target_has_a_bucket_of_its_own(clock: Clock) -> None:
    limits = RateLimits(RateLimit(per_second=1.0, burst=1))
    assert limits.bucket("hook-a") is limits.bucket("hook-a")
    assert limits.bucket("hook-a").reserve() == 0.0
    assert limits.bucket("hook-b").reserve() == 0.0  # not slowed by hook-a
    assert limits.bucket("hook-a").reserve() == 1.0
