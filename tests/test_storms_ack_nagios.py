"""A digest's "Acknowledge all N" with a REAL Nagios 4 core and `alertq up` (issue 14): the core's
openITCOCKPIT Slack command lines for a storm of problems, folded into digests at the sink's Slack API;
one click on a digest's button acknowledges every problem it lists in the core, by the clicker; a
forged or altered digest token acknowledges nothing."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from alertq.sink.actions import slack_signature
from schemas.ack_token import DigestClaims, make_digest_token, verify_digest_token
from schemas.settings import Settings
from tests.support.ack_processes import SIGNING_SECRET, SLACK_SECRET
from tests.support.conversations import root_text
from tests.support.nagios import NagiosCore
from tests.support.nagios_config import SLACK
from tests.support.up_stack import Stack, alertq_up

pytestmark = pytest.mark.nagios

SERVICES = 12
NAME = re.compile(r"svc-(\d{4})-end")
EXTRA = (
    '--host-display-name "$HOSTDISPLAYNAME$" --service-display-name "$SERVICEDISPLAYNAME$" --contact "$CONTACTNAME$" '
    '--notification-number "$NOTIFICATIONNUMBER$" --timestamp "$TIMET$" --problem-id "$SERVICEPROBLEMID$" '
    '--ackauthor "$NOTIFICATIONAUTHOR$" --ackcomment "$NOTIFICATIONCOMMENT$"'
)


def digests(stack: Stack) -> list[dict[str, Any]]:
    return [
        m
        for m in stack.messages()
        if m["api"] and m["api"]["root"] is None and m["channel"] == "slack" and "problems on" in root_text(m)
    ]


def ack_all_button(message: dict[str, Any]) -> dict[str, Any]:
    [button] = [b for b in message["rendered"]["buttons"] if b["interactive"] and "Acknowledge all" in b["label"]]
    found: dict[str, Any] = button
    return found


def token_of(stack: Stack, message: dict[str, Any]) -> str:
    """The value of the digest's "Acknowledge all" button, as Slack holds it (the blocks it was sent)."""
    blocks = message["payload"].get("blocks") or []
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == "alertq_ack_digest":
                return str(element["value"])
    raise AssertionError(f"no Acknowledge all button in {json.dumps(blocks)[:500]}")


def click_with(stack: Stack, message: dict[str, Any], token: str, user: str) -> requests.Response:
    """A Slack click on the digest's button carrying `token`, signed as Slack signs (the sink's secret)."""
    payload = {
        "type": "block_actions",
        "user": {"id": "U1", "username": user, "name": user},
        "channel": {"id": "C0ALERTQ"},
        "actions": [{"type": "button", "action_id": "alertq_ack_digest", "value": token}],
    }
    body = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signature(SLACK_SECRET, body.encode())}
    return requests.post(f"{stack.listener}/slack/actions", data=body, headers=headers, timeout=30)


def altered(token: str, **change: Any) -> str:
    """The token with its claims changed and its signature kept."""
    version, claims, signature = token.split(".")
    raw = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    raw.update(change)
    encoded = base64.urlsafe_b64encode(json.dumps(raw, separators=(",", ":"), sort_keys=True).encode())
    return f"{version}.{encoded.rstrip(b'=').decode()}.{signature}"


def acknowledged_by(core: NagiosCore, host: str, services: list[str]) -> dict[str, str]:
    status = core.status()
    found = {}
    for service in services:
        if status.service(host, service)["problem_has_been_acknowledged"] == "1":
            authors = [c["author"] for c in status.comments(host, service) if c["entry_type"] == "4"]
            found[service] = authors[-1] if authors else ""
    return found


def test_acknowledge_all_on_a_digest_acknowledges_each_of_its_problems_in_nagios(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host = "sw-" + uuid.uuid4().hex[:8]
    services = [f"svc-{n:04d}-end" for n in range(SERVICES)]
    core = nagios_core_factory(hosts={host: services}, channels=("slack",), args=SLACK, extra_args=EXTRA)
    with alertq_up(
        alertq_env,
        core,
        "slack",
        tmp_path / "up.log",
        ALERTQ_CONVERSATIONS__STORE=f"sqlite:///{tmp_path}/conversations.db",
        ALERTQ_CHANNELS__SLACK__FOLD__WINDOW="0.01",  # fold whatever waits beyond the budget's one post
    ) as stack:
        for service in services:
            core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - free space: / 120 MB (1%)")

        def all_shown() -> bool:
            shown = {int(n) for m in stack.messages() if m["api"] for n in NAME.findall(root_text(m))}
            return len(shown) == SERVICES

        deadline = time.monotonic() + 120
        while not all_shown() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert all_shown(), stack.log_tail()
        parts = digests(stack)
        assert parts, "no digest: the storm was posted one by one"
        in_digests = sorted({f"svc-{int(n):04d}-end" for m in parts for n in NAME.findall(root_text(m))})
        assert len(in_digests) >= 2

        # Forged (another secret), altered (another part, one line more) or bound to other lines: refused.
        genuine = token_of(stack, parts[0])
        claims = verify_digest_token(SIGNING_SECRET, genuine, now=time.time())
        forged = make_digest_token("another-secret-0123456789abcdef0123", claims)
        other_lines = make_digest_token(
            SIGNING_SECRET, DigestClaims(claims.digest_id, claims.part, "0" * 16, claims.expires_at)
        )
        for bad in (forged, altered(genuine, q=claims.part + 1), altered(genuine, p=0), other_lines):
            answer = click_with(stack, parts[0], bad, "mallory")
            assert answer.status_code == 401, answer.text
        time.sleep(3)  # anything queued would reach the core within this
        assert acknowledged_by(core, host, services) == {}

        for part in parts:
            clicked = requests.post(
                f"{stack.sink}/api/messages/{part['id']}/actions/{ack_all_button(part)['key']}",
                json={"user_name": "jdoe"},
                timeout=60,
            )
            assert clicked.status_code == 200 and clicked.json()["status"] == 200, clicked.text

        def all_acknowledged() -> dict[str, str] | None:
            found = acknowledged_by(core, host, in_digests)
            return found if len(found) == len(in_digests) else None

        found = core.wait_for(all_acknowledged, 90, "every problem of the digests acknowledged in status.dat")
    print(f"\n{len(in_digests)} problems in {len(parts)} digest part(s): acknowledged by one click each")
    assert set(found.values()) == {"jdoe"}
