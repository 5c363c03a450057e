"""RabbitMQ for the tests: the shared broker (one fresh vhost per test) and private nodes for fault tests.

Private nodes are started from the installed `rabbitmq-server` with their own node name, ports, config
and data dir, so a test may stop, restart or kill them; the machine's shared broker is never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def with_vhost(url: str, vhost: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, parts.fragment))


@dataclass
class SharedBroker:
    """A broker the tests use but never stop.

    Each pytest(-xdist) worker of a checkout has one vhost, made on first use and kept: vhosts are costly
    to make, and deleting them on RabbitMQ 3.10 can wedge the broker in a "virtual host is gone" loop.
    Every test starts with that vhost emptied of queues and exchanges, so tests never see each other's
    messages. Administration goes through the management
    HTTP API when it answers, else rabbitmqctl (serialised machine-wide: the CLI has only 11
    distribution ports); with neither, the tests share the URL's vhost as it is.
    """

    url: str
    ctl: list[str] | None  # how to run rabbitmqctl against it, None if we cannot administer it
    api: str | None = None  # management API base URL, e.g. http://127.0.0.1:15672/api
    vhost: str | None = None

    @property
    def isolated(self) -> bool:
        return self.api is not None or self.ctl is not None

    def fresh_url(self) -> str:
        """The worker's vhost, emptied: no queue or exchange left from an earlier test."""
        if not self.isolated:
            return self.url
        if self.vhost is None:
            # One name per checkout and worker: parallel runs in other checkouts keep apart.
            checkout = hashlib.sha256(str(Path(__file__).resolve().parents[2]).encode()).hexdigest()[:6]
            self.vhost = f"alertq-test-{checkout}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
            self._create(self.vhost)
        self._empty(self.vhost)
        return with_vhost(self.url, self.vhost)

    def set_policy(self, name: str, pattern: str, definition: dict[str, Any], apply_to: str = "queues") -> None:
        """A policy in this worker's vhost, as an operator sets one. Emptying the vhost keeps policies:
        a test that sets one clears it again (`clear_policy`)."""
        assert self.vhost is not None, "fresh_url() first"
        if self.api is not None:
            body = {"pattern": pattern, "definition": definition, "apply-to": apply_to}
            self._http("PUT", f"/policies/{quote(self.vhost, safe='')}/{quote(name, safe='')}", body)
        else:
            assert self.ctl is not None
            _ctl(
                [
                    *self.ctl,
                    "set_policy",
                    "-p",
                    self.vhost,
                    name,
                    pattern,
                    json.dumps(definition),
                    "--apply-to",
                    apply_to,
                ]
            )

    def clear_policy(self, name: str) -> None:
        assert self.vhost is not None
        if self.api is not None:
            self._http("DELETE", f"/policies/{quote(self.vhost, safe='')}/{quote(name, safe='')}")
        else:
            assert self.ctl is not None
            _ctl([*self.ctl, "clear_policy", "-p", self.vhost, name])

    def _create(self, vhost: str) -> None:
        user = urlsplit(self.url).username or "guest"
        if self.api is not None:
            self._http("PUT", f"/vhosts/{quote(vhost, safe='')}", {})
            self._http(
                "PUT", f"/permissions/{quote(vhost, safe='')}/{user}", {"configure": ".*", "write": ".*", "read": ".*"}
            )
        else:
            assert self.ctl is not None
            if vhost not in _ctl([*self.ctl, "-q", "list_vhosts", "--no-table-headers"]).split():
                _ctl([*self.ctl, "add_vhost", vhost])
            _ctl([*self.ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"])

    def _empty(self, vhost: str) -> None:
        if self.api is not None:
            queues = [q["name"] for q in self._http("GET", f"/queues/{quote(vhost, safe='')}?columns=name")]
            exchanges = [e["name"] for e in self._http("GET", f"/exchanges/{quote(vhost, safe='')}?columns=name")]
        else:
            assert self.ctl is not None
            queues = _ctl([*self.ctl, "-q", "list_queues", "-p", vhost, "name", "--no-table-headers"]).split()
            exchanges = _ctl([*self.ctl, "-q", "list_exchanges", "-p", vhost, "name", "--no-table-headers"]).split()
        connection = pika.BlockingConnection(pika.URLParameters(with_vhost(self.url, vhost)))
        try:
            channel = connection.channel()
            for queue in queues:
                channel.queue_delete(queue)
            for exchange in exchanges:
                if exchange and not exchange.startswith("amq."):
                    channel.exchange_delete(exchange)
        finally:
            connection.close()

    def _http(self, method: str, path: str, body: object = None) -> Any:
        import requests

        assert self.api is not None
        parts = urlsplit(self.url)
        response = requests.request(
            method, self.api + path, json=body, timeout=120, auth=(parts.username or "guest", parts.password or "guest")
        )
        if response.status_code >= 300 and not (method == "DELETE" and response.status_code == 404):
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code} {response.text[:200]}")
        return response.json() if method == "GET" else None


def management_api(url: str) -> str | None:
    """The management API of the broker at `url`, if it answers: $RABBITMQ_MANAGEMENT_URL, else port
    15672 on the same host."""
    import requests

    parts = urlsplit(url)
    api = os.environ.get("RABBITMQ_MANAGEMENT_URL") or f"http://{parts.hostname}:15672/api"
    try:
        response = requests.get(
            api + "/overview", timeout=5, auth=(parts.username or "guest", parts.password or "guest")
        )
    except requests.RequestException:
        return None
    return api if response.status_code == 200 else None


CTL_LOCK = Path(tempfile.gettempdir()) / "alertq-tests-rabbitmqctl.lock"


def _ctl(argv: list[str], timeout: float = 120) -> str:
    """Run one rabbitmqctl at a time on this machine, and kill its whole process group on timeout:
    a timed-out CLI left running holds one of the few CLI distribution ports for good."""
    import fcntl

    with CTL_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise RuntimeError(f"{' '.join(argv)} timed out after {timeout:.0f} s") from None
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {err.strip() or out.strip()}")
    return out


class PrivateNode:
    """A RabbitMQ node of the test's own. Needs root (Debian's wrapper runs the node as `rabbitmq`)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or f"alertqtest{uuid.uuid4().hex[:8]}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="alertq-rabbit-"))
        (self.base / "rabbitmq.conf").write_text(f"listeners.tcp.1 = 127.0.0.1:{self.port}\nloopback_users = none\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        shutil.chown(self.base, "rabbitmq", "rabbitmq")
        for child in self.base.iterdir():
            shutil.chown(child, "rabbitmq", "rabbitmq")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq"),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_PID_FILE=str(self.base / "pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
        )
        return env

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        # The CLI is an Erlang node too: given the server's RABBITMQ_DIST_PORT it would try to listen on
        # that very port and fail ("Distribution failed"). It needs only the node name.
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        return subprocess.run(
            ["rabbitmqctl", "-n", self.name, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wait_settled(self, queue: str, timeout: float = 20) -> None:
        """Until the broker has processed every ack for `queue`. A consumer's ack is on the wire before
        it logs the delivery, but a quorum queue applies it only once its log has committed it: a node
        stopped in between redelivers the message (at-least-once), which a test may not be about."""
        deadline = time.monotonic() + timeout
        while True:
            listed = self.ctl("-q", "list_queues", "name", "messages_unacknowledged", "--no-table-headers")
            counts = dict(line.split()[:2] for line in listed.stdout.splitlines() if len(line.split()) >= 2)
            if listed.returncode == 0 and counts.get(queue) == "0":
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{queue} still has unacked messages: {counts or listed.stderr.strip()}")
            time.sleep(0.2)

    def start(self, timeout: float = 90) -> None:
        subprocess.run(["rabbitmq-server", "-detached"], env=self.env(), check=True, capture_output=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_open("127.0.0.1", self.port) and self._amqp_ok():
                return
            time.sleep(0.25)
        raise RuntimeError(f"private RabbitMQ {self.name} did not start; logs in {self.base / 'log'}")

    def _amqp_ok(self) -> bool:
        try:
            pika.BlockingConnection(pika.URLParameters(self.url)).close()
        except Exception:
            return False
        return True

    def _pid(self) -> int | None:
        try:
            return int((self.base / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def stop(self) -> None:
        """Stop the node the way an init system does: SIGTERM to the Erlang VM, which shuts RabbitMQ down
        cleanly. (rabbitmqctl would need a free CLI distribution port, which a busy machine may not have.)"""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.2)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.2)

    def kill(self) -> None:
        """Crash the node (SIGKILL): no clean shutdown."""
        pid = self._pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def destroy(self) -> None:
        pid = self._pid()
        if port_open("127.0.0.1", self.port) or (pid is not None and _alive(pid)):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie counts as gone.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return False
