"""Snooze, Recheck now and Unacknowledge buttons at a real `alertq ack-listener` on the real broker,
refused as the Acknowledge button is: forged, expired, altered (another action or another object) and
users not allowed for that action; only what checks out is queued, and it names the token's object."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from broker import names
from schemas.ack import AckMessage
from schemas.ack_token import sign_incident
from schemas.actions import ACTIONS, Action
from schemas.settings import Settings
from tests.support import amqp
from tests.support.ack_processes import SIGNING_SECRET, Running, ack_listener
from tests.support.rabbit import free_port


@pytest.fixture
def listener(declared: Settings, alertq_env: dict[str, str], tmp_path: Path) -> Iterator[Running]:
    per_action = {
        "allowed_users": "jdoe,asmith",  # acknowledge
        "snooze_allowed_users": "jdoe",
        "recheck_allowed_users": "",  # anyone
        "unacknowledge_allowed_users": "asmith",
    }
    with ack_listener(alertq_env, tmp_path / "listener.log", free_port(), **per_action) as running:
        yield running


def token(
    action: Action, host: str = "web01", secret: str = SIGNING_SECRET, now: float | None = None, **more: str
) -> str:
    return sign_incident(
        secret,
        host_id=host,
        service_id="disk",
        event_id=more.get("event_id", f"e-{action}-{time.monotonic_ns()}"),
        now=time.time() if now is None else now,
        ttl=600,
        problem_since=time.time() - 60,
        action=action,
        snooze="4h" if action == "snooze" else None,
    )


def post(listener: Running, button: str, user: str = "jdoe", **context: str) -> requests.Response:
    body = {"user_name": user, "channel_name": "ops", "post_id": "p1", "context": {"token": button, **context}}
    return requests.post(f"{listener.url}/mattermost/actions", json=body, timeout=10)


def with_claims(button: str, **changes: object) -> str:
    """The token with its claims changed and its signature kept: what a forger can make without the secret."""
    version, body, signature = button.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    raw = json.dumps(claims, separators=(",", ":"), sort_keys=True).encode()
    return f"{version}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}.{signature}"


@pytest.mark.parametrize("action", [a for a in ACTIONS if a != "acknowledge"])
def test_forged_expired_and_altered_buttons_are_refused_and_nothing_is_queued(
    listener: Running, amqp_url: str, action: Action
) -> None:
    user = {"snooze": "jdoe", "recheck": "anyone", "unacknowledge": "asmith"}[action]
    genuine = token(action)
    refusals = {
        "forged": token(action, secret="not-the-signing-secret-0123456789"),
        "expired": token(action, now=time.time() - 601),
        "another object": with_claims(genuine, h="db01"),
        "another action": with_claims(genuine, a="unacknowledge" if action != "unacknowledge" else "recheck"),
        "an acknowledge": with_claims(genuine, a=None),
        "a longer snooze": with_claims(genuine, d="366d") if action == "snooze" else with_claims(genuine, d="1h"),
    }
    for what, button in refusals.items():
        answer = post(listener, button, user)
        assert answer.status_code == 401, (what, answer.text)
        assert "not valid" in answer.json()["error"] and button not in answer.text and SIGNING_SECRET not in answer.text
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0

    # The genuine button, with a context naming another object: the token's object and action are queued.
    assert post(listener, genuine, user, host_id="db01", action="ack").status_code == 200
    [message] = amqp.take(amqp_url, names.ACKS_QUEUE, count=1, timeout=10)
    queued = AckMessage.model_validate_json(message.body)
    assert (queued.action, queued.host_id, queued.service_id, queued.chat_user) == (action, "web01", "disk", user)
    assert queued.schema_ == "alertq.ack/2"
    assert "Traceback" not in listener.log_text()


def test_each_action_has_its_own_allowed_users(listener: Running, amqp_url: str) -> None:
    expected: dict[tuple[Action, str], int] = {
        ("acknowledge", "jdoe"): 200,
        ("acknowledge", "mallory"): 403,
        ("snooze", "jdoe"): 200,
        ("snooze", "asmith"): 403,  # may acknowledge, may not snooze
        ("recheck", "mallory"): 200,  # an empty list: anyone
        ("unacknowledge", "jdoe"): 403,
        ("unacknowledge", "asmith"): 200,
    }
    seen: dict[tuple[Action, str], int] = {}
    for (action, user), _ in expected.items():
        answer = post(listener, token(action), user)
        seen[(action, user)] = answer.status_code
        if answer.status_code == 403:
            assert answer.json() == {"error": f"user {user!r} may not {action}"}
    assert seen == expected
    queued = amqp.take(amqp_url, names.ACKS_QUEUE, count=4, timeout=10)
    actions = sorted(AckMessage.model_validate_json(m.body).action for m in queued)
    assert actions == ["acknowledge", "recheck", "snooze", "unacknowledge"]
    assert amqp.take(amqp_url, names.ACKS_QUEUE, timeout=1) == []


def test_a_second_click_of_one_snooze_sends_one_downtime(listener: Running, amqp_url: str) -> None:
    button = token("snooze", event_id="e-snooze-once")
    first, second = post(listener, button), post(listener, button)
    assert first.status_code == second.status_code == 200
    assert "Snooze (4h) by @jdoe sent" in first.json()["ephemeral_text"]
    assert "clicked this already" in second.json()["ephemeral_text"]
    [message] = amqp.take(amqp_url, names.ACKS_QUEUE, count=1, timeout=10)
    snooze = AckMessage.model_validate_json(message.body)
    assert snooze.downtime_start is not None and snooze.downtime_end is not None
    assert (snooze.downtime_end - snooze.downtime_start).total_seconds() == pytest.approx(4 * 3600, abs=1)
    assert amqp.take(amqp_url, names.ACKS_QUEUE, timeout=1) == []
