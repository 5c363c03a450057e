"""Rate budgets for chat APIs: how long to wait before the next call so that the chat never has to say 429.

A `RateBudget` is a token bucket (steady `per_second`, bursts of `burst`) kept as one number, the
"theoretical arrival time" of the generic cell rate algorithm: the time at which the bucket would be
full again if no call came. It also obeys the server: a 429's `Retry-After` holds every call until
then (`hold`), and a server that announces its remaining budget (Mattermost's `X-RateLimit-Remaining`)
is believed when it is stricter than the local count (`observe`), since other clients may spend from
the same budget (Mattermost limits per IP or per token, not per process).

Pure: every method takes `now` (a monotonic clock reading) from the caller, so tests need no sleeping.

`RateBudget.for_server` is the budget for a server's own limit: it keeps a margin. A call is stamped
when it leaves, the server counts it when it arrives, and arrival delays vary (tens of milliseconds
on a loaded host): a call that left late followed by one on time reach the server closer than the
interval, and with the server's bucket exactly drained the second is refused (measured: one 429 in a
storm at Slack's 1 post/s burst 5 with the budget set to the same numbers). So one call of the burst
stays in reserve, which absorbs up to an interval of jitter; with no burst to spare, the interval is
a tenth longer.
"""

from __future__ import annotations

import email.utils
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerBudget:
    """What a server's latest answer said about its rate limit (any part may be missing)."""

    limit: int | None  # X-RateLimit-Limit: calls allowed in a burst
    remaining: int | None  # X-RateLimit-Remaining: calls left right now
    reset_after: float | None  # X-RateLimit-Reset: seconds until the budget is whole again
    observed_at: float  # the caller's clock when the answer came

    def wait(self, now: float) -> float:
        """Seconds to wait before the next call by this report alone: none while calls remain, else until
        the reset (the server's own, pessimistic view: it refills before that)."""
        if self.remaining is None or self.remaining > 0 or self.reset_after is None:
            return 0.0
        return max(0.0, self.observed_at + self.reset_after - now)


def _integer(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def server_budget(headers: Mapping[str, str], now: float) -> ServerBudget | None:
    """The `X-RateLimit-*` headers of an answer (names in any case); None when it had none.

    Mattermost sends `X-RateLimit-Reset` as seconds from now (throttled's `ResetAfter`), not a date."""
    lower = {name.lower(): value for name, value in headers.items()}
    limit = _integer(lower.get("x-ratelimit-limit"))
    remaining = _integer(lower.get("x-ratelimit-remaining"))
    reset_after = _seconds(lower.get("x-ratelimit-reset"))
    if limit is None and remaining is None and reset_after is None:
        return None
    return ServerBudget(limit, remaining, reset_after, now)


def retry_after(value: str | None, wall_now: float) -> float | None:
    """`Retry-After` in seconds: delta seconds (what Slack and Mattermost send) or an HTTP date."""
    seconds = _seconds(value)
    if seconds is not None or value is None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - wall_now)


class RateBudget:
    """Calls to one destination: `per_second` sustained, `burst` at once after a quiet spell. Thread-safe."""

    def __init__(self, per_second: float, burst: int) -> None:
        if per_second <= 0 or burst < 1:
            raise ValueError("a rate budget needs per_second > 0 and burst >= 1")
        self.per_second = per_second
        self.burst = burst
        self._interval = 1.0 / per_second
        self._tolerance = (burst - 1) * self._interval
        self._full_at = -math.inf  # the theoretical arrival time: when the bucket would be full again
        self._lock = threading.Lock()
        self.server: ServerBudget | None = None  # the latest report `observe` got, for callers to show

    @classmethod
    def for_server(cls, per_second: float, burst: int) -> RateBudget:
        """The budget for a server that allows `per_second` in bursts of `burst`, with the margin above."""
        if burst > 1:
            return cls(per_second, burst - 1)
        return cls(per_second / 1.1, 1)

    def delay(self, now: float) -> float:
        """Seconds until a call may be made (0.0: now), without taking anything."""
        with self._lock:
            return max(0.0, self._full_at - self._tolerance - now)

    def capacity(self, now: float, within: float) -> int:
        """How many calls could start from now until `within` seconds from now (taking nothing): what is
        left of the burst plus the steady rate over `within`."""
        with self._lock:
            start = max(self._full_at, now)
            room = now + within + self._tolerance - start
            return 0 if room < 0 else int(room / self._interval + 1e-9) + 1

    def reserve(self, now: float, max_wait: float = math.inf) -> float | None:
        """Take the next free slot: the seconds to wait before making the call (0.0: go now). If that
        would be longer than `max_wait`, take nothing and return None (the caller defers instead)."""
        with self._lock:
            wait = max(0.0, self._full_at - self._tolerance - now)
            if wait > max_wait:
                return None
            self._full_at = max(self._full_at, now) + self._interval
            return wait

    def hold(self, seconds: float, now: float) -> None:
        """The server refused for `seconds` (a 429's Retry-After): no call before then, and after it one
        at a time at the steady rate, not a burst that would be refused again."""
        with self._lock:
            self._full_at = max(self._full_at, now + max(0.0, seconds) + self._tolerance)

    def observe(self, report: ServerBudget) -> None:
        """Believe the server's remaining count when it is lower than ours."""
        with self._lock:
            self.server = report
            if report.remaining is None:
                return
            remaining = max(0, report.remaining)
            if remaining < self.burst:
                self._full_at = max(self._full_at, report.observed_at + (self.burst - remaining) * self._interval)
            if remaining == 0 and report.reset_after is not None and report.limit is not None and report.limit > 0:
                # Empty: the next call is due once the server's bucket got one call back. The reset is
                # rounded up to whole seconds, so this is never earlier than the server allows.
                refill = report.reset_after / report.limit
                self._full_at = max(self._full_at, report.observed_at + refill + self._tolerance)
