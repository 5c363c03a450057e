"""What `alertq up` fills in to run the whole loop (alertq/loop_defaults.py): only what the settings leave
out, secrets made once and kept private, the demo escalation's delays shrinkable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from alertq.loop_defaults import DEMO_ROUTING, LoopDefaultsError, loop_defaults
from alertq.stack import processes
from schemas.routing import load_routing
from schemas.settings import Settings

SECRET = "s" * 40
SLACK_SECRET = "x" * 32


def settings(**values: Any) -> Settings:
    return Settings.model_validate(values)


def with_defaults(values: dict[str, Any], var: Path, scale: float = 1.0) -> tuple[Settings, dict[str, str]]:
    """The settings as `alertq up`'s parts see them: the defaults' ALERTQ_ variables applied on top."""
    env = loop_defaults(settings(**values), var, scale).env
    merged: dict[str, Any] = {k: dict(v) if isinstance(v, dict) else v for k, v in values.items()}
    for key, value in env.items():
        path = key.removeprefix("ALERTQ_").lower().split("__")
        node = merged
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return Settings.model_validate(merged), env


def test_with_nothing_configured_every_part_of_the_loop_runs(tmp_path: Path) -> None:
    complete, _ = with_defaults({}, tmp_path / "var")

    names = [p.name for p in processes(complete)]
    assert {"ack-listener", "ack-forwarder", "escalator", "sink"} <= set(names)
    assert complete.channels.mattermost.two_way and complete.channels.slack.two_way
    for chat in (complete.channels.mattermost, complete.channels.slack):  # Snooze, Recheck: lines to show
        assert list(chat.actions) == ["acknowledge", "snooze", "recheck", "unacknowledge"]
    assert complete.channels.mattermost.ack_url == "http://127.0.0.1:8090/mattermost/actions"
    assert complete.sink.slack_actions_url == "http://127.0.0.1:8090/slack/actions"
    assert complete.ack_target.command_file == (tmp_path / "var" / "nagios.cmd").resolve()
    assert complete.sink.core_command_file == complete.ack_target.command_file
    assert complete.ack_target.status_file is None  # the demo core has no status: nothing pretends it has
    assert complete.escalator.check_target is False
    assert complete.routing_file == DEMO_ROUTING
    assert complete.ack_listener.slack_signing_secret == complete.sink.slack_signing_secret


def test_the_signing_secret_is_made_once_private_and_reused(tmp_path: Path) -> None:
    var = tmp_path / "var"
    first = loop_defaults(settings(), var)
    again = loop_defaults(settings(), var)

    secret = first.env["ALERTQ_ACK__SIGNING_SECRET"]
    assert len(secret) == 64 and again.env["ALERTQ_ACK__SIGNING_SECRET"] == secret
    assert (var / "ack-signing-secret").stat().st_mode & 0o777 == 0o600
    assert (var / "slack-signing-secret").stat().st_mode & 0o777 == 0o600
    assert any("generated" in note for note in first.notes) and not again.notes
    assert all(secret not in note for note in first.notes)


def test_a_secret_file_too_short_to_sign_with_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "ack-signing-secret").write_text("0xdeadbeef\n")
    with pytest.raises(LoopDefaultsError, match="delete it") as refused:
        loop_defaults(settings(), tmp_path)
    assert "0xdeadbeef" not in str(refused.value) and "\n" not in str(refused.value)


def test_real_settings_win_over_every_default(tmp_path: Path) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(DEMO_ROUTING.read_text())
    real = {
        "ack": {"signing_secret": SECRET},
        "ack_listener": {"slack_signing_secret": SLACK_SECRET, "port": 9001},
        "channels": {"mattermost": {"two_way": False}, "slack": {"actions": ["acknowledge"]}},
        "ack_target": {"kind": "icinga2"},  # incomplete: left as it is, not replaced by the demo core
        "routing_file": str(routing),
        "sink": {"slack_actions_url": "http://listener.example.org/slack/actions"},
    }
    complete, env = with_defaults(real, tmp_path / "var")

    assert complete.ack.signing_secret is not None and complete.ack.signing_secret.get_secret_value() == SECRET
    assert complete.channels.mattermost.two_way is False
    assert not any(key.startswith("ALERTQ_CHANNELS__MATTERMOST__") for key in env)
    assert complete.channels.slack.two_way is True  # not set: the sink's chat gets its button
    assert complete.channels.slack.actions == ["acknowledge"]  # set: kept
    assert complete.ack_target.kind == "icinga2" and complete.ack_target.command_file is None
    assert complete.sink.core_command_file is None
    assert complete.routing_file == routing
    assert complete.sink.slack_actions_url == "http://listener.example.org/slack/actions"
    # The sink signs Slack clicks with the listener's own secret, so the listener accepts them.
    assert complete.sink.slack_signing_secret is not None
    assert complete.sink.slack_signing_secret.get_secret_value() == SLACK_SECRET
    assert "ALERTQ_ACK__SIGNING_SECRET" not in env
    assert not (tmp_path / "var" / "ack-signing-secret").exists()
    assert not (tmp_path / "var" / "nagios.cmd").exists()


def test_a_chat_with_a_real_endpoint_is_left_as_configured(tmp_path: Path) -> None:
    real = {"channels": {"slack": {"url": "https://hooks.slack.com/services/T/B/real"}}}
    complete, env = with_defaults(real, tmp_path / "var")

    assert complete.channels.slack.two_way is False
    assert not any(key.startswith("ALERTQ_CHANNELS__SLACK__") for key in env)
    assert "ALERTQ_SINK__SLACK_ACTIONS_URL" not in env
    assert complete.channels.mattermost.two_way is True


def test_the_demo_steps_can_be_shrunk(tmp_path: Path) -> None:
    complete, _ = with_defaults({}, tmp_path / "var", scale=0.1)

    assert complete.routing_file == (tmp_path / "var" / "demo-routing.toml").resolve()
    demo = load_routing(DEMO_ROUTING, None).policies["demo"]
    shrunk = load_routing(complete.routing_file, None).policies["demo"]
    assert [s.after.total_seconds() for s in demo.steps] == [30, 30]  # 30 s and 60 s after the problem
    assert [s.after.total_seconds() for s in shrunk.steps] == [3, 3]
    assert [s.notify for s in shrunk.steps] == [s.notify for s in demo.steps]


def test_without_a_channel_the_demo_steps_use_there_is_no_demo_escalation(tmp_path: Path) -> None:
    found = loop_defaults(settings(channels={"slack": {"enabled": False}}), tmp_path)

    assert "ALERTQ_ROUTING_FILE" not in found.env
    assert any("no demo escalation" in note and "slack" in note for note in found.notes)
