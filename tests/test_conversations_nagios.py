"""One conversation per incident with a REAL Nagios 4 core and `alertq up` (escalator included), as a user
runs it: the core's openITCOCKPIT Mattermost or Slack command lines for two contacts, re-notifications,
an escalation step of alertq's escalator, a click on the root's button, the core's ACKNOWLEDGEMENT and
RECOVERY, all in one thread at the sink's emulation of the chat's API; then the exact API calls."""

from __future__ import annotations

import json
import re
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
from tests.support.nagios_config import BACKUP_CONTACT, MATTERMOST, SLACK
from tests.support.up_stack import Stack, acknowledged, alertq_up

pytestmark = pytest.mark.nagios

# carol's address is the channel the incident's conversation is in (alertq up's default for the chat).
ROUTING = """
timezone = "UTC"

[contacts.carol.addresses]
{chat} = "{channel}"

[policies.disk]
services = ["disk-*"]

[[policies.disk.steps]]
after = "3s"
notify = ["carol"]
channels = ["{chat}"]
"""
CHANNEL = {"mattermost": "alertq/alerts", "slack": "C0ALERTQ"}
# The openITCOCKPIT command lines, with alertq's flags added: the contact, the notification number and
# the core's problem id (0 on a RECOVERY); the Slack module's line carries no ack author or comment.
ALERTQ_FLAGS = (
    '--contact "$CONTACTNAME$" --notification-number "$NOTIFICATIONNUMBER$" --problem-id "$SERVICEPROBLEMID$"'
)
SLACK_ACK_FLAGS = ' --ackauthor "$NOTIFICATIONAUTHOR$" --ackcomment "$NOTIFICATIONCOMMENT$"'
# A call as one letter: G the channel looked up, R the root, P a thread reply, E an edit of the root,
# C the listener's call for a click (Mattermost: it reads the post, the click's answer edits it; Slack:
# chat.update).
CALL_LETTERS = {
    "POST /posts root": "R",
    "POST /posts reply": "P",
    "PUT /posts/{id}/patch": "E",
    "GET /posts/{id}": "C",
    "chat.postMessage root": "R",
    "chat.postMessage reply": "P",
    "chat.update": "E",
}


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


@pytest.mark.parametrize("chat", ["mattermost", "slack"])
def test_a_nagios_incident_is_one_chat_conversation_from_problem_to_recovery(
    chat: str,
    declared: Settings,
    alertq_env: dict[str, str],
    nagios_core_factory: Callable[..., NagiosCore],
    tmp_path: Path,
) -> None:
    host, service = "web-" + uuid.uuid4().hex[:8], "disk-" + uuid.uuid4().hex[:8]
    core = nagios_core_factory(
        hosts={host: [service]},
        channels=(chat,),
        args=MATTERMOST if chat == "mattermost" else SLACK,
        extra_args=ALERTQ_FLAGS + (SLACK_ACK_FLAGS if chat == "slack" else ""),
        extra_objects=BACKUP_CONTACT,
        service_directives={"contacts": "oncall,backup", "notification_interval": "4"},
    )
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING.format(chat=chat, channel=CHANNEL[chat]))
    with alertq_up(
        alertq_env,
        core,
        chat,
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
        # With active checks off, the core re-notifies (every 4 s) when a result comes: one every second.
        still_critical = threading.Event()
        keep_checking = threading.Thread(target=checks, args=(core, host, service, still_critical), daemon=True)
        keep_checking.start()
        wait_reply(stack, root, lambda t: "notification 2" in t, "the core's re-notification in the thread")
        wait_reply(stack, root, lambda t: "Escalated (step 1" in t and "@carol" in t, "the escalation step")

        assert stack.click(root, "jdoe")["status"] == 200
        clicked = stack.wait_for_message(lambda m: m["id"] == root["id"] and buttons(m) == [], "the root clicked")
        acknowledged(core, host, service)
        still_critical.set()
        keep_checking.join(10)
        wait_reply(stack, root, lambda t: "ACKNOWLEDGEMENT" in t and "jdoe" in t, "the core's ACKNOWLEDGEMENT")

        core.set_service_state(host, service, "OK", "DISK OK - free space: / 5120 MB (42%)")
        wait_reply(stack, root, lambda t: "RECOVERY" in t, "the RECOVERY in the thread")
        [root] = roots_about(stack, service)
        replies = replies_to(stack, root)
        calls = requests.get(f"{stack.sink}/api/calls", params={"api": chat}, timeout=10).json()

    assert "jdoe" in root_text(clicked)  # the click's edit says who, the button gone
    assert "RECOVERED after" in root_text(root) and colour(root) == "#5cb85c" and buttons(root) == []
    assert "jdoe" in root_text(root)
    # The forwarder's word that the core shows the acknowledgement comes whenever its read-back ends.
    confirmed = [reply for reply in replies if "confirmed by the monitoring core" in reply]
    assert len(confirmed) <= 1, replies
    replies = [reply for reply in replies if reply not in confirmed]
    ack = next(n for n, reply in enumerate(replies) if "ACKNOWLEDGEMENT" in reply)
    assert all("notification" in reply for reply in replies[:ack] if "Escalated" not in reply)
    assert "RECOVERY" in replies[-1] and ack == len(replies) - 2, replies

    # The exact calls, all taken, all in the one channel and thread.
    assert ok(calls) == calls, [(summary(c), c["status"]) for c in calls if c not in ok([c])]
    assert_conversation_calls(chat, calls, root)


def assert_conversation_calls(chat: str, calls: list[dict[str, Any]], root: dict[str, Any]) -> None:
    """One root (Mattermost: after looking its channel up once); at most one edit of its contacts; the
    re-notifications and the escalation step as replies; the click (the listener's one call); replies
    still on their way; the ACKNOWLEDGEMENT and the RECOVERY each one edit and one reply; after the click,
    the forwarder's one reply that the core confirmed it."""
    if chat == "mattermost":
        assert summary(calls[0]) == "GET /teams/name/alertq/channels/name/alerts", summary(calls[0])
        calls = calls[1:]
    letters = "".join(CALL_LETTERS[summary(c)] for c in calls)
    if chat == "slack":  # the listener's chat.update: the first edit saying who acknowledged
        click = next(n for n, c in enumerate(calls) if summary(c) == "chat.update" and "jdoe" in json.dumps(c))
        letters = letters[:click] + "C" + letters[click + 1 :]
    # The forwarder's word that the core shows the acknowledgement: one reply, whenever its read-back ends.
    # It may still be on its way when the test reads the calls.
    confirmations = [n for n, c in enumerate(calls) if "confirmed by the monitoring core" in json.dumps(c)]
    assert len(confirmations) <= 1, letters
    for confirmed in confirmations:
        letters = letters[:confirmed] + "F" + letters[confirmed + 1 :]
        assert letters.index("C") < confirmed, letters  # after the click, as a reply
    before, _, after = letters.replace("F", "").partition("C")
    assert re.fullmatch(r"RE?P(E?P)+", before) and before.count("E") <= 1, letters
    assert re.fullmatch(r"P*EPEP", after), letters
    threads = {c["body"].get("root_id") or c["body"].get("thread_ts") for c in calls if CALL_LETTERS[summary(c)] == "P"}
    assert threads == {root["api"]["id"]}, threads
    channels = {c["body"].get("channel_id") or c["body"].get("channel") for c in calls if c["method"] == "POST"}
    assert len(channels) == 1, channels
