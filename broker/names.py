"""Every name alertq shares with RabbitMQ: exchanges, queues, routing keys and its own headers.

Standard library only and import-free, so the enqueue command can use it without slowing down.
Headers are alertq's own, never `x-…`: RabbitMQ 4 owns that prefix.
"""

from __future__ import annotations

EVENTS_EXCHANGE = "alertq.events"
DELAY_EXCHANGE = "alertq.delay"
DEAD_EXCHANGE = "alertq.dead"
DEAD_QUEUE = "alertq.dead"
ACKS_EXCHANGE = "alertq.acks"
ACKS_QUEUE = "alertq.acks"
ESCALATOR_QUEUE = "alertq.escalator"

ESCALATE_TIMER_KEY = "escalate.timer"

HEADER_ATTEMPT = "alertq-attempt"
HEADER_FIRST_ATTEMPT_AT = "alertq-first-attempt-at"
HEADER_LAST_ERROR = "alertq-last-error"
HEADER_DEAD_REASON = "alertq-dead-reason"
HEADER_DEAD_AT = "alertq-dead-at"
HEADER_REPLAYED_AT = "alertq-replayed-at"
HEADER_REPLAY_COUNT = "alertq-replay-count"
HEADER_DELAY = "alertq-delay"
# On a dead letter whose notification was re-addressed to its channel's fallback (workers/fallback.py):
# the channels, comma-separated. Kept by `alertq dlq replay`, so the fallback goes out once.
HEADER_FALLBACK_SENT = "alertq-fallback-sent"
# Set by `alertq test`: the queue the worker sends its receipt to (workers/receipts.py).
HEADER_REPORT_TO = "alertq-report-to"
RECEIPT_QUEUE_PREFIX = "alertq.receipts."


def notify_key(channel: str) -> str:
    """Routing key of a first delivery to a channel (the escalator sees these too)."""
    return f"notify.{channel}"


def retry_key(channel: str) -> str:
    """Routing key of a retry coming back from a delay queue: the channel's queue only, not the escalator."""
    return f"retry.{channel}"


def notify_queue(channel: str) -> str:
    return f"alertq.notify.{channel}"


def delay_queue(seconds: int) -> str:
    return f"alertq.delay.{seconds}s"
