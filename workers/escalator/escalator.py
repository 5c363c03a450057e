"""`alertq escalator`: the flow. Read top-down: run → session → on_message → decisions.py.

One thread does everything: pika's BlockingConnection serves heartbeats only while its thread is in
pika, and every step is a few milliseconds of store and broker work, so there is nothing to overlap.
It consumes `alertq.escalator` (single active consumer: a second escalator waits as a standby and the
broker hands it the queue when the active one's connection ends). For each message it asks
`Decisions` what to do, publishes that with confirms, records it (`Decision.then`), and only then acks
the input: a crash anywhere leaves the input unacked, the broker redelivers it, and the store's
claims keep a step from being sent twice.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pika
import structlog
from pika.adapters.blocking_connection import BlockingChannel
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from pika.exceptions import AMQPError
from pika.spec import Basic
from pydantic import ValidationError

from broker import names, topology
from broker.connection import backoff_delays, connect, describe_error
from broker.publisher import ConfirmedPublisher, Unroutable
from schemas.ack import parse_ack
from schemas.alert import parse_alert
from schemas.settings import Settings
from schemas.timer import parse_timer
from schemas.versioning import UnsupportedSchema
from workers import dead_letters
from workers.escalator.decisions import Decisions, utc_now
from workers.escalator.outgoing import Decision, Outgoing
from workers.metrics import serve
from workers.shutdown import stop_on_signals

log = structlog.get_logger("alertq.escalator")

# A store that fails (PostgreSQL restarting, SQLite locked for long) must not spin: the input goes back
# to the queue and the escalator waits this long before it takes the next one.
STORE_ERROR_PAUSE = 1.0


class Escalator:
    def __init__(self, settings: Settings, decisions: Decisions, metrics_port: int | None = None) -> None:
        self.settings = settings
        self.decisions = decisions
        self.metrics_port = settings.escalator.metrics_port if metrics_port is None else metrics_port
        self.consuming = False
        self._stop = threading.Event()
        self._publisher: ConfirmedPublisher | None = None
        self._next_sweep = 0.0

    def run(self) -> int:
        self._stop = stop_on_signals()
        server = None
        if self.metrics_port:
            server = serve(self.settings.escalator.metrics_host, self.metrics_port, lambda: self.consuming)
        backoff = backoff_delays(self.settings.broker.reconnect_max_delay)
        try:
            while not self._stop.is_set():
                try:
                    self._session()
                except (AMQPError, AMQPConnectorException, OSError) as exc:
                    self.consuming = False
                    delay = next(backoff)
                    log.warning("escalator.broker_unavailable", error=describe_error(exc), retry_in=delay)
                    self._stop.wait(delay)
        finally:
            if server is not None:
                server.shutdown()
            self.decisions.store.close_store()
        log.info("escalator.stopped")
        return 0

    def _session(self) -> None:
        connection = connect(self.settings.broker, "alertq escalator")
        try:
            topology.declare(connection.channel(), self.settings)
            self._publisher = ConfirmedPublisher(connection.channel())
            consume = connection.channel()
            consume.basic_qos(prefetch_count=self.settings.escalator.prefetch)
            consume.basic_consume(names.ESCALATOR_QUEUE, self._on_message)
            self.consuming = True
            log.info("escalator.consuming", queue=names.ESCALATOR_QUEUE, store=self.decisions.store.describe())
            while not self._stop.is_set():
                connection.process_data_events(time_limit=0.5)
                self._sweep()
        finally:
            self.consuming = False
            if connection.is_open:
                connection.close()  # unacked inputs go back to the queue, for us or the standby

    # ---- one message -----------------------------------------------------------------------------

    def _on_message(
        self, channel: BlockingChannel, method: Basic.Deliver, properties: pika.BasicProperties, body: bytes
    ) -> None:
        try:
            decision = self._decide(method.routing_key, body)
        except (ValidationError, UnsupportedSchema, ValueError) as exc:
            reason = dead_letters.UNSUPPORTED_SCHEMA if isinstance(exc, UnsupportedSchema) else dead_letters.INVALID
            decision = Decision([self._dead_letter(method.routing_key, body, properties, reason, _one_line(exc))])
        except AMQPError:
            raise
        except Exception as exc:  # the store failed: leave the message to a later attempt
            log.error("escalator.store_failed", error=describe_error(exc), routing_key=method.routing_key)
            channel.basic_nack(method.delivery_tag, requeue=True)
            self._stop.wait(STORE_ERROR_PAUSE)
            return
        self._carry_out(decision)
        channel.basic_ack(method.delivery_tag)

    def _decide(self, routing_key: str, body: bytes) -> Decision:
        if routing_key == names.ESCALATE_TIMER_KEY:
            return self.decisions.on_timer(parse_timer(body))
        if routing_key.startswith("notify."):
            return self.decisions.on_alert(parse_alert(body))
        return self.decisions.on_ack(parse_ack(body))  # everything else comes from alertq.acks

    def _carry_out(self, decision: Decision) -> None:
        assert self._publisher is not None
        for out in decision.publish:
            try:
                self._publisher.publish(out.exchange, out.routing_key, out.body, out.properties)
            except Unroutable as exc:
                # A step for a channel nobody declared: the step's other notifications still go out.
                dead = self._dead_letter(out.routing_key, out.body, out.properties, "unroutable", str(exc))
                self._publisher.publish(dead.exchange, dead.routing_key, dead.body, dead.properties)
        if decision.then is not None:
            decision.then()

    def _dead_letter(
        self, routing_key: str, body: bytes, properties: pika.BasicProperties, reason: str, error: str
    ) -> Outgoing:
        log.warning("escalator.dead_lettered", reason=reason, error=error, routing_key=routing_key)
        return Outgoing(
            names.DEAD_EXCHANGE,
            routing_key,
            body,
            dead_letters.properties(properties, reason, error, utc_now()),
        )

    # ---- the safety net --------------------------------------------------------------------------

    def _sweep(self) -> None:
        """Send steps whose timers never came (lost with a broker's data). Rare by design; cheap to check."""
        sweep_after = self.settings.escalator.sweep_after
        if time.monotonic() < self._next_sweep:
            return
        self._next_sweep = time.monotonic() + min(sweep_after / 2, 30.0)
        try:
            overdue = self.decisions.store.overdue(utc_now() - timedelta(seconds=sweep_after))
            for incident in overdue:
                self._carry_out(self.decisions.on_overdue(incident))
        except AMQPError:
            raise
        except Exception as exc:
            log.error("escalator.sweep_failed", error=describe_error(exc))


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error: dict[str, Any] = dict(exc.errors()[0])
        where = ".".join(str(part) for part in error.get("loc", ()))
        return f"{where}: {error.get('msg')}" if where else str(error.get("msg"))
    return " ".join(str(exc).split()) or type(exc).__name__
