"""Lanes: a few threads per target, so a slow target uses up only its own lane.

Each target (one webhook URL, one SMTP server) gets a thread pool of `lane_concurrency` threads, made
on first use. A lane is *congested* when it holds `lane_backlog` messages or more and the oldest of
those not yet started has waited `park_after` seconds: then `submit` refuses more, and the worker
parks them in the broker, so a slow target cannot fill the prefetch window and starve the others.
A fast lane is never congested however much it holds, so a burst to one good target is not parked.
At shutdown `cancel_waiting` hands back what has not started, for the broker to redeliver.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

Key = TypeVar("Key")


@dataclass
class _Lane:
    pool: ThreadPoolExecutor
    held: int = 0
    waiting: dict[int, float] = field(default_factory=dict)  # ticket -> when submitted, until it starts


class Lanes(Generic[Key]):
    def __init__(self, concurrency: int, backlog: int, park_after: float) -> None:
        self.concurrency = concurrency
        self.backlog = backlog
        self.park_after = park_after
        self._lanes: dict[str, _Lane] = {}
        self._futures: dict[Future[None], Key] = {}
        self._tickets = itertools.count()
        self._lock = threading.Lock()

    def submit(self, target: str, key: Key, task: Callable[[], None]) -> bool:
        """Run `task` in `target`'s lane; False (and nothing run) when the lane is congested."""
        with self._lock:
            lane = self._lanes.get(target)
            if lane is None:
                pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"lane-{target}")
                lane = self._lanes[target] = _Lane(pool)
            now = time.monotonic()
            if lane.held >= self.backlog and lane.waiting and now - min(lane.waiting.values()) >= self.park_after:
                return False
            ticket = next(self._tickets)
            lane.held += 1
            lane.waiting[ticket] = now

            def run() -> None:
                with self._lock:
                    lane.waiting.pop(ticket, None)
                task()

            future = lane.pool.submit(run)
            self._futures[future] = key

        def release(done: Future[None]) -> None:
            with self._lock:
                lane.held -= 1
                lane.waiting.pop(ticket, None)
                self._futures.pop(done, None)

        future.add_done_callback(release)
        return True

    def held(self, target: str) -> int:
        with self._lock:
            lane = self._lanes.get(target)
            return lane.held if lane is not None else 0

    def cancel_waiting(self) -> list[Key]:
        """Cancel every task that has not started; returns their keys."""
        with self._lock:
            waiting = list(self._futures.items())
        return [key for future, key in waiting if future.cancel()]

    def shutdown(self) -> None:
        with self._lock:
            pools = [lane.pool for lane in self._lanes.values()]
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
