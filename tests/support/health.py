"""Waiting for a process started by a test to answer on its `/healthz`."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests


def wait_healthy(url: str, process: subprocess.Popen[str], log: Path, what: str, timeout: float = 60.0) -> None:
    """Until `url`/healthz answers 200; fails at once if the process exits, with the tail of its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited {process.returncode}: {log.read_text()[-2000:]}")
        try:
            if requests.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what} not healthy at {url} after {timeout} s: {log.read_text()[-2000:]}")
