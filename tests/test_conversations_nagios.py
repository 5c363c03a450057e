"""One conversation per incident with a REAL Nagios 4 core and `alertq up` (escalator included), as a user
runs it: the core's openITCOCKPIT Mattermost command lines for two contacts, re-notifications, an
escalation step of alertq's escalator, a click on the root's button, the core's ACKNOWLEDGEMENT and
RECOVERY, all in one thread at the sink's Mattermost API emulation."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests

from schemas.settings import Settings
from tests.support.conversations import buttons, colour, ok, root_text, summary
from tests.support.nagios import NagiosCore
from tests.support.up_stack import Stack, acknowledged, alertq_up

pytestmark = pytest.mark.nagios

ROUTING = """
timezone = "UTC"

[contacts.carol.addresses]
mattermost = "alertq/alerts"  # the team's channel, where the incident's conversation is

[policies.disk]
services = ["disk-*"]

[[policies.disk.steps]]
after = "3s"
notify = ["carol"]
channels = ["mattermost"]
"""

BACKUP_CONTACT = """
define contact {
    contact_name                   backup
    alias                          Backup
    host_notifications_enabled     1
    service_notifications_enabled  1
    host_notification_period       24x7
    service_notification_period    24x7
    host_notification_options      d,u,r,f,s
    service_notification_options   w,u,c,r,f,s
    host_notification_commands     alertq-host-notify
    service_notification_commands  alertq-service-notify
}
"""


def roots_about(stack: Stack, service: str) -> list[dict[str, Any]]:
    return [m for m in stack.messages() if m["api"] and m["api"]["root"] is None and service in root_text(m)]


def replies_to(stack: Stack, root: dict[str, Any]) -> list[str]:
    return [root_text(m) for m in stack.messages() if m["api"] and m["api"]["root"] == root["id"]]


def wait_reply(stack: Stack, root: dict[str, Any], predicate: Callable[[str], bool], what: str) -> None:
    stack.wait_for_message(
        lambda m: bool(m["api"]) and m["api"]["root"] == root["id"] and predicate(root_text(m)), what
    )


def checks(core: NagiosCore, host: str, service: str, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - free space: / 120 MB (1%)")


def test_a_nagios_incident_is_one_mattermost_conversation_from_problem_to_recovery(
    declared: Settings, alertq_env: dict[str, str], nagios_core_factory: Callable[..., NagiosCore], tmp_path: Path
) -> None:
    host, service = "web-" + uuid.uuid4().hex[:8], "disk-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(
        hosts={host: [service]},
        channels=("mattermost",),
        # The openITCOCKPIT command lines pass the core's problem id (0 on a RECOVERY).
        extra_args='--contact "$CONTACTNAME$" --notification-number "$NOTIFICATIONNUMBER$" '
        '--problem-id "$SERVICEPROBLEMID$"',
        extra_objects=BACKUP_CONTACT,
        service_directives={"contacts": "oncall,backup", "notification_interval": "4"},
    )
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
        core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - free space: / 120 MB (1%)")
        root = stack.wait_for_message(
            lambda m: (
                bool(m["api"]) and service in root_text(m) and "backup" in root_text(m) and "oncall" in root_text(m)
            ),
            "one root naming both contacts",
        )
        assert buttons(root) == ["Acknowledge"] and colour(root) == "#d9534f"
        # With active checks off, the core re-notifies when a result comes: one every second.
        still_critical = threading.Event()
        keep_checking = threading.Thread(target=checks, args=(core, host, service, still_critical), daemon=True)
        keep_checking.start()
        wait_reply(stack, root, lambda t: "notification 2" in t, "the core's re-notification in the thread")
        wait_reply(stack, root, lambda t: "Escalated (step 1" in t and "@carol" in t, "the escalation step")

        assert stack.click(root, "jdoe")["status"] == 200
        acknowledged(core, host, service)
        still_critical.set()
        keep_checking.join(10)
        wait_reply(stack, root, lambda t: "ACKNOWLEDGEMENT" in t and "jdoe" in t, "the core's ACKNOWLEDGEMENT")

        core.set_service_state(host, service, "OK", "DISK OK - free space: / 5120 MB (42%)")
        wait_reply(stack, root, lambda t: "RECOVERY" in t, "the RECOVERY in the thread")
        [root] = roots_about(stack, service)
        replies = replies_to(stack, root)
        calls = requests.get(f"{stack.sink}/api/calls", params={"api": "mattermost"}, timeout=10).json()

    assert "RECOVERED after" in root_text(root) and colour(root) == "#5cb85c" and buttons(root) == []
    assert "jdoe" in root_text(root)
    ack = next(n for n, reply in enumerate(replies) if "ACKNOWLEDGEMENT" in reply)
    assert all("notification" in reply for reply in replies[:ack] if "Escalated" not in reply)
    assert "RECOVERY" in replies[-1] and ack == len(replies) - 2
    assert ok(calls) == calls, [(summary(c), c["status"]) for c in calls if c not in ok([c])]
    assert [summary(c) for c in calls].count("POST /posts root") == 1
