"""alertq relay: spool → broker, oldest first, exactly what was spooled, surviving broker and relay deaths."""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from broker import names
from producer import spool
from schemas.alert import AlertEvent
from schemas.settings import Settings
from tests.conftest import require, run
from tests.support import amqp
from tests.support.rabbit import PrivateNode

SYSTEM_PYTHON = "/usr/bin/python3"


def spool_events(spool_dir: Path, count: int, channel: str = "webhook") -> list[str]:
    """Spool `count` events the way alertq-enqueue does; returns their event ids, oldest first."""
    from producer import flags
    from producer.event import build_events

    ids = []
    for i in range(count):
        parsed = flags.parse(
            [
                "--channel",
                channel,
                "--type",
                "Host",
                "--notificationtype",
                "PROBLEM",
                "--hostuuid",
                f"host-{i:05d}",
                "--state",
                "1",
                "--output",
                f"event {i}",
            ]
        )
        assert parsed is not None
        [event] = build_events(parsed)
        spool.write(str(spool_dir), json.dumps(event).encode())
        ids.append(str(event["event_id"]))
    return ids


def start_relay(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["alertq", "relay", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def test_once_publishes_the_backlog_oldest_first_and_empties_the_spool(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    ids = spool_events(tmp_path / "spool", 300)
    result = run(["alertq", "relay", "--once"], alertq_env)
    assert result.returncode == 0, result.stderr
    assert spool.pending(str(tmp_path / "spool")) == []
    received = amqp.take(amqp_url, names.notify_queue("webhook"), 300)
    assert [m.properties.message_id for m in received] == ids
    assert all(AlertEvent.model_validate_json(m.body).event_id == m.properties.message_id for m in received)
    assert '"published": 300' in result.stderr


def test_running_relay_picks_up_new_files_and_stops_cleanly_on_sigterm(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    relay = start_relay(alertq_env)
    try:
        assert wait_until(lambda: spool.relay_alive(str(tmp_path / "spool")), timeout=30)
        # alertq-enqueue now leaves publishing to the relay
        result = run(
            [
                "alertq-enqueue",
                "--channel",
                "webhook",
                "--type",
                "Host",
                "--notificationtype",
                "PROBLEM",
                "--hostuuid",
                "web01",
                "--state",
                "1",
                "--output",
                "down",
            ],
            alertq_env,
        )
        assert result.returncode == 0
        [message] = amqp.take(amqp_url, names.notify_queue("webhook"), 1, timeout=10)
        assert AlertEvent.model_validate_json(message.body).host.name == "web01"
        assert wait_until(lambda: spool.pending(str(tmp_path / "spool")) == [], timeout=5)
    finally:
        relay.send_signal(signal.SIGTERM)
        _, err = relay.communicate(timeout=30)
    assert relay.returncode == 0, err
    assert "relay.stopped" in err
    assert not spool.relay_alive(str(tmp_path / "spool")), "the lock is released"


def test_sigterm_while_the_relay_is_still_starting_stops_it(alertq_env: dict[str, str], tmp_path: Path) -> None:
    """The relay takes relay.lock before it connects: a SIGTERM in between (systemd stopping a relay it
    has just started) must stop it too, not leave it running until SIGKILL."""
    for _ in range(3):
        relay = start_relay(alertq_env)
        assert wait_until(lambda: spool.relay_alive(str(tmp_path / "spool")), timeout=30, interval=0.005)
        relay.send_signal(signal.SIGTERM)
        try:
            _, err = relay.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            relay.kill()
            relay.communicate()
            pytest.fail("the relay ignored a SIGTERM that came while it was connecting")
        assert relay.returncode == 0, err
        assert not spool.relay_alive(str(tmp_path / "spool"))


def test_second_relay_waits_as_standby_and_takes_over(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    first = start_relay(alertq_env)
    assert wait_until(lambda: spool.relay_alive(str(tmp_path / "spool")))
    second_log = tmp_path / "second.log"
    with second_log.open("w") as log_file:
        second = subprocess.Popen(["alertq", "relay"], env=alertq_env, stderr=log_file, text=True)
    try:
        assert wait_until(lambda: "relay.standby" in second_log.read_text(), timeout=30)
        assert second.poll() is None, "the standby keeps waiting"
        first.kill()
        first.wait(timeout=10)
        ids = spool_events(tmp_path / "spool", 5)
        received = amqp.take(amqp_url, names.notify_queue("webhook"), 5, timeout=30)
        assert sorted(m.properties.message_id for m in received) == sorted(ids)
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
            process.communicate(timeout=30)


def test_unroutable_and_unreadable_files_are_dead_lettered_with_a_reason(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    [unknown] = spool_events(spool_dir, 1, channel="pager-duty-typo")
    spool.write(str(spool_dir), b"{not json")
    result = run(["alertq", "relay", "--once"], alertq_env)
    assert result.returncode == 0, result.stderr
    dead = {m.headers[names.HEADER_DEAD_REASON]: m for m in amqp.take(amqp_url, names.DEAD_QUEUE, 2)}
    assert set(dead) == {"unroutable", "invalid"}
    assert dead["unroutable"].properties.message_id == unknown
    assert dead["unroutable"].routing_key == "notify.pager-duty-typo"
    assert dead["invalid"].body == b"{not json", "the raw body is kept for inspection"
    assert spool.pending(str(spool_dir)) == []


def test_once_with_the_broker_down_exits_1_and_keeps_everything(alertq_env: dict[str, str], tmp_path: Path) -> None:
    from tests.support.rabbit import free_port

    spool_events(tmp_path / "spool", 3)
    env = {**alertq_env, "ALERTQ_BROKER__URLS": f"amqp://guest:hunter2@127.0.0.1:{free_port()}/"}
    result = run(["alertq", "relay", "--once"], env)
    assert result.returncode == 1
    assert "relay.broker_unavailable" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert len(spool.pending(str(tmp_path / "spool"))) == 3


def _node_env(env: dict[str, str], node: PrivateNode) -> dict[str, str]:
    return {**env, "ALERTQ_BROKER__URLS": node.url, "ALERTQ_BROKER__RECONNECT_MAX_DELAY": "1"}


def _declare(node: PrivateNode, env: dict[str, str]) -> None:
    result = run(["alertq", "topology", "declare"], _node_env(env, node))
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
@pytest.mark.privatebroker
def test_broker_down_200_enqueues_spool_then_relay_publishes_each_exactly_once(
    private_node: PrivateNode, alertq_env: dict[str, str], tmp_path: Path
) -> None:
    env = _node_env(alertq_env, private_node)
    _declare(private_node, env)
    private_node.stop()
    for i in range(200):
        result = run(
            [
                "alertq-enqueue",
                "--channel",
                "webhook",
                "--type",
                "Service",
                "--notificationtype",
                "PROBLEM",
                "--hostuuid",
                f"h{i}",
                "--serviceuuid",
                "disk",
                "--state",
                "2",
                "--output",
                f"n{i}",
            ],
            env,
        )
        assert result.returncode == 0, result.stderr
        assert "warning: broker unreachable" in result.stderr
    assert len(spool.pending(str(tmp_path / "spool"))) == 200
    private_node.start()
    relay = start_relay(env)
    try:
        assert wait_until(lambda: spool.pending(str(tmp_path / "spool")) == [], timeout=60)
        received = amqp.take(private_node.url, names.notify_queue("webhook"), None, timeout=30, settle=1.0)
    finally:
        relay.terminate()
        relay.communicate(timeout=30)
    hosts = Counter(AlertEvent.model_validate_json(m.body).host.name for m in received)
    assert len(received) == 200
    assert hosts == Counter(f"h{i}" for i in range(200)), "each event exactly once"


@pytest.mark.slow
@pytest.mark.privatebroker
def test_relay_survives_a_broker_restart(private_node: PrivateNode, alertq_env: dict[str, str], tmp_path: Path) -> None:
    env = _node_env(alertq_env, private_node)
    relay = start_relay(env)
    try:
        first = spool_events(tmp_path / "spool", 50)
        assert wait_until(lambda: spool.pending(str(tmp_path / "spool")) == [], timeout=30)
        private_node.stop()
        second = spool_events(tmp_path / "spool", 50)
        time.sleep(2)
        assert relay.poll() is None, "the relay keeps running while the broker is away"
        private_node.start()
        drained = wait_until(lambda: spool.pending(str(tmp_path / "spool")) == [], timeout=60)
        received = amqp.take(private_node.url, names.notify_queue("webhook"), None, timeout=30, settle=1.0)
    finally:
        relay.terminate()
        _, err = relay.communicate(timeout=30)
    assert drained, err
    assert sorted(m.properties.message_id for m in received) == sorted(first + second)
    assert "relay.reconnecting" in err


@pytest.mark.slow
def test_sigkill_mid_backlog_loses_nothing(
    declared: Settings, alertq_env: dict[str, str], amqp_url: str, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    ids = spool_events(spool_dir, 5000)
    relay = start_relay(alertq_env)
    assert wait_until(lambda: len(spool.pending(str(spool_dir))) < 3500, timeout=60, interval=0.005)
    os.kill(relay.pid, signal.SIGKILL)
    relay.wait(timeout=10)
    left = len(spool.pending(str(spool_dir)))
    assert 0 < left < 5000, "killed mid-backlog"
    result = run(["alertq", "relay", "--once"], alertq_env, timeout=120)
    assert result.returncode == 0, result.stderr
    received = amqp.take(amqp_url, names.notify_queue("webhook"), None, timeout=60, settle=1.0)
    counts = Counter(m.properties.message_id for m in received)
    duplicates = sum(n - 1 for n in counts.values())
    print(f"\nrelay SIGKILL with {left} of 5000 left: {len(received)} received, {duplicates} duplicates")
    assert set(counts) == set(ids), "every event reached the queue"
    # Only events published but not yet confirmed at the kill can come twice: at most one window.
    assert duplicates <= declared.spool.publish_window


def test_enqueue_run_by_another_user_sees_the_running_relay() -> None:
    """The core runs alertq-enqueue as its own user (nagios), the relay runs as alertq: the probe must
    work without write access to the relay's lock, or every event is also published directly."""
    require(os.geteuid() == 0, "switching to another user needs root")
    require(os.access(SYSTEM_PYTHON, os.X_OK), f"no {SYSTEM_PYTHON} to run the probe as another user")
    spool_dir = Path(tempfile.mkdtemp(prefix="alertq-spool-"))  # outside tmp_path: `nobody` may enter it
    try:
        spool_dir.chmod(0o755)
        lock = spool.RelayLock(str(spool_dir))
        assert lock.try_acquire()
        # The probe is standard library only, as alertq-enqueue is, so the system's Python runs it: the
        # venv's interpreter may live where `nobody` cannot go (pyenv under /root).
        probe = "import sys; from producer.spool import relay_alive; sys.exit(0 if relay_alive(sys.argv[1]) else 3)"
        argv = [SYSTEM_PYTHON, "-s", "-c", probe, str(spool_dir)]
        env = {"PYTHONPATH": str(Path(__file__).resolve().parents[1]), "PATH": "/usr/bin:/bin"}
        nobody = pwd.getpwnam("nobody").pw_name
        held = subprocess.run(argv, user=nobody, env=env, capture_output=True, check=False)
        lock.release()
        free = subprocess.run(argv, user=nobody, env=env, capture_output=True, check=False)
        assert (held.returncode, free.returncode) == (0, 3), held.stderr + free.stderr
    finally:
        shutil.rmtree(spool_dir, ignore_errors=True)
