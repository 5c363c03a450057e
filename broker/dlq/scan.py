"""One pass over the dead-letter queue that keeps every message it does not take, in order.

A quorum queue cannot skip a message, and how a requeue behaves was measured on RabbitMQ 3.10.8
(tests/test_dlq_order.py keeps the proof): a basic.nack/reject with requeue puts the message at the
*back* of the queue, behind anything that arrived meanwhile, and a consumer that nacks as it goes
sees its own requeued messages again; but when a channel closes, its unacked messages go back to the
*head* of the queue in their original order. So a pass:

1. reads the depth D (passive queue.declare) and consumes with prefetch D (capped at AMQP's 65535);
2. hands the first D deliveries that match the filter to the action (up to `limit`) and holds every
   other one unacked; an action acks a message only when it is done with it (replay: after the
   broker confirmed the copy);
3. cancels the consumer, waits until the action has settled everything, and closes the connection:
   the broker returns the held messages to the head of the queue, in order, ahead of new arrivals.

If the process dies, its connection drops, and the broker returns every unacked message in the same
way: nothing is lost; a message whose copy was confirmed but whose ack never reached the broker is
both replayed and still dead-lettered (at-least-once). The pass must end within the broker's
consumer timeout (default 30 min), or RabbitMQ closes the channel: the pass then stops with an error
and, again, loses nothing.

One more broker detail: a quorum queue's channel buffers acks it cannot hand to the queue at once,
and RabbitMQ 3.10 drops that buffer when the channel closes (measured: without a pause, up to 50 of
the last acks of a replay were lost, leaving those messages both replayed and still dead-lettered).
So the pass waits `ack_grace` seconds after its last ack before it closes.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pika
from pika.adapters.select_connection import SelectConnection
from pika.channel import Channel
from pika.exceptions import ChannelClosedByBroker
from pika.frame import Method
from pika.spec import Basic

from broker import names
from broker.connection import describe_error, parameters
from broker.dlq.filters import Filter
from broker.dlq.letter import DeadLetter
from broker.pipeline import PipelinedPublisher
from schemas.settings import BrokerSettings

MAX_PREFETCH = 65535  # basic.qos prefetch-count is a 16-bit field


class Context(Protocol):
    """What a pass offers its action."""

    publisher: PipelinedPublisher | None

    def ack(self, delivery_tag: int) -> None: ...
    def call_later(self, delay: float, callback: Callable[[], None]) -> None: ...
    def settled(self) -> None:
        """The action finished some outstanding work: the pass may be able to end."""

    def advance(self, count: int) -> None: ...


class Action(Protocol):
    needs_publisher: bool
    reports_progress: bool  # True: the action advances the progress bar for what it takes, when done

    def start(self, context: Context) -> None: ...
    def take(self, letter: DeadLetter) -> None: ...
    def finish(self, interrupted: bool) -> None:
        """No more letters will come: flush what is buffered. Interrupted (SIGINT/SIGTERM): drop what
        has not started, it stays dead-lettered; settle only what is on the wire."""

    @property
    def busy(self) -> bool:
        """Work not yet settled (unconfirmed publishes, letters waiting for their turn)."""


class Progress(Protocol):
    def begin(self, total: int) -> None: ...
    def advance(self, count: int) -> None: ...
    def end(self) -> None: ...


class NoProgress:
    def begin(self, total: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def end(self) -> None:
        pass


@dataclass
class PassResult:
    depth: int = 0
    examined: int = 0
    matched: int = 0
    taken: int = 0
    acked: int = 0
    interrupted: bool = False
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def left(self) -> int:
        return self.depth - self.acked


class Pass:
    def __init__(
        self,
        broker: BrokerSettings,
        action: Action,
        filter_: Filter,
        *,
        limit: int | None = None,
        queue: str = names.DEAD_QUEUE,
        idle_timeout: float = 5.0,
        ack_grace: float = 1.0,
        progress: Progress | None = None,
        client_name: str = "alertq dlq",
    ) -> None:
        self.broker = broker
        self.action = action
        self.filter = filter_
        self.limit = limit
        self.queue = queue
        self.idle_timeout = idle_timeout
        self.ack_grace = ack_grace
        self.progress = progress or NoProgress()
        self.client_name = client_name
        self.result = PassResult()
        self.publisher: PipelinedPublisher | None = None
        self._connection: SelectConnection | None = None
        self._consume: Channel | None = None
        self._consumer_tag: str | None = None
        self._prefetch = 0
        self._delivered = 0
        self._examining = False
        self._done_examining = False
        self._closing = False
        self._last_delivery = 0.0
        self._opened = False

    # ---- running ------------------------------------------------------------------------------------

    def run(self) -> PassResult:
        """Run the pass to its end; SIGINT/SIGTERM end it early and cleanly."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        for sig in previous:
            signal.signal(sig, self._on_signal)
        try:
            for params in parameters(self.broker, self.client_name):
                self._connection = SelectConnection(
                    params,
                    on_open_callback=self._on_open,
                    on_open_error_callback=self._on_open_error,
                    on_close_callback=self._on_closed,
                )
                self._connection.ioloop.start()
                if self._opened:
                    break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.progress.end()
        return self.result

    def _on_signal(self, _signum: int, _frame: Any) -> None:
        self.result.interrupted = True
        if self._connection is not None:
            self._connection.ioloop.add_callback_threadsafe(self._interrupt)

    def _interrupt(self) -> None:
        if self._done_examining:
            # Examined already, maybe still replaying at --rate: drop what has not been sent.
            self.action.finish(interrupted=True)
            self._close_when_settled()
        else:
            self._stop_examining()

    # ---- Context --------------------------------------------------------------------------------------

    def ack(self, delivery_tag: int) -> None:
        if self._consume is not None and self._consume.is_open:
            self._consume.basic_ack(delivery_tag)
            self.result.acked += 1

    def call_later(self, delay: float, callback: Callable[[], None]) -> None:
        assert self._connection is not None
        self._connection.ioloop.call_later(delay, callback)

    def advance(self, count: int) -> None:
        self.progress.advance(count)

    def settled(self) -> None:
        if self._done_examining:
            self._close_when_settled()

    # ---- connection and channels ----------------------------------------------------------------------

    def _on_open(self, connection: SelectConnection) -> None:
        self._opened = True
        self.result.error = None
        connection.channel(on_open_callback=self._on_consume_channel)

    def _on_open_error(self, connection: SelectConnection, error: BaseException | str) -> None:
        self.result.error = f"broker unreachable: {error if isinstance(error, str) else describe_error(error)}"
        connection.ioloop.stop()

    def _on_closed(self, connection: SelectConnection, reason: BaseException) -> None:
        if not self._closing and self.result.error is None:
            self.result.error = f"connection lost: {describe_error(reason)}"
        connection.ioloop.stop()

    def _on_channel_closed(self, _channel: Channel, reason: BaseException) -> None:
        if not self._closing and self.result.error is None:
            if isinstance(reason, ChannelClosedByBroker) and reason.reply_code == 404 and not self._examining:
                self.result.error = f"queue {self.queue} does not exist (run `alertq topology declare`)"
            else:
                self.result.error = f"channel closed by the broker: {describe_error(reason)}"
        if self._connection is not None and self._connection.is_open:
            self._closing = True
            self._connection.close()

    def _on_consume_channel(self, channel: Channel) -> None:
        self._consume = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.queue_declare(self.queue, passive=True, callback=self._on_depth)

    def _on_depth(self, frame: Method) -> None:
        depth = int(frame.method.message_count)
        self.result.depth = depth
        if depth == 0:
            self._done_examining = True
            self._close_when_settled()
            return
        self._prefetch = min(depth, MAX_PREFETCH)
        if depth > MAX_PREFETCH:
            self.result.notes.append(
                f"queue holds {depth} messages; one pass holds at most {MAX_PREFETCH} it does not take"
            )
        assert self._consume is not None
        self._consume.basic_qos(prefetch_count=self._prefetch, callback=self._on_qos)

    def _on_qos(self, _frame: Method) -> None:
        if self.action.needs_publisher:
            assert self._connection is not None
            self._connection.channel(on_open_callback=self._on_publish_channel)
        else:
            self._start_consuming()

    def _on_publish_channel(self, channel: Channel) -> None:
        channel.add_on_close_callback(self._on_channel_closed)
        self.publisher = PipelinedPublisher(channel)
        self._start_consuming()

    def _start_consuming(self) -> None:
        assert self._consume is not None
        self.action.start(self)
        self.progress.begin(self.result.depth)
        self._examining = True
        self._last_delivery = time.monotonic()
        self._consumer_tag = self._consume.basic_consume(self.queue, self._on_message, auto_ack=False)
        self.call_later(0.5, self._watch)

    # ---- the pass -----------------------------------------------------------------------------------

    def _on_message(self, _channel: Channel, method: Basic.Deliver, props: pika.BasicProperties, body: bytes) -> None:
        position = self._delivered
        self._delivered += 1
        if self._done_examining or position >= self.result.depth:
            return  # arrived after the pass began (or after it ended): held, returned at the close
        self._last_delivery = time.monotonic()
        self.result.examined += 1
        letter = DeadLetter(method.routing_key, props, body, method.delivery_tag, position)
        taken = False
        if self.filter.matches(letter):
            self.result.matched += 1
            if self.limit is None or self.result.taken < self.limit:
                self.result.taken += 1
                taken = True
                self.action.take(letter)
        if not (taken and self.action.reports_progress):
            self.progress.advance(1)
        limit_reached = self.limit is not None and self.result.taken >= self.limit
        if self.result.examined >= self.result.depth or limit_reached:
            self._stop_examining()

    def _watch(self) -> None:
        """Ends a pass that cannot progress: fewer messages than counted (another consumer took some),
        or prefetch full of held messages."""
        if self._done_examining:
            return
        unacked = self._delivered - self.result.acked
        stalled = time.monotonic() - self._last_delivery > self.idle_timeout
        if (unacked >= self._prefetch or stalled) and not self.action.busy:
            if self.result.examined < self.result.depth:
                self.result.notes.append(
                    f"examined {self.result.examined} of {self.result.depth}: the rest did not arrive "
                    f"(another consumer, or more held messages than one pass can hold)"
                )
            self._stop_examining()
            return
        self.call_later(0.5, self._watch)

    def _stop_examining(self) -> None:
        if self._done_examining:
            return
        self._done_examining = True
        if self._consume is not None and self._consume.is_open and self._consumer_tag is not None:
            # basic.cancel keeps our unacked messages ours; they go back only when the channel closes.
            self._consume.basic_cancel(self._consumer_tag)
        if self._examining:
            self.action.finish(self.result.interrupted)
        self._close_when_settled()

    def _close_when_settled(self) -> None:
        if self._closing or self.action.busy:
            return
        self._closing = True
        if self.result.acked and self._connection is not None and self._connection.is_open:
            self.call_later(self.ack_grace, self._close)
        else:
            self._close()

    def _close(self) -> None:
        if self._connection is not None and self._connection.is_open:
            # Closing returns every held message to the head of the queue in its original order.
            self._connection.close()
        elif self._connection is not None:
            self._connection.ioloop.stop()
