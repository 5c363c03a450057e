"""`alertq sink`'s emulation of the Mattermost REST API v4 and the Slack Web API, as API clients meet
it: a real sink process, real HTTP calls (requests for Mattermost, slack_sdk.WebClient for Slack),
the answers and error shapes of the reference (../shared/reference/chat-apis.md), the recorded calls
(GET /api/calls), and the page showing threads and edits."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from werkzeug import Request, Response

from alertq.cli import main
from tests.conftest import require
from tests.support.sink import Sink, chromium, run_chromium, sinks

BOT_TOKEN = "mm-bot-token-s3cr3t"
SLACK_TOKEN = "xoxb-slack-token-s3cr3t"
MATTERMOST_ERROR_KEYS = {"id", "message", "detailed_error", "request_id", "status_code", "is_oauth"}
MATTERMOST_ID = re.compile(r"^[a-z0-9]{26}$")
SLACK_TS = re.compile(r"^\d{10}\.\d{6}$")


@pytest.fixture
def start_sink(tmp_path: Path) -> Iterator[Callable[..., Sink]]:
    with sinks(tmp_path) as start:
        yield start


@pytest.fixture
def sink(start_sink: Callable[..., Sink]) -> Sink:
    return start_sink()


class Mattermost:
    """A minimal Mattermost API v4 client: what alertq's will send, with the answer unparsed."""

    def __init__(self, sink: Sink, token: str | None = BOT_TOKEN) -> None:
        self.base = sink.mattermost_api()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str) -> requests.Response:
        return requests.get(self.base + path, headers=self.headers, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return requests.post(self.base + path, json=body, headers=self.headers, timeout=10)

    def put(self, path: str, body: Any) -> requests.Response:
        return requests.put(self.base + path, json=body, headers=self.headers, timeout=10)

    def channel_id(self, team: str, channel: str) -> str:
        response = self.get(f"/teams/name/{team}/channels/name/{channel}")
        assert response.status_code == 200, response.text
        found: str = response.json()["id"]
        return found


def problem_props(ack_url: str = "http://127.0.0.1:9/mattermost/actions") -> dict[str, Any]:
    return {
        "attachments": [
            {
                "color": "#d9534f",
                "text": "PING CRITICAL - Packet loss = 100%",
                "fields": [{"title": "State", "value": "DOWN", "short": True}],
                "actions": [
                    {
                        "id": "ack",
                        "name": "Acknowledge",
                        "integration": {"url": ack_url, "context": {"token": "signed-token"}},
                    }
                ],
            }
        ]
    }


def slack_blocks(title: str, with_button: bool = True) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*DISK CRITICAL* - / 97% used"}},
    ]
    if with_button:
        blocks.append(
            {
                "type": "actions",
                "block_id": "alertq_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "alertq_ack",
                        "value": "signed-slack-token",
                        "text": {"type": "plain_text", "text": "Acknowledge"},
                    }
                ],
            }
        )
    return blocks


def assert_mattermost_error(response: requests.Response, status: int, error_id: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == MATTERMOST_ERROR_KEYS
    assert (body["id"], body["status_code"], body["is_oauth"]) == (error_id, status, False)
    assert body["message"]
    assert body["request_id"] == response.headers["X-Request-Id"]


def slack_error(call: Callable[[], Any]) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        call()
    return raised.value


# --- Mattermost ----------------------------------------------------------------------------------


def test_mattermost_conversation_post_reply_and_edit_answer_as_the_server(sink: Sink) -> None:
    api = Mattermost(sink)
    me = api.get("/users/me")
    assert me.status_code == 200
    bot = me.json()
    assert (bot["username"], bot["is_bot"]) == ("alertq", True)
    channel_id = api.channel_id("ops", "alerts")
    assert MATTERMOST_ID.match(channel_id)

    created = api.post(
        "/posts", {"channel_id": channel_id, "message": "PROBLEM: web01 is DOWN", "props": problem_props()}
    )
    assert created.status_code == 201, created.text
    root = created.json()
    assert MATTERMOST_ID.match(root["id"])
    assert (root["channel_id"], root["user_id"], root["root_id"]) == (channel_id, bot["id"], "")
    assert (root["edit_at"], root["delete_at"], root["message"]) == (0, 0, "PROBLEM: web01 is DOWN")
    assert root["props"]["from_bot"] == "true"
    # The action's integration (its context holds the signed token) is kept from clients, its id is not.
    [action] = root["props"]["attachments"][0]["actions"]
    assert action == {"id": "ack", "name": "Acknowledge"}

    replies = [
        api.post("/posts", {"channel_id": channel_id, "message": text, "root_id": root["id"]})
        for text in ("Re-notification 2", "Escalated (step 1): @alice")
    ]
    assert [r.status_code for r in replies] == [201, 201]
    assert [r.json()["root_id"] for r in replies] == [root["id"], root["id"]]

    acked_props = {"attachments": [{"color": "#1895f5", "text": "Acknowledged by @alice: on it"}]}
    patched = api.put(f"/posts/{root['id']}/patch", {"message": "ACKNOWLEDGED: web01 is DOWN", "props": acked_props})
    assert patched.status_code == 200, patched.text
    edited = patched.json()
    assert edited["id"] == root["id"]
    assert edited["edit_at"] > 0
    assert edited["props"] == {**acked_props, "from_bot": "true"}  # a props value replaces the whole map

    fetched = api.get(f"/posts/{root['id']}")
    assert fetched.status_code == 200
    assert fetched.json()["message"] == "ACKNOWLEDGED: web01 is DOWN"
    assert fetched.json()["reply_count"] == 2

    # A props-only patch changes the post but not edit_at: the chat shows no new "Edited".
    recovered = api.put(f"/posts/{root['id']}/patch", {"props": {"attachments": [{"color": "#5cb85c"}]}})
    assert recovered.json()["edit_at"] == edited["edit_at"]
    assert recovered.json()["message"] == "ACKNOWLEDGED: web01 is DOWN"

    calls = sink.calls("mattermost")
    assert [(c["method"], c["path"], c["status"]) for c in calls] == [
        ("GET", "/api/v4/users/me", 200),
        ("GET", "/api/v4/teams/name/ops/channels/name/alerts", 200),
        ("POST", "/api/v4/posts", 201),
        ("POST", "/api/v4/posts", 201),
        ("POST", "/api/v4/posts", 201),
        ("PUT", f"/api/v4/posts/{root['id']}/patch", 200),
        ("GET", f"/api/v4/posts/{root['id']}", 200),
        ("PUT", f"/api/v4/posts/{root['id']}/patch", 200),
    ]
    assert calls[2]["body"] == {"channel_id": channel_id, "message": "PROBLEM: web01 is DOWN", "props": problem_props()}
    assert calls[3]["body"] == {"channel_id": channel_id, "message": "Re-notification 2", "root_id": root["id"]}
    assert calls[2]["answer"]["id"] == root["id"]
    assert all(c["authorized"] for c in calls)
    assert BOT_TOKEN not in json.dumps(calls)

    kept = sink.messages(channel="mattermost")
    assert [(m["api"]["id"], m["api"]["root"], m["api"]["edited"]) for m in kept] == [
        (root["id"], None, True),
        (replies[0].json()["id"], kept[0]["id"], False),
        (replies[1].json()["id"], kept[0]["id"], False),
    ]
    assert kept[0]["api"]["channel_name"] == "ops/alerts"
    assert kept[0]["rendered"]["colour"] == "#5cb85c"


def test_mattermost_direct_message_to_a_user(sink: Sink) -> None:
    api = Mattermost(sink)
    bot = api.get("/users/me").json()
    alice = api.get("/users/username/alice")
    assert alice.status_code == 200
    assert alice.json()["username"] == "alice"

    direct = api.post("/channels/direct", [bot["id"], alice.json()["id"]])

    assert direct.status_code == 201, direct.text
    channel = direct.json()
    assert channel["type"] == "D"
    assert channel["name"] == "__".join(sorted((bot["id"], alice.json()["id"])))
    again = api.post("/channels/direct", [alice.json()["id"], bot["id"]])
    assert again.json()["id"] == channel["id"]
    posted = api.post("/posts", {"channel_id": channel["id"], "message": "Escalated to you"})
    assert posted.status_code == 201
    [message] = sink.messages()
    assert message["api"]["channel_name"] == "@alice"


def test_mattermost_create_with_a_pending_post_id_seen_before_answers_the_first_post(sink: Sink) -> None:
    api = Mattermost(sink)
    channel = api.channel_id("ops", "alerts")
    body = {"channel_id": channel, "message": "PROBLEM web01", "pending_post_id": "alertq-key-1"}

    first, again = api.post("/posts", body), api.post("/posts", body)
    other = api.post("/posts", {**body, "pending_post_id": "alertq-key-2"})

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert other.json()["id"] != first.json()["id"]
    assert len(sink.messages()) == 2


def test_mattermost_errors_have_the_servers_status_and_shape(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(
        mattermost__tokens=BOT_TOKEN,
        mattermost__channels="ops/alerts,ops/quiet",
        mattermost__not_member="ops/quiet",
        mattermost__users="alice",
    )
    api = Mattermost(sink)
    alerts = api.channel_id("ops", "alerts")
    quiet = api.channel_id("ops", "quiet")  # the lookup works for a team member who is not in the channel
    root = api.post("/posts", {"channel_id": alerts, "message": "PROBLEM"}).json()
    reply = api.post("/posts", {"channel_id": alerts, "message": "again", "root_id": root["id"]}).json()

    # Authentication.
    assert_mattermost_error(
        Mattermost(sink, "wrong-token").get("/users/me"), 401, "api.context.session_expired.app_error"
    )
    assert_mattermost_error(Mattermost(sink, None).post("/posts", {}), 401, "api.context.session_expired.app_error")
    # Names that do not exist.
    assert_mattermost_error(
        api.get("/teams/name/ops/channels/name/nope"), 404, "app.channel.get_by_name.missing.app_error"
    )
    assert_mattermost_error(
        api.get("/teams/name/dev/channels/name/alerts"), 404, "app.team.get_by_name.missing.app_error"
    )
    assert_mattermost_error(api.get("/users/username/mallory"), 404, "app.user.get_by_username.app_error")
    # Posting where the bot is not a member, or in no channel at all: the permission check answers first.
    assert_mattermost_error(
        api.post("/posts", {"channel_id": quiet, "message": "x"}), 403, "api.context.permissions.app_error"
    )
    assert_mattermost_error(
        api.post("/posts", {"channel_id": "a" * 26, "message": "x"}), 403, "api.context.permissions.app_error"
    )
    # Replies must name a root of the same channel.
    bad_root = "api.post.create_post.root_id.app_error"
    assert_mattermost_error(
        api.post("/posts", {"channel_id": alerts, "message": "x", "root_id": reply["id"]}), 400, bad_root
    )
    assert_mattermost_error(
        api.post("/posts", {"channel_id": alerts, "message": "x", "root_id": "b" * 26}), 400, bad_root
    )
    # MaxPostSize counts runes, not bytes: 16383 two-byte runes pass, one more does not, on create and patch.
    too_long = "model.post.is_valid.message_length.app_error"
    assert api.post("/posts", {"channel_id": alerts, "message": "é" * 16383}).status_code == 201
    assert_mattermost_error(api.post("/posts", {"channel_id": alerts, "message": "é" * 16384}), 400, too_long)
    assert_mattermost_error(api.put(f"/posts/{root['id']}/patch", {"message": "é" * 16384}), 400, too_long)
    # A post that does not exist: 404 to read, 403 to edit (as the server's patchPost answers).
    assert_mattermost_error(api.get("/posts/" + "c" * 26), 404, "app.post.get.app_error")
    assert_mattermost_error(
        api.put("/posts/" + "c" * 26 + "/patch", {"message": "x"}), 403, "api.context.permissions.app_error"
    )
    assert_mattermost_error(api.get("/posts/not-an-id"), 400, "api.context.invalid_url_param.app_error")
    assert_mattermost_error(api.get("/no/such/route"), 404, "api.context.404.app_error")

    # Someone deletes the root in the chat: it is gone for the API too.
    [kept_root] = [m for m in sink.messages() if m["api"]["id"] == root["id"]]
    assert requests.delete(f"{sink.url}/api/messages/{kept_root['id']}", timeout=10).status_code == 200
    assert_mattermost_error(api.get(f"/posts/{root['id']}"), 404, "app.post.get.app_error")
    assert_mattermost_error(
        api.put(f"/posts/{root['id']}/patch", {"message": "x"}), 403, "api.context.permissions.app_error"
    )
    assert_mattermost_error(api.get(f"/posts/{reply['id']}"), 404, "app.post.get.app_error")  # its thread went with it

    assert BOT_TOKEN not in json.dumps(sink.calls())
    assert not any(c["authorized"] for c in sink.calls() if c["status"] == 401)
    sink.process.terminate()
    sink.process.wait(30)
    assert BOT_TOKEN not in sink.log.read_text()


def test_mattermost_rate_limit_answers_429_only_beyond_the_burst(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(
        mattermost__rate_limit__requests="1",
        mattermost__rate_limit__seconds="3600",
        mattermost__rate_limit__max_burst="4",
    )
    api = Mattermost(sink)

    allowed = [api.get("/users/me") for _ in range(5)]
    refused = api.get("/users/me")

    assert [r.status_code for r in allowed] == [200] * 5
    assert [r.headers["X-Ratelimit-Limit"] for r in allowed] == ["5"] * 5
    assert [r.headers["X-Ratelimit-Remaining"] for r in allowed] == ["4", "3", "2", "1", "0"]
    assert refused.status_code == 429
    assert refused.text == "limit exceeded\n"
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert int(refused.headers["Retry-After"]) > 0
    assert int(refused.headers["X-Ratelimit-Reset"]) > 0
    assert refused.headers["X-Ratelimit-Remaining"] == "0"
    # The budget is per token.
    assert Mattermost(sink, "another-token").get("/users/me").status_code == 200
    assert [c["status"] for c in sink.calls()] == [200] * 5 + [429, 200]


def test_mattermost_rate_limit_lets_the_call_through_after_retry_after(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(
        mattermost__rate_limit__requests="1", mattermost__rate_limit__seconds="1", mattermost__rate_limit__max_burst="0"
    )
    api = Mattermost(sink)
    assert api.get("/users/me").status_code == 200
    refused = api.get("/users/me")
    assert refused.status_code == 429

    time.sleep(int(refused.headers["Retry-After"]))

    assert api.get("/users/me").status_code == 200


# --- Slack ---------------------------------------------------------------------------------------


def test_slack_conversation_through_the_web_client(start_sink: Callable[..., Sink]) -> None:
    # Faster than Slack's 1 post per second per channel; the limit has tests of its own.
    sink = start_sink(slack__post_rate_limit__enabled="false")
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())
    who = client.auth_test()
    assert (who["ok"], who["user_id"], who["bot_id"]) == (True, "U0SINKBOT1", "B0SINKBOT1")

    root = client.chat_postMessage(
        channel="C0ALERTS", text="PROBLEM: web01 / disk", blocks=slack_blocks("PROBLEM: web01 / disk")
    )
    assert (root["ok"], root["channel"]) == (True, "C0ALERTS")
    assert SLACK_TS.match(root["ts"])
    assert root["message"]["ts"] == root["ts"]
    assert root["message"]["bot_id"] == "B0SINKBOT1"
    assert [b["type"] for b in root["message"]["blocks"]] == ["header", "section", "actions"]
    assert all(b["block_id"] for b in root["message"]["blocks"])

    replies = [
        client.chat_postMessage(channel="C0ALERTS", text=t, thread_ts=root["ts"])
        for t in ("Re-notification", "Escalated: <@U0ALICE>")
    ]
    assert [r["message"]["thread_ts"] for r in replies] == [root["ts"], root["ts"]]
    # ts are unique and increasing within the channel.
    stamps = [root["ts"], *(r["ts"] for r in replies)]
    assert len(set(stamps)) == 3
    assert stamps == sorted(stamps, key=lambda ts: tuple(int(p) for p in ts.split(".")))

    # A reply to a reply lands in the root's thread (Slack threads one level only).
    nested = client.chat_postMessage(channel="C0ALERTS", text="nested", thread_ts=replies[0]["ts"])
    assert nested["message"]["thread_ts"] == root["ts"]

    updated = client.chat_update(
        channel="C0ALERTS",
        ts=root["ts"],
        text="ACKNOWLEDGED: web01 / disk",
        blocks=slack_blocks("ACKNOWLEDGED", with_button=False),
    )
    assert (updated["ok"], updated["channel"], updated["ts"], updated["text"]) == (
        True,
        "C0ALERTS",
        root["ts"],
        "ACKNOWLEDGED: web01 / disk",
    )
    assert updated["message"]["edited"]["user"] == "U0SINKBOT1"
    assert [b["type"] for b in updated["message"]["blocks"]] == ["header", "section"]

    # Text only: omitted blocks go (they are kept only when text is omitted too); attachments stay.
    with_attachment = client.chat_postMessage(
        channel="C0ALERTS", text="x", attachments=[{"color": "#d9534f", "text": "a"}]
    )
    text_only = client.chat_update(channel="C0ALERTS", ts=root["ts"], text="RECOVERY")
    assert "blocks" not in text_only["message"]
    kept = client.chat_update(channel="C0ALERTS", ts=with_attachment["ts"], text="y")
    assert kept["message"]["attachments"][0]["text"] == "a"
    removed = client.chat_update(channel="C0ALERTS", ts=with_attachment["ts"], text="z", attachments=[])
    assert "attachments" not in removed["message"]

    calls = sink.calls("slack")
    assert [(c["method"], c["path"], c["status"], c["error"]) for c in calls[:5]] == [
        ("POST", "/api/auth.test", 200, None),
        ("POST", "/api/chat.postMessage", 200, None),
        ("POST", "/api/chat.postMessage", 200, None),
        ("POST", "/api/chat.postMessage", 200, None),
        ("POST", "/api/chat.postMessage", 200, None),
    ]
    # WebClient sends these methods as JSON; the body is recorded as sent.
    assert calls[1]["content_type"] == "application/json;charset=utf-8"
    assert calls[1]["body"] == {
        "channel": "C0ALERTS",
        "text": "PROBLEM: web01 / disk",
        "blocks": slack_blocks("PROBLEM: web01 / disk"),
    }
    assert calls[2]["body"] == {"channel": "C0ALERTS", "text": "Re-notification", "thread_ts": root["ts"]}
    assert SLACK_TOKEN not in json.dumps(calls)

    [kept_root] = [m for m in sink.messages(channel="slack") if m["api"]["id"] == root["ts"]]
    assert kept_root["api"]["edited"] is True
    assert kept_root["payload"]["text"] == "RECOVERY"
    thread = [m for m in sink.messages(channel="slack") if m["api"]["root"] == kept_root["id"]]
    assert [m["payload"]["text"] for m in thread] == ["Re-notification", "Escalated: <@U0ALICE>", "nested"]


def test_slack_direct_message_and_form_bodies(sink: Sink) -> None:
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())
    dm = client.chat_postMessage(channel="U0ALICE", text="Escalated to you")
    assert dm["channel"].startswith("D")
    assert client.chat_update(channel=dm["channel"], ts=dm["ts"], text="Acknowledged")["ok"]

    # A form post with the token as a field, blocks as a JSON string, as older clients send it.
    form = requests.post(
        sink.slack_api() + "chat.postMessage",
        data={
            "token": SLACK_TOKEN,
            "channel": "#alerts",
            "text": "fallback",
            "blocks": json.dumps(slack_blocks("from a form")),
        },
        timeout=10,
    )
    assert form.status_code == 200
    assert form.json()["ok"] is True
    assert form.json()["channel"].startswith("C")
    assert form.json()["message"]["blocks"][0]["text"]["text"] == "from a form"
    recorded = sink.calls("slack")[-1]
    assert recorded["content_type"] == "application/x-www-form-urlencoded"
    assert "token" not in recorded["body"]

    info = client.conversations_info(channel=form.json()["channel"])
    assert (info["channel"]["name"], info["channel"]["is_member"]) == ("alerts", True)


def test_slack_errors_are_200_with_the_error_code(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(
        slack__tokens=SLACK_TOKEN,
        slack__channels="C0ALERTS,C0QUIET",
        slack__not_in_channel="C0QUIET",
        slack__post_rate_limit__enabled="false",
    )
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())
    root = client.chat_postMessage(channel="C0ALERTS", text="PROBLEM")

    cases: list[tuple[Callable[[], Any], str]] = [
        (
            lambda: WebClient(token="xoxb-wrong", base_url=sink.slack_api()).chat_postMessage(
                channel="C0ALERTS", text="x"
            ),
            "invalid_auth",
        ),
        (lambda: WebClient(base_url=sink.slack_api()).chat_postMessage(channel="C0ALERTS", text="x"), "not_authed"),
        (lambda: client.chat_postMessage(channel="C0NOWHERE", text="x"), "channel_not_found"),
        (lambda: client.chat_postMessage(channel="C0QUIET", text="x"), "not_in_channel"),
        (lambda: client.api_call("chat.postMessage", json={"channel": "C0ALERTS", "text": ""}), "no_text"),
        (lambda: client.chat_update(channel="C0ALERTS", ts="1700000000.000100", text="x"), "message_not_found"),
        (lambda: client.chat_update(channel="C0ALERTS", ts=root["ts"], text="x" * 4001), "msg_too_long"),
        (
            lambda: client.chat_postMessage(channel="C0ALERTS", text="x", attachments=[{"text": "a"}] * 101),
            "too_many_attachments",
        ),
    ]
    for call, error in cases:
        raised = slack_error(call)
        assert (raised.response.status_code, raised.response["ok"], raised.response["error"]) == (200, False, error)

    too_many = slack_error(
        lambda: client.chat_postMessage(channel="C0ALERTS", text="x", blocks=[{"type": "divider"}] * 51)
    )
    assert too_many.response["error"] == "invalid_blocks"
    long_section = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    too_long = slack_error(lambda: client.chat_postMessage(channel="C0ALERTS", text="x", blocks=long_section))
    assert too_long.response["error"] == "invalid_blocks"
    assert too_long.response["errors"] == ["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
    header = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]
    assert (
        slack_error(lambda: client.chat_update(channel="C0ALERTS", ts=root["ts"], text="x", blocks=header)).response[
            "error"
        ]
        == "invalid_blocks"
    )
    # Exactly at the limits is fine.
    assert client.chat_postMessage(channel="C0ALERTS", text="x", blocks=[{"type": "divider"}] * 50)["ok"]
    assert client.chat_update(channel="C0ALERTS", ts=root["ts"], text="x" * 4000)["ok"]

    # chat.postMessage cuts text over 40 000 characters, posts it, and says so.
    truncated = client.chat_postMessage(channel="C0ALERTS", text="y" * 40_001)
    assert truncated["ok"] is True
    assert truncated["warning"] == "message_truncated"
    assert truncated["response_metadata"]["warnings"] == ["message_truncated"]
    assert len(truncated["message"]["text"]) == 40_000

    sink.process.terminate()
    sink.process.wait(30)
    assert SLACK_TOKEN not in sink.log.read_text()


def test_slack_post_rate_limit_is_per_channel_and_429_only_beyond_the_burst(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(
        slack__post_rate_limit__requests="1",
        slack__post_rate_limit__seconds="3600",
        slack__post_rate_limit__max_burst="2",
        slack__update_rate_limit__requests="1",
        slack__update_rate_limit__seconds="3600",
        slack__update_rate_limit__max_burst="1",
    )
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())

    posted = [client.chat_postMessage(channel="C0ALERTS", text=f"post {n}") for n in range(3)]
    refused = slack_error(lambda: client.chat_postMessage(channel="C0ALERTS", text="one too many"))

    assert all(p["ok"] for p in posted)
    assert refused.response.status_code == 429
    assert refused.response.data == {"ok": False, "error": "ratelimited"}
    assert int(refused.response.headers["Retry-After"]) > 0
    # Another channel has its own budget; edits have theirs, separate from posts.
    assert client.chat_postMessage(channel="C0OTHER", text="elsewhere")["ok"]
    assert [client.chat_update(channel="C0ALERTS", ts=posted[0]["ts"], text=f"edit {n}")["ok"] for n in range(2)] == [
        True,
        True,
    ]
    edit_refused = slack_error(lambda: client.chat_update(channel="C0ALERTS", ts=posted[0]["ts"], text="edit 3"))
    assert edit_refused.response.status_code == 429
    assert edit_refused.response["error"] == "ratelimited"
    assert [c["status"] for c in sink.calls("slack")] == [200, 200, 200, 429, 200, 200, 200, 429]
    # Refused posts are not posted.
    assert "one too many" not in [m["payload"]["text"] for m in sink.messages()]


def test_slack_web_client_retry_handler_honours_retry_after(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(
        slack__post_rate_limit__requests="1", slack__post_rate_limit__seconds="1", slack__post_rate_limit__max_burst="0"
    )
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=1))

    first = client.chat_postMessage(channel="C0ALERTS", text="first")
    second = client.chat_postMessage(channel="C0ALERTS", text="second")

    assert first["ok"] and second["ok"]
    assert [(c["status"], c["body"]["text"]) for c in sink.calls("slack")] == [
        (200, "first"),
        (429, "second"),
        (200, "second"),
    ]


def test_slack_reply_to_an_unknown_thread_is_posted_and_shown_as_an_orphan(sink: Sink) -> None:
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())

    reply = client.chat_postMessage(channel="C0ALERTS", text="RECOVERY", thread_ts="1700000000.000100")

    assert reply["ok"] is True
    [message] = sink.messages()
    assert (message["api"]["root"], message["api"]["orphan_of"]) == (None, "1700000000.000100")
    assert "which is no message in this channel" in requests.get(sink.url + "/", timeout=10).text


# --- both ----------------------------------------------------------------------------------------


def test_calls_can_be_read_after_a_point_and_reset(sink: Sink) -> None:
    api = Mattermost(sink)
    api.get("/users/me")
    # A token in the query string is accepted and, like every token, never recorded.
    in_query = requests.get(
        sink.mattermost_api() + "/users/me", params={"access_token": BOT_TOKEN, "x": "1"}, timeout=10
    )
    assert in_query.status_code == 200
    [first, second] = sink.calls()
    assert second["seq"] == first["seq"] + 1
    assert sink.calls(after=first["seq"]) == [second]
    assert second["query"] == {"x": "1"}
    assert BOT_TOKEN not in json.dumps(sink.calls())

    assert requests.delete(sink.url + "/api/calls", timeout=10).json() == {"deleted": 2}
    assert sink.calls() == []
    assert requests.get(sink.url + "/api/calls?after=x", timeout=10).status_code == 400


def test_a_slow_chat_answers_no_sooner_than_its_delay(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(mattermost__answer_delay="0.5", slack__answer_delay="0.5")
    api = Mattermost(sink)
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())

    started = time.monotonic()
    assert api.get("/users/me").status_code == 200
    mattermost_took = time.monotonic() - started
    started = time.monotonic()
    assert client.chat_postMessage(channel="C0ALERTS", text="slow")["ok"]
    slack_took = time.monotonic() - started

    assert mattermost_took >= 0.5
    assert slack_took >= 0.5


def test_a_root_dropped_for_room_takes_its_thread_and_is_gone_for_the_api(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(max_messages="3")
    api = Mattermost(sink)
    channel = api.channel_id("ops", "alerts")
    old = api.post("/posts", {"channel_id": channel, "message": "old"}).json()
    for n in range(2):
        api.post("/posts", {"channel_id": channel, "message": f"reply {n}", "root_id": old["id"]})

    api.post("/posts", {"channel_id": channel, "message": "new"})

    assert [m["payload"]["message"] for m in sink.messages()] == ["new"]
    assert api.get(f"/posts/{old['id']}").status_code == 404
    assert api.post("/posts", {"channel_id": channel, "message": "late", "root_id": old["id"]}).status_code == 400


def test_clicks_on_api_posts_carry_their_real_ids_and_edit_them(sink: Sink, httpserver: HTTPServer) -> None:
    answer = {"update": {"message": "ACKNOWLEDGED by @dave", "props": {}}}
    httpserver.expect_request("/mattermost/actions", method="POST").respond_with_json(answer)
    api = Mattermost(sink)
    channel = api.channel_id("ops", "alerts")
    root = api.post(
        "/posts",
        {
            "channel_id": channel,
            "message": "PROBLEM",
            "props": problem_props(httpserver.url_for("/mattermost/actions")),
        },
    ).json()
    [message] = sink.messages()

    clicked = sink.click(message["id"], "ack", user_name="dave")

    assert clicked.status_code == 200, clicked.text
    [(request, _)] = httpserver.log
    sent = request.get_json()
    assert (sent["post_id"], sent["channel_id"], sent["channel_name"], sent["team_domain"]) == (
        root["id"],
        channel,
        "alerts",
        "ops",
    )
    assert sent["context"] == {"token": "signed-token"}
    after = api.get(f"/posts/{root['id']}").json()
    assert after["message"] == "ACKNOWLEDGED by @dave"
    assert after["edit_at"] > 0
    assert "attachments" not in after["props"]


def test_slack_clicks_on_api_messages_carry_their_ts_and_channel(
    start_sink: Callable[..., Sink], httpserver: HTTPServer
) -> None:
    received: list[dict[str, Any]] = []

    def listener(request: Request) -> Response:
        payload = json.loads(parse_qs(request.get_data().decode())["payload"][0])
        received.append(payload)
        reply = {"replace_original": True, "text": "Acknowledged by @carol", "blocks": slack_blocks("ACKED", False)}
        answer = requests.post(payload["response_url"], json=reply, timeout=10)
        return Response("", status=200 if answer.ok else 500)

    httpserver.expect_request("/slack/actions", method="POST").respond_with_handler(listener)
    sink = start_sink(slack_actions_url=httpserver.url_for("/slack/actions"))
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())
    root = client.chat_postMessage(channel="C0ALERTS", text="PROBLEM", blocks=slack_blocks("PROBLEM"))
    [message] = sink.messages()

    assert sink.click(message["id"], "alertq_ack", user_name="carol").status_code == 200

    [payload] = received
    assert payload["container"]["message_ts"] == root["ts"]
    assert payload["channel"]["id"] == "C0ALERTS"
    assert payload["message"]["ts"] == root["ts"]
    after = sink.message(message["id"])
    assert after["payload"]["text"] == "Acknowledged by @carol"
    assert after["rendered"]["buttons"] == []
    # The message stays the same message for the API.
    assert client.chat_update(channel="C0ALERTS", ts=root["ts"], text="RECOVERY")["ok"]


def test_sink_help_lists_the_emulated_apis() -> None:
    result = CliRunner().invoke(main, ["sink", "--help"])
    assert result.exit_code == 0
    for line in (
        "POST /api/v4/posts",
        "PUT  /api/v4/posts/<id>/patch",
        "POST /api/chat.postMessage",
        "GET  /api/calls",
    ):
        assert line in result.output


# --- the page ------------------------------------------------------------------------------------


def post_conversations(sink: Sink) -> dict[str, Any]:
    """A Mattermost and a Slack conversation: root, two replies, the root edited."""
    api = Mattermost(sink)
    channel = api.channel_id("ops", "alerts")
    root = api.post(
        "/posts", {"channel_id": channel, "message": ":red_circle: **PROBLEM** web01 is DOWN", "props": problem_props()}
    ).json()
    api.post("/posts", {"channel_id": channel, "message": "Re-notification 2 of web01 DOWN", "root_id": root["id"]})
    api.post("/posts", {"channel_id": channel, "message": "Escalated (step 1): @alice", "root_id": root["id"]})
    acked = {"attachments": [{"color": "#1895f5", "text": "Acknowledged by @alice: on it"}]}
    api.put(
        f"/posts/{root['id']}/patch", {"message": ":speech_balloon: **ACKNOWLEDGED** web01 is DOWN", "props": acked}
    )
    client = WebClient(token=SLACK_TOKEN, base_url=sink.slack_api())
    slack_root = client.chat_postMessage(
        channel="C0ALERTS", text="PROBLEM", blocks=slack_blocks("PROBLEM: web01 / disk is CRITICAL")
    )
    client.chat_postMessage(channel="C0ALERTS", text="Re-notification 2", thread_ts=slack_root["ts"])
    client.chat_update(
        channel="C0ALERTS",
        ts=slack_root["ts"],
        text="RECOVERY",
        blocks=slack_blocks("RECOVERY: web01 / disk is OK", with_button=False),
    )
    return {"mattermost_channel": channel, "mattermost_root": root["id"], "slack_root": slack_root["ts"]}


def test_the_page_shows_threads_under_their_root_with_the_edited_content(sink: Sink) -> None:
    posted = post_conversations(sink)
    ids = {m["api"]["id"]: m["id"] for m in sink.messages()}
    mm_root, slack_root = ids[posted["mattermost_root"]], ids[posted["slack_root"]]

    html = requests.get(sink.url + "/", timeout=10).text

    section = html[html.index(f'id="conversation-{mm_root}"') :]
    section = section[: section.index("</section>")]
    root_part, thread = section.split(f'id="thread-{mm_root}"')
    assert "<strong>ACKNOWLEDGED</strong> web01 is DOWN" in root_part
    assert 'class="time edited"' in root_part
    assert "PROBLEM" not in root_part  # the edit replaced the text
    assert "Acknowledge</button>" not in root_part  # and the props, with the button
    assert "2 replies" in thread
    assert thread.index("Re-notification 2 of web01 DOWN") < thread.index("Escalated (step 1): @alice")
    slack_section = html[html.index(f'id="conversation-{slack_root}"') :]
    slack_section = slack_section[: slack_section.index("</section>")]
    assert "RECOVERY: web01 / disk is OK" in slack_section
    assert "1 reply" in slack_section
    # Per channel: the channel list links each conversation's channel; a channel's page shows only its posts.
    only = requests.get(
        sink.url + "/", params={"channel": f"mattermost:{posted['mattermost_channel']}"}, timeout=10
    ).text
    assert f'id="conversation-{mm_root}"' in only
    assert f'id="conversation-{slack_root}"' not in only
    assert "mattermost &middot; ops/alerts (1)" in html


def test_a_conversation_in_the_browser(sink: Sink, tmp_path: Path) -> None:
    require(chromium() is not None, "chromium is not installed (apt-get install chromium)")
    posted = post_conversations(sink)
    mm_root = next(m["id"] for m in sink.messages() if m["api"]["id"] == posted["mattermost_root"])

    dom = run_chromium(["--dump-dom", "--virtual-time-budget=2000"], sink.url + "/")

    assert dom.returncode == 0, dom.stderr[-2000:]
    thread = dom.stdout[dom.stdout.index(f'id="thread-{mm_root}"') :]
    assert thread.index("Re-notification 2 of web01 DOWN") < thread.index("Escalated (step 1): @alice")
    shot = tmp_path / "conversation.png"
    taken = run_chromium(
        [f"--screenshot={shot}", "--window-size=1000,1100", "--virtual-time-budget=3000"], sink.url + "/"
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    if os.environ.get("ALERTQ_SINK_CONVERSATION_SCREENSHOT"):
        shutil.copy(shot, os.environ["ALERTQ_SINK_CONVERSATION_SCREENSHOT"])
