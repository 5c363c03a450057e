"""Benchmark: `alertq dlq replay` of 10,000 dead letters (target ≥ 1,000 messages/s on this machine).

Printed as messages/s and as a ratio against a same-run baseline: the same dead letters moved the
naive way, one synchronous publisher confirm per message (broker.publisher.ConfirmedPublisher), the
cost that pipelined confirms remove. Times are not asserted (the machine is shared); the ratio is.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from broker import names
from broker.publisher import ConfirmedPublisher
from tests.support.amqp import connect, depth, wait_depth
from tests.support.dead_letters import Spec, publish

pytestmark = pytest.mark.perf

TOTAL = 10_000
BASELINE = 1_000


def _specs(count: int) -> list[Spec]:
    channels = ("mattermost", "slack", "email")
    return [Spec(channels[i % 3], "permanent") for i in range(count)]


def _baseline_rate(url: str) -> float:
    """Messages/s of one synchronous confirm per message, publishing replay-sized messages."""
    letters = publish(url, _specs(BASELINE), confirmed=False)
    assert wait_depth(url, names.DEAD_QUEUE, BASELINE, timeout=120) == BASELINE
    connection = connect(url)
    try:
        publisher = ConfirmedPublisher(connection.channel())
        started = time.perf_counter()
        for key, body, props in letters:
            publisher.publish(names.EVENTS_EXCHANGE, key.replace("notify.", "retry."), body, props)
        elapsed = time.perf_counter() - started
        channel = connection.channel()
        for queue in [names.DEAD_QUEUE] + [names.notify_queue(c) for c in ("mattermost", "slack", "email")]:
            channel.queue_purge(queue)
    finally:
        connection.close()
    return BASELINE / elapsed


def test_replay_throughput(declared, amqp_url, alertq_env):
    baseline = _baseline_rate(amqp_url)
    publish(amqp_url, _specs(TOTAL), confirmed=False)
    assert wait_depth(amqp_url, names.DEAD_QUEUE, TOTAL, timeout=300) == TOTAL

    started = time.perf_counter()
    result = subprocess.run(
        ["alertq", "dlq", "replay"], env=alertq_env, capture_output=True, text=True, timeout=600, check=False
    )
    elapsed = time.perf_counter() - started

    assert result.returncode == 0, result.stderr
    assert depth(amqp_url, names.DEAD_QUEUE) == 0
    assert sum(depth(amqp_url, names.notify_queue(c)) for c in ("mattermost", "slack", "email")) == TOTAL
    rate = TOTAL / elapsed
    print(
        f"\nalertq dlq replay: {TOTAL} dead letters in {elapsed:.2f}s = {rate:,.0f} messages/s "
        f"(whole CLI process incl. start-up); one confirm per message: {baseline:,.0f} messages/s; "
        f"ratio {rate / baseline:.1f}x"
    )
    assert rate > baseline
