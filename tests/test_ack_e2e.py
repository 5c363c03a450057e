"""A click acknowledges a problem in a REAL Nagios 4 core: listener → alertq.acks → forwarder →
the core's external command file → status.dat."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from schemas.ack_token import sign_incident
from schemas.settings import Settings
from tests.support.ack_processes import SIGNING_SECRET, ack_forwarder, ack_listener
from tests.support.nagios import NagiosCore
from tests.support.nagios_status import Status
from tests.support.rabbit import free_port

pytestmark = pytest.mark.nagios


def test_a_mattermost_click_acknowledges_the_service_problem_in_nagios(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host, service = str(uuid.uuid4()), str(uuid.uuid4())
    core = nagios_core_factory(hosts={host: [service]})
    core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - free space: / 120 MB (1%)")

    def critical() -> Status | None:
        status = core.status()
        return status if status.service(host, service)["current_state"] == "2" else None

    before = core.wait_for(critical, what="the service to be CRITICAL in status.dat")
    assert before.service(host, service)["problem_has_been_acknowledged"] == "0"

    button = sign_incident(SIGNING_SECRET, host_id=host, service_id=service, event_id="e1", now=time.time(), ttl=600)
    click = {"user_name": "jdoe", "channel_name": "ops", "post_id": "p1", "context": {"action": "ack", "token": button}}
    env = {**alertq_env, "ALERTQ_ACK_LISTENER__AUTHOR_FORMAT": "{user} via {source}"}
    with (
        ack_listener(env, tmp_path / "listener.log", free_port()) as listener,
        ack_forwarder(env, tmp_path / "forwarder.log", kind="nagios", command_file=str(core.command_file)),
    ):
        answer = requests.post(f"{listener.url}/mattermost/actions", json=click, timeout=10)
        assert answer.status_code == 200, answer.text

        def acknowledged() -> Status | None:
            status = core.status()
            return status if status.service(host, service)["problem_has_been_acknowledged"] == "1" else None

        status = core.wait_for(acknowledged, what="status.dat to show the acknowledgement")

    [comment] = status.comments(host, service)
    assert (comment["entry_type"], comment["author"]) == ("4", "jdoe via Mattermost")
    assert comment["comment_data"] == "Acknowledged in Mattermost by jdoe via alertq"
    assert status.service(host, service)["acknowledgement_type"] == "2"  # sticky
    assert any(
        f"ACKNOWLEDGE_SVC_PROBLEM;{host};{service};2;1;1;jdoe via Mattermost" in line for line in core.log_lines()
    )
