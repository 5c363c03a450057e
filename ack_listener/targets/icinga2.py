"""Icinga 2 API: `POST /v1/actions/acknowledge-problem` with a filter and its variables (never names
pasted into the filter text), basic auth, TLS against the configured CA bundle.

The object's state: `/v1/objects/{hosts,services}` with the same filter (a POST with
`X-HTTP-Method-Override: GET`, the API's way to put `filter_vars` in a body) for `state`,
`acknowledgement`, `last_check_result` and `last_state_ok` (`last_state_up` for a host); never
checked (pending), no match or no answer → None. Icinga 2 keeps no problem ids."""

from __future__ import annotations

from typing import Any

import structlog
import urllib3

from ack_listener.targets.base import ProblemState, Target, http_settings
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings
from workers.channels.base import Permanent, Retryable
from workers.http import HttpClient, classify

PATH = "/v1/actions/acknowledge-problem"
OBJECTS_PATH = "/v1/objects/"
STATE_ATTRS = ["state", "acknowledgement", "last_check_result"]
LAST_OK = {"hosts": "last_state_up", "services": "last_state_ok"}

log = structlog.get_logger("alertq.ack_target.icinga2")


def object_filter(host_id: str, service_id: str | None) -> dict[str, Any]:
    if service_id is None:
        return {"filter": "host.name==h", "filter_vars": {"h": host_id}}
    return {"filter": "host.name==h && service.name==s", "filter_vars": {"h": host_id, "s": service_id}}


def body(ack: AckMessage) -> dict[str, Any]:
    common = {"author": ack.author, "comment": ack.comment, "sticky": ack.sticky, "notify": ack.notify}
    common["persistent"] = ack.persistent
    if ack.service_id is None:
        return {"type": "Host", "filter": "host.name==h", "filter_vars": {"h": ack.host_id}, **common}
    return {
        "type": "Service",
        "filter": "host.name==h && service.name==s",
        "filter_vars": {"h": ack.host_id, "s": ack.service_id},
        **common,
    }


class Icinga2(Target):
    name = "icinga2"

    def __init__(self, settings: AckTargetSettings) -> None:
        assert settings.url and settings.username and settings.password  # AckTargetSettings.problem()
        self.base_url = settings.url.rstrip("/")
        self.url = self.base_url + PATH
        credentials = f"{settings.username}:{settings.password.get_secret_value()}"
        headers = {**urllib3.make_headers(basic_auth=credentials), "Accept": "application/json"}
        self.http = HttpClient(http_settings(settings), headers=headers)

    def acknowledge(self, ack: AckMessage) -> None:
        classify(self.http.post_json(self.url, body(ack)))

    def problem_state(self, host_id: str, service_id: str | None) -> ProblemState | None:
        kind = "hosts" if service_id is None else "services"
        query = {**object_filter(host_id, service_id), "attrs": [*STATE_ATTRS, LAST_OK[kind]]}
        headers = {"X-HTTP-Method-Override": "GET"}
        try:
            response = self.http.post_json(self.base_url + OBJECTS_PATH + kind, query, headers)
            if response.status_code == 404:  # the API's answer to a filter that matches nothing
                return None
            classify(response)
            results = response.json()["results"]
        except (Retryable, Permanent, ValueError, KeyError, TypeError) as exc:
            log.warning("ack_target.state_unknown", host_id=host_id, service_id=service_id, error=str(exc))
            return None
        if len(results) != 1:
            return None
        attrs = results[0].get("attrs") or {}
        state, acknowledgement = attrs.get("state"), attrs.get("acknowledgement")
        if attrs.get("last_check_result") is None or state is None or acknowledgement is None:
            return None  # pending: the core has no state for it yet
        last_ok = attrs.get(LAST_OK[kind])
        return ProblemState(
            state=int(state),
            acknowledged=acknowledgement != 0,
            last_ok=float(last_ok) if isinstance(last_ok, int | float) and last_ok > 0 else None,
        )

    def close(self) -> None:
        self.http.close()
