"""Lanes: a few threads per target, so a slow target uses up only its own lane.

Each target (one webhook URL, one SMTP server) gets a thread pool of `lane_concurrency` threads, made
on first use. A lane holds at most `lane_backlog` messages (running and waiting); `submit` refuses
more, and the worker parks those in the broker, so a slow target cannot fill the prefetch window
either. At shutdown `cancel_waiting` hands back what has not started, for the broker to redeliver.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

Key = TypeVar("Key")


class Lanes(Generic[Key]):
    def __init__(self, concurrency: int, backlog: int) -> None:
        self.concurrency = concurrency
        self.backlog = backlog
        self._pools: dict[str, ThreadPoolExecutor] = {}
        self._held: dict[str, int] = {}
        self._futures: dict[Future[None], Key] = {}
        self._lock = threading.Lock()

    def submit(self, target: str, key: Key, task: Callable[[], None]) -> bool:
        """Run `task` in `target`'s lane; False (and nothing run) when the lane is full."""
        with self._lock:
            if self._held.get(target, 0) >= self.backlog:
                return False
            pool = self._pools.get(target)
            if pool is None:
                pool = self._pools[target] = ThreadPoolExecutor(self.concurrency, thread_name_prefix=f"lane-{target}")
            self._held[target] = self._held.get(target, 0) + 1
            future = pool.submit(task)
            self._futures[future] = key

        def release(done: Future[None]) -> None:
            with self._lock:
                self._held[target] -= 1
                self._futures.pop(done, None)

        future.add_done_callback(release)
        return True

    def held(self, target: str) -> int:
        with self._lock:
            return self._held.get(target, 0)

    def cancel_waiting(self) -> list[Key]:
        """Cancel every task that has not started; returns their keys."""
        with self._lock:
            waiting = list(self._futures.items())
        return [key for future, key in waiting if future.cancel()]

    def shutdown(self) -> None:
        with self._lock:
            pools = list(self._pools.values())
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
