"""`alertq sink` as a user meets it: a real process on free ports, real HTTP posts, real SMTP, a real
listener standing in for the ack listener, and a real browser loading the page."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import smtplib
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from alertq.stack import Process, processes, route_to_sink, sink_env
from schemas.settings import Settings
from tests.conftest import require
from tests.support.health import wait_healthy
from tests.support.sink import Sink, chromium, free_port, run_chromium, sink_environment, sinks

MATTERMOST_ACK_KEYS = {
    "user_id",
    "user_name",
    "channel_id",
    "channel_name",
    "team_id",
    "team_domain",
    "post_id",
    "trigger_id",
    "type",
    "context",
}


@pytest.fixture
def start_sink(tmp_path: Path) -> Iterator[Callable[..., Sink]]:
    with sinks(tmp_path) as start:
        yield start


@pytest.fixture
def sink(start_sink: Callable[..., Sink]) -> Sink:
    return start_sink()


def mattermost_problem(ack_url: str) -> dict[str, Any]:
    """What openITCOCKPIT's Mattermost module posts for a host problem, with two-way on."""
    return {
        "text": "",
        "attachments": [
            {
                "color": "#d9534f",
                "text": ":red_circle: **PROBLEM** [web01](https://oitc.example.org/a/hosts/browser/7) is **DOWN**\n"
                "PING CRITICAL - Packet loss = 100%",
                "fields": [{"title": "State", "value": "DOWN", "short": True}],
            },
            {
                "text": "",
                "actions": [
                    {
                        "id": "ack",
                        "name": "Acknowledge",
                        "integration": {"url": ack_url, "context": {"token": "signed-token", "host": "web01"}},
                    }
                ],
            },
        ],
    }


def slack_problem() -> dict[str, Any]:
    return {
        "text": "PROBLEM: web01 / disk is CRITICAL",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "PROBLEM: web01 / disk is CRITICAL"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*DISK CRITICAL* - / 97% used <https://oitc.example.org/x|open>"},
                "fields": [
                    {"type": "mrkdwn", "text": "*Host*\nweb01"},
                    {"type": "mrkdwn", "text": "*State*\nCRITICAL"},
                ],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "notification 1 via alertq"}]},
            {
                "type": "actions",
                "block_id": "alertq_actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "alertq_ack",
                        "value": "signed-slack-token",
                        "style": "primary",
                        "text": {"type": "plain_text", "text": "Acknowledge"},
                    }
                ],
            },
        ],
    }


def alert_event() -> dict[str, Any]:
    return {
        "schema": "alertq.alert/1",
        "event_id": "0b9d7c1e-3b0e-4c57-9d54-8c1b1f0e2a11",
        "created_at": "2026-01-01T00:00:00Z",
        "channel": "webhook",
        "kind": "service",
        "notification_type": "PROBLEM",
        "host": {"id": "h-uuid", "name": "h-uuid", "display_name": "web01", "address": "10.0.0.7"},
        "service": {"id": "s-uuid", "name": "s-uuid", "display_name": "disk"},
        "state": 2,
        "output": "DISK CRITICAL - / 97% used",
    }


# --- receiving and rendering ---------------------------------------------------------------------


def test_mattermost_post_is_answered_ok_kept_and_rendered(sink: Sink) -> None:
    response = sink.post("/hooks/mattermost/local", mattermost_problem("http://127.0.0.1:9/actions"))
    assert (response.status_code, response.text) == (200, "ok")

    [message] = sink.messages()
    assert message["channel"] == "mattermost"
    assert message["hook"] == "local"
    assert message["payload"] == mattermost_problem("http://127.0.0.1:9/actions")
    rendered = message["rendered"]
    assert rendered["colour"] == "#d9534f"
    assert "PING CRITICAL - Packet loss = 100%" in rendered["text"]
    assert "State: DOWN" in rendered["text"]
    assert [(b["key"], b["label"], b["interactive"]) for b in rendered["buttons"]] == [("ack", "Acknowledge", True)]


def test_slack_blocks_are_rendered_as_header_text_fields_context_and_button(sink: Sink) -> None:
    response = sink.post("/hooks/slack/T000/B000/XXXX", slack_problem())
    assert (response.status_code, response.text) == (200, "ok")

    [message] = sink.messages(channel="slack")
    rendered = message["rendered"]
    assert rendered["title"] == "PROBLEM: web01 / disk is CRITICAL"
    assert "*DISK CRITICAL* - / 97% used" in rendered["text"]
    kinds = [part["kind"] for part in rendered["cards"][0]["parts"]]
    assert kinds == ["header", "text", "fields", "context", "buttons"]
    assert [b["key"] for b in rendered["buttons"]] == ["alertq_ack"]


def test_webhook_event_is_rendered_like_the_chat_would(sink: Sink) -> None:
    response = sink.post("/hooks/webhook/sms-gateway", alert_event())
    assert response.status_code == 200

    [message] = sink.messages(channel="webhook")
    assert message["payload"] == alert_event()
    assert message["rendered"]["title"] == "PROBLEM: web01 / disk is CRITICAL"
    assert message["rendered"]["colour"] == "#d9534f"
    assert message["headers"]["content-type"] == "application/json"


def test_mail_sent_over_smtp_is_kept_with_its_text_and_html_parts(sink: Sink) -> None:
    mail = EmailMessage()
    mail["Subject"] = "** PROBLEM Service Alert: web01/disk is CRITICAL **"
    mail["From"] = "alertq@example.org"
    mail["To"] = "ops@example.org"
    mail.set_content("DISK CRITICAL - / 97% used\n")
    mail.add_alternative("<p><b>DISK CRITICAL</b> - / 97% used</p>", subtype="html")
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as client:
        client.login("alertq", "any password")  # a channel set up with credentials still delivers here
        client.send_message(mail, to_addrs=["ops@example.org", "oncall@example.org"])

    [message] = sink.messages(channel="email")
    payload = message["payload"]
    assert payload["subject"] == "** PROBLEM Service Alert: web01/disk is CRITICAL **"
    assert payload["from"] == "alertq@example.org"
    assert payload["to"] == ["ops@example.org", "oncall@example.org"]
    assert payload["text"] == "DISK CRITICAL - / 97% used\n"
    assert payload["html"].strip() == "<p><b>DISK CRITICAL</b> - / 97% used</p>"
    assert message["rendered"]["title"] == payload["subject"]


def test_bad_posts_get_the_answers_the_real_services_give(sink: Sink) -> None:
    broken = requests.post(sink.url + "/hooks/slack/x", data="{not json", timeout=10)
    assert (broken.status_code, broken.text) == (400, "invalid_payload")
    empty = sink.post("/hooks/mattermost/x", {"channel": "town-square"})
    assert (empty.status_code, empty.text) == (400, "no_text")
    assert sink.messages() == []
    assert requests.get(sink.url + "/api/messages/99", timeout=10).status_code == 404


def test_only_the_newest_max_messages_are_kept(start_sink: Callable[..., Sink]) -> None:
    sink = start_sink(max_messages="3")
    for n in range(5):
        sink.post("/hooks/mattermost/local", {"text": f"message {n}"})

    assert [m["payload"]["text"] for m in sink.messages()] == ["message 2", "message 3", "message 4"]
    assert [m["payload"]["text"] for m in sink.messages(limit="2")] == ["message 3", "message 4"]
    assert "keeps the newest 3 messages" in requests.get(sink.url + "/", timeout=10).text

    assert requests.delete(sink.url + "/api/messages", timeout=10).json() == {"deleted": 3}
    assert sink.messages() == []


@pytest.mark.parametrize("taken_by", ["HTTP", "SMTP"])
def test_a_port_in_use_is_one_clear_line(tmp_path: Path, taken_by: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"http_port": str(port), "smtp_port": str(free_port())}
        if taken_by == "SMTP":
            ports = {"http_port": str(free_port()), "smtp_port": str(port)}
        env = sink_environment(tmp_path, **ports)
        result = subprocess.run(["alertq", "sink"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert f"cannot listen for {taken_by} on 127.0.0.1:{port}" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


# --- buttons -------------------------------------------------------------------------------------


def test_mattermost_button_posts_mattermosts_json_and_applies_the_update(sink: Sink, httpserver: HTTPServer) -> None:
    answer = {"update": {"message": "Acknowledged by **@alice** via Mattermost.", "props": {}}}
    httpserver.expect_request("/mattermost/actions", method="POST").respond_with_json(answer)
    sink.post("/hooks/mattermost/ops", mattermost_problem(httpserver.url_for("/mattermost/actions")))
    [message] = sink.messages()

    response = sink.click(message["id"], "ack", user_name="alice")

    assert response.status_code == 200, response.text
    [(request, _)] = httpserver.log
    assert request.headers["Content-Type"] == "application/json"
    sent = request.get_json()
    assert set(sent) == MATTERMOST_ACK_KEYS
    assert sent["user_name"] == "alice"
    assert sent["type"] == "button"
    assert sent["channel_name"] == "ops"
    assert sent["context"] == {"token": "signed-token", "host": "web01"}
    assert len(sent["post_id"]) == 26
    after = sink.message(message["id"])
    assert after["payload"]["text"] == "Acknowledged by **@alice** via Mattermost."
    assert "attachments" not in after["payload"]
    assert after["rendered"]["buttons"] == []
    assert after["updated_at"] is not None


def test_mattermost_update_without_props_keeps_the_button(sink: Sink, httpserver: HTTPServer) -> None:
    # openITCOCKPIT's own handler answers like this: the text changes, the button stays.
    answer = {"update": {"message": "Issue got acknowledged by **@bob** via Mattermost."}, "ephemeral_text": "done"}
    httpserver.expect_request("/ack").respond_with_json(answer)
    sink.post("/hooks/mattermost/ops", mattermost_problem(httpserver.url_for("/ack")))

    assert sink.click("1", "ack", user_name="bob").status_code == 200

    after = sink.message("1")
    assert after["payload"]["text"] == "Issue got acknowledged by **@bob** via Mattermost."
    assert [b["label"] for b in after["rendered"]["buttons"]] == ["Acknowledge"]
    assert "(only visible to @bob) done" in after["notes"]


def test_mattermost_update_with_null_props_keeps_the_button(sink: Sink, httpserver: HTTPServer) -> None:
    # Mattermost: `update.props` null keeps the props, `{}` clears them, an object replaces them.
    answer = {"update": {"message": "Seen by **@erin**.", "props": None}}
    httpserver.expect_request("/ack").respond_with_json(answer)
    sink.post("/hooks/mattermost/ops", mattermost_problem(httpserver.url_for("/ack")))

    assert sink.click("1", "ack", user_name="erin").status_code == 200

    after = sink.message("1")
    assert after["payload"]["text"] == "Seen by **@erin**."
    assert [b["label"] for b in after["rendered"]["buttons"]] == ["Acknowledge"]


def test_a_refused_click_is_reported_without_the_secret_url(sink: Sink, httpserver: HTTPServer) -> None:
    httpserver.expect_request("/ack").respond_with_data("bad token", status=401)
    secret_url = httpserver.url_for("/ack") + "?apikey=s3cr3t-api-key"
    sink.post("/hooks/mattermost/ops", mattermost_problem(secret_url))

    response = sink.click("1", "ack")

    assert response.status_code == 502
    assert "answered 401" in response.json()["error"]
    assert "s3cr3t" not in response.text
    after = sink.message("1")
    assert [b["label"] for b in after["rendered"]["buttons"]] == ["Acknowledge"]
    assert any("click failed" in note and "s3cr3t" not in note for note in after["notes"])
    sink.process.terminate()
    assert sink.process.wait(30) == 0  # SIGTERM is a clean stop
    logged = sink.log.read_text()
    assert '"status": 401' in logged  # the refusal is logged ...
    assert "s3cr3t" not in logged  # ... without the URL's key


def test_clicking_an_unknown_button_is_404(sink: Sink) -> None:
    sink.post("/hooks/mattermost/ops", mattermost_problem("http://127.0.0.1:9/ack"))
    response = sink.click("1", "nope")
    assert response.status_code == 404
    assert "no button 'nope'" in response.json()["error"]


def mattermost_digest(ack_url: str) -> dict[str, Any]:
    """A digest part's buttons as alertq posts them (workers/conversations/digest.py)."""
    return {
        "text": "#### :rotating_light: 3 problems on 3 hosts: 3 CRITICAL",
        "attachments": [
            {
                "fallback": "Acknowledge all 3",
                "text": "",
                "actions": [
                    {
                        "id": "ackall",
                        "type": "button",
                        "name": "Acknowledge all 3",
                        "style": "danger",
                        "integration": {"url": ack_url, "context": {"action": "ackall", "token": "tok-all"}},
                    },
                    {
                        "id": "ackitem",
                        "type": "select",
                        "name": "Ack one problem…",
                        "options": [{"text": f"web0{n} / Disk", "value": f"tok-{n}"} for n in range(3)],
                        "integration": {"url": ack_url, "context": {"action": "ackitem"}},
                    },
                ],
            }
        ],
    }


def test_a_mattermost_menu_sends_the_chosen_option_in_the_context_as_mattermost_does(
    sink: Sink, httpserver: HTTPServer
) -> None:
    answer = {"update": {"message": "3 problems", "props": {}}, "ephemeral_text": "sent"}
    httpserver.expect_request("/mattermost/actions", method="POST").respond_with_json(answer)
    sink.post("/hooks/mattermost/ops", mattermost_digest(httpserver.url_for("/mattermost/actions")))
    [message] = sink.messages()
    every, menu = message["rendered"]["buttons"]
    assert (every["label"], every["options"]) == ("Acknowledge all 3", [])
    assert menu["label"] == "Ack one problem…" and menu["interactive"]
    assert [o["text"] for o in menu["options"]] == ["web00 / Disk", "web01 / Disk", "web02 / Disk"]

    # Only the menu's own options can be chosen, and a menu needs one; a button takes none.
    assert sink.click(message["id"], "ackitem", selected_option="tok-forged").status_code == 409
    assert sink.click(message["id"], "ackitem").status_code == 400
    assert sink.click(message["id"], "ackall", selected_option="tok-1").status_code == 409
    assert httpserver.log == []

    response = sink.click(message["id"], "ackitem", user_name="erin", selected_option="tok-1")

    assert response.status_code == 200, response.text
    [(request, _)] = httpserver.log
    sent = request.get_json()
    assert set(sent) == MATTERMOST_ACK_KEYS | {"data_source"}
    assert (sent["type"], sent["user_name"]) == ("select", "erin")
    assert sent["context"] == {"action": "ackitem", "selected_option": "tok-1"}
    after = sink.message(message["id"])
    assert after["rendered"]["buttons"] == []
    assert "(only visible to @erin) sent" in after["notes"]


def test_a_slack_static_select_sends_its_selected_option(
    start_sink: Callable[..., Sink], httpserver: HTTPServer
) -> None:
    received: list[dict[str, Any]] = []

    def listener(request: Request) -> Response:
        received.append(json.loads(parse_qs(request.get_data().decode())["payload"][0]))
        return Response("", status=200)

    httpserver.expect_request("/slack/actions", method="POST").respond_with_handler(listener)
    sink = start_sink(slack_actions_url=httpserver.url_for("/slack/actions"))
    options = [{"text": {"type": "plain_text", "text": f"web0{n} / Disk"}, "value": f"tok-{n}"} for n in range(2)]
    menu = {
        "type": "static_select",
        "action_id": "alertq_ack_item",
        "placeholder": {"type": "plain_text", "text": "Ack one problem…"},
        "options": options,
    }
    digest = {
        "text": "2 problems",
        "blocks": [{"type": "actions", "block_id": "alertq_digest_ack", "elements": [menu]}],
    }
    sink.post("/hooks/slack/ops", digest)
    [button] = sink.messages()[0]["rendered"]["buttons"]
    assert button["label"] == "Ack one problem…" and [o["value"] for o in button["options"]] == ["tok-0", "tok-1"]

    response = sink.click("1", "alertq_ack_item", user_name="carol", selected_option="tok-1")

    assert response.status_code == 200, response.text
    [payload] = received
    [action] = payload["actions"]
    assert (action["type"], action["action_id"], action["block_id"]) == (
        "static_select",
        "alertq_ack_item",
        "alertq_digest_ack",
    )
    assert action["selected_option"] == options[1]


def test_slack_button_posts_block_actions_and_the_listener_replaces_through_response_url(
    start_sink: Callable[..., Sink], httpserver: HTTPServer
) -> None:
    secret = "slack-signing-secret-0123456789abcdef"
    received: list[dict[str, Any]] = []

    def listener(request: Request) -> Response:
        # What the ack listener does: verify, then answer through response_url.
        body = request.get_data()
        base = b"v0:" + request.headers["X-Slack-Request-Timestamp"].encode() + b":" + body
        expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers["X-Slack-Signature"]):
            return Response("bad signature", status=401)
        payload = json.loads(parse_qs(body.decode())["payload"][0])
        received.append(payload)
        reply = {
            "replace_original": True,
            "text": f"Acknowledged by @{payload['user']['username']}",
            "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Acknowledged by *@carol*"}}],
        }
        answer = requests.post(payload["response_url"], json=reply, timeout=10)
        return Response("", status=200 if answer.ok else 500)

    httpserver.expect_request("/slack/actions", method="POST").respond_with_handler(listener)
    sink = start_sink(slack_actions_url=httpserver.url_for("/slack/actions"), slack_signing_secret=secret)
    sink.post("/hooks/slack/ops", slack_problem())

    response = sink.click("1", "alertq_ack", user_name="carol")

    assert response.status_code == 200, response.text
    [payload] = received
    assert payload["type"] == "block_actions"
    assert payload["user"]["username"] == "carol"
    assert payload["actions"][0]["action_id"] == "alertq_ack"
    assert payload["actions"][0]["value"] == "signed-slack-token"
    assert payload["actions"][0]["block_id"] == "alertq_actions"
    assert payload["response_url"].startswith(sink.url + "/hooks/slack-response/1/")
    after = sink.message("1")
    assert after["payload"]["text"] == "Acknowledged by @carol"
    assert after["rendered"]["buttons"] == []
    assert after["rendered"]["text"] == "Acknowledged by @carol\nAcknowledged by *@carol*"
    # A guessed response_url is refused.
    forged = requests.post(sink.url + "/hooks/slack-response/1/guess", json={"text": "x"}, timeout=10)
    assert forged.status_code == 404


def test_slack_button_without_an_interactivity_url_says_what_to_set(sink: Sink) -> None:
    sink.post("/hooks/slack/ops", slack_problem())
    response = sink.click("1", "alertq_ack")
    assert response.status_code == 409
    assert "ALERTQ_SINK__SLACK_ACTIONS_URL" in response.json()["error"]


# --- the page in a real browser ------------------------------------------------------------------


def test_the_page_shows_messages_and_buttons_in_a_browser(sink: Sink, tmp_path: Path) -> None:
    require(chromium() is not None, "chromium is not installed (apt-get install chromium)")
    sink.post("/hooks/mattermost/ops", mattermost_problem("http://127.0.0.1:9/ack"))
    sink.post("/hooks/slack/ops", slack_problem())
    sink.post("/hooks/webhook/sms", alert_event())
    with smtplib.SMTP("127.0.0.1", sink.smtp_port, timeout=10) as client:
        mail = EmailMessage()
        mail["Subject"] = "** PROBLEM Host Alert: web01 is DOWN **"
        mail["From"] = "alertq@example.org"
        mail["To"] = "ops@example.org"
        mail.set_content("PING CRITICAL")
        mail.add_alternative("<p>PING <b>CRITICAL</b></p>", subtype="html")
        client.send_message(mail)

    dom = run_chromium(["--dump-dom"], sink.url + "/")

    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    assert '<strong>PROBLEM</strong> <a href="https://oitc.example.org/a/hosts/browser/7"' in html
    assert 'class="bar" style="background: #d9534f"' in html
    assert '<button class="btn default" type="button" data-message="1" data-action="ack">Acknowledge</button>' in html
    assert 'data-action="alertq_ack">Acknowledge</button>' in html
    assert "PROBLEM: web01 / disk is CRITICAL" in html
    assert "** PROBLEM Host Alert: web01 is DOWN **" in html

    shot = tmp_path / "sink.png"
    taken = run_chromium(
        [f"--screenshot={shot}", "--window-size=1100,1400", "--virtual-time-budget=3000"], sink.url + "/"
    )
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    if os.environ.get("ALERTQ_SINK_SCREENSHOT"):
        shutil.copy(shot, os.environ["ALERTQ_SINK_SCREENSHOT"])


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """Debian's chromium driven through Debian's chromedriver: nothing is downloaded at run time."""
    require(chromium() is not None and shutil.which("chromedriver") is not None, "chromium/chromium-driver missing")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium() or ""
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(flag)
    options.add_argument("--disable-background-networking")
    options.add_argument("--disable-component-update")
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(executable_path=shutil.which("chromedriver")), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_clicking_acknowledge_in_the_page_acks_and_the_page_updates_itself(
    sink: Sink, httpserver: HTTPServer, browser: Any
) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    answer = {"update": {"message": "Acknowledged by **@dave** via Mattermost.", "props": {}}}
    httpserver.expect_request("/mattermost/actions").respond_with_json(answer)
    browser.get(sink.url + "/")
    # The page re-renders a message when it changes: an element found a moment ago may be gone.
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    # The page was empty when loaded; it shows the post without a reload.
    sink.post("/hooks/mattermost/ops", mattermost_problem(httpserver.url_for("/mattermost/actions")))
    button = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#message-1 button[data-action="ack"]'))
    user = browser.find_element(By.ID, "user")
    user.clear()
    user.send_keys("dave")

    button.click()

    wait.until(lambda d: "Acknowledged by @dave via Mattermost." in d.find_element(By.ID, "message-1").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#message-1 button") == []
    [(request, _)] = httpserver.log
    assert request.get_json()["user_name"] == "dave"


def test_choosing_in_a_menu_of_the_page_sends_that_option(sink: Sink, httpserver: HTTPServer, browser: Any) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    answer = {"update": {"message": "Acknowledgement by @frank sent", "props": {}}}
    httpserver.expect_request("/mattermost/actions").respond_with_json(answer)
    sink.post("/hooks/mattermost/ops", mattermost_digest(httpserver.url_for("/mattermost/actions")))
    browser.get(sink.url + "/")
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    menu = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, '#message-1 select[data-action="ackitem"]'))
    user = browser.find_element(By.ID, "user")
    user.clear()
    user.send_keys("frank")

    Select(menu).select_by_visible_text("web02 / Disk")

    wait.until(lambda d: "Acknowledgement by @frank sent" in d.find_element(By.ID, "message-1").text)
    assert browser.find_elements(By.CSS_SELECTOR, "#message-1 select") == []
    [(request, _)] = httpserver.log
    assert (request.get_json()["user_name"], request.get_json()["context"]["selected_option"]) == ("frank", "tok-2")


# --- alertq up ------------------------------------------------------------------------------------


def test_channels_without_an_endpoint_are_pointed_at_the_sink(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("ALERTQ_"):
            monkeypatch.delenv(key)
    (tmp_path / "alertq.toml").write_text("")
    monkeypatch.setenv("ALERTQ_CONFIG", str(tmp_path / "alertq.toml"))
    monkeypatch.setenv("ALERTQ_SINK__HTTP_PORT", "18025")
    monkeypatch.setenv("ALERTQ_SINK__SMTP_PORT", "12525")
    monkeypatch.setenv("ALERTQ_CHANNELS__SLACK__URL", "https://hooks.slack.com/services/T/B/real")
    monkeypatch.setenv("ALERTQ_CHANNELS__WEBHOOK__ENABLED", "false")
    settings = Settings()

    # Chats in API mode against the sink's emulation, so `make run` shows conversations.
    mattermost_api = {
        "ALERTQ_CHANNELS__MATTERMOST__API_URL": "http://127.0.0.1:18025",
        "ALERTQ_CHANNELS__MATTERMOST__BOT_TOKEN": "alertq-dev-token",
        "ALERTQ_CHANNELS__MATTERMOST__CHANNEL": "alertq/alerts",
    }
    assert sink_env(settings, "mattermost") == mattermost_api
    assert sink_env(settings, "slack") == {}
    assert sink_env(settings, "webhook") == {}
    assert sink_env(settings, "email") == {
        "ALERTQ_CHANNELS__EMAIL__HOST": "127.0.0.1",
        "ALERTQ_CHANNELS__EMAIL__PORT": "12525",
        "ALERTQ_CHANNELS__EMAIL__SECURITY": "none",
        "ALERTQ_CHANNELS__EMAIL__RECIPIENTS": '["ops@alertq.local"]',
    }
    worker = route_to_sink(settings, Process("worker-mattermost", ["alertq", "worker", "mattermost"]))
    assert worker.env == mattermost_api
    assert route_to_sink(settings, Process("worker-slack", ["alertq", "worker", "slack"])).env == {}
    # The ack listener tells the chat through the same API.
    assert route_to_sink(settings, Process("ack-listener", ["alertq", "ack-listener"])).env == mattermost_api
    monkeypatch.delenv("ALERTQ_CHANNELS__SLACK__URL")
    assert sink_env(Settings(), "slack") == {
        "ALERTQ_CHANNELS__SLACK__API_URL": "http://127.0.0.1:18025/api/",
        "ALERTQ_CHANNELS__SLACK__BOT_TOKEN": "xoxb-alertq-dev-token",
        "ALERTQ_CHANNELS__SLACK__CHANNEL": "C0ALERTQ",
    }
    monkeypatch.setenv("ALERTQ_CHANNELS__SLACK__URL", "https://hooks.slack.com/services/T/B/real")
    assert "sink" in [p.name for p in processes(settings)]

    monkeypatch.setenv("ALERTQ_CHANNELS__EMAIL__HOST", "smtp.example.org")
    monkeypatch.setenv("ALERTQ_CHANNELS__MATTERMOST__URL", "https://mm.example.org/hooks/key")
    monkeypatch.setenv("ALERTQ_CHANNELS__WEBHOOK__URL", "https://sms.example.org/send")
    monkeypatch.setenv("ALERTQ_CHANNELS__WEBHOOK__ENABLED", "true")
    everything_real = Settings()
    assert [sink_env(everything_real, c) for c in ("mattermost", "slack", "webhook", "email")] == [{}, {}, {}, {}]
    assert "sink" not in [p.name for p in processes(everything_real)]


def test_the_supervisor_gives_each_child_its_own_environment(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    script = f"""
import os, signal, sys, threading, time
from alertq.stack import Process
from alertq.supervisor import Supervisor
probe = "import os; open({str(out)!r}, 'w').write(os.environ['ALERTQ_CHANNELS__MATTERMOST__URL'])"
child = [sys.executable, "-c", probe]
supervisor = Supervisor([Process("probe", child, env={{"ALERTQ_CHANNELS__MATTERMOST__URL": "http://sink/hooks"}})])
threading.Timer(3.0, lambda: os.kill(os.getpid(), signal.SIGTERM)).start()
sys.exit(supervisor.run())
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "http://sink/hooks"


def test_alertq_up_starts_the_sink_and_says_where_the_page_is(alertq_env: dict[str, str], tmp_path: Path) -> None:
    http_port, smtp_port = free_port(), free_port()
    env = {**alertq_env, "ALERTQ_SINK__HTTP_PORT": str(http_port), "ALERTQ_SINK__SMTP_PORT": str(smtp_port)}
    env["ALERTQ_ACK_LISTENER__PORT"] = str(free_port())  # tests run side by side: not the default 8090
    log = tmp_path / "up.log"
    with log.open("w") as out:  # in tmp_path: `alertq up` keeps its generated secrets in ./var
        up = subprocess.Popen(["alertq", "up"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        wait_healthy(f"http://127.0.0.1:{http_port}", up, log, "sink")
        response = requests.post(
            f"http://127.0.0.1:{http_port}/hooks/mattermost/local", json={"text": "hello"}, timeout=10
        )
        assert response.text == "ok"
    finally:
        up.terminate()
        up.wait(60)
    assert up.returncode == 0
    assert f"preview: http://127.0.0.1:{http_port}/" in log.read_text()
