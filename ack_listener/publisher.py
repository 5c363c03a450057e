"""The listener's one broker connection, owned by a thread of its own.

pika is not thread-safe and a BlockingConnection serves heartbeats only inside its own calls, so a
dedicated thread owns the connection: it publishes what the request handlers queue (mandatory +
confirms, `broker.publisher.ConfirmedPublisher`) and otherwise keeps the connection alive. Handlers
wait on a future, never on pika, so the event loop never blocks. No broker: the future fails and the
click is answered 503 (the chat shows an error; the user can click again).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from concurrent.futures import Future

import structlog
from pika.adapters.blocking_connection import BlockingConnection
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from pika.exceptions import AMQPError

from broker import names, topology
from broker.connection import connect, describe_error
from broker.publisher import ConfirmedPublisher, PublishError, json_properties
from schemas.ack import AckMessage
from schemas.settings import Settings

log = structlog.get_logger("alertq.ack_listener")

_STOP = object()


class BrokerUnavailable(Exception):
    """The acknowledgement was not confirmed by the broker; the message says why, never a secret."""


class AckPublisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jobs: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="ack-publisher", daemon=True)
        self._connection: BlockingConnection | None = None
        self._publisher: ConfirmedPublisher | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._jobs.put(_STOP)
        self._thread.join(timeout=5)

    def submit(self, ack: AckMessage) -> Future[None]:
        """Publish from the publisher thread; the future completes once the broker confirmed it."""
        done: Future[None] = Future()
        self._jobs.put((ack, done))
        return done

    def _run(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=0.25)
            except queue.Empty:
                self._keep_alive()
                continue
            if not isinstance(job, tuple):  # _STOP
                self._close()
                return
            ack: AckMessage = job[0]
            done: Future[None] = job[1]
            if done.set_running_or_notify_cancel():
                try:
                    self._publish(ack)
                except BrokerUnavailable as exc:
                    done.set_exception(exc)
                except Exception as exc:
                    # A bug must fail this one click, not end the thread: every later click would wait
                    # for a publisher that is gone and be answered 503 for the listener's lifetime.
                    log.exception("ack_listener.publish_failed", ack_id=ack.ack_id)
                    done.set_exception(exc)
                else:
                    done.set_result(None)

    def _publish(self, ack: AckMessage) -> None:
        try:
            publisher = self._ensure()
            publisher.publish(
                names.ACKS_EXCHANGE,
                f"ack.{ack.source}",
                ack.to_json(),
                json_properties(ack.ack_id, type_="alertq.ack/1"),
            )
        except PublishError as exc:
            raise BrokerUnavailable(str(exc)) from None
        except (AMQPError, AMQPConnectorException, OSError) as exc:
            self._close()
            log.warning("ack_listener.broker_unavailable", error=describe_error(exc))
            raise BrokerUnavailable(describe_error(exc)) from None

    def _ensure(self) -> ConfirmedPublisher:
        if self._publisher is None or self._connection is None or not self._connection.is_open:
            self._close()
            connection = self._connection = connect(self._settings.broker, "alertq ack-listener")
            channel = connection.channel()
            topology.declare(channel, self._settings)
            self._publisher = ConfirmedPublisher(channel)
        return self._publisher

    def _keep_alive(self) -> None:
        if self._connection is None:
            return
        try:
            self._connection.process_data_events(time_limit=0)
        except (AMQPError, OSError) as exc:
            log.warning("ack_listener.broker_lost", error=describe_error(exc))
            self._close()

    def _close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            with contextlib.suppress(AMQPError, OSError):
                self._connection.close()
        self._connection = None
        self._publisher = None
