"""How the chat clients read answers and errors: the outcome tables, destinations and API URLs."""

from __future__ import annotations

import http.client
import socket
import ssl
from urllib.error import URLError

import pytest
from slack_sdk.errors import SlackRequestError

from delivery.chat.mattermost_api import DirectMessage, TeamChannel, api_base, parse_destination
from delivery.chat.outcomes import ChannelNotFound, NotFound, PostNotEditable, PostNotFound
from delivery.chat.slack_api import (
    CHANNEL_ERRORS,
    MESSAGE_ERRORS,
    TOKEN_ERRORS,
    connection_outcome,
    slack_outcome,
)
from delivery.outcomes import Permanent, Retryable, Unreachable

CHANNEL = "C0123ABCD"
TS = "1700000000.000100"


def outcome(error: str, status: int = 200, headers: dict[str, str] | None = None, **kwargs):
    kwargs.setdefault("method", "chat.postMessage")
    kwargs.setdefault("channel", CHANNEL)
    return slack_outcome(error, status, headers or {}, **kwargs)


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("invalid_auth", "slack refused the bot token (invalid_auth)"),
        ("not_authed", "slack got no bot token (not_authed)"),
        ("account_inactive", "the bot's Slack account is deactivated (account_inactive)"),
        ("token_revoked", "the bot token was revoked (token_revoked)"),
        ("missing_scope", "the bot token lacks a scope (missing_scope): the app needs chat:write"),
        ("channel_not_found", f"slack channel {CHANNEL} not found (channel_not_found)"),
        ("not_in_channel", f"the bot is not a member of slack channel {CHANNEL} (not_in_channel)"),
        ("is_archived", f"slack channel {CHANNEL} is archived (is_archived)"),
        ("invalid_blocks", f"slack refused the message for {CHANNEL} (invalid_blocks)"),
        ("msg_too_long", f"slack refused the message for {CHANNEL} (msg_too_long)"),
        ("msg_blocks_too_long", f"slack refused the message for {CHANNEL} (msg_blocks_too_long)"),
        ("too_many_attachments", f"slack refused the message for {CHANNEL} (too_many_attachments)"),
        ("no_text", f"slack refused the message for {CHANNEL} (no_text)"),
        ("some_new_error", f"slack refused chat.postMessage for {CHANNEL} (some_new_error)"),
    ],
)
def test_refusals_are_permanent_and_name_the_cause(error: str, cause: str) -> None:
    result = outcome(error)
    assert type(result) is Permanent
    assert result.reason.startswith(cause)


def test_every_listed_code_has_a_permanent_outcome() -> None:
    for error in [*TOKEN_ERRORS, *CHANNEL_ERRORS, *MESSAGE_ERRORS]:
        assert type(outcome(error)) is Permanent, error


def test_missing_scope_names_the_scope_slack_asked_for() -> None:
    assert outcome("missing_scope", needed="chat:write").reason.endswith("(needs chat:write)")


def test_blocks_errors_carry_slacks_pointer_to_the_refused_part() -> None:
    detail = "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    assert outcome("invalid_blocks", detail=detail).reason.endswith(f": {detail}")


@pytest.mark.parametrize("error", ["internal_error", "fatal_error", "service_unavailable", "request_timeout"])
def test_slacks_own_trouble_is_retryable(error: str) -> None:
    assert type(outcome(error)) is Retryable


@pytest.mark.parametrize(("error", "status"), [("ratelimited", 429), ("rate_limited", 200), ("", 429)])
def test_rate_limits_are_retryable_after_retry_after(error: str, status: int) -> None:
    result = outcome(error, status, {"retry-after": "30"})
    assert type(result) is Retryable
    assert result.after == 30.0


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_without_slack_json_are_retryable(status: int) -> None:
    result = outcome("Received a response in a non-JSON format: <html>", status, {"Retry-After": "5"})
    assert type(result) is Retryable
    assert result.after == 5.0


def test_a_non_slack_4xx_is_permanent_and_points_at_api_url() -> None:
    result = outcome("Received a response in a non-JSON format: Not Found", 404)
    assert type(result) is Permanent
    assert "api_url" in result.reason


@pytest.mark.parametrize("error", ["message_not_found", "cant_update_message"])
def test_an_update_of_a_gone_message_is_post_not_found(error: str) -> None:
    result = outcome(error, method="chat.update", ref=TS)
    assert isinstance(result, PostNotFound) and isinstance(result, NotFound) and isinstance(result, Permanent)
    assert result.ref == TS and result.what == "post"
    assert error in result.reason


def test_a_reply_to_a_gone_thread_is_post_not_found() -> None:
    result = outcome("thread_not_found", ref=TS)
    assert isinstance(result, PostNotFound) and result.ref == TS


def test_a_closed_edit_window_is_post_not_editable() -> None:
    result = outcome("edit_window_closed", method="chat.update", ref=TS)
    assert isinstance(result, PostNotEditable) and result.ref == TS


@pytest.mark.parametrize(
    ("exc", "kind", "reason"),
    [
        (URLError(ConnectionRefusedError(111, "refused")), Unreachable, "connection failed: ConnectionRefusedError"),
        (URLError(socket.gaierror(-2, "no such host")), Unreachable, "connection failed: gaierror"),
        (URLError(TimeoutError("connect")), Unreachable, "connection failed: TimeoutError"),
        (URLError(ssl.SSLCertVerificationError(1, "self-signed")), Retryable, "TLS error: SSLCertVerificationError"),
        (URLError("Tunnel connection failed: 407"), Unreachable, "connection failed: URLError"),
        (TimeoutError("read"), Retryable, "timed out"),
        (http.client.RemoteDisconnected("closed"), Unreachable, "connection failed: RemoteDisconnected"),
        (ConnectionResetError(104, "reset"), Unreachable, "connection failed: ConnectionResetError"),
        (http.client.IncompleteRead(b""), Retryable, "connection failed: IncompleteRead"),
        (SlackRequestError("Invalid URL detected"), Permanent, "slack api_url is not an http(s) URL"),
    ],
)
def test_connection_errors(exc: BaseException, kind: type, reason: str) -> None:
    result = connection_outcome(exc)
    assert type(result) is kind
    assert result is not None and result.reason == reason


def test_other_exceptions_are_bugs_not_outcomes() -> None:
    assert connection_outcome(KeyError("x")) is None


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("ops/alerts", TeamChannel("ops", "alerts")),
        (" ops/town-square ", TeamChannel("ops", "town-square")),
        ("@alice", DirectMessage("alice")),
        ("@alice.smith", DirectMessage("alice.smith")),
    ],
)
def test_destinations(text: str, parsed: object) -> None:
    assert parse_destination(text) == parsed
    assert str(parsed) == text.strip()


@pytest.mark.parametrize("text", ["alerts", "ops/alerts/x", "/alerts", "ops/", "@", "@al ice", "ops/al erts", ""])
def test_bad_destinations_name_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="expected team/channel or @user"):
        parse_destination(text)


@pytest.mark.parametrize(
    "url",
    [
        "https://mm.example.org",
        "https://mm.example.org/",
        "https://mm.example.org/api/v4",
        "https://mm.example.org/api/v4/",
    ],
)
def test_api_base(url: str) -> None:
    assert api_base(url) == "https://mm.example.org/api/v4"


def test_channel_not_found_is_a_not_found() -> None:
    result = ChannelNotFound("mattermost: no channel ops/x (404)", what="channel", ref="ops/x")
    assert isinstance(result, NotFound) and isinstance(result, Permanent) and not isinstance(result, PostNotFound)
