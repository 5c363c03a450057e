"""The chat actions through the whole loop with a REAL Nagios 4 core and `alertq up`: the buttons a
channel's `actions` setting puts on the posts at the sink (alertq up posts through the sink's chat
API emulation: API mode, one conversation per incident), clicked there as Mattermost or Slack sends
the click, landing in the core, and the reply the forwarder posts once status.dat shows them."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.support.nagios import NagiosCore
from tests.support.nagios_config import SLACK
from tests.support.up_stack import alertq_up, text

pytestmark = pytest.mark.nagios

ALL_ACTIONS = "acknowledge,snooze,recheck,unacknowledge"


def labels(message: dict[str, object]) -> list[str]:
    rendered = message["rendered"]
    assert isinstance(rendered, dict)
    return [b["label"] for b in rendered["buttons"] if b["interactive"]]


def test_mattermost_acknowledge_unacknowledge_and_snooze_buttons_at_the_sink_reach_nagios(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host, service = "web-" + uuid.uuid4().hex[:8], "disk-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: [service]}, channels=("mattermost",))
    extra = {
        "ALERTQ_CHANNELS__MATTERMOST__ACTIONS": ALL_ACTIONS,
        "ALERTQ_ACK__SNOOZE_CHOICES": "1h,until 08:00",
        "ALERTQ_ACK_TARGET__CONFIRM_WITHIN": "20",
    }
    with alertq_up(alertq_env, core, "mattermost", tmp_path / "up.log", **extra) as stack:
        core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - / 1% free")
        problem = stack.wait_for_message(
            lambda m: service in text(m) and "Acknowledge" in labels(m), "the problem post with its buttons"
        )
        assert labels(problem) == ["Acknowledge", "Snooze 1 h", "Snooze until 08:00", "Recheck now"]

        # Acknowledge: the core's ACKNOWLEDGEMENT edits the root (alertq up posts through the sink's chat
        # API: one conversation per incident), which then offers Unacknowledge (and Snooze, Recheck now).
        stack.click(problem, "dave")
        acknowledgement = stack.wait_for_message(
            lambda m: "Unacknowledge" in labels(m), "the acknowledged root with its Unacknowledge button"
        )
        assert acknowledgement["id"] == problem["id"] and "dave" in text(acknowledgement)
        assert labels(acknowledgement) == ["Snooze 1 h", "Snooze until 08:00", "Recheck now", "Unacknowledge"]
        stack.wait_for_message(lambda m: "acknowledged by @dave: confirmed" in text(m), "the acknowledgement's proof")

        stack.click(acknowledgement, "erin", "Unacknowledge")
        stack.wait_for_message(lambda m: "acknowledgement removed by @erin" in text(m), "the unacknowledge post")
        assert core.status().service(host, service)["problem_has_been_acknowledged"] == "0"
        assert any(f"REMOVE_SVC_ACKNOWLEDGEMENT;{host};{service}" in line for line in core.log_lines())

        # Snooze (last: a downtime silences the core's notifications)
        clicked_at = time.time()
        stack.click(acknowledgement, "dave", "Snooze 1 h")
        stack.wait_for_message(lambda m: f"{host}/{service} snoozed by @dave until" in text(m), "the snooze post")
        [downtime] = [d for d in core.status().all("servicedowntime") if d["host_name"] == host]
        assert downtime["author"] == "dave" and int(downtime["end_time"]) - int(downtime["start_time"]) == 3600
        assert abs(int(downtime["start_time"]) - clicked_at) < 60
        assert not any("did NOT" in text(m) for m in stack.messages())


def test_a_slack_recheck_button_at_the_sink_reschedules_the_check_in_nagios(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host, service = "db-" + uuid.uuid4().hex[:8], "pg-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(hosts={host: [service]}, channels=("slack",), args=SLACK)
    extra = {
        "ALERTQ_CHANNELS__SLACK__ACTIONS": "recheck,acknowledge",
        "ALERTQ_ACK_TARGET__CONFIRM_WITHIN": "20",
    }
    with alertq_up(alertq_env, core, "slack", tmp_path / "up.log", **extra) as stack:
        core.set_service_state(host, service, "CRITICAL", "PGSQL CRITICAL")
        problem = stack.wait_for_message(
            lambda m: m["channel"] == "slack" and service in text(m) and "Recheck now" in labels(m), "the Slack post"
        )
        assert labels(problem) == ["Recheck now", "Acknowledge"]
        clicked_at = time.time()
        assert stack.click(problem, "frank", "Recheck now")["status"] == 200
        stack.wait_for_message(lambda m: f"{host}/{service}: recheck by @frank" in text(m), "the recheck post")
        checked = core.status().service(host, service)
        assert int(checked["last_check"]) >= int(clicked_at) - 1 or abs(int(checked["next_check"]) - clicked_at) < 10
        assert any(f"SCHEDULE_FORCED_SVC_CHECK;{host};{service};" in line for line in core.log_lines())
