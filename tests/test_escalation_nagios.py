"""Escalation end to end with a REAL Nagios 4 core and `alertq up` (escalator included):

problem → the core's notification → nobody acknowledges → step 1 to alice → step 2 to bob, each at the
preview sink as an escalated Mattermost post in the contact's own channel; a second problem, whose
step-1 post alice acknowledges with its button → no step 2 for it, and the core has the ack.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from schemas.settings import Settings
from tests.support.nagios import NagiosCore
from tests.support.up_stack import Stack, acknowledged, alertq_up, has_ack_button, text

pytestmark = pytest.mark.nagios

ROUTING = """
timezone = "UTC"

[contacts.alice.addresses]
mattermost = "@alice"

[contacts.bob.addresses]
mattermost = "@bob"

[policies.web]
hosts = ["web-*"]

[[policies.web.steps]]
after = "3s"
notify = ["alice"]
channels = ["mattermost"]

[[policies.web.steps]]
after = "5s"
notify = ["bob"]
channels = ["mattermost"]
"""


def is_step(message: dict[str, Any], service: str, step: int) -> bool:
    return service in text(message) and f"Escalated (step {step}," in text(message)


def escalated(stack: Stack, service: str, step: int) -> list[dict[str, Any]]:
    return [m for m in stack.messages() if is_step(m, service, step)]


def test_unacknowledged_problem_escalates_to_step_2_and_an_acknowledged_one_stops_before_it(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host = "web-" + uuid.uuid4().hex[:8]
    ignored, acked = "disk-" + uuid.uuid4().hex[:6], "load-" + uuid.uuid4().hex[:6]
    core = nagios_core_factory(hosts={host: [ignored, acked]}, channels=("mattermost",))
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING)
    with alertq_up(
        alertq_env,
        core,
        "mattermost",
        tmp_path / "up.log",
        ALERTQ_ROUTING_FILE=str(routing),
        ALERTQ_STATE_STORE=f"sqlite:///{tmp_path}/alertq.db",
    ) as stack:
        core.set_service_state(host, ignored, "CRITICAL", "DISK CRITICAL - free space: / 120 MB (1%)")
        core.set_service_state(host, acked, "CRITICAL", "CRITICAL - load average: 42.0")
        stack.wait_for_message(lambda m: ignored in text(m) and has_ack_button(m), "the core's own notification")
        # Nobody reacts to the core's notifications; alice gets step 1 of both and acknowledges one.
        acked_step1 = stack.wait_for_message(lambda m: is_step(m, acked, 1), "step 1 of the second problem")
        assert stack.click(acked_step1, "alice")["status"] == 200  # step 2 is due 5 s after step 1

        step1 = stack.wait_for_message(lambda m: is_step(m, ignored, 1), "step 1 of the ignored problem")
        step2 = stack.wait_for_message(lambda m: is_step(m, ignored, 2), "step 2 of the ignored problem")
        # Each step starts a conversation in the contact's own channel (a direct message, API mode).
        assert step1["api"]["channel_name"] == "@alice" and step2["api"]["channel_name"] == "@bob"
        assert re.search(r"Escalated \(step 2, since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", text(step2))
        assert "DISK CRITICAL" in text(step2) and has_ack_button(step2), "an escalated post can be acknowledged"

        time.sleep(3)  # well past the acknowledged problem's step 2
        assert escalated(stack, acked, 2) == [], "acknowledged in chat before step 2: no step 2"
        assert len(escalated(stack, ignored, 2)) == 1
        [comment] = acknowledged(core, host, acked).comments(host, acked)
        assert comment["author"] == "alice"
