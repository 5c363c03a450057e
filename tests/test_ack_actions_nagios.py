"""Snooze, Recheck now and Unacknowledge from a chat click into a REAL Nagios 4 core, with proof: the
forwarder reads status.dat back and only then tells the chat; a recovered problem gets no command; a
command the core takes but cannot apply (unknown host) is reported failed within the bound."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from schemas.ack import Reply
from schemas.settings import Settings
from tests.support.ack_processes import ack_forwarder, ack_listener
from tests.support.chat_actions import button, chat_hook, click, click_status, told, wait_told
from tests.support.nagios import NagiosCore
from tests.support.rabbit import free_port
from tests.test_ack_forwarder import ack_message, publish

pytestmark = pytest.mark.nagios

CONFIRM_WITHIN = 8.0  # the proof bound, shrunk (default 30 s)


def target(core: NagiosCore) -> dict[str, str]:
    return {
        "kind": "nagios",
        "command_file": str(core.command_file),
        "status_file": str(core.status_file),
        "confirm_within": str(CONFIRM_WITHIN),
        "confirm_every": "0.5",
    }


def listener_env(env: dict[str, str], core: NagiosCore) -> dict[str, str]:
    """The listener asks the core too (its problem check), as a deployment with [ack_target] does."""
    return {**env, **{f"ALERTQ_ACK_TARGET__{k.upper()}": v for k, v in target(core).items()}}


def test_snooze_recheck_and_unacknowledge_land_in_nagios_and_the_chat_hears_only_once_status_dat_shows_them(
    declared: Settings,
    alertq_env: dict[str, str],
    nagios_core_factory: Callable[..., NagiosCore],
    httpserver: HTTPServer,
    tmp_path: Path,
) -> None:
    host = "web-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: ["disk", "load", "swap"]})
    for service in ("disk", "load", "swap"):
        core.set_service_state(host, service, "CRITICAL", f"{service.upper()} CRITICAL")
    core.wait_for(lambda: all(core.status().service(host, s)["current_state"] == "2" for s in ("disk", "load", "swap")))
    core.submit(f"ACKNOWLEDGE_SVC_PROBLEM;{host};swap;2;0;1;bob;looking")
    core.wait_for(lambda: core.status().service(host, "swap")["problem_has_been_acknowledged"] == "1")

    env = {
        **alertq_env,
        "ALERTQ_CHANNELS__MATTERMOST__URL": chat_hook(httpserver),
        # alice is "a.smith" in the core; carol has no mapping and is recorded by her chat name
        "ALERTQ_ACK_LISTENER__AUTHORS": '{"alice": "a.smith"}',
        "ALERTQ_ACK_LISTENER__UNACKNOWLEDGE_ALLOWED_USERS": "carol",
    }
    with (
        ack_listener(listener_env(env, core), tmp_path / "listener.log", free_port()) as listener,
        ack_forwarder(env, tmp_path / "forwarder.log", **target(core)) as forwarder,
    ):
        # Snooze 1 h
        clicked_at = time.time()
        answer = click(listener, button(host, "disk", "snooze", "1h"), user="alice")
        assert "Snooze (1h) by @alice sent" in answer["ephemeral_text"]
        said = wait_told(httpserver, "snoozed by @alice")
        status = core.status()
        [downtime] = [d for d in status.all("servicedowntime") if d["host_name"] == host]
        assert downtime["service_description"] == "disk"
        assert downtime["author"] == "a.smith"
        assert int(downtime["end_time"]) - int(downtime["start_time"]) == 3600
        assert downtime["fixed"] == "1"
        assert abs(int(downtime["start_time"]) - clicked_at) < 30
        assert int(status.service(host, "disk")["scheduled_downtime_depth"]) >= 1  # the proof the chat waited for
        assert f"{host}/disk snoozed by @alice until" in said

        # Recheck now
        clicked_at = time.time()
        answer = click(listener, button(host, "load", "recheck"), user="carol")
        assert "Recheck by @carol sent" in answer["ephemeral_text"]
        wait_told(httpserver, f"{host}/load: recheck by @carol")
        load = core.status().service(host, "load")
        # The forced check is due now, or has run already (the core then plans the next one).
        assert int(load["last_check"]) >= int(clicked_at) - 1 or abs(int(load["next_check"]) - clicked_at) < 10
        assert any(f"SCHEDULE_FORCED_SVC_CHECK;{host};load;" in line for line in core.log_lines())

        # Unacknowledge: alice may acknowledge but not unacknowledge; carol may
        refused = click_status(listener, button(host, "swap", "unacknowledge"), user="alice")
        assert refused == 403
        answer = click(listener, button(host, "swap", "unacknowledge"), user="carol")
        assert "Unacknowledgement by @carol sent" in answer["ephemeral_text"]
        wait_told(httpserver, f"{host}/swap: acknowledgement removed by @carol")
        assert core.status().service(host, "swap")["problem_has_been_acknowledged"] == "0"
        assert "Traceback" not in forwarder.log_text() + listener.log_text()

    assert not any("did NOT" in text for text in told(httpserver))


def snoozed(action: str) -> dict[str, object]:
    if action != "snooze":
        return {}
    now = datetime.now(UTC)
    return {"snooze": "1h", "downtime_start": now, "downtime_end": now + timedelta(hours=1)}


def test_a_recovered_problem_gets_no_command_and_an_unknown_host_is_reported_failed_within_the_bound(
    declared: Settings,
    alertq_env: dict[str, str],
    amqp_url: str,
    nagios_core_factory: Callable[..., NagiosCore],
    httpserver: HTTPServer,
    tmp_path: Path,
) -> None:
    host = "db-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: ["pg"]})
    core.set_service_state(host, "pg", "CRITICAL", "PGSQL CRITICAL")
    core.wait_for(lambda: core.status().service(host, "pg")["current_state"] == "2")
    issued = time.time()
    token = button(host, "pg", problem_since=issued - 1)  # the button of this CRITICAL's notification
    time.sleep(1.1)
    core.set_service_state(host, "pg", "OK", "PGSQL OK")
    core.wait_for(lambda: core.status().service(host, "pg")["current_state"] == "0")

    env = {**alertq_env, "ALERTQ_CHANNELS__MATTERMOST__URL": chat_hook(httpserver)}
    with (
        ack_listener(listener_env(env, core), tmp_path / "listener.log", free_port()) as listener,
        ack_forwarder(env, tmp_path / "forwarder.log", **target(core)) as forwarder,
    ):
        answer = click(listener, token, user="alice")
        assert answer == {
            "ephemeral_text": f"{host}/pg has recovered since this notification: there is nothing to acknowledge."
        }
        # A listener that could not ask the core in time queues it; the forwarder asks before it sends.
        for action in ("snooze", "recheck"):
            late = ack_message(service="pg", action=action, reply=Reply(channel_name="ops"), **snoozed(action))
            publish(
                amqp_url,
                late.model_copy(update={"host_id": host, "problem_since": datetime.fromtimestamp(issued - 1, UTC)}),
            )
            wait_told(httpserver, f"{host}/pg has recovered since this notification: there is nothing to {action}.")

        # A host the core does not know: Nagios reads the line and drops it; the read-back says so.
        ghost = "ghost-" + uuid.uuid4().hex[:8]
        clicked_at = time.monotonic()
        click(listener, button(ghost, "pg", problem_since=issued), user="alice")
        said = wait_told(httpserver, "did NOT apply it", timeout=CONFIRM_WITHIN + 30)
        took = time.monotonic() - clicked_at
        assert f"{ghost}/pg by @alice was sent" in said and "does not know this host or service" in said
        assert took < CONFIRM_WITHIN + 20  # generous: a loaded machine; the bound is what matters, not speed
        assert "ack_forwarder.not_confirmed" in forwarder.log_text()

    sent = ("ACKNOWLEDGE_SVC_PROBLEM", "SCHEDULE_SVC_DOWNTIME", "SCHEDULE_FORCED_SVC_CHECK")
    assert not [line for line in core.log_lines() if f";{host};" in line and any(c in line for c in sent)]
    assert core.status().service(host, "pg")["problem_has_been_acknowledged"] == "0"
    assert any(f"ACKNOWLEDGE_SVC_PROBLEM;{ghost};pg;" in line for line in core.log_lines())  # sent, not applied
