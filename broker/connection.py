"""Connections to RabbitMQ from settings: every URL of a cluster, heartbeats, timeouts, reconnect backoff."""

from __future__ import annotations

from collections.abc import Iterator

import pika
import structlog
from pika.adapters.blocking_connection import BlockingConnection

from schemas.settings import BrokerSettings, mask_url

log = structlog.get_logger(__name__)


def parameters(settings: BrokerSettings, client_name: str) -> list[pika.URLParameters]:
    """One parameter set per broker URL, in the order given (pika tries them in turn)."""
    result = []
    for url in settings.urls:
        params = pika.URLParameters(url.get_secret_value())
        params.heartbeat = settings.heartbeat
        params.socket_timeout = settings.connect_timeout
        params.stack_timeout = settings.connect_timeout * 2
        params.blocked_connection_timeout = settings.blocked_connection_timeout
        params.connection_attempts = 1
        params.client_properties = {"connection_name": client_name, "product": "alertq"}
        result.append(params)
    return result


def connect(settings: BrokerSettings, client_name: str) -> BlockingConnection:
    """A blocking connection to the first broker URL that answers. Raises pika's AMQPConnectionError."""
    connection = BlockingConnection(parameters(settings, client_name))
    log.debug("broker.connected", client=client_name, urls=settings.masked_urls)
    return connection


def describe_error(exc: BaseException) -> str:
    """An error for logs and one-line messages. pika's texts carry host and port, never credentials;
    the masking is a belt for anything that echoes a URL."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    return mask_url(text) if "://" in text else text


def backoff_delays(max_delay: float, first: float = 0.5) -> Iterator[float]:
    """0.5, 1, 2, 4 … capped: how long to wait before each reconnect attempt."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, max_delay)
