"""Channel-worker tests: events, publishing them, a recording HTTP endpoint, worker subprocesses."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

import pika
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from broker import names
from broker.publisher import ConfirmedPublisher, json_properties


def event(channel: str = "webhook", age: float = 0.0, **overrides: Any) -> dict[str, Any]:
    """A valid alertq.alert/1 event, `age` seconds old."""
    created = datetime.now(UTC) - timedelta(seconds=age)
    body: dict[str, Any] = {
        "schema": "alertq.alert/1",
        "event_id": str(uuid.uuid4()),
        "created_at": created.isoformat(),
        "channel": channel,
        "kind": "service",
        "notification_type": "PROBLEM",
        "host": {"id": "h-uuid", "name": "web01", "display_name": "web01", "address": "10.0.0.1"},
        "service": {"id": "s-uuid", "name": "disk", "display_name": "Disk /"},
        "state": 2,
        "output": "DISK CRITICAL - free space: / 120 MB (1%)",
        "long_output": "",
        "ack": None,
        "notification_number": 1,
        "contact": {"name": "oncall", "email": "oncall@example.org", "pager": None},
        "escalation": None,
        "source": {"producer_host": "mon01", "core": "naemon"},
    }
    body.update(overrides)
    return body


def encode(item: dict[str, Any] | bytes) -> bytes:
    return item if isinstance(item, bytes) else json.dumps(item).encode()


def publish(
    url: str,
    items: list[dict[str, Any]] | list[bytes],
    channel: str = "webhook",
    headers: dict[str, Any] | None = None,
) -> list[bytes]:
    """Publish (confirmed) to alertq.events as the relay would; returns the bodies as sent."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    bodies = []
    try:
        publisher = ConfirmedPublisher(connection.channel())
        for item in items:
            body = encode(item)
            message_id = item["event_id"] if isinstance(item, dict) else None
            publisher.publish(
                names.EVENTS_EXCHANGE, names.notify_key(channel), body, json_properties(message_id, headers)
            )
            bodies.append(body)
    finally:
        connection.close()
    return bodies


@dataclass
class Hit:
    at: float
    event_id: str
    headers: dict[str, str]
    body: bytes
    status: int = 0  # the answer given, once given


Behaviour = Callable[[Request, int], Response]


def ok(_request: Request, _n: int) -> Response:
    return Response("ok", 200)


@dataclass
class Endpoint:
    """A real HTTP endpoint (werkzeug, threaded) that records every request and answers with `behaviour`."""

    server: HTTPServer
    behaviour: Behaviour = ok
    hits: list[Hit] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return self.server.url_for("/hook/s3cr3t-path")

    def handle(self, request: Request) -> Response:
        body = request.get_data()
        hit = Hit(time.monotonic(), request.headers.get("X-Alertq-Event-Id", ""), dict(request.headers), body)
        with self.lock:
            n = len(self.hits)
            self.hits.append(hit)
        response = self.behaviour(request, n)
        hit.status = response.status_code
        return response

    def event_ids(self, delivered: bool = False) -> list[str]:
        """Event ids of every request in order of arrival; `delivered`: only those answered 2xx."""
        with self.lock:
            return [hit.event_id for hit in self.hits if not delivered or 200 <= hit.status < 300]

    def wait_for(self, count: int, timeout: float = 60.0, distinct: bool = False) -> int:
        """Wait for `count` requests, or with `distinct` for `count` distinct events answered 2xx."""
        deadline = time.monotonic() + timeout
        while True:
            ids = self.event_ids(delivered=distinct)
            seen = len(set(ids)) if distinct else len(ids)
            if seen >= count or time.monotonic() > deadline:
                return seen
            time.sleep(0.05)

    def wait_quiet(self, quiet: float = 1.5, timeout: float = 60.0) -> int:
        """Wait until no request came for `quiet` seconds (late redeliveries have shown); returns the count."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                last = self.hits[-1].at if self.hits else 0.0
            if time.monotonic() - last >= quiet:
                break
            time.sleep(0.1)
        return len(self.event_ids())


def endpoint(behaviour: Behaviour = ok) -> Iterator[Endpoint]:
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    recorder = Endpoint(server, behaviour)
    server.expect_request("/hook/s3cr3t-path", method="POST").respond_with_handler(recorder.handle)
    try:
        yield recorder
    finally:
        server.clear()
        server.stop()


class WorkerProcess:
    """`alertq worker <channel>` as an operator runs it; its JSON log lines are kept in a file."""

    argv: tuple[str, ...] = ("alertq", "worker")
    ready = "worker.consuming"

    def __init__(self, env: dict[str, str], log_path: Path, channel: str = "webhook") -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in wait()
        argv = [*self.argv, channel] if channel else list(self.argv)
        self.popen = subprocess.Popen(argv, env=env, stdout=self._log, stderr=self._log)

    def lines(self) -> list[dict[str, Any]]:
        result = []
        for raw in self.log_path.read_text(errors="replace").splitlines():
            try:
                result.append(json.loads(raw))
            except ValueError:
                result.append({"event": "<not json>", "text": raw})
        return result

    def text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("event") == name]

    def wait_log(self, name: str, count: int = 1, timeout: float = 60.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.events(name)
            if len(found) >= count:
                return found
            if self.popen.poll() is not None:
                raise AssertionError(f"worker exited {self.popen.returncode} before {name!r}:\n{self.text()[-3000:]}")
            time.sleep(0.05)
        raise AssertionError(f"no {count}x {name!r} within {timeout}s:\n{self.text()[-3000:]}")

    def started(self, timeout: float = 60.0) -> Self:
        self.wait_log(self.ready, timeout=timeout)
        return self

    def terminate(self, timeout: float = 60.0) -> int:
        self.popen.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill(self) -> None:
        self.popen.kill()
        self.wait(30)

    def wait(self, timeout: float) -> int:
        try:
            return self.popen.wait(timeout)
        finally:
            if self.popen.poll() is not None:
                self._log.close()

    def stop_quietly(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(30)
        self._log.close()


def queue_counts(url: str, queue: str) -> tuple[int, int]:
    """(ready, consumers) of a queue."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        ok_ = connection.channel().queue_declare(queue, passive=True).method
        return int(ok_.message_count), int(ok_.consumer_count)
    finally:
        connection.close()


def scrape(port: int, path: str = "/metrics") -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0.0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        sample, _, label_text = key.partition("{")
        got = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if sample == name and got == want:
            return float(value)
    return 0.0


def webhook_worker_env(alertq_env: dict[str, str], hook: Endpoint, **extra: str) -> dict[str, str]:
    """A webhook worker's environment: this endpoint, rate limits out of the way, 1 and 2 s retry tiers,
    quick in-process retries; `extra` adds or overrides settings."""
    return {
        **alertq_env,
        "ALERTQ_CHANNELS__WEBHOOK__URL": hook.url,
        "ALERTQ_CHANNELS__WEBHOOK__RATE_LIMIT__PER_SECOND": "10000",
        "ALERTQ_CHANNELS__WEBHOOK__RATE_LIMIT__BURST": "10000",
        "ALERTQ_RETRY__DELAYS": "1,2",
        "ALERTQ_WORKER__CONNECT_RETRY_WAIT": "0.1",
        **extra,
    }
