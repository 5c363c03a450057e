"""The escalator under faults, on both state stores: SIGKILL of the active escalator (the standby takes
over), a broker restart between steps, lost timers. Each step reaches the endpoint once: none lost,
none twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from broker import names
from tests.support import amqp
from tests.support.escalation import EscalatorProcess, escalator_env, routing_file, steps_seen, wait_steps
from tests.support.rabbit import PrivateNode
from tests.support.workers import Endpoint, WorkerProcess, event, publish, webhook_worker_env

FOUR_STEPS = """
[policies.web]
hosts = ["web*"]
repeat = 2

[[policies.web.steps]]
after = "3s"
notify = ["alice"]
channels = ["webhook"]

[[policies.web.steps]]
after = "3s"
notify = ["alice", "bob"]
channels = ["webhook"]
"""


def test_sigkill_of_the_active_escalator_and_a_broker_restart_lose_no_step_and_send_none_twice(
    private_node: PrivateNode,
    alertq_env: dict[str, str],
    hook: Endpoint,
    tmp_path: Path,
    store_url: str,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    env = escalator_env(
        webhook_worker_env(alertq_env, hook),
        routing_file(tmp_path / "routing.toml", FOUR_STEPS),
        store_url,
        ALERTQ_BROKER__URLS=private_node.url,
        ALERTQ_BROKER__RECONNECT_MAX_DELAY="1",
    )
    worker = start_worker(env)
    active = EscalatorProcess(env, tmp_path / "active.log").started()
    standby = EscalatorProcess(env, tmp_path / "standby.log").started()
    restarted = standby
    try:
        sent = event(host={"id": "web01", "name": "web01", "display_name": "web01"})
        opened = datetime.fromisoformat(sent["created_at"])
        publish(private_node.url, [sent])

        assert [s.step for s in wait_steps(hook, 1, timeout=15)] == [1]
        # The endpoint can have step 1 before the escalator logs it (the log follows the broker's confirms).
        assert active.wait_log("escalator.step_sent", timeout=5)[0]["step"] == 1
        assert not standby.events("escalator.step_sent"), "the standby stays idle while the active one runs"
        active.kill()  # between step 1 and step 2

        seen = wait_steps(hook, 1 + 2, timeout=15)
        assert [s.step for s in seen] == [1, 2, 2]
        assert standby.wait_log("escalator.step_sent", timeout=5)[0]["step"] == 2, "the standby took over"
        for step_seen in seen:
            lateness = (step_seen.at - (opened + timedelta(seconds=3 * step_seen.step))).total_seconds()
            assert lateness <= 1.5, f"step {step_seen.step} {lateness:+.2f}s late across the takeover"

        # The endpoint can have a step before the broker has applied the worker's ack: a broker stopped in
        # between redelivers it (at-least-once), which is not what this test is about. Wait for the worker's
        # log (its ack is on the wire), then for the queue to hold nothing unacked.
        worker.wait_log("delivery.delivered", count=3, timeout=10)
        private_node.wait_settled(names.notify_queue("webhook"))
        private_node.stop()  # between step 2 and step 3: the step-3 timer sits in a delay queue
        private_node.start()
        restarted = EscalatorProcess(env, tmp_path / "restarted.log").started()  # the old active, back
        seen = wait_steps(hook, 1 + 2 + 2 + 2, timeout=60)
        time.sleep(4)  # a fifth step, or a step sent twice, would show by now
        seen = steps_seen(hook)
        counts = Counter((s.step, s.contact) for s in seen)
        assert counts == {(1, "alice"): 1, **{(n, c): 1 for n in (2, 3, 4) for c in ("alice", "bob")}}, counts
        # After the restart either escalator may hold the queue; between them each step went out once.
        later = [line["step"] for p in (standby, restarted) for line in p.events("escalator.step_sent")]
        assert sorted(later) == [2, 3, 4]
    finally:
        for process in (active, standby, restarted):
            process.stop_quietly()


def test_a_step_whose_timer_was_lost_is_sent_by_the_sweep(
    alertq_env: dict[str, str],
    amqp_url: str,
    hook: Endpoint,
    tmp_path: Path,
    start_worker: Callable[..., WorkerProcess],
) -> None:
    policy = FOUR_STEPS.replace('after = "3s"', 'after = "4s"', 1).replace("repeat = 2", "repeat = 0")
    env = escalator_env(
        webhook_worker_env(alertq_env, hook),
        routing_file(tmp_path / "routing.toml", policy),
        f"sqlite:///{tmp_path}/alertq.db",
        ALERTQ_ESCALATOR__SWEEP_AFTER="2",
    )
    start_worker(env)
    escalator = EscalatorProcess(env, tmp_path / "escalator.log").started()
    try:
        publish(amqp_url, [event(host={"id": "web01", "name": "web01", "display_name": "web01"})])
        escalator.wait_log("escalator.opened", timeout=10)
        # The broker loses the step-1 timer (due in 4 s), as with a node's data: its delay queue purged.
        assert amqp.wait_depth(amqp_url, names.delay_queue(4), 1, timeout=3) == 1
        connection = amqp.connect(amqp_url)
        try:
            assert connection.channel().queue_purge(names.delay_queue(4)).method.message_count == 1
        finally:
            connection.close()
        seen = wait_steps(hook, 1 + 2, timeout=20)
        assert sorted((s.step, s.contact) for s in seen) == [(1, "alice"), (2, "alice"), (2, "bob")]
        [overdue] = escalator.events("escalator.overdue")
        assert overdue["step"] == 1, "step 1 sent by the sweep; step 2 by its timer again"
    finally:
        escalator.stop_quietly()
