"""Settings of each delivery channel: `[channels.<name>]` in TOML, `ALERTQ_CHANNELS__<NAME>__…` in env.

Adding a channel is one module in `workers/channels/` and one settings class here plus its field in
`ChannelsSettings`. What every channel shares (enabled, rate limit, HTTP client) is in `ChannelSettings`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr

from schemas.fields import PlainHttpUrl, ProxyUrl, RequiredSecretHttpUrl, SecretHttpUrl, SigningSecret


class _Section(BaseModel):
    # Inputs stay out of error texts: many are secrets (schemas/fields.py).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class RateLimit(_Section):
    """Token bucket per target (one webhook URL, one SMTP server): steady rate plus a short burst."""

    per_second: float = Field(10.0, gt=0, description="Sustained deliveries per second to one target.")
    burst: int = Field(20, ge=1, description="Deliveries allowed at once after a quiet spell.")


class HttpSettings(_Section):
    """Every outbound HTTP call of a channel: timeouts, TLS, proxy (openITCOCKPIT's "Use Proxy Server")."""

    connect_timeout: float = Field(5.0, gt=0, description="Seconds to connect.")
    read_timeout: float = Field(10.0, gt=0, description="Seconds to wait for the answer (kept below the heartbeat).")
    verify_tls: bool = Field(True, description="Verify the server's certificate. Prefer ca_bundle to turning this off.")
    ca_bundle: Path | None = Field(None, description="PEM file of CAs to trust, for self-signed servers.")
    proxy: ProxyUrl = Field(None, description="Proxy URL for this channel, http:// or https:// (may hold credentials).")


class ChannelSettings(_Section):
    """What every channel has."""

    enabled: bool = Field(True, description="Run a worker for this channel and accept `--channel` for it.")
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    http: HttpSettings = Field(default_factory=HttpSettings)


class AckSettings(_Section):
    """Signing of chat "Acknowledge" buttons (`[ack]`): the channels sign, the ack listener verifies."""

    signing_secret: SigningSecret | None = Field(
        None,
        description="HMAC key of the button tokens, at least 32 characters (`openssl rand -hex 32`). "
        "Needed when a channel has two_way on.",
    )
    token_ttl: int = Field(86_400, gt=0, description="Seconds a button stays usable after it was sent.")


class TwoWayChannelSettings(ChannelSettings):
    """A chat channel that can carry a signed Acknowledge button.

    The signing settings are the top-level `[ack]` section, shared with the ack listener; `Settings`
    hands them to each two-way channel (`ack` below), so a notifier needs only its own settings."""

    two_way: bool = Field(False, description="Add a signed Acknowledge button that calls the ack listener.")
    _ack: AckSettings = PrivateAttr(default_factory=AckSettings)

    @property
    def ack(self) -> AckSettings:
        return self._ack

    def with_ack(self, ack: AckSettings) -> TwoWayChannelSettings:
        self._ack = ack
        return self


class MattermostSettings(TwoWayChannelSettings):
    url: SecretHttpUrl = Field(None, description="Incoming webhook URL, https://mm.example.org/hooks/<key>.")
    channel: str | None = Field(None, description="Channel override (the webhook must allow it).")
    username: str | None = Field(None, description="Poster name override (needs Mattermost's override setting).")
    icon_url: PlainHttpUrl = None
    ui_base_url: PlainHttpUrl = Field(
        None,
        description="openITCOCKPIT base URL, e.g. https://oitc.example.org, to link host and service names to the UI.",
    )
    ack_url: PlainHttpUrl = Field(None, description="Public URL of `alertq ack-listener`'s /mattermost/actions.")


class SlackSettings(TwoWayChannelSettings):
    rate_limit: RateLimit = Field(default_factory=lambda: RateLimit(per_second=1.0, burst=3))
    url: SecretHttpUrl = Field(None, description="Incoming webhook URL, https://hooks.slack.com/services/T…/B…/….")
    ui_base_url: PlainHttpUrl = None
    two_way: bool = Field(
        False,
        description="Add a signed Acknowledge button (Slack app interactivity must "
        "point at the ack listener's /slack/actions).",
    )


class EmailSettings(ChannelSettings):
    host: str = "127.0.0.1"
    port: int = Field(25, ge=1, le=65535)
    security: Literal["none", "starttls", "ssl"] = "none"
    username: str | None = None
    password: SecretStr | None = None
    timeout: float = Field(10.0, gt=0)
    verify_tls: bool = Field(True, description="Verify the server's certificate (ssl and starttls).")
    ca_bundle: Path | None = Field(None, description="PEM file of CAs to trust, for a self-signed SMTP server.")
    sender: str = Field("alertq@localhost", description="From: address.")
    recipients: list[str] = Field(default_factory=list, description="To: when the event names no contact e-mail.")
    ui_base_url: PlainHttpUrl = None


class WebhookSettings(ChannelSettings):
    url: SecretHttpUrl = Field(None, description="Where to POST the event JSON (an http(s) URL).")
    urls: dict[str, RequiredSecretHttpUrl] = Field(
        default_factory=dict,
        description="More endpoints by contact name: an event whose contact.name is a key goes there, "
        "any other to `url`. Each URL is its own target (rate limit, lane). "
        'Env: ALERTQ_CHANNELS__WEBHOOK__URLS=\'{"sms-team": "https://…"}\'.',
    )
    signing_secret: SigningSecret | None = Field(
        None,
        description="If set (at least 32 characters), an HMAC-SHA256 of the body is sent in `signature_header` "
        "as `sha256=<hex>`.",
    )
    signature_header: str = "X-Alertq-Signature"
