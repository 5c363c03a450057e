"""`alertq ack-listener` as a real process on the real broker: clicks in, `alertq.ack/1` out.

A click is queued only when everything checks out; every refusal leaves `alertq.acks` empty and says
why without repeating a secret, in the answer or in the process's log.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests
from pytest_httpserver import HTTPServer
from slack_sdk.signature import SignatureVerifier

from broker import names
from schemas.ack import AckMessage
from schemas.ack_token import make_digest_token, sign_incident, verify_digest_token
from schemas.settings import Settings
from tests.support import amqp
from tests.support.ack_processes import SIGNING_SECRET, SLACK_SECRET, Running, ack_listener
from tests.support.rabbit import PrivateNode, free_port
from tests.unit.test_mattermost_digest import FakeApi, actions_of, storms_on
from tests.unit.test_storms import problem

BODY_LIMIT = 4096


@pytest.fixture
def listener(declared: Settings, alertq_env: dict[str, str], tmp_path: Path) -> Iterator[Running]:
    with ack_listener(
        alertq_env,
        tmp_path / "listener.log",
        free_port(),
        slack_signing_secret=SLACK_SECRET,
        allowed_users="jdoe,asmith",
        body_limit=str(BODY_LIMIT),
    ) as running:
        yield running


def token(host: str = "web01", service: str | None = "disk", secret: str = SIGNING_SECRET, ttl: int = 600) -> str:
    return sign_incident(secret, host_id=host, service_id=service, event_id="evt-1", now=time.time(), ttl=ttl)


def mattermost_click(user: str, button_token: str) -> dict[str, Any]:
    """What Mattermost POSTs to the action's integration URL."""
    return {
        "user_id": "u1xq7", "user_name": user, "channel_id": "c1", "channel_name": "ops", "team_id": "t1",
        "team_domain": "example", "post_id": "p42", "trigger_id": "tr1", "type": "button",
        "context": {"action": "ack", "token": button_token},
    }  # fmt: skip


def slack_form(user: str, button_token: str, response_url: str = "https://hooks.slack.invalid/actions/x") -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": "U1", "username": user, "name": user},
        "response_url": response_url,
        "actions": [{"action_id": "alertq_ack", "value": button_token, "type": "button"}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def slack_headers(body: bytes, secret: str = SLACK_SECRET, age: float = 0) -> dict[str, str]:
    timestamp = str(int(time.time() - age))
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signature is not None
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature,
    }


def test_a_mattermost_click_queues_the_ack_and_answers_with_the_update(listener: Running, amqp_url: str) -> None:
    answer = requests.post(f"{listener.url}/mattermost/actions", json=mattermost_click("jdoe", token()), timeout=10)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "update": {
            "message": "Acknowledgement by @jdoe sent via alertq: waiting for the monitoring core to confirm.",
            "props": {},
        }
    }
    [message] = amqp.take(amqp_url, names.ACKS_QUEUE, count=1, timeout=10)
    assert message.routing_key == "ack.mattermost"
    ack = AckMessage.model_validate_json(message.body)
    assert message.properties.message_id == ack.ack_id
    assert (ack.schema_, ack.source, ack.chat_user, ack.author) == ("alertq.ack/1", "mattermost", "jdoe", "jdoe")
    assert (ack.kind, ack.host_id, ack.service_id, ack.event_id) == ("service", "web01", "disk", "evt-1")
    assert (ack.sticky, ack.notify, ack.persistent) == (True, True, True)
    assert ack.comment == "Acknowledged in Mattermost by jdoe via alertq"
    assert (ack.reply.channel_name, ack.reply.post_id) == ("ops", "p42")
    # The escalator hears of it too (bound to alertq.acks).
    assert amqp.wait_depth(amqp_url, names.ESCALATOR_QUEUE, 1, timeout=10) == 1


def test_a_signed_slack_click_is_queued_and_the_message_replaced(
    listener: Running, amqp_url: str, httpserver: HTTPServer
) -> None:
    httpserver.expect_oneshot_request("/actions/T1/reply", method="POST").respond_with_data("ok")
    body = slack_form("asmith", token(service=None), response_url=httpserver.url_for("/actions/T1/reply"))

    answer = requests.post(f"{listener.url}/slack/actions", data=body, headers=slack_headers(body), timeout=10)

    assert answer.status_code == 200, answer.text
    [message] = amqp.take(amqp_url, names.ACKS_QUEUE, count=1, timeout=10)
    ack = AckMessage.model_validate_json(message.body)
    assert (ack.source, ack.chat_user, ack.kind) == ("slack", "asmith", "host")
    assert (ack.host_id, ack.service_id) == ("web01", None)
    assert ack.reply.response_url == httpserver.url_for("/actions/T1/reply")
    deadline = time.monotonic() + 10
    while not httpserver.log and time.monotonic() < deadline:
        time.sleep(0.05)
    [(request, _)] = httpserver.log
    assert request.get_json() == {
        "replace_original": True,
        "text": "Acknowledgement by @asmith sent via alertq: waiting for the monitoring core to confirm.",
    }


def test_refused_clicks_queue_nothing_and_never_show_a_secret(listener: Running, amqp_url: str) -> None:
    mm = f"{listener.url}/mattermost/actions"
    good = token()
    claims, signature = good.split(".")[1:]
    tampered_claims = good.replace(claims, claims[:-2] + ("AA" if claims[-2:] != "AA" else "BB"))
    signed_old = slack_form("jdoe", good)
    cases: list[tuple[str, requests.Response, int]] = [
        ("forged", requests.post(mm, json=mattermost_click("jdoe", token(secret="not-the-secret")), timeout=10), 401),
        ("expired", requests.post(mm, json=mattermost_click("jdoe", token(ttl=-5)), timeout=10), 401),
        ("tampered", requests.post(mm, json=mattermost_click("jdoe", tampered_claims), timeout=10), 401),
        ("garbage token", requests.post(mm, json=mattermost_click("jdoe", "v1.x.y"), timeout=10), 401),
        ("not allowed", requests.post(mm, json=mattermost_click("mallory", good), timeout=10), 403),
        ("not json", requests.post(mm, data=b"{nope", timeout=10), 400),
        ("no token", requests.post(mm, json={"user_name": "jdoe", "context": {}}, timeout=10), 400),
        ("empty", requests.post(mm, data=b"", timeout=10), 400),
        ("oversized", requests.post(mm, data=b"x" * (BODY_LIMIT + 1), timeout=10), 413),
        (
            "oversized chunked",
            requests.post(mm, data=iter([b"y" * 1024] * (BODY_LIMIT // 1024 + 2)), timeout=10),
            413,
        ),
        (
            "slack wrong signature",
            requests.post(
                f"{listener.url}/slack/actions",
                data=signed_old,
                headers=slack_headers(signed_old, secret="wrong-secret"),
                timeout=10,
            ),
            401,
        ),
        (
            "slack replayed 6 min later",
            requests.post(
                f"{listener.url}/slack/actions", data=signed_old, headers=slack_headers(signed_old, age=360), timeout=10
            ),
            401,
        ),
        (
            "slack unsigned",
            requests.post(f"{listener.url}/slack/actions", data=signed_old, timeout=10),
            401,
        ),
    ]
    for name, answer, expected in cases:
        assert answer.status_code == expected, f"{name}: {answer.status_code} {answer.text}"
        error = answer.json()["error"]
        assert error and "\n" not in error, name
        for secret in (SIGNING_SECRET, SLACK_SECRET, signature):
            assert secret not in answer.text, f"{name} shows a secret"
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0
    assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 0
    log = listener.log_text()
    assert log.count("ack_listener.refused") == len(cases)
    for secret in (SIGNING_SECRET, SLACK_SECRET, signature):
        assert secret not in log


def test_openapi_describes_exactly_the_served_endpoints(listener: Running) -> None:
    spec = requests.get(f"{listener.url}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.")
    described = {(path, method.upper()) for path, ops in spec["paths"].items() for method in ops}
    from ack_listener.app import create_app

    app = create_app(Settings(), publisher=None)  # type: ignore[arg-type]  # routes only, nothing is served
    served = {(route.path, m) for route in app.routes for m in (route.methods or ()) if m != "HEAD"}  # type: ignore[attr-defined]
    assert described == served
    for path, method in described:
        assert requests.request(method, f"{listener.url}{path}", timeout=10).status_code != 404


def test_with_the_broker_unreachable_a_click_is_refused_503_and_can_be_retried(
    alertq_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**alertq_env, "ALERTQ_BROKER__URLS": f"amqp://guest:hunter2@127.0.0.1:{free_port()}/"}
    with ack_listener(env, tmp_path / "listener.log", free_port()) as running:
        answer = requests.post(f"{running.url}/mattermost/actions", json=mattermost_click("jdoe", token()), timeout=10)
    assert answer.status_code == 503
    assert "try again" in answer.json()["error"]
    assert "hunter2" not in answer.text + running.log_text()


@pytest.mark.slow
@pytest.mark.privatebroker
def test_the_listener_publishes_again_after_a_broker_restart(
    private_node: PrivateNode, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    env = {**alertq_env, "ALERTQ_BROKER__URLS": private_node.url}
    with ack_listener(env, tmp_path / "listener.log", free_port()) as running:
        first, second = mattermost_click("jdoe", token(host="web01")), mattermost_click("jdoe", token(host="web02"))
        assert requests.post(f"{running.url}/mattermost/actions", json=first, timeout=10).status_code == 200
        private_node.stop()
        assert requests.post(f"{running.url}/mattermost/actions", json=second, timeout=10).status_code == 503
        private_node.start()
        # The click that could not be queued was not used up: clicked again, it goes through.
        assert requests.post(f"{running.url}/mattermost/actions", json=second, timeout=10).status_code == 200
    acks = amqp.take(private_node.url, names.ACKS_QUEUE, count=2, timeout=30)
    assert [AckMessage.model_validate_json(m.body).chat_user for m in acks] == ["jdoe", "jdoe"]


def _respelled(token_text: str) -> list[str]:
    """The same signature bytes (or nearly) spelled otherwise: what a lenient base64 decoder accepts."""
    version, body, signature = token_text.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare_bit = alphabet[alphabet.index(signature[-1]) ^ 1]  # 43 characters for 32 bytes: 2 spare bits
    standard = signature.replace("-", "+").replace("_", "/")
    spellings = [
        signature[:-1] + spare_bit,
        signature + "==",
        signature[:10] + "*" + signature[10:],
        signature[:10] + "%" + signature[10:],
        signature + "=" + "A",
    ]
    if standard != signature:
        spellings.append(standard)
    return [f"{version}.{body}.{spelling}" for spelling in spellings]


def test_re_encoded_tokens_are_refused_401_and_queue_nothing(listener: Running, amqp_url: str) -> None:
    mm = f"{listener.url}/mattermost/actions"
    tried = 0
    for event in range(50):  # until one signature has both - and _ (its standard spelling has + and /)
        good = sign_incident(
            SIGNING_SECRET, host_id="web01", service_id="disk", event_id=f"evt-{event}", now=time.time(), ttl=600
        )
        for spelling in _respelled(good):
            answer = requests.post(mm, json=mattermost_click("jdoe", spelling), timeout=10)
            assert answer.status_code == 401, f"{spelling}: {answer.status_code} {answer.text}"
            assert answer.json()["error"] == "the button's token is not valid (malformed token)"
            tried += 1
        if "-" in good.split(".")[2] and "_" in good.split(".")[2]:
            break
    assert tried >= 6
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0


def test_a_button_made_before_problem_binding_is_refused_with_a_reason(listener: Running, amqp_url: str) -> None:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    # The v1 format, genuinely signed: host, service, event, expiry and nothing about the problem.
    claims = b64(json.dumps({"e": "evt-1", "h": "web01", "s": "disk", "x": int(time.time()) + 600}).encode())
    v1 = f"v1.{claims}.{b64(hmac.new(SIGNING_SECRET.encode(), f'v1.{claims}'.encode(), hashlib.sha256).digest())}"

    answer = requests.post(f"{listener.url}/mattermost/actions", json=mattermost_click("jdoe", v1), timeout=10)

    assert answer.status_code == 401
    assert "older alertq (token format v1, not bound to one problem)" in answer.json()["error"]
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0
    assert "Traceback" not in listener.log_text()


def test_a_user_name_that_names_nobody_is_refused_not_acknowledged_anonymously(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    # No allow-list (the default): anyone who sees the button may click, so only this check stands
    # between such a name and an acknowledgement with an empty author.
    log = tmp_path / "listener.log"
    with ack_listener(alertq_env, log, free_port(), slack_signing_secret=SLACK_SECRET) as running:
        for user in (";;;", "   ", "; ;\n;", "\t\r\n", "\u200b\u00a0", ";\x00;"):
            click = mattermost_click(user, token(host=f"web-{user.encode().hex()}"))
            mm = requests.post(f"{running.url}/mattermost/actions", json=click, timeout=10)
            body = slack_form(user, token(host=f"web-{user.encode().hex()}"))
            slack = requests.post(f"{running.url}/slack/actions", data=body, headers=slack_headers(body), timeout=10)

            assert (mm.status_code, slack.status_code) == (400, 400), f"{user!r}: {mm.text} {slack.text}"
            assert mm.json()["error"].startswith("user_name is empty once ';', line breaks and blanks are taken out")
            assert slack.json()["error"].startswith("payload.user.username is empty once")
        # A name with something left in it is still taken.
        fine = requests.post(f"{running.url}/mattermost/actions", json=mattermost_click(";jdoe;", token()), timeout=10)
        assert fine.status_code == 200, fine.text
    [message] = amqp.take(amqp_url, names.ACKS_QUEUE, count=1, timeout=10)
    assert AckMessage.model_validate_json(message.body).chat_user == ";jdoe;"


def test_a_choice_in_a_mattermost_digest_menu_acknowledges_that_one_line(
    listener: Running, amqp_url: str, tmp_path: Path
) -> None:
    """A worker's Mattermost digest (its store is the listener's `conversations.store`): choosing one line
    in the menu queues one `alertq.ack/1`, for that line's problem; a forged option queues nothing."""
    api = FakeApi()
    storms = storms_on(api, time.time, f"sqlite:///{tmp_path}/conversations.db", secret=SIGNING_SECRET)
    problems = [problem(n) for n in range(5)]
    storms.fold(problems)
    [post_id] = api.posts
    menu = actions_of(api.posts[post_id])["ackitem"]
    option = menu["options"][3]
    assert option["text"] == "web03 / Disk /"

    def choose(value: str, user: str = "jdoe") -> requests.Response:
        click = {**mattermost_click(user, ""), "post_id": post_id, "type": "select"}
        click["context"] = {**menu["integration"]["context"], "selected_option": value}
        return requests.post(f"{listener.url}/mattermost/actions", json=click, timeout=10)

    claims = verify_digest_token(SIGNING_SECRET, option["value"], now=time.time())
    forged = make_digest_token("another-secret-0123456789abcdef0123", claims)
    assert choose(forged).status_code == 401
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0

    answer = choose(option["value"])
    assert answer.status_code == 200, answer.text
    assert "@jdoe" in answer.json()["update"]["message"]
    acks = [AckMessage.model_validate_json(m.body) for m in amqp.take(amqp_url, names.ACKS_QUEUE, timeout=10, settle=2)]
    assert [(a.host_id, a.service_id, a.event_id) for a in acks] == [("h3", "s3", problems[3].event_id)]
    assert (acks[0].source, acks[0].chat_user, acks[0].reply.post_id) == ("mattermost", "jdoe", post_id)
