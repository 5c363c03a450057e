"""Enqueue-to-endpoint latency at a steady 100 events/s through `alertq relay` and `alertq worker mattermost`
to a local endpoint that answers at once (`make bench`).

The events are written to the spool the way `alertq-enqueue` writes them when a relay is alive
(`producer.spool.write`: temp file, fsync, rename), from this process, stamped just before the write:
100 enqueue processes a second would measure this 2-core machine forking Python, not the pipeline
(`test_enqueue_bench` measures the command itself). The endpoint stamps each arrival on the same clock.
"""

from __future__ import annotations

import json
import re
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from producer import event as event_builder
from producer import flags as cli_flags
from producer import spool
from schemas.settings import Settings
from tests.perf import bench
from tests.perf.fast_endpoint import fast_endpoint
from tests.perf.test_enqueue_bench import FLAGS
from tests.support.workers import WorkerProcess

pytestmark = pytest.mark.perf

RATE = 100
SECONDS = 20
P50_TARGET = 0.050
P99_TARGET = 0.250
MARKER = re.compile(rb"latency-probe-(\d+)")


def body(number: int) -> bytes:
    argv = [*FLAGS]
    argv[argv.index("--output") + 1] = f"DISK CRITICAL latency-probe-{number}"
    parsed = cli_flags.parse(argv)
    assert parsed is not None
    (built,) = event_builder.build_events(parsed)
    return json.dumps(built, ensure_ascii=False, separators=(",", ":")).encode()


def test_enqueue_to_endpoint_latency_at_100_per_second(
    declared: Settings, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    total = RATE * SECONDS
    spool_dir = alertq_env["ALERTQ_SPOOL__DIR"]
    spool.ensure_dirs(spool_dir)
    with fast_endpoint() as endpoint:
        env = {
            **bench.deployed(alertq_env),
            "ALERTQ_CHANNELS__MATTERMOST__URL": endpoint.url,
            "ALERTQ_LOG__LEVEL": "info",
            # 100/s to one webhook is 10x the default limit (Mattermost's own default is 10 requests/s
            # per client too): raised, so the figure is the pipeline's latency, not the limiter's queue.
            "ALERTQ_CHANNELS__MATTERMOST__RATE_LIMIT__PER_SECOND": "1000",
            "ALERTQ_CHANNELS__MATTERMOST__RATE_LIMIT__BURST": "100",
        }
        relay_log = (tmp_path / "relay.log").open("wb")
        relay = subprocess.Popen(["alertq", "relay"], env=env, stdout=relay_log, stderr=relay_log)
        worker = WorkerProcess(env, tmp_path / "worker.log", channel="mattermost")
        try:
            worker.started()
            deadline = time.monotonic() + 60
            while not spool.relay_alive(spool_dir) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert spool.relay_alive(spool_dir), (tmp_path / "relay.log").read_text()[-2000:]

            bodies = [body(n) for n in range(total)]
            sent: list[float] = []
            start = time.perf_counter()
            for number, data in enumerate(bodies):
                pause = start + number / RATE - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                sent.append(time.perf_counter())
                spool.write(spool_dir, data)
            arrived = endpoint.wait_for(total, timeout=120)
            assert arrived == total, f"{arrived} of {total} arrived"
        finally:
            worker.terminate()
            relay.send_signal(signal.SIGTERM)
            relay.wait(60)
            relay_log.close()

    latencies = []
    for at, request_body in endpoint.arrivals:
        found = MARKER.search(request_body)
        assert found is not None
        latencies.append(at - sent[int(found.group(1))])
    assert len({MARKER.search(b).group(1) for _, b in endpoint.arrivals}) == total  # type: ignore[union-attr]
    cuts = statistics.quantiles(latencies, n=100)
    p50, p99 = statistics.median(latencies), cuts[98]
    achieved = total / (sent[-1] - sent[0])
    bench.print_table(
        f"enqueue (spool write) to endpoint, {total:,} events at {RATE}/s through relay + worker mattermost",
        [
            bench.Row("p50 latency", bench.ms(p50), "", "", f"<= {bench.ms(P50_TARGET)}", p50 <= P50_TARGET),
            bench.Row("p99 latency", bench.ms(p99), "", "", f"<= {bench.ms(P99_TARGET)}", p99 <= P99_TARGET),
            bench.Row("max latency", bench.ms(max(latencies)), "", "", "", None),
            bench.Row("offered rate", f"{achieved:.1f}/s", "", "", "", None),
        ],
        notes=[
            "latency = endpoint arrival - just before the spool write (temp file, fsync, rename)",
            f"relay polls the spool every spool.poll_interval ({declared.spool.poll_interval:g} s)",
        ],
    )
