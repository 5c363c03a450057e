"""Acknowledging on a real Icinga 2: the forwarder's ack lands in the core, verified over TLS against
the core's own CA, and the core's state is visible through the target's problem check."""

from __future__ import annotations

from pathlib import Path

from broker import names
from schemas.settings import Settings
from tests.support import amqp
from tests.support.ack_processes import ack_forwarder
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
