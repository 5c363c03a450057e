"""alertq relay: publish the spool to RabbitMQ, oldest first, deleting each file only once confirmed.

Top-down:
1. take `<spool>/relay.lock` (a second relay waits as a standby until the first one dies);
2. connect (cluster URLs in turn, backoff between attempts) and declare the topology;
3. publish files through a window of unconfirmed messages (pipelined confirms, `broker.pipeline`: the
   broker's fsync is paid once per batch, not once per event), look for new files every
   `spool.poll_interval`;
4. on a confirm delete the file; an unroutable event goes to the dead letters as `unroutable`, an
   unreadable file as `invalid`, then its file is deleted; a nack leaves the file for a later try;
5. connection lost: every unconfirmed file is still on disk, so reconnect and carry on (an event whose
   confirm was lost in the crash is published again: at-least-once, consumers dedupe by event_id);
6. SIGTERM/SIGINT: stop taking files, wait for outstanding confirms, close, release the lock, exit 0.

One thread, pika's SelectConnection: the relay never blocks its connection, so heartbeats flow.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import deque
from datetime import UTC, datetime

import structlog
from pika.adapters.select_connection import SelectConnection
from pika.channel import Channel

from broker import dead_letters, names
from broker.pipeline import Outcome, PipelinedPublisher
from broker.session import Sessions
from broker.shutdown import stop_on_signals
from producer import spool
from producer.message import SpooledEvent, properties
from schemas.settings import Settings

log = structlog.get_logger("alertq.relay")


class Relay:
    def __init__(self, settings: Settings, once: bool = False) -> None:
        self.settings = settings
        self.once = once
        self.spool_dir = str(settings.spool.dir)
        self.window = settings.spool.publish_window
        self.published = 0
        self.dead_lettered = 0
        self._stop = threading.Event()
        self._sessions = Sessions(settings, "relay", self._stop, declare_topology=True, context=self._backlog_now)
        self._connection: SelectConnection | None = None
        self._publisher: PipelinedPublisher | None = None
        self._busy_paths: set[str] = set()  # published, not yet settled: not to be picked up again
        self._backlog: deque[str] = deque()
        self._exit_code = 0
        self._pump_scheduled = False

    # ---- lifecycle -------------------------------------------------------------------------------

    def run(self) -> int:
        lock = spool.RelayLock(self.spool_dir)
        stop_on_signals("relay", self._stop, self._wake_to_stop)
        announced = False
        while not lock.try_acquire():
            if self._stop.is_set():
                return 0
            if not announced:
                log.info("relay.standby", spool=self.spool_dir, reason="another relay holds relay.lock")
                announced = True
            self._stop.wait(0.05)
        log.info(
            "relay.started",
            spool=self.spool_dir,
            backlog=len(spool.pending(self.spool_dir)),
            urls=self.settings.broker.masked_urls,
        )
        try:
            self._sessions.run(self._run_connection, give_up=self._give_up)
        finally:
            lock.release()
        log.info(
            "relay.stopped",
            published=self.published,
            dead_lettered=self.dead_lettered,
            left_in_spool=len(spool.pending(self.spool_dir)),
        )
        return self._exit_code

    def _backlog_now(self) -> dict[str, int]:
        return {"backlog": len(spool.pending(self.spool_dir))}

    def _give_up(self) -> bool:
        """`--once`: a connection that failed or ended before the spool was empty ends the run, exit 1."""
        if self.once:
            self._exit_code = 1
        return self.once

    def _wake_to_stop(self) -> None:
        """On a signal: the I/O loop does not look at the stop event by itself."""
        if self._connection is not None:
            self._connection.ioloop.add_callback_threadsafe(self._begin_stop)

    def _run_connection(self) -> None:
        self._publisher = None
        self._busy_paths.clear()
        self._backlog.clear()
        # A pump scheduled on the previous connection's loop died with it.
        self._pump_scheduled = False
        self._connection = SelectConnection(
            self._sessions.next_parameters(),
            on_open_callback=self._on_connection_open,
            on_open_error_callback=self._on_connection_error,
            on_close_callback=self._on_connection_closed,
        )
        if self._stop.is_set():  # SIGTERM between the sessions' last look and this assignment
            self._connection.ioloop.add_callback_threadsafe(self._begin_stop)
        self._connection.ioloop.start()
        self._connection = None
        self._publisher = None

    # ---- connection and channel callbacks ----------------------------------------------------------

    def _on_connection_open(self, connection: SelectConnection) -> None:
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_error(self, connection: SelectConnection, error: BaseException | str) -> None:
        self._sessions.unavailable(error)
        connection.ioloop.stop()

    def _on_connection_closed(self, connection: SelectConnection, reason: BaseException) -> None:
        if not self._stop.is_set():
            self._sessions.unavailable(reason)
        if self._in_flight():
            log.info("relay.unconfirmed_left_in_spool", count=self._in_flight())
        connection.ioloop.stop()

    def _on_channel_open(self, channel: Channel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        self._publisher = PipelinedPublisher(channel)
        self._sessions.connected()
        log.info("relay.connected")
        self._schedule_pump(0)

    def _on_channel_closed(self, channel: Channel, reason: BaseException) -> None:
        self._sessions.channel_closed(self._connection, reason)

    # ---- publishing ---------------------------------------------------------------------------------

    def _schedule_pump(self, delay: float) -> None:
        if self._pump_scheduled or self._connection is None:
            return
        self._pump_scheduled = True
        self._connection.ioloop.call_later(delay, self._pump)

    def _in_flight(self) -> int:
        return self._publisher.in_flight if self._publisher is not None else 0

    def _pump(self) -> None:
        self._pump_scheduled = False
        publisher = self._publisher
        if self._stop.is_set() or publisher is None or not publisher.channel.is_open:
            return
        while publisher.in_flight < self.window:
            path = self._next_path()
            if path is None:
                break
            self._publish_file(path)
        if publisher.in_flight:
            return  # confirms will pump again
        if self.once and not self._backlog and not spool.pending(self.spool_dir):
            self._begin_stop()
            return
        self._schedule_pump(self.settings.spool.poll_interval)

    def _next_path(self) -> str | None:
        if not self._backlog:
            self._backlog.extend(
                p
                for p in (os.path.join(self.spool_dir, n) for n in spool.pending(self.spool_dir))
                if p not in self._busy_paths
            )
        return self._backlog.popleft() if self._backlog else None

    def _publish_file(self, path: str) -> None:
        try:
            event = SpooledEvent.load(path)
        except FileNotFoundError:
            return  # the direct path of an enqueue published it meanwhile
        except (OSError, ValueError) as exc:
            body = _read_raw(path)
            if body is None:
                return
            bad = SpooledEvent(path=path, body=body, routing_key="invalid.spool", event_id="")
            self._send(bad, dead_letters.INVALID, f"unreadable spool file: {exc}")
            return
        self._send(event)

    def _send(self, event: SpooledEvent, dead_reason: str | None = None, error: str = "") -> None:
        """Publish `event`, or with `dead_reason` its trip to the dead letters; settled in `_settled`."""
        assert self._publisher is not None
        if dead_reason is None:
            exchange, props = names.EVENTS_EXCHANGE, properties(event.event_id)
        else:
            headers = dead_letters.headers(dead_reason, error, datetime.now(UTC))
            exchange, props = names.DEAD_EXCHANGE, properties(event.event_id, headers)
        if event.path is not None:
            self._busy_paths.add(event.path)
        settled = functools.partial(self._settled, event, dead_reason)
        self._publisher.publish(exchange, event.routing_key, event.body, props, settled)

    def _settled(self, event: SpooledEvent, dead_reason: str | None, outcome: Outcome) -> None:
        self._settle(event, dead_reason, outcome)
        in_flight = self._in_flight()
        if self._stop.is_set() and not in_flight:
            self._close()
        elif in_flight <= self.window // 2:
            self._schedule_pump(0)

    def _settle(self, event: SpooledEvent, dead_reason: str | None, outcome: Outcome) -> None:
        path = event.path
        if outcome is Outcome.NACKED:
            log.warning("relay.nacked", event_id=event.event_id, routing_key=event.routing_key)
            self._release(path)
            return
        if outcome is Outcome.RETURNED and dead_reason is None:
            log.warning(
                "relay.unroutable",
                event_id=event.event_id,
                routing_key=event.routing_key,
                hint="is the channel enabled in the settings?",
            )
            self._send(event, dead_letters.UNROUTABLE, f"no queue bound for {event.routing_key}")
            return
        if outcome is Outcome.RETURNED:
            log.error(
                "relay.dead_letter_unroutable",
                event_id=event.event_id,
                path=path,
                hint="run `alertq topology declare`; the file stays in the spool",
            )
            return  # keep it busy so it is not retried in a loop; a restart tries again
        if dead_reason is None:
            self.published += 1
        else:
            self.dead_lettered += 1
            log.warning("relay.dead_lettered", event_id=event.event_id, reason=dead_reason)
        if path is not None:
            spool.remove(path)
            self._busy_paths.discard(path)

    def _release(self, path: str | None) -> None:
        if path is not None:
            self._busy_paths.discard(path)

    # ---- stopping -----------------------------------------------------------------------------------

    def _begin_stop(self) -> None:
        self._stop.set()
        if not self._in_flight():
            self._close()
            return
        log.info("relay.draining", unconfirmed=self._in_flight())
        if self._connection is not None:
            self._connection.ioloop.call_later(self.settings.broker.confirm_timeout, self._close)

    def _close(self) -> None:
        connection = self._connection
        if connection is None:
            return
        if connection.is_open:
            connection.close()
        elif not connection.is_closing:
            connection.ioloop.stop()


def _read_raw(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None
