"""openITCOCKPIT: `POST /nagios_module/cmd/submit_bulk_naemon.json` with the API key header.

Body: a JSON array of one command, `submitHoststateAck` (hostUuid, hostAckType) or
`submitServicestateAck` (hostUuid, serviceUuid); sticky 2 keeps the ack until recovery. It answers
200 before the core has run the command, so 2xx is all this can know.
"""

from __future__ import annotations

from typing import Any

from ack_listener.targets.base import Target, http_settings
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings
from workers.http import HttpClient, classify

PATH = "/nagios_module/cmd/submit_bulk_naemon.json"


def command(ack: AckMessage, host_ack_type: str) -> dict[str, Any]:
    common = {"author": ack.author, "comment": ack.comment, "sticky": 2 if ack.sticky else 0, "notify": int(ack.notify)}
    if ack.service_id is None:
        return {"command": "submitHoststateAck", "hostUuid": ack.host_id, **common, "hostAckType": host_ack_type}
    return {"command": "submitServicestateAck", "hostUuid": ack.host_id, "serviceUuid": ack.service_id, **common}


class OpenItcockpit(Target):
    name = "openitcockpit"

    def __init__(self, settings: AckTargetSettings) -> None:
        assert settings.url is not None and settings.api_key is not None  # AckTargetSettings.problem()
        self.url = settings.url.rstrip("/") + PATH
        self.host_ack_type = settings.host_ack_type
        self.http = HttpClient(
            http_settings(settings),
            headers={
                "Authorization": f"X-OITC-API {settings.api_key.get_secret_value()}",
                "Accept": "application/json",
            },
        )

    def acknowledge(self, ack: AckMessage) -> None:
        classify(self.http.post_json(self.url, [command(ack, self.host_ack_type)]))

    def close(self) -> None:
        self.http.close()
