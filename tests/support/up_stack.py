"""`alertq up` with a real Nagios 4 core, as the full-loop tests run it: the stack's sink and ack
listener, clicks through the sink, and what a reader sees in a post."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.ack_processes import SIGNING_SECRET, SLACK_SECRET
from tests.support.nagios import NagiosCore
from tests.support.nagios_status import Status
from tests.support.rabbit import free_port

WAIT = 90.0  # seconds; generous, the machine is shared


@dataclass
class Stack:
    sink: str
    listener: str
    log: Path

    def messages(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.sink}/api/messages", timeout=10)
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
        return sorted(found, key=lambda m: int(m["id"]))

    def wait_for_message(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        match = first_within(self.messages, predicate)
        if match is not None:
            return match
        shown = [m["rendered"]["title"] or m["rendered"]["text"][:80] for m in self.messages()]
        raise AssertionError(f"no {what} at the sink after {WAIT:.0f} s; it has {shown}\n{self.log_tail()}")

    def click(self, message: dict[str, Any], user_name: str, label: str = "Acknowledge") -> dict[str, Any]:
        """Click the button whose label is `label` (Acknowledge by default; "Snooze 1 h", "Recheck now", …)."""
        buttons = [b for b in message["rendered"]["buttons"] if b["interactive"]]
        [button] = [b for b in buttons if b["label"] == label] or [b for b in buttons if label in b["label"]][:1]
        answer = requests.post(
            f"{self.sink}/api/messages/{message['id']}/actions/{button['key']}",
            json={"user_name": user_name},
            timeout=30,
        )
        assert answer.status_code == 200, f"{answer.status_code} {answer.text}\n{self.log_tail()}"
        result: dict[str, Any] = answer.json()
        return result

    def log_tail(self) -> str:
        return "--- alertq up log tail ---\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])


def first_within(
    fetch: Callable[[], list[dict[str, Any]]], predicate: Callable[[dict[str, Any]], bool]
) -> dict[str, Any] | None:
    """The first item `fetch` returns that matches `predicate`, polling for up to WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        match = next((item for item in fetch() if predicate(item)), None)
        if match is not None:
            return match
        time.sleep(0.2)
    return None


@contextmanager
def alertq_up(
    alertq_env: dict[str, str], core: NagiosCore, channel: str, log: Path, **extra_env: str
) -> Iterator[Stack]:
    """`alertq up` with only `channel` enabled (two_way), delivering to the sink, the listener's clicks
    forwarded into `core`'s command file, and the relay reading the spool the core's commands write;
    `extra_env` adds settings."""
    assert core.spool_dir is not None
    target = {
        "ALERTQ_ACK_TARGET__KIND": "nagios",
        "ALERTQ_ACK_TARGET__COMMAND_FILE": str(core.command_file),
        # The forwarder reads the core back before it tells the chat (and the listener checks the problem).
        "ALERTQ_ACK_TARGET__STATUS_FILE": str(core.status_file),
    }
    with alertq_up_for(alertq_env, core.spool_dir, target, channel, log, **extra_env) as stack:
        yield stack


@contextmanager
def alertq_up_for(
    alertq_env: dict[str, str], spool_dir: Path, ack_target: dict[str, str], channel: str, log: Path, **extra_env: str
) -> Iterator[Stack]:
    """`alertq up` as `alertq_up` runs it, for any core: the relay reads `spool_dir` (where the core's
    commands write), the forwarder acknowledges through `ack_target` (`ALERTQ_ACK_TARGET__…` settings)."""
    sink_port, listener_port = free_port(), free_port()
    listener = f"http://127.0.0.1:{listener_port}"
    prefix = f"ALERTQ_CHANNELS__{channel.upper()}__"
    env = {
        **alertq_env,
        "ALERTQ_SPOOL__DIR": str(spool_dir),
        "ALERTQ_SINK__HTTP_PORT": str(sink_port),
        "ALERTQ_SINK__SMTP_PORT": str(free_port()),
        "ALERTQ_SINK__SLACK_ACTIONS_URL": f"{listener}/slack/actions",
        "ALERTQ_SINK__SLACK_SIGNING_SECRET": SLACK_SECRET,
        "ALERTQ_ACK__SIGNING_SECRET": SIGNING_SECRET,
        "ALERTQ_ACK_LISTENER__PORT": str(listener_port),
        "ALERTQ_ACK_LISTENER__SLACK_SIGNING_SECRET": SLACK_SECRET,
        **ack_target,
        f"{prefix}TWO_WAY": "true",
        # Exactly the settings above: no demo escalation or demo core beside the real one.
        "ALERTQ_UP_LOOP_DEFAULTS": "false",
        **extra_env,
    }
    if channel == "mattermost":
        env[f"{prefix}ACK_URL"] = f"{listener}/mattermost/actions"
    for other in ("mattermost", "slack", "email", "webhook"):
        if other != channel:
            env.setdefault(f"ALERTQ_CHANNELS__{other.upper()}__ENABLED", "false")  # extra_env may turn it on
    with log.open("w") as out:
        up = subprocess.Popen(["alertq", "up"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True)
    stack = Stack(f"http://127.0.0.1:{sink_port}", listener, log)
    try:
        _wait_healthy([f"{stack.sink}/healthz", f"{listener}/healthz"], up, stack)
        yield stack
    finally:
        up.terminate()
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(10)


def _wait_healthy(urls: list[str], up: subprocess.Popen[str], stack: Stack) -> None:
    deadline = time.monotonic() + WAIT
    pending = list(urls)
    while pending and time.monotonic() < deadline:
        if up.poll() is not None:
            raise AssertionError(f"alertq up exited {up.returncode}\n{stack.log_tail()}")
        try:
            if requests.get(pending[0], timeout=2).status_code == 200:
                pending.pop(0)
                continue
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    assert not pending, f"not healthy: {pending}\n{stack.log_tail()}"


def acknowledged(core: NagiosCore, host: str, service: str | None) -> Status:
    def check() -> Status | None:
        status = core.status()
        block = status.service(host, service) if service else status.host(host)
        return status if block["problem_has_been_acknowledged"] == "1" else None

    result: Status = core.wait_for(check, WAIT, "status.dat to show the acknowledgement")
    return result


def text(message: dict[str, Any]) -> str:
    """Everything a reader sees in a post (title, text, fields), to look for names and types in."""
    return json.dumps(message["rendered"]) + json.dumps(message["payload"])


def has_ack_button(message: dict[str, Any]) -> bool:
    return any(b["interactive"] and "Acknowledge" in b["label"] for b in message["rendered"]["buttons"])


@dataclass
class FreshUp:
    """`alertq up` as a newcomer starts it: nothing configured but this test's broker, spool and ports."""

    stack: Stack
    process: subprocess.Popen[str]
    cwd: Path  # where ./var is

    def core_commands(self) -> list[dict[str, Any]]:
        answer = requests.get(f"{self.stack.sink}/api/core/commands", timeout=10)
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()["commands"]
        return found

    def wait_for_core_command(self, predicate: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        match = first_within(self.core_commands, predicate)
        if match is not None:
            return match
        raise AssertionError(f"no {what} in the core's command file after {WAIT:.0f} s\n{self.stack.log_tail()}")

    def output(self) -> str:
        return self.stack.log.read_text(errors="replace")


@contextmanager
def fresh_up(alertq_env: dict[str, str], cwd: Path, **extra_env: str) -> Iterator[FreshUp]:
    """`alertq up` in `cwd` (its ./var) with only the ports moved off the defaults (tests run side by
    side) and what `alertq_env` isolates (broker vhost, spool, stores); `extra_env` adds settings."""
    sink_port, listener_port = free_port(), free_port()
    env = {
        **alertq_env,
        "ALERTQ_SINK__HTTP_PORT": str(sink_port),
        "ALERTQ_SINK__SMTP_PORT": str(free_port()),
        "ALERTQ_ACK_LISTENER__PORT": str(listener_port),
        **extra_env,
    }
    log = cwd / "up.log"
    with log.open("w") as out:
        up = subprocess.Popen(["alertq", "up"], env=env, stdout=out, stderr=subprocess.STDOUT, text=True, cwd=cwd)
    stack = Stack(f"http://127.0.0.1:{sink_port}", f"http://127.0.0.1:{listener_port}", log)
    try:
        _wait_healthy([f"{stack.sink}/healthz", f"{stack.listener}/healthz"], up, stack)
        yield FreshUp(stack, up, cwd)
    finally:
        up.terminate()
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            up.kill()
            up.wait(10)


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> list[str]:
    """The README's first `alertq-enqueue` command (the one `make run` tells a newcomer to send)."""
    lines = README.read_text().splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith(".venv/bin/alertq-enqueue "))
    command = ""
    for line in lines[first:]:
        command += line.strip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            break
    argv = shlex.split(command)
    return ["alertq-enqueue", *argv[1:]]


def enqueue_readme_example(env: dict[str, str], cwd: Path) -> None:
    """The README's first command, as `make run` tells a newcomer to send it."""
    done = subprocess.run(readme_example(), env=env, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
