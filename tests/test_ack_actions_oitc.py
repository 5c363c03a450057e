"""Snooze, Recheck now and Unacknowledge against the openITCOCKPIT stand-in: the exact commands its
bulk API gets, the read-back through its index API before the chat hears, and openITCOCKPIT #1672 (a
200 for a command the core never applied) told as a failure within the bound."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer

from broker import names
from schemas.ack import Reply
from schemas.settings import Settings
from tests.support import amqp
from tests.support.ack_processes import ack_forwarder
from tests.support.chat_actions import chat_hook, told, wait_told
from tests.support.oitc import OitcStandIn
from tests.test_ack_forwarder import API_KEY, ack_message, oitc_target, publish

HOST, SERVICE = "4f6d2b1e-host", "9a8b7c6d-service"
CONFIRM_WITHIN = 4.0


def test_snooze_and_recheck_reach_openitcockpit_exactly_and_unacknowledge_is_refused_in_words(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    core = OitcStandIn(httpserver, API_KEY)
    core.set_state(HOST, SERVICE, 2)
    core.set_state(HOST, None, 1, acknowledged=True)
    env = {**alertq_env, "ALERTQ_CHANNELS__MATTERMOST__URL": chat_hook(httpserver)}
    start = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    reply = Reply(channel_name="ops")
    snooze = ack_message(
        service=SERVICE,
        action="snooze",
        snooze="1h",
        comment="Snoozed (1h) in Mattermost by jdoe via alertq",
        downtime_start=start,
        downtime_end=start + timedelta(hours=1),
        reply=reply,
    ).model_copy(update={"host_id": HOST})
    recheck = ack_message(service=None, action="recheck", reply=reply).model_copy(update={"host_id": HOST})
    unack = ack_message(service=None, action="unacknowledge", reply=reply).model_copy(update={"host_id": HOST})

    target = oitc_target(httpserver, confirm_within=str(CONFIRM_WITHIN), confirm_every="0.2")
    with ack_forwarder(env, tmp_path / "fwd.log", **target):
        for message in (snooze, recheck, unack):
            publish(amqp_url, message)
        wait_told(httpserver, f"{HOST}/{SERVICE} snoozed by @jdoe until")
        wait_told(httpserver, f"{HOST}: recheck by @jdoe")
        refused = wait_told(httpserver, "unacknowledgement")
        [dead] = amqp.take(amqp_url, names.DEAD_QUEUE, count=1, timeout=30)

    assert core.commands == [
        {
            "command": "submitServiceDowntime",
            "hostUuid": HOST,
            "serviceUuid": SERVICE,
            "start": f"@{int(start.timestamp())}",
            "end": f"@{int(start.timestamp()) + 3600}",
            "comment": "Snoozed (1h) in Mattermost by jdoe via alertq",
            "author": "jdoe",
        },
        {"command": "rescheduleHost", "hostUuid": HOST, "type": "hostOnly", "satelliteId": 0},
    ]
    assert "did NOT reach the monitoring core" in refused and "cannot remove an acknowledgement" in refused
    assert dead.headers[names.HEADER_DEAD_REASON] == "permanent"
    assert core.state(HOST, SERVICE)["scheduledDowntimeDepth"] == 1


def test_a_200_for_a_command_the_core_never_applies_is_told_as_not_applied_within_the_bound(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    core = OitcStandIn(httpserver, API_KEY, applies=False)  # openITCOCKPIT #1672
    core.set_state(HOST, SERVICE, 2)
    env = {**alertq_env, "ALERTQ_CHANNELS__MATTERMOST__URL": chat_hook(httpserver)}
    target = oitc_target(httpserver, confirm_within=str(CONFIRM_WITHIN), confirm_every="0.2")
    with ack_forwarder(env, tmp_path / "fwd.log", **target) as forwarder:
        sent = time.monotonic()
        publish(
            amqp_url, ack_message(service=SERVICE, reply=Reply(channel_name="ops")).model_copy(update={"host_id": HOST})
        )
        said = wait_told(httpserver, "did NOT apply it", timeout=CONFIRM_WITHIN + 30)
        took = time.monotonic() - sent
        assert "ack_forwarder.not_confirmed" in forwarder.log_text()

    assert [c["command"] for c in core.commands] == ["submitServicestateAck"]
    assert f"within {CONFIRM_WITHIN:g} s" in said and "the monitoring core did not show it" in said
    assert CONFIRM_WITHIN <= took < CONFIRM_WITHIN + 20
    assert not any("confirmed by the monitoring core" in text for text in told(httpserver))
    assert amqp.depth(amqp_url, names.DEAD_QUEUE) == 0  # delivered to the API; not a dead letter


def test_a_core_that_never_applies_holds_up_no_other_action_while_each_waits_its_bound(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    """Five acks back to back to a core that takes none of them: the read-backs run side by side, so the
    last is told after about one bound, not five (one at a time, they would take 5 x 4 s = 20 s)."""
    core = OitcStandIn(httpserver, API_KEY, applies=False)
    services = [f"{SERVICE}-{n}" for n in range(5)]
    for service in services:
        core.set_state(HOST, service, 2)
    env = {**alertq_env, "ALERTQ_CHANNELS__MATTERMOST__URL": chat_hook(httpserver)}
    target = oitc_target(httpserver, confirm_within=str(CONFIRM_WITHIN), confirm_every="0.2")
    with ack_forwarder(env, tmp_path / "fwd.log", **target):
        sent = time.monotonic()
        for service in services:
            message = ack_message(service=service, reply=Reply(channel_name="ops"))
            publish(amqp_url, message.model_copy(update={"host_id": HOST}))
        for service in services:
            wait_told(httpserver, f"{HOST}/{service} by @", timeout=CONFIRM_WITHIN * 10)
        took = time.monotonic() - sent

    assert len(core.commands) == 5
    assert sum("did NOT apply it" in text for text in told(httpserver)) == 5
    assert CONFIRM_WITHIN <= took < 4 * CONFIRM_WITHIN, f"the five took {took:.1f}s"
