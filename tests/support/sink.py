"""`alertq sink` started as a real process on free ports, and what tests ask of it.

`sinks(tmp_path)` yields `start(**settings)`: each call starts a sink with `ALERTQ_SINK__<KEY>` set
from the keyword arguments (nested settings with a double underscore: `mattermost__tokens="a,b"`)
and returns a `Sink`; every sink started is stopped at the end. `Sink.calls()` reads the chat API
calls the sink recorded (GET /api/calls), for asserting exact calls.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.conftest import VENV_BIN
from tests.support.health import wait_healthy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Sink:
    url: str
    smtp_port: int
    process: subprocess.Popen[str]
    log: Path

    def post(self, path: str, payload: Any) -> requests.Response:
        return requests.post(self.url + path, json=payload, timeout=10)

    def messages(self, **params: str) -> list[dict[str, Any]]:
        response = requests.get(self.url + "/api/messages", params=params, timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def message(self, message_id: str) -> dict[str, Any]:
        response = requests.get(f"{self.url}/api/messages/{message_id}", timeout=10)
        response.raise_for_status()
        found: dict[str, Any] = response.json()
        return found

    def click(
        self, message_id: str, key: str, user_name: str = "alice", selected_option: str | None = None
    ) -> requests.Response:
        """Click a button, or with `selected_option` choose that option of a menu."""
        url = f"{self.url}/api/messages/{message_id}/actions/{key}"
        body: dict[str, Any] = {"user_name": user_name}
        if selected_option is not None:
            body["selected_option"] = selected_option
        return requests.post(url, json=body, timeout=20)

    def calls(self, api: str | None = None, after: int = 0) -> list[dict[str, Any]]:
        """The chat API calls the sink answered, oldest first."""
        params = {"after": str(after), **({"api": api} if api else {})}
        response = requests.get(self.url + "/api/calls", params=params, timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()
        return found

    def mattermost_api(self) -> str:
        return self.url + "/api/v4"

    def slack_api(self) -> str:
        """The base_url for slack_sdk.WebClient."""
        return self.url + "/api/"


def sink_environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTQ_")}
    config = tmp_path / "alertq.toml"
    config.write_text("# this test's settings come from the environment\n")
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", ALERTQ_CONFIG=str(config))
    env.update(ALERTQ_LOG__FORMAT="json")
    env.update({f"ALERTQ_SINK__{k.upper()}": v for k, v in settings.items()})
    return env


@contextmanager
def sinks(tmp_path: Path) -> Iterator[Callable[..., Sink]]:
    started: list[subprocess.Popen[str]] = []

    def start(**settings: str) -> Sink:
        http_port, smtp_port = free_port(), free_port()
        env = sink_environment(tmp_path, http_port=str(http_port), smtp_port=str(smtp_port), **settings)
        # Output to a file, not a pipe nobody reads: a full pipe would stall the sink.
        log = tmp_path / f"sink-{len(started)}.log"
        with log.open("w") as out:
            process = subprocess.Popen(["alertq", "sink"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        url = f"http://127.0.0.1:{http_port}"
        wait_healthy(url, process, log, "sink")
        return Sink(url, smtp_port, process, log)

    try:
        yield start
    finally:
        for process in started:
            process.terminate()
            process.wait(30)


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def run_chromium(args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    """Debian's headless Chromium on `url`, with a throwaway profile: `--dump-dom`, `--screenshot=…`."""
    binary = chromium()
    assert binary is not None
    with tempfile.TemporaryDirectory(prefix="alertq-chromium-") as profile:
        argv = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            *args,
            url,
        ]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
