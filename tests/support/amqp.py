"""Reading what landed in the broker, for assertions."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import pika


@dataclass
class Received:
    routing_key: str
    exchange: str
    properties: pika.BasicProperties
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


def connect(url: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(pika.URLParameters(url))


def depth(url: str, queue: str) -> int:
    connection = connect(url)
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def queue_exists(url: str, queue: str) -> bool:
    connection = connect(url)
    try:
        connection.channel().queue_declare(queue, passive=True)
        return True
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return False
        raise
    finally:
        if connection.is_open:
            connection.close()


def wait_depth(url: str, queue: str, expected: int, timeout: float = 30.0) -> int:
    """Wait until `queue` holds at least `expected` messages; returns the depth seen last."""
    deadline = time.monotonic() + timeout
    seen = depth(url, queue)
    while seen < expected and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = depth(url, queue)
    return seen


def take(url: str, queue: str, count: int | None = None, timeout: float = 30.0, settle: float = 0.3) -> list[Received]:
    """Take messages out of `queue` (acking them): `count` of them, or, with None, until it stays empty
    for `settle` seconds. Waits up to `timeout` for `count` to arrive."""
    connection = connect(url)
    channel = connection.channel()
    result: list[Received] = []
    deadline = time.monotonic() + timeout
    empty_since: float | None = None
    try:
        while time.monotonic() < deadline:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                if count is None:
                    empty_since = empty_since or time.monotonic()
                    if time.monotonic() - empty_since >= settle:
                        break
                elif len(result) >= count:
                    break
                time.sleep(0.02)
                continue
            empty_since = None
            result.append(Received(method.routing_key, method.exchange, props, body))
            if count is not None and len(result) >= count:
                break
    finally:
        connection.close()
    return result
