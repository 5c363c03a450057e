"""The operator's view of settings and topology: `alertq config …`, `alertq topology declare`, the README."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pika
import pytest

from alertq.commands.config import show_default
from broker import names, topology
from producer import liteconfig
from schemas.settings import Settings
from tests.conftest import VENV_BIN, run
from tests.support import amqp

README = Path(__file__).resolve().parents[1] / "README.md"


def test_config_check_shows_settings_with_every_secret_masked(alertq_env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "alertq.toml"
    config.write_text(
        '[channels.mattermost]\nurl = "https://mm.example.org/hooks/1nmqus1wsfr988e81sr8whqrte"\n'
        '[channels.email]\npassword = "smtp-pass-123"\n[ack]\nsigning_secret = "sign-me-456-with-at-least-32-chars"\n'
    )
    env = {
        **alertq_env,
        "ALERTQ_BROKER__URLS": "amqp://alertq:broker-pw-789@mq1:5672/,amqp://alertq:broker-pw-789@mq2/",
        "ALERTQ_CHANNELS__WEBHOOK__SIGNING_SECRET": "hook-secret-000-with-32-characters",
    }
    result = run(["alertq", "config", "check"], env)
    assert result.returncode == 0, result.stderr
    for secret in (
        "1nmqus1wsfr988e81sr8whqrte",
        "smtp-pass-123",
        "sign-me-456-with-at-least-32-chars",
        "broker-pw-789",
        "hook-secret-000-with-32-characters",
    ):
        assert secret not in result.stdout + result.stderr
    shown = json.loads(result.stdout)
    assert shown["broker"]["urls"] == ["amqp://alertq:***@mq1:5672/", "amqp://alertq:***@mq2/"]
    assert shown["channels"]["mattermost"]["url"] == "***"
    assert shown["channels"]["slack"]["url"] is None
    assert f"config file: {config}" in result.stderr


@pytest.mark.parametrize(
    ("env_extra", "toml", "field"),
    [
        ({"ALERTQ_RETRY__MAX_ATTEMPTS": "zero"}, "", "retry.max_attempts"),
        ({}, "[spool]\npoll_interval = -1\n", "spool.poll_interval"),
        ({}, "[chanels.slack]\nurl = 'x'\n", "chanels"),
        ({"ALERTQ_RETRY__DELAYS": "10,0"}, "", "retry"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_field(
    alertq_env: dict[str, str], tmp_path: Path, env_extra: dict[str, str], toml: str, field: str
) -> None:
    (tmp_path / "alertq.toml").write_text(toml)
    result = run(["alertq", "config", "check"], {**alertq_env, **env_extra})
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: invalid settings:")
    assert field in result.stderr


def test_enqueue_reads_the_same_settings_as_every_other_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in ("ALERTQ_SPOOL__DIR", "ALERTQ_BROKER__URLS", "ALERTQ_BROKER__CONNECT_TIMEOUT"):
        monkeypatch.delenv(key, raising=False)
    config = tmp_path / "alertq.toml"
    config.write_text(
        '[spool]\ndir = "/srv/spool"\n[broker]\nurls = ["amqp://a/", "amqp://b/"]\nconnect_timeout = 2.5\n'
    )
    monkeypatch.setenv("ALERTQ_CONFIG", str(config))
    for env in ({}, {"ALERTQ_SPOOL__DIR": "/env/spool", "ALERTQ_BROKER__URLS": "amqp://x/,amqp://y/"}):
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        lite, full = liteconfig.LiteConfig(), Settings()
        assert lite.spool_dir() == str(full.spool.dir)
        assert list(lite.broker_urls()) == [u.get_secret_value() for u in full.broker.urls]
        assert lite.connect_timeout() == full.broker.connect_timeout


def test_topology_declare_is_idempotent_and_builds_the_documented_queues(
    alertq_env: dict[str, str], amqp_url: str
) -> None:
    for _ in range(2):
        result = run(["alertq", "topology", "declare"], alertq_env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("declared ")
    plan = topology.plan(Settings())
    connection = amqp.connect(amqp_url)
    try:
        channel = connection.channel()
        for queue in plan.queues:
            channel.queue_declare(queue.name, passive=True)  # raises if missing
        # Same arguments again: accepted; different arguments would be refused (406).
        channel.queue_declare(
            names.notify_queue("slack"),
            durable=True,
            arguments=next(q for q in plan.queues if q.name == names.notify_queue("slack")).arguments,
        )
        with pytest.raises(pika.exceptions.ChannelClosedByBroker):
            channel.queue_declare(names.notify_queue("slack"), durable=True, arguments={"x-queue-type": "classic"})
    finally:
        if connection.is_open:
            connection.close()
    assert {q.name for q in plan.queues} >= {
        "alertq.dead",
        "alertq.acks",
        "alertq.delay.10s",
        *(names.notify_queue(c) for c in ("mattermost", "slack", "email", "webhook")),
    }
    # No routing_file: no escalator to read alertq.escalator, so it is not declared (it would only grow).
    assert names.ESCALATOR_QUEUE not in {q.name for q in plan.queues}
    assert amqp.queue_exists(amqp_url, names.ESCALATOR_QUEUE) is False


def test_a_delayed_retry_comes_back_to_its_channel_only_after_its_delay(declared: Settings, amqp_url: str) -> None:
    connection = amqp.connect(amqp_url)
    try:
        channel = connection.channel()
        queue, binding = topology.delay_queue(1)
        topology.apply(channel, topology.Plan([], [queue], [binding]))
        channel.confirm_delivery()
        channel.basic_publish(
            names.DELAY_EXCHANGE,
            names.retry_key("webhook"),
            b'{"x": 1}',
            pika.BasicProperties(headers={names.HEADER_DELAY: "1"}, delivery_mode=2),
            mandatory=True,
        )
        assert amqp.depth(amqp_url, names.notify_queue("webhook")) == 0
    finally:
        connection.close()
    [back] = amqp.take(amqp_url, names.notify_queue("webhook"), 1, timeout=20)
    assert (back.routing_key, back.body) == ("retry.webhook", b'{"x": 1}')
    assert amqp.depth(amqp_url, names.ESCALATOR_QUEUE) == 0, "a retry is not news for the escalator"


def test_readme_configuration_reference_is_current(alertq_env: dict[str, str]) -> None:
    result = run(["alertq", "config", "reference"], alertq_env)
    assert result.returncode == 0, result.stderr
    block = re.search(
        r"<!-- settings-reference:start -->\n(.*?)<!-- settings-reference:end -->", README.read_text(), re.S
    )
    assert block is not None
    assert block.group(1).strip() == result.stdout.strip(), "README is stale: run `alertq config reference`"


def test_every_readme_default_is_the_one_alertq_config_check_shows(tmp_path: Path) -> None:
    """The README's defaults against the settings in force with nothing configured, read through the
    other command: a default that only a default_factory sets (Slack's 1/s) cannot slip through."""
    (tmp_path / "alertq.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTQ_")}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", ALERTQ_CONFIG=str(tmp_path / "alertq.toml"))
    checked = run(["alertq", "config", "check"], env)
    assert checked.returncode == 0, checked.stderr
    in_force = json.loads(checked.stdout)

    rows = re.findall(r"^\| `ALERTQ_([A-Z0-9_]+)` \| `[^`]+` \| ([^|]+) \|", README.read_text(), re.M)
    assert len(rows) > 100
    for env_name, readme_default in rows:
        value: Any = in_force
        for part in env_name.lower().split("__"):
            value = value[part]
        assert readme_default.strip() == show_default(value), f"ALERTQ_{env_name}"


def test_every_command_has_help_with_examples(alertq_env: dict[str, str]) -> None:
    top = run(["alertq", "--help"], alertq_env)
    commands = re.findall(r"^  ([a-z-]+)\s", top.stdout.split("Commands:")[1], re.M)
    assert {"relay", "worker", "up", "sink", "status", "dlq", "topology", "config"} <= set(commands)
    for command in commands:
        result = run(["alertq", command, "--help"], alertq_env)
        assert result.returncode == 0 and "Usage:" in result.stdout, command
