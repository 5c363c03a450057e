"""Retries: quick in-process ones for an unreachable endpoint, then broker-held delays over the tiers.

The attempt count travels with the message (`alertq-attempt`, 1-based: the attempt this delivery is),
so any worker can pick up any retry. The delay of attempt n is tier n (`retry.delays`, the last tier
repeats); an endpoint's `Retry-After` lengthens it, never shortens it. Delays are whole seconds, and
beyond a minute whole minutes, so the delay queues an endpoint's wishes create stay few.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from broker import names
from delivery.outcomes import Unreachable


def attempt_of(headers: Mapping[str, Any]) -> int:
    """The number of the attempt this delivery is: 1 for a message never tried."""
    try:
        return max(1, int(headers.get(names.HEADER_ATTEMPT, 1)))
    except (TypeError, ValueError):
        return 1


def first_attempt_at(headers: Mapping[str, Any], now: datetime) -> str:
    value = headers.get(names.HEADER_FIRST_ATTEMPT_AT)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value if isinstance(value, str) and value else now.isoformat()


def bounded_seconds(seconds: float) -> int:
    """Round a wish up to a whole second, past a minute to a whole minute: few distinct delay queues."""
    whole = max(1, math.ceil(seconds))
    return whole if whole <= 60 else 60 * math.ceil(whole / 60)


def delay_for(attempt: int, tiers: list[int], retry_after: float | None = None) -> int:
    """Seconds to hold attempt `attempt`'s message before attempt `attempt + 1`."""
    tier = tiers[min(attempt, len(tiers)) - 1]
    if retry_after is None:
        return tier
    return max(tier, bounded_seconds(retry_after))


def without_broker_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """The message's headers minus the broker's own `x-…` bookkeeping (x-death, x-delivery-count): a
    republished message starts a fresh life in the broker; alertq's count is `alertq-attempt`."""
    return {k: v for k, v in headers.items() if not k.startswith("x-")}


def quick(send: Callable[[], None], retries: int, first_wait: float) -> None:
    """Call `send`, repeating it up to `retries` times (waits doubling from `first_wait`) while the
    endpoint is unreachable; any other outcome, and the last `Unreachable`, goes to the caller."""
    try:
        send()  # the usual case, without building a Retrying per delivery (it showed in the profile)
        return
    except Unreachable:
        if retries == 0:
            raise
    time.sleep(first_wait)
    for attempt in Retrying(
        retry=retry_if_exception_type(Unreachable),
        stop=stop_after_attempt(retries),
        wait=wait_exponential(multiplier=first_wait * 2, min=0, max=max(first_wait * 8, 0.0)),  # 2w, 4w, …
        reraise=True,
    ):
        with attempt:
            send()
