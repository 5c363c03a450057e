"""The notifications one escalation step sends: the PROBLEM retold, once per contact and channel.

Each is an ordinary `alertq.alert/1` event for `notify.<channel>`, so the channel workers deliver,
retry and dead-letter it like any other; `escalation {policy, step, since}` makes every channel say
that it is escalated. Event ids are derived from (incident, step, contact, channel), so a step sent
again after a crash carries the same ids as the first time.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from escalator.schedule import step_of
from schemas.alert import AlertEvent, Contact, Escalation
from schemas.routing import RoutingConfig
from state.store import Incident

_IDS = uuid.UUID("5d3c7a52-6f4e-4c1b-9a57-2f1e8f0b9e11")


def step_notices(
    routing: RoutingConfig, incident: Incident, problem: AlertEvent, step: int, now: datetime
) -> list[AlertEvent]:
    """One event per (contact, channel) of the step who wants this problem now (options and period)."""
    policy = routing.policies[incident.policy]
    escalation = Escalation(policy=incident.policy, step=step, since=incident.opened_at)
    notices = []
    for name, channel, address in routing.recipients(step_of(policy, step), problem, now):
        contact = routing.contacts[name]
        notices.append(
            problem.model_copy(
                update={
                    "event_id": str(uuid.uuid5(_IDS, f"{incident.id}/{step}/{name}/{channel}")),
                    "created_at": now,
                    "channel": channel,
                    "contact": Contact(
                        name=name,
                        email=address if channel == "email" else contact.email,
                        pager=contact.pager,
                        address=address,
                    ),
                    "escalation": escalation,
                }
            )
        )
    return notices
