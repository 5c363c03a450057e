"""When steps fall due and how timers hop through the delay queues (pure functions, no broker)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.topology import TIMER_TIERS
from escalator import schedule
from escalator.timers import FIRE_WITHIN, next_hop
from schemas.routing import Policy

T0 = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def policy(*afters: int, repeat: int = 0) -> Policy:
    return Policy.model_validate(
        {"steps": [{"after": a, "notify": ["x"], "channels": ["webhook"]} for a in afters], "repeat": repeat}
    )


def due_times(p: Policy) -> list[datetime]:
    due = schedule.first_due(p, T0)
    result = [due]
    for number in range(1, 100):
        following = schedule.next_due(p, number, due)
        if following is None:
            return result
        result.append(following)
        due = following
    raise AssertionError("no end")


def test_steps_count_from_the_previous_due_time_and_the_last_step_repeats_up_to_the_cap() -> None:
    p = policy(300, 900, repeat=2)
    minutes = [int((d - T0).total_seconds() // 60) for d in due_times(p)]
    assert minutes == [5, 20, 35, 50]
    assert [schedule.step_of(p, n).after for n in range(1, 5)] == [timedelta(seconds=s) for s in (300, 900, 900, 900)]
    assert schedule.step_count(p) == 4


def test_no_repeat_ends_after_the_last_step() -> None:
    assert len(due_times(policy(60))) == 1


@pytest.mark.parametrize("delay", [1, 2, 3, 5, 7, 59, 60, 300, 3599, 86_400])
def test_a_timer_reaches_its_due_time_in_few_hops_and_never_early(delay: int) -> None:
    hop_overhead = 0.01  # each hop runs a little long: the broker's expiry and the escalator's turn-around
    remaining, hops = float(delay), 0
    while (hop := next_hop(remaining)) is not None:
        assert hop in TIMER_TIERS
        remaining -= hop + hop_overhead
        hops += 1
        assert hops < 40
    assert -1.0 < remaining <= FIRE_WITHIN, "fires within a second after due, never before"
    assert hops <= max(1, delay.bit_length()) + 6, "a long delay takes the longest hop repeatedly, not 1 s hops"


def test_a_timer_due_now_or_past_fires_at_once() -> None:
    assert next_hop(0.0) is None
    assert next_hop(-30.0) is None
