"""Rate limits as the chats enforce them: GCRA, computed as Mattermost's limiter (throttled) does.

Each call at time `now` moves the key's theoretical arrival time (TAT) one emission interval
(`seconds / requests`) forward; a call is refused when that would put the TAT more than
`(max_burst + 1)` intervals ahead of now. So `max_burst + 1` calls pass back to back after a quiet
spell, then one per interval. The numbers it reports are the ones Mattermost puts in its headers:
limit `max_burst + 1`, remaining calls, seconds until the key is back to full, seconds to wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from schemas.sink import SinkRateLimit


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float

    def retry_after_seconds(self) -> int:
        """Whole seconds, rounded up and at least 1, as both chats send Retry-After."""
        return max(1, math.ceil(self.retry_after))

    def reset_seconds(self) -> int:
        return math.ceil(self.reset_after)


class Limiter:
    def __init__(self, settings: SinkRateLimit, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.interval = settings.seconds / settings.requests
        self.tolerance = self.interval * (settings.max_burst + 1)
        self._tat: dict[str, float] = {}

    def take(self, key: str) -> Verdict:
        now = self.clock()
        limit = self.settings.max_burst + 1
        if not self.settings.enabled:
            return Verdict(True, limit, limit, 0.0, 0.0)
        tat = max(self._tat.get(key, now), now)
        new_tat = tat + self.interval
        allow_at = new_tat - self.tolerance
        if now < allow_at:
            ttl = tat - now
            return Verdict(False, limit, self._remaining(ttl), ttl, allow_at - now)
        self._tat[key] = new_tat
        ttl = new_tat - now
        return Verdict(True, limit, self._remaining(ttl), ttl, 0.0)

    def _remaining(self, ttl: float) -> int:
        # A tiny epsilon: float steps of 0.1 s must not turn 3 whole intervals into 2.999….
        spare = self.tolerance - ttl
        return max(0, int(spare / self.interval + 1e-9)) if spare > -self.interval else 0
