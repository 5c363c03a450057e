"""What one incident is, for every part that groups notifications by it (the chat conversations today;
the escalator and the ack tokens name the same thing).

An incident is a host, or a service on a host (`host[/service]`, by the core's ids, which are UUIDs in
openITCOCKPIT), from a PROBLEM until its RECOVERY. When the core passes its own problem id
(`--problem-id "$SERVICEPROBLEMID$"` / `"$HOSTPROBLEMID$"`), that id tells two problems of one object
apart: a PROBLEM whose problem id differs from the open incident's starts a new incident even without a
RECOVERY in between (one that was lost, or never notified). Nagios passes 0 on a RECOVERY (the id is in
`$LASTSERVICEPROBLEMID$` then), and alertq-enqueue leaves a 0 out, so a RECOVERY carries no problem id
and closes whatever incident of its object is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # schemas/alert.py names its events' incident with `incident_key`
    from schemas.alert import AlertEvent


def incident_key(host_id: str, service_id: str | None) -> str:
    """`host` or `host/service`: one incident's key."""
    return host_id if service_id is None else f"{host_id}/{service_id}"


@dataclass(frozen=True)
class Incident:
    key: str  # host[/service]
    problem_id: str | None  # the core's id of this problem, when the command passed one

    def is_other_problem(self, problem_id: str | None) -> bool:
        """Whether a PROBLEM with `problem_id` belongs to another problem than this one: only when both
        ids are known and differ (a missing id never splits an incident)."""
        return bool(self.problem_id and problem_id and self.problem_id != problem_id)


def incident_of(event: AlertEvent) -> Incident:
    service_id = None if event.service is None else event.service.id
    problem_id = event.problem_id if event.problem_id not in (None, "", "0") else None
    return Incident(incident_key(event.host.id, service_id), problem_id)
