"""Lanes: a few threads per target, so a slow target uses up only its own lane.

Each target (one webhook URL, one SMTP server) gets `lane_concurrency` threads of its own, made
on first use. A lane is *congested* when it holds `lane_backlog` messages or more and the oldest of
those not yet started has waited `park_after` seconds: then `submit` refuses more, and the worker
parks them in the broker, so a slow target cannot fill the prefetch window and starve the others.
A fast lane is never congested however much it holds, so a burst to one good target is not parked.
At shutdown `cancel_waiting` hands back what has not started, for the broker to redeliver.
"""

from __future__ import annotations

import collections
import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

Key = TypeVar("Key")

log = structlog.get_logger("alertq.worker")


class _Lane(Generic[Key]):
    """Its threads take tasks from `tasks` (a C-implemented FIFO: one put and one get per message, where
    a ThreadPoolExecutor also made a Future with its own Condition and a done-callback)."""

    def __init__(self) -> None:
        self.tasks: queue.SimpleQueue[tuple[Key, Callable[[], None]] | None] = queue.SimpleQueue()
        self.waiting: collections.deque[float] = collections.deque()  # when each not-started task came
        self.running = 0
        self.threads: list[threading.Thread] = []

    @property
    def held(self) -> int:
        return self.running + len(self.waiting)


class Lanes(Generic[Key]):
    def __init__(self, concurrency: int, backlog: int, park_after: float) -> None:
        self.concurrency = concurrency
        self.backlog = backlog
        self.park_after = park_after
        self._lanes: dict[str, _Lane[Key]] = {}
        self._lock = threading.Lock()

    def submit(self, target: str, key: Key, task: Callable[[], None]) -> bool:
        """Run `task` in `target`'s lane; False (and nothing run) when the lane is congested."""
        with self._lock:
            lane = self._lanes.get(target)
            if lane is None:
                lane = self._lanes[target] = self._start(target)
            now = time.monotonic()
            if lane.held >= self.backlog and lane.waiting and now - lane.waiting[0] >= self.park_after:
                return False
            lane.waiting.append(now)
            lane.tasks.put((key, task))
        return True

    def held(self, target: str) -> int:
        with self._lock:
            lane = self._lanes.get(target)
            return lane.held if lane is not None else 0

    def cancel_waiting(self) -> list[Key]:
        """Take back every task that has not started; returns their keys."""
        with self._lock:
            return [key for lane in self._lanes.values() for key in self._take_waiting(lane)]

    def shutdown(self) -> None:
        """Drop what has not started (the broker redelivers it), let what runs finish, stop the threads."""
        with self._lock:
            lanes = list(self._lanes.values())
            for lane in lanes:
                self._take_waiting(lane)
                for _ in lane.threads:
                    lane.tasks.put(None)
        for lane in lanes:
            for thread in lane.threads:
                thread.join()

    def _start(self, target: str) -> _Lane[Key]:
        lane: _Lane[Key] = _Lane()
        for number in range(self.concurrency):
            thread = threading.Thread(target=self._work, args=(lane,), name=f"lane-{target}-{number}", daemon=True)
            lane.threads.append(thread)
            thread.start()
        return lane

    def _take_waiting(self, lane: _Lane[Key]) -> list[Key]:
        """With the lock held."""
        keys: list[Key] = []
        while True:
            try:
                item = lane.tasks.get_nowait()
            except queue.Empty:
                return keys
            if item is not None:
                keys.append(item[0])
                if lane.waiting:
                    lane.waiting.popleft()

    def _work(self, lane: _Lane[Key]) -> None:
        while True:
            item = lane.tasks.get()
            if item is None:
                return
            with self._lock:
                if lane.waiting:
                    lane.waiting.popleft()
                lane.running += 1
            try:
                item[1]()
            except Exception as exc:  # the task's own bug: the lane thread lives on
                log.exception("worker.lane_task_failed", error=type(exc).__name__)
            finally:
                with self._lock:
                    lane.running -= 1
