"""openITCOCKPIT: `POST /nagios_module/cmd/submit_bulk_naemon.json` with the API key header.

Body: a JSON array of one command, `submitHoststateAck` (hostUuid, hostAckType) or
`submitServicestateAck` (hostUuid, serviceUuid); sticky 2 keeps the ack until recovery. It answers
200 before the core has run the command, so 2xx is all this can know.

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

from ack_listener.targets.base import ProblemState, Target, http_settings
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings
from workers.channels.base import Permanent, Retryable
from workers.http import HttpClient, classify

PATH = "/nagios_module/cmd/submit_bulk_naemon.json"
SERVICES_INDEX = "/services/index.json"
HOSTS_INDEX = "/hosts/index.json"

log = structlog.get_logger("alertq.ack_target.openitcockpit")


def command(ack: AckMessage, host_ack_type: str) -> dict[str, Any]:
    common = {"author": ack.author, "comment": ack.comment, "sticky": 2 if ack.sticky else 0, "notify": int(ack.notify)}
    if ack.service_id is None:
        return {"command": "submitHoststateAck", "hostUuid": ack.host_id, **common, "hostAckType": host_ack_type}
    return {"command": "submitServicestateAck", "hostUuid": ack.host_id, "serviceUuid": ack.service_id, **common}


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
        classify(self.http.post_json(self.url, [command(ack, self.host_ack_type)]))

    def problem_state(self, host_id: str, service_id: str | None) -> ProblemState | None:
        if service_id is None:
            path, params, listing, status = HOSTS_INDEX, {"filter[Hosts.uuid]": host_id}, "all_hosts", "Hoststatus"
        else:
            path, params = SERVICES_INDEX, {"filter[Services.uuid]": service_id}
            listing, status = "all_services", "Servicestatus"
        try:
            response = self.http.get(self.base_url + path, params={"angular": "true", **params})
            classify(response)
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
        last_ok = state.get("last_time_ok")
        epoch = isinstance(last_ok, int) and not isinstance(last_ok, bool) and last_ok > 0
        return ProblemState(state=current, acknowledged=bool(acknowledged), last_ok=float(last_ok) if epoch else None)

    def close(self) -> None:
        self.http.close()
