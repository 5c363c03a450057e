"""Escalator tests: routing files, `alertq escalator` processes, and reading the steps an endpoint got."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.workers import Endpoint, WorkerProcess

# Contacts reach the webhook channel by name: the webhook worker posts every event to one URL, and the
# event JSON names the contact and the escalation step, which is what these tests read back.
ROUTING_HEAD = """
timezone = "UTC"

[contacts.alice.addresses]
webhook = "alice"

[contacts.bob.addresses]
webhook = "bob"

[contacts.carol.addresses]
webhook = "carol"

[groups.dba]
members = ["bob", "carol"]
"""


def routing_file(path: Path, policies: str, head: str = ROUTING_HEAD) -> Path:
    path.write_text(head + "\n" + policies)
    return path


class EscalatorProcess(WorkerProcess):
    """`alertq escalator` as an operator runs it."""

    argv = ("alertq", "escalator")
    ready = "escalator.consuming"

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        super().__init__(env, log_path, channel="")


def escalator_env(alertq_env: dict[str, str], routing: Path, state_store: str, **extra: str) -> dict[str, str]:
    return {
        **alertq_env,
        "ALERTQ_ROUTING_FILE": str(routing),
        "ALERTQ_STATE_STORE": state_store,
        **extra,
    }


@dataclass(frozen=True)
class StepSeen:
    at: datetime  # wall-clock time the endpoint got it
    contact: str
    step: int
    key: str
    body: dict[str, Any]


def steps_seen(hook: Endpoint) -> list[StepSeen]:
    """The escalation notifications the endpoint got (step ≥ 1), in order of arrival."""
    result = []
    now_wall, now_mono = datetime.now(UTC), time.monotonic()
    with hook.lock:
        hits = list(hook.hits)
    for hit in hits:
        body = json.loads(hit.body)
        escalation = body.get("escalation") or {}
        if escalation.get("step", 0) >= 1:
            key = body["host"]["id"] + (f"/{body['service']['id']}" if body.get("service") else "")
            at = now_wall - timedelta(seconds=now_mono - hit.at)
            result.append(StepSeen(at, body["contact"]["name"], escalation["step"], key, body))
    return result


def wait_steps(hook: Endpoint, count: int, timeout: float = 30.0) -> list[StepSeen]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = steps_seen(hook)
        if len(seen) >= count:
            return seen
        time.sleep(0.05)
    return steps_seen(hook)


def by_step(seen: list[StepSeen]) -> Iterator[tuple[int, list[str]]]:
    steps = sorted({s.step for s in seen})
    for step in steps:
        yield step, sorted(s.contact for s in seen if s.step == step)
