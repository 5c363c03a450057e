"""Lanes' congestion rule: a lane refuses (the worker parks the message) only when it holds `backlog`
messages or more AND the oldest waiting one has waited `park_after` seconds; a busy lane that moves,
and every other lane, keeps taking work. The clock is the test's; tasks block on events it releases."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

import pytest

from workers import lanes
from workers.lanes import Lanes

PARK_AFTER = 5.0


class Clock:
    """Stands in for the module's `time`: `monotonic` reads `now`."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(lanes, "time", fake)
    return fake


@pytest.fixture
def lane_set() -> Iterator[Lanes[int]]:
    made: Lanes[int] = Lanes(concurrency=1, backlog=3, park_after=PARK_AFTER)
    yield made
    made.shutdown()


def start_blocking(target_lanes: Lanes[int], target: str, release: threading.Event) -> None:
    """Occupy the lane's one thread until `release` is set."""
    started = threading.Event()

    def task() -> None:
        started.set()
        release.wait(10)

    assert target_lanes.submit(target, 0, task)
    assert started.wait(10)


def test_a_full_lane_whose_oldest_message_waited_park_after_refuses(clock: Clock, lane_set: Lanes[int]) -> None:
    release = threading.Event()
    try:
        start_blocking(lane_set, "slow", release)
        assert lane_set.submit("slow", 1, lambda: None)
        assert lane_set.submit("slow", 2, lambda: None)
        assert lane_set.held("slow") == 3
        # Full, but nothing has waited long yet: a burst is not parked.
        assert lane_set.submit("slow", 3, lambda: None)
        clock.now += PARK_AFTER
        assert not lane_set.submit("slow", 4, lambda: None)
        assert lane_set.held("slow") == 4, "a refused message is not taken"
        # Another target's lane is not affected.
        assert lane_set.submit("fast", 5, lambda: None)
    finally:
        release.set()


def test_a_lane_below_its_backlog_takes_work_however_long_it_waited(clock: Clock, lane_set: Lanes[int]) -> None:
    release = threading.Event()
    try:
        start_blocking(lane_set, "slow", release)
        assert lane_set.submit("slow", 1, lambda: None)
        clock.now += 10 * PARK_AFTER
        assert lane_set.submit("slow", 2, lambda: None)  # held 2 < backlog 3 before it
    finally:
        release.set()


def test_cancel_waiting_hands_back_what_has_not_started(clock: Clock, lane_set: Lanes[int]) -> None:
    release = threading.Event()
    try:
        start_blocking(lane_set, "slow", release)
        lane_set.submit("slow", 1, lambda: None)
        lane_set.submit("slow", 2, lambda: None)
        assert sorted(lane_set.cancel_waiting()) == [1, 2]
        assert lane_set.held("slow") == 1  # the running one
    finally:
        release.set()


def test_run_all_runs_a_batch_side_by_side_and_returns_when_all_ran() -> None:
    """A fold lane's batch that is not worth folding: on the lane's threads at once, not one by one."""
    both = Lanes[int](concurrency=2, backlog=1, park_after=0.0)
    try:
        side_by_side = threading.Barrier(2, timeout=10)  # breaks (and fails) unless both run at once
        ran: list[int] = []

        def task(key: int) -> Callable[[], None]:
            def run() -> None:
                side_by_side.wait()
                ran.append(key)

            return run

        # Past its backlog at once, with park_after 0: run_all is never refused as congested.
        both.run_all("chat", [(key, task(key)) for key in (1, 2)])
        assert sorted(ran) == [1, 2]
        assert both.held("chat") == 0
    finally:
        both.shutdown()


def test_run_all_stops_waiting_for_what_cancel_waiting_hands_back(lane_set: Lanes[int]) -> None:
    release = threading.Event()
    returned = threading.Event()
    try:
        start_blocking(lane_set, "slow", release)

        def wait_for_both() -> None:
            lane_set.run_all("slow", [(1, lambda: None), (2, lambda: None)])
            returned.set()

        waiter = threading.Thread(target=wait_for_both)
        waiter.start()
        deadline = time.monotonic() + 10
        while lane_set.held("slow") < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not returned.is_set()
        assert sorted(lane_set.cancel_waiting()) == [1, 2]  # the worker requeues them
        assert returned.wait(10), "run_all kept waiting for tasks that will never run"
        waiter.join(10)
    finally:
        release.set()


def test_run_all_after_shutdown_runs_nothing_and_returns() -> None:
    closed = Lanes[int](concurrency=1, backlog=3, park_after=PARK_AFTER)
    closed.shutdown()
    ran: list[int] = []
    closed.run_all("chat", [(1, lambda: ran.append(1))])
    assert ran == []
