"""Acks through the whole path (`make bench`): HTTP click → `alertq ack-listener` → broker (confirmed)
→ `alertq ack-forwarder` → a Nagios external command file.

The command file is a FIFO read by a thread here, standing in for the core (which reads its FIFO the
same way); the thread stamps each line as it arrives. Figures:

- throughput: N clicks sent by a few concurrent clients; clicks answered per second by the listener,
  and acks per second landed in the command file (first click sent → last line read);
- click-to-core latency: one click at a time, from just before the HTTP POST to its line being read
  from the FIFO, p50/p99/max; the same for the HTTP answer alone (the listener's part: verify + publish
  with confirm).

Printed as a table; nothing is asserted about time (the machine is shared). Correctness is asserted:
every click is answered 200 and lands exactly once as an ACKNOWLEDGE_SVC_PROBLEM line.
"""

from __future__ import annotations

import os
import random
import select
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from schemas.ack_token import sign_incident
from schemas.settings import Settings
from tests.perf import bench
from tests.support.ack_processes import SIGNING_SECRET, ack_forwarder, ack_listener
from tests.support.rabbit import free_port

pytestmark = pytest.mark.perf

THROUGHPUT_CLICKS = 500
CLIENTS = 8
LATENCY_SAMPLES = 200


class CommandFileReader:
    """Reads a FIFO as the core does and stamps every complete line with `time.perf_counter()`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        # O_RDWR: this end also counts as a writer, so the FIFO never reads EOF between forwarder opens
        # and select() blocks instead of spinning.
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.arrived: dict[str, float] = {}  # host id -> when its line was read
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        pending = b""
        while not self._stop.is_set():
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                continue
            now = time.perf_counter()
            pending += chunk
            *complete, pending = pending.split(b"\n")
            with self.changed:
                for raw in complete:
                    line = raw.decode()
                    self.lines.append(line)
                    # "[ts] ACKNOWLEDGE_SVC_PROBLEM;<host>;<service>;…"
                    self.arrived.setdefault(line.split(";")[1], now)
                self.changed.notify_all()

    def wait_for(self, host: str, timeout: float = 60.0) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: host in self.arrived, timeout):
                raise AssertionError(f"no line for {host} in the command file after {timeout} s")
            return self.arrived[host]

    def wait_count(self, count: int, timeout: float = 300.0) -> None:
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.lines) >= count, timeout):
                raise AssertionError(f"{len(self.lines)} of {count} lines after {timeout} s")

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        os.close(self.fd)


@contextmanager
def ack_path(alertq_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, CommandFileReader]]:
    reader = CommandFileReader(tmp_path / "nagios.cmd")
    env = bench.deployed(alertq_env)
    env["ALERTQ_LOG__LEVEL"] = "info"  # per-ack debug lines would measure the log, not the path
    try:
        with (
            ack_listener(env, tmp_path / "listener.log", free_port()) as listener,
            ack_forwarder(env, tmp_path / "forwarder.log", kind="nagios", command_file=str(reader.path)),
        ):
            yield listener.url + "/mattermost/actions", reader
    finally:
        reader.close()


def click_body(host: str) -> dict[str, object]:
    token = sign_incident(SIGNING_SECRET, host_id=host, service_id="disk", event_id=host, now=time.time(), ttl=3600)
    return {"user_name": "bench", "channel_name": "ops", "post_id": "p", "context": {"action": "ack", "token": token}}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def test_ack_throughput_and_click_to_core_latency(
    declared: Settings, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    with ack_path(alertq_env, tmp_path) as (url, reader):
        session = requests.Session()
        # Warm-up: connections, bytecode, the forwarder's first open of the FIFO.
        for i in range(10):
            assert session.post(url, json=click_body(f"warm-{i}"), timeout=30).status_code == 200
        reader.wait_count(10)

        # Click-to-core latency, one click at a time.
        http_latency, core_latency = [], []
        for i in range(LATENCY_SAMPLES):
            host = f"lat-{i}"
            body = click_body(host)
            started = time.perf_counter()
            answer = session.post(url, json=body, timeout=30)
            answered = time.perf_counter()
            assert answer.status_code == 200, answer.text
            http_latency.append(answered - started)
            core_latency.append(reader.wait_for(host) - started)
            time.sleep(random.uniform(0, 0.02))  # land at every point of the forwarder's cycle

        # Throughput: CLIENTS concurrent clients, bodies signed beforehand (not part of the path).
        bodies = [click_body(f"tp-{i}") for i in range(THROUGHPUT_CLICKS)]
        local = threading.local()

        def send(body: dict[str, object]) -> int:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return int(local.session.post(url, json=body, timeout=60).status_code)

        before = len(reader.lines)
        started = time.perf_counter()
        with ThreadPoolExecutor(CLIENTS) as pool:
            statuses = list(pool.map(send, bodies))
        all_answered = time.perf_counter()
        reader.wait_count(before + THROUGHPUT_CLICKS)
        last_line = max(reader.arrived[f"tp-{i}"] for i in range(THROUGHPUT_CLICKS))

    assert statuses == [200] * THROUGHPUT_CLICKS
    throughput_hosts = [line.split(";")[1] for line in reader.lines if ";tp-" in line]
    assert sorted(throughput_hosts) == sorted(f"tp-{i}" for i in range(THROUGHPUT_CLICKS)), "each ack exactly once"
    assert all("ACKNOWLEDGE_SVC_PROBLEM;" in line for line in reader.lines)

    answered_rate = THROUGHPUT_CLICKS / (all_answered - started)
    landed_rate = THROUGHPUT_CLICKS / (last_line - started)
    rows = [
        bench.Row(f"clicks answered 200, {CLIENTS} clients", f"{answered_rate:.0f} /s", "", "", "", None),
        bench.Row("acks landed in the command file", f"{landed_rate:.0f} /s", "", "", "", None),
        bench.Row("click → HTTP 200 (p50)", bench.ms(statistics.median(http_latency)), "", "", "", None),
        bench.Row("click → HTTP 200 (p99)", bench.ms(percentile(http_latency, 0.99)), "", "", "", None),
        bench.Row("click → line in command file (p50)", bench.ms(statistics.median(core_latency)), "", "", "", None),
        bench.Row("click → line in command file (p99)", bench.ms(percentile(core_latency, 0.99)), "", "", "", None),
        bench.Row("click → line in command file (max)", bench.ms(max(core_latency)), "", "", "", None),
    ]
    bench.print_table(
        "acks: listener → broker → forwarder → Nagios command file (FIFO)",
        rows,
        [
            f"throughput: {THROUGHPUT_CLICKS} clicks from {CLIENTS} concurrent clients; "
            f"latency: {LATENCY_SAMPLES} clicks one at a time",
            "one listener, one forwarder (prefetch 1), shared broker on 127.0.0.1; figures for the record",
        ],
    )
