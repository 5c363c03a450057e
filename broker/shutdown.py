"""SIGTERM/SIGINT → a stop event: the consumer stops taking work, drains in-flight deliveries, exits 0."""

from __future__ import annotations

import signal
import threading
from typing import Any

import structlog

log = structlog.get_logger("alertq.worker")


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handle(signum: int, _frame: Any) -> None:
        if not stop.is_set():
            log.info("worker.stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop
