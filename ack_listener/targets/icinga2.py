"""Icinga 2 API: `POST /v1/actions/acknowledge-problem` with a filter and its variables (never names
pasted into the filter text), basic auth, TLS against the configured CA bundle."""

from __future__ import annotations

from typing import Any

import urllib3

from ack_listener.targets.base import Target, http_settings
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings
from workers.http import HttpClient, classify

PATH = "/v1/actions/acknowledge-problem"


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
        self.url = settings.url.rstrip("/") + PATH
        credentials = f"{settings.username}:{settings.password.get_secret_value()}"
        self.http = HttpClient(
            http_settings(settings),
            headers={**urllib3.make_headers(basic_auth=credentials), "Accept": "application/json"},
        )

    def acknowledge(self, ack: AckMessage) -> None:
        classify(self.http.post_json(self.url, body(ack)))

    def close(self) -> None:
        self.http.close()
