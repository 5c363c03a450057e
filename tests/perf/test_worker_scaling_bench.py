"""Scaling out one channel: 1, 2 and 4 `alertq worker webhook` processes draining the same number of
pre-queued events from `alertq.notify.webhook` to a local endpoint that answers 200 at once (`make bench`).

Figures are events/s as ratios to 1 process in the same run (rounds interleaved: 1, 2, 4, 1, 2, 4 …), and
where the CPU went meanwhile (workers, broker, endpoint), which tells the bottleneck: on a machine whose
cores are all busy, more processes cannot deliver more.

Rate: the steady state. From the moment every worker of the round is consuming (its log says so) to the
arrival of the round's 90th percentile event, counting the arrivals in between: process start-up is
excluded (a scaled-out worker is long-running), and so is the tail, where the queue is empty and each
worker only finishes its own prefetch window.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pika
import psutil
import pytest

from broker import names
from schemas.settings import Settings
from tests.perf import bench
from tests.perf.fast_endpoint import FastEndpoint, fast_endpoint
from tests.support import amqp
from tests.support.workers import event

pytestmark = pytest.mark.perf

PROCESSES = (1, 2, 4)
EVENTS = int(os.environ.get("ALERTQ_BENCH_EVENTS", "20000"))
STEADY = 0.9  # the window ends at this share of the round's events
ROUNDS = int(os.environ.get("ALERTQ_BENCH_ROUNDS", "2"))
QUEUE = names.notify_queue("webhook")


def fill(url: str, count: int) -> None:
    """Put `count` distinct events straight into the channel queue, then wait until it holds them all."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for _ in range(count):
            sent = event("webhook")
            properties = pika.BasicProperties(
                content_type="application/json", delivery_mode=2, message_id=sent["event_id"]
            )
            channel.basic_publish("", QUEUE, json.dumps(sent).encode(), properties)
    finally:
        connection.close()
    assert amqp.wait_depth(url, QUEUE, count, timeout=120) == count


def broker_process(url: str) -> psutil.Process | None:
    """The process listening on the broker's AMQP port, if it runs on this machine and we may see it."""
    port = urlsplit(url).port or 5672
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                return psutil.Process(conn.pid)
    except psutil.AccessDenied:
        return None
    return None


def cpu_seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


@dataclass
class Round:
    processes: int
    rate: float
    wall: float
    cpu: dict[str, float] = field(default_factory=dict)  # seconds over the measured window


def consuming(log: Path) -> bool:
    return '"worker.consuming"' in log.read_text(errors="replace")


def run_round(
    processes: int, env: dict[str, str], endpoint: FastEndpoint, broker: psutil.Process | None, logs: Path
) -> Round:
    already = len(endpoint.arrivals)
    paths = [logs / f"worker-{processes}-{i}-{time.monotonic_ns()}.log" for i in range(processes)]
    workers = []
    for path in paths:
        with path.open("wb") as out:
            workers.append(subprocess.Popen(["alertq", "worker", "webhook"], env=env, stdout=out, stderr=out))
    handles = [psutil.Process(w.pid) for w in workers]
    me = psutil.Process()
    try:
        deadline = time.monotonic() + 120
        while not all(consuming(p) for p in paths):
            assert time.monotonic() < deadline, "workers did not start consuming"
            assert all(w.poll() is None for w in workers), "a worker exited"
            time.sleep(0.01)
        started = time.perf_counter()
        before = cpu_snapshot(handles, me, broker)
        machine_before = machine_busy()
        steady = already + int(EVENTS * STEADY)
        assert endpoint.wait_for(steady, timeout=600) >= steady, "workers stalled"
        ended = time.perf_counter()
        after = cpu_snapshot(handles, me, broker)
        machine = machine_busy() - machine_before
        got = endpoint.wait_for(already + EVENTS, timeout=600) - already
        assert got == EVENTS, f"{got} of {EVENTS} delivered"
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            assert worker.wait(120) == 0
    counted = sum(1 for at, _ in endpoint.arrivals[already:] if started <= at <= ended)
    assert counted > EVENTS * 0.3, f"only {counted} arrivals after start-up: raise ALERTQ_BENCH_EVENTS"
    wall = ended - started
    cpu = {k: after[k] - before[k] for k in before}
    cpu["other processes"] = machine - sum(cpu.values())
    return Round(processes, counted / wall, wall, cpu)


def cpu_snapshot(workers: list[psutil.Process], me: psutil.Process, broker: psutil.Process | None) -> dict[str, float]:
    snapshot = {"workers": sum(cpu_seconds(w) for w in workers), "endpoint (+ pytest)": cpu_seconds(me)}
    if broker is not None:
        snapshot["broker"] = cpu_seconds(broker)
    return snapshot


def machine_busy() -> float:
    """CPU seconds the whole machine spent busy (all processes, all cores) since boot."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))


def test_worker_processes_of_one_channel_scale_out(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    broker = broker_process(amqp_url)
    load_before = os.getloadavg()[0]
    rounds: list[Round] = []
    with fast_endpoint() as endpoint:
        env = {
            **bench.deployed(alertq_env),
            "ALERTQ_CHANNELS__WEBHOOK__URL": endpoint.url,
            "ALERTQ_CHANNELS__WEBHOOK__RATE_LIMIT__PER_SECOND": "1000000",
            "ALERTQ_CHANNELS__WEBHOOK__RATE_LIMIT__BURST": "1000000",
            "ALERTQ_LOG__LEVEL": "info",  # as deployed: one line per delivery
        }
        for _ in range(ROUNDS):
            for processes in PROCESSES:
                fill(amqp_url, EVENTS)
                rounds.append(run_round(processes, env, endpoint, broker, tmp_path))
                assert amqp.depth(amqp_url, QUEUE) == 0
    assert amqp.depth(amqp_url, names.DEAD_QUEUE) == 0

    cores = psutil.cpu_count() or 1
    median = {n: statistics.median(r.rate for r in rounds if r.processes == n) for n in PROCESSES}
    rows, cpu_notes = [], []
    for n in PROCESSES:
        mine = [r for r in rounds if r.processes == n]
        wall = sum(r.wall for r in mine)
        cpu = {k: sum(r.cpu.get(k, 0.0) for r in mine) for k in mine[0].cpu}
        where = ", ".join(f"{k} {v / wall:.2f}" for k, v in cpu.items())
        label = f"{n} worker process{'es' if n > 1 else ''}"
        rows.append(
            bench.Row(
                label,
                f"{median[n]:,.0f} events/s",
                f"1 process {median[1]:,.0f}/s",
                f"{median[n] / median[1]:.2f}x",
                "",
                None,
            )
        )
        cpu_notes.append(f"{label}: cores busy {sum(cpu.values()) / wall:.2f} of {cores} ({where})")
    bench.print_table(
        f"alertq worker webhook scaled out, {EVENTS:,} pre-queued events per round to a local 200-ok endpoint "
        f"({ROUNDS} rounds, interleaved)",
        rows,
        notes=[
            "rounds: " + ", ".join(f"{r.processes}p {r.rate:,.0f}/s" for r in rounds),
            f"rate from all workers consuming to the {STEADY:.0%} arrival; prefetch 200 per worker (the default)",
            f"load average (1 min) {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
            *cpu_notes,
            "cores busy: CPU seconds per wall second in the measured window, whole machine; broker = the process "
            "on the AMQP port; other processes = everything else on the machine (other test runs included)"
            + ("" if broker else " (not visible here: omitted)"),
        ],
    )
