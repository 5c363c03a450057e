"""Confirmed publishing with a window: many messages on the wire, each settled by its own confirm.

One synchronous confirm per message caps a replay at the broker's fsync rate; a window of unconfirmed
messages lets RabbitMQ confirm them in batches (`multiple=True`). Every message is published
mandatory, so a routing key that reaches no queue comes back as basic.return, which RabbitMQ sends
before the confirm of the same message: the publisher remembers it and settles that message as
`returned`, never as delivered.
"""

from __future__ import annotations

import hashlib
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import pika
from pika.channel import Channel
from pika.frame import Method
from pika.spec import Basic


class Outcome(Enum):
    CONFIRMED = "confirmed"
    RETURNED = "returned"  # no queue bound for the routing key: nothing was delivered
    NACKED = "nacked"  # the broker refused it (e.g. a queue's reject-publish overflow)


Settled = Callable[[Outcome], None]


@dataclass
class _InFlight:
    key: tuple[str, str, str, str]
    on_settled: Settled
    returned: bool = False


class PipelinedPublisher:
    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._inflight: dict[int, _InFlight] = {}
        self._by_key: dict[tuple[str, str, str, str], deque[int]] = {}
        self._next_seq = 1
        channel.add_on_return_callback(self._on_return)
        channel.confirm_delivery(self._on_confirm)

    @property
    def in_flight(self) -> int:
        return len(self._inflight)

    @property
    def channel(self) -> Channel:
        return self._channel

    def publish(
        self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties, on_settled: Settled
    ) -> None:
        seq = self._next_seq
        self._next_seq += 1
        key = _identity(exchange, routing_key, body, properties)
        self._inflight[seq] = _InFlight(key, on_settled)
        self._by_key.setdefault(key, deque()).append(seq)
        self._channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)

    def _on_return(self, _channel: Channel, method: Basic.Return, props: pika.BasicProperties, body: bytes) -> None:
        key = _identity(method.exchange, method.routing_key, body, props)
        for seq in self._by_key.get(key, ()):
            item = self._inflight.get(seq)
            if item is not None and not item.returned:
                item.returned = True
                return

    def _on_confirm(self, frame: Method) -> None:
        method = frame.method
        acked = isinstance(method, Basic.Ack)
        upto = method.delivery_tag
        # `_inflight` holds its sequence numbers in ascending order (dicts keep insertion order): a
        # multiple confirm settles a prefix of it.
        seqs = list(itertools.takewhile(lambda s: s <= upto, self._inflight)) if method.multiple else [upto]
        for seq in seqs:
            item = self._inflight.pop(seq, None)
            if item is None:
                continue
            waiting = self._by_key.get(item.key)
            if waiting is not None:
                waiting.remove(seq)
                if not waiting:
                    del self._by_key[item.key]
            if not acked:
                item.on_settled(Outcome.NACKED)
            elif item.returned:
                item.on_settled(Outcome.RETURNED)
            else:
                item.on_settled(Outcome.CONFIRMED)


def _identity(exchange: str, routing_key: str, body: bytes, props: pika.BasicProperties) -> tuple[str, str, str, str]:
    # What a basic.return carries back, enough to tell which in-flight message it is.
    return (exchange, routing_key, props.message_id or "", hashlib.blake2b(body, digest_size=16).hexdigest())
