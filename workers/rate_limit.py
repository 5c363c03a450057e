"""Rate limits per target: a token bucket each (steady `per_second`, bursts of `burst`).

`reserve()` takes a token now or books the next one and says how long to wait for it, so concurrent
senders to one target queue up in order instead of all waking at once. The limit is per worker process.
"""

from __future__ import annotations

import threading
import time

from schemas.channels import RateLimit


class TokenBucket:
    def __init__(self, per_second: float, burst: int) -> None:
        self.per_second = per_second
        self.burst = float(burst)
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; returns the seconds to wait before using it (0.0: go now)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
            self._stamp = now
            self._tokens -= 1.0
            return 0.0 if self._tokens >= 0 else -self._tokens / self.per_second

    def take(self) -> float:
        """Wait for a token; returns how long that took."""
        wait = self.reserve()
        if wait > 0:
            time.sleep(wait)
        return wait


class RateLimits:
    """One bucket per target, made on first use."""

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, target: str) -> TokenBucket:
        with self._lock:
            bucket = self._buckets.get(target)
            if bucket is None:
                bucket = self._buckets[target] = TokenBucket(self.limit.per_second, self.limit.burst)
            return bucket
