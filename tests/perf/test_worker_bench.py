"""`alertq worker mattermost` draining pre-queued events to an endpoint that answers at once, against a bare
pika consume+ack loop draining the same number from the same queue in the same run (`make bench`).

Fair to both: the same count from the same queue, filled the same way (confirmed, so every round
really holds EVENTS messages), alternating rounds, and both figures taken in the steady state: the
first SKIP messages (connection set-up, first requests, lazy imports) are left out of both. The
endpoint is `lean_endpoint.py`, a process of its own: on two cores its CPU is part of the measurement,
so it must cost as little as possible and must not share a GIL with pytest.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pika
import psutil
import pytest

from broker import names
from broker.publisher import ConfirmedPublisher
from schemas.settings import Settings
from tests.perf import bench
from tests.support import amqp
from tests.support.workers import event

pytestmark = pytest.mark.perf

EVENTS = int(os.environ.get("ALERTQ_BENCH_EVENTS", "5000"))
ROUNDS = int(os.environ.get("ALERTQ_BENCH_ROUNDS", "3"))
SKIP = EVENTS // 10  # warm-up, left out of both figures
RATIO_TARGET = 0.25
RATE_TARGET = 1_000.0
BARE_CONSUME = str(Path(__file__).with_name("bare_consume.py"))
LEAN_ENDPOINT = str(Path(__file__).with_name("lean_endpoint.py"))
QUEUE = names.notify_queue("mattermost")
# ALERTQ_BENCH_PROFILE=/tmp/worker.txt: sample the worker's GIL-holding stacks with py-spy (pip install
# py-spy) into that file (collapsed stacks).
PROFILE = os.environ.get("ALERTQ_BENCH_PROFILE")


def fill(url: str, count: int) -> None:
    """Put `count` distinct events straight into the channel queue (not the escalator's: only the worker is
    measured), each confirmed: unconfirmed publishes to a just-declared quorum queue were seen to go
    missing (4,982 of 5,000), which left a round waiting for messages that never came."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        publisher = ConfirmedPublisher(connection.channel())
        for _ in range(count):
            sent = event("mattermost")
            properties = pika.BasicProperties(
                content_type="application/json", delivery_mode=2, message_id=sent["event_id"]
            )
            publisher.publish("", QUEUE, json.dumps(sent).encode(), properties)
    finally:
        connection.close()
    assert amqp.depth(url, QUEUE) == count


class LeanEndpoint:
    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}/hooks/bench-key"

    def _ask(self, path: str) -> dict[str, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            connection.request("GET", path)
            got: dict[str, Any] = json.loads(connection.getresponse().read())
        finally:
            connection.close()
        return got

    def count(self) -> int:
        return int(self._ask("/_count")["count"])

    def arrivals(self) -> tuple[list[float], str]:
        """Arrival stamps so far, and the last body received."""
        got = self._ask("/_arrivals")
        return got["at"], got["last_body"]

    def wait_for(self, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        seen = self.count()
        while seen < count and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = self.count()
        return seen


@contextmanager
def lean_endpoint() -> Iterator[LeanEndpoint]:
    process = subprocess.Popen([sys.executable, LEAN_ENDPOINT], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        yield LeanEndpoint(int(process.stdout.readline()))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


@dataclass
class Round:
    rate: float  # messages per second
    cpu: float  # CPU seconds of the consuming process per message
    switches: float = 0.0  # voluntary context switches of all its threads per message (worker only)


def voluntary_switches(pid: int) -> int:
    """Voluntary context switches of every thread of `pid` so far (each is a thread going to sleep on a
    futex, a socket or a timer: what handing work and the GIL between threads costs)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            status = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in status.splitlines():
            if line.startswith("voluntary_ctxt_switches:"):
                total += int(line.split()[1])
    return total


def bare_rate(url: str, env: dict[str, str]) -> Round:
    result = subprocess.run(
        [sys.executable, BARE_CONSUME, url, QUEUE, str(EVENTS), str(SKIP)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    seconds, cpu = (float(x) for x in result.stdout.split())
    return Round((EVENTS - SKIP) / seconds, cpu / (EVENTS - SKIP))


def worker_rate(env: dict[str, str], endpoint: LeanEndpoint, log: Path) -> Round:
    """Deliveries per second from arrival number SKIP + 1 to the last arrival at the endpoint (process
    start-up and warm-up excluded, as in the baseline)."""
    already = endpoint.count()
    with log.open("ab") as out:
        worker = subprocess.Popen(["alertq", "worker", "mattermost"], env=env, stdout=out, stderr=out)
    profiler = None
    try:
        # CPU time of the worker process over the steady state (sampled when the endpoint has seen the
        # warm-up, and at the end): less disturbed by the neighbours' load than the rate.
        process = psutil.Process(worker.pid)
        endpoint.wait_for(already + SKIP, timeout=600)
        if PROFILE:  # the worker's GIL-holding stacks over the steady state, for finding its hot path
            py_spy = str(Path(sys.executable).with_name("py-spy"))
            record = [py_spy, "record", "-r", "250", "--gil", "-f", "raw", "-o", PROFILE, "--pid", str(worker.pid)]
            profiler = subprocess.Popen(record, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu_from, count_from = sum(process.cpu_times()[:2]), endpoint.count()
        switches_from = voluntary_switches(worker.pid)
        got = endpoint.wait_for(already + EVENTS, timeout=600) - already
        steady = max(1, already + got - count_from)
        cpu = (sum(process.cpu_times()[:2]) - cpu_from) / steady
        switches = (voluntary_switches(worker.pid) - switches_from) / steady
        assert got == EVENTS, f"{got} of {EVENTS} delivered:\n{log.read_text()[-2000:]}"
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(120) == 0
        if profiler is not None:
            profiler.wait(60)
    stamps, last_body = endpoint.arrivals()
    assert json.loads(last_body)["attachments"][0]["color"], last_body  # a rendered post, not just a request
    arrivals = stamps[already + SKIP :]
    return Round((len(arrivals) - 1) / (arrivals[-1] - arrivals[0]), cpu, switches)


def test_worker_throughput_against_a_bare_consume_loop(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    bare: list[Round] = []
    worker: list[Round] = []
    with lean_endpoint() as endpoint:
        env = {
            **bench.deployed(alertq_env),
            "ALERTQ_CHANNELS__MATTERMOST__URL": endpoint.url,
            "ALERTQ_CHANNELS__MATTERMOST__RATE_LIMIT__PER_SECOND": "1000000",
            "ALERTQ_CHANNELS__MATTERMOST__RATE_LIMIT__BURST": "1000000",
            # The storm rule's trickle count out of the way too (fold stays on: every delivery still
            # goes through the fold lane and the dedupe store): 5,000 posts to one webhook within
            # `fold.hold` seconds are a storm by `fold.max_alone`, and would fold into digests.
            "ALERTQ_CHANNELS__MATTERMOST__FOLD__HOLD": "0",
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

    worker_median, bare_median = statistics.median(r.rate for r in worker), statistics.median(r.rate for r in bare)
    ratio = worker_median / bare_median
    worker_cpu, bare_cpu = statistics.median(r.cpu for r in worker), statistics.median(r.cpu for r in bare)
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
            bench.Row(
                "CPU per message",
                _ms(worker_cpu),
                f"bare pika consume+ack {_ms(bare_cpu)}",
                f"{bare_cpu / worker_cpu:.2f}x",
                "",
                None,
            ),
        ],
        notes=[
            "rounds: "
            + ", ".join(f"worker {w.rate:,.0f}/s vs bare {b.rate:,.0f}/s" for w, b in zip(worker, bare, strict=True)),
            "CPU per message (user + system of the consuming process, steady state): "
            + ", ".join(f"worker {_ms(w.cpu)} vs bare {_ms(b.cpu)}" for w, b in zip(worker, bare, strict=True)),
            "worker voluntary context switches per message (all threads, steady state): "
            + ", ".join(f"{w.switches:.2f}" for w in worker),
            f"steady state: messages {SKIP + 1:,} to {EVENTS:,} in both (start-up and warm-up excluded); "
            "prefetch 200 in both",
            "endpoint: lean_endpoint.py, an asyncio keep-alive server in a process of its own",
            "worker: info log line per delivery (JSON), rate limit raised out of the way",
        ],
    )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"
