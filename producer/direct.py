"""The enqueue command's direct path: publish spooled events with confirms when no relay runs.

Imported only when needed, so the relay path never pays for pika. Plain BlockingConnection, no topology
declaration: a missing exchange or queue is an error the relay or `alertq topology declare` fixes, and
the event stays safely in the spool meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pika
from pika.exceptions import UnroutableError

from broker import dead_letters, names
from producer import spool
from producer.message import SpooledEvent, properties


def publish(urls: tuple[str, ...], timeout: float, events: list[SpooledEvent]) -> list[SpooledEvent]:
    """Publish each spool file with mandatory + confirm and delete it once confirmed.

    An event for a channel nobody consumes comes back unroutable: it goes to the dead letters with
    reason `unroutable` rather than waiting in the spool forever; those are returned. Any broker
    error propagates; the files not yet confirmed stay in the spool.
    """
    dead: list[SpooledEvent] = []
    params = []
    for url in urls:
        p = pika.URLParameters(url)
        p.socket_timeout = timeout
        p.stack_timeout = timeout
        p.blocked_connection_timeout = timeout
        p.connection_attempts = 1
        params.append(p)
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for event in events:
            try:
                channel.basic_publish(
                    names.EVENTS_EXCHANGE,
                    event.routing_key,
                    event.body,
                    properties(event.event_id),
                    mandatory=True,
                )
            except UnroutableError:
                headers = dead_letters.headers(
                    dead_letters.UNROUTABLE, f"no queue is bound for {event.routing_key}", datetime.now(UTC)
                )
                channel.basic_publish(
                    names.DEAD_EXCHANGE,
                    event.routing_key,
                    event.body,
                    properties(event.event_id, headers),
                    mandatory=True,
                )
                dead.append(event)
            if event.path is not None:
                spool.remove(event.path)
    finally:
        if connection.is_open:
            connection.close()
    return dead
