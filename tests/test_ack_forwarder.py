"""`alertq ack-forwarder` as a real process: `alertq.acks` → the target, or the dead letters and a
visible failure in the chat."""

from __future__ import annotations

import base64
import os
import re
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pika
import pytest
import requests
from pydantic import SecretStr
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from broker import names
from broker.publisher import ConfirmedPublisher, json_properties
from cores.nagios import command_line
from schemas.ack import AckMessage, Reply
from schemas.ack_token import token_for
from schemas.alert import AlertEvent
from schemas.channels import AckSettings
from schemas.settings import Settings
from tests.conftest import run
from tests.support import amqp
from tests.support.ack_processes import SIGNING_SECRET, Running, ack_forwarder, ack_listener
from tests.support.alert_events import enqueue_latin1_problem
from tests.support.oitc import OitcStandIn
from tests.support.rabbit import PrivateNode, free_port

API_KEY = "oitc-api-key-5f1e2d3c4b5a"


def ack_message(service: str | None = "svc-uuid-1", reply: Reply | None = None, **fields: Any) -> AckMessage:
    return AckMessage(
        ack_id=str(uuid.uuid4()),
        received_at=datetime.now(UTC),
        source="slack" if reply and reply.response_url else "mattermost",
        chat_user="jdoe",
        author=fields.pop("author", "jdoe"),
        comment=fields.pop("comment", "Acknowledged in Mattermost by jdoe via alertq"),
        kind="host" if service is None else "service",
        host_id="host-uuid-1",
        service_id=service,
        event_id="evt-1",
        reply=reply or Reply(),
        **fields,
    )


def publish(url: str, ack: AckMessage) -> None:
    connection = amqp.connect(url)
    try:
        ConfirmedPublisher(connection.channel()).publish(
            names.ACKS_EXCHANGE, f"ack.{ack.source}", ack.to_json(), json_properties(ack.ack_id)
        )
    finally:
        connection.close()


def wait_requests(server: HTTPServer, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(server.log) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(server.log) >= count, f"{len(server.log)} requests, expected {count}"


def wait_for_line(process: Running, fragment: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while fragment not in process.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fragment in process.log_text(), process.log_text()[-2000:]


def oitc_target(server: HTTPServer, **more: str) -> dict[str, str]:
    return {"kind": "openitcockpit", "url": server.url_for("/"), "api_key": API_KEY, **more}


def test_openitcockpit_gets_one_service_and_one_host_ack_exactly_as_its_api_wants(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    path = "/nagios_module/cmd/submit_bulk_naemon.json"
    headers = {"Authorization": f"X-OITC-API {API_KEY}"}
    service_body = [
        {
            "command": "submitServicestateAck",
            "hostUuid": "host-uuid-1",
            "serviceUuid": "svc-uuid-1",
            "author": "jdoe",
            "comment": "Acknowledged in Mattermost by jdoe via alertq",
            "sticky": 2,
            "notify": 1,
        }
    ]
    host_body = [
        {
            "command": "submitHoststateAck",
            "hostUuid": "host-uuid-1",
            "author": "jdoe",
            "comment": "on it",
            "sticky": 0,
            "notify": 0,
            "hostAckType": "hostOnly",
        }
    ]
    core = OitcStandIn(httpserver, API_KEY)
    core.set_state("host-uuid-1", "svc-uuid-1", 2)
    core.set_state("host-uuid-1", None, 1)

    with ack_forwarder(alertq_env, tmp_path / "fwd.log", **oitc_target(httpserver)) as forwarder:
        publish(amqp_url, ack_message())
        publish(amqp_url, ack_message(service=None, comment="on it", sticky=False, notify=False))
        assert amqp.wait_depth(amqp_url, names.ACKS_QUEUE, 0) == 0
        deadline = time.monotonic() + 30
        while forwarder.log_text().count("ack_forwarder.confirmed") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert forwarder.log_text().count("ack_forwarder.acknowledged") == 2
        assert forwarder.log_text().count("ack_forwarder.confirmed") == 2  # read back from the index API
    assert core.commands == [*service_body, *host_body]  # exactly these bodies, in this order
    assert all(r.headers["Authorization"] == headers["Authorization"] for r, _ in httpserver.log)
    assert all(r.path in (path, "/services/index.json", "/hosts/index.json") for r, _ in httpserver.log)
    assert amqp.depth(amqp_url, names.DEAD_QUEUE) == 0
    assert API_KEY not in forwarder.log_text()


def test_a_target_that_keeps_failing_dead_letters_the_ack_and_says_so_in_slack(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    tries: list[float] = []

    def unavailable(request: Request) -> Response:
        tries.append(time.monotonic())
        return Response("busy", status=503)

    httpserver.expect_request("/nagios_module/cmd/submit_bulk_naemon.json").respond_with_handler(unavailable)
    httpserver.expect_request("/slack/response", method="POST").respond_with_data("ok")
    ack = ack_message(reply=Reply(response_url=httpserver.url_for("/slack/response")))

    target = oitc_target(httpserver, attempts="3", retry_wait="0.1")
    with ack_forwarder(alertq_env, tmp_path / "fwd.log", **target) as forwarder:
        publish(amqp_url, ack)
        [dead] = amqp.take(amqp_url, names.DEAD_QUEUE, count=1, timeout=60)
        wait_for_line(forwarder, "ack_forwarder.chat_told")

    assert len(tries) == 3
    assert dead.body == ack.to_json()
    assert dead.routing_key == "ack.slack"
    assert dead.headers[names.HEADER_DEAD_REASON] == "max-attempts"
    assert "HTTP 503" in dead.headers[names.HEADER_LAST_ERROR]
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0
    [told] = [r for r, _ in httpserver.log if r.path == "/slack/response"]
    text = told.get_json()["text"]
    assert "host-uuid-1/svc-uuid-1" in text and "did NOT reach" in text and "@jdoe" in text
    assert told.get_json()["replace_original"] is False


def test_a_refused_ack_is_dead_at_once_and_mattermost_hears_of_it_through_its_webhook(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/nagios_module/cmd/submit_bulk_naemon.json").respond_with_data("no", status=403)
    httpserver.expect_request("/hooks/secretkey", method="POST").respond_with_data("ok")
    env = {**alertq_env, "ALERTQ_CHANNELS__MATTERMOST__URL": httpserver.url_for("/hooks/secretkey")}
    ack = ack_message(reply=Reply(channel_name="ops"))

    with ack_forwarder(env, tmp_path / "fwd.log", **oitc_target(httpserver, attempts="5")) as forwarder:
        publish(amqp_url, ack)
        [dead] = amqp.take(amqp_url, names.DEAD_QUEUE, count=1, timeout=60)
        wait_for_line(forwarder, "ack_forwarder.chat_told")

    assert dead.headers[names.HEADER_DEAD_REASON] == "permanent"
    posts = [r for r, _ in httpserver.log]
    assert [r.path for r in posts].count("/nagios_module/cmd/submit_bulk_naemon.json") == 1
    [told] = [r.get_json() for r in posts if r.path == "/hooks/secretkey"]
    assert told["channel"] == "ops" and "did NOT reach" in told["text"]
    assert "secretkey" not in forwarder.log_text()


def test_a_message_that_is_no_ack_is_dead_lettered_as_invalid(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    with ack_forwarder(alertq_env, tmp_path / "fwd.log", **oitc_target(httpserver)):
        connection = amqp.connect(amqp_url)
        channel = connection.channel()
        channel.basic_publish(names.ACKS_EXCHANGE, "ack.x", b'{"schema": "alertq.ack/1"}', pika.BasicProperties())
        channel.basic_publish(names.ACKS_EXCHANGE, "ack.x", b'{"schema": "alertq.ack/3"}', pika.BasicProperties())
        connection.close()
        dead = amqp.take(amqp_url, names.DEAD_QUEUE, count=2, timeout=60)
    assert sorted(d.headers[names.HEADER_DEAD_REASON] for d in dead) == ["invalid", "unsupported-schema"]
    assert not httpserver.log


def test_nagios_command_line_keeps_author_and_comment_inside_their_fields() -> None:
    ack = ack_message(author="Eve;Mallory", comment="fine\n[1] SHUTDOWN_PROGRAM;x\r")
    line = command_line(ack, now=1700000000)
    assert line == (
        "[1700000000] ACKNOWLEDGE_SVC_PROBLEM;host-uuid-1;svc-uuid-1;2;1;1;Eve Mallory;fine [1] SHUTDOWN_PROGRAM x\n"
    )
    host = command_line(ack_message(service=None, sticky=False), now=1700000000, use_expire=True, expire_after=60)
    expected = "ACKNOWLEDGE_HOST_PROBLEM_EXPIRE;host-uuid-1;0;1;1;1700000060;jdoe;"
    assert host == f"[1700000000] {expected}Acknowledged in Mattermost by jdoe via alertq\n"


def test_icinga2_gets_the_acknowledge_problem_action_with_filter_vars_and_basic_auth(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    auth = "Basic " + base64.b64encode(b"alertq:icinga-pass-77").decode()
    expected = {
        "type": "Service",
        "filter": "host.name==h && service.name==s",
        "filter_vars": {"h": "host-uuid-1", "s": "svc-uuid-1"},
        "author": "jdoe",
        "comment": "Acknowledged in Mattermost by jdoe via alertq",
        "sticky": True,
        "notify": True,
        "persistent": True,
    }
    httpserver.expect_oneshot_request(
        "/v1/actions/acknowledge-problem",
        method="POST",
        headers={"Authorization": auth, "Accept": "application/json"},
        json=expected,
    ).respond_with_json({"results": [{"code": 200.0, "status": "Successfully acknowledged problem"}]})
    # The read-back (proof): the service now acknowledged.
    acknowledged = {"state": 2, "acknowledgement": 1, "last_check_result": {"state": 2}, "downtime_depth": 0}
    httpserver.expect_request("/v1/objects/services", method="POST", headers={"Authorization": auth}).respond_with_json(
        {"results": [{"attrs": acknowledged}]}
    )
    target = {"kind": "icinga2", "url": httpserver.url_for("/"), "username": "alertq", "password": "icinga-pass-77"}

    with ack_forwarder(alertq_env, tmp_path / "fwd.log", **target) as forwarder:
        publish(amqp_url, ack_message())
        wait_for_line(forwarder, "ack_forwarder.confirmed")
    httpserver.check_assertions()
    assert amqp.depth(amqp_url, names.DEAD_QUEUE) == 0
    assert "icinga-pass-77" not in forwarder.log_text()


def test_alertq_up_runs_the_ack_parts_only_once_they_can_work() -> None:
    from alertq.stack import processes

    def names_of(settings: Settings) -> set[str]:
        return {p.name for p in processes(settings)} & {"ack-listener", "ack-forwarder"}

    assert names_of(Settings()) == set()
    assert names_of(Settings.model_validate({"ack": {"signing_secret": "s" * 32}})) == {"ack-listener"}
    configured = {"ack": {"signing_secret": "s" * 32}, "ack_target": {"command_file": "/var/lib/nagios4/rw/nagios.cmd"}}
    assert names_of(Settings.model_validate(configured)) == {"ack-listener", "ack-forwarder"}
    oitc_without_key = {"ack_target": {"kind": "openitcockpit", "url": "https://oitc.example.org"}}
    assert names_of(Settings.model_validate(oitc_without_key)) == set()


@pytest.mark.slow
@pytest.mark.privatebroker
def test_the_forwarder_carries_on_after_a_broker_restart(
    private_node: PrivateNode, alertq_env: dict[str, str], httpserver: HTTPServer, tmp_path: Path
) -> None:
    core = OitcStandIn(httpserver, API_KEY)
    core.set_state("host-uuid-1", "svc-uuid-1", 2)
    core.set_state("host-uuid-1", None, 1)
    env = {**alertq_env, "ALERTQ_BROKER__URLS": private_node.url, "ALERTQ_BROKER__RECONNECT_MAX_DELAY": "1"}
    with ack_forwarder(env, tmp_path / "fwd.log", **oitc_target(httpserver)) as forwarder:
        publish(private_node.url, ack_message())
        wait_for_line(forwarder, "ack_forwarder.confirmed")
        private_node.stop()
        time.sleep(1)
        assert forwarder.process.poll() is None, "the forwarder keeps running while the broker is away"
        private_node.start()
        publish(private_node.url, ack_message(service=None))
        deadline = time.monotonic() + 60
        while len(core.commands) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    bodies = [command["command"] for command in core.commands]
    # At-least-once: a broker stopping right after the forward may not have taken the forwarder's ack
    # yet, and redelivers; the core then records the same acknowledgement twice, which is harmless.
    assert set(bodies) == {"submitServicestateAck", "submitHoststateAck"}
    assert bodies[-1] == "submitHoststateAck" and bodies.count("submitServicestateAck") <= 2


def test_the_forwarder_without_a_target_refuses_to_start_with_one_line(alertq_env: dict[str, str]) -> None:
    result = run(["alertq", "ack-forwarder"], alertq_env)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error: ack_target.command_file is not set (the core's nagios.cmd)"
    secretless = {**alertq_env, "ALERTQ_ACK_TARGET__KIND": "openitcockpit", "ALERTQ_ACK_TARGET__API_KEY": API_KEY}
    result = run(["alertq", "ack-forwarder"], secretless)
    assert result.returncode == 1
    assert "ack_target.url and ack_target.api_key are needed" in result.stderr
    assert API_KEY not in result.stderr + result.stdout


def outage_then_up(outage: float) -> tuple[list[tuple[float, int]], Any]:
    """A stand-in openITCOCKPIT that answers 503 until `outage` seconds after its first request, then 200."""
    seen: list[tuple[float, int]] = []

    def handler(request: Request) -> Response:
        now = time.monotonic()
        status = 503 if not seen or now - seen[0][0] < outage else 200
        seen.append((now, status))
        return Response('{"message": "ok"}' if status == 200 else "maintenance", status=status)

    return seen, handler


def ride_out_an_outage(
    outage: float,
    alertq_env: dict[str, str],
    amqp_url: str,
    httpserver: HTTPServer,
    tmp_path: Path,
    **target: str,
) -> list[tuple[float, int]]:
    seen, handler = outage_then_up(outage)
    httpserver.expect_request("/nagios_module/cmd/submit_bulk_naemon.json").respond_with_handler(handler)
    with ack_forwarder(alertq_env, tmp_path / "fwd.log", **oitc_target(httpserver, **target)) as forwarder:
        publish(amqp_url, ack_message())
        publish(amqp_url, ack_message(service=None))  # queued behind the first, during the outage
        deadline = time.monotonic() + outage + 120
        while forwarder.log_text().count("ack_forwarder.acknowledged") < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert forwarder.log_text().count("ack_forwarder.acknowledged") == 2, forwarder.log_text()[-2000:]
        assert "ack_forwarder.retrying" in forwarder.log_text()
    assert amqp.depth(amqp_url, names.DEAD_QUEUE) == 0
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0
    landed = [r.get_json()[0]["command"] for r, response in httpserver.log if response.status_code == 200]
    assert landed == ["submitServicestateAck", "submitHoststateAck"]  # both, in order
    assert seen[-1][0] - seen[0][0] >= outage  # the 503s really lasted the outage
    return seen


def test_acks_sent_while_openitcockpit_is_down_land_once_it_is_back(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    seen = ride_out_an_outage(
        4, alertq_env, amqp_url, httpserver, tmp_path, give_up_after="60", retry_wait="0.2", max_retry_wait="1"
    )
    assert sum(1 for _, status in seen if status == 503) >= 3


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ALERTQ_SLOW_TESTS") != "1", reason="a 2-minute outage; ALERTQ_SLOW_TESTS=1")
def test_acks_ride_out_a_two_minute_openitcockpit_outage_with_the_default_retry_settings(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    seen = ride_out_an_outage(120, alertq_env, amqp_url, httpserver, tmp_path)
    first, last = seen[0][0], seen[-1][0]
    print(f"outage ridden out: {len(seen)} requests over {last - first:.1f} s")


def test_a_target_down_past_give_up_after_dead_letters_the_ack_and_says_so(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    tries: list[float] = []

    def unavailable(request: Request) -> Response:
        tries.append(time.monotonic())
        return Response("busy", status=503)

    httpserver.expect_request("/nagios_module/cmd/submit_bulk_naemon.json").respond_with_handler(unavailable)
    httpserver.expect_request("/slack/response", method="POST").respond_with_data("ok")
    ack = ack_message(reply=Reply(response_url=httpserver.url_for("/slack/response")))

    target = oitc_target(httpserver, give_up_after="3", retry_wait="0.2", max_retry_wait="0.5")
    with ack_forwarder(alertq_env, tmp_path / "fwd.log", **target) as forwarder:
        publish(amqp_url, ack)
        [dead] = amqp.take(amqp_url, names.DEAD_QUEUE, count=1, timeout=60)
        wait_for_line(forwarder, "ack_forwarder.chat_told")

    assert tries[-1] - tries[0] >= 3 * 0.9  # retried for the whole budget, not a fixed count
    assert dead.headers[names.HEADER_DEAD_REASON] == "max-attempts"
    assert f"{len(tries)} attempts; last: " in dead.headers[names.HEADER_LAST_ERROR]
    [told] = [r for r, _ in httpserver.log if r.path == "/slack/response"]
    assert "did NOT reach" in told.get_json()["text"]


def test_a_failed_ack_tells_the_chat_why_in_words_and_keeps_paths_for_the_log(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    missing = tmp_path / "rw" / "missing.cmd"  # the core is not running: no command file
    httpserver.expect_request("/slack/response", method="POST").respond_with_data("ok")
    ack = ack_message(reply=Reply(response_url=httpserver.url_for("/slack/response")))

    target = {"kind": "nagios", "command_file": str(missing), "attempts": "2", "retry_wait": "0.1"}
    with ack_forwarder(alertq_env, tmp_path / "fwd.log", **target) as forwarder:
        publish(amqp_url, ack)
        [dead] = amqp.take(amqp_url, names.DEAD_QUEUE, count=1, timeout=60)
        wait_for_line(forwarder, "ack_forwarder.chat_told")

    [told] = [r.get_json()["text"] for r, _ in httpserver.log if r.path == "/slack/response"]
    assert "did NOT reach the monitoring core" in told
    assert "gave up after 2 attempts: the monitoring core's command file is missing (is the core running?)" in told
    assert "/" not in told.replace("host-uuid-1/svc-uuid-1", "")  # no path of this machine
    assert "missing.cmd" not in told and str(tmp_path) not in told
    # The operator still learns where: the dead letter and the log keep the detail.
    assert str(missing) in dead.headers[names.HEADER_LAST_ERROR]
    assert str(missing) in forwarder.log_text()


def test_latin1_names_from_alertq_enqueue_reach_the_command_file_through_a_button_as_valid_text(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    """Issue 11 item 1: a core with Latin-1 object names passes raw bytes; replaced at the door, they
    must not trip the button, the listener, the forwarder or the write to the command file."""
    enqueue_latin1_problem("mattermost", alertq_env)
    [message] = amqp.take(amqp_url, names.notify_queue("mattermost"), 1)
    event = AlertEvent.model_validate_json(message.body)
    button = token_for(event, AckSettings(signing_secret=SecretStr(SIGNING_SECRET)), now=time.time())
    command_file = tmp_path / "nagios.cmd"  # a plain file stands in for the core's pipe: it keeps the bytes
    command_file.touch()

    with (
        ack_listener(alertq_env, tmp_path / "listener.log", free_port()) as listener,
        ack_forwarder(alertq_env, tmp_path / "fwd.log", kind="nagios", command_file=str(command_file)) as forwarder,
    ):
        click = {
            "user_name": "jdoe",
            "channel_name": "ops",
            "post_id": "p1",
            "context": {"action": "ack", "token": button},
        }
        answer = requests.post(f"{listener.url}/mattermost/actions", json=click, timeout=10)
        assert answer.status_code == 200, answer.text
        assert "update" in answer.json(), answer.text
        wait_for_line(forwarder, "ack_forwarder.acknowledged")

    line = command_file.read_bytes().decode("utf-8")  # strict: a stray byte would fail here
    assert re.fullmatch(
        r"\[\d+\] ACKNOWLEDGE_SVC_PROBLEM;caf\ufffd-db01;Disque \ufffdtat;2;1;1;jdoe;[^\n;]*\n", line
    ), line
    assert "Traceback" not in listener.log_text() + forwarder.log_text()
