"""alertq-enqueue as the monitoring core runs it, against what Python itself costs (`make bench`).

Both benchmarks print a table; see tests/perf/bench.py for how the processes are measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from broker import names
from producer import event as event_builder
from producer import flags as cli_flags
from producer import spool
from schemas.settings import Settings
from tests.conftest import VENV_BIN, require
from tests.perf import bench
from tests.support import amqp

pytestmark = pytest.mark.perf

RUNS = 60
# A realistic service problem as openITCOCKPIT's Mattermost command sends it, plus alertq's extras.
FLAGS = [
    "--channel",
    "mattermost",
    "--type",
    "Service",
    "--notificationtype",
    "PROBLEM",
    "--hostuuid",
    "c36b8048-93ce-4385-ac19-ab5c90574b77",
    "--serviceuuid",
    "74fd8f59-1348-4e16-85f0-4a5c57c7dd62",
    "--state",
    "2",
    "--output",
    "DISK CRITICAL - free space: / 120 MB (1% inode=87%)",
    "--ackauthor",
    "",
    "--ackcomment",
    "",
    "--hostaddress",
    "10.0.0.1",
    "--host-display-name",
    "web01.example.org",
    "--service-display-name",
    "Disk /",
    "--contact",
    "oncall",
    "--contact-email",
    "oncall@example.org",
    "--notification-number",
    "3",
]
ENQUEUE = [str(VENV_BIN / "alertq-enqueue"), *FLAGS]
PYTHON_PASS = [sys.executable, "-c", "pass"]
TIME_RATIO_TARGET = 3.0
RSS_TARGET_MIB = 25.0
DIRECT_RATIO_TARGET = 1.15
MINIMAL_PUBLISH = str(Path(__file__).with_name("minimal_publish.py"))


def test_enqueue_with_a_live_relay_costs_little_more_than_starting_python(
    alertq_env: dict[str, str], tmp_path: Path
) -> None:
    require(bench.gnu_time_available(), "GNU time (/usr/bin/time) measures peak RSS")
    env = bench.deployed(alertq_env)
    spool_dir = env["ALERTQ_SPOOL__DIR"]
    # The same spool named in a TOML file instead of the environment: the enqueue then parses the file.
    toml = tmp_path / "spool-dir.toml"
    toml.write_text(f"[spool]\ndir = {json.dumps(spool_dir)}\n")
    from_toml = ["env", "-u", "ALERTQ_SPOOL__DIR", f"ALERTQ_CONFIG={toml}", *ENQUEUE]
    lock = spool.RelayLock(spool_dir)  # we play the live relay: enqueue stores the event and exits
    assert lock.try_acquire()
    try:
        runs = bench.interleaved(
            {"python": PYTHON_PASS, "enqueue": ENQUEUE, "from_toml": from_toml, "env_python": ["env", *PYTHON_PASS]},
            env,
            RUNS,
        )
        rss = bench.peak_rss_mib(ENQUEUE, env)
        rss_python = bench.peak_rss_mib(PYTHON_PASS, env)
    finally:
        lock.release()
    # Every run stored its event (and none was published: the "relay" holds the lock).
    assert len(spool.pending(spool_dir)) == 2 * (RUNS + bench.WARMUP) + 10

    python, enqueue = runs["python"], runs["enqueue"]
    # env(1) starts the TOML variant, so that one is compared with `env python -c pass`.
    toml_ratio = runs["from_toml"].median_wall / runs["env_python"].median_wall
    ratio = enqueue.median_wall / python.median_wall
    cpu_ratio = enqueue.median_cpu / python.median_cpu
    bench.print_table(
        f"alertq-enqueue, live relay ({RUNS} runs each, interleaved)",
        [
            bench.Row(
                "median wall",
                bench.ms(enqueue.median_wall),
                f"python -c pass {bench.ms(python.median_wall)}",
                f"{ratio:.2f}x",
                f"<= {TIME_RATIO_TARGET:g}x",
                ratio <= TIME_RATIO_TARGET,
            ),
            bench.Row(
                "median CPU (user+sys)",
                bench.ms(enqueue.median_cpu),
                f"python -c pass {bench.ms(python.median_cpu)}",
                f"{cpu_ratio:.2f}x",
                "",
                None,
            ),
            bench.Row(
                "median wall, spool dir from alertq.toml",
                bench.ms(runs["from_toml"].median_wall),
                f"env python -c pass {bench.ms(runs['env_python'].median_wall)}",
                f"{toml_ratio:.2f}x",
                f"<= {TIME_RATIO_TARGET:g}x",
                toml_ratio <= TIME_RATIO_TARGET,
            ),
            bench.Row(
                "peak RSS (max of 10)",
                f"{rss:.1f} MiB",
                f"python -c pass {rss_python:.1f} MiB",
                f"{rss / rss_python:.2f}x",
                f"<= {RSS_TARGET_MIB:g} MiB",
                rss <= RSS_TARGET_MIB,
            ),
        ],
        notes=["spool dir from the environment unless said otherwise (the TOML file is then not parsed)"],
    )
    # Memory does not depend on the neighbours' load, so its target is a real check; time is printed only.
    assert rss <= RSS_TARGET_MIB


def _realistic_body() -> str:
    parsed = cli_flags.parse(FLAGS)
    assert parsed is not None
    [event] = event_builder.build_events(parsed)
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def test_direct_path_costs_little_more_than_a_minimal_pika_publish(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str
) -> None:
    env = bench.deployed(alertq_env)
    spool_dir = env["ALERTQ_SPOOL__DIR"]
    runs = bench.interleaved(
        {
            "minimal": [sys.executable, MINIMAL_PUBLISH, amqp_url, _realistic_body()],
            "enqueue": ENQUEUE,
        },
        env,
        RUNS,
    )
    # No relay: every run published its event and removed its spool file.
    assert spool.pending(spool_dir) == []
    assert amqp.depth(amqp_url, names.notify_queue("mattermost")) == 2 * (RUNS + bench.WARMUP)

    minimal, enqueue = runs["minimal"], runs["enqueue"]
    ratio = enqueue.median_wall / minimal.median_wall
    cpu_ratio = enqueue.median_cpu / minimal.median_cpu
    bench.print_table(
        f"alertq-enqueue, direct path, no relay ({RUNS} runs each, interleaved)",
        [
            bench.Row(
                "median wall",
                bench.ms(enqueue.median_wall),
                f"minimal pika publish {bench.ms(minimal.median_wall)}",
                f"{ratio:.2f}x",
                f"<= {DIRECT_RATIO_TARGET:g}x",
                ratio <= DIRECT_RATIO_TARGET,
            ),
            bench.Row(
                "median CPU (user+sys)",
                bench.ms(enqueue.median_cpu),
                f"minimal pika publish {bench.ms(minimal.median_cpu)}",
                f"{cpu_ratio:.2f}x",
                "",
                None,
            ),
        ],
        notes=["the enqueue run also stores its event in the spool (fsync) and removes it once confirmed"],
    )
