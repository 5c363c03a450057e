"""What `alertq up` fills in where the settings say nothing, so that `make run` shows the whole loop:
a post with an Acknowledge button, the click, the chat updated, the line the monitoring core read, and
an escalation step when nobody clicks.

Only `alertq up` applies these, as `ALERTQ_…` variables in its own environment (its children inherit
it), and only for settings that neither the environment nor the TOML file set: real settings always
win, and no other command ever sees these defaults.

- `ack.signing_secret`: generated on the first start into `var/ack-signing-secret` (0600), reused later;
- the chats that post to the sink (alertq/stack.py) get `two_way`, Mattermost its `ack_url`, and the
  sink signs Slack clicks with the listener's Slack secret (`var/slack-signing-secret`, made alike);
- those chats show every action (`actions`: acknowledge, snooze, recheck, unacknowledge), so a click on
  Snooze or Recheck now shows its command line too;
- `[ack_target]`, when nothing of it is set: kind nagios, `command_file` = `var/nagios.cmd`, a plain file
  (a real core's is a FIFO) that the sink's page shows as what the monitoring core received. This demo
  core keeps no state: there is no status.dat to ask whether a problem is still open, so the ack path's
  check answers "cannot tell" and acknowledges, as it does for any nagios target without
  `status_file`; the escalator's `check_target` stays off. No check is weakened: the same settings
  with a real core behave the same way, and a user who sets `status_file` gets the check.
- `routing_file`: deploy/local/demo-routing.toml (steps 30 s and 60 s after a problem); `step_scale`
  shrinks its delays (a copy under var/), for tests.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from alertq.stack import SINK_CHAT_API, sink_env
from schemas.actions import ACTIONS
from schemas.fields import MIN_SECRET_LENGTH
from schemas.routing import RoutingError, load_routing
from schemas.settings import Settings

DEMO_ROUTING = Path(__file__).resolve().parents[1] / "deploy" / "local" / "demo-routing.toml"
_AFTER = re.compile(r'^(\s*after\s*=\s*)"(\d+)s"', re.MULTILINE)


class LoopDefaultsError(Exception):
    """A file under var/ that cannot be used; the message is one line saying what to do."""


@dataclass
class LoopDefaults:
    env: dict[str, str] = field(default_factory=dict)  # ALERTQ_… settings to add for every part
    notes: list[str] = field(default_factory=list)  # one line each, for the operator
    core_command_file: Path | None = None  # the demo core's command file, when the demo core is used
    routing_file: Path | None = None  # the demo routing file, when it is used


def loop_defaults(settings: Settings, var: Path, step_scale: float = 1.0) -> LoopDefaults:
    """The settings `alertq up` adds to `settings` (those in force) to close the loop on this machine."""
    result = LoopDefaults()
    env = result.env
    listener = f"http://{_connect_host(settings.ack_listener.host)}:{settings.ack_listener.port}"
    if settings.ack.signing_secret is None:
        env["ALERTQ_ACK__SIGNING_SECRET"] = _secret_file(var / "ack-signing-secret", result)
    for channel in SINK_CHAT_API:
        if not sink_env(settings, channel):
            continue  # disabled, or posting to a real chat: its settings are the user's
        config = settings.channels.get(channel)
        prefix = f"ALERTQ_CHANNELS__{channel.upper()}__"
        if "two_way" not in config.model_fields_set:
            env[f"{prefix}TWO_WAY"] = "true"
        elif not getattr(config, "two_way", False):
            continue  # turned off on purpose: no button, so nothing for it to call
        if "actions" not in config.model_fields_set:
            env[f"{prefix}ACTIONS"] = ",".join(ACTIONS)  # every one: Snooze and Recheck show their lines too
        if channel == "mattermost" and getattr(config, "ack_url", None) is None:
            env[f"{prefix}ACK_URL"] = f"{listener}/mattermost/actions"
    if "slack" in SINK_CHAT_API and sink_env(settings, "slack"):
        _slack_clicks(settings, var, listener, result)
    if not settings.ack_target.model_fields_set:
        command_file = (var / "nagios.cmd").resolve()
        _ensure_file(command_file)
        result.core_command_file = command_file
        env["ALERTQ_ACK_TARGET__KIND"] = "nagios"
        env["ALERTQ_ACK_TARGET__COMMAND_FILE"] = str(command_file)
        if settings.sink.core_command_file is None:
            env["ALERTQ_SINK__CORE_COMMAND_FILE"] = str(command_file)
    if settings.routing_file is None and DEMO_ROUTING.is_file():
        try:
            load_routing(DEMO_ROUTING, set(settings.channels.enabled_names()))
        except RoutingError as exc:  # e.g. Slack disabled: the demo's steps name it
            result.notes.append(f"no demo escalation: {exc}")
            return result
        routing = DEMO_ROUTING if step_scale == 1.0 else _scaled_routing(var, step_scale)
        result.routing_file = routing
        env["ALERTQ_ROUTING_FILE"] = str(routing)
    return result


def apply(defaults: LoopDefaults) -> None:
    """Put the defaults into this process's environment, which every part inherits."""
    os.environ.update(defaults.env)


def _slack_clicks(settings: Settings, var: Path, listener: str, result: LoopDefaults) -> None:
    """Slack clicks go from the sink to the listener, signed with one secret both know: the user's when
    either side has one, else one generated under var/."""
    env = result.env
    if settings.sink.slack_actions_url is None:
        env["ALERTQ_SINK__SLACK_ACTIONS_URL"] = f"{listener}/slack/actions"
    listener_secret = settings.ack_listener.slack_signing_secret
    sink_secret = settings.sink.slack_signing_secret
    if listener_secret is None and sink_secret is None:
        generated = _secret_file(var / "slack-signing-secret", result)
        env["ALERTQ_ACK_LISTENER__SLACK_SIGNING_SECRET"] = generated
        env["ALERTQ_SINK__SLACK_SIGNING_SECRET"] = generated
    elif listener_secret is None and sink_secret is not None:
        env["ALERTQ_ACK_LISTENER__SLACK_SIGNING_SECRET"] = sink_secret.get_secret_value()
    elif sink_secret is None and listener_secret is not None:
        env["ALERTQ_SINK__SLACK_SIGNING_SECRET"] = listener_secret.get_secret_value()


def _secret_file(path: Path, result: LoopDefaults) -> str:
    """The secret kept in `path` (made on the first start: 64 hex digits, readable by its owner only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text().strip()
        if len(secret) < MIN_SECRET_LENGTH:
            raise LoopDefaultsError(
                f"{path} holds no usable secret (at least {MIN_SECRET_LENGTH} characters): delete it, "
                "and `alertq up` makes a new one"
            ) from None
        return secret
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w") as out:
        out.write(secret + "\n")
    result.notes.append(f"generated {path} (kept for later starts)")
    return secret


def _ensure_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))


def _scaled_routing(var: Path, scale: float) -> Path:
    """The demo routing file with every `after = "<n>s"` multiplied by `scale` (at least 1 s)."""
    text = DEMO_ROUTING.read_text()
    scaled = _AFTER.sub(lambda m: f'{m.group(1)}"{max(1, round(int(m.group(2)) * scale))}s"', text)
    path = var / "demo-routing.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"# {DEMO_ROUTING.name} with its delays times {scale} (alertq up --demo-step-scale)\n" + scaled)
    return path.resolve()


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
