"""Confirmed publishing on a blocking channel: a publish returns only once the broker has the message.

mandatory + publisher confirms: an unroutable message (basic.return) and a nack are errors, raised,
never ignored. For pipelined publishing of many messages see `broker.pipeline`.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import NackError, UnroutableError


class PublishError(Exception):
    """The broker did not take the message."""


class Unroutable(PublishError):
    pass


class Nacked(PublishError):
    pass


def json_properties(
    message_id: str | None, headers: dict[str, Any] | None = None, type_: str | None = None
) -> pika.BasicProperties:
    return pika.BasicProperties(
        content_type="application/json",
        delivery_mode=pika.DeliveryMode.Persistent,
        message_id=message_id,
        timestamp=int(time.time()),
        type=type_,
        headers=headers,
    )


def with_headers(original: pika.BasicProperties, headers: dict[str, Any]) -> pika.BasicProperties:
    """A copy of `original` (content type, message id, timestamp, …) carrying `headers` instead of its own:
    how a message is passed on (retried, parked, dead-lettered, replayed) without losing what it was."""
    properties = copy.copy(original)
    properties.headers = headers
    return properties


class ConfirmedPublisher:
    def __init__(self, channel: BlockingChannel) -> None:
        self._channel = channel
        channel.confirm_delivery()

    @property
    def channel(self) -> BlockingChannel:
        return self._channel

    def publish(self, exchange: str, routing_key: str, body: bytes, properties: pika.BasicProperties) -> None:
        try:
            self._channel.basic_publish(exchange, routing_key, body, properties, mandatory=True)
        except UnroutableError as exc:
            raise Unroutable(f"no queue bound for {routing_key!r} on {exchange!r}") from exc
        except NackError as exc:
            raise Nacked(f"broker refused message for {routing_key!r} on {exchange!r}") from exc
