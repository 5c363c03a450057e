"""No head-of-line blocking: short timers fire on time with thousands of long ones waiting."""

from __future__ import annotations

from pathlib import Path

from schemas.settings import Settings
from tests.support import timer_load
from tests.support.escalation import EscalatorProcess, escalator_env

SHORT, LONG = 200, 1800
# A single FIFO of timers would hold a 3-second timer behind 10-minute ones for minutes; the tiers must
# keep every short one close to due. Generous for a loaded 2-core machine, far below any blocking.
LATE_LIMIT = 5.0


def test_short_timers_fire_on_time_among_many_long_ones(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(timer_load.routing())
    store = f"sqlite:///{tmp_path}/alertq.db"
    escalator = EscalatorProcess(escalator_env(alertq_env, routing, store), tmp_path / "escalator.log").started()
    try:
        timer_load.publish_problems(amqp_url, timer_load.hosts(SHORT, LONG))
        result = timer_load.wait_fired(store, SHORT, timeout=120)
        print(f"\nfiring lateness of {SHORT} short timers among {LONG} long ones: {result.summary}")
        assert result.fired == SHORT, f"only {result.fired} of {SHORT} short timers fired"
        assert max(result.values) < LATE_LIMIT, result.summary
        assert min(result.values) > -0.1, "no step goes out before it is due"
    finally:
        escalator.stop_quietly()
