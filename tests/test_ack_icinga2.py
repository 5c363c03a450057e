"""Acknowledging on a real Icinga 2: the forwarder's ack lands in the core, verified over TLS against
the core's own CA, and the core's state is visible through the target's problem check."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pytest_httpserver import HTTPServer

from broker import names
from schemas.ack import Reply
from schemas.settings import Settings
from tests.support import amqp
from tests.support.ack_processes import ack_forwarder
from tests.support.chat_actions import chat_hook, told, wait_told
from tests.support.icinga import API_PASSWORD, API_USER, Icinga2Core
from tests.test_ack_forwarder import ack_message, publish, wait_for_line


def icinga2_target(core: Icinga2Core) -> dict[str, str]:
    return {
        "kind": "icinga2",
        "url": core.url,
        "username": API_USER,
        "password": API_PASSWORD,
        "ca_bundle": str(core.ca_file),
    }


def test_an_ack_from_chat_acknowledges_the_critical_service_in_icinga2_with_its_author(
    declared: Settings,
    alertq_env: dict[str, str],
    amqp_url: str,
    icinga2_core: Icinga2Core,
    tmp_path: Path,
) -> None:
    icinga2_core.set_service_state("web01", "disk", 2, "DISK CRITICAL - / 1% free")
    assert icinga2_core.service("web01", "disk")["acknowledgement"] == 0

    ack = ack_message(author="jdoe", comment="on it, from Mattermost")
    ack = ack.model_copy(update={"host_id": "web01", "service_id": "disk"})
    with ack_forwarder(alertq_env, tmp_path / "fwd.log", **icinga2_target(icinga2_core)) as forwarder:
        publish(amqp_url, ack)
        wait_for_line(forwarder, "ack_forwarder.acknowledged")

    assert icinga2_core.service("web01", "disk")["acknowledgement"] == 2  # sticky
    [comment] = [c for c in icinga2_core.comments("web01", "disk") if c["entry_type"] == 4]
    assert comment["author"] == "jdoe" and comment["text"] == "on it, from Mattermost"
    assert amqp.depth(amqp_url, names.DEAD_QUEUE) == 0
    assert API_PASSWORD not in forwarder.log_text()


def test_snooze_recheck_and_unacknowledge_land_in_icinga2_and_are_read_back_before_the_chat_hears(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, httpserver: HTTPServer, tmp_path: Path
) -> None:
    core = Icinga2Core(Path(tempfile.gettempdir()), hosts={"web01": ["disk", "load", "swap"]})
    try:
        core.start()
        for service in ("disk", "load", "swap"):
            core.set_service_state("web01", service, 2, f"{service.upper()} CRITICAL")
        core.api(
            "POST",
            "/v1/actions/acknowledge-problem",
            json={"type": "Service", "service": "web01!swap", "author": "bob", "comment": "looking"},
        ).raise_for_status()
        core.wait_for(lambda: core.service("web01", "swap")["acknowledgement"] != 0)

        env = {**alertq_env, "ALERTQ_CHANNELS__MATTERMOST__URL": chat_hook(httpserver)}
        target = {**icinga2_target(core), "confirm_within": "20", "confirm_every": "0.5"}
        now = datetime.now(UTC)
        reply = Reply(channel_name="ops")
        snooze = ack_message(
            action="snooze",
            snooze="4h",
            author="alice",
            comment="Snoozed (4h) in Mattermost by alice via alertq",
            downtime_start=now,
            downtime_end=now + timedelta(hours=4),
            reply=reply,
        ).model_copy(update={"host_id": "web01", "service_id": "disk", "chat_user": "alice"})
        recheck = ack_message(action="recheck", reply=reply).model_copy(
            update={"host_id": "web01", "service_id": "load", "chat_user": "carol"}
        )
        unack = ack_message(action="unacknowledge", reply=reply).model_copy(
            update={"host_id": "web01", "service_id": "swap", "chat_user": "carol"}
        )
        with ack_forwarder(env, tmp_path / "fwd.log", **target) as forwarder:
            for message in (snooze, recheck, unack):
                publish(amqp_url, message)
            wait_told(httpserver, "web01/disk snoozed by @alice until")
            wait_told(httpserver, "web01/load: recheck by @carol")
            wait_told(httpserver, "web01/swap: acknowledgement removed by @carol")

        [downtime] = core.downtimes("web01", "disk")
        assert downtime["author"] == "alice" and downtime["fixed"] is True
        assert int(downtime["end_time"]) - int(downtime["start_time"]) == 4 * 3600
        assert abs(downtime["start_time"] - now.timestamp()) < 2
        assert core.service("web01", "swap")["acknowledgement"] == 0
        load = core.api(
            "GET", "/v1/objects/services/web01!load", params={"attrs": ["last_check", "next_check"]}
        ).json()["results"][0]["attrs"]
        assert load["last_check"] >= now.timestamp() - 1 or abs(load["next_check"] - now.timestamp()) < 10
        assert not any("did NOT" in text for text in told(httpserver))
        assert API_PASSWORD not in forwarder.log_text()
    finally:
        core.cleanup()
