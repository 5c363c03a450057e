"""The RabbitMQ topology (exchanges, queues, bindings; docs/architecture.md lists it), declared idempotently.

Every process declares it at start (`declare`) and `alertq topology declare` does it on demand, so a
new broker needs no hand set-up. `plan` lists the same declarations as data: `declare` applies them,
and the deploy tooling exports them as a definitions file, so the two can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pika.adapters.blocking_connection import BlockingChannel

from broker import names
from schemas.settings import Settings


@dataclass(frozen=True)
class Exchange:
    name: str
    type: str


@dataclass(frozen=True)
class Queue:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Binding:
    source: str
    destination: str
    routing_key: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Plan:
    exchanges: list[Exchange]
    queues: list[Queue]
    bindings: list[Binding]


def _quorum(**extra: Any) -> dict[str, Any]:
    return {"x-queue-type": "quorum", **extra}


def _dead_lettering(exchange: str) -> dict[str, Any]:
    # at-least-once dead-lettering: the broker keeps the message until the target has it. It needs
    # reject-publish overflow; without it a dead-lettered message may be lost on the way.
    return {
        "x-dead-letter-exchange": exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


def delay_queue(seconds: int) -> tuple[Queue, Binding]:
    """One queue per delay value: per-message TTLs only expire at the head, so mixing values would
    make a short delay wait behind a long one. Expired messages go back to alertq.events with their
    routing key unchanged."""
    queue = Queue(
        names.delay_queue(seconds),
        _quorum(**{"x-message-ttl": seconds * 1000}, **_dead_lettering(names.EVENTS_EXCHANGE)),
    )
    binding = Binding(names.DELAY_EXCHANGE, queue.name, "", {"x-match": "all", names.HEADER_DELAY: str(seconds)})
    return queue, binding


# The escalator's timers hop through delay queues of these lengths (powers of two, in seconds): any
# delay is a sum of a few hops, and each queue holds a single TTL, so a short timer never waits behind
# a long one. 1 s … 16384 s (about 4.5 h); a longer delay takes more hops through the longest.
TIMER_TIERS: tuple[int, ...] = tuple(2**k for k in range(15))


def plan(
    settings: Settings,
    channels: Iterable[str] | None = None,
    delays: Iterable[int] | None = None,
    timers: bool | None = None,
) -> Plan:
    """Everything alertq declares. `delays` narrows the delay queues to those given (a worker declares
    only its retry delays); by default the retry delays, plus the escalator's timer tiers when `timers`
    says so, by default once a routing file configures escalation (without one nothing uses them)."""
    channel_names = list(settings.channels.enabled_names() if channels is None else channels)
    if timers is None:
        timers = settings.routing_file is not None
    if delays is None:
        delays = [*settings.retry.delays, *(TIMER_TIERS if timers else ())]
    delay_values = sorted(set(delays))
    exchanges = [
        Exchange(names.EVENTS_EXCHANGE, "topic"),
        Exchange(names.DELAY_EXCHANGE, "headers"),
        Exchange(names.DEAD_EXCHANGE, "topic"),
        Exchange(names.ACKS_EXCHANGE, "topic"),
    ]
    queues = [
        Queue(names.DEAD_QUEUE, _quorum()),
        Queue(names.ACKS_QUEUE, _quorum(**_dead_lettering(names.DEAD_EXCHANGE))),
        Queue(
            names.ESCALATOR_QUEUE,
            _quorum(**{"x-single-active-consumer": True}, **_dead_lettering(names.DEAD_EXCHANGE)),
        ),
    ]
    bindings = [
        Binding(names.DEAD_EXCHANGE, names.DEAD_QUEUE, "#"),
        Binding(names.ACKS_EXCHANGE, names.ACKS_QUEUE, "#"),
        Binding(names.ACKS_EXCHANGE, names.ESCALATOR_QUEUE, "#"),
        Binding(names.EVENTS_EXCHANGE, names.ESCALATOR_QUEUE, names.ESCALATE_TIMER_KEY),
    ]
    for channel in channel_names:
        queue = names.notify_queue(channel)
        queues.append(
            Queue(
                queue,
                _quorum(
                    **_dead_lettering(names.DEAD_EXCHANGE),
                    **{"x-delivery-limit": settings.broker.delivery_limit},
                ),
            )
        )
        bindings.append(Binding(names.EVENTS_EXCHANGE, queue, names.notify_key(channel)))
        bindings.append(Binding(names.EVENTS_EXCHANGE, queue, names.retry_key(channel)))
        # The escalator sees first deliveries per enabled channel, not `notify.#`: so an event for a
        # channel nobody consumes stays unroutable and is caught by the publisher, never silently
        # swallowed by the escalator's binding alone.
        bindings.append(Binding(names.EVENTS_EXCHANGE, names.ESCALATOR_QUEUE, names.notify_key(channel)))
    for seconds in delay_values:
        queue_, binding = delay_queue(seconds)
        queues.append(queue_)
        bindings.append(binding)
    return Plan(exchanges, queues, bindings)


def apply(channel: BlockingChannel, topology: Plan) -> None:
    for exchange in topology.exchanges:
        channel.exchange_declare(exchange.name, exchange.type, durable=True)
    for queue in topology.queues:
        channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
    for binding in topology.bindings:
        # The key as planned, "" included: given None, pika would bind with the queue's name instead.
        channel.queue_bind(
            binding.destination,
            binding.source,
            binding.routing_key,
            arguments=binding.arguments or None,
        )


def declare(channel: BlockingChannel, settings: Settings, **kwargs: Any) -> Plan:
    """Declare everything alertq needs. Safe to repeat; raises pika's ChannelClosedByBroker
    (406 PRECONDITION_FAILED) if a queue exists with other arguments."""
    topology = plan(settings, **kwargs)
    apply(channel, topology)
    return topology


def declare_with(settings: Settings, client_name: str) -> Plan:
    """Declare everything on a connection of its own, closed again: for processes whose own connection
    is asynchronous (relay, escalator) and for tests. Raises what `connect` and `declare` raise."""
    from broker.connection import connect

    connection = connect(settings.broker, client_name)
    try:
        return declare(connection.channel(), settings)
    finally:
        connection.close()
