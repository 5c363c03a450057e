"""Fixtures: real RabbitMQ (a fresh vhost per test), the alertq environment for subprocesses, helpers.

RabbitMQ comes from testcontainers when a Docker engine answers and RABBITMQ_URL is unset; otherwise
from RABBITMQ_URL (default: the local broker on 127.0.0.1:5672), so the same suite runs on a laptop
with Docker and on a machine with RabbitMQ installed.

ALERTQ_TEST_STRICT=1 (set by .ci/run) turns skips for a missing system tool into failures.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from broker import topology
from broker.connection import connect as broker_connect
from schemas.settings import Settings
from tests.support.rabbit import PrivateNode, SharedBroker, management_api

VENV_BIN = Path(sys.executable).parent
STRICT = os.environ.get("ALERTQ_TEST_STRICT") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip when a system tool is missing; in CI (ALERTQ_TEST_STRICT=1) that is a failure instead."""
    if not condition:
        if STRICT:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


def _docker_works() -> bool:
    if os.environ.get("RABBITMQ_URL") or os.environ.get("ALERTQ_TEST_DOCKER") == "0" or not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0


@pytest.fixture(scope="session")
def shared_broker() -> Iterator[SharedBroker]:
    if _docker_works():
        from testcontainers.rabbitmq import RabbitMqContainer

        with RabbitMqContainer("rabbitmq:3.13") as container:
            host, port = container.get_container_host_ip(), container.get_exposed_port(5672)
            ctl = ["docker", "exec", container.get_wrapped_container().id, "rabbitmqctl"]
            yield SharedBroker(f"amqp://guest:guest@{host}:{port}/", ctl)
        return
    url = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    local = ("127.0.0.1" in url or "localhost" in url) and shutil.which("rabbitmqctl") and os.geteuid() == 0
    broker = SharedBroker(url, ["rabbitmqctl"] if local else None, api=management_api(url))
    yield broker


@pytest.fixture
def amqp_url(shared_broker: SharedBroker) -> str:
    """A broker URL with a vhost that holds nothing but what this test puts there."""
    return shared_broker.fresh_url()


@pytest.fixture
def alertq_env(amqp_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for alertq subprocesses: this test's broker and spool, JSON logs, no config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTQ_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ALERTQ_BROKER__URLS=amqp_url,
        ALERTQ_SPOOL__DIR=str(tmp_path / "spool"),
        ALERTQ_LOG__FORMAT="json",
        ALERTQ_LOG__LEVEL="debug",
        ALERTQ_CONFIG=str(tmp_path / "alertq.toml"),
    )
    (tmp_path / "alertq.toml").write_text("# this test's settings come from the environment\n")
    return env


@pytest.fixture
def settings(alertq_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in alertq_env.items():
        if key.startswith("ALERTQ_"):
            monkeypatch.setenv(key, value)
    return Settings()


@pytest.fixture
def declared(settings: Settings) -> Settings:
    """Settings whose topology is declared on this test's vhost."""
    connection = broker_connect(settings.broker, "tests")
    try:
        topology.declare(connection.channel(), settings)
    finally:
        connection.close()
    return settings


@pytest.fixture
def private_node() -> Iterator[PrivateNode]:
    """A RabbitMQ node of this test's own, started; the test may stop and restart it."""
    require(shutil.which("rabbitmq-server") is not None, "rabbitmq-server is not installed")
    require(os.geteuid() == 0, "private RabbitMQ nodes need root (Debian's wrapper switches to user rabbitmq)")
    node = PrivateNode()
    try:
        node.start()
        yield node
    finally:
        node.destroy()


def run(argv: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run an alertq command as the core or an operator would, capturing its output."""
    kwargs.setdefault("timeout", 60)
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, **kwargs)
