"""openITCOCKPIT: `POST /nagios_module/cmd/submit_bulk_naemon.json` with the API key header.

Body: a JSON array of one command, `submitHoststateAck` (hostUuid, hostAckType) or
`submitServicestateAck` (hostUuid, serviceUuid); sticky 2 keeps the ack until recovery. It answers
200 before the core has run the command, so 2xx is all this can know (the forwarder then reads the
state back, ack_listener/proof.py). The other actions, in the same API and with the field names its
own UI sends: `submitServiceDowntime` / `submitHostDowntime` (start and end as `@<epoch>`, which its
`strtotime` reads in any server time zone; comment, author; hosts `downtimetype` 0, the host alone),
`rescheduleService` / `rescheduleHost` (satelliteId 0: the master). The bulk API has no command that
removes an acknowledgement: Unacknowledge is refused as permanent, and the chat hears why.

The object's state: the index API the UI lists objects with,
`GET /services/index.json?angular=true&filter[Services.uuid]=<uuid>` → `all_services[0].Servicestatus`
(`GET /hosts/index.json?angular=true&filter[Hosts.uuid]=<uuid>` → `all_hosts[0].Hoststatus`), whose
`currentState`, `problemHasBeenAcknowledged` and (services) `last_time_ok` are the core's;
`isInMonitoring` false (no state yet), no match or no answer → None. `last_time_ok` counts only as
epoch seconds (a user's time format, which the API may apply, is not read). (Shape from
openITCOCKPIT's ServicesController/HostsController index and Servicestatus::toArray; not verified
against a running openITCOCKPIT.)
"""

from __future__ import annotations

from typing import Any

import structlog

from cores.base import CorePermanent, ProblemState, Target, http_settings
from delivery.http import HttpClient
from delivery.outcomes import Permanent, Retryable
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings

PATH = "/nagios_module/cmd/submit_bulk_naemon.json"
SERVICES_INDEX = "/services/index.json"
HOSTS_INDEX = "/hosts/index.json"

log = structlog.get_logger("alertq.ack_target.openitcockpit")


def command(ack: AckMessage, host_ack_type: str) -> dict[str, Any]:
    common = {"author": ack.author, "comment": ack.comment, "sticky": 2 if ack.sticky else 0, "notify": int(ack.notify)}
    if ack.service_id is None:
        return {"command": "submitHoststateAck", "hostUuid": ack.host_id, **common, "hostAckType": host_ack_type}
    return {"command": "submitServicestateAck", "hostUuid": ack.host_id, "serviceUuid": ack.service_id, **common}


def action_command(ack: AckMessage) -> dict[str, Any]:
    """The command of a Snooze or Recheck now."""
    if ack.action == "snooze":
        assert ack.downtime_start is not None and ack.downtime_end is not None  # AckMessage checks it
        times = {"start": f"@{int(ack.downtime_start.timestamp())}", "end": f"@{int(ack.downtime_end.timestamp())}"}
        said = {"comment": ack.comment, "author": ack.author}
        if ack.service_id is None:
            return {"command": "submitHostDowntime", "hostUuid": ack.host_id, **times, **said, "downtimetype": 0}
        return {
            "command": "submitServiceDowntime",
            "hostUuid": ack.host_id,
            "serviceUuid": ack.service_id,
            **times,
            **said,
        }
    if ack.action == "recheck":
        if ack.service_id is None:
            return {"command": "rescheduleHost", "hostUuid": ack.host_id, "type": "hostOnly", "satelliteId": 0}
        return {
            "command": "rescheduleService",
            "hostUuid": ack.host_id,
            "serviceUuid": ack.service_id,
            "satelliteId": 0,
        }
    raise ValueError(f"{ack.action} has no openITCOCKPIT command")


class OpenItcockpit(Target):
    name = "openitcockpit"

    def __init__(self, settings: AckTargetSettings) -> None:
        assert settings.url is not None and settings.api_key is not None  # AckTargetSettings.problem()
        self.base_url = settings.url.rstrip("/")
        self.url = self.base_url + PATH
        self.host_ack_type = settings.host_ack_type
        api_key = settings.api_key.get_secret_value()
        headers = {"Authorization": f"X-OITC-API {api_key}", "Accept": "application/json"}
        self.http = HttpClient(http_settings(settings), headers=headers)

    def acknowledge(self, ack: AckMessage) -> None:
        self.http.post_json(self.url, [command(ack, self.host_ack_type)])

    def schedule_downtime(self, ack: AckMessage) -> None:
        self.http.post_json(self.url, [action_command(ack)])

    def reschedule_check(self, ack: AckMessage) -> None:
        self.http.post_json(self.url, [action_command(ack)])

    def remove_acknowledgement(self, ack: AckMessage) -> None:
        raise CorePermanent(
            "openITCOCKPIT's bulk command API has no command that removes an acknowledgement",
            "openITCOCKPIT's API cannot remove an acknowledgement: remove it in openITCOCKPIT",
        )

    def object_known(self, host_id: str, service_id: str | None) -> bool | None:
        found = self._found(host_id, service_id)
        return None if found is None else len(found) > 0

    def _found(self, host_id: str, service_id: str | None) -> list[Any] | None:
        """The index API's matches for the object, or None when it cannot be asked."""
        if service_id is None:
            path, params, listing = HOSTS_INDEX, {"filter[Hosts.uuid]": host_id}, "all_hosts"
        else:
            path, params, listing = SERVICES_INDEX, {"filter[Services.uuid]": service_id}, "all_services"
        try:
            found = self.http.get(self.base_url + path, params={"angular": "true", **params}).json()[listing]
        except (Retryable, Permanent, ValueError, KeyError, TypeError):
            return None
        return found if isinstance(found, list) else None

    def problem_state(self, host_id: str, service_id: str | None) -> ProblemState | None:
        if service_id is None:
            path, params, listing, status = HOSTS_INDEX, {"filter[Hosts.uuid]": host_id}, "all_hosts", "Hoststatus"
        else:
            path, params = SERVICES_INDEX, {"filter[Services.uuid]": service_id}
            listing, status = "all_services", "Servicestatus"
        try:
            response = self.http.get(self.base_url + path, params={"angular": "true", **params})
            found = response.json()[listing]
            if len(found) != 1:
                return None
            state = found[0][status]
            current, acknowledged = state.get("currentState"), state.get("problemHasBeenAcknowledged")
        except (Retryable, Permanent, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            log.warning("ack_target.state_unknown", host_id=host_id, service_id=service_id, error=str(exc))
            return None
        if not state.get("isInMonitoring", True) or not isinstance(current, int) or acknowledged is None:
            return None
        depth = state.get("scheduledDowntimeDepth")
        return ProblemState(
            state=current,
            acknowledged=bool(acknowledged),
            last_ok=_epoch(state.get("last_time_ok")),
            in_downtime=depth > 0 if isinstance(depth, int) and not isinstance(depth, bool) else None,
            last_check=_epoch(state.get("lastCheck")),
            next_check=_epoch(state.get("nextCheck")),
        )

    def close(self) -> None:
        self.http.close()


def _epoch(value: object) -> float | None:
    """Epoch seconds only: a user's time format, which the API may apply, is not read."""
    return float(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
