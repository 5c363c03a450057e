"""The broker side of a channel worker: one pika BlockingConnection, owned by the main thread.

pika connections are not thread-safe, and a BlockingConnection serves heartbeats only while its
thread is inside pika. So the main thread does nothing but pika: it takes deliveries and hands them
to `handle` (which must return at once, the worker passes them to lane threads), and it settles
them. Lane threads report an outcome with `settle_threadsafe`, which goes through
`connection.add_callback_threadsafe`, the one cross-thread call pika allows.

Settling = publish what has to go on (a retry to `alertq.delay`, a dead letter to `alertq.dead`, and
before it any fallback copies to `alertq.events`) with publisher confirms and mandatory on a channel of
its own, and only then ack the input. A publish the
broker refuses nacks the input back into the queue (requeue), never acks it. If the connection
drops, nothing is acked: the broker redelivers every unsettled message (at-least-once; the queue's
`x-delivery-limit` stops a message that crashes workers). Then reconnect with backoff (`broker.session`).
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection
from pika.exceptions import AMQPError
from pika.spec import Basic

from broker import names, topology
from broker.connection import connect, describe_error
from broker.publisher import ConfirmedPublisher, PublishError
from broker.session import Sessions
from schemas.settings import Settings
from workers import retries

log = structlog.get_logger("alertq.worker")


@dataclass(frozen=True)
class Delivery:
    tag: int
    generation: int  # which connection it came on: a tag is only valid there
    routing_key: str
    redelivered: bool
    properties: pika.BasicProperties
    body: bytes
    channel: str = ""

    def log_fields(self) -> dict[str, Any]:
        """event_id, channel, attempt for a log line about this delivery, from its properties alone."""
        headers = self.properties.headers or {}
        return {
            "event_id": self.properties.message_id,
            "channel": self.channel,
            "attempt": retries.attempt_of(headers),
        }


@dataclass(frozen=True)
class Publication:
    """Where the delivery's body (byte-for-byte) goes before the input is acked."""

    exchange: str
    routing_key: str
    properties: pika.BasicProperties
    delay: int | None = None  # the delay queue this needs (declared on first use)
    body: bytes | None = None  # None: the delivery's own body; else another message (a fallback copy)


@dataclass(frozen=True)
class Settlement:
    publication: Publication | None = None  # None: just ack (delivered)
    # Published (each confirmed) before `publication`: a dead letter's fallback copies (workers/fallback.py).
    before: tuple[Publication, ...] = ()
    requeue: bool = False  # hand it back to the queue unsettled (shutdown)
    on_settled: Callable[[bool], None] | None = None  # True: acked; False: requeued


class Consumer:
    def __init__(
        self,
        settings: Settings,
        channel: str,
        handle: Callable[[Delivery], None],
        on_stop: Callable[[], None],
        start_delays: set[int],
    ) -> None:
        self.settings = settings
        self.channel = channel
        self.queue = names.notify_queue(channel)
        self.handle = handle
        self.on_stop = on_stop
        self.start_delays = start_delays
        self.consuming = False
        self.generation = 0
        self._connection: BlockingConnection | None = None
        self._consume: BlockingChannel | None = None
        self._publisher: ConfirmedPublisher | None = None
        self._receipts: BlockingChannel | None = None
        self._unsettled: dict[int, Delivery] = {}
        self._delays: set[int] = set()
        # Outcomes from lane threads wait here; one callback on the connection thread settles all that
        # piled up (one wake-up per batch, not per message). The consume loop drains it too, as a net.
        self._outcomes: collections.deque[tuple[Delivery, Settlement]] = collections.deque()
        self._outcomes_lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return len(self._unsettled)

    def current(self, delivery: Delivery) -> bool:
        """Whether `delivery` came on the connection that is open now (safe from any thread). One from a
        lost connection can no longer be acked: the broker redelivers it, so working on it only makes a
        duplicate."""
        return delivery.generation == self.generation and self._connection is not None

    # ---- the loop ----------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume until `stop` is set, then drain; reconnects with backoff when the broker goes away."""
        sessions = Sessions(
            self.settings,
            "worker",
            stop,
            client_name=f"alertq worker {self.channel}",
            context=lambda: {"redelivered_by_broker": len(self._unsettled)},
        )
        sessions.run(lambda: self._session(sessions))

    def _session(self, sessions: Sessions) -> None:
        self.generation += 1
        self._unsettled = {}
        connection = self._connection = connect(self.settings.broker, sessions.client_name)
        sessions.connected()
        stop = sessions.stop
        try:
            publish_channel = connection.channel()
            topology.declare(publish_channel, self.settings, delays=self.start_delays)
            self._delays = set(self.start_delays)
            self._publisher = ConfirmedPublisher(publish_channel)
            self._receipts = connection.channel()  # no confirms: a receipt never waits on the broker
            self._consume = consume = connection.channel()
            consume.basic_qos(prefetch_count=self.settings.worker.prefetch)
            consumer_tag = consume.basic_consume(self.queue, self._on_message)
            self.consuming = True
            log.info("worker.consuming", queue=self.queue, prefetch=self.settings.worker.prefetch)
            while not stop.is_set():
                connection.process_data_events(time_limit=0.25)
                self._settle_pending()
            self._drain(consumer_tag)
            connection.close()
        finally:
            self.consuming = False
            if connection.is_open:
                with contextlib.suppress(AMQPError):
                    connection.close()
            self._connection = None
            self._consume = None
            self._publisher = None
            self._receipts = None

    def _drain(self, consumer_tag: str) -> None:
        """Stop taking work, hand back what has not started, wait for what has (up to the grace time)."""
        assert self._connection is not None and self._consume is not None
        self.consuming = False
        # pika nacks (requeues) deliveries it has received but not yet dispatched to us.
        self._consume.basic_cancel(consumer_tag)
        self.on_stop()
        deadline = time.monotonic() + self.settings.worker.shutdown_grace
        log.info("worker.draining", in_flight=len(self._unsettled))
        while self._unsettled and time.monotonic() < deadline:
            self._connection.process_data_events(time_limit=0.1)
            self._settle_pending()
        if self._unsettled:
            log.warning("worker.drain_timeout", left_to_broker=len(self._unsettled))

    # ---- deliveries ----------------------------------------------------------------------------------

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: pika.BasicProperties, body: bytes
    ) -> None:
        delivery = Delivery(
            tag=method.delivery_tag,
            generation=self.generation,
            routing_key=method.routing_key,
            redelivered=bool(method.redelivered),
            properties=properties,
            body=body,
            channel=self.channel,
        )
        self._unsettled[delivery.tag] = delivery
        self.handle(delivery)

    def settle_threadsafe(self, delivery: Delivery, settlement: Settlement) -> None:
        """Called from a lane thread: settle on the connection's thread."""
        connection = self._connection
        if connection is None or delivery.generation != self.generation:
            log.info("worker.outcome_dropped", **delivery.log_fields(), reason="connection lost; redelivered")
            return
        with self._outcomes_lock:
            self._outcomes.append((delivery, settlement))
            first = len(self._outcomes) == 1
        if not first:
            return  # a callback to settle the batch is already on its way
        try:
            connection.add_callback_threadsafe(self._settle_pending)
        except Exception as exc:  # the connection closed meanwhile: the broker redelivers
            log.info("worker.outcome_dropped", **delivery.log_fields(), reason=describe_error(exc))

    def _settle_pending(self) -> None:
        """On the connection's thread: settle every outcome the lane threads have handed over."""
        with self._outcomes_lock:
            batch = list(self._outcomes)
            self._outcomes.clear()
        if batch:
            self._settle_all(batch)

    def settle(self, delivery: Delivery, settlement: Settlement) -> None:
        """On the connection's thread: publish (confirmed) if needed, then ack; requeue on refusal."""
        self._settle_all([(delivery, settlement)])

    def _settle_all(self, batch: list[tuple[Delivery, Settlement]]) -> None:
        """Settle in order; the acks go out together at the end (see `_ack`), then `on_settled` runs."""
        assert self._consume is not None
        acks: list[int] = []
        settled: list[tuple[Callable[[bool], None], bool]] = []
        for delivery, settlement in batch:
            if delivery.generation != self.generation or delivery.tag not in self._unsettled:
                continue
            acked = False
            if settlement.requeue:
                self._consume.basic_nack(delivery.tag, requeue=True)
            else:
                try:
                    for publication in settlement.before:
                        self._publish(delivery, publication)
                    if settlement.publication is not None:
                        self._publish(delivery, settlement.publication)
                except PublishError as exc:
                    log.error("worker.publish_refused", **delivery.log_fields(), error=str(exc), requeued=True)
                    if settlement.publication is not None and settlement.publication.delay is not None:
                        self._delays.discard(settlement.publication.delay)  # declare it again next time
                    self._consume.basic_nack(delivery.tag, requeue=True)
                else:
                    acks.append(delivery.tag)
                    acked = True
            del self._unsettled[delivery.tag]
            if settlement.on_settled is not None:
                settled.append((settlement.on_settled, acked))
        self._ack(acks)
        for on_settled, acked in settled:
            on_settled(acked)

    def _ack(self, tags: list[int]) -> None:
        """Ack `tags` (settled, their publications confirmed) with as few frames as is safe.

        `multiple=True` acks every unacked tag up to the one given. Tags rise in delivery order and
        `_unsettled` keeps that order, so every tag below the lowest one still unsettled is settled:
        those go in one frame. A tag above it (a message that overtook a slower one) is acked on its
        own at once, never held back: a slow target must not keep the prefetch window full."""
        if not tags:
            return
        assert self._consume is not None
        lowest_open = next(iter(self._unsettled), None)
        tags.sort()
        below = [tag for tag in tags if lowest_open is None or tag < lowest_open]
        if below:
            self._consume.basic_ack(below[-1], multiple=True)
        for tag in tags[len(below) :]:
            self._consume.basic_ack(tag)

    def _publish(self, delivery: Delivery, publication: Publication) -> None:
        assert self._publisher is not None
        if publication.delay is not None and publication.delay not in self._delays:
            queue, binding = topology.delay_queue(publication.delay)
            topology.apply(self._publisher.channel, topology.Plan([], [queue], [binding]))
            self._delays.add(publication.delay)
            log.info("worker.delay_queue_declared", queue=queue.name)
        body = delivery.body if publication.body is None else publication.body
        self._publisher.publish(publication.exchange, publication.routing_key, body, publication.properties)

    def send_receipt(self, queue: str, body: bytes) -> None:
        """On the connection's thread: best effort, unconfirmed, to `queue` via the default exchange."""
        channel = self._receipts
        if channel is None or not channel.is_open:
            return
        try:
            channel.basic_publish("", queue, body, pika.BasicProperties(content_type="application/json"))
        except AMQPError as exc:
            log.info("worker.receipt_not_sent", queue=queue, error=describe_error(exc))
