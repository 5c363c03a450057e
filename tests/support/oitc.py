"""An openITCOCKPIT stand-in on pytest-httpserver: the bulk command API and the index APIs the ack
target reads state from, as cores/openitcockpit.py documents them.

Every command is recorded exactly as it arrived (`commands`). With `applies` (the default) the
stand-in then does what openITCOCKPIT's core would, a moment later: an acknowledgement sets
`problemHasBeenAcknowledged`, a downtime `scheduledDowntimeDepth`, a reschedule `nextCheck`; without
it, it answers 200 and changes nothing, which is openITCOCKPIT #1672 (the chat was told "acknowledged"
while nothing reached the core). Objects not set with `set_state` are not in its index.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

COMMANDS = "/nagios_module/cmd/submit_bulk_naemon.json"


@dataclass
class OitcStandIn:
    server: HTTPServer
    api_key: str
    applies: bool = True
    apply_after: float = 0.3  # seconds: the core runs the command after the API answered
    commands: list[dict[str, Any]] = field(default_factory=list)
    states: dict[tuple[str, str | None], dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self.server.expect_request(COMMANDS, method="POST").respond_with_handler(self._command)
        self.server.expect_request("/services/index.json", method="GET").respond_with_handler(self._services)
        self.server.expect_request("/hosts/index.json", method="GET").respond_with_handler(self._hosts)

    def set_state(self, host: str, service: str | None, state: int, acknowledged: bool = False) -> None:
        with self._lock:
            self.states[(host, service)] = {
                "currentState": state,
                "problemHasBeenAcknowledged": acknowledged,
                "scheduledDowntimeDepth": 0,
                "isInMonitoring": True,
                "lastCheck": int(time.time()) - 60,
                "nextCheck": int(time.time()) + 240,
            }

    def state(self, host: str, service: str | None) -> dict[str, Any]:
        with self._lock:
            return dict(self.states[(host, service)])

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("Authorization") == f"X-OITC-API {self.api_key}"

    def _command(self, request: Request) -> Response:
        if not self._authorised(request):
            return Response(json.dumps({"message": "Unauthorized"}), status=401, content_type="application/json")
        commands = request.get_json()
        with self._lock:
            self.commands.extend(commands)
        if self.applies:
            threading.Timer(self.apply_after, self._apply, args=(commands,)).start()
        return Response(
            json.dumps({"message": "Commands added successfully to queue"}), content_type="application/json"
        )

    def _apply(self, commands: list[dict[str, Any]]) -> None:
        with self._lock:
            for command in commands:
                found = self.states.get((command.get("hostUuid", ""), command.get("serviceUuid")))
                if found is None:
                    continue  # the core does not know the object: nothing happens
                name = command.get("command")
                if name in ("submitServicestateAck", "submitHoststateAck") and found["currentState"] != 0:
                    found["problemHasBeenAcknowledged"] = True
                elif name in ("submitServiceDowntime", "submitHostDowntime"):
                    found["scheduledDowntimeDepth"] += 1
                elif name in ("rescheduleService", "rescheduleHost"):
                    found["nextCheck"] = int(time.time())

    def _services(self, request: Request) -> Response:
        uuid = request.args.get("filter[Services.uuid]")
        with self._lock:
            found = [{"Servicestatus": dict(s)} for (_, service), s in self.states.items() if service == uuid]
        return self._listing(request, "all_services", found)

    def _hosts(self, request: Request) -> Response:
        uuid = request.args.get("filter[Hosts.uuid]")
        with self._lock:
            found = [
                {"Hoststatus": dict(s)}
                for (host, service), s in self.states.items()
                if service is None and host == uuid
            ]
        return self._listing(request, "all_hosts", found)

    def _listing(self, request: Request, key: str, found: list[dict[str, Any]]) -> Response:
        if not self._authorised(request):
            return Response(json.dumps({"message": "Unauthorized"}), status=401, content_type="application/json")
        return Response(json.dumps({key: found}), content_type="application/json")
