"""`alertq worker mattermost` draining pre-queued events to an endpoint that answers at once, against a bare
pika consume+ack loop draining the same number from the same queue in the same run (`make bench`)."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pika
import pytest

from broker import names
from schemas.settings import Settings
from tests.perf import bench
from tests.perf.fast_endpoint import FastEndpoint, fast_endpoint
from tests.support import amqp
from tests.support.workers import event

pytestmark = pytest.mark.perf

EVENTS = int(os.environ.get("ALERTQ_BENCH_EVENTS", "5000"))
ROUNDS = int(os.environ.get("ALERTQ_BENCH_ROUNDS", "2"))
RATIO_TARGET = 0.25
RATE_TARGET = 1_000.0
BARE_CONSUME = str(Path(__file__).with_name("bare_consume.py"))
QUEUE = names.notify_queue("mattermost")
# ALERTQ_BENCH_PROFILE=/tmp/worker.txt: sample the worker's GIL-holding stacks with py-spy (pip install
# py-spy) into that file (collapsed stacks).
PROFILE = os.environ.get("ALERTQ_BENCH_PROFILE")


def fill(url: str, count: int) -> None:
    """Put `count` distinct events straight into the channel queue (not the escalator's: only the worker is
    measured), unconfirmed for speed; then wait until the queue holds them all."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for _ in range(count):
            sent = event("mattermost")
            properties = pika.BasicProperties(
                content_type="application/json", delivery_mode=2, message_id=sent["event_id"]
            )
            channel.basic_publish("", QUEUE, json.dumps(sent).encode(), properties)
    finally:
        connection.close()
    assert amqp.wait_depth(url, QUEUE, count, timeout=120) == count


def bare_rate(url: str, env: dict[str, str]) -> float:
    result = subprocess.run(
        [sys.executable, BARE_CONSUME, url, QUEUE, str(EVENTS)], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return EVENTS / float(result.stdout)


def worker_rate(env: dict[str, str], endpoint: FastEndpoint, log: Path) -> float:
    """Deliveries per second from the first to the last arrival at the endpoint (start-up excluded, as
    in the baseline)."""
    already = len(endpoint.arrivals)
    with log.open("ab") as out:
        worker = subprocess.Popen(["alertq", "worker", "mattermost"], env=env, stdout=out, stderr=out)
    profiler = None
    if PROFILE:  # collapsed stacks of the worker's threads, for finding its hot path
        py_spy = str(Path(sys.executable).with_name("py-spy"))
        record = [py_spy, "record", "--gil", "-f", "raw", "-o", PROFILE, "--pid", str(worker.pid)]
        profiler = subprocess.Popen(record)
    try:
        got = endpoint.wait_for(already + EVENTS, timeout=600) - already
        assert got == EVENTS, f"{got} of {EVENTS} delivered:\n{log.read_text()[-2000:]}"
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(120) == 0
        if profiler is not None:
            profiler.wait(60)
    arrivals = [at for at, _ in endpoint.arrivals[already:]]
    return (EVENTS - 1) / (arrivals[-1] - arrivals[0])


def test_worker_throughput_against_a_bare_consume_loop(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    bare: list[float] = []
    worker: list[float] = []
    with fast_endpoint() as endpoint:
        env = {
            **bench.deployed(alertq_env),
            "ALERTQ_CHANNELS__MATTERMOST__URL": endpoint.url,
            "ALERTQ_CHANNELS__MATTERMOST__RATE_LIMIT__PER_SECOND": "1000000",
            "ALERTQ_CHANNELS__MATTERMOST__RATE_LIMIT__BURST": "1000000",
            "ALERTQ_LOG__LEVEL": "info",  # as deployed: one line per delivery
        }
        for _ in range(ROUNDS):
            fill(amqp_url, EVENTS)
            bare.append(bare_rate(amqp_url, env))
            assert amqp.depth(amqp_url, QUEUE) == 0
            fill(amqp_url, EVENTS)
            worker.append(worker_rate(env, endpoint, tmp_path / "worker.log"))
            assert amqp.depth(amqp_url, QUEUE) == 0
    assert amqp.depth(amqp_url, names.DEAD_QUEUE) == 0

    worker_median, bare_median = statistics.median(worker), statistics.median(bare)
    ratio = worker_median / bare_median
    bench.print_table(
        f"alertq worker mattermost, {EVENTS:,} pre-queued events to a local 200-ok endpoint ({ROUNDS} rounds)",
        [
            bench.Row(
                "deliveries/s",
                f"{worker_median:,.0f}/s",
                f"bare pika consume+ack {bare_median:,.0f}/s",
                f"{ratio:.2f}x",
                f">= {RATIO_TARGET:g}x",
                ratio >= RATIO_TARGET,
            ),
            bench.Row(
                "deliveries/s",
                f"{worker_median:,.0f}/s",
                "",
                "",
                f">= {RATE_TARGET:,.0f}/s",
                worker_median >= RATE_TARGET,
            ),
        ],
        notes=[
            "rounds: " + ", ".join(f"worker {w:,.0f}/s vs bare {b:,.0f}/s" for w, b in zip(worker, bare, strict=True)),
            "first to last message in both (process start-up excluded); prefetch 200 in both",
            "worker: info log line per delivery (JSON), rate limit raised out of the way",
        ],
    )
