"""Fallback when a channel gives up: the copies a dead letter sends to `channels.<name>.fallback`.

A notification that its channel dead-letters as `permanent`, `max-attempts` or `expired` is re-addressed
once to each fallback channel (`[channels.slack] fallback = ["email"]`), so a broken chat integration
never means nobody was told. The dead letter still goes to `alertq.dead`, for `alertq dlq replay`.

- **The copy** is the event with `channel` set to the fallback channel, a new event id
  (`<id>~fallback-<channel>`: the same for every redelivery, so an e-mail sent twice carries one
  Message-ID), the contact's channel-specific `address` dropped (it named a place in the channel that
  gave up), and `fallback {from_channel, reason, error, at, original_event_id}`, which every channel
  renders as a note why. Its age limit counts from `fallback.at` (workers/age_limit.py).
- **Routed** to `alertq.events` with `retry.<channel>`: the fallback channel's queue only. `notify.<channel>`
  would also reach the escalator's queue, which already saw the original and would take a late copy for
  a new problem.
- **Once.** The dead letter carries `alertq-fallback-sent` (the channels given). `alertq dlq replay` keeps
  that header, so a replayed dead letter that gives up again sends no second copy. A copy that carries
  `fallback` never falls back itself, so fallbacks cannot chain (slack → email → slack) or loop.
- **No loss.** The worker publishes the copies and then the dead letter, each confirmed, and only then
  acks the input (workers/consumer.py); a refused publish requeues the input. Copies first: a refused
  copy (say, the e-mail queue is full) leaves nothing behind; should the dead letter be refused after the
  copies were taken, the redelivery sends the copies again, with the same event ids.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pika

from broker import dead_letters, names
from broker.publisher import json_properties
from schemas.alert import AlertEvent, Fallback

# The dead-letter reasons after which a notification is re-addressed: the channel tried and gave up.
# Not `invalid` / `unsupported-schema`: no channel can deliver what cannot be read.
REASONS = frozenset({dead_letters.PERMANENT, dead_letters.MAX_ATTEMPTS, dead_letters.EXPIRED})


def already_sent(headers: Mapping[str, Any]) -> bool:
    """Whether a fallback went out for this message before (a replayed dead letter)."""
    return names.HEADER_FALLBACK_SENT in headers


def channels_for(event: AlertEvent, headers: Mapping[str, Any], reason: str, configured: list[str]) -> list[str]:
    """The channels that get a copy now: none for a copy itself, a message already fallen back, or a
    reason the channel did not give up for."""
    if reason not in REASONS or event.fallback is not None or already_sent(headers):
        return []
    return list(configured)


def copy_for(event: AlertEvent, channel: str, reason: str, error: str, now: datetime) -> AlertEvent:
    """`event` re-addressed to `channel`, with why its own channel gave up."""
    note = Fallback(
        from_channel=event.channel,
        reason=reason,
        error=error[: dead_letters.ERROR_MAX],
        at=now,
        original_event_id=event.event_id,
    )
    contact = event.contact.model_copy(update={"address": None}) if event.contact is not None else None
    return event.model_copy(
        update={
            "event_id": copy_id(event.event_id, channel),
            "channel": channel,
            "contact": contact,
            "fallback": note,
        }
    )


def copy_id(event_id: str, channel: str) -> str:
    return f"{event_id}~fallback-{channel}"


def properties(copy: AlertEvent) -> pika.BasicProperties:
    """A fresh message: none of the original's bookkeeping (attempts, replay count) carries over."""
    return json_properties(copy.event_id)
