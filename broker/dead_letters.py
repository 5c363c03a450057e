"""Dead letters: what gave up goes to exchange `alertq.dead` with routing key `notify.<channel>`, the
body byte-for-byte and the original properties and headers, plus why (`alertq-dead-reason`), when
(`alertq-dead-at`) and the last error (`alertq-last-error`). `alertq dlq` lists and replays them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pika

from broker import names
from broker.publisher import with_headers

INVALID = "invalid"
UNSUPPORTED_SCHEMA = "unsupported-schema"
EXPIRED = "expired"
PERMANENT = "permanent"
MAX_ATTEMPTS = "max-attempts"

ERROR_MAX = 500


def properties(
    original: pika.BasicProperties,
    reason: str,
    error: str,
    now: datetime,
    bookkeeping: dict[str, Any] | None = None,
) -> pika.BasicProperties:
    """The original properties with the dead-letter headers added (and the attempt bookkeeping, if any)."""
    headers = dict(original.headers or {})
    headers.update(bookkeeping or {})
    headers[names.HEADER_DEAD_REASON] = reason
    headers[names.HEADER_DEAD_AT] = now.isoformat()
    headers[names.HEADER_LAST_ERROR] = error[:ERROR_MAX]
    return with_headers(original, headers)
