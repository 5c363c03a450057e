"""Icinga 2 API: `POST /v1/actions/acknowledge-problem` with a filter and its variables (never names
pasted into the filter text), basic auth, TLS against the configured CA bundle. The other actions:
`/v1/actions/schedule-downtime` (fixed, start_time/end_time, author, comment),
`/v1/actions/reschedule-check` (force, next_check now) and `/v1/actions/remove-acknowledgement`, with
the same filter. A filter that matches nothing is answered 404: the core does not know the object
(permanent, said so in the chat).

The object's state: `/v1/objects/{hosts,services}` with the same filter (a POST with
`X-HTTP-Method-Override: GET`, the API's way to put `filter_vars` in a body) for `state`,
`acknowledgement`, `last_check_result` and `last_state_ok` (`last_state_up` for a host); never
checked (pending), no match or no answer → None. Icinga 2 keeps no problem ids."""

from __future__ import annotations

import json
import time
from typing import Any

import structlog
import urllib3

from cores.base import CorePermanent, ProblemState, Target, http_settings
from delivery.http import HttpClient, classify
from delivery.outcomes import Permanent, Retryable
from schemas.ack import AckMessage
from schemas.ack_listener import AckTargetSettings

PATH = "/v1/actions/acknowledge-problem"
DOWNTIME_PATH = "/v1/actions/schedule-downtime"
RECHECK_PATH = "/v1/actions/reschedule-check"
UNACK_PATH = "/v1/actions/remove-acknowledgement"
OBJECTS_PATH = "/v1/objects/"
STATE_ATTRS = ["state", "acknowledgement", "last_check_result", "downtime_depth", "last_check", "next_check"]
LAST_OK = {"hosts": "last_state_up", "services": "last_state_ok"}

log = structlog.get_logger("alertq.ack_target.icinga2")


def object_filter(host_id: str, service_id: str | None) -> dict[str, Any]:
    if service_id is None:
        return {"filter": "host.name==h", "filter_vars": {"h": host_id}}
    return {"filter": "host.name==h && service.name==s", "filter_vars": {"h": host_id, "s": service_id}}


def typed_filter(ack: AckMessage) -> dict[str, Any]:
    return {"type": "Host" if ack.service_id is None else "Service", **object_filter(ack.host_id, ack.service_id)}


def action_body(ack: AckMessage, *, now: float) -> dict[str, Any]:
    """The body of a Snooze, Recheck now or Unacknowledge."""
    if ack.action == "snooze":
        assert ack.downtime_start is not None and ack.downtime_end is not None  # AckMessage checks it
        start, end = int(ack.downtime_start.timestamp()), int(ack.downtime_end.timestamp())
        times = {"start_time": start, "end_time": end, "fixed": True, "duration": end - start}
        return {**typed_filter(ack), "author": ack.author, "comment": ack.comment, **times}
    if ack.action == "recheck":
        return {**typed_filter(ack), "force": True, "next_check": int(now)}
    if ack.action == "unacknowledge":
        return typed_filter(ack)
    raise ValueError(f"{ack.action} has no action_body")


ACTION_PATHS = {"snooze": DOWNTIME_PATH, "recheck": RECHECK_PATH, "unacknowledge": UNACK_PATH}


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
        self._post(self.url, body(ack), ack)

    def schedule_downtime(self, ack: AckMessage) -> None:
        self._post(self.base_url + DOWNTIME_PATH, action_body(ack, now=time.time()), ack)

    def reschedule_check(self, ack: AckMessage) -> None:
        self._post(self.base_url + RECHECK_PATH, action_body(ack, now=time.time()), ack)

    def remove_acknowledgement(self, ack: AckMessage) -> None:
        self._post(self.base_url + UNACK_PATH, action_body(ack, now=time.time()), ack)

    def _post(self, url: str, payload: dict[str, Any], ack: AckMessage) -> None:
        try:
            self.http.post_json(url, payload)
        except Permanent as exc:
            if exc.reason.startswith("HTTP 404"):  # "No objects found": the filter matched nothing
                raise CorePermanent(exc.reason, "the monitoring core does not know this host or service") from None
            raise

    def object_known(self, host_id: str, service_id: str | None) -> bool | None:
        try:
            results = self._objects(host_id, service_id, ["name"])
            return False if results is None else len(results) == 1
        except (Retryable, Permanent, ValueError, KeyError, TypeError):
            return None

    def _objects(self, host_id: str, service_id: str | None, attrs: list[str]) -> list[Any] | None:
        """The objects the filter matches, with these attributes; None: the API says it matches none."""
        kind = "hosts" if service_id is None else "services"
        query = {**object_filter(host_id, service_id), "attrs": attrs}
        headers = {"Content-Type": "application/json", "X-HTTP-Method-Override": "GET"}
        # Unclassified: a 404 is the API's answer to a filter that matches nothing.
        response = self.http.request("POST", self.base_url + OBJECTS_PATH + kind, json.dumps(query).encode(), headers)
        if response.status_code == 404:
            return None
        classify(response)
        results: list[Any] = response.json()["results"]
        return results

    def problem_state(self, host_id: str, service_id: str | None) -> ProblemState | None:
        kind = "hosts" if service_id is None else "services"
        try:
            results = self._objects(host_id, service_id, [*STATE_ATTRS, LAST_OK[kind]])
        except (Retryable, Permanent, ValueError, KeyError, TypeError) as exc:
            log.warning("ack_target.state_unknown", host_id=host_id, service_id=service_id, error=str(exc))
            return None
        if results is None or len(results) != 1:
            return None
        attrs = results[0].get("attrs") or {}
        state, acknowledgement = attrs.get("state"), attrs.get("acknowledgement")
        if attrs.get("last_check_result") is None or state is None or acknowledgement is None:
            return None  # pending: the core has no state for it yet
        last_ok = attrs.get(LAST_OK[kind])
        depth = attrs.get("downtime_depth")
        return ProblemState(
            state=int(state),
            acknowledged=acknowledgement != 0,
            last_ok=_epoch(last_ok),
            in_downtime=depth > 0 if isinstance(depth, int | float) else None,
            last_check=_epoch(attrs.get("last_check")),
            next_check=_epoch(attrs.get("next_check")),
        )

    def close(self) -> None:
        self.http.close()


def _epoch(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) and value > 0 else None
