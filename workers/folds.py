"""Folding lanes: per target, one thread that takes everything waiting for the target at once.

A notifier that can fold a storm (`Notifier.may_fold`) gets its deliveries here instead of in a lane
(lanes.py). While the thread delivers (a post waiting for the chat's rate budget, a digest being
posted), what comes for the same target waits; when it is free it takes all of it as one batch, so the
batch is exactly what the chat could not take yet. A batch of one, the rule in quiet times, is
delivered alone at once. Nothing waits here unacked for longer than the delivery before it takes; at
shutdown `cancel_waiting` hands back what has not started, for the broker to redeliver.

In a storm the runner asks the lane to hold (it returns a `Hold`, after a digest): what comes next is
collected for up to `Hold.longest` seconds before the next batch, so a storm that trickles in over a
minute (a core handing over a dozen notifications a second) is a digest every few seconds, not a post
per second of the chat's rate, and each digest's later edits (recoveries) touch few posts. The hold ends
early once nothing new came for `Hold.quiet` seconds: the storm's tail is posted as soon as the core
has handed it over, not a whole hold later. A hold only collects what comes while it lasts: a
notification arriving after it (quiet times again) is taken at once. Shutdown ends a hold at once.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import structlog

from delivery.chat.budget import RateBudget
from schemas.channels import FoldSettings

Item = TypeVar("Item")

log = structlog.get_logger("alertq.worker")


@dataclass(frozen=True)
class Hold:
    """After a folded batch: collect what comes for up to `longest` seconds (from the first arrival),
    ending early after `quiet` seconds with nothing new."""

    longest: float = 0.0
    quiet: float = 0.0


NO_HOLD = Hold()


def hold_of(fold: FoldSettings) -> Hold:
    return Hold(fold.hold, fold.quiet)


class _FoldLane(Generic[Item]):
    def __init__(self) -> None:
        self.waiting: list[Item] = []
        self.first_at = 0.0  # monotonic arrival of the oldest waiting item
        self.last_at = 0.0  # … and of the newest
        self.wake = threading.Condition()
        self.stopped = False
        self.thread: threading.Thread | None = None


class FoldLanes(Generic[Item]):
    def __init__(self, run: Callable[[str, list[Item]], Hold], clock: Callable[[], float] = time.monotonic) -> None:
        self.run = run
        self.clock = clock
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
            lane.last_at = self.clock()
            if not lane.waiting:
                lane.first_at = lane.last_at
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
        hold = NO_HOLD
        while True:
            with lane.wake:
                if hold.longest > 0:
                    self._collect(lane, hold)
                while not lane.waiting and not lane.stopped:
                    lane.wake.wait()
                if lane.stopped:
                    return
                batch, lane.waiting = lane.waiting, []
            hold = NO_HOLD
            try:
                hold = self.run(target, batch)
            except Exception as exc:  # the runner's own bug: the lane lives on (the broker redelivers)
                log.exception("worker.fold_lane_failed", error=type(exc).__name__)

    def _collect(self, lane: _FoldLane[Item], hold: Hold) -> None:
        """Under `lane.wake`: hold after a folded batch. Nothing comes within `hold.longest`: the storm is
        over, return (the next arrival is taken at once). Else collect until the oldest waited
        `hold.longest` or `hold.quiet` seconds passed with nothing new."""
        started = self.clock()
        while not lane.stopped:
            now = self.clock()
            if not lane.waiting:
                if now - started >= hold.longest:
                    return
                lane.wake.wait(started + hold.longest - now)
                continue
            ends = lane.first_at + hold.longest
            if hold.quiet > 0:
                ends = min(ends, lane.last_at + hold.quiet)
            if now >= ends:
                return
            lane.wake.wait(ends - now)


class StormWatch:
    """Per destination key, whether it is in a storm: it folded less than `fold.hold` + `fold.window`
    seconds ago (`folded`), or — a storm that trickles in at the chat's own rate, flooding the channel
    all the same — more than `fold.max_alone` problems would have gone out alone (`went_alone`) within
    `fold.hold` seconds and they have spent the chat's burst (a chat that takes far more than comes is
    not flooded). The one bookkeeping of `Storms` (API mode) and `StormRule` (the rest)."""

    def __init__(self, fold: FoldSettings) -> None:
        self.fold = fold
        self._until: dict[str, float] = {}
        self._alone: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def storming(self, key: str, now: float) -> bool:
        with self._lock:
            return now < self._until.get(key, 0.0)

    def trickle(self, key: str, now: float, more: int, capacity: int) -> bool:
        """Would `more` lone problems now make a trickle a storm? (`capacity`: what the chat's budget
        lets out within `fold.window`.)"""
        with self._lock:
            alone = self._alone.setdefault(key, deque())
            while alone and alone[0] <= now - self.fold.hold:
                alone.popleft()
            return len(alone) + more > self.fold.max_alone and capacity < self.fold.max_alone

    def went_alone(self, key: str, now: float, count: int) -> None:
        with self._lock:
            self._alone.setdefault(key, deque()).extend([now] * count)

    def folded(self, key: str, now: float) -> None:
        with self._lock:
            self._until[key] = now + self.fold.hold + self.fold.window


class StormRule:
    """The fold rule and the pacing for notifiers that fold without a chat API client (webhook mode, the
    generic webhook, e-mail): per target a rate budget of the channel's `rate_limit`, which every post of
    the target takes from (`pace`), so the rule sees what is left of it.

    A batch is worth folding when it needs more posts than the budget lets out within `fold.window`
    seconds, or more than `fold.max_alone` would have gone out alone within `fold.hold` seconds with
    the budget's burst spent (a storm that trickles in at the endpoint's own rate); once a target is in
    a storm (folded less than `hold` + `window` seconds ago), whenever it needs more than one (the lane
    held it: a storm that trickles in stays folded)."""

    def __init__(
        self,
        per_second: float,
        burst: int,
        fold: FoldSettings,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.fold = fold
        self.clock = clock or time.monotonic
        self._sleep = sleep
        self._budgets: dict[str, RateBudget] = {}
        self._watch = StormWatch(fold)
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
        capacity = self.budget(target).capacity(now, self.fold.window)
        room = 1 if self._watch.storming(target, now) else capacity
        if needed <= room and not self._watch.trickle(target, now, needed, capacity):
            self._watch.went_alone(target, now, needed)
            return False
        self._watch.folded(target, now)
        return True
