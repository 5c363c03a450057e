"""`alertq dlq import`: publish an exported file back into the dead letters, as it was.

Each record goes to exchange `alertq.dead` with its original routing key, properties and headers,
through a window of confirmed publishes; the command reports how many the broker confirmed. The
whole file is read and checked before the first publish, so a bad line changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pika.adapters.select_connection import SelectConnection
from pika.channel import Channel

from broker import names
from broker.connection import describe_error, parameters
from broker.dlq.archive import Archived
from broker.pipeline import Outcome, PipelinedPublisher
from schemas.settings import BrokerSettings


@dataclass
class ImportResult:
    confirmed: int = 0
    refused: int = 0
    error: str | None = None


class Importer:
    def __init__(self, broker: BrokerSettings, records: Iterable[Archived], window: int = 1000) -> None:
        self.broker = broker
        self.records = iter(records)
        self.window = window
        self.result = ImportResult()
        self._publisher: PipelinedPublisher | None = None
        self._connection: SelectConnection | None = None
        self._exhausted = False
        self._opened = False

    def run(self) -> ImportResult:
        for params in parameters(self.broker, "alertq dlq import"):
            self._connection = SelectConnection(
                params,
                on_open_callback=lambda c: c.channel(on_open_callback=self._on_channel),
                on_open_error_callback=self._on_open_error,
                on_close_callback=self._on_closed,
            )
            self._connection.ioloop.start()
            if self._opened:
                break
        return self.result

    def _on_open_error(self, connection: SelectConnection, error: BaseException | str) -> None:
        self.result.error = f"broker unreachable: {error if isinstance(error, str) else describe_error(error)}"
        connection.ioloop.stop()

    def _on_closed(self, connection: SelectConnection, reason: BaseException) -> None:
        if not self._done() and self.result.error is None:
            self.result.error = f"connection lost: {describe_error(reason)}"
        connection.ioloop.stop()

    def _on_channel(self, channel: Channel) -> None:
        self._opened = True
        self.result.error = None
        channel.add_on_close_callback(self._on_channel_closed)
        self._publisher = PipelinedPublisher(channel)
        self._pump()

    def _on_channel_closed(self, _channel: Channel, reason: BaseException) -> None:
        if self.result.error is None and not self._done():
            self.result.error = f"channel closed by the broker: {describe_error(reason)}"
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _done(self) -> bool:
        return self._exhausted and (self._publisher is None or self._publisher.in_flight == 0)

    def _pump(self) -> None:
        publisher = self._publisher
        assert publisher is not None
        while not self._exhausted and publisher.in_flight < self.window:
            record = next(self.records, None)
            if record is None:
                self._exhausted = True
                break
            publisher.publish(names.DEAD_EXCHANGE, record.routing_key, record.body, record.properties, self._settle)
        if self._done() and self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _settle(self, outcome: Outcome) -> None:
        if outcome is Outcome.CONFIRMED:
            self.result.confirmed += 1
        else:
            self.result.refused += 1
        if (self._publisher is not None and self._publisher.in_flight <= self.window // 2) or self._done():
            self._pump()
