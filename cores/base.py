"""The target contract, the channel contract's twin: `apply(ack)` hands the message's action to the
core (`acknowledge`, `schedule_downtime`, `reschedule_check`, `remove_acknowledgement`) and returns
once the core has the command, or raises `Retryable` (try again later) / `Permanent` (never works:
dead-letter now). Having the command is not having applied it: the forwarder reads the result back
(`problem_state`, ack_listener/proof.py) before the chat hears that it worked.

`problem_state(host_id, service_id)` is what the core says about the object now (`ProblemState`), or
None when it cannot tell (core unreachable, object unknown, never checked); it never raises. Two
questions are answered from it: the escalator's "still an unacknowledged problem?"
(`still_unacknowledged_problem`: True, False, or None to fail open and escalate), and the ack path's
"is this button's problem still the current one?" (`ack_listener/problem.py`).

A target's errors carry two texts: `reason` (for the log and the dead letter's header: paths, hosts,
status lines) and `said` (for the chat: the reason in words, no paths, no hostnames); `in_words`
reads the second from any error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from delivery.outcomes import DeliveryError, Permanent, Retryable, Unreachable
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings
from schemas.channels import HttpSettings

__all__ = [
    "CorePermanent",
    "CoreRetryable",
    "Permanent",
    "ProblemState",
    "Retryable",
    "Target",
    "http_settings",
    "in_words",
]


@dataclass(frozen=True)
class ProblemState:
    """One host's or service's state as the core reports it."""

    state: int  # 0: OK / UP; anything else a problem
    acknowledged: bool
    # The core's id of the current problem (Nagios's current_problem_id), None when it has none or
    # keeps none (Icinga 2, openITCOCKPIT's API).
    problem_id: str | None = None
    # When the core last saw the object OK/UP (epoch seconds); None when it does not say. A later
    # problem is one that began after that moment, so this, not the last hard state change (which a
    # CRITICAL → WARNING moves too), tells an earlier problem from the current one.
    last_ok: float | None = None
    # When this view of the core was current (status.dat's mtime); None for a live API answer.
    as_of: float | None = None
    # In a scheduled downtime now (downtime depth > 0); None when the core does not say.
    in_downtime: bool | None = None
    # When the core last ran / will next run the object's check (epoch seconds); None when not said.
    last_check: float | None = None
    next_check: float | None = None

    @property
    def is_problem(self) -> bool:
        return self.state != 0


class Target(ABC):
    name: str

    def apply(self, ack: AckMessage) -> None:
        """Send the message's action to the core."""
        if ack.action == "acknowledge":
            self.acknowledge(ack)
        elif ack.action == "snooze":
            self.schedule_downtime(ack)
        elif ack.action == "recheck":
            self.reschedule_check(ack)
        else:
            self.remove_acknowledgement(ack)

    @abstractmethod
    def acknowledge(self, ack: AckMessage) -> None: ...

    @abstractmethod
    def schedule_downtime(self, ack: AckMessage) -> None:
        """A fixed downtime from `ack.downtime_start` to `ack.downtime_end`, by `ack.author`."""

    @abstractmethod
    def reschedule_check(self, ack: AckMessage) -> None:
        """Check the object now (forced: even outside its check period)."""

    @abstractmethod
    def remove_acknowledgement(self, ack: AckMessage) -> None: ...

    def object_known(self, host_id: str, service_id: str | None) -> bool | None:
        """Whether the core has this object at all: False only when it says so; None when it cannot tell."""
        return None

    @abstractmethod
    def problem_state(self, host_id: str, service_id: str | None) -> ProblemState | None: ...

    def still_unacknowledged_problem(self, host_id: str, service_id: str | None) -> bool | None:
        """True: a problem nobody has acknowledged; False: recovered or acknowledged; None: cannot tell."""
        state = self.problem_state(host_id, service_id)
        if state is None:
            return None
        return state.is_problem and not state.acknowledged

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the default has none."""


class CoreRetryable(Retryable):
    """Retryable, with what the chat may be told (`said`) apart from the detail (`reason`)."""

    def __init__(self, reason: str, said: str, after: float | None = None) -> None:
        super().__init__(reason, after)
        self.said = said


class CorePermanent(Permanent):
    """Permanent, with what the chat may be told (`said`) apart from the detail (`reason`)."""

    def __init__(self, reason: str, said: str) -> None:
        super().__init__(reason)
        self.said = said


def in_words(error: BaseException) -> str:
    """Why an acknowledgement failed, for the chat: never a path, a host name or a body excerpt."""
    said = getattr(error, "said", None)
    if isinstance(said, str):
        return said
    if isinstance(error, Unreachable):
        return "the monitoring core's API could not be reached"
    if isinstance(error, DeliveryError):
        reason = error.reason
        if reason.startswith("timed out"):
            return "the monitoring core's API did not answer in time"
        if reason.startswith("TLS error"):
            return "the TLS connection to the monitoring core's API failed"
        if reason.startswith("HTTP ") and reason[5:8].isdigit():
            return f"the monitoring core's API answered HTTP {reason[5:8]}"
        if reason.startswith("connection failed"):
            return "the connection to the monitoring core's API failed"
        return "the monitoring core did not take it"
    return "an unexpected error in the ack forwarder"


def http_settings(settings: AckTargetSettings) -> HttpSettings:
    return HttpSettings(
        connect_timeout=settings.timeout,
        read_timeout=settings.timeout,
        verify_tls=settings.verify_tls,
        ca_bundle=settings.ca_bundle,
    )
