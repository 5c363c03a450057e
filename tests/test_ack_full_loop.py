"""The whole loop with a REAL Nagios 4 core and `alertq up`, as a user runs it:

core notifies → alertq-enqueue → spool → relay → worker (two_way) → sink shows the post with an
Acknowledge button → a click through the sink (as Mattermost or Slack would send it) → ack listener →
alertq.acks → ack forwarder → the core's command file → status.dat acknowledged by the clicker → the
core's own ACKNOWLEDGEMENT notification → alertq again → a second post at the sink naming the author.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.support.nagios import NagiosCore
from tests.support.nagios_config import SLACK
from tests.support.up_stack import acknowledged, alertq_up, has_ack_button, text

pytestmark = pytest.mark.nagios


def test_mattermost_click_at_the_sink_acknowledges_in_nagios_and_the_ack_notification_comes_back(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host, service = "web-" + uuid.uuid4().hex[:8], "disk-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: [service]}, channels=("mattermost",))
    with alertq_up(alertq_env, core, "mattermost", tmp_path / "up.log") as stack:
        core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - free space: / 120 MB (1%)")
        problem = stack.wait_for_message(
            lambda m: m["channel"] == "mattermost" and service in text(m) and has_ack_button(m),
            "Mattermost post with an Acknowledge button",
        )
        assert "CRITICAL" in text(problem)

        clicked = stack.click(problem, "jdoe")
        assert clicked["status"] == 200

        status = acknowledged(core, host, service)
        [comment] = status.comments(host, service)
        assert (comment["entry_type"], comment["author"]) == ("4", "jdoe")
        assert any(f"ACKNOWLEDGE_SVC_PROBLEM;{host};{service};2;1;1;jdoe;" in line for line in core.log_lines())

        ack = stack.wait_for_message(
            lambda m: m["id"] != problem["id"] and "ACKNOWLEDGEMENT" in text(m).upper(),
            "ACKNOWLEDGEMENT post",
        )
        assert ack["channel"] == "mattermost"
        assert "jdoe" in text(ack) and service in text(ack)
        assert not has_ack_button(ack)  # nothing left to acknowledge
        # The core's own record: it sent the ACKNOWLEDGEMENT notification through alertq.
        assert any(n[3] == "ACKNOWLEDGEMENT (CRITICAL)" for n in core.notifications("SERVICE")), core.log_lines()[-10:]


def test_slack_click_signed_by_the_sink_acknowledges_in_nagios_and_the_ack_notification_comes_back(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host, service = "db-" + uuid.uuid4().hex[:8], "pg-" + uuid.uuid4().hex[:8]
    # openITCOCKPIT's Slack command line carries no author; the alertq flags add it, so the
    # ACKNOWLEDGEMENT post can say who acknowledged.
    core = nagios_core_factory(
        hosts={host: [service]},
        channels=("slack",),
        args=SLACK,
        extra_args='--ackauthor "$NOTIFICATIONAUTHOR$" --ackcomment "$NOTIFICATIONCOMMENT$"',
    )
    with alertq_up(alertq_env, core, "slack", tmp_path / "up.log") as stack:
        core.set_service_state(host, service, "CRITICAL", "PGSQL CRITICAL - connection refused")
        problem = stack.wait_for_message(
            lambda m: m["channel"] == "slack" and service in text(m) and has_ack_button(m),
            "Slack post with an Acknowledge button",
        )
        clicked = stack.click(problem, "asmith")
        assert clicked["status"] == 200

        status = acknowledged(core, host, service)
        [comment] = status.comments(host, service)
        assert (comment["entry_type"], comment["author"]) == ("4", "asmith")

        ack = stack.wait_for_message(
            lambda m: m["id"] != problem["id"] and m["channel"] == "slack" and "ACKNOWLEDGEMENT" in text(m).upper(),
            "ACKNOWLEDGEMENT post",
        )
        assert "asmith" in text(ack) and service in text(ack)
        assert any(n[3] == "ACKNOWLEDGEMENT (CRITICAL)" for n in core.notifications("SERVICE"))


def test_host_down_click_acknowledges_the_host_problem_and_the_ack_notification_comes_back(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host = "sw-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: ["ping"]}, channels=("mattermost",))
    with alertq_up(alertq_env, core, "mattermost", tmp_path / "up.log") as stack:
        core.set_host_state(host, "DOWN", "CRITICAL - 10.0.0.1: rta nan, lost 100%")
        problem = stack.wait_for_message(
            lambda m: host in text(m) and "DOWN" in text(m) and has_ack_button(m),
            "host DOWN post with an Acknowledge button",
        )
        stack.click(problem, "oncall-bob")

        status = acknowledged(core, host, None)
        [comment] = status.comments(host, None)
        assert (comment["entry_type"], comment["author"]) == ("4", "oncall-bob")
        assert any(f"ACKNOWLEDGE_HOST_PROBLEM;{host};2;1;1;oncall-bob;" in line for line in core.log_lines())

        ack = stack.wait_for_message(
            lambda m: m["id"] != problem["id"] and "ACKNOWLEDGEMENT" in text(m).upper(), "ACKNOWLEDGEMENT post"
        )
        assert "oncall-bob" in text(ack) and host in text(ack)
        assert any(n[2] == "ACKNOWLEDGEMENT (DOWN)" for n in core.notifications("HOST"))
