"""alertq-enqueue behind a real Nagios 4 core: the core's own notification commands fill the queue.

The core runs openITCOCKPIT's notification command lines with only the binary swapped for
`alertq-enqueue --channel …`; host and service names are UUIDs as in openITCOCKPIT. States are set by
passive check results through the core's command file, so every notification here is one the core
decided to send, with the macro values it expanded.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from broker import names
from schemas.alert import AlertEvent
from schemas.settings import Settings
from tests.support import amqp
from tests.support.nagios import NagiosCore
from tests.support.nagios_config import SLACK
from tests.support.nagios_status import Status

pytestmark = pytest.mark.nagios

MATTERMOST_QUEUE = names.notify_queue("mattermost")


def take_one(core: NagiosCore, url: str, queue: str) -> AlertEvent:
    """The one event the last notification put in `queue`, validated; fails on none or more than one."""
    received = amqp.take(url, queue, count=1, timeout=60)
    assert len(received) == 1, f"no event in {queue} within 60 s{core.diagnostics()}"
    assert amqp.depth(url, queue) == 0, f"more than one event in {queue}"
    message = received[0]
    event = AlertEvent.model_validate_json(message.body)
    assert message.routing_key == names.notify_key(event.channel)
    return event


def test_service_problem_recovery_and_host_down_arrive_with_the_cores_macro_values(
    declared: Settings, amqp_url: str, nagios_core_factory: Callable[..., NagiosCore]
) -> None:
    host, service = str(uuid.uuid4()), str(uuid.uuid4())
    core = nagios_core_factory(hosts={host: [service]})

    core.set_service_state(host, service, "CRITICAL", "DISK CRITICAL - free space: / 120 MB (1%)")
    problem = take_one(core, amqp_url, MATTERMOST_QUEUE)
    assert problem.channel == "mattermost"
    assert problem.kind == "service"
    assert problem.notification_type == "PROBLEM"
    assert (problem.host.id, problem.service and problem.service.id) == (host, service)
    assert (problem.state, problem.state_name) == (2, "CRITICAL")
    assert problem.output == "DISK CRITICAL - free space: / 120 MB (1%)"
    assert problem.ack is None  # $NOTIFICATIONAUTHOR$ and $NOTIFICATIONCOMMENT$ are empty on a PROBLEM
    # The core's own record agrees: it notified contact oncall through the alertq command.
    assert core.notifications("SERVICE")[-1][:5] == ["oncall", host, service, "CRITICAL", "alertq-service-notify"]

    core.set_service_state(host, service, "OK", "DISK OK - free space: / 5120 MB (42%)")
    recovery = take_one(core, amqp_url, MATTERMOST_QUEUE)
    assert recovery.notification_type == "RECOVERY"
    assert (recovery.host.id, recovery.service and recovery.service.id) == (host, service)
    assert (recovery.state, recovery.output) == (0, "DISK OK - free space: / 5120 MB (42%)")
    assert recovery.event_id != problem.event_id

    core.set_host_state(host, "DOWN", "CRITICAL - 10.0.0.1: rta nan, lost 100%")
    down = take_one(core, amqp_url, MATTERMOST_QUEUE)
    assert down.kind == "host"
    assert down.notification_type == "PROBLEM"
    assert down.host.id == host
    assert down.service is None
    assert (down.state, down.state_name) == (1, "DOWN")
    assert down.output == "CRITICAL - 10.0.0.1: rta nan, lost 100%"
    assert core.notifications("HOST")[-1][:4] == ["oncall", host, "DOWN", "alertq-host-notify"]


def test_acknowledgement_through_the_command_file_carries_author_and_comment(
    declared: Settings, amqp_url: str, nagios_core: NagiosCore
) -> None:
    nagios_core.set_service_state("web01", "disk", "WARNING", "DISK WARNING - free space: / 900 MB (8%)")
    assert take_one(nagios_core, amqp_url, MATTERMOST_QUEUE).notification_type == "PROBLEM"

    # sticky, notify, persistent; author and comment as an operator types them
    nagios_core.submit("ACKNOWLEDGE_SVC_PROBLEM;web01;disk;2;1;1;Jane Doe;on it, disk cleanup running")
    ack = take_one(nagios_core, amqp_url, MATTERMOST_QUEUE)
    assert ack.notification_type == "ACKNOWLEDGEMENT"
    assert (ack.state, ack.service and ack.service.id) == (1, "disk")
    assert ack.ack is not None
    assert (ack.ack.author, ack.ack.comment) == ("Jane Doe", "on it, disk cleanup running")

    # The core holds the acknowledgement too: the flag and the comment it leaves (entry_type 4).
    def acknowledged() -> Status | None:
        status = nagios_core.status()
        return status if status.service("web01", "disk")["problem_has_been_acknowledged"] == "1" else None

    status = nagios_core.wait_for(acknowledged, what="status.dat to show the acknowledgement")
    [comment] = status.comments("web01", "disk")
    assert (comment["entry_type"], comment["author"]) == ("4", "Jane Doe")


def test_slack_command_set_with_alertq_flags_and_two_channels(
    declared: Settings, amqp_url: str, nagios_core_factory: Callable[..., NagiosCore]
) -> None:
    core = nagios_core_factory(
        hosts={"db01": ["postgres"]},
        args=SLACK,
        channels=("slack", "mattermost"),
        extra_args='--contact "$CONTACTNAME$" --contact-email "$CONTACTEMAIL$" '
        '--notification-number "$NOTIFICATIONNUMBER$" --core nagios',
    )
    core.set_service_state("db01", "postgres", 3, "UNKNOWN - connection refused")

    by_channel = {channel: take_one(core, amqp_url, names.notify_queue(channel)) for channel in ("slack", "mattermost")}
    for channel, event in by_channel.items():
        assert event.channel == channel
        assert (event.host.id, event.host.address) == ("db01", "127.0.0.1")  # $HOSTADDRESS$
        assert (event.service and event.service.id, event.state) == ("postgres", 3)
        assert event.output == "UNKNOWN - connection refused"
        assert event.contact is not None
        assert (event.contact.name, event.contact.email) == ("oncall", "oncall@example.org")
        assert event.notification_number == 1
        assert event.source.core == "nagios"
    assert by_channel["slack"].event_id != by_channel["mattermost"].event_id
