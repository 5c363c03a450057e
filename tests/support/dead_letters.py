"""Realistic dead letters for tests, published to exchange alertq.dead the way the workers and the
broker do: alertq's `alertq-dead-*` headers, or RabbitMQ's own `x-death` for a delivery limit."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pika

from broker import names
from broker.publisher import ConfirmedPublisher, json_properties
from tests.support.amqp import Received, connect


@dataclass(frozen=True)
class Spec:
    channel: str
    reason: str
    host: str = "web-01"
    service: str | None = "HTTP"
    notification_type: str = "PROBLEM"
    dead_ago: timedelta = timedelta(minutes=5)
    attempt: int = 10


def event_body(spec: Spec, event_id: str) -> bytes:
    event: dict[str, Any] = {
        "schema": "alertq.alert/1",
        "event_id": event_id,
        "created_at": (datetime.now(UTC) - spec.dead_ago - timedelta(minutes=30)).isoformat(),
        "channel": spec.channel,
        "kind": "service" if spec.service else "host",
        "notification_type": spec.notification_type,
        "host": {
            "id": f"uuid-{spec.host}",
            "name": spec.host,
            "display_name": spec.host.upper(),
            "address": "10.0.0.1",
        },
        "service": {"id": f"uuid-{spec.service}", "name": spec.service, "display_name": spec.service}
        if spec.service
        else None,
        "state": 2,
        "output": "CRITICAL - connection refused ünïcödé",
        "long_output": "",
        "ack": None,
        "notification_number": 1,
        "contact": {"name": "oncall", "email": "oncall@example.org", "pager": None},
        "escalation": None,
        "source": {"producer_host": "mon-01", "core": "naemon"},
    }
    return json.dumps(event, ensure_ascii=False).encode()


def dead_letter(spec: Spec) -> tuple[str, bytes, pika.BasicProperties]:
    """(routing key, body, properties) of one dead letter as a worker publishes it."""
    event_id = str(uuid.uuid4())
    dead_at = datetime.now(UTC) - spec.dead_ago
    if spec.reason == "delivery-limit":
        # What a quorum queue's x-delivery-limit produces: the broker's headers, none of alertq's.
        headers: dict[str, Any] = {
            "x-first-death-reason": "delivery_limit",
            "x-first-death-queue": names.notify_queue(spec.channel),
            "x-first-death-exchange": names.EVENTS_EXCHANGE,
            "x-death": [
                {
                    "count": 1,
                    "reason": "delivery_limit",
                    "queue": names.notify_queue(spec.channel),
                    "time": dead_at.replace(microsecond=0),  # pika decodes timestamps as aware UTC
                    "exchange": names.EVENTS_EXCHANGE,
                    "routing-keys": [names.notify_key(spec.channel)],
                }
            ],
        }
    else:
        headers = {
            names.HEADER_DEAD_REASON: spec.reason,
            names.HEADER_DEAD_AT: dead_at.isoformat(timespec="seconds"),
            names.HEADER_LAST_ERROR: f"{spec.channel}: HTTP 404 no_service",
            names.HEADER_ATTEMPT: spec.attempt,
            names.HEADER_FIRST_ATTEMPT_AT: (dead_at - timedelta(minutes=20)).isoformat(timespec="seconds"),
        }
    return names.notify_key(spec.channel), event_body(spec, event_id), json_properties(event_id, headers)


def publish(url: str, specs: list[Spec], confirmed: bool = True) -> list[tuple[str, bytes, pika.BasicProperties]]:
    """Publish dead letters to exchange alertq.dead in the order given; returns what was published.
    `confirmed=False` (for the big benchmark sets) publishes without confirms: the caller waits for
    the depth instead."""
    letters = [dead_letter(spec) for spec in specs]
    connection = connect(url)
    try:
        channel = connection.channel()
        if confirmed:
            publisher = ConfirmedPublisher(channel)
            for key, body, props in letters:
                publisher.publish(names.DEAD_EXCHANGE, key, body, props)
        else:
            for key, body, props in letters:
                channel.basic_publish(names.DEAD_EXCHANGE, key, body, props)
    finally:
        connection.close()
    return letters


def comparable(received: Received) -> tuple[str, bytes, str | None, dict[str, Any]]:
    """What must survive untouched: routing key, body, message id, headers (without the dead queue's
    own x-delivery-count, which the broker adds on redelivery)."""
    headers = {k: v for k, v in received.headers.items() if k != "x-delivery-count"}
    return received.routing_key, received.body, received.properties.message_id, headers


def comparable_published(
    letter: tuple[str, bytes, pika.BasicProperties],
) -> tuple[str, bytes, str | None, dict[str, Any]]:
    key, body, props = letter
    return key, body, props.message_id, dict(props.headers or {})
