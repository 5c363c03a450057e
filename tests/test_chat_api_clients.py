"""The Mattermost and Slack API clients against real HTTP servers answering as the APIs do: exact request
shapes (paths, JSON bodies, auth header), every error case and its outcome, rate limits, proxy and TLS,
and no token in any error or log line."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from delivery.chat import (
    ChannelNotFound,
    MattermostApi,
    MattermostPost,
    PostNotEditable,
    PostNotFound,
    SlackApi,
    SlackMessage,
)
from delivery.chat.limits import TRUNCATION_MARK
from delivery.outcomes import Permanent, Retryable, Unreachable
from schemas.channels import HttpSettings
from tests.support.chat import own_server
from tests.support.forward_proxy import forward_proxy
from tests.support.tls import local_ca

MM_TOKEN = "mmbot0s3cr3t0token0abcdefghij"
SLACK_TOKEN = "xoxb-1111-2222-s3cr3tSlackT0ken"
CHANNEL_ID = "ch4nnel0id00000000000000aa"
BOT_ID = "b0t0user0id0000000000000aa"
POST_ID = "p0st0id00000000000000000aa"
SLACK_CHANNEL = "C0123ABCD"
TS = "1700000000.000100"
ATTACHMENTS = [{"color": "#FF0000", "text": "**PROBLEM**: web01 is **DOWN**", "fallback": "web01 DOWN"}]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def requests_to(server: HTTPServer) -> list[Request]:
    return [request for request, _ in server.log]


def body_of(request: Request) -> Any:
    return json.loads(request.get_data())


# -- Mattermost ------------------------------------------------------------------------------------


def mattermost(server: HTTPServer, **http: Any) -> MattermostApi:
    return MattermostApi(server.url_for("/"), MM_TOKEN, HttpSettings(**http))


def post_json(post_id: str = POST_ID, message: str = "", root_id: str = "", props: Any = None) -> dict[str, Any]:
    """A post as Mattermost answers it (server/public/model/post.go)."""
    return {
        "id": post_id,
        "create_at": 1700000000000,
        "update_at": 1700000000000,
        "edit_at": 0,
        "delete_at": 0,
        "user_id": BOT_ID,
        "channel_id": CHANNEL_ID,
        "root_id": root_id,
        "message": message,
        "type": "",
        "props": {"from_bot": "true", **(props or {})},
        "file_ids": [],
        "reply_count": 0,
        "metadata": {},
    }


def mm_error(status: int, error_id: str, message: str) -> Response:
    """Mattermost's JSON error (server/public/model/utils.go AppError) with its request id header."""
    body = {
        "id": error_id,
        "message": message,
        "detailed_error": "",
        "request_id": "r3qu3st",
        "status_code": status,
        "is_oauth": False,
    }
    return Response(json.dumps(body), status=status, content_type="application/json", headers={"X-Request-Id": "r"})


def assert_mattermost_request(request: Request, method: str, path: str) -> None:
    assert request.method == method
    assert request.path == path
    assert request.headers["Authorization"] == f"Bearer {MM_TOKEN}"
    if method in ("POST", "PUT"):
        assert request.headers["Content-Type"] == "application/json"


def test_mattermost_create_root_post(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/v4/posts", method="POST").respond_with_json(
        post_json(message="web01 is DOWN", props={"attachments": ATTACHMENTS}), status=201
    )
    post = mattermost(httpserver).create_post(CHANNEL_ID, "web01 is DOWN", attachments=ATTACHMENTS)
    assert post == MattermostPost(
        id=POST_ID,
        channel_id=CHANNEL_ID,
        root_id="",
        message="web01 is DOWN",
        props={"from_bot": "true", "attachments": ATTACHMENTS},
        update_at=1700000000000,
    )
    [request] = requests_to(httpserver)
    assert_mattermost_request(request, "POST", "/api/v4/posts")
    assert body_of(request) == {
        "channel_id": CHANNEL_ID,
        "message": "web01 is DOWN",
        "props": {"attachments": ATTACHMENTS},
    }


def test_mattermost_thread_reply(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/v4/posts", method="POST").respond_with_json(
        post_json("r3ply", message="escalated to @alice", root_id=POST_ID), status=201
    )
    reply = mattermost(httpserver).create_post(CHANNEL_ID, "escalated to @alice", root_id=POST_ID)
    assert (reply.id, reply.root_id) == ("r3ply", POST_ID)
    [request] = requests_to(httpserver)
    assert body_of(request) == {"channel_id": CHANNEL_ID, "message": "escalated to @alice", "root_id": POST_ID}


def test_mattermost_edit_patches_only_what_is_given(httpserver: HTTPServer) -> None:
    acked = [{"color": "#00C000", "text": "acknowledged by alice"}]
    httpserver.expect_oneshot_request(f"/api/v4/posts/{POST_ID}/patch", method="PUT").respond_with_json(
        post_json(message="web01 is DOWN (acknowledged)", props={"attachments": acked})
    )
    post = mattermost(httpserver).patch_post(POST_ID, message="web01 is DOWN (acknowledged)", attachments=acked)
    assert post.message == "web01 is DOWN (acknowledged)"
    [request] = requests_to(httpserver)
    assert_mattermost_request(request, "PUT", f"/api/v4/posts/{POST_ID}/patch")
    assert body_of(request) == {"message": "web01 is DOWN (acknowledged)", "props": {"attachments": acked}}


def test_mattermost_get_post(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(f"/api/v4/posts/{POST_ID}", method="GET").respond_with_json(
        post_json(message="hello")
    )
    assert mattermost(httpserver).get_post(POST_ID).message == "hello"
    assert_mattermost_request(requests_to(httpserver)[0], "GET", f"/api/v4/posts/{POST_ID}")


def test_mattermost_resolves_team_channel_once_and_again_after_forget(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/teams/name/ops/channels/name/alerts", method="GET").respond_with_json(
        {"id": CHANNEL_ID, "name": "alerts", "team_id": "t34m", "type": "O"}
    )
    api = mattermost(httpserver)
    assert api.resolve("ops/alerts") == CHANNEL_ID
    assert api.resolve("ops/alerts") == CHANNEL_ID
    assert len(httpserver.log) == 1  # cached
    api.forget("ops/alerts")
    assert api.resolve("ops/alerts") == CHANNEL_ID
    assert len(httpserver.log) == 2
    assert_mattermost_request(requests_to(httpserver)[0], "GET", "/api/v4/teams/name/ops/channels/name/alerts")


def test_mattermost_resolves_a_user_to_the_direct_channel_with_the_bot(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/v4/users/me", method="GET").respond_with_json(
        {"id": BOT_ID, "username": "alertq", "is_bot": True}
    )
    for name, user_id, channel in (("alice", "al1ce", "dm-alice"), ("bob", "b0b", "dm-bob")):
        httpserver.expect_oneshot_request(f"/api/v4/users/username/{name}", method="GET").respond_with_json(
            {"id": user_id, "username": name}
        )
        httpserver.expect_oneshot_request(
            "/api/v4/channels/direct", method="POST", json=[BOT_ID, user_id]
        ).respond_with_json({"id": channel, "type": "D", "name": f"{BOT_ID}__{user_id}"}, status=201)
    api = mattermost(httpserver)
    assert api.resolve("@alice") == "dm-alice"
    assert api.resolve("@bob") == "dm-bob"
    assert api.resolve("@alice") == "dm-alice"
    paths = [(r.method, r.path) for r in requests_to(httpserver)]
    assert paths == [
        ("GET", "/api/v4/users/me"),  # asked once, for both users
        ("GET", "/api/v4/users/username/alice"),
        ("POST", "/api/v4/channels/direct"),
        ("GET", "/api/v4/users/username/bob"),
        ("POST", "/api/v4/channels/direct"),
    ]
    for request in requests_to(httpserver):
        assert request.headers["Authorization"] == f"Bearer {MM_TOKEN}"


def test_mattermost_invalid_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/posts").respond_with_response(
        mm_error(401, "api.context.session_expired.app_error", "Invalid or expired session, please login again.")
    )
    with pytest.raises(Permanent) as caught:
        mattermost(httpserver).create_post(CHANNEL_ID, "x")
    assert caught.value.reason == "mattermost refused the bot token (401)"


def test_mattermost_bot_not_in_channel_names_the_channel(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/teams/name/ops/channels/name/alerts").respond_with_json({"id": CHANNEL_ID})
    httpserver.expect_request("/api/v4/posts").respond_with_response(
        mm_error(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
    )
    api = mattermost(httpserver)
    with pytest.raises(Permanent) as caught:
        api.create_post(api.resolve("ops/alerts"), "x")
    assert type(caught.value) is Permanent
    assert "may not post in channel ops/alerts (403)" in caught.value.reason
    assert "api.context.permissions.app_error" in caught.value.reason


@pytest.mark.parametrize(
    ("destination", "path", "what"),
    [
        ("ops/gone", "/api/v4/teams/name/ops/channels/name/gone", "channel"),
        ("@nobody", "/api/v4/users/username/nobody", "user"),
    ],
)
def test_mattermost_unknown_destination_is_channel_not_found(
    httpserver: HTTPServer, destination: str, path: str, what: str
) -> None:
    httpserver.expect_request("/api/v4/users/me").respond_with_json({"id": BOT_ID})
    httpserver.expect_request(path).respond_with_response(
        mm_error(404, "app.channel.get_by_name.missing.app_error", "Channel does not exist.")
    )
    with pytest.raises(ChannelNotFound) as caught:
        mattermost(httpserver).resolve(destination)
    assert (caught.value.what, caught.value.ref) == (what, destination)
    assert destination in caught.value.reason


def test_mattermost_team_the_bot_is_not_in_is_permanent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/teams/name/ops/channels/name/private").respond_with_response(
        mm_error(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
    )
    with pytest.raises(Permanent, match=r"may not see channel ops/private \(403\)"):
        mattermost(httpserver).resolve("ops/private")


def test_mattermost_edit_of_a_deleted_post_is_post_not_found(httpserver: HTTPServer) -> None:
    # The server checks permissions before existence: an edit of a missing post is a 403.
    httpserver.expect_oneshot_request(f"/api/v4/posts/{POST_ID}/patch", method="PUT").respond_with_response(
        mm_error(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
    )
    httpserver.expect_oneshot_request(f"/api/v4/posts/{POST_ID}", method="GET").respond_with_response(
        mm_error(404, "app.post.get.app_error", "Unable to get the post.")
    )
    with pytest.raises(PostNotFound) as caught:
        mattermost(httpserver).patch_post(POST_ID, message="recovered")
    assert caught.value.ref == POST_ID


def test_mattermost_edit_of_someone_elses_post_is_permanent(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(f"/api/v4/posts/{POST_ID}/patch", method="PUT").respond_with_response(
        mm_error(403, "api.context.permissions.app_error", "You do not have the appropriate permissions.")
    )
    httpserver.expect_oneshot_request(f"/api/v4/posts/{POST_ID}", method="GET").respond_with_json(post_json())
    with pytest.raises(Permanent) as caught:
        mattermost(httpserver).patch_post(POST_ID, message="recovered")
    assert not isinstance(caught.value, PostNotFound)
    assert f"may not edit post {POST_ID} (403)" in caught.value.reason


def test_mattermost_edit_answered_404_is_post_not_found(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"/api/v4/posts/{POST_ID}/patch").respond_with_response(
        mm_error(404, "app.post.get.app_error", "Unable to get the post.")
    )
    with pytest.raises(PostNotFound):
        mattermost(httpserver).patch_post(POST_ID, message="recovered")


def test_mattermost_reply_to_a_deleted_root_is_post_not_found(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/posts").respond_with_response(
        mm_error(400, "api.post.create_post.root_id.app_error", "Invalid RootId parameter.")
    )
    with pytest.raises(PostNotFound) as caught:
        mattermost(httpserver).create_post(CHANNEL_ID, "recovered", root_id=POST_ID)
    assert caught.value.ref == POST_ID


def test_mattermost_edit_after_the_time_limit_is_post_not_editable(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"/api/v4/posts/{POST_ID}/patch").respond_with_response(
        mm_error(400, "api.post.update_post.permissions_time_limit.app_error", "Post edit is only allowed for 300s.")
    )
    with pytest.raises(PostNotEditable) as caught:
        mattermost(httpserver).patch_post(POST_ID, message="recovered")
    assert caught.value.ref == POST_ID


def test_mattermost_other_bad_requests_are_permanent_with_the_error_id(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/posts").respond_with_response(
        mm_error(400, "api.post.create_post.can_not_post_to_deleted.error", "Can not post to deleted channel.")
    )
    with pytest.raises(Permanent, match="can_not_post_to_deleted"):
        mattermost(httpserver).create_post(CHANNEL_ID, "x")


def test_mattermost_message_is_cut_to_16383_runes(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/posts").respond_with_json(post_json(), status=201)
    httpserver.expect_request(f"/api/v4/posts/{POST_ID}/patch").respond_with_json(post_json())
    api = mattermost(httpserver)
    api.create_post(CHANNEL_ID, "\U0001f525" * 20_000)  # 80 000 bytes, 20 000 runes
    api.create_post(CHANNEL_ID, "é" * 16383)  # exactly the limit: sent as it is
    api.patch_post(POST_ID, message="ü" * 17_000)
    cut, exact, patched = (body_of(request)["message"] for request in requests_to(httpserver))
    assert len(cut) == 16383 and cut.endswith(TRUNCATION_MARK) and cut.startswith("\U0001f525" * 1000)
    assert exact == "é" * 16383
    assert len(patched) == 16383 and patched.endswith(TRUNCATION_MARK)


def test_mattermost_smaller_max_post_size(httpserver: HTTPServer) -> None:
    # A server on the old 4000-character column reports MaxPostSize 4000.
    httpserver.expect_request("/api/v4/posts").respond_with_json(post_json(), status=201)
    api = MattermostApi(httpserver.url_for("/api/v4/"), MM_TOKEN, max_message_runes=4000)
    api.create_post(CHANNEL_ID, "x" * 5000)
    assert len(body_of(requests_to(httpserver)[0])["message"]) == 4000


def test_mattermost_429_is_retryable_after_retry_after_and_holds_the_next_call(httpserver: HTTPServer) -> None:
    # Mattermost's rate limiter answers 429 with a plain-text body and the throttled headers.
    httpserver.expect_request("/api/v4/posts").respond_with_data(
        "limit exceeded\n",
        status=429,
        content_type="text/plain; charset=utf-8",
        headers={
            "X-RateLimit-Limit": "101",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": "11",
            "Retry-After": "7",
        },
    )
    api = MattermostApi(httpserver.url_for("/"), MM_TOKEN, max_budget_wait=0.0, clock=lambda: 500.0)
    with pytest.raises(Retryable) as caught:
        api.create_post(CHANNEL_ID, "x")
    assert caught.value.after == 7.0
    assert "HTTP 429" in caught.value.reason
    # The client now waits as the server asked instead of provoking another 429.
    assert api.delay() == pytest.approx(7.0)
    with pytest.raises(Retryable) as held:
        api.create_post(CHANNEL_ID, "x")
    assert held.value.after == pytest.approx(7.0)
    assert len(httpserver.log) == 1


def test_mattermost_429_without_retry_after_uses_the_reset(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/posts").respond_with_data(
        "limit exceeded",
        status=429,
        headers={"X-RateLimit-Limit": "101", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "3"},
    )
    with pytest.raises(Retryable) as caught:
        mattermost(httpserver).create_post(CHANNEL_ID, "x")
    assert caught.value.after == 3.0


def test_mattermost_budget_headers_are_honoured_before_any_429(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v4/posts").respond_with_json(
        post_json(),
        status=201,
        headers={"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2"},
    )
    sleeps: list[float] = []
    api = MattermostApi(httpserver.url_for("/"), MM_TOKEN, clock=lambda: 100.0, sleep=sleeps.append)
    assert api.delay() == 0.0
    api.create_post(CHANNEL_ID, "first")
    assert api.budget.server is not None and api.budget.server.remaining == 0
    assert api.delay() == pytest.approx(0.2)  # one call of the server's refill: 2 s for 10
    api.create_post(CHANNEL_ID, "second")  # waits for it first
    assert sleeps == [pytest.approx(0.2)]
    # With no waiting allowed, the call is deferred (Retryable) and never reaches the server.
    api.max_budget_wait = 0.0
    with pytest.raises(Retryable, match="rate budget") as caught:
        api.create_post(CHANNEL_ID, "third")
    assert caught.value.after is not None and caught.value.after > 0
    assert len(httpserver.log) == 2


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_mattermost_server_errors_are_retryable(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/api/v4/posts").respond_with_data("upstream trouble", status=status)
    with pytest.raises(Retryable, match=f"HTTP {status}"):
        mattermost(httpserver).create_post(CHANNEL_ID, "x")


def test_mattermost_connection_refused_is_unreachable() -> None:
    api = MattermostApi(f"http://127.0.0.1:{closed_port()}", MM_TOKEN)
    with pytest.raises(Unreachable, match="connection failed"):
        api.create_post(CHANNEL_ID, "x")


def test_mattermost_through_a_plain_http_proxy(httpserver: HTTPServer) -> None:
    # The API host does not resolve: the request can only arrive through the proxy (this server).
    httpserver.expect_request("/api/v4/posts").respond_with_json(post_json(), status=201)
    api = MattermostApi("http://mattermost.invalid", MM_TOKEN, HttpSettings(proxy=httpserver.url_for("/")))
    api.create_post(CHANNEL_ID, "x")
    [request] = requests_to(httpserver)
    assert request.environ["REQUEST_URI"] == "http://mattermost.invalid/api/v4/posts"
    assert request.headers["Authorization"] == f"Bearer {MM_TOKEN}"


def test_mattermost_https_through_a_forward_proxy_with_a_ca_bundle(tmp_path) -> None:
    ca = local_ca(tmp_path)
    with own_server(ca.server_context) as server, forward_proxy(("px", "proxypass")) as proxy:
        server.expect_request("/api/v4/posts").respond_with_json(post_json(), status=201)
        http = HttpSettings(proxy=proxy.url(), ca_bundle=ca.ca_file)
        MattermostApi(server.url_for("/"), MM_TOKEN, http).create_post(CHANNEL_ID, "x")
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"]
        assert requests_to(server)[0].headers["Authorization"] == f"Bearer {MM_TOKEN}"


# -- Slack -----------------------------------------------------------------------------------------


def slack(server: HTTPServer, **kwargs: Any) -> SlackApi:
    http = kwargs.pop("http", {})
    return SlackApi(SLACK_TOKEN, HttpSettings(**http), server.url_for("/api/"), **kwargs)


def slack_ok(method: str, channel: str = SLACK_CHANNEL, ts: str = TS, **extra: Any) -> dict[str, Any]:
    """A successful chat.postMessage / chat.update answer (Slack returns the message it stored)."""
    return {"ok": True, "channel": channel, "ts": ts, "message": {"type": "message", "text": "…", "ts": ts}, **extra}


def slack_error(error: str, status: int = 200, **headers: str) -> Response:
    return Response(
        json.dumps({"ok": False, "error": error}), status=status, headers=headers, content_type="application/json"
    )


def assert_slack_request(request: Request, method: str) -> None:
    assert request.method == "POST"
    assert request.path == f"/api/{method}"
    assert request.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"
    assert request.headers["Content-Type"] == "application/json;charset=utf-8"


BLOCKS = [
    {"type": "header", "text": {"type": "plain_text", "text": "🔴 web01 is DOWN"}},
    {"type": "section", "text": {"type": "mrkdwn", "text": "*PROBLEM*: web01 is *DOWN*"}},
]


def test_slack_post_root_message(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/chat.postMessage", method="POST").respond_with_json(slack_ok("post"))
    message = slack(httpserver).post_message(
        SLACK_CHANNEL, "web01 is DOWN", blocks=BLOCKS, attachments=[{"color": "#FF0000", "fallback": "x", "text": ""}]
    )
    assert message == SlackMessage(SLACK_CHANNEL, TS, None)
    [request] = requests_to(httpserver)
    assert_slack_request(request, "chat.postMessage")
    assert body_of(request) == {
        "channel": SLACK_CHANNEL,
        "text": "web01 is DOWN",
        "blocks": BLOCKS,
        "attachments": [{"color": "#FF0000", "fallback": "x", "text": ""}],
    }


def test_slack_thread_reply(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/chat.postMessage").respond_with_json(
        slack_ok("post", ts="1700000001.000200")
    )
    reply = slack(httpserver).post_message(SLACK_CHANNEL, "escalated to <@U0ALICE>", thread_ts=TS)
    assert reply == SlackMessage(SLACK_CHANNEL, "1700000001.000200", TS)
    assert body_of(requests_to(httpserver)[0]) == {
        "channel": SLACK_CHANNEL,
        "text": "escalated to <@U0ALICE>",
        "thread_ts": TS,
    }


def test_slack_update(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request("/api/chat.update").respond_with_json(slack_ok("update"))
    edited = slack(httpserver).update_message(SLACK_CHANNEL, TS, "web01 recovered", blocks=BLOCKS, attachments=[])
    assert edited == SlackMessage(SLACK_CHANNEL, TS)
    [request] = requests_to(httpserver)
    assert_slack_request(request, "chat.update")
    assert body_of(request) == {
        "channel": SLACK_CHANNEL,
        "ts": TS,
        "text": "web01 recovered",
        "blocks": BLOCKS,
        "attachments": [],
    }


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("invalid_auth", "slack refused the bot token (invalid_auth)"),
        ("not_authed", "slack got no bot token (not_authed)"),
        ("account_inactive", "the bot's Slack account is deactivated (account_inactive)"),
        ("token_revoked", "the bot token was revoked (token_revoked)"),
        ("channel_not_found", f"slack channel {SLACK_CHANNEL} not found (channel_not_found)"),
        ("not_in_channel", f"the bot is not a member of slack channel {SLACK_CHANNEL} (not_in_channel)"),
        ("is_archived", f"slack channel {SLACK_CHANNEL} is archived (is_archived)"),
        ("invalid_blocks", f"slack refused the message for {SLACK_CHANNEL} (invalid_blocks)"),
        ("msg_too_long", f"slack refused the message for {SLACK_CHANNEL} (msg_too_long)"),
    ],
)
def test_slack_refusals_are_permanent_naming_the_cause(httpserver: HTTPServer, error: str, cause: str) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_response(slack_error(error))
    with pytest.raises(Permanent) as caught:
        slack(httpserver).post_message(SLACK_CHANNEL, "x")
    assert type(caught.value) is Permanent
    assert caught.value.reason.startswith(cause)
    assert len(httpserver.log) == 1


def test_slack_missing_scope_names_the_needed_scope(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_json(
        {"ok": False, "error": "missing_scope", "needed": "chat:write", "provided": "channels:read"}
    )
    with pytest.raises(Permanent, match=r"needs chat:write"):
        slack(httpserver).post_message(SLACK_CHANNEL, "x")


@pytest.mark.parametrize("error", ["message_not_found", "cant_update_message"])
def test_slack_update_of_a_gone_message_is_post_not_found(httpserver: HTTPServer, error: str) -> None:
    httpserver.expect_request("/api/chat.update").respond_with_response(slack_error(error))
    with pytest.raises(PostNotFound) as caught:
        slack(httpserver).update_message(SLACK_CHANNEL, TS, "recovered")
    assert caught.value.ref == TS


def test_slack_closed_edit_window_is_post_not_editable(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.update").respond_with_response(slack_error("edit_window_closed"))
    with pytest.raises(PostNotEditable):
        slack(httpserver).update_message(SLACK_CHANNEL, TS, "recovered")


def test_slack_429_is_retryable_after_retry_after_without_a_hidden_retry(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_response(
        slack_error("ratelimited", status=429, **{"Retry-After": "30"})
    )
    api = slack(httpserver, max_budget_wait=0.0, clock=lambda: 50.0, post_burst=5)
    with pytest.raises(Retryable) as caught:
        api.post_message(SLACK_CHANNEL, "x")
    assert caught.value.after == 30.0
    assert len(httpserver.log) == 1  # slack_sdk did not sleep and retry by itself
    # The channel is held as Slack asked: the next post is deferred without reaching Slack.
    assert api.post_delay(SLACK_CHANNEL) == pytest.approx(30.0)
    with pytest.raises(Retryable):
        api.post_message(SLACK_CHANNEL, "x")
    assert len(httpserver.log) == 1


@pytest.mark.parametrize("error", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"])
def test_slack_own_trouble_is_retryable(httpserver: HTTPServer, error: str) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_response(slack_error(error))
    with pytest.raises(Retryable, match=error):
        slack(httpserver).post_message(SLACK_CHANNEL, "x")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_slack_5xx_pages_are_retryable(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_data(
        "<html>Bad Gateway</html>", status=status, content_type="text/html"
    )
    with pytest.raises(Retryable, match=f"HTTP {status}"):
        slack(httpserver).post_message(SLACK_CHANNEL, "x")


def test_slack_wrong_api_url_is_permanent(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_data("Not Found", status=404)
    with pytest.raises(Permanent, match="api_url"):
        slack(httpserver).post_message(SLACK_CHANNEL, "x")


@contextmanager
def hanging_up_server() -> Iterator[list[int]]:
    """Reads each request and closes the connection without an answer; yields the count of requests."""
    listener = socket.create_server(("127.0.0.1", 0))
    seen = [listener.getsockname()[1], 0]  # port, requests
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with client:
                client.settimeout(2)
                with suppress(OSError):
                    client.recv(65536)
                seen[1] += 1

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_slack_connection_dropped_is_unreachable_and_not_repeated_by_slack_sdk() -> None:
    # slack_sdk's default handler would send the same chat.postMessage once more (a second post if
    # the first had arrived): alertq's runtime decides about retries.
    with hanging_up_server() as seen:
        api = SlackApi(SLACK_TOKEN, api_url=f"http://127.0.0.1:{seen[0]}/api/")
        with pytest.raises(Unreachable, match="connection failed"):
            api.post_message(SLACK_CHANNEL, "x")
    assert seen[1] == 1


def test_slack_connection_refused_is_unreachable() -> None:
    api = SlackApi(SLACK_TOKEN, api_url=f"http://127.0.0.1:{closed_port()}/api/")
    with pytest.raises(Unreachable, match="connection failed: ConnectionRefusedError"):
        api.post_message(SLACK_CHANNEL, "x")


def test_slack_read_timeout_is_retryable() -> None:
    release = threading.Event()

    def stall(request: Request) -> Response:
        release.wait(10)
        return Response("{}")

    with own_server() as server:
        server.expect_request("/api/chat.postMessage").respond_with_handler(stall)
        api = SlackApi(SLACK_TOKEN, HttpSettings(read_timeout=0.3, connect_timeout=0.3), server.url_for("/api/"))
        try:
            with pytest.raises(Retryable, match="timed out"):
                api.post_message(SLACK_CHANNEL, "x")
        finally:
            release.set()


def test_slack_texts_and_blocks_are_cut_to_slacks_limits(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_json(slack_ok("post"))
    httpserver.expect_request("/api/chat.update").respond_with_json(slack_ok("update"))
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "o" * 5000}} for _ in range(60)]
    api = slack(httpserver, post_burst=5)
    api.post_message(SLACK_CHANNEL, "t" * 50_000, blocks=blocks)
    api.update_message(SLACK_CHANNEL, TS, "u" * 4001)
    posted, updated = (body_of(request) for request in requests_to(httpserver))
    assert len(posted["text"]) == 4000 and posted["text"].endswith(TRUNCATION_MARK)
    assert len(posted["blocks"]) == 50
    assert all(len(block["text"]["text"]) <= 3000 for block in posted["blocks"][:49])
    assert len(updated["text"]) == 4000


def test_slack_posts_are_paced_per_channel(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_json(slack_ok("post"))
    httpserver.expect_request("/api/chat.update").respond_with_json(slack_ok("update"))
    sleeps: list[float] = []
    # 1 post per second per channel, burst 1: the budget keeps a tenth of the interval as its margin
    api = slack(httpserver, clock=lambda: 10.0, sleep=sleeps.append)
    api.post_message(SLACK_CHANNEL, "root")
    assert api.post_delay(SLACK_CHANNEL) == pytest.approx(1.1)
    assert api.post_delay("C0THER") == 0.0
    api.post_message("C0THER", "another channel goes at once")
    api.update_message(SLACK_CHANNEL, TS, "edits have their own budget")
    assert sleeps == []
    api.post_message(SLACK_CHANNEL, "reply", thread_ts=TS)  # replies share the channel's budget
    assert sleeps == [pytest.approx(1.1)]
    api.max_budget_wait = 0.5
    with pytest.raises(Retryable, match="budget") as caught:
        api.post_message(SLACK_CHANNEL, "deferred, not sent")
    assert caught.value.after == pytest.approx(2.2)
    assert len(httpserver.log) == 4


def test_slack_through_a_plain_http_proxy(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/chat.postMessage").respond_with_json(slack_ok("post"))
    api = SlackApi(SLACK_TOKEN, HttpSettings(proxy=httpserver.url_for("/")), "http://slack.invalid/api/")
    api.post_message(SLACK_CHANNEL, "x")
    [request] = requests_to(httpserver)
    assert request.environ["REQUEST_URI"] == "http://slack.invalid/api/chat.postMessage"
    assert request.headers["Authorization"] == f"Bearer {SLACK_TOKEN}"


def test_slack_https_through_a_forward_proxy_with_a_ca_bundle(tmp_path) -> None:
    ca = local_ca(tmp_path)
    with own_server(ca.server_context) as server, forward_proxy(("px", "proxypass")) as proxy:
        server.expect_request("/api/chat.postMessage").respond_with_json(slack_ok("post"))
        api_url = server.url_for("/api/")
        assert api_url.startswith("https://")
        # Without the CA bundle the server's certificate is not trusted.
        with pytest.raises(Retryable, match="TLS error"):
            SlackApi(SLACK_TOKEN, HttpSettings(proxy=proxy.url()), api_url).post_message(SLACK_CHANNEL, "x")
        # Without the proxy's credentials the tunnel is refused.
        with pytest.raises((Retryable, Permanent)):
            SlackApi(
                SLACK_TOKEN, HttpSettings(proxy=proxy.url(with_credentials=False), ca_bundle=ca.ca_file), api_url
            ).post_message(SLACK_CHANNEL, "x")
        assert proxy.refused == 1
        SlackApi(SLACK_TOKEN, HttpSettings(proxy=proxy.url(), ca_bundle=ca.ca_file), api_url).post_message(
            SLACK_CHANNEL, "x"
        )
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"] * 2
        assert len(server.log) == 1


def test_slack_ignores_proxies_from_the_environment(httpserver: HTTPServer, monkeypatch) -> None:
    # Only the channel's own proxy setting counts, as for every alertq channel.
    dead_proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, dead_proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    httpserver.expect_request("/api/chat.postMessage").respond_with_json(slack_ok("post"))
    api = slack(httpserver)
    assert api.client.proxy is None
    api.post_message(SLACK_CHANNEL, "x")
    assert requests_to(httpserver)[0].environ["REQUEST_URI"] == "/api/chat.postMessage"  # not via a proxy


# -- secrets ---------------------------------------------------------------------------------------


def echo_headers(request: Request) -> Response:
    """A proxy-style error page that quotes the request's headers, token included."""
    return Response(f"502 bad gateway; request headers: {dict(request.headers)}", status=502)


def test_no_token_in_errors_or_logs(httpserver: HTTPServer, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request("/mm-echo/api/v4/posts").respond_with_handler(echo_headers)
    httpserver.expect_request("/mm-401/api/v4/posts").respond_with_response(
        mm_error(401, "api.context.session_expired.app_error", f"Invalid token {MM_TOKEN}")
    )
    httpserver.expect_request("/slack-echo/api/chat.postMessage").respond_with_handler(echo_headers)
    httpserver.expect_request("/slack-auth/api/chat.postMessage").respond_with_response(slack_error("invalid_auth"))
    httpserver.expect_request("/slack-blocks/api/chat.postMessage").respond_with_json(
        {
            "ok": False,
            "error": "invalid_blocks",
            "response_metadata": {"messages": [f"[ERROR] bad token {SLACK_TOKEN}"]},
        }
    )
    port = closed_port()
    failing: list[Any] = [
        lambda: MattermostApi(httpserver.url_for("/mm-echo"), MM_TOKEN).create_post(CHANNEL_ID, "x"),
        lambda: MattermostApi(httpserver.url_for("/mm-401"), MM_TOKEN).create_post(CHANNEL_ID, "x"),
        lambda: MattermostApi(f"http://127.0.0.1:{port}", MM_TOKEN).create_post(CHANNEL_ID, "x"),
        lambda: MattermostApi(f"https://127.0.0.1:{httpserver.port}", MM_TOKEN).create_post(CHANNEL_ID, "x"),
        lambda: MattermostApi(
            "http://mattermost.invalid", MM_TOKEN, HttpSettings(proxy=f"http://u:proxypass@127.0.0.1:{port}")
        ).create_post(CHANNEL_ID, "x"),
        lambda: SlackApi(SLACK_TOKEN, api_url=httpserver.url_for("/slack-echo/api/")).post_message(SLACK_CHANNEL, "x"),
        lambda: SlackApi(SLACK_TOKEN, api_url=httpserver.url_for("/slack-auth/api/")).post_message(SLACK_CHANNEL, "x"),
        lambda: SlackApi(SLACK_TOKEN, api_url=httpserver.url_for("/slack-blocks/api/")).post_message(
            SLACK_CHANNEL, "x"
        ),
        lambda: SlackApi(SLACK_TOKEN, api_url=f"http://127.0.0.1:{port}/api/").post_message(SLACK_CHANNEL, "x"),
        lambda: SlackApi(SLACK_TOKEN, api_url=f"https://127.0.0.1:{httpserver.port}/api/").post_message(
            SLACK_CHANNEL, "x"
        ),
        lambda: SlackApi(
            SLACK_TOKEN, HttpSettings(proxy=f"http://u:proxypass@127.0.0.1:{port}"), "http://slack.invalid/api/"
        ).post_message(SLACK_CHANNEL, "x"),
    ]
    seen = []
    for call in failing:
        with pytest.raises((Retryable, Permanent)) as caught:
            call()
        seen.append(f"{caught.value} {caught.value!r} {caught.value.reason} {caught.value.__cause__!r}")
    # Everything alertq's side logged; werkzeug's lines are the fake servers' own access log.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))
    text = "\n".join(seen) + ours + "".join(capsys.readouterr())
    assert "slack refused the bot token (invalid_auth)" in text  # the check below would be empty otherwise
    assert "Failed to decode Slack API response" in ours  # slack_sdk's own log line, masked
    for secret in (MM_TOKEN, SLACK_TOKEN, "proxypass"):
        assert secret not in text
