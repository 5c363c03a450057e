"""Is a button's problem still the one the core has? The ack path's question before it acknowledges.

A token is bound to the problem it was issued for (schemas/ack_token.py): the core's problem id when
the event carried one, and when the incident began. A host or service has many problems over its
life; a button that outlives its problem must never acknowledge the next one. Pure: the core's state
is a parameter (`Target.problem_state`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum

from cores.base import ProblemState


class Verdict(Enum):
    CURRENT = "current"  # the button's problem is the core's current one and nobody acknowledged it
    ACKNOWLEDGED = "acknowledged"  # the current one, already acknowledged in the core
    EARLIER = "earlier"  # the object recovered since; the core's problem now is a later one
    RECOVERED = "recovered"  # the object recovered since and has no problem now
    UNKNOWN = "unknown"  # the core cannot tell: go ahead, as before binding (fail open)


@dataclass(frozen=True)
class Binding:
    """What a button was issued for: the core's problem id and when the incident began (epoch s)."""

    problem_id: str | None
    since: float | None

    @classmethod
    def of(cls, problem_id: str | None, since: datetime | float | None) -> Binding:
        return cls(problem_id, since.timestamp() if isinstance(since, datetime) else since)

    @property
    def known(self) -> bool:
        return self.problem_id is not None or self.since is not None


def judge(binding: Binding, core: ProblemState | None) -> Verdict:
    """The verdict on acknowledging `binding`'s problem, given what the core says now."""
    if core is None or not binding.known:
        return Verdict.UNKNOWN
    if binding.since is not None and core.as_of is not None and int(core.as_of) <= int(binding.since):
        # The core's file may predate the button (status.dat is rewritten every few seconds, and the
        # token keeps whole seconds): it may not know the problem yet.
        return Verdict.UNKNOWN
    if not core.is_problem:
        return Verdict.RECOVERED
    if binding.problem_id is not None and core.problem_id is not None:
        later = binding.problem_id != core.problem_id
    else:
        # Seen OK after the button was issued: the problem now began after it. Whole seconds on both
        # sides (the token keeps seconds, the core too); equal counts as the same problem, since the
        # core notifies in the second of the state change or after it.
        later = binding.since is not None and core.last_ok is not None and int(core.last_ok) > int(binding.since)
    if later:
        return Verdict.EARLIER
    return Verdict.ACKNOWLEDGED if core.acknowledged else Verdict.CURRENT


# What each action needs of the button's problem before it is sent: Acknowledge an unacknowledged
# problem, Unacknowledge an acknowledged one; Snooze and Recheck now either. An earlier problem's
# button, or a recovered object, gets no command at all. UNKNOWN (the core cannot tell) goes ahead.
GOES_AHEAD: dict[str, frozenset[Verdict]] = {
    "acknowledge": frozenset({Verdict.CURRENT, Verdict.UNKNOWN}),
    "unacknowledge": frozenset({Verdict.ACKNOWLEDGED, Verdict.UNKNOWN}),
    "snooze": frozenset({Verdict.CURRENT, Verdict.ACKNOWLEDGED, Verdict.UNKNOWN}),
    "recheck": frozenset({Verdict.CURRENT, Verdict.ACKNOWLEDGED, Verdict.UNKNOWN}),
}


def goes_ahead(action: str, verdict: Verdict) -> bool:
    return verdict in GOES_AHEAD[action]
