"""alertq's settings: environment (`ALERTQ_…`, nested with `__`) over a TOML file over defaults.

The TOML file is `$ALERTQ_CONFIG`, else `./alertq.toml`, else `/etc/alertq/alertq.toml`, whichever
exists first. The defaults run everything on one machine with no setup: RabbitMQ on localhost, the
spool under `./var`. Secrets are `SecretStr`; `alertq config check` prints them masked.

`producer.liteconfig` reads the few settings the enqueue command needs with the standard library
alone; a test keeps both readers in agreement.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from schemas.ack_listener import AckListenerSettings, AckTargetSettings
from schemas.channels import (
    AckSettings,
    ChannelSettings,
    ConversationSettings,
    EmailSettings,
    MattermostSettings,
    SlackSettings,
    TwoWayChannelSettings,
    WebhookSettings,
)
from schemas.fields import BrokerUrl, BrokerUrls, StateStoreUrl, split_list
from schemas.sink import SinkSettings

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"
CONFIG_SEARCH_PATH = (Path("alertq.toml"), Path("/etc/alertq/alertq.toml"))


def config_file() -> Path | None:
    """The TOML file in force, or None. An `ALERTQ_CONFIG` that names a missing file is an error."""
    named = os.environ.get("ALERTQ_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"ALERTQ_CONFIG names {named!r}, which is not a file")
        return path
    return next((p for p in CONFIG_SEARCH_PATH if p.is_file()), None)


def mask_url(url: str) -> str:
    """`amqp://user:***@host/vhost`: enough to tell which broker, nothing to log in with.

    The host and port are kept as written, not parsed: a URL with a bad port or host must still be
    shown masked, not end in a traceback. Whatever cannot be split at all is shown as `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    netloc = f"{userinfo.split(':', 1)[0]}:***@{hostport}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _Section(BaseModel):
    # Inputs stay out of error texts: many are secrets (schemas/fields.py).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class BrokerSettings(_Section):
    urls: Annotated[list[BrokerUrl], NoDecode, BeforeValidator(split_list), BrokerUrls] = Field(
        default_factory=lambda: [SecretStr(DEFAULT_BROKER_URL)],
        description="AMQP URLs, tried in order (one per cluster node). Comma-separated in the environment.",
    )
    heartbeat: int = Field(30, ge=0, description="AMQP heartbeat in seconds.")
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to open a TCP+AMQP connection.")
    blocked_connection_timeout: float = Field(
        60.0,
        gt=0,
        description="Seconds a connection may stay blocked by a broker alarm before it is dropped.",
    )
    confirm_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a publisher confirm.")
    reconnect_max_delay: float = Field(30.0, gt=0, description="Cap of the reconnect backoff, seconds.")
    delivery_limit: int = Field(
        20,
        ge=1,
        description="x-delivery-limit of the notify queues: redeliveries before a crash-looping "
        "message is dead-lettered by the broker.",
    )

    @property
    def masked_urls(self) -> list[str]:
        return [mask_url(u.get_secret_value()) for u in self.urls]


class SpoolSettings(_Section):
    dir: Path = Field(Path("var/spool"), description="Where alertq-enqueue stores events until they are published.")
    poll_interval: float = Field(0.05, gt=0, le=1, description="Seconds between the relay's looks for new files.")
    publish_window: int = Field(
        256, ge=1, le=10_000, description="Events the relay publishes before it waits for their confirms."
    )


class RetrySettings(_Section):
    delays: Annotated[list[int], NoDecode, BeforeValidator(split_list)] = Field(
        default_factory=lambda: [10, 60, 300, 900],
        description="Broker-held retry delays in seconds, one tier per attempt; the last repeats.",
    )
    max_attempts: int = Field(10, ge=1, description="Delivery attempts before a notification is dead-lettered.")
    max_age: float = Field(
        3600.0,
        gt=0,
        description="Seconds after creation (or after its last `alertq dlq replay`) when a notification "
        "is dead-lettered as expired: news that old helps nobody.",
    )

    @model_validator(mode="after")
    def _delays_positive(self) -> RetrySettings:
        if not self.delays or any(d <= 0 for d in self.delays):
            raise ValueError("retry.delays needs at least one delay, each a positive number of seconds")
        return self


class WorkerSettings(_Section):
    """`alertq worker <channel>`: how much it takes from the broker and how it spreads the work."""

    prefetch: int = Field(200, ge=1, le=5000, description="Unacked messages one worker holds (basic.qos).")
    lane_concurrency: int = Field(
        4, ge=1, le=64, description="Deliveries in parallel to one target (one lane of threads per target)."
    )
    lane_backlog: int = Field(
        50,
        ge=1,
        description="Messages one target may hold in this worker before it can count as congested; "
        "more for a congested target are parked in the broker (`park_delay`), so a slow target cannot "
        "fill the prefetch window and stall the others.",
    )
    park_after: float = Field(
        1.0, ge=0, description="A full lane counts as congested once its oldest waiting message waited this long."
    )
    park_delay: int = Field(
        10, ge=1, description="Seconds a message for a congested lane waits in the broker (no attempt counted)."
    )
    connect_retries: int = Field(
        2, ge=0, le=10, description="Quick in-process retries when the endpoint cannot be reached at all."
    )
    connect_retry_wait: float = Field(0.5, ge=0, description="Seconds before the first quick retry (doubles).")
    shutdown_grace: float = Field(
        30.0, gt=0, description="Seconds SIGTERM waits for deliveries in progress before leaving them to the broker."
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="Port of /metrics and /healthz (0: off). `alertq up` adds 1 per worker."
    )
    metrics_host: str = Field("127.0.0.1", description="Address /metrics and /healthz listen on.")
    one_cpu: bool = Field(
        True,
        description="Keep the worker's threads on one CPU, the one fewest other workers on this host hold: "
        "spread over cores, every hand-over of Python's GIL between them is a cross-core wake-up "
        "(measured: twice the CPU per delivery).",
    )


class EscalatorSettings(_Section):
    """`alertq escalator`: time-based escalation of unacknowledged problems (needs `routing_file`)."""

    prefetch: int = Field(
        100, ge=1, le=5000, description="Unacked messages the escalator holds (events, acks and timers)."
    )
    check_target: bool = Field(
        False,
        description="Before each step, ask the monitoring target ([ack_target]) whether the problem is still "
        "unacknowledged; an unreachable target does not stop the step (fail open).",
    )
    sweep_after: float = Field(
        60.0,
        gt=0,
        description="A step this many seconds past due with no timer seen is sent anyway (its timer was lost, "
        "e.g. with a broker's data); the claim in the state store keeps it from going out twice.",
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Port of /metrics and /healthz (0: off).")
    metrics_host: str = Field("127.0.0.1", description="Address /metrics and /healthz listen on.")


class ChannelsSettings(_Section):
    """One entry per channel; the key is the channel name in `--channel` and in `notify.<channel>`."""

    mattermost: MattermostSettings = Field(default_factory=MattermostSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)

    def enabled_names(self) -> list[str]:
        return [name for name in type(self).model_fields if getattr(self, name).enabled]

    def get(self, name: str) -> ChannelSettings:
        if name not in type(self).model_fields:
            raise KeyError(f"no channel {name!r}; channels: {', '.join(type(self).model_fields)}")
        settings: ChannelSettings = getattr(self, name)
        return settings

    def problem(self, name: str) -> str | None:
        """Why `alertq worker <name>` cannot run (one line), or None: the one answer to "is this channel
        configured?", for the worker command, the notifiers and `alertq up`."""
        known = list(type(self).model_fields)
        if name not in known:
            return f"unknown channel {name!r}; channels: {', '.join(known)}"
        config = self.get(name)
        if not config.enabled:
            return f"channel {name!r} is disabled (channels.{name}.enabled = false)"
        return config.problem(name)

    @model_validator(mode="after")
    def _fallbacks_exist(self) -> ChannelsSettings:
        """A fallback names another channel that is on: one that is not would leave the copy nowhere to go."""
        known = list(type(self).model_fields)
        for name in known:
            config = self.get(name)
            if not config.enabled:
                continue
            for fallback in config.fallback:
                if fallback not in known:
                    raise PydanticCustomError(
                        "fallback", f"channels.{name}.fallback: no channel {fallback!r}; channels: {', '.join(known)}"
                    )
                if fallback == name:
                    raise PydanticCustomError("fallback", f"channels.{name}.fallback names the channel itself")
                if not self.get(fallback).enabled:
                    raise PydanticCustomError("fallback", f"channels.{name}.fallback: channel {fallback!r} is disabled")
            if len(set(config.fallback)) != len(config.fallback):
                raise PydanticCustomError("fallback", f"channels.{name}.fallback names a channel twice")
        return self


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = Field(
        "auto", description="auto: JSON lines when stderr is not a terminal, readable colours when it is."
    )


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="ALERTQ_", env_nested_delimiter="__", extra="forbid", hide_input_in_errors=True
    )

    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    spool: SpoolSettings = Field(default_factory=SpoolSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    escalator: EscalatorSettings = Field(default_factory=EscalatorSettings)
    channels: ChannelsSettings = Field(default_factory=ChannelsSettings)
    conversations: ConversationSettings = Field(default_factory=ConversationSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    ack: AckSettings = Field(default_factory=AckSettings)
    sink: SinkSettings = Field(default_factory=SinkSettings)
    ack_listener: AckListenerSettings = Field(default_factory=AckListenerSettings)
    ack_target: AckTargetSettings = Field(default_factory=AckTargetSettings)
    routing_file: Path | None = Field(
        None, description="The escalator's routing file (contacts, groups, policies); see docs/routing.example.toml."
    )
    state_store: StateStoreUrl = Field(
        "sqlite:///var/alertq.db",
        description="The state store (escalator incidents, the ack listener's used buttons): `sqlite:///path` or "
        "`postgresql://user@host/db` (shared by escalators or ack listeners on several hosts).",
    )

    @model_validator(mode="after")
    def _share_ack_signing(self) -> Settings:
        # Two-way channels sign with the same [ack] settings the ack listener verifies with.
        for name in type(self.channels).model_fields:
            channel = getattr(self.channels, name)
            if isinstance(channel, TwoWayChannelSettings):
                channel.with_ack(self.ack).with_conversations(self.conversations)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)
