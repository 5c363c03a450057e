"""One broker session after another: the reconnect loop of every long-running process.

Modelled on kombu's `ConsumerMixin`: a process says what one session on one connection is, and
`Sessions.run` runs it again and again until `stop` is set (SIGTERM), waiting between two sessions
with a growing backoff (0.5 s, 1 s, 2 s … `broker.reconnect_max_delay`) that starts short again once
a session got going (`connected`). A session ends with its connection: by raising a broker error (a
blocking connection: worker consumer, ack forwarder), or by returning once its I/O loop stopped (an
asynchronous connection, whose callbacks logged why: relay, escalator).

With `declare_topology`, each session is preceded by `alertq topology declare`'s work on a connection
of its own until it succeeded once (and again after a channel error, `channel_closed`): for processes
whose own connection is asynchronous and cannot declare synchronously.

Log lines, named after the process: `<name>.broker_unavailable` (error) when a session or the
declaration failed with an error, `<name>.reconnecting` (in_seconds) before each wait.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pika
import structlog
from pika.adapters.select_connection import SelectConnection
from pika.adapters.utils.connection_workflow import AMQPConnectorException
from pika.exceptions import AMQPError

from broker import topology
from broker.connection import backoff_delays, describe_error, parameters
from schemas.settings import Settings

# What a lost or refused connection raises: pika's errors, and the socket's own.
BROKER_ERRORS = (AMQPError, AMQPConnectorException, OSError)


class Sessions:
    def __init__(
        self,
        settings: Settings,
        name: str,
        stop: threading.Event,
        *,
        client_name: str | None = None,
        declare_topology: bool = False,
        topology_options: dict[str, Any] | None = None,
        context: Callable[[], dict[str, Any]] = dict,
    ) -> None:
        """`name`: the process in log lines (`worker`, `relay`, …); `client_name`: its connections' name
        in the broker (`alertq <name>`); `topology_options`: for `topology.plan` (the escalator declares
        its own queue whatever the settings say); `context`: more fields for the `broker_unavailable` line."""
        self.settings = settings
        self.name = name
        self.client_name = client_name or f"alertq {name.replace('_', '-')}"
        self.stop = stop
        self.context = context
        self._log = structlog.get_logger(f"alertq.{name}")
        self._parameters: Iterator[pika.URLParameters] = itertools.cycle(parameters(settings.broker, self.client_name))
        self._backoff = backoff_delays(settings.broker.reconnect_max_delay)
        self._topology_ready = not declare_topology
        self._topology_options = topology_options or {}

    def next_parameters(self) -> pika.URLParameters:
        """The next broker URL's connection parameters, round-robin over the cluster's URLs."""
        return next(self._parameters)

    def connected(self) -> None:
        """The session got going: the next wait starts short again."""
        self._backoff = backoff_delays(self.settings.broker.reconnect_max_delay)

    def unavailable(self, error: BaseException | str) -> None:
        """Log that the broker could not be reached or the connection was lost (for an asynchronous
        session's callbacks; a blocking session's error is logged by `run`)."""
        reason = error if isinstance(error, str) else describe_error(error)
        self._log.warning(f"{self.name}.broker_unavailable", error=reason, **self.context())

    def channel_closed(self, connection: SelectConnection | None, reason: BaseException) -> None:
        """An asynchronous session's channel closed. Unless stopping, that is a channel error (an exchange
        or queue deleted under us): end the connection, and declare the topology before the next session."""
        if not self.stop.is_set():
            self._log.warning(f"{self.name}.channel_closed", error=describe_error(reason))
            self._topology_ready = False
        if connection is not None and connection.is_open:
            connection.close()

    def run(self, session: Callable[[], None], give_up: Callable[[], bool] = lambda: False) -> None:
        """Run `session` until `stop` is set, or until `give_up()` says so after a session that ended."""
        while not self.stop.is_set():
            error: BaseException | None = None
            try:
                if not self._topology_ready:
                    topology.declare_with(self.settings, f"{self.client_name} (topology)", **self._topology_options)
                    self._topology_ready = True
                if self.stop.is_set():
                    return
                session()
            except BROKER_ERRORS as exc:
                error = exc
            if self.stop.is_set():
                return
            if error is not None:
                self.unavailable(error)
            if give_up():
                return
            delay = next(self._backoff)
            self._log.info(f"{self.name}.reconnecting", in_seconds=delay)
            self.stop.wait(delay)
