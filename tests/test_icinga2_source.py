"""Icinga 2 as a source, with the REAL Icinga 2 and deploy/icinga2/alertq.conf as shipped:

a service set CRITICAL through the API (process-check-result) → Icinga 2's `apply Notification` rule
runs the `alertq-service-mattermost` NotificationCommand → alertq-enqueue → spool → `alertq up` (relay,
worker with two-way buttons, sink, ack listener, forwarder) → the post at the sink → Acknowledge clicked
→ the forwarder acknowledges through the Icinga 2 API → Icinga 2 shows the ack by the clicker, and its own
ACKNOWLEDGEMENT notification (with $notification.author$) comes back through alertq as a second post.

The core's daemon runs unprivileged as in tests/test_ack_icinga2.py (tests/support/icinga.py); only its
host objects get the vars the README tells operators to set, and the two paths (alertq-enqueue, the
TOML file) that differ in a test from /opt/alertq and /etc/alertq."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.conftest import require
from tests.support.icinga import API_PASSWORD, API_USER, ICINGA2_BINARY, SEARCH_PATH, Icinga2Core
from tests.support.nagios import enqueue_program
from tests.support.nagios_config import alertq_toml
from tests.support.up_stack import WAIT, alertq_up_for, has_ack_button, text

DEPLOY_CONF = Path(__file__).resolve().parents[1] / "deploy" / "icinga2" / "alertq.conf"
CRITICAL = "DISK CRITICAL - free space: / 120 MB (1%)"


def _dsl(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture
def icinga2_source(amqp_url: str, tmp_path: Path) -> Iterator[tuple[Icinga2Core, str, str]]:
    """A real Icinga 2 with deploy/icinga2/alertq.conf included, one host notifying user alice through
    Mattermost and the webhook; yields the core, the host and the service."""
    import shutil

    require(shutil.which(ICINGA2_BINARY, path=SEARCH_PATH) is not None, "icinga2 is not installed")
    host, service = "web-" + uuid.uuid4().hex[:8], "disk-" + uuid.uuid4().hex[:8]
    core = Icinga2Core(Path(tempfile.gettempdir()), hosts={host: [service]})
    spool = core.workdir / "alertq-spool"
    spool.mkdir()
    toml = core.workdir / "alertq.toml"
    toml.write_text(alertq_toml(amqp_url, spool))
    bin_dir = core.workdir / "bin"
    bin_dir.mkdir()
    enqueue = enqueue_program(bin_dir, core.as_core_user(), core.core_user)
    core.host_attributes = "\n".join(
        [
            '  vars.alertq_channels = [ "mattermost", "webhook" ]',
            '  vars.alertq_users = [ "alice" ]',
            f"  vars.alertq_enqueue = {_dsl(enqueue)}",
            f"  vars.alertq_config = {_dsl(str(toml))}",
        ]
    )
    core.extra_config = "\n".join(
        [
            'object NotificationComponent "notification" { }',
            'object User "alice" { email = "alice@example.org" }',
            f"include {_dsl(str(DEPLOY_CONF))}",
        ]
    )
    try:
        core.start()
        yield core, host, service
    finally:
        core.cleanup()


def test_icinga2_notifies_through_alertq_and_a_chat_click_acknowledges_in_icinga2_by_the_clicker(
    declared: Settings, alertq_env: dict[str, str], icinga2_source: tuple[Icinga2Core, str, str], tmp_path: Path
) -> None:
    core, host, service = icinga2_source
    target = {
        "ALERTQ_ACK_TARGET__KIND": "icinga2",
        "ALERTQ_ACK_TARGET__URL": core.url,
        "ALERTQ_ACK_TARGET__USERNAME": API_USER,
        "ALERTQ_ACK_TARGET__PASSWORD": API_PASSWORD,
        "ALERTQ_ACK_TARGET__CA_BUNDLE": str(core.ca_file),
    }
    spool = core.workdir / "alertq-spool"
    webhook_on = {"ALERTQ_CHANNELS__WEBHOOK__ENABLED": "true"}  # the event as alertq-enqueue built it
    with alertq_up_for(alertq_env, spool, target, "mattermost", tmp_path / "up.log", **webhook_on) as stack:
        core.set_service_state(host, service, 2, CRITICAL)
        event = stack.wait_for_message(lambda m: m["channel"] == "webhook", "the webhook's event")["payload"]
        # What the NotificationCommand's macros carried, as alertq-enqueue made it into alertq.alert/1.
        assert (event["notification_type"], event["kind"], event["state"]) == ("PROBLEM", "service", 2)
        assert (event["host"]["id"], event["service"]["id"], event["output"]) == (host, service, CRITICAL)
        assert event["contact"] == {"name": "alice", "email": "alice@example.org", "pager": None}
        assert event["notification_number"] == 1 and event["source"]["core"] == "icinga2"
        problem = stack.wait_for_message(
            lambda m: m["channel"] == "mattermost" and service in text(m) and has_ack_button(m),
            "Mattermost post with an Acknowledge button",
        )
        assert "PROBLEM" in text(problem) and "CRITICAL" in text(problem) and CRITICAL in text(problem)
        assert host in text(problem)

        assert stack.click(problem, "jdoe")["status"] == 200

        core.wait_for(lambda: core.service(host, service)["acknowledgement"] != 0, WAIT, "the acknowledgement")
        [comment] = [c for c in core.comments(host, service) if c["entry_type"] == 4]
        assert comment["author"] == "jdoe"

        ack = stack.wait_for_message(
            lambda m: m["id"] != problem["id"] and "ACKNOWLEDGEMENT" in text(m).upper(), "ACKNOWLEDGEMENT post"
        )
        assert "jdoe" in text(ack) and service in text(ack)
        assert not has_ack_button(ack)
        assert API_PASSWORD not in stack.log.read_text()
