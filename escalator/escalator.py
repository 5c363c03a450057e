"""`alertq escalator`: the flow. Read top-down: run → connection → on_message → decisions.py → carry_out.

It consumes `alertq.escalator` (single active consumer: a second escalator waits as a standby and the
broker hands it the queue when the active one's connection ends). For each message it asks
`Decisions` what to do, publishes that with confirms, records it (`Decision.settled`), and only then
acks the input: a crash anywhere leaves the input unacked, the broker redelivers it, and the state
store's claims keep a step from being sent twice.

One thread on pika's SelectConnection: confirms are pipelined (`broker.pipeline`), so many inputs are
in flight at once and the broker's fsyncs are shared between them. One synchronous confirm per
message would cap the escalator at the broker's fsync rate (a few hundred a second here), and an
alert storm of PROBLEMs would delay every timer behind it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pika
import structlog
from pika.adapters.select_connection import SelectConnection
from pika.channel import Channel
from pika.spec import Basic
from pydantic import ValidationError

from broker import dead_letters, names
from broker.connection import describe_error
from broker.metrics_server import serve
from broker.pipeline import Outcome, PipelinedPublisher
from broker.session import Sessions
from broker.shutdown import stop_on_signals
from escalator.decisions import Decisions, utc_now
from escalator.outgoing import Decision, Outgoing
from schemas.ack import parse_ack
from schemas.alert import parse_alert
from schemas.settings import Settings
from schemas.timer import parse_timer
from schemas.versioning import UnsupportedSchema

log = structlog.get_logger("alertq.escalator")

# A store that fails (PostgreSQL restarting, SQLite locked for long) must not spin: the input goes back
# to the queue after this pause.
STORE_ERROR_PAUSE = 1.0
# RabbitMQ 3.10 drops a quorum queue channel's buffered acks when the channel closes at once (see
# broker/dlq/scan.py): a short pause after the last ack keeps redeliveries to the few in flight.
ACK_GRACE = 0.3


class Escalator:
    def __init__(self, settings: Settings, decisions: Decisions, metrics_port: int | None = None) -> None:
        self.settings = settings
        self.decisions = decisions
        self.metrics_port = settings.escalator.metrics_port if metrics_port is None else metrics_port
        self.consuming = False
        self._stopping = threading.Event()
        self._sessions = Sessions(
            settings,
            "escalator",
            self._stopping,
            declare_topology=True,
            # Its own queue, bindings and timer tiers whatever the settings say: it is the one that reads them.
            topology_options={"escalation": True},
            context=lambda: {"unsettled": len(self._pending)},
        )
        self._connection: SelectConnection | None = None
        self._consume: Channel | None = None
        self._publisher: PipelinedPublisher | None = None
        self._pending: dict[int, Decision] = {}  # decisions waiting for confirms, by a serial number
        self._serial = 0

    # ---- lifecycle -------------------------------------------------------------------------------

    def run(self) -> int:
        stop_on_signals("escalator", self._stopping, self._wake_to_stop)
        server = None
        if self.metrics_port:
            server = serve(self.settings.escalator.metrics_host, self.metrics_port, lambda: self.consuming)
        try:
            self._sessions.run(self._run_connection)
        finally:
            if server is not None:
                server.shutdown()
            self.decisions.store.close_store()
        log.info("escalator.stopped")
        return 0

    def _wake_to_stop(self) -> None:
        """On a signal: the I/O loop does not look at the stop event by itself."""
        if self._connection is not None:
            self._connection.ioloop.add_callback_threadsafe(self._begin_stop)

    def _run_connection(self) -> None:
        self._connection = SelectConnection(
            self._sessions.next_parameters(),
            on_open_callback=lambda connection: connection.channel(on_open_callback=self._on_publish_channel),
            on_open_error_callback=self._on_connection_error,
            on_close_callback=self._on_connection_closed,
        )
        self._connection.ioloop.start()
        self._connection = self._consume = self._publisher = None

    def _on_connection_error(self, connection: SelectConnection, error: BaseException | str) -> None:
        self._sessions.unavailable(error)
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: SelectConnection, reason: BaseException) -> None:
        self.consuming = False
        if not self._stopping.is_set():
            self._sessions.unavailable(reason)
        # Nothing of this connection can be confirmed any more; its unacked inputs come back.
        for decision in self._pending.values():
            if decision.settled is not None:
                decision.settled(False)
        self._pending.clear()
        connection.ioloop.stop()

    def _on_channel_closed(self, channel: Channel, reason: BaseException) -> None:
        self._sessions.channel_closed(self._connection, reason)

    def _on_publish_channel(self, channel: Channel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        self._publisher = PipelinedPublisher(channel)
        assert self._connection is not None
        self._connection.channel(on_open_callback=self._on_consume_channel)

    def _on_consume_channel(self, channel: Channel) -> None:
        self._consume = channel
        channel.add_on_close_callback(self._on_channel_closed)

        def consume(_frame: Any) -> None:
            channel.basic_consume(names.ESCALATOR_QUEUE, self._on_message)
            self.consuming = True
            self._sessions.connected()
            log.info("escalator.consuming", queue=names.ESCALATOR_QUEUE, store=self.decisions.store.describe())
            self._schedule_sweep(0)

        channel.basic_qos(prefetch_count=self.settings.escalator.prefetch, callback=consume)

    def _begin_stop(self) -> None:
        self.consuming = False
        if self._consume is not None and self._consume.is_open:
            for tag in list(self._consume.consumer_tags):
                self._consume.basic_cancel(tag)
        deadline = time.monotonic() + self.settings.broker.confirm_timeout
        self._close_when_settled(deadline)

    def _close_when_settled(self, deadline: float) -> None:
        connection = self._connection
        if connection is None:
            return
        if self._pending and time.monotonic() < deadline:
            connection.ioloop.call_later(0.05, lambda: self._close_when_settled(deadline))
            return
        connection.ioloop.call_later(ACK_GRACE, lambda: connection.close() if connection.is_open else None)

    # ---- one message -----------------------------------------------------------------------------

    def _on_message(
        self, channel: Channel, method: Basic.Deliver, properties: pika.BasicProperties, body: bytes
    ) -> None:
        tag = method.delivery_tag
        try:
            decision = self._decide(method.routing_key, body)
        except (ValidationError, UnsupportedSchema, ValueError) as exc:
            reason = dead_letters.UNSUPPORTED_SCHEMA if isinstance(exc, UnsupportedSchema) else dead_letters.INVALID
            decision = Decision([self._dead_letter(method.routing_key, body, properties, reason, _one_line(exc))])
        except Exception as exc:  # the store failed: leave the message to a later attempt
            log.error("escalator.store_failed", error=describe_error(exc), routing_key=method.routing_key)
            assert self._connection is not None
            self._connection.ioloop.call_later(STORE_ERROR_PAUSE, lambda: _nack(channel, tag))
            return

        def done(confirmed: bool) -> None:
            if not channel.is_open:
                return  # the broker redelivers it
            if confirmed:
                channel.basic_ack(tag)
            else:
                channel.basic_nack(tag, requeue=True)

        self._carry_out(decision, done)

    def _decide(self, routing_key: str, body: bytes) -> Decision:
        if routing_key == names.ESCALATE_TIMER_KEY:
            return self.decisions.on_timer(parse_timer(body))
        if routing_key.startswith("notify."):
            return self.decisions.on_alert(parse_alert(body))
        return self.decisions.on_ack(parse_ack(body))  # everything else comes from alertq.acks

    def _carry_out(self, decision: Decision, done: Callable[[bool], None] | None = None) -> None:
        """Publish the decision's messages; once the broker settled all: record it, then `done`."""
        serial = self._serial = self._serial + 1
        waiting = len(decision.publish)
        refused = False

        def finish() -> None:
            if self._pending.pop(serial, None) is None:
                return  # settled(False) by a closed connection already
            if decision.settled is not None:
                try:
                    decision.settled(not refused)
                except Exception as exc:  # published all the same: say so, do not send it again
                    log.error("escalator.record_failed", error=describe_error(exc))
            if done is not None:
                done(not refused)

        def one_settled(out: Outgoing, outcome: Outcome) -> None:
            nonlocal waiting, refused
            if outcome is Outcome.RETURNED and out.exchange != names.DEAD_EXCHANGE:
                # A step for a channel nobody declared: dead-letter that one; the others go out.
                dead = self._dead_letter(
                    out.routing_key, out.body, out.properties, dead_letters.UNROUTABLE, "no queue bound"
                )
                publish(dead)
                return
            if outcome is not Outcome.CONFIRMED:
                refused = True
                log.warning("escalator.publish_refused", outcome=outcome.value, routing_key=out.routing_key)
            waiting -= 1
            if waiting == 0:
                finish()

        def publish(out: Outgoing) -> None:
            assert self._publisher is not None
            self._publisher.publish(
                out.exchange, out.routing_key, out.body, out.properties, lambda outcome: one_settled(out, outcome)
            )

        self._pending[serial] = decision
        if waiting == 0:
            finish()
            return
        for out in decision.publish:
            publish(out)

    def _dead_letter(
        self, routing_key: str, body: bytes, properties: pika.BasicProperties, reason: str, error: str
    ) -> Outgoing:
        log.warning("escalator.dead_lettered", reason=reason, error=error, routing_key=routing_key)
        return Outgoing(
            names.DEAD_EXCHANGE, routing_key, body, dead_letters.properties(properties, reason, error, utc_now())
        )

    # ---- the safety net --------------------------------------------------------------------------

    def _schedule_sweep(self, delay: float) -> None:
        if self._connection is not None:
            self._connection.ioloop.call_later(delay, self._sweep)

    def _sweep(self) -> None:
        """Send steps whose timers never came (lost with a broker's data). Rare by design; cheap to check."""
        sweep_after = self.settings.escalator.sweep_after
        if not self.consuming or self._publisher is None:
            return
        self._schedule_sweep(min(sweep_after / 2, 30.0))
        try:
            for incident in self.decisions.store.overdue(utc_now() - timedelta(seconds=sweep_after)):
                self._carry_out(self.decisions.on_overdue(incident))
        except Exception as exc:
            log.error("escalator.sweep_failed", error=describe_error(exc))


def _nack(channel: Channel, tag: int) -> None:
    if channel.is_open:
        channel.basic_nack(tag, requeue=True)


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error: dict[str, Any] = dict(exc.errors()[0])
        where = ".".join(str(part) for part in error.get("loc", ()))
        return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))
    return " ".join(str(exc).split()) or type(exc).__name__
