"""SIGTERM/SIGINT → a stop event: the process stops taking work, finishes or hands back what it holds,
exits 0. One handler for every long-running process; `then` wakes an asynchronous connection's I/O loop
(`ioloop.add_callback_threadsafe`), which would not look at the event by itself."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import structlog


def stop_on_signals(
    name: str, stop: threading.Event | None = None, then: Callable[[], None] | None = None
) -> threading.Event:
    """Install the handlers; returns the event they set (`stop`, or a new one). `name`: the process, for
    its `<name>.stopping` log line."""
    event = stop if stop is not None else threading.Event()
    log = structlog.get_logger(f"alertq.{name}")

    def handle(signum: int, _frame: Any) -> None:
        if not event.is_set():
            log.info(f"{name}.stopping", signal=signal.Signals(signum).name)
        event.set()
        if then is not None:
            then()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return event
