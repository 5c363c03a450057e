"""What `alertq up` runs: the whole pipeline on one machine, one child process per part.

Relay, a worker per channel, the preview sink, the ack listener and forwarder, the escalator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from schemas.channels import MATTERMOST_DESTINATION, EmailSettings
from schemas.settings import Settings


@dataclass(frozen=True)
class Process:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)  # added to the supervisor's own environment
    about: str = ""  # one line for the operator: where it listens or what it talks to


def processes(settings: Settings) -> list[Process]:
    parts = [
        Process("relay", ["alertq", "relay"], about=f"spool {settings.spool.dir} -> {settings.broker.masked_urls[0]}"),
        *channel_workers(settings),
    ]
    if any(sink_env(settings, name) for name in settings.channels.enabled_names()):
        sink = settings.sink
        about = f"{sink.public_url()}/  preview page; SMTP {_connect_host(sink.host)}:{sink.smtp_port}"
        parts.append(Process("sink", ["alertq", "sink"], about=about))
    parts += ack_parts(settings)
    parts += escalator_parts(settings)
    return [route_to_sink(settings, part) for part in parts]


def sink_env(settings: Settings, channel: str) -> dict[str, str]:
    """Environment that makes `alertq worker <channel>` deliver to the local sink, or {} when the
    channel is disabled or has an endpoint of its own (`ChannelSettings.has_endpoint`)."""
    channels = settings.channels
    if channel not in channels.enabled_names():
        return {}
    config = channels.get(channel)
    if config.has_endpoint():
        return {}
    prefix = f"ALERTQ_CHANNELS__{channel.upper()}__"
    if isinstance(config, EmailSettings):  # the sink's SMTP side
        env = {f"{prefix}HOST": _connect_host(settings.sink.host), f"{prefix}PORT": str(settings.sink.smtp_port)}
        env[f"{prefix}SECURITY"] = "none"
        if not config.recipients:
            # Events without a contact e-mail still show up in the preview instead of failing.
            env[f"{prefix}RECIPIENTS"] = '["ops@alertq.local"]'
        return env
    if channel in SINK_CHAT_API:
        return chat_api_env(settings, channel)
    return {f"{prefix}URL": f"{settings.sink.public_url()}/hooks/{channel}/local"}


# The chats post to the sink in API mode, so a newcomer sees conversations (a root per incident, its
# thread, its edits): the sink's emulation takes any token and every channel name.
SINK_CHAT_API = {
    "mattermost": ("alertq-dev-token", "alertq/alerts", ""),
    "slack": ("xoxb-alertq-dev-token", "C0ALERTQ", "/api/"),
}


def chat_api_env(settings: Settings, channel: str) -> dict[str, str]:
    """A chat channel in API mode against the sink: its API URL, a development token, a channel (the
    one configured, if it is one API mode can post to)."""
    token, default_channel, path = SINK_CHAT_API[channel]
    prefix = f"ALERTQ_CHANNELS__{channel.upper()}__"
    env = {f"{prefix}API_URL": settings.sink.public_url() + path, f"{prefix}BOT_TOKEN": token}
    configured = getattr(settings.channels.get(channel), "channel", None)
    usable = configured and (channel == "slack" or MATTERMOST_DESTINATION.match(configured))
    if not usable:
        env[f"{prefix}CHANNEL"] = default_channel
    return env


def route_to_sink(settings: Settings, part: Process) -> Process:
    """Workers of channels with no real endpoint deliver to the sink (see sink_env); the ack listener and
    forwarder get the same chat API settings, to tell the chat about acknowledgements through the API."""
    if part.argv[:2] in (["alertq", "ack-listener"], ["alertq", "ack-forwarder"]):
        chats = {k: v for name in SINK_CHAT_API for k, v in sink_env(settings, name).items()}
        return replace(part, env={**chats, **part.env})
    if part.argv[:2] != ["alertq", "worker"] or len(part.argv) < 3:
        return part
    return replace(part, env={**sink_env(settings, part.argv[2]), **part.env})


def _connect_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104


def channel_workers(settings: Settings) -> list[Process]:
    """One `alertq worker <channel>` per channel that is enabled and either configured or routed to the
    preview sink (others would only crash-loop); with `worker.metrics_port` set, each gets its own port
    counting up from it."""
    result = []
    port = settings.worker.metrics_port
    for name in settings.channels.enabled_names():
        if settings.channels.problem(name) is not None and not sink_env(settings, name):
            continue
        argv = ["alertq", "worker", name]
        if port:
            argv += ["--metrics-port", str(port)]
            port += 1
        result.append(Process(f"worker-{name}", argv, about=_worker_about(settings, name)))
    return result


def _worker_about(settings: Settings, channel: str) -> str:
    if not sink_env(settings, channel):
        return "-> its configured endpoint"
    if channel in SINK_CHAT_API:
        two_way = getattr(settings.channels.get(channel), "two_way", False)
        path = "/api/v4/" if channel == "mattermost" else SINK_CHAT_API[channel][2]
        return f"-> the sink's {channel.capitalize()} API {settings.sink.public_url()}{path}" + (
            " (Acknowledge buttons)" if two_way else ""
        )
    if channel == "email":
        return f"-> the sink's SMTP {_connect_host(settings.sink.host)}:{settings.sink.smtp_port}"
    return f"-> the sink {settings.sink.public_url()}/hooks/{channel}/local"


def ack_parts(settings: Settings) -> list[Process]:
    """The ack listener once buttons are signed (`ack.signing_secret`: without it every click would be
    refused), the forwarder once its target is configured (without, e.g. no command file, it would
    only crash-loop). Neither runs with the defaults: `alertq up` logs which it left out and why."""
    import structlog

    log = structlog.get_logger("alertq.up")
    parts = []
    if settings.ack.signing_secret is not None:
        listener = f"http://{_connect_host(settings.ack_listener.host)}:{settings.ack_listener.port}"
        about = f"{listener}/mattermost/actions, {listener}/slack/actions"
        parts.append(Process("ack-listener", ["alertq", "ack-listener"], about=about))
    else:
        log.info("up.skipped", part="ack-listener", reason="ack.signing_secret is not set")
    reason = settings.ack_target.problem()
    if reason is None:
        parts.append(Process("ack-forwarder", ["alertq", "ack-forwarder"], about=_forwarder_about(settings)))
    else:
        log.info("up.skipped", part="ack-forwarder", reason=reason)
    return parts


def escalator_parts(settings: Settings) -> list[Process]:
    """The escalator once a routing file names contacts and policies; without one it has nothing to do."""
    if settings.routing_file is None:
        import structlog

        structlog.get_logger("alertq.up").info("up.skipped", part="escalator", reason="routing_file is not set")
        return []
    return [Process("escalator", ["alertq", "escalator"], about=f"routing {settings.routing_file}")]


def _forwarder_about(settings: Settings) -> str:
    target = settings.ack_target
    if target.kind == "nagios":
        shown = target.command_file is not None and target.command_file == settings.sink.core_command_file
        return f"-> command file {target.command_file}" + (" (shown on the preview page)" if shown else "")
    return f"-> {target.kind} {target.url}"
