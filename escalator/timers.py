"""Escalation timers through the broker's delay queues.

A timer hops through the delay queues of `broker.topology.TIMER_TIERS` (1, 2, 4 … 16384 s), each hop
the longest that still ends by the due time, so a 5-minute timer takes four hops (256 + 32 + 8 + 4 s).
Each queue holds one TTL: a short timer never waits behind a long one, and the broker, not the
escalator's memory, holds every timer (a restart of either loses none).
"""

from __future__ import annotations

from broker import names
from broker.publisher import json_properties
from broker.topology import TIMER_TIERS
from escalator.outgoing import Outgoing
from schemas.timer import TIMER_SCHEMA, EscalationTimer

# A timer this close to its due time fires now: later hops would only add lateness.
FIRE_WITHIN = 0.05
# A hop may overshoot the due time by up to this much, so the last hop is a whole second rather than
# a fraction left over (hops run a few milliseconds long, which would otherwise leave 0.99 s).
OVERSHOOT = 0.5


def next_hop(remaining: float) -> int | None:
    """Seconds of the delay queue for a timer due in `remaining` seconds; None: it is due now."""
    if remaining <= FIRE_WITHIN:
        return None
    fitting = [tier for tier in TIMER_TIERS if tier <= remaining + OVERSHOOT]
    return fitting[-1] if fitting else TIMER_TIERS[0]


def schedule(timer: EscalationTimer, remaining: float) -> Outgoing:
    """The publication that brings `timer` back to the escalator at (or just after) its due time."""
    hop = next_hop(remaining)
    properties = json_properties(
        f"timer-{timer.incident_id}-{timer.step}",
        {names.HEADER_DELAY: str(hop)} if hop is not None else None,
        type_=TIMER_SCHEMA,
    )
    if hop is None:
        return Outgoing(names.EVENTS_EXCHANGE, names.ESCALATE_TIMER_KEY, timer.to_json(), properties)
    return Outgoing(names.DELAY_EXCHANGE, names.ESCALATE_TIMER_KEY, timer.to_json(), properties)
