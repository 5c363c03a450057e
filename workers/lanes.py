"""Lanes: a few threads per target, so a slow target uses up only its own lane.

Each target (one webhook URL, one SMTP server) gets `lane_concurrency` threads of its own, made
on first use. A lane is *congested* when it holds `lane_backlog` messages or more and the oldest of
those not yet started has waited `park_after` seconds: then `submit` refuses more, and the worker
parks them in the broker, so a slow target cannot fill the prefetch window and starve the others.
A fast lane is never congested however much it holds, so a burst to one good target is not parked.
At shutdown `cancel_waiting` hands back what has not started, for the broker to redeliver.

`run_all` lends a lane to a fold lane (folds.py): a batch that is not worth folding runs on the
target's lane threads, `lane_concurrency` at a time, as it would without folding, and the fold lane
waits for all of it, so what comes meanwhile still waits for the fold lane's next batch.
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


_Task = tuple[Key, Callable[[], None], queue.SimpleQueue[None] | None]


class _Lane(Generic[Key]):
    """Its threads take tasks from `tasks` (a C-implemented FIFO: one put and one get per message, where
    a ThreadPoolExecutor also made a Future with its own Condition and a done-callback)."""

    def __init__(self) -> None:
        # (key, task, where to say it ran or was cancelled: `run_all`'s caller waits there)
        self.tasks: queue.SimpleQueue[_Task[Key] | None] = queue.SimpleQueue()
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
        self._closed = False

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
            lane.tasks.put((key, task, None))
        return True

    def run_all(self, target: str, tasks: list[tuple[Key, Callable[[], None]]]) -> None:
        """Run `tasks` on `target`'s lane threads and return when each has run or was cancelled
        (`cancel_waiting` or `shutdown` hands its key back, as any waiting task's). Never refused as
        congested: the caller waits for them, so they cannot pile up. After `shutdown` nothing runs."""
        done: queue.SimpleQueue[None] = queue.SimpleQueue()
        with self._lock:
            if self._closed:
                return
            lane = self._lanes.get(target)
            if lane is None:
                lane = self._lanes[target] = self._start(target)
            now = time.monotonic()
            for key, task in tasks:
                lane.waiting.append(now)
                lane.tasks.put((key, task, done))
        for _ in tasks:
            done.get()

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
            self._closed = True
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
                if item[2] is not None:
                    item[2].put(None)  # not run: its `run_all` caller stops waiting for it

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
                if item[2] is not None:
                    item[2].put(None)
