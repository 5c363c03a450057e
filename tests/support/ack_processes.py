"""`alertq ack-listener` and `alertq ack-forwarder` as real processes, for the ack tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.health import wait_healthy

SIGNING_SECRET = "button-signing-secret-0123456789"
SLACK_SECRET = "slack-signing-secret-abcdef987654"


@dataclass
class Running:
    url: str
    process: subprocess.Popen[str]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    # Output to a file, not a pipe nobody reads: a full pipe would stall the process.
    with log.open("w") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, text=True)


@contextmanager
def ack_listener(env: dict[str, str], log: Path, port: int, **settings: str) -> Iterator[Running]:
    env = {**env, "ALERTQ_ACK__SIGNING_SECRET": SIGNING_SECRET, "ALERTQ_ACK_LISTENER__PORT": str(port)}
    env.update({f"ALERTQ_ACK_LISTENER__{k.upper()}": v for k, v in settings.items()})
    process = _start(["alertq", "ack-listener"], env, log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log, "ack listener")
        yield Running(url, process, log)
    finally:
        _stop(process)


@contextmanager
def ack_forwarder(env: dict[str, str], log: Path, **target: str) -> Iterator[Running]:
    env = {**env, **{f"ALERTQ_ACK_TARGET__{k.upper()}": v for k, v in target.items()}}
    process = _start(["alertq", "ack-forwarder"], env, log)
    try:
        _wait_for_line(process, log, "ack_forwarder.consuming")
        yield Running("", process, log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def _wait_for_line(process: subprocess.Popen[str], log: Path, fragment: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fragment in log.read_text(errors="replace"):
            return
        if process.poll() is not None:
            raise AssertionError(f"exited {process.returncode}: {log.read_text()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no {fragment!r} after {timeout} s: {log.read_text()[-2000:]}")
