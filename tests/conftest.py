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
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from broker import topology
from schemas.settings import Settings
from tests.support.icinga import ICINGA2_BINARY, Icinga2Core
from tests.support.nagios import NAGIOS_BINARY, SEARCH_PATH, NagiosCore
from tests.support.rabbit import PrivateNode, SharedBroker, management_api
from tests.support.workers import Endpoint, WorkerProcess, endpoint

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
    # rabbitmqctl administers the machine's own node only: not a broker named by RABBITMQ_URL.
    local = "RABBITMQ_URL" not in os.environ and shutil.which("rabbitmqctl") is not None and os.geteuid() == 0
    broker = SharedBroker(url, ["rabbitmqctl"] if local else None, api=management_api(url))
    yield broker


@pytest.fixture
def amqp_url(shared_broker: SharedBroker) -> str:
    """A broker URL with a vhost that holds nothing but what this test puts there."""
    return shared_broker.fresh_url()


@pytest.fixture(autouse=True)
def own_conversations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test keeps its chat conversations (and webhook dedupe) in a store of its own, not in the
    checkout's var/: tests send the same events to the same endpoints over and over."""
    monkeypatch.setenv("ALERTQ_CONVERSATIONS__STORE", f"sqlite:///{tmp_path}/conversations.db")


@pytest.fixture
def alertq_env(amqp_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment for alertq subprocesses: this test's broker, spool and state store, JSON logs, no config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTQ_")}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        ALERTQ_BROKER__URLS=amqp_url,
        ALERTQ_SPOOL__DIR=str(tmp_path / "spool"),
        ALERTQ_CONVERSATIONS__STORE=f"sqlite:///{tmp_path}/conversations.db",
        ALERTQ_LOG__FORMAT="json",
        ALERTQ_LOG__LEVEL="debug",
        ALERTQ_CONFIG=str(tmp_path / "alertq.toml"),
        # This test's own state store: the default (./var) would be shared by every test and checkout.
        ALERTQ_STATE_STORE=f"sqlite:///{tmp_path}/alertq.db",
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
    """Settings whose topology is declared on this test's vhost, the escalator's queue included (as on a
    broker where an escalator runs; without a routing_file alertq's processes leave it out), so tests
    can see what reaches it. Its timer tiers only with a routing_file, as before: fifteen more queues per test."""
    timers = topology.escalation_configured(settings)
    topology.declare_with(settings, "tests", escalation=True, delays=None if timers else settings.retry.delays)
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


@pytest.fixture
def nagios_core_factory(amqp_url: str) -> Iterator[Callable[..., NagiosCore]]:
    """Start Nagios 4 cores whose notifications go to this test's vhost: `factory(**NagiosCore options)`
    returns a started core (hosts, channels, args, extra_args, directives, …; see tests/support/nagios.py).
    All are stopped and removed at teardown."""
    require(shutil.which(NAGIOS_BINARY, path=SEARCH_PATH) is not None, "nagios4-core is not installed")
    cores: list[NagiosCore] = []

    def start(**options: Any) -> NagiosCore:
        core = NagiosCore(Path(tempfile.gettempdir()), amqp_url, **options)
        cores.append(core)
        return core.start()

    try:
        yield start
    finally:
        for core in cores:
            core.cleanup()


@pytest.fixture
def nagios_core(nagios_core_factory: Callable[..., NagiosCore]) -> NagiosCore:
    """A started Nagios 4 core with the defaults: host web01 with service disk, contact oncall, the
    openITCOCKPIT Mattermost commands on alertq-enqueue --channel mattermost."""
    return nagios_core_factory()


@pytest.fixture
def icinga2_core() -> Iterator[Icinga2Core]:
    """A started Icinga 2 of this test's own (host web01, service disk, passive checks only), its API on
    a free port of 127.0.0.1 behind a throwaway CA (`.url`, `.ca_file`); stopped and removed at teardown."""
    require(shutil.which(ICINGA2_BINARY, path=SEARCH_PATH) is not None, "icinga2 is not installed")
    core = Icinga2Core(Path(tempfile.gettempdir()))
    try:
        yield core.start()
    finally:
        core.cleanup()


# The PostgreSQL the state-store tests use (one throwaway schema per test); CI and this machine run one.
POSTGRES_DSN = os.environ.get("ALERTQ_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_answers() -> bool:
    try:
        import psycopg

        psycopg.connect(POSTGRES_DSN, connect_timeout=3).close()
    except Exception:
        return False
    return True


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh escalator state store: SQLite in tmp_path, or a PostgreSQL schema of this test's own."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/alertq.db"
        return
    require(_postgres_answers(), f"no PostgreSQL answers at {POSTGRES_DSN} (set ALERTQ_TEST_POSTGRES)")
    import uuid

    import psycopg
    from psycopg import sql

    schema = f"alertq_test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_DSN}?schema={schema}"
    with psycopg.connect(POSTGRES_DSN, autocommit=True) as db:
        db.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def run(argv: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run an alertq command as the core or an operator would, capturing its output."""
    kwargs.setdefault("timeout", 60)
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture
def hook() -> Iterator[Endpoint]:
    """A recording HTTP endpoint standing in for a webhook, Mattermost or Slack."""
    yield from endpoint()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start `alertq worker <channel>` processes (waiting until each consumes); all stopped at teardown."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], channel: str = "webhook", **extra: str) -> WorkerProcess:
        worker = WorkerProcess({**env, **extra}, tmp_path / f"worker-{len(started)}.log", channel=channel)
        started.append(worker)  # before waiting: a worker that never gets going is stopped too
        return worker.started()

    yield start
    for worker in started:
        worker.stop_quietly()
