"""Prometheus metrics of the escalator (served by `broker.metrics_server`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INCIDENTS_OPENED = Counter("alertq_incidents_opened_total", "Incidents opened by a PROBLEM, by policy.", ["policy"])
INCIDENTS_CLOSED = Counter(
    "alertq_incidents_closed_total",
    "Incidents closed, by cause (acknowledged, recovered, downtime, chat-ack, target, policy-gone).",
    ["cause"],
)
STEPS_SENT = Counter("alertq_escalation_steps_total", "Escalation steps sent, by policy.", ["policy"])
NOTICES_SENT = Counter(
    "alertq_escalation_notifications_total", "Notifications published by escalation steps, by channel.", ["channel"]
)
STEP_LATENESS = Histogram(
    "alertq_escalation_lateness_seconds",
    "How long after its due time a step was sent.",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 1.5, 2.5, 5, 10, 30, 60, 300),
)
