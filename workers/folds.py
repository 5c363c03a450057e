"""Folding lanes: per target, one thread that takes everything waiting for the target at once.

A notifier that can fold a storm (`Notifier.may_fold`) gets its deliveries here instead of in a lane
(lanes.py). While the thread delivers (a post waiting for the chat's rate budget, a digest being
posted), what comes for the same target waits; when it is free it takes all of it as one batch, so the
batch is exactly what the chat could not take yet. A batch of one, the rule in quiet times, is
delivered alone at once. Nothing waits here unacked for longer than the delivery before it takes; at
shutdown `cancel_waiting` hands back what has not started, for the broker to redeliver.

In a storm the runner may ask the lane to hold (it returns seconds > 0, after a digest): the lane then
collects for that long before its next batch, so a storm that trickles in over a minute (a core handing
over a few notifications a second) is a digest every few seconds, not a post per second of the chat's
rate. Shutdown ends a hold at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

from delivery.chat.budget import RateBudget

Item = TypeVar("Item")

log = structlog.get_logger("alertq.worker")


class _FoldLane(Generic[Item]):
    def __init__(self) -> None:
        self.waiting: list[Item] = []
        self.wake = threading.Condition()
        self.stopped = False
        self.thread: threading.Thread | None = None


class FoldLanes(Generic[Item]):
    def __init__(self, run: Callable[[str, list[Item]], float]) -> None:
        self.run = run
        self._lanes: dict[str, _FoldLane[Item]] = {}
        self._lock = threading.Lock()

    def submit(self, target: str, item: Item) -> None:
        with self._lock:
            lane = self._lanes.get(target)
            if lane is None:
                lane = self._lanes[target] = _FoldLane()
                lane.thread = threading.Thread(
                    target=self._work, args=(target, lane), name=f"fold-{target}", daemon=True
                )
                lane.thread.start()
        with lane.wake:
            lane.waiting.append(item)
            lane.wake.notify()

    def held(self, target: str) -> int:
        with self._lock:
            lane = self._lanes.get(target)
        if lane is None:
            return 0
        with lane.wake:
            return len(lane.waiting)

    def cancel_waiting(self) -> list[Item]:
        """Take back everything that has not started."""
        with self._lock:
            lanes = list(self._lanes.values())
        taken: list[Item] = []
        for lane in lanes:
            with lane.wake:
                taken += lane.waiting
                lane.waiting = []
        return taken

    def shutdown(self) -> None:
        """Drop what has not started (the broker redelivers it), let a batch in progress finish."""
        with self._lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            with lane.wake:
                lane.waiting = []
                lane.stopped = True
                lane.wake.notify()
        for lane in lanes:
            if lane.thread is not None:
                lane.thread.join()

    def _work(self, target: str, lane: _FoldLane[Item]) -> None:
        while True:
            with lane.wake:
                while not lane.waiting and not lane.stopped:
                    lane.wake.wait()
                if lane.stopped:
                    return
                batch, lane.waiting = lane.waiting, []
            hold = 0.0
            try:
                hold = self.run(target, batch)
            except Exception as exc:  # the runner's own bug: the lane lives on (the broker redelivers)
                log.exception("worker.fold_lane_failed", error=type(exc).__name__)
            if hold > 0:
                with lane.wake:
                    lane.wake.wait_for(lambda: lane.stopped, timeout=hold)


class StormRule:
    """The fold rule and the pacing for notifiers that fold without a chat API client (webhook mode, the
    generic webhook): per target a rate budget of the channel's `rate_limit`, which every post of the
    target takes from (`pace`), so the rule sees what is left of it.

    A batch is worth folding when it needs more posts than the budget lets out within `fold.window`
    seconds; once a target is in a storm (folded less than `hold` + `window` seconds ago), whenever it
    needs more than one (the lane held it `hold` seconds: a storm that trickles in stays folded)."""

    def __init__(
        self, per_second: float, burst: int, window: float, hold: float, clock: Callable[[], float] | None = None
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.window = window
        self.hold = hold
        self.clock = clock or time.monotonic
        self._sleep = time.sleep
        self._budgets: dict[str, RateBudget] = {}
        self._storm_until: dict[str, float] = {}
        self._lock = threading.Lock()

    def budget(self, target: str) -> RateBudget:
        with self._lock:
            found = self._budgets.get(target)
            if found is None:
                found = self._budgets[target] = RateBudget(self.per_second, self.burst)
            return found

    def pace(self, target: str) -> None:
        """Wait for the target's next free slot (one post)."""
        wait = self.budget(target).reserve(self.clock())
        if wait:
            self._sleep(wait)

    def worth_folding(self, target: str, needed: int) -> bool:
        now = self.clock()
        with self._lock:
            storming = now < self._storm_until.get(target, 0.0)
        room = 1 if storming else self.budget(target).capacity(now, self.window)
        if needed <= room:
            return False
        with self._lock:
            self._storm_until[target] = now + self.hold + self.window
        return True
