"""alertq.escalator exists only where escalation is configured, never grows without a reader, and a
full one never makes the broker refuse a notification. Real broker, real relay, worker and escalator
processes, a real HTTP endpoint."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pika
import pytest

from broker import names, topology
from broker.dlq.letter import DeadLetter
from broker.publisher import ConfirmedPublisher, Nacked, json_properties
from producer import spool
from schemas.settings import Settings
from tests.conftest import require, run
from tests.support import amqp
from tests.support.escalation import EscalatorProcess, escalator_env, routing_file
from tests.support.rabbit import SharedBroker
from tests.support.workers import Endpoint, WorkerProcess, event, publish, webhook_worker_env

NOTIFICATIONS = 1_000

ONE_STEP = """
[policies.all]
hosts = ["*"]

[[policies.all.steps]]
after = "10m"
notify = ["alice"]
channels = ["webhook"]
"""


def depths(url: str, queues: list[str]) -> dict[str, int | None]:
    """Ready messages per queue, None for a queue that does not exist."""
    result: dict[str, int | None] = {}
    connection = amqp.connect(url)
    try:
        for queue in queues:
            channel = connection.channel()  # a missing queue closes the channel it was asked on
            try:
                result[queue] = int(channel.queue_declare(queue, passive=True).method.message_count)
                channel.close()
            except pika.exceptions.ChannelClosedByBroker as exc:
                if exc.reply_code != 404:
                    raise
                result[queue] = None
    finally:
        connection.close()
    return result


def every_alertq_queue(settings: Settings) -> list[str]:
    """Every queue alertq can declare for these settings: with escalation and its timer tiers, so a
    queue that should not be there is looked at too."""
    return [q.name for q in topology.plan(settings, escalation=True).queues]


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_without_a_routing_file_a_thousand_notifications_leave_no_message_behind(
    settings: Settings,
    alertq_env: dict[str, str],
    amqp_url: str,
    hook: Endpoint,
    start_worker: Callable[..., WorkerProcess],
    tmp_path: Path,
) -> None:
    """The default set-up (no routing_file): before, alertq.escalator kept a copy of each of them."""
    env = webhook_worker_env(alertq_env, hook)
    spool_dir = alertq_env["ALERTQ_SPOOL__DIR"]
    for _ in range(NOTIFICATIONS):
        spool.write(spool_dir, json.dumps(event("webhook")).encode())
    worker = start_worker(env)
    relay = subprocess.Popen(["alertq", "relay"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        assert hook.wait_for(NOTIFICATIONS, timeout=120, distinct=True) == NOTIFICATIONS
        assert wait_until(lambda: spool.pending(spool_dir) == [])
    finally:
        relay.terminate()
        _, relay_log = relay.communicate(timeout=60)
    assert relay.returncode == 0, relay_log.decode(errors="replace")[-2000:]
    assert worker.terminate() == 0  # what it holds unacked would go back to its queue and show below
    assert len(hook.event_ids()) == NOTIFICATIONS  # each once

    left = depths(amqp_url, every_alertq_queue(settings))
    assert {q: n for q, n in left.items() if n} == {}, "messages left behind"
    assert left[names.ESCALATOR_QUEUE] is None, "no escalator, so no escalator queue"
    assert left[names.notify_queue("webhook")] == 0

    nagios = run(["alertq", "status", "--nagios"], alertq_env)
    assert nagios.returncode == 0, nagios.stdout


def test_turning_escalation_off_unbinds_the_escalator_queue_and_says_what_to_do(
    settings: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    routing = routing_file(tmp_path / "routing.toml", ONE_STEP)
    with_escalation = escalator_env(alertq_env, routing, f"sqlite:///{tmp_path}/alertq.db")

    on = run(["alertq", "topology", "declare"], with_escalation)
    assert on.returncode == 0, on.stderr
    publish(amqp_url, [event("webhook"), event("webhook")])
    assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 2

    # An escalator that runs elsewhere with its routing file keeps its queue, whoever runs this.
    escalator = EscalatorProcess(with_escalation, tmp_path / "escalator.log").started()
    try:
        kept = run(["alertq", "topology", "declare"], alertq_env)
        assert kept.returncode == 0, kept.stderr
        assert "alertq.escalator kept: 1 escalator(s) consume it" in kept.stdout
        publish(amqp_url, [event("webhook"), event("webhook")])
        assert wait_until(lambda: amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 0)  # still bound, read
    finally:
        assert escalator.terminate() == 0

    # Escalation turned off with copies waiting: unbound at once, the copies kept, one line says so.
    publish(amqp_url, [event("webhook") for _ in range(3)])
    off = run(["alertq", "topology", "declare"], alertq_env)
    assert off.returncode == 0, off.stderr
    [line] = [line for line in off.stdout.splitlines() if names.ESCALATOR_QUEUE in line]
    assert line.startswith("alertq.escalator unbound (escalation is off: no routing_file), so it no longer grows")
    assert "holds 3 messages" in line and "rabbitmqctl purge_queue" in line
    publish(amqp_url, [event("webhook")])
    connection = amqp.connect(amqp_url)
    channel = connection.channel()
    ConfirmedPublisher(channel).publish(names.ACKS_EXCHANGE, "ack.slack", b"{}", json_properties("a1"))
    assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 3, "nothing reaches it any more"
    assert amqp.depth(amqp_url, names.notify_queue("webhook")) == 2 + 2 + 3 + 1  # the channel got everything

    # The operator drops the copies as the line says; the next declare deletes the empty queue.
    channel.queue_purge(names.ESCALATOR_QUEUE)
    connection.close()
    gone = run(["alertq", "topology", "declare"], alertq_env)
    assert "alertq.escalator deleted: escalation is off (no routing_file) and it was empty" in gone.stdout
    assert not amqp.queue_exists(amqp_url, names.ESCALATOR_QUEUE)
    again = run(["alertq", "topology", "declare"], alertq_env)
    assert again.returncode == 0 and names.ESCALATOR_QUEUE not in again.stdout

    # Turned on again: declared and bound as before.
    assert run(["alertq", "topology", "declare"], with_escalation).returncode == 0
    publish(amqp_url, [event("webhook")])
    assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 1


def test_a_full_escalator_queue_never_makes_the_broker_refuse_a_notification(
    declared: Settings,
    shared_broker: SharedBroker,
    alertq_env: dict[str, str],
    amqp_url: str,
    hook: Endpoint,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """A notification is routed to its channel's queue and to alertq.escalator; with confirms, one queue
    refusing it nacks the publish as a whole. A length limit reaches alertq.escalator by policy (alertq
    sets none); with `reject-publish` the relay would then be refused every notification, publish it
    again and again (the channel getting it each time) and never drain its spool."""
    require(shared_broker.isolated, "needs the management API or rabbitmqctl to set a policy")
    limit = 5
    shared_broker.set_policy("alertq-test-escalator-limit", r"^alertq\.escalator$", {"max-length": limit})
    try:
        connection = amqp.connect(amqp_url)
        publisher = ConfirmedPublisher(connection.channel())
        refused = 0

        def timer(n: int) -> None:  # reaches alertq.escalator alone
            nonlocal refused
            try:
                publisher.publish(names.EVENTS_EXCHANGE, names.ESCALATE_TIMER_KEY, b"{}", json_properties(f"t{n}"))
            except Nacked:
                refused += 1

        # Fill it: the policy takes effect asynchronously, so until its depth stops growing.
        sent, depth, previous = 0, 0, -1
        while sent <= limit or depth != previous:
            previous = depth
            timer(sent)
            sent += 1
            depth = amqp.depth(amqp_url, names.ESCALATOR_QUEUE)
            assert sent < 500, "the length limit never took effect"
        assert refused == 0, f"the broker refused {refused} of {sent} publishes to the full escalator queue"
        assert depth == limit

        start_worker(webhook_worker_env(alertq_env, hook))
        notifications = [event("webhook") for _ in range(50)]
        nacked = []
        for item in notifications:
            try:
                publisher.publish(
                    names.EVENTS_EXCHANGE,
                    names.notify_key("webhook"),
                    json.dumps(item).encode(),
                    json_properties(item["event_id"]),
                )
            except Nacked:
                nacked.append(item["event_id"])
        ack_refused = False
        try:
            publisher.publish(names.ACKS_EXCHANGE, "ack.slack", b"{}", json_properties("a1"))
        except Nacked:
            ack_refused = True
        connection.close()

        assert (refused, nacked, ack_refused) == (0, [], False), "the broker refused publishes"
        assert hook.wait_for(len(notifications), distinct=True) == len(notifications)
        assert sorted(hook.event_ids()) == sorted(item["event_id"] for item in notifications)  # each once
        assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == limit
        # What the escalator's queue let go is not silently gone: dead letters saying why and where.
        dropped = sent + len(notifications) + 1 - limit
        letters = [DeadLetter(m.routing_key, m.properties, m.body) for m in amqp.take(amqp_url, names.DEAD_QUEUE)]
        assert len(letters) == dropped
        assert {(d.reason, d.source_queue) for d in letters} == {("maxlen", names.ESCALATOR_QUEUE)}
    finally:
        shared_broker.clear_policy("alertq-test-escalator-limit")


def test_an_escalator_queue_from_an_earlier_version_is_kept_working_with_a_note(
    settings: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    """RabbitMQ cannot change a queue's arguments: the reject-publish queue of earlier versions must not
    stop any process from declaring the rest (the relay would publish nothing)."""
    earlier = {
        "x-queue-type": "quorum",
        "x-single-active-consumer": True,
        "x-dead-letter-exchange": names.DEAD_EXCHANGE,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    connection = amqp.connect(amqp_url)
    connection.channel().queue_declare(names.ESCALATOR_QUEUE, durable=True, arguments=earlier)
    connection.close()
    routing = routing_file(tmp_path / "routing.toml", ONE_STEP)

    result = run(["alertq", "topology", "declare"], escalator_env(alertq_env, routing, "sqlite:///:memory:"))

    assert result.returncode == 0, result.stderr
    [note] = [line for line in result.stdout.splitlines() if line.startswith(names.ESCALATOR_QUEUE)]
    assert "kept as it is" in note and "rabbitmqctl set_policy" in note and '"overflow":"drop-head"' in note
    assert amqp.queue_exists(amqp_url, names.delay_queue(topology.TIMER_TIERS[-1]))  # the rest is there
    publish(amqp_url, [event("webhook")])
    assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 1  # and bound
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):  # still the earlier queue, as the note says
        connection = amqp.connect(amqp_url)
        try:
            connection.channel().queue_declare(
                names.ESCALATOR_QUEUE, durable=True, arguments=topology.escalator_queue().arguments
            )
        finally:
            if connection.is_open:
                connection.close()
