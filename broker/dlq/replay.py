"""Where a replayed dead letter goes, and what it carries.

Route: exchange `alertq.events` with routing key `retry.<channel>`, not `notify.<channel>`. Both reach
the channel's queue `alertq.notify.<channel>`, but `notify.<channel>` also reaches the escalator,
which already saw this event when it was first published: a replay is another delivery attempt of
the same notification, not a new event, so it must not open or re-arm an incident. `--to-channel`
sends it to another channel's queue, the body unchanged (its `channel` field still names the
original). Dead letters from the ack path (an `alertq.ack/…` body, or first dead in `alertq.acks`)
go back to exchange `alertq.acks` with their routing key.

Headers: the dead-letter headers (alertq's and the broker's `x-death` family) are removed, the
retry bookkeeping starts over (`alertq-attempt` and `alertq-first-attempt-at` removed, as on a
first delivery, so the worker grants the replay its full retries and age), `alertq-replayed-at`
is set and `alertq-replay-count` counts replays. Body and every other property stay byte-for-byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pika

from broker import names
from broker.dlq.letter import ALERTQ_DEAD_HEADERS, BROKER_DEAD_HEADERS, DeadLetter
from broker.publisher import with_headers


@dataclass(frozen=True)
class Target:
    exchange: str
    routing_key: str

    def __str__(self) -> str:
        return f"{self.exchange} {self.routing_key}"


class NotReplayable(Exception):
    """The dead letter names no channel to go back to; `--to-channel` decides for it."""


def target(letter: DeadLetter, to_channel: str | None = None) -> Target:
    if to_channel:
        return Target(names.EVENTS_EXCHANGE, names.retry_key(to_channel))
    schema = (letter.event or {}).get("schema")
    if letter.source_queue == names.ACKS_QUEUE or (isinstance(schema, str) and schema.startswith("alertq.ack/")):
        return Target(names.ACKS_EXCHANGE, letter.routing_key)
    channel = letter.channel
    if channel is None:
        raise NotReplayable(f"routing key {letter.routing_key!r} names no channel; use --to-channel")
    return Target(names.EVENTS_EXCHANGE, names.retry_key(channel))


def replay_properties(letter: DeadLetter, now: datetime | None = None) -> pika.BasicProperties:
    dropped = ALERTQ_DEAD_HEADERS | BROKER_DEAD_HEADERS | {names.HEADER_ATTEMPT, names.HEADER_FIRST_ATTEMPT_AT}
    headers = {k: v for k, v in letter.headers.items() if k not in dropped}
    headers[names.HEADER_REPLAYED_AT] = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    headers[names.HEADER_REPLAY_COUNT] = letter.replay_count + 1
    return with_headers(letter.properties, headers)
