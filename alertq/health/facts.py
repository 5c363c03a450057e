"""Gather what `alertq status` reports. Broker facts come from passive queue.declare (depth and
consumers), so no management plugin is needed; dead letters by reason from one read-only pass."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pika.adapters.blocking_connection import BlockingConnection
from pika.exceptions import ChannelClosedByBroker

from alertq.health.incidents import IncidentsUnavailable, OpenIncident, open_incidents
from broker import names
from broker.connection import connect, describe_error
from broker.dlq.actions import Collect
from broker.dlq.filters import Filter
from broker.dlq.scan import Pass
from broker.topology import escalation_configured
from producer import spool
from schemas.settings import ChannelsSettings, Settings

REASON_SAMPLE = 10_000  # dead letters read to break them down by reason; the depth counts them all


@dataclass
class QueueFacts:
    name: str
    channel: str | None  # the channel of an enabled channel's notify queue
    messages: int | None  # None: the queue does not exist
    consumers: int | None


@dataclass
class Facts:
    broker_error: str | None = None
    queues: list[QueueFacts] = field(default_factory=list)
    dead_letters: int = 0
    dead_by_reason: Counter[str] = field(default_factory=Counter)
    dead_by_reason_sampled: int = 0
    spool_backlog: int = 0
    spool_oldest_age: float | None = None
    escalation: bool = False  # a routing_file configures escalation
    incidents: list[OpenIncident] | None = None  # None: escalation not configured
    incidents_error: str | None = None

    @property
    def open_incidents(self) -> int | None:
        return None if self.incidents is None else len(self.incidents)


def gather(settings: Settings, reasons: bool = True) -> Facts:
    facts = Facts(escalation=escalation_configured(settings))
    facts.spool_backlog, facts.spool_oldest_age = spool_backlog(str(settings.spool.dir))
    try:
        facts.incidents = open_incidents(settings)
    except IncidentsUnavailable as exc:
        facts.incidents_error = str(exc)
    enabled = settings.channels.enabled_names()
    # (queue, channel, expected): an expected queue that is missing is reported as missing; the others
    # only when they exist (left from before, or declared by a process with other settings), since
    # messages nobody consumes may sit there too. Delay queues are not watched: they hold messages
    # with no consumer by design (the broker moves them on when their TTL ends).
    watched: list[tuple[str, str | None, bool]] = [(names.notify_queue(c), c, True) for c in enabled]
    watched += [(names.notify_queue(c), None, False) for c in ChannelsSettings.model_fields if c not in enabled]
    watched += [(names.ESCALATOR_QUEUE, None, facts.escalation), (names.ACKS_QUEUE, None, True)]
    watched += [(names.DEAD_QUEUE, None, True)]
    try:
        connection = connect(settings.broker, "alertq status")
    except Exception as exc:
        facts.broker_error = describe_error(exc)
        return facts
    try:
        for queue, channel, expected in watched:
            found = _queue_facts(connection, queue, channel)
            if expected or found.messages is not None:
                facts.queues.append(found)
    except Exception as exc:
        facts.broker_error = describe_error(exc)
        return facts
    finally:
        if connection.is_open:
            connection.close()
    dead = next(q for q in facts.queues if q.name == names.DEAD_QUEUE)
    facts.dead_letters = dead.messages or 0
    if reasons and facts.dead_letters:
        collect = Collect()
        result = Pass(settings.broker, collect, Filter(), limit=REASON_SAMPLE, client_name="alertq status").run()
        facts.dead_by_reason = collect.by_reason
        facts.dead_by_reason_sampled = result.examined
    return facts


def _queue_facts(connection: BlockingConnection, queue: str, channel: str | None) -> QueueFacts:
    amqp = connection.channel()
    try:
        ok = amqp.queue_declare(queue, passive=True)
    except ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return QueueFacts(queue, channel, None, None)
        raise
    with contextlib.suppress(Exception):  # closing a spent channel; the facts are in
        amqp.close()
    return QueueFacts(queue, channel, int(ok.method.message_count), int(ok.method.consumer_count))


def spool_backlog(spool_dir: str) -> tuple[int, float | None]:
    """Files waiting in the spool and the age of the oldest (names start with their creation time in ns)."""
    pending = spool.pending(spool_dir)
    if not pending:
        return 0, None
    try:
        created_ns = int(pending[0].split("-", 1)[0])
        age = time.time() - created_ns / 1e9
    except ValueError:
        age = time.time() - (Path(spool_dir) / pending[0]).stat().st_mtime
    return len(pending), max(age, 0.0)
