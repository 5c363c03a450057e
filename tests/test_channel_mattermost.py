"""Mattermost channel: what it posts (golden files) to a real HTTP server, and how it reads answers."""

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
from workers.channels.mattermost import MattermostNotifier

HOOK_KEY = "s3cr3thookkey4mattermost"
HOOK_PATH = f"/hooks/{HOOK_KEY}"
ACK_URL = "https://alertq.example.org/mattermost/actions"
UI = "https://oitc.example.org"


def notifier(url: str, *, ack: dict[str, Any] | None = None, **channel: Any) -> MattermostNotifier:
    settings = Settings(
        channels={"mattermost": {"url": url, **channel}},
        ack=ack if ack is not None else {"signing_secret": SIGNING_SECRET},
    )
    made = load_notifier("mattermost", settings.channels.mattermost)
    assert isinstance(made, MattermostNotifier)
    return made


def golden_notifier(server: HTTPServer) -> MattermostNotifier:
    return notifier(
        server.url_for(HOOK_PATH),
        ui_base_url=UI,
        two_way=True,
        ack_url=ACK_URL,
        channel="alerts",
        username="openITCOCKPIT",
        icon_url="https://oitc.example.org/img/logo.png",
    )


def sent_payload(server: HTTPServer) -> Any:
    assert len(server.log) == 1, f"expected one request, got {len(server.log)}"
    request, _ = server.log[0]
    assert request.path == HOOK_PATH
    assert request.headers["Content-Type"] == "application/json"
    return json.loads(request.get_data())


def deliver_and_check_golden(server: HTTPServer, sender: MattermostNotifier, event: AlertEvent, name: str) -> Any:
    server.expect_oneshot_request(HOOK_PATH, method="POST").respond_with_data("ok")
    sender.send(event)
    payload = sent_payload(server)
    normalised, tokens = normalise_tokens(payload, event, ttl=86_400)
    check_golden("mattermost", f"{name}.json", pretty(normalised))
    return payload, tokens


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("notification_type", ALL_TYPES)
def test_payload_per_type_matches_golden(httpserver: HTTPServer, notification_type: str, kind: str) -> None:
    event = alert_event(notification_type, kind, "mattermost")
    payload, tokens = deliver_and_check_golden(
        httpserver, golden_notifier(httpserver), event, case_name(notification_type, kind)
    )
    attachment = payload["attachments"][0]
    # The button only where there is a problem to acknowledge.
    assert tokens == (1 if notification_type == "PROBLEM" else 0)
    assert ("actions" in attachment) == (notification_type == "PROBLEM")
    info = notification_type in ("ACKNOWLEDGEMENT", "CUSTOM") or notification_type.startswith(("FLAPPING", "DOWNTIME"))
    if info:
        assert attachment["color"] == "#1895f5"
    link = f"{UI}/a/services/browser/{event.service.id}" if event.service else f"{UI}/a/hosts/browser/{event.host.id}"
    assert f"]({link})" in attachment["text"]
    assert notification_type in attachment["text"]


@pytest.mark.parametrize("name", ["escalated-problem-service", "hostile-problem-service"])
def test_special_cases_match_golden(httpserver: HTTPServer, name: str) -> None:
    event = extra_events("mattermost")[name]
    payload, _ = deliver_and_check_golden(httpserver, golden_notifier(httpserver), event, name)
    text = payload["attachments"][0]["text"]
    if name.startswith("escalated"):
        assert "Escalated (step 2, since 2026-11-27 09:00:00 UTC)" in text
    else:
        # Nobody gets pinged and no markup or link comes from the output.
        assert "@channel" not in text and "@here" not in text and "@all" not in json.dumps(payload)
        assert "[link](http" not in text and "*bold*" not in text


@pytest.mark.parametrize(("kind", "state", "color"), [("host", 0, "#5cb85c"), ("host", 1, "#d9534f"),
                                                      ("host", 2, "#adadad"), ("service", 0, "#5cb85c"),
                                                      ("service", 1, "#f0ad4e"), ("service", 2, "#d9534f"),
                                                      ("service", 3, "#adadad")])  # fmt: skip
def test_problem_colour_follows_state(httpserver: HTTPServer, kind: str, state: int, color: str) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH).respond_with_data("ok")
    notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", kind, "mattermost", state=state))
    assert sent_payload(httpserver)["attachments"][0]["color"] == color


def test_plain_settings_post_no_overrides_links_or_button(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH).respond_with_data("ok")
    notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", "service", "mattermost"))
    payload = sent_payload(httpserver)
    assert set(payload) == {"text", "attachments"}
    assert "actions" not in payload["attachments"][0]
    assert "](" not in payload["attachments"][0]["text"]


def test_recovery_has_no_button_even_with_two_way(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH).respond_with_data("ok")
    golden_notifier(httpserver).send(alert_event("PROBLEM", "service", "mattermost", state=0))
    assert "actions" not in sent_payload(httpserver)["attachments"][0]


@pytest.mark.parametrize(
    ("channel", "ack", "missing"),
    [
        ({"two_way": True}, {"signing_secret": SIGNING_SECRET}, "ack_url"),
        ({"two_way": True, "ack_url": ACK_URL}, {}, "ack.signing_secret"),
    ],
)
def test_two_way_without_secret_or_ack_url_is_a_configuration_error(
    channel: dict[str, Any], ack: dict[str, Any], missing: str
) -> None:
    with pytest.raises(ConfigurationError, match=missing):
        notifier("https://mm.example.org" + HOOK_PATH, ack=ack, **channel)


def test_no_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="url"):
        load_notifier("mattermost", Settings().channels.mattermost)


# -- answers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_retryable(httpserver: HTTPServer, status: int) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_data("oops", status=status)
    with pytest.raises(Retryable, match=str(status)):
        notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", "host", "mattermost"))


def test_rate_limit_is_retryable_after_the_servers_wish(httpserver: HTTPServer) -> None:
    httpserver.expect_request(HOOK_PATH).respond_with_data("slow down", status=429, headers={"Retry-After": "3"})
    with pytest.raises(Retryable) as caught:
        notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", "host", "mattermost"))
    assert caught.value.after == 3


def test_bad_request_is_permanent(httpserver: HTTPServer) -> None:
    body = '{"id":"web.incoming_webhook.invalid.app_error","message":"Invalid webhook.","status_code":400}'
    httpserver.expect_request(HOOK_PATH).respond_with_data(body, status=400)
    with pytest.raises(Permanent, match="Invalid webhook"):
        notifier(httpserver.url_for(HOOK_PATH)).send(alert_event("PROBLEM", "host", "mattermost"))


def test_slow_server_times_out_as_retryable() -> None:
    with stalling_server(HOOK_PATH) as server, pytest.raises(Retryable, match="timed out"):
        notifier(server.url_for(HOOK_PATH), http={"read_timeout": 0.3}).send(
            alert_event("PROBLEM", "host", "mattermost")
        )


def test_connection_refused_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(Retryable, match="connection failed"):
        notifier(f"http://127.0.0.1:{port}{HOOK_PATH}").send(alert_event("PROBLEM", "host", "mattermost"))


# -- TLS and proxy ---------------------------------------------------------------------------------


def test_tls_is_verified_by_default_and_a_ca_bundle_makes_it_work(tmp_path) -> None:
    ca = local_ca(tmp_path)
    with own_server(ca.server_context) as server:
        server.expect_request(HOOK_PATH).respond_with_data("ok")
        url = server.url_for(HOOK_PATH)
        assert url.startswith("https://")
        event = alert_event("PROBLEM", "host", "mattermost")
        with pytest.raises(Retryable, match="TLS error"):
            notifier(url).send(event)
        assert len(server.log) == 0
        notifier(url, http={"ca_bundle": str(ca.ca_file)}).send(event)
        assert len(server.log) == 1


def test_proxy_setting_is_honoured(httpserver: HTTPServer) -> None:
    # The webhook host does not resolve: the request can only arrive through the proxy (this server).
    httpserver.expect_oneshot_request(HOOK_PATH, method="POST").respond_with_data("ok")
    sender = notifier(f"http://mattermost.invalid{HOOK_PATH}", http={"proxy": httpserver.url_for("/")})
    sender.send(alert_event("PROBLEM", "host", "mattermost"))
    request, _ = httpserver.log[0]
    # The absolute URI in the request line is what a client sends only to a proxy.
    assert request.environ["REQUEST_URI"] == f"http://mattermost.invalid{HOOK_PATH}"


# -- secrets ---------------------------------------------------------------------------------------


def test_no_secret_in_errors_or_logs(httpserver: HTTPServer, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    # A proxy-style error page that quotes the whole URL back.
    httpserver.expect_request(HOOK_PATH).respond_with_data(
        f"502 could not reach {httpserver.url_for(HOOK_PATH)} ({HOOK_PATH})", status=502
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    reasons = []
    event = alert_event("PROBLEM", "service", "mattermost")
    for url, extra in [
        (httpserver.url_for(HOOK_PATH), {}),
        (f"http://127.0.0.1:{closed_port}{HOOK_PATH}", {}),
        (f"https://127.0.0.1:{httpserver.port}{HOOK_PATH}", {}),  # TLS to a plain-HTTP server
        (f"http://mattermost.invalid{HOOK_PATH}", {"http": {"proxy": f"http://u:proxypass@127.0.0.1:{closed_port}"}}),
    ]:
        sender = notifier(url, two_way=True, ack_url=ACK_URL, **extra)
        with pytest.raises((Retryable, Permanent)) as caught:
            sender.send(event)
        reasons.append(f"{caught.value} {caught.value!r} {caught.value.reason}")
        reasons.append(sender.target(event))
    # Everything alertq's side logged; werkzeug's lines are the fake Mattermost's own access log.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("werkzeug"))
    seen = "\n".join(reasons) + ours + "".join(capsys.readouterr())
    assert "mattermost" in seen  # the check below would be empty otherwise
    for secret in (HOOK_KEY, SIGNING_SECRET, "proxypass"):
        assert secret not in seen


def test_invalid_unicode_in_output_still_makes_valid_json(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH).respond_with_data("ok")
    event = alert_event("PROBLEM", "host", "mattermost", output="bad \ud800 surrogate", long_output="\udfff")
    golden_notifier(httpserver).send(event)
    assert "bad \ufffd surrogate" in sent_payload(httpserver)["attachments"][0]["text"]


def test_token_lifetime_follows_ack_token_ttl(httpserver: HTTPServer) -> None:
    httpserver.expect_oneshot_request(HOOK_PATH).respond_with_data("ok")
    ack = {"signing_secret": SIGNING_SECRET, "token_ttl": 600}
    event = alert_event("PROBLEM", "host", "mattermost")
    notifier(httpserver.url_for(HOOK_PATH), ack=ack, two_way=True, ack_url=ACK_URL).send(event)
    _, tokens = normalise_tokens(sent_payload(httpserver), event, ttl=600)  # checks expiry ≈ now + 600
    assert tokens == 1


def test_an_escalation_step_posts_to_the_contacts_own_channel() -> None:
    from workers.channels.mattermost import build_payload

    settings = Settings().channels.mattermost.model_copy(update={"channel": "ops"})
    contact = {"name": "alice", "email": None, "pager": None, "address": "@alice"}
    step = alert_event("PROBLEM", "service", "mattermost", contact=contact)
    plain = alert_event("PROBLEM", "service", "mattermost")
    assert build_payload(step, settings, 0)["channel"] == "@alice"
    assert build_payload(plain, settings, 0)["channel"] == "ops", "no contact address: the configured override"
