"""RabbitMQ for the tests: the shared broker (one fresh vhost per test) and private nodes for fault tests.

Private nodes are started from the installed `rabbitmq-server` with their own node name, ports, config
and data dir, so a test may stop, restart or kill them; the machine's shared broker is never touched.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
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
    """A broker the tests may use but never stop: one vhost per test keeps tests apart."""

    url: str
    ctl: list[str] | None  # how to run rabbitmqctl against it, None if we cannot administer it
    created: list[str] = field(default_factory=list)

    def new_vhost_url(self) -> str:
        if self.ctl is None:
            return self.url
        vhost = f"alertq-test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{uuid.uuid4().hex[:8]}"
        user = urlsplit(self.url).username or "guest"
        _run([*self.ctl, "add_vhost", vhost])
        _run([*self.ctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*"])
        self.created.append(vhost)
        return with_vhost(self.url, vhost)

    def delete_vhosts(self) -> None:
        if self.ctl is None:
            return
        for vhost in self.created:
            with contextlib.suppress(subprocess.TimeoutExpired):  # a slow broker finishes it on its own
                subprocess.run(
                    [*self.ctl, "delete_vhost", vhost],
                    capture_output=True,
                    timeout=60,
                    check=False,
                    env={**os.environ, **CTL_ENV},
                )
        self.created.clear()


# rabbitmqctl listens on one of only 11 distribution ports by default (35672-35682): with several test
# runs on the machine calling it at once it fails with "Distribution failed". A wide range of its own
# avoids that; a retry covers the rest.
CTL_ENV = {"RABBITMQ_CTL_DIST_PORT_MIN": "42000", "RABBITMQ_CTL_DIST_PORT_MAX": "42999"}


def _run(argv: list[str]) -> None:
    env = {**os.environ, **CTL_ENV}
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    for attempt in range(20):
        if result.returncode == 0 or "Distribution failed" not in result.stderr:
            break
        time.sleep(0.2 + random.random() * min(2.0, 0.2 * (attempt + 1)))
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {result.stderr.strip() or result.stdout.strip()}")


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
        return subprocess.run(
            ["rabbitmqctl", "-n", self.name, *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

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

    def stop(self) -> None:
        self.ctl("stop", timeout=120)
        deadline = time.monotonic() + 60
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.2)

    def destroy(self) -> None:
        if port_open("127.0.0.1", self.port):
            self.stop()
        shutil.rmtree(self.base, ignore_errors=True)
