"""A small process supervisor for `alertq up`: start every part, restart what dies, stop all cleanly.

Production runs each part under systemd or Kubernetes instead (deploy/); this is the one-machine way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import structlog

from alertq.stack import Process

log = structlog.get_logger("alertq.up")

RESTART_MAX_DELAY = 30.0
STOP_GRACE = 30.0


@dataclass
class Child:
    spec: Process
    popen: subprocess.Popen[bytes] | None = None
    restart_delay: float = 1.0
    restart_at: float = 0.0
    started_at: float = field(default=0.0)


class Supervisor:
    def __init__(self, specs: list[Process]) -> None:
        self.children = [Child(spec) for spec in specs]
        self._stopping = False

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for child in self.children:
            self._start(child)
        log.info("up.running", processes=[c.spec.name for c in self.children])
        while not self._stop_requested():
            self._reap_and_restart()
            time.sleep(0.2)
        return self._stop_all()

    def _stop_requested(self) -> bool:
        return self._stopping

    def _on_signal(self, signum: int, _frame: Any) -> None:
        self._stopping = True

    def _start(self, child: Child) -> None:
        argv = (
            [sys.executable, "-m", "alertq", *child.spec.argv[1:]]
            if child.spec.argv[0] == "alertq"
            else child.spec.argv
        )
        # Children ignore the terminal's Ctrl-C: the supervisor stops them in order, with SIGTERM.
        env = {**os.environ, **child.spec.env} if child.spec.env else None
        child.popen = subprocess.Popen(argv, start_new_session=True, env=env)
        child.started_at = time.monotonic()
        log.info("up.started", process=child.spec.name, pid=child.popen.pid)

    def _reap_and_restart(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if child.popen is None:
                if now >= child.restart_at:
                    self._start(child)
                continue
            code = child.popen.poll()
            if code is None:
                if now - child.started_at > 60:
                    child.restart_delay = 1.0  # it ran a while: the next crash is a new story
                continue
            log.warning("up.exited", process=child.spec.name, code=code, restart_in=child.restart_delay)
            child.popen = None
            child.restart_at = now + child.restart_delay
            child.restart_delay = min(child.restart_delay * 2, RESTART_MAX_DELAY)

    def _stop_all(self) -> int:
        running = [c for c in self.children if c.popen is not None and c.popen.poll() is None]
        log.info("up.stopping", processes=[c.spec.name for c in running])
        for child in running:
            assert child.popen is not None
            child.popen.terminate()
        deadline = time.monotonic() + STOP_GRACE
        for child in running:
            assert child.popen is not None
            try:
                child.popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("up.killed", process=child.spec.name, reason=f"no exit {STOP_GRACE:.0f} s after SIGTERM")
                child.popen.kill()
                child.popen.wait()
        log.info("up.stopped")
        return 0
