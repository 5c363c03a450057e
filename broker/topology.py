"""The RabbitMQ topology (exchanges, queues, bindings; docs/architecture.md lists it), declared idempotently.

Every process declares it at start (`declare`) and `alertq topology declare` does it on demand, so a
new broker needs no hand set-up. `plan` lists the same declarations as data: `declare` applies them,
and the deploy tooling exports them as a definitions file, so the two can never disagree.

The escalator's queue is part of it only where escalation is configured (a `routing_file`): bound
without an escalator it would keep a copy of every notification that nobody reads, growing until
RabbitMQ's memory or disk alarm blocks every publisher. `retire_escalator_queue` undoes it on a
broker where escalation was on before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import ChannelClosedByBroker

from broker import names
from schemas.settings import ChannelsSettings, Settings

log = structlog.get_logger("alertq.topology")


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


def escalation_configured(settings: Settings) -> bool:
    """Escalation is on where a routing file names contacts and policies (the escalator needs one)."""
    return settings.routing_file is not None


def escalator_queue() -> Queue:
    """`alertq.escalator`: events, acks and timers for the escalator (one active consumer).

    Its overflow is `drop-head`, never `reject-publish`: every notification is routed to its channel's
    queue *and* here, and with publisher confirms one refusing queue nacks the whole publish (the
    other queues still take it; RabbitMQ 3.10 and 4.x alike). A full escalator queue with
    `reject-publish` would make the broker refuse notifications for the channels: the relay keeps the
    spool file and publishes it again, so the channel gets it again and again and the spool never
    drains. alertq sets no length limit; `drop-head` is what applies if a policy adds one (a quorum
    queue takes the smaller of argument and policy `max-length`): the oldest copies go to alertq.dead
    (reason `maxlen`) and notifications keep flowing. A policy's `overflow` overrides this argument
    on quorum queues, so alertq.escalator must never get `"overflow": "reject-publish"` by policy.
    At-least-once dead-lettering requires `reject-publish`, so this queue dead-letters at-most-once:
    what it loses that way is an escalation copy, never the notification itself."""
    return Queue(
        names.ESCALATOR_QUEUE,
        _quorum(
            **{
                "x-single-active-consumer": True,
                "x-dead-letter-exchange": names.DEAD_EXCHANGE,
                "x-dead-letter-strategy": "at-most-once",
                "x-overflow": "drop-head",
            }
        ),
    )


def escalator_bindings(channels: Iterable[str]) -> list[Binding]:
    """What feeds the escalator: acks, its own timers, and first deliveries to each of `channels`."""
    return [*_escalator_own_bindings(), *(_escalator_channel_binding(c) for c in channels)]


def _escalator_own_bindings() -> list[Binding]:
    return [
        Binding(names.ACKS_EXCHANGE, names.ESCALATOR_QUEUE, "#"),
        Binding(names.EVENTS_EXCHANGE, names.ESCALATOR_QUEUE, names.ESCALATE_TIMER_KEY),
    ]


def _escalator_channel_binding(channel: str) -> Binding:
    # Per enabled channel, not `notify.#`: so an event for a channel nobody consumes stays unroutable
    # and is caught by the publisher, never silently swallowed by the escalator's binding alone.
    return Binding(names.EVENTS_EXCHANGE, names.ESCALATOR_QUEUE, names.notify_key(channel))


def plan(
    settings: Settings,
    channels: Iterable[str] | None = None,
    delays: Iterable[int] | None = None,
    escalation: bool | None = None,
) -> Plan:
    """Everything alertq declares. `escalation` adds the escalator's queue, its bindings and its timer
    tiers; by default once a routing file configures escalation (without one nothing reads them).
    `delays` narrows the delay queues to those given (a worker declares only its retry delays); by
    default the retry delays, plus the timer tiers with escalation."""
    channel_names = list(settings.channels.enabled_names() if channels is None else channels)
    if escalation is None:
        escalation = escalation_configured(settings)
    if delays is None:
        delays = [*settings.retry.delays, *(TIMER_TIERS if escalation else ())]
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
    ]
    bindings = [
        Binding(names.DEAD_EXCHANGE, names.DEAD_QUEUE, "#"),
        Binding(names.ACKS_EXCHANGE, names.ACKS_QUEUE, "#"),
    ]
    if escalation:
        queues.append(escalator_queue())
        bindings += _escalator_own_bindings()
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
        if escalation:
            bindings.append(_escalator_channel_binding(channel))
    for seconds in delay_values:
        queue_, binding = delay_queue(seconds)
        queues.append(queue_)
        bindings.append(binding)
    return Plan(exchanges, queues, bindings)


def apply(channel: BlockingChannel, topology: Plan) -> list[str]:
    """Declare `topology`; returns notes for the operator (one line each), e.g. a queue kept as an
    earlier version declared it."""
    notes = []
    for exchange in topology.exchanges:
        channel.exchange_declare(exchange.name, exchange.type, durable=True)
    for queue in topology.queues:
        if queue.name == names.ESCALATOR_QUEUE:
            note = _declare_escalator_queue(channel.connection, queue)
            if note:
                notes.append(note)
        else:
            channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
    for binding in topology.bindings:
        # The key as planned, "" included: given None, pika would bind with the queue's name instead.
        channel.queue_bind(
            binding.destination,
            binding.source,
            binding.routing_key,
            arguments=binding.arguments or None,
        )
    return notes


ESCALATOR_POLICY_HINT = (
    "rabbitmqctl set_policy [-p <vhost>] alertq-escalator '^alertq\\.escalator$' "
    '\'{"overflow":"drop-head"}\' --apply-to quorum_queues'
)


def _declare_escalator_queue(connection: BlockingConnection, queue: Queue) -> str | None:
    """Declare the escalator's queue on a channel of its own. Before this version it was declared with
    `x-overflow=reject-publish` and at-least-once dead-lettering; RabbitMQ cannot change the arguments
    of a queue (406 PRECONDITION_FAILED), and a quorum queue cannot be deleted only-if-empty. Such a
    queue is kept as it is and working (it has no length limit, so its overflow never applies unless
    a policy adds one), with a note saying how to make it safe by policy."""
    side = connection.channel()
    try:
        side.queue_declare(queue.name, durable=True, arguments=queue.arguments)
    except ChannelClosedByBroker as exc:
        if exc.reply_code != 406:
            raise
        return (
            f"{queue.name} exists with other arguments than this version declares (an earlier alertq's "
            "x-overflow=reject-publish): kept as it is. Should a policy give it a length limit, a full "
            "queue would make the broker refuse notifications; make it drop its oldest copies instead: "
            f"{ESCALATOR_POLICY_HINT}"
        )
    side.close()
    return None


def declare(channel: BlockingChannel, settings: Settings, **kwargs: Any) -> Plan:
    """Declare everything alertq needs. Safe to repeat; raises pika's ChannelClosedByBroker
    (406 PRECONDITION_FAILED) if a queue exists with other arguments (the escalator's queue excepted:
    see `_declare_escalator_queue`). `kwargs` go to `plan`."""
    topology = plan(settings, **kwargs)
    for note in apply(channel, topology):
        log.warning("topology.note", note=note)
    return topology


def declare_with(settings: Settings, client_name: str, **kwargs: Any) -> Plan:
    """Declare everything on a connection of its own, closed again: for processes whose own connection
    is asynchronous (relay, escalator) and for tests. Raises what `connect` and `declare` raise."""
    from broker.connection import connect

    connection = connect(settings.broker, client_name)
    try:
        return declare(connection.channel(), settings, **kwargs)
    finally:
        connection.close()


def retire_escalator_queue(connection: BlockingConnection, settings: Settings) -> str | None:
    """Escalation is off here (no routing file): stop `alertq.escalator` from collecting copies nobody
    reads. Returns one line saying what was done, or None when there is no such queue.

    - an escalator consumes it: left alone (escalation is configured where that escalator runs);
    - otherwise every binding that feeds it is removed, so it stops growing at once; then
    - empty: deleted (an escalator declares it again when escalation is turned on);
    - holding messages: kept, and the line says how many and what to do. Messages are never destroyed
      here (RabbitMQ cannot delete a quorum queue only-if-empty, so it is unbound first and deleted
      only when it then holds nothing)."""
    queue = names.ESCALATOR_QUEUE
    channel = connection.channel()
    try:
        ok = channel.queue_declare(queue, passive=True).method
    except ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise
    if ok.consumer_count:
        channel.close()
        return _kept_for_consumers(queue, ok.consumer_count)
    feeds = escalator_bindings(ChannelsSettings.model_fields)  # every channel alertq knows, disabled ones too
    for binding in feeds:
        channel.queue_unbind(binding.destination, binding.source, binding.routing_key, binding.arguments or None)
    ok = channel.queue_declare(queue, passive=True).method
    if ok.consumer_count:  # an escalator started meanwhile, having bound its queue: bind it again
        for binding in escalator_bindings(settings.channels.enabled_names()):
            channel.queue_bind(binding.destination, binding.source, binding.routing_key, binding.arguments or None)
        channel.close()
        return _kept_for_consumers(queue, ok.consumer_count)
    if ok.message_count:
        channel.close()
        return (
            f"{queue} unbound (escalation is off: no routing_file), so it no longer grows; kept because it "
            f"holds {ok.message_count} messages: copies of notifications and acks the channels already had. "
            f"Drop them with `rabbitmqctl purge_queue [-p <vhost>] {queue}` (the next `alertq topology declare` "
            "then deletes the empty queue), or set routing_file and run `alertq escalator` to work them off"
        )
    deleted = channel.queue_delete(queue).method.message_count
    channel.close()
    if deleted:  # only publishes routed before the unbind can arrive between the check and the delete
        return f"{queue} deleted (escalation is off: no routing_file) with {deleted} messages that reached it meanwhile"
    return f"{queue} deleted: escalation is off (no routing_file) and it was empty"


def _kept_for_consumers(queue: str, consumers: int) -> str:
    return (
        f"{queue} kept: {consumers} escalator(s) consume it, so escalation is configured where they run; "
        "give this command the same routing_file, or stop them first to turn escalation off"
    )
