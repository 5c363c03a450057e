"""Prometheus metrics of a channel worker (served by `broker.metrics_server`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERED = "delivered"
RETRIED = "retried"
DEAD = "dead"

DELIVERIES = Counter(
    "alertq_deliveries_total", "Messages settled by channel workers, by outcome.", ["channel", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "alertq_delivery_seconds",
    "Time of one delivery attempt to the endpoint (quick retries included).",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
RETRIES = Counter("alertq_retries_total", "Messages sent to a broker delay queue for a later attempt.", ["channel"])
DEAD_LETTERS = Counter("alertq_dead_letters_total", "Messages dead-lettered, by reason.", ["channel", "reason"])
IN_FLIGHT = Gauge("alertq_in_flight", "Messages this worker holds unacked.", ["channel"])
FALLBACKS = Counter(
    "alertq_fallbacks_total",
    "Notifications this channel gave up on and re-addressed to a fallback channel (channels.<name>.fallback).",
    ["channel", "fallback"],
)
