"""Dead letters: the one vocabulary. What gave up goes to exchange `alertq.dead` with its routing key
(`notify.<channel>`, `ack.<source>`, …), the body byte-for-byte and the original properties and headers,
plus why (`alertq-dead-reason`, one of the reasons below), when (`alertq-dead-at`) and the last error
(`alertq-last-error`). Every process that dead-letters (workers, relay, enqueue's direct path, ack
forwarder, escalator) writes them through `headers`/`properties`; `alertq dlq` lists and replays them
and its help names the reasons from `REASONS`.

Standard library only at import: the `alertq` command's help reads `REASONS` without loading pika.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from broker import names

if TYPE_CHECKING:
    import pika

# alertq's own reasons.
INVALID = "invalid"
UNSUPPORTED_SCHEMA = "unsupported-schema"
EXPIRED = "expired"
PERMANENT = "permanent"
MAX_ATTEMPTS = "max-attempts"
UNROUTABLE = "unroutable"
# RabbitMQ's, when a quorum queue dead-letters a message by itself (its `x-death` reason, with `_`
# spelled `-` like alertq's): the queue's x-delivery-limit ran out, or a consumer rejected it.
DELIVERY_LIMIT = "delivery-limit"
REJECTED = "rejected"

REASONS: dict[str, str] = {
    INVALID: "not a valid message (or an unreadable spool file)",
    UNSUPPORTED_SCHEMA: "a schema major version this alertq does not know",
    EXPIRED: "older than retry.max_age",
    PERMANENT: "the endpoint refused it for good",
    MAX_ATTEMPTS: "retry.max_attempts (or ack_target.give_up_after) used up",
    UNROUTABLE: "no queue bound for its routing key (a channel nobody declared)",
    DELIVERY_LIMIT: "the queue's x-delivery-limit ran out (RabbitMQ's own)",
    REJECTED: "a consumer rejected it without requeue (RabbitMQ's own)",
}

ERROR_MAX = 500


def headers(reason: str, error: str, now: datetime) -> dict[str, Any]:
    """The dead-letter headers: reason, time, and the error (clipped)."""
    return {
        names.HEADER_DEAD_REASON: reason,
        names.HEADER_DEAD_AT: now.isoformat(),
        names.HEADER_LAST_ERROR: error[:ERROR_MAX],
    }


def properties(
    original: pika.BasicProperties,
    reason: str,
    error: str,
    now: datetime,
    bookkeeping: dict[str, Any] | None = None,
) -> pika.BasicProperties:
    """The original properties with the dead-letter headers added (and the attempt bookkeeping, if any)."""
    from broker.publisher import with_headers  # pika: loaded by the processes that publish, not by --help

    return with_headers(original, {**(original.headers or {}), **(bookkeeping or {}), **headers(reason, error, now)})
