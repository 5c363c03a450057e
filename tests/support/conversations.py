"""Conversation tests: workers in API mode against `alertq sink`, notifications enqueued as the core's
openITCOCKPIT command lines enqueue them, and the sink's record of API calls read back as a user would
read the chat (roots, their threads, their current content)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.ack_processes import SIGNING_SECRET
from tests.support.sink import Sink

MATTERMOST_CHANNEL = "ops/alerts"
SLACK_CHANNEL = "C0ALERTS"
WAIT = 90.0


def api_env(
    base: dict[str, str], sink: Sink, chat: str, store: str, *, two_way: bool = True, **extra: str
) -> dict[str, str]:
    """A worker's environment for `chat` in API mode against `sink`, conversations kept in `store`;
    short broker delays so that deferred and retried deliveries come back quickly."""
    prefix = f"ALERTQ_CHANNELS__{chat.upper()}__"
    env = {
        **base,
        f"{prefix}BOT_TOKEN": "xoxb-test-token" if chat == "slack" else "mm-test-token",
        f"{prefix}API_URL": sink.slack_api() if chat == "slack" else sink.url,
        f"{prefix}CHANNEL": SLACK_CHANNEL if chat == "slack" else MATTERMOST_CHANNEL,
        "ALERTQ_CONVERSATIONS__STORE": store,
        "ALERTQ_RETRY__DELAYS": "1,2",
        "ALERTQ_WORKER__CONNECT_RETRY_WAIT": "0.1",
    }
    if two_way:
        env[f"{prefix}TWO_WAY"] = "true"
        env["ALERTQ_ACK__SIGNING_SECRET"] = SIGNING_SECRET
        if chat == "mattermost":
            env[f"{prefix}ACK_URL"] = "http://127.0.0.1:9/mattermost/actions"
    env.update(extra)
    return env


@dataclass(frozen=True)
class Service:
    """One monitored service, as openITCOCKPIT names it: UUIDs, with display names beside."""

    host: str
    service: str
    host_name: str = "web01"
    service_name: str = "Disk /"

    @classmethod
    def new(cls, host_name: str = "web01", service_name: str = "Disk /") -> Service:
        return cls(str(uuid.uuid4()), str(uuid.uuid4()), host_name, service_name)


def command_line(
    chat: str,
    service: Service,
    notification_type: str,
    state: int,
    output: str,
    contact: str,
    number: int,
    *,
    author: str = "",
    comment: str = "",
    timestamp: float | None = None,
    problem_id: str | None = None,
) -> list[str]:
    """`alertq-enqueue` as openITCOCKPIT's notification command for `chat` runs it (its module's own
    flags, the core's macro values filled in), with alertq's contact, number and time flags added."""
    if chat == "slack":
        module = [
            "--type", "Service", "--notificationtype", notification_type, "--hostname", service.host,
            "--hostaddress", "10.0.0.1", "--hoststate", "0", "--servicedesc", service.service,
            "--servicestate", str(state), "--output", output,
        ]  # fmt: skip
        if author or comment:  # not among the Slack module's flags: alertq's own, for the root's ack line
            module += ["--ackauthor", author, "--ackcomment", comment]
    else:
        module = [
            "--type", "Service", "--notificationtype", notification_type, "--hostuuid", service.host,
            "--serviceuuid", service.service, "--state", str(state), "--output", output,
            "--ackauthor", author, "--ackcomment", comment,
        ]  # fmt: skip
    return [
        "alertq-enqueue",
        "--channel",
        chat,
        *module,
        "--host-display-name",
        service.host_name,
        "--service-display-name",
        service.service_name,
        "--contact",
        contact,
        "--notification-number",
        str(number),
        "--timestamp",
        str(int(time.time() if timestamp is None else timestamp)),
        # $SERVICEPROBLEMID$ as the openITCOCKPIT commands pass it; Nagios sends 0 on a RECOVERY.
        *(["--problem-id", problem_id] if problem_id is not None else []),
    ]


def enqueue_all(env: dict[str, str], commands: list[list[str]]) -> None:
    """Run the commands at once, as the core forks one per contact, and wait for all."""
    running = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for argv in commands]
    for process in running:
        _, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode(errors="replace")


def escalation_event(
    chat: str,
    service: Service,
    contact: str,
    step: int,
    *,
    number: int = 1,
    address: str | None = None,
    output: str = "DISK CRITICAL - free space: / 120 MB (1%)",
) -> dict[str, Any]:
    """The escalator's step notification: the PROBLEM retold to the step's contact."""
    return {
        "schema": "alertq.alert/1",
        "event_id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC).isoformat(),
        "channel": chat,
        "kind": "service",
        "notification_type": "PROBLEM",
        "host": {"id": service.host, "name": service.host, "display_name": service.host_name, "address": None},
        "service": {"id": service.service, "name": service.service, "display_name": service.service_name},
        "state": 2,
        "output": output,
        "long_output": "",
        "ack": None,
        "notification_number": number,
        "contact": {"name": contact, "email": None, "pager": None, "address": address},
        "escalation": {"policy": "disk", "step": step, "since": datetime.now(UTC).isoformat()},
        "source": {"producer_host": "alertq", "core": "alertq-escalator"},
    }


# -- reading the sink -----------------------------------------------------------------------------------


def wait_calls(
    sink: Sink, api: str, done: Callable[[list[dict[str, Any]]], bool], what: str, timeout: float = WAIT
) -> list[dict[str, Any]]:
    """The sink's answered calls of `api` (rate-limit refusals included) once `done(calls)` holds."""
    deadline = time.monotonic() + timeout
    calls: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        calls = sink.calls(api)
        if done(calls):
            return calls
        time.sleep(0.2)
    raise AssertionError(f"{what} not seen within {timeout:.0f} s; calls: {[summary(c) for c in calls]}")


def summary(call: dict[str, Any]) -> str:
    """`POST /posts root`, `POST /posts reply`, `PUT /posts/{id}/patch`, `chat.postMessage reply`, …"""
    body: dict[str, Any] = call["body"] if isinstance(call.get("body"), dict) else {}
    path = str(call["path"])
    if call["api"] == "slack":
        method = path.rsplit("/", 1)[-1]
        if method == "chat.postMessage":
            return f"{method} {'reply' if body.get('thread_ts') else 'root'}"
        return method
    if call["method"] == "POST" and path.endswith("/posts"):
        return f"POST /posts {'reply' if body.get('root_id') else 'root'}"
    if call["method"] == "PUT" and path.endswith("/patch"):
        return "PUT /posts/{id}/patch"
    if call["method"] == "GET" and path.startswith("/api/v4/posts/"):
        return "GET /posts/{id}"
    return f"{call['method']} {path.removeprefix('/api/v4')}"


def ok(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calls the chat took (2xx and, for Slack, ok: true)."""
    taken = []
    for call in calls:
        answer = call.get("answer")
        if not 200 <= int(call["status"]) < 300:
            continue
        if call["api"] == "slack" and not (isinstance(answer, dict) and answer.get("ok")):
            continue
        taken.append(call)
    return taken


def roots(sink: Sink, chat: str) -> list[dict[str, Any]]:
    """The API roots the sink shows (threads' first posts), oldest first."""
    found = [m for m in sink.messages() if m.get("api") and m["api"]["root"] is None and m["channel"] == chat]
    return sorted(found, key=lambda m: int(m["id"]))


def thread(sink: Sink, root: dict[str, Any]) -> list[dict[str, Any]]:
    found = [m for m in sink.messages() if m.get("api") and m["api"]["root"] == root["id"]]
    return sorted(found, key=lambda m: int(m["id"]))


def root_text(message: dict[str, Any]) -> str:
    """Everything a reader sees in a post, as the sink renders it: its text, then per card the header,
    texts, fields and context lines."""
    rendered = message["rendered"]
    seen = [str(rendered.get("body") or "")]
    for card in rendered.get("cards", []):
        for part in card.get("parts", []):
            seen.append(str(part.get("text") or ""))
            seen += [f"{f.get('title', '')}: {f.get('value', '')}" for f in part.get("fields", [])]
            seen += [str(item) for item in part.get("items", [])]
    return "\n".join(line for line in seen if line)


def colour(message: dict[str, Any]) -> str | None:
    cards = message["rendered"].get("cards", [])
    colours = [card.get("colour") for card in cards if card.get("colour")]
    return colours[0] if colours else None


def buttons(message: dict[str, Any]) -> list[str]:
    return [b["label"] for b in message["rendered"].get("buttons", [])]


def sqlite_store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/conversations.db"
