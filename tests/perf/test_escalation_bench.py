"""Escalation timers under load (`make bench`): 10,000 open incidents, timers of mixed lengths.

2,000 short timers (3 to 13 s) are opened shuffled among 8,000 long ones (10 min to 1 h). With a single
FIFO of timers a short one would wait behind long ones; with one delay queue per timer length
(broker/topology.py TIMER_TIERS) it must not. Lateness = when the step was claimed minus when it
was due (the PROBLEM's time plus the policy's `after`), read from the state store. The baseline is the
same 2,000 short timers alone, measured in the same run: the ratio shows what the 8,000 long ones cost.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from schemas.settings import Settings
from tests.perf import bench
from tests.support import timer_load
from tests.support.escalation import EscalatorProcess, escalator_env

pytestmark = pytest.mark.perf

SHORT, LONG = 2_000, 8_000


def run_population(
    alertq_env: dict[str, str], amqp_url: str, tmp_path: Path, name: str, long: int
) -> tuple[timer_load.Lateness, float]:
    routing = tmp_path / "routing.toml"
    routing.write_text(timer_load.routing())
    store = f"sqlite:///{tmp_path}/{name}.db"
    env = escalator_env({**bench.deployed(alertq_env), "ALERTQ_LOG__LEVEL": "info"}, routing, store)
    escalator = EscalatorProcess(env, tmp_path / f"{name}.log").started()
    try:
        publish_seconds = timer_load.publish_problems(amqp_url, timer_load.hosts(SHORT, long))
        result = timer_load.wait_fired(store, SHORT, timeout=300)
    finally:
        escalator.terminate()
    assert result.fired == SHORT, f"{name}: only {result.fired} of {SHORT} short timers fired"
    return result, (SHORT + long) / publish_seconds


def test_short_timers_fire_on_time_among_8000_long_ones(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    alone, alone_rate = run_population(alertq_env, amqp_url, tmp_path, "alone", 0)
    mixed, mixed_rate = run_population(alertq_env, amqp_url, tmp_path, "mixed", LONG)

    rows = []
    for label, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
        value, base = mixed.quantile(q), alone.quantile(q)
        rows.append(
            bench.Row(
                f"lateness {label}, {SHORT} short among {LONG} long",
                bench.ms(value),
                bench.ms(base),
                f"{value / base:.2f}x" if base > 0 else "n/a",
                "<= 1.5 s" if label == "max" else "",
                value <= 1.5 if label == "max" else None,
            )
        )
    bench.print_table(
        "escalation timers: 10,000 open incidents, mixed timer lengths",
        rows,
        [
            f"mixed: {mixed.summary}",
            f"alone: {alone.summary}",
            f"PROBLEMs published (confirmed, one at a time) at {mixed_rate:.0f}/s mixed, {alone_rate:.0f}/s alone",
        ],
    )
    assert min(mixed.values) > -0.1, "no step goes out before it is due"
