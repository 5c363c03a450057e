"""Folding lanes: per target, one thread that takes everything waiting for the target at once.

A notifier that can fold a storm (`Notifier.may_fold`) gets its deliveries here instead of in a lane
(lanes.py). While the thread delivers (a post waiting for the chat's rate budget, a digest being
posted), what comes for the same target waits; when it is free it takes all of it as one batch, so the
batch is exactly what the chat could not take yet. A batch of one, the rule in quiet times, is
delivered alone at once. Nothing waits here unacked for longer than the delivery before it takes; at
shutdown `cancel_waiting` hands back what has not started, for the broker to redeliver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

Item = TypeVar("Item")

log = structlog.get_logger("alertq.worker")


class _FoldLane(Generic[Item]):
    def __init__(self) -> None:
        self.waiting: list[Item] = []
        self.wake = threading.Condition()
        self.stopped = False
        self.thread: threading.Thread | None = None


class FoldLanes(Generic[Item]):
    def __init__(self, run: Callable[[str, list[Item]], None]) -> None:
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
            try:
                self.run(target, batch)
            except Exception as exc:  # the runner's own bug: the lane lives on (the broker redelivers)
                log.exception("worker.fold_lane_failed", error=type(exc).__name__)
