"""Did the core apply the action? The forwarder's question after sending it, before it tells the chat.

openITCOCKPIT answers 200 before its core has run a command, and a Nagios command file takes any
line, even one naming a host the core does not know: having sent is not having applied. So the
forwarder reads the object's state back (`Target.problem_state`, the view the escalator and the
problem check already use) until it shows the action, or `ack_target.confirm_within` seconds have
passed. Pure: the state is a parameter.

What counts as applied:
- Acknowledge: the problem is acknowledged. Unacknowledge: it no longer is.
- Snooze: the object is in a downtime (its downtime depth > 0).
- Recheck now: the check ran since the command (last check at or after it), or is due now (the next
  check at most `RECHECK_DUE` seconds after the command).
A view of the core older than the command (status.dat written before it) is "not yet".
"""

from __future__ import annotations

from cores.base import ProblemState
from schemas.ack import AckMessage

RECHECK_DUE = 5.0  # seconds: a next check this close to the command is the forced one, not the schedule


def applied(ack: AckMessage, state: ProblemState | None, sent_at: float) -> bool | None:
    """True: the core shows the action; False: not (yet); None: this view cannot tell."""
    if state is None:
        return None
    if state.as_of is not None and int(state.as_of) < int(sent_at):
        return False
    if ack.action == "acknowledge":
        return state.acknowledged
    if ack.action == "unacknowledge":
        return not state.acknowledged
    if ack.action == "snooze":
        return state.in_downtime
    if state.last_check is None and state.next_check is None:
        return None
    ran = state.last_check is not None and int(state.last_check) >= int(sent_at)
    due = state.next_check is not None and int(sent_at) - 1 <= state.next_check <= sent_at + RECHECK_DUE
    return ran or due


def why_not(ack: AckMessage, state: ProblemState | None, known: bool | None) -> str:
    """Why the core did not show the action, in words for the chat (no paths, no host names of the core)."""
    if known is False:
        return "the monitoring core does not know this host or service"
    if state is None:
        return "its state could not be read back from the monitoring core"
    if ack.action in ("acknowledge", "snooze") and not state.is_problem:
        return "it is OK again: there is no problem to " + ("acknowledge" if ack.action == "acknowledge" else "snooze")
    return "the monitoring core did not show it"
