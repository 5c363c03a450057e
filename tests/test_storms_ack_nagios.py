"""A digest's "Acknowledge all N" with a REAL Nagios 4 core and `alertq up` (issue 14): the core's
openITCOCKPIT Slack or Mattermost command lines for a storm of problems, folded into digests at the
sink's API emulation of that chat; one click on a digest's button acknowledges every problem it lists
in the core, by the clicker (one line chosen in its menu first: that one alone, and the buttons then
offer only the lines still open); a forged or altered digest token acknowledges nothing."""

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
from tests.support.nagios_config import MATTERMOST, SLACK
from tests.support.up_stack import Stack, alertq_up

pytestmark = pytest.mark.nagios

SERVICES = 12
NAME = re.compile(r"svc-(\d{4})-end")
EXTRA = (
    '--host-display-name "$HOSTDISPLAYNAME$" --service-display-name "$SERVICEDISPLAYNAME$" --contact "$CONTACTNAME$" '
    '--notification-number "$NOTIFICATIONNUMBER$" --timestamp "$TIMET$" --problem-id "$SERVICEPROBLEMID$"'
)
SLACK_ACK_FLAGS = ' --ackauthor "$NOTIFICATIONAUTHOR$" --ackcomment "$NOTIFICATIONCOMMENT$"'  # Mattermost's has them
# Each chat folds whatever waits beyond one post: its budget lets one out within the fold window.
FOLDING = {
    "slack": {"ALERTQ_CHANNELS__SLACK__FOLD__WINDOW": "0.01"},
    "mattermost": {
        "ALERTQ_CHANNELS__MATTERMOST__FOLD__WINDOW": "0.01",
        "ALERTQ_CHANNELS__MATTERMOST__API_RATE_LIMIT__PER_SECOND": "2",
        "ALERTQ_CHANNELS__MATTERMOST__API_RATE_LIMIT__BURST": "2",
    },
}


def digests(stack: Stack, chat: str) -> list[dict[str, Any]]:
    return [
        m
        for m in stack.messages()
        if m["api"] and m["api"]["root"] is None and m["channel"] == chat and "problems on" in root_text(m)
    ]


def ack_all_button(message: dict[str, Any]) -> dict[str, Any]:
    [button] = [b for b in message["rendered"]["buttons"] if b["interactive"] and "Acknowledge all" in b["label"]]
    found: dict[str, Any] = button
    return found


def menu_of(message: dict[str, Any]) -> dict[str, Any]:
    [menu] = [b for b in message["rendered"]["buttons"] if b["interactive"] and b["options"]]
    found: dict[str, Any] = menu
    return found


def token_of(message: dict[str, Any]) -> str:
    """The digest token of the "Acknowledge all" button, as the chat holds it: a Slack button's value
    (the blocks it was sent), a Mattermost action's integration context (its props)."""
    payload = message["payload"]
    blocks = payload.get("blocks") or []
    for block in blocks:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == "alertq_ack_digest":
                return str(element["value"])
    for attachment in (payload.get("props") or {}).get("attachments") or []:
        for action in attachment.get("actions") or []:
            if action.get("id") == "ackall":
                return str(action["integration"]["context"]["token"])
    raise AssertionError(f"no Acknowledge all button in {json.dumps(payload)[:500]}")


def click_with(stack: Stack, chat: str, token: str, user: str) -> requests.Response:
    """A click on the digest's button carrying `token`, as the chat sends it (Slack: signed with the
    sink's secret; Mattermost signs nothing, the token is all the proof)."""
    if chat == "mattermost":
        body = {"user_name": user, "post_id": "p1", "type": "button", "context": {"action": "ackall", "token": token}}
        return requests.post(f"{stack.listener}/mattermost/actions", json=body, timeout=30)
    payload = {
        "type": "block_actions",
        "user": {"id": "U1", "username": user, "name": user},
        "channel": {"id": "C0ALERTQ"},
        "actions": [{"type": "button", "action_id": "alertq_ack_digest", "value": token}],
    }
    form = urlencode({"payload": json.dumps(payload)})
    headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signature(SLACK_SECRET, form.encode())}
    return requests.post(f"{stack.listener}/slack/actions", data=form, headers=headers, timeout=30)


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


@pytest.mark.parametrize("chat", ["slack", "mattermost"])
def test_acknowledge_all_on_a_digest_acknowledges_each_of_its_problems_in_nagios(
    chat: str,
    declared: Settings,
    alertq_env: dict[str, str],
    nagios_core_factory: Callable[..., NagiosCore],
    tmp_path: Path,
) -> None:
    host = "sw-" + uuid.uuid4().hex[:8]
    services = [f"svc-{n:04d}-end" for n in range(SERVICES)]
    args, extra = (SLACK, EXTRA + SLACK_ACK_FLAGS) if chat == "slack" else (MATTERMOST, EXTRA)
    core = nagios_core_factory(hosts={host: services}, channels=(chat,), args=args, extra_args=extra)
    with alertq_up(
        alertq_env,
        core,
        chat,
        tmp_path / "up.log",
        ALERTQ_CONVERSATIONS__STORE=f"sqlite:///{tmp_path}/conversations.db",
        **FOLDING[chat],
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
        parts = digests(stack, chat)
        assert parts, "no digest: the storm was posted one by one"
        in_digests = sorted({f"svc-{int(n):04d}-end" for m in parts for n in NAME.findall(root_text(m))})
        assert len(in_digests) >= 2

        # Forged (another secret), altered (another part, one line more) or bound to other lines: refused.
        genuine = token_of(parts[0])
        claims = verify_digest_token(SIGNING_SECRET, genuine, now=time.time())
        forged = make_digest_token("another-secret-0123456789abcdef0123", claims)
        other_lines = make_digest_token(
            SIGNING_SECRET, DigestClaims(claims.digest_id, claims.part, "0" * 16, claims.expires_at)
        )
        for bad in (forged, altered(genuine, q=claims.part + 1), altered(genuine, p=0), other_lines):
            answer = click_with(stack, chat, bad, "mallory")
            assert answer.status_code == 401, answer.text
        time.sleep(3)  # anything queued would reach the core within this
        assert acknowledged_by(core, host, services) == {}

        # One line chosen in the first part's menu: that problem alone, by its clicker; once the core's
        # ACKNOWLEDGEMENT came back, the part's buttons offer only the lines still open.
        first = parts[0]
        open_before = len(menu_of(first)["options"])
        option = menu_of(first)["options"][0]
        [single] = [f"svc-{n}-end" for n in NAME.findall(option["text"])]
        chosen = requests.post(
            f"{stack.sink}/api/messages/{first['id']}/actions/{menu_of(first)['key']}",
            json={"user_name": "asmith", "selected_option": option["value"]},
            timeout=60,
        )
        assert chosen.status_code == 200 and chosen.json()["status"] == 200, chosen.text
        core.wait_for(
            lambda: acknowledged_by(core, host, services) or None, 90, "the chosen line acknowledged in status.dat"
        )
        assert acknowledged_by(core, host, services) == {single: "asmith"}

        def realigned() -> dict[str, Any] | None:
            now = next(m for m in stack.messages() if m["id"] == first["id"])
            menus = [b for b in now["rendered"]["buttons"] if b["options"]]
            return now if menus and len(menus[0]["options"]) == open_before - 1 else None

        first = core.wait_for(realigned, 90, "the digest's buttons without the acknowledged line")
        assert single not in json.dumps(menu_of(first)["options"])
        assert ack_all_button(first)["label"] == f"Acknowledge all {open_before - 1}"
        parts = [first, *parts[1:]]

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
    print(
        f"\n{chat}: {len(in_digests)} problems in {len(parts)} digest part(s): one chosen, the rest in one click each"
    )
    assert found == {service: "asmith" if service == single else "jdoe" for service in in_digests}
