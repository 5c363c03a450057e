"""Clicking the action buttons (Acknowledge, Snooze, Recheck now, Unacknowledge) as Mattermost sends
them, and watching what the ack processes tell the chat through the Mattermost webhook stand-in."""

from __future__ import annotations

import time
from typing import Any

import requests
from pytest_httpserver import HTTPServer

from schemas.ack_token import sign_incident
from tests.support.ack_processes import SIGNING_SECRET, Running

HOOK = "/hooks/alertq-actions-test"


def button(
    host: str, service: str | None, action: str = "acknowledge", snooze: str | None = None, **claims: Any
) -> str:
    """A button's token as a two-way channel signs it (this suite's signing secret)."""
    return sign_incident(
        SIGNING_SECRET,
        host_id=host,
        service_id=service,
        event_id=claims.pop("event_id", "evt-actions"),
        now=claims.pop("now", time.time()),
        ttl=claims.pop("ttl", 600),
        action=action,  # type: ignore[arg-type]
        snooze=snooze,
        **claims,
    )


def click(listener: Running, token: str, user: str = "alice", post_id: str = "post-1") -> dict[str, Any]:
    """POST a Mattermost click; the listener's JSON answer (200 expected)."""
    body = {"user_name": user, "channel_name": "ops", "post_id": post_id, "context": {"token": token}}
    answer = requests.post(f"{listener.url}/mattermost/actions", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def click_status(listener: Running, token: str, user: str) -> int:
    """POST a Mattermost click; only the status (a refusal is a 4xx)."""
    body = {"user_name": user, "channel_name": "ops", "post_id": "post-2", "context": {"token": token}}
    return requests.post(f"{listener.url}/mattermost/actions", json=body, timeout=10).status_code


def chat_hook(httpserver: HTTPServer) -> str:
    """The Mattermost incoming webhook the forwarder tells the chat through; its URL."""
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    return httpserver.url_for(HOOK)


def told(httpserver: HTTPServer) -> list[str]:
    return [r.get_json()["text"] for r, _ in httpserver.log if r.path == HOOK]


def wait_told(httpserver: HTTPServer, fragment: str, timeout: float = 60) -> str:
    """The first chat message containing `fragment`, waiting up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [text for text in told(httpserver) if fragment in text]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"the chat was not told {fragment!r} within {timeout} s; it was told {told(httpserver)}")
