"""A button acknowledges its own problem once, and never a later one: replays, repeated clicks and old
posts against a REAL Nagios 4 core, and several listener replicas sharing one state store.

Buttons are made as the channels make them (`token_for` on an `alertq.alert/1` event), with the core's
problem id in the event when the test says so (as `$SERVICEPROBLEMID$` would put it there).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr
from pytest_httpserver import HTTPServer

from broker import names
from schemas.ack_token import token_for
from schemas.alert import ALERT_SCHEMA, AlertEvent
from schemas.channels import AckSettings
from schemas.settings import Settings
from tests.support import amqp
from tests.support.ack_processes import SIGNING_SECRET, Running, ack_forwarder, ack_listener
from tests.support.nagios import NagiosCore
from tests.support.nagios_status import Status
from tests.support.rabbit import free_port

pytestmark = pytest.mark.nagios

EARLIER = "This button is for an earlier problem of"


def problem_event(host: str, service: str, problem_id: str | None) -> AlertEvent:
    """The PROBLEM event a core's notification command hands over, as of now."""
    return AlertEvent.model_validate(
        {
            "schema": ALERT_SCHEMA,
            "event_id": str(uuid.uuid4()),
            "created_at": datetime.now(UTC),
            "channel": "mattermost",
            "kind": "service",
            "notification_type": "PROBLEM",
            "host": {"id": host, "name": host, "display_name": host},
            "service": {"id": service, "name": service, "display_name": service},
            "state": 2,
            "output": "DISK CRITICAL",
            "problem_id": problem_id,
            "source": {"producer_host": "nagios01", "core": "nagios"},
        }
    )


def button(event: AlertEvent) -> str:
    return token_for(event, AckSettings(signing_secret=SecretStr(SIGNING_SECRET)), now=time.time())


def click(token: str, user: str = "jdoe") -> dict[str, Any]:
    return {"user_name": user, "channel_name": "ops", "post_id": "p1", "context": {"action": "ack", "token": token}}


def service_state(core: NagiosCore, host: str, service: str, state: str, acknowledged: str) -> Status:
    """Wait for status.dat to show the service in `state` ("2") with `acknowledged` ("0"/"1")."""

    def shown() -> Status | None:
        status = core.status()
        block = status.service(host, service)
        return (
            status
            if (block["current_state"], block["problem_has_been_acknowledged"]) == (state, acknowledged)
            else None
        )

    status: Status = core.wait_for(shown, what=f"status.dat: state {state}, acknowledged {acknowledged}")
    return status


def acknowledge_lines(core: NagiosCore, host: str, service: str) -> list[str]:
    return [line for line in core.log_lines() if f"EXTERNAL COMMAND: ACKNOWLEDGE_SVC_PROBLEM;{host};{service};" in line]


@contextmanager
def ack_path(
    env: dict[str, str], core: NagiosCore, tmp_path: Path, listener_asks_core: bool = True
) -> Iterator[Running]:
    """Listener and forwarder on this core; the listener asks the core itself unless told not to."""
    target = {"command_file": str(core.command_file), "status_file": str(core.status_file)}
    listener_env = dict(env)
    if listener_asks_core:
        listener_env.update({f"ALERTQ_ACK_TARGET__{k.upper()}": v for k, v in target.items()})
    with (
        ack_listener(listener_env, tmp_path / "listener.log", free_port()) as listener,
        ack_forwarder(env, tmp_path / "forwarder.log", kind="nagios", **target),
    ):
        yield listener


@pytest.mark.parametrize("binding", ["problem-id", "incident-start"])
def test_an_old_button_clicked_again_after_a_new_problem_leaves_the_new_one_unacknowledged(
    binding: str,
    declared: Settings,
    alertq_env: dict[str, str],
    nagios_core_factory: Callable[..., NagiosCore],
    tmp_path: Path,
) -> None:
    host, service = "web-" + uuid.uuid4().hex[:8], "disk-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: [service]})
    core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - / 1% free")
    first = service_state(core, host, service, "2", "0").service(host, service)
    problem_id = first["current_problem_id"] if binding == "problem-id" else None
    old_button = button(problem_event(host, service, problem_id))

    with ack_path(alertq_env, core, tmp_path) as listener:
        answer = requests.post(f"{listener.url}/mattermost/actions", json=click(old_button), timeout=10)
        assert (
            answer.json()["update"]["message"]
            == "Acknowledgement by @jdoe sent via alertq: waiting for the monitoring core to confirm."
        )
        service_state(core, host, service, "2", "1")  # problem #1 acknowledged

        core.set_service_state(host, service, "OK", "DISK OK")
        service_state(core, host, service, "0", "0")
        core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - / 0% free")
        second = service_state(core, host, service, "2", "0").service(host, service)
        assert second["current_problem_id"] != first["current_problem_id"]  # the core's problem #2

        replayed_at = time.time()
        answer = requests.post(f"{listener.url}/mattermost/actions", json=click(old_button), timeout=10)

        assert answer.status_code == 200  # Mattermost shows the text of a 200 only
        told = answer.json()["ephemeral_text"]
        assert EARLIER in told and f"{host}/{service}" in told and "NOT acknowledged" in told
        assert "update" not in answer.json()
        # Nothing was queued for the replay (the first click's ack is the only one)...
        assert listener.log_text().count("ack_listener.accepted") == 1
        # ...and the core, once it has written its state after the replay, still shows #2 unacknowledged.
        after = core.wait_for(
            lambda: core.status_file.stat().st_mtime > replayed_at + 1.5 and core.status(), what="status.dat rewritten"
        )
        assert after.service(host, service)["problem_has_been_acknowledged"] == "0"
        assert len(acknowledge_lines(core, host, service)) == 1
    assert "earlier" in listener.log_text()


def test_the_forwarder_refuses_an_earlier_problems_button_and_says_so_in_the_chat(
    declared: Settings,
    alertq_env: dict[str, str],
    amqp_url: str,
    nagios_core_factory: Callable[..., NagiosCore],
    httpserver: HTTPServer,
    tmp_path: Path,
) -> None:
    # The listener cannot see the core (another host): the forwarder, which can, decides.
    host, service = "db-" + uuid.uuid4().hex[:8], "pg-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: [service]})
    httpserver.expect_request("/hooks/mm", method="POST").respond_with_data("ok")
    env = {**alertq_env, "ALERTQ_CHANNELS__MATTERMOST__URL": httpserver.url_for("/hooks/mm")}

    core.set_service_state(host, service, "CRITICAL", "PGSQL CRITICAL")
    service_state(core, host, service, "2", "0")
    # Problem #1 is notified to two contacts: two posts, two buttons.
    clicked, other = button(problem_event(host, service, None)), button(problem_event(host, service, None))

    with ack_path(env, core, tmp_path, listener_asks_core=False) as listener:
        requests.post(f"{listener.url}/mattermost/actions", json=click(clicked), timeout=10).raise_for_status()
        service_state(core, host, service, "2", "1")
        core.set_service_state(host, service, "OK", "PGSQL OK")
        service_state(core, host, service, "0", "0")
        core.set_service_state(host, service, "CRITICAL", "PGSQL CRITICAL again")
        service_state(core, host, service, "2", "0")

        # Days later someone clicks the other, never used button of problem #1.
        answer = requests.post(f"{listener.url}/mattermost/actions", json=click(other, "asmith"), timeout=10)
        assert (
            answer.json()["update"]["message"]
            == "Acknowledgement by @asmith sent via alertq: waiting for the monitoring core to confirm."
        )  # queued: it cannot tell
        deadline = time.monotonic() + 30
        while len([r for r, _ in httpserver.log if r.path == "/hooks/mm"]) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)

    # The first click's proof (the core showed it acknowledged), then the refusal of the second.
    confirmed, told = [r.get_json() for r, _ in httpserver.log if r.path == "/hooks/mm"]
    assert "acknowledged by @jdoe: confirmed by the monitoring core" in confirmed["text"]
    assert told["channel"] == "ops"
    assert EARLIER in told["text"] and f"{host}/{service}" in told["text"]
    assert core.status().service(host, service)["problem_has_been_acknowledged"] == "0"
    assert len(acknowledge_lines(core, host, service)) == 1
    assert amqp.depth(amqp_url, names.DEAD_QUEUE) == 0  # a deliberate refusal, not a failure


def test_five_identical_clicks_acknowledge_once_and_the_others_hear_who_did(
    declared: Settings,
    alertq_env: dict[str, str],
    nagios_core_factory: Callable[..., NagiosCore],
    tmp_path: Path,
) -> None:
    host, service = "app-" + uuid.uuid4().hex[:8], "http-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: [service]})
    core.set_service_state(host, service, "CRITICAL", "HTTP CRITICAL - 503")
    block = service_state(core, host, service, "2", "0").service(host, service)
    token = button(problem_event(host, service, block["current_problem_id"]))

    with ack_path(alertq_env, core, tmp_path) as listener:
        url = f"{listener.url}/mattermost/actions"
        with ThreadPoolExecutor(5) as pool:  # at once, as an impatient double-clicker and a flaky client do
            answers = list(pool.map(lambda _: requests.post(url, json=click(token), timeout=10), range(5)))
        service_state(core, host, service, "2", "1")
        sent_at = time.time()
        core.wait_for(lambda: core.status_file.stat().st_mtime > sent_at + 1.5, what="status.dat rewritten")

    assert [a.status_code for a in answers] == [200] * 5
    bodies = [a.json() for a in answers]
    acknowledged = [b for b in bodies if "ephemeral_text" not in b]
    already = [b["ephemeral_text"] for b in bodies if "ephemeral_text" in b]
    assert (
        len(acknowledged) == 1
        and acknowledged[0]["update"]["message"]
        == "Acknowledgement by @jdoe sent via alertq: waiting for the monitoring core to confirm."
    )
    assert already == ["Already acknowledged by @jdoe via alertq: nothing sent again."] * 4
    assert len(acknowledge_lines(core, host, service)) == 1
    assert listener.log_text().count("ack_listener.accepted") == 1  # one alertq.ack/1 published, not five
    # The core sent one ACKNOWLEDGEMENT notification, not five.
    acknowledgements = [n for n in core.notifications("SERVICE") if n[3].startswith("ACKNOWLEDGEMENT")]
    assert len(acknowledgements) == 1


@pytest.mark.usefixtures("declared")
def test_two_listeners_sharing_the_state_store_forward_one_of_two_clicks(
    store_url: str, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    env = {**alertq_env, "ALERTQ_STATE_STORE": store_url}
    event = problem_event("web01", "disk", "4711")
    token = button(event)
    with ExitStack() as stack:
        listeners = [
            stack.enter_context(ack_listener(env, tmp_path / f"listener-{n}.log", free_port())) for n in range(2)
        ]
        urls = [f"{running.url}/mattermost/actions" for running in listeners] * 3
        users = ["jdoe", "asmith"] * 3
        with ThreadPoolExecutor(6) as pool:
            answers = list(
                pool.map(
                    lambda a: requests.post(a[0], json=click(token, a[1]), timeout=10), zip(urls, users, strict=True)
                )
            )

    assert [a.status_code for a in answers] == [200] * 6
    bodies = [a.json() for a in answers]
    [first] = [b for b in bodies if "ephemeral_text" not in b]
    winner = first["update"]["message"].removeprefix("Acknowledgement by @").split(" ")[0]
    assert winner in ("jdoe", "asmith")
    assert (
        sorted(b["ephemeral_text"] for b in bodies if "ephemeral_text" in b)
        == [f"Already acknowledged by @{winner} via alertq: nothing sent again."] * 5
    )
    [message] = amqp.take(amqp_url, names.ACKS_QUEUE, count=1, timeout=10)
    assert amqp.depth(amqp_url, names.ACKS_QUEUE) == 0
    assert b'"problem_id":"4711"' in message.body
