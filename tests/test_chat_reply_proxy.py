"""Chat replies of the ack processes go through the chat channel's HTTP settings, proxy included.

A site behind an outbound proxy sets `channels.<chat>.http.proxy`; the notifications take that road,
and so must the ack listener's "Acknowledged by" update (Slack's response_url) and the forwarder's
"did NOT reach the core" message (Slack's response_url, Mattermost's webhook). A real forwarding proxy
stands between alertq and the chat stand-in: the stand-in gets the reply, and the proxy saw it.
"""

from __future__ import annotations

import time
from pathlib import Path

import requests
from pytest_httpserver import HTTPServer

from broker import names
from schemas.ack import Reply
from schemas.settings import Settings
from tests.support import amqp
from tests.support.ack_processes import SLACK_SECRET, ack_forwarder, ack_listener
from tests.support.proxy import forwarding_proxy
from tests.support.rabbit import free_port
from tests.test_ack_forwarder import ack_message, oitc_target, publish, wait_for_line
from tests.test_ack_listener import slack_form, slack_headers, token

PROXY_VARIABLES = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}


def without_proxy_variables(env: dict[str, str]) -> dict[str, str]:
    """Only alertq's own setting may send a request to the proxy."""
    return {k: v for k, v in env.items() if k.lower() not in PROXY_VARIABLES}


def wait_for(server: HTTPServer, path: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(r.path == path for r, _ in server.log) and time.monotonic() < deadline:
        time.sleep(0.05)


def test_the_listeners_slack_update_goes_through_the_slack_channels_proxy(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/actions/T1/reply", method="POST").respond_with_data("ok")
    response_url = httpserver.url_for("/actions/T1/reply")
    with forwarding_proxy() as proxy:
        env = {**without_proxy_variables(alertq_env), "ALERTQ_CHANNELS__SLACK__HTTP__PROXY": proxy.url}
        with ack_listener(
            env, tmp_path / "listener.log", free_port(), slack_signing_secret=SLACK_SECRET, allowed_users="asmith"
        ) as listener:
            body = slack_form("asmith", token(), response_url=response_url)
            answer = requests.post(f"{listener.url}/slack/actions", data=body, headers=slack_headers(body), timeout=10)
            assert answer.status_code == 200, answer.text
            amqp.take(amqp_url, names.ACKS_QUEUE, count=1, timeout=10)
            wait_for(httpserver, "/actions/T1/reply")

        [(reply, _)] = httpserver.log
        assert reply.get_json() == {
            "replace_original": True,
            "text": "Acknowledgement by @asmith sent via alertq: waiting for the monitoring core to confirm.",
        }
        assert [(seen.method, seen.url) for seen in proxy.seen] == [("POST", response_url)]


def test_the_forwarders_failure_message_goes_through_the_mattermost_channels_proxy(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/nagios_module/cmd/submit_bulk_naemon.json").respond_with_data("no", status=403)
    httpserver.expect_request("/hooks/secretkey", method="POST").respond_with_data("ok")
    hook = httpserver.url_for("/hooks/secretkey")
    with forwarding_proxy() as proxy:
        env = {
            **without_proxy_variables(alertq_env),
            "ALERTQ_CHANNELS__MATTERMOST__URL": hook,
            "ALERTQ_CHANNELS__MATTERMOST__HTTP__PROXY": proxy.url,
        }
        with ack_forwarder(env, tmp_path / "fwd.log", **oitc_target(httpserver, attempts="1")) as forwarder:
            publish(amqp_url, ack_message(reply=Reply(channel_name="ops")))
            amqp.take(amqp_url, names.DEAD_QUEUE, count=1, timeout=60)
            wait_for_line(forwarder, "ack_forwarder.chat_told")

        [told] = [r.get_json() for r, _ in httpserver.log if r.path == "/hooks/secretkey"]
        assert told["channel"] == "ops" and "did NOT reach" in told["text"]
        # The chat's proxy carried the chat message only; the core is reached with the core's settings.
        assert [(seen.method, seen.url) for seen in proxy.seen] == [("POST", hook)]
