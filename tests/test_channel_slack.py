"""Slack channel: the Block Kit payload (golden files) sent to a real HTTP server, and Slack's answers."""

from __future__ import annotations

import json
import logging
import socket
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from delivery.outcomes import Permanent, Retryable
from schemas.alert import AlertEvent
from schemas.settings import Settings
from tests.support.alert_events import ALL_TYPES, KINDS, alert_event, case_name, extra_events
from tests.support.chat import SIGNING_SECRET, normalise_tokens, own_server, pretty, stalling_server
from tests.support.golden import check_golden
from tests.support.tls import local_ca
from workers.channels import load_notifier
from workers.channels.base import ConfigurationError
from workers.channels.slack import ACK_ACTION_ID, SlackNotifier

HOOK_PATH = "/services/T0000AAAA/B0000BBBB/s3cr3tslackkeyXYZ"
HOOK_KEY = "s3cr3tslackkeyXYZ"
UI = "https://oitc.example.org"


def notifier(url: str, *, ack: dict[str, Any] | None = None, **channel: Any) -> SlackNotifier:
    settings = Settings(
        channels={"slack": {"url": url, **channel}},
        ack=ack if ack is not None else {"signing_secret": SIGNING_SECRET},
    )
    made = load_notifier("slack", settings.channels.slack)
    assert isinstance(made, SlackNotifier)
    return made


def sent_payload(server: HTTPServer) -> Any:
    assert len(server.log) == 1, f"expected one request, got {len(server.log)}"
    request, _ = server.log[0]
    assert request.path == HOOK_PATH
    assert request.headers["Content-Type"] == "application/json"
    return json.loads(request.get_data())


def deliver_and_check_golden(server: HTTPServer, event: AlertEvent, name: str) -> tuple[Any, int]:
    server.expect_oneshot_request(HOOK_PATH, method="POST").respond_with_data("ok")
    notifier(server.url_for(HOOK_PATH), ui_base_url=UI, two_way=True).send(event)
    payload = sent_payload(server)
    normalised, tokens = normalise_tokens(payload, event, ttl=86_400)
    check_golden("slack", f"{name}.json", pretty(normalised))
    return payload, tokens


def assert_block_kit_limits(payload: Any) -> None:
    """The limits Slack answers `invalid_blocks` for, checked on what was actually sent."""
    assert payload["text"]
    for block in payload["blocks"]:
        if block["type"] == "header":
            assert 0 < len(block["text"]["text"]) <= 150
        if block["type"] == "section" and "text" in block:
            assert 0 < len(block["text"]["text"]) <= 3000
        if block["type"] == "section" and "fields" in block:
            assert 0 < len(block["fields"]) <= 10
            assert all(0 < len(f["text"]) <= 2000 for f in block["fields"])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("notification_type", ALL_TYPES)
def test_payload_per_type_matches_golden(httpserver: HTTPServer, notification_type: str, kind: str) -> None:
    event = alert_event(notification_type, kind, "slack")
    payload, tokens = deliver_and_check_golden(httpserver, event, case_name(notification_type, kind))
    assert_block_kit_limits(payload)
    assert payload["text"].startswith(f"{notification_type}: web01")
    actions = [b for b in payload["blocks"] if b["type"] == "actions"]
    assert tokens == len(actions) == (1 if notification_type == "PROBLEM" else 0)
    if actions:
        button = actions[0]["elements"][0]
        assert button["action_id"] == ACK_ACTION_ID and button["text"]["text"] == "Acknowledge"


@pytest.mark.parametrize("name", ["escalated-problem-service", "hostile-problem-service"])
def test_special_cases_match_golden(httpserver: HTTPServer, name: str) -> None:
    payload, _ = deliver_and_check_golden(httpserver, extra_events("slack")[name], name)
    assert_block_kit_limits(payload)
    sent = json.dumps(payload)
    if name.startswith("escalated"):
        assert "Escalated (step 2, since 2026-11-27 09:00:00 UTC)" in sent
    else:
        # No link, mention or special token can come from user text: every < is escaped.
        mrkdwn = [b["text"]["text"] for b in payload["blocks"] if b["type"] == "section" and "text" in b]
        assert all("<!channel>" not in text and "<http://evil" not in text for text in mrkdwn)
        assert payload["text"].startswith("PROBLEM: web&lt;01&gt; &amp; *db*")


def test_huge_output_is_cut_to_slacks_limits(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH).respond_with_data("ok")
    event = alert_event("PROBLEM", "service", "slack", output="<&>" * 20_000, long_output="x" * 60_000)
    notifier(httpserver.url_for(HOOK_PATH)).send(event)
    payload = sent_payload(httpserver)
    assert_block_kit_limits(payload)
    assert "(truncated)" in json.dumps(payload)


def test_plain_settings_have_no_button_and_no_links(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH).respond_with_data("ok")
    notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", "host", "slack"))
    payload = sent_payload(httpserver)
    assert all(b["type"] != "actions" for b in payload["blocks"])
    assert "/a/hosts/browser/" not in json.dumps(payload)


def test_two_way_without_signing_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"ack\.signing_secret"):
        notifier("https://hooks.slack.com" + HOOK_PATH, ack={}, two_way=True)


def test_target_is_a_hash_not_the_url() -> None:
    first = notifier("https://hooks.slack.com" + HOOK_PATH)
    other = notifier("https://hooks.slack.com/services/T1/B1/other")
    event = alert_event("PROBLEM", "host", "slack")
    assert first.target(event) != other.target(event)
    assert HOOK_KEY not in first.target(event) and "hooks.slack.com" not in first.target(event)


# -- answers -------------------------------------------------------------------------------------

PERMANENT = [
    (400, "invalid_payload"),
    (400, "no_text"),
    (400, "user_not_found"),
    (403, "action_prohibited"),
    (403, "invalid_token"),
    (404, "channel_not_found"),
    (404, "no_service"),
    (410, "channel_is_archived"),
    (403, "team_disabled"),
    (400, "posting_to_general_channel_denied"),
    # The string decides even under a status that would otherwise be retried.
    (500, "channel_is_archived"),
]


@pytest.mark.parametrize(("status", "body"), PERMANENT)
def test_slack_error_strings_are_permanent(httpserver: HTTPServer, status: int, body: str) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_data(body, status=status)
    with pytest.raises(Permanent, match=body):
        notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", "host", "slack"))


@pytest.mark.parametrize(("status", "body"), [(500, "rollup_error"), (502, "bad gateway"), (503, ""), (504, "")])
def test_slack_trouble_is_retryable(httpserver: HTTPServer, status: int, body: str) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_data(body, status=status)
    with pytest.raises(Retryable, match=str(status)):
        notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", "host", "slack"))


def test_rate_limit_is_retryable_after_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_data("rate_limited", status=429, headers={"Retry-After": "3"})
    with pytest.raises(Retryable) as caught:
        notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", "host", "slack"))
    assert caught.value.after == 3


def test_slow_slack_times_out_as_retryable() -> None:
    with stalling_server(HOOK_PATH) as server, pytest.raises(Retryable, match="timed out"):
        notifier(server.url_for(HOOK_PATH), http={"read_timeout": 0.3}).send(alert_event("PROBLEM", "host", "slack"))


def test_tls_is_verified_by_default_and_a_ca_bundle_makes_it_work(tmp_path) -> None:
    ca = local_ca(tmp_path)
    with own_server(ca.server_context) as server:
        server.expect_request(HOOK_PATH).respond_with_data("ok")
        event = alert_event("PROBLEM", "host", "slack")
        with pytest.raises(Retryable, match="TLS error"):
            notifier(server.url_for(HOOK_PATH)).send(event)
        assert len(server.log) == 0
        notifier(server.url_for(HOOK_PATH), http={"ca_bundle": str(ca.ca_file)}).send(event)
        assert len(server.log) == 1


def test_proxy_setting_is_honoured(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH, method="POST").respond_with_data("ok")
    notifier(f"http://hooks.slack.invalid{HOOK_PATH}", http={"proxy": httpserver.url_for("/")}).send(
        alert_event("PROBLEM", "host", "slack")
    )
    request, _ = httpserver.log[0]
    assert request.environ["REQUEST_URI"] == f"http://hooks.slack.invalid{HOOK_PATH}"


def test_no_secret_in_errors_or_logs(httpserver: HTTPServer, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    httpserver.expect_request(HOOK_PATH).respond_with_data(f"invalid_token for {HOOK_PATH}", status=403)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    event = alert_event("PROBLEM", "service", "slack")
    reasons = []
    for url in (
        httpserver.url_for(HOOK_PATH),
        f"http://127.0.0.1:{closed_port}{HOOK_PATH}",
        f"https://127.0.0.1:{httpserver.port}{HOOK_PATH}",
    ):
        sender = notifier(url, two_way=True)
        with pytest.raises((Retryable, Permanent)) as caught:
            sender.send(event)
        reasons.append(f"{caught.value} {caught.value!r} {sender.target(event)}")
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))
    seen = "\n".join(reasons) + ours + "".join(capsys.readouterr())
    assert "HTTP 403" in seen and "TLS error" in seen and "connection failed" in seen
    for secret in (HOOK_KEY, SIGNING_SECRET):
        assert secret not in seen


def test_invalid_unicode_in_output_still_makes_valid_json(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH).respond_with_data("ok")
    event = alert_event("PROBLEM", "host", "slack", output="bad \ud800 surrogate")
    notifier(httpserver.url_for(HOOK_PATH), two_way=True).send(event)
    assert "bad \ufffd surrogate" in json.dumps(sent_payload(httpserver), ensure_ascii=False)


def test_an_escalation_step_names_the_contacts_channel_for_legacy_webhooks() -> None:
    from workers.channels.slack import build_payload

    settings = Settings().channels.slack
    contact = {"name": "alice", "email": None, "pager": None, "address": "#ops-alice"}
    assert (
        build_payload(alert_event("PROBLEM", "host", "slack", contact=contact), settings, 0)["channel"] == "#ops-alice"
    )
    assert "channel" not in build_payload(alert_event("PROBLEM", "host", "slack"), settings, 0)
