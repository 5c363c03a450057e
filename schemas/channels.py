"""Settings of each delivery channel: `[channels.<name>]` in TOML, `ALERTQ_CHANNELS__<NAME>__…` in env.

Adding a channel is one module in `workers/channels/` (named in its registry) and one settings class
here plus its field in `ChannelsSettings`. What every channel shares (enabled, rate limit, HTTP
client) is in `ChannelSettings`. Each class answers, for the worker, for `alertq worker` and for
`alertq up` alike, whether its settings can deliver (`problem`) and whether the operator named an
endpoint at all (`has_endpoint`; `alertq up` points the channel at its preview sink otherwise).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    model_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import NoDecode

from schemas.actions import Action, check_snooze_choice
from schemas.fields import (
    BotToken,
    PlainHttpUrl,
    ProxyUrl,
    RequiredSecretHttpUrl,
    SecretHttpUrl,
    SigningSecret,
    StateStoreUrl,
    split_list,
)

SnoozeChoice = Annotated[str, AfterValidator(check_snooze_choice)]


def _acknowledge_only() -> list[Action]:
    return ["acknowledge"]


SLACK_API_URL = "https://slack.com/api/"
# Mattermost destinations in API mode: `team/channel` (the names in the URL) or `@user`.
MATTERMOST_DESTINATION = re.compile(r"^(?:[^/\s@]+/[^/\s@]+|@[^/\s@]+)$")

# Deliberately plain: one address, no display name, no whitespace or control characters; anything
# else in an e-mail setting or an event's contact e-mail would be a header-injection attempt or a typo.
PLAIN_ADDRESS = re.compile(r"^[^\s@<>,;\"'()\[\]\\]+@[^\s@<>,;\"'()\[\]\\]+$")


def _given(url: SecretStr | None) -> bool:
    return url is not None and bool(url.get_secret_value())


def _no_url(name: str) -> str:
    return f"channel {name!r} has no URL: set channels.{name}.url (or ALERTQ_CHANNELS__{name.upper()}__URL)"


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
    fallback: Annotated[list[str], NoDecode, BeforeValidator(split_list)] = Field(
        default_factory=list,
        description="Channels that get one copy of a notification this channel gives up on (dead letter "
        '`permanent`, `max-attempts` or `expired`), with a note why; e.g. `["email"]`. '
        "Comma-separated in the environment.",
    )

    def problem(self, name: str) -> str | None:
        """Why channel `name` cannot deliver with these settings (one line naming the setting), or None."""
        return None

    def has_endpoint(self) -> bool:
        """Whether the operator named where this channel delivers."""
        return True


class AckSettings(_Section):
    """Signing of chat "Acknowledge" buttons (`[ack]`): the channels sign, the ack listener verifies."""

    signing_secret: SigningSecret | None = Field(
        None,
        description="HMAC key of the button tokens, at least 32 characters (`openssl rand -hex 32`). "
        "Needed when a channel has two_way on.",
    )
    token_ttl: int = Field(86_400, gt=0, description="Seconds a button stays usable after it was sent.")
    snooze_choices: Annotated[list[SnoozeChoice], NoDecode, BeforeValidator(split_list)] = Field(
        default_factory=lambda: ["1h", "4h", "until 08:00"],
        min_length=1,
        max_length=5,
        description="The Snooze buttons: `<n>m`, `<n>h`, `<n>d` or `until HH:MM` (the next such time, local to "
        "the ack listener); each a downtime from the click.",
    )


class ConversationSettings(_Section):
    """Chat channels in API mode keep one conversation per incident and destination (workers/conversations/)."""

    store: StateStoreUrl = Field(
        "sqlite:///var/conversations.db",
        description="Where the conversations are kept (root post per incident, what each event did): "
        "`sqlite:///path` for workers on one host, `postgresql://user@host/db` for workers on several. "
        "Webhook mode keeps its dedupe window here too.",
    )
    claim_lease: float = Field(
        30.0,
        gt=0,
        description="Seconds a worker's claim to post a root (or an edit) holds; a claim older than this "
        "(its worker died) is taken over.",
    )
    wait_for_root: float = Field(
        60.0,
        ge=0,
        description="A follow-up (acknowledgement, recovery, …) that finds no conversation waits this long "
        "after its creation for its PROBLEM's root (another worker may still have it) before it is posted "
        "as a root of its own.",
    )
    follow_up_delay: int = Field(
        1,
        ge=1,
        description="Seconds a follow-up whose root is still being posted waits in the broker before it "
        "looks again (not counted as a delivery attempt).",
    )


class FoldSettings(_Section):
    """Alert storms: what a chat destination cannot take one by one goes out as digests."""

    enabled: bool = Field(
        True,
        description="Fold a storm into digests: when more notifications wait for one destination than its "
        "rate limit lets out within `window` seconds, they go out as one digest (a headline with counts and "
        "a line per problem), split into as few posts as the chat's size limits need. API mode edits the "
        "digest as its problems recover; webhook mode folds recoveries into digests of their own.",
    )
    window: float = Field(
        2.0,
        gt=0,
        description="Seconds of the destination's rate limit the waiting notifications may take one by one; "
        "more than that are folded. A single problem in quiet times is always posted alone.",
    )
    max_items: int = Field(
        200,
        ge=2,
        le=500,
        description="The most problems one digest post lists (the chat's size limit may split it sooner). "
        "Fewer, longer digests keep a storm's recoveries to few edits.",
    )
    max_alone: int = Field(
        5,
        ge=1,
        le=100,
        description="The most problems a destination posts alone within `hold` seconds once they have spent "
        "the chat's burst: more are a storm and fold, even when they trickle in no faster than the chat's "
        "rate limit (a flood of lone posts all the same). A chat that takes far more than comes is not "
        "affected.",
    )
    hold: float = Field(
        20.0,
        ge=0,
        le=60,
        description="In a storm: the most seconds a destination collects what comes after a digest before "
        "its next post, so a storm the core hands over over a minute is a few digests (and their edits on "
        "recovery touch few posts), not one post a second. 0: no hold. Quiet times are not affected.",
    )
    quiet: float = Field(
        2.0,
        ge=0,
        le=60,
        description="In a storm: a hold ends early once nothing new came for this many seconds, so the "
        "storm's tail is posted as soon as the core has handed it over. 0: holds always last `hold`.",
    )


class TwoWayChannelSettings(ChannelSettings):
    """A chat channel that can carry a signed Acknowledge button.

    The signing settings are the top-level `[ack]` section, shared with the ack listener; `Settings`
    hands them to each two-way channel (`ack` below), so a notifier needs only its own settings."""

    two_way: bool = Field(False, description="Add a signed Acknowledge button that calls the ack listener.")
    actions: Annotated[list[Action], NoDecode, BeforeValidator(split_list)] = Field(
        default_factory=_acknowledge_only,
        description="The buttons two-way posts carry: acknowledge, snooze, recheck (on problems), unacknowledge "
        "(on acknowledgements).",
    )
    dedupe_window: float = Field(
        120.0,
        ge=0,
        description="Webhook mode: the same notification of an incident (type, number, escalation step) for "
        "another contact that lands in the same destination within this many seconds of the first is not "
        "posted again (0: off). API mode folds them into the incident's conversation whenever they come.",
    )
    fold: FoldSettings = Field(default_factory=FoldSettings)
    _ack: AckSettings = PrivateAttr(default_factory=AckSettings)
    _conversations: ConversationSettings = PrivateAttr(default_factory=lambda: ConversationSettings())

    @property
    def ack(self) -> AckSettings:
        return self._ack

    def with_ack(self, ack: AckSettings) -> TwoWayChannelSettings:
        self._ack = ack
        return self

    def problem(self, name: str) -> str | None:
        if self.two_way and self.ack.signing_secret is None:
            return f"channels.{name}.two_way is on but ack.signing_secret is not set"
        return None

    @property
    def conversations(self) -> ConversationSettings:
        """The top-level `[conversations]` section, handed over like `[ack]`."""
        return self._conversations

    def with_conversations(self, conversations: ConversationSettings) -> TwoWayChannelSettings:
        self._conversations = conversations
        return self


def _api_mode_error(message: str) -> PydanticCustomError:
    return PydanticCustomError("api_mode", message)


class MattermostSettings(TwoWayChannelSettings):
    url: SecretHttpUrl = Field(None, description="Incoming webhook URL, https://mm.example.org/hooks/<key>.")
    api_url: PlainHttpUrl = Field(
        None,
        description="API mode (one conversation per incident): the Mattermost server, https://mm.example.org "
        "(/api/v4 is added). Needs bot_token and channel.",
    )
    bot_token: BotToken = Field(
        None,
        description="API mode: a bot account's token (or a personal access token); set, it makes the "
        "channel post through the REST API instead of the webhook.",
    )
    channel: str | None = Field(
        None,
        description="Webhook mode: channel override (the webhook must allow it). API mode: where to post, "
        "`team/channel` (the names in the channel's URL) or `@user` for a direct message.",
    )
    api_rate_limit: RateLimit = Field(
        default_factory=lambda: RateLimit(per_second=10.0, burst=100),
        description="API mode: calls per second to the server and the burst (Mattermost's own defaults). "
        "One call of the burst is kept in reserve against network jitter.",
    )
    username: str | None = Field(None, description="Poster name override (needs Mattermost's override setting).")
    icon_url: PlainHttpUrl = None
    ui_base_url: PlainHttpUrl = Field(
        None,
        description="openITCOCKPIT base URL, e.g. https://oitc.example.org, to link host and service names to the UI.",
    )
    ack_url: PlainHttpUrl = Field(None, description="Public URL of `alertq ack-listener`'s /mattermost/actions.")

    @property
    def api_mode(self) -> bool:
        return self.bot_token is not None

    @model_validator(mode="after")
    def _api_mode_complete(self) -> MattermostSettings:
        if self.bot_token is None:
            if self.api_url is not None:
                raise _api_mode_error("api_url is set but bot_token is not: API mode needs both (and channel)")
            return self
        if self.api_url is None:
            raise _api_mode_error("bot_token is set but api_url is not: API mode needs the server's URL")
        if not self.channel:
            raise _api_mode_error("bot_token is set but channel is not: API mode posts to team/channel or @user")
        if not MATTERMOST_DESTINATION.match(self.channel.strip()):
            raise _api_mode_error("channel is not team/channel or @user, the forms API mode posts to")
        return self

    def problem(self, name: str) -> str | None:
        if not _given(self.url) and not self.api_mode:
            return _no_url(name)
        if self.two_way and not self.ack_url:
            return (
                f"channels.{name}.two_way is on but channels.{name}.ack_url is not set "
                "(the ack listener's /mattermost/actions URL)"
            )
        return super().problem(name)

    def has_endpoint(self) -> bool:
        return _given(self.url) or self.api_mode


class SlackSettings(TwoWayChannelSettings):
    rate_limit: RateLimit = Field(default_factory=lambda: RateLimit(per_second=1.0, burst=3))
    url: SecretHttpUrl = Field(None, description="Incoming webhook URL, https://hooks.slack.com/services/T…/B…/….")
    bot_token: BotToken = Field(
        None,
        description="API mode (one conversation per incident): the Slack app's bot token (xoxb-…); set, it "
        "makes the channel post with chat.postMessage / chat.update instead of the webhook. Needs channel.",
    )
    channel: str | None = Field(
        None, description="API mode: the id of the channel to post in (C…; the app must be in it), or a user id."
    )
    api_url: PlainHttpUrl = Field(
        SLACK_API_URL, description="API mode: the Web API's base URL (a proxy, a test server or `alertq sink`)."
    )
    api_post_rate_limit: RateLimit = Field(
        default_factory=lambda: RateLimit(per_second=1.0, burst=1),
        description="API mode: chat.postMessage calls per second to one channel (Slack allows about 1/s). "
        "Give Slack's numbers: one call of the burst (with a burst of 1, a tenth of the rate) is kept in "
        "reserve against network jitter.",
    )
    api_update_rate_limit: RateLimit = Field(
        default_factory=lambda: RateLimit(per_second=50 / 60, burst=20),
        description="API mode: chat.update calls per second (Slack's Tier 3: 50 a minute, counted per "
        "minute, so a burst of 20 stays well inside it; a storm's recoveries edit several digests at once).",
    )
    ui_base_url: PlainHttpUrl = None
    two_way: bool = Field(
        False,
        description="Add a signed Acknowledge button (Slack app interactivity must "
        "point at the ack listener's /slack/actions).",
    )

    @property
    def api_mode(self) -> bool:
        return self.bot_token is not None

    @model_validator(mode="after")
    def _api_mode_complete(self) -> SlackSettings:
        if self.bot_token is None:
            return self
        if not self.channel or any(ch.isspace() for ch in self.channel):
            raise _api_mode_error("bot_token is set but channel is not a channel id: API mode posts to C…")
        if self.api_url is None:
            raise _api_mode_error(f"bot_token is set but api_url is empty: API mode needs it ({SLACK_API_URL})")
        return self

    def problem(self, name: str) -> str | None:
        return _no_url(name) if not self.has_endpoint() else super().problem(name)

    def has_endpoint(self) -> bool:
        return _given(self.url) or self.api_mode


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

    fold: FoldSettings = Field(
        default_factory=FoldSettings,
        description="Storms: when more mails wait for the server than `rate_limit` lets out within "
        "`fold.window` seconds, each recipient gets one mail listing its notifications.",
    )

    def problem(self, name: str) -> str | None:
        if (self.username is None) != (self.password is None):
            return f"channels.{name}.username and channels.{name}.password go together"
        if not PLAIN_ADDRESS.match(self.sender):
            return f"channels.{name}.sender is not a plain e-mail address"
        for address in self.recipients:
            if not PLAIN_ADDRESS.match(address):
                return f"channels.{name}.recipients: {address!r} is not a plain e-mail address"
        return None

    def has_endpoint(self) -> bool:
        # The defaults (127.0.0.1:25) are a working local MTA for `alertq worker email`, but not one the
        # operator chose.
        return bool({"host", "port"} & self.model_fields_set)


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
    fold: bool = Field(
        False,
        description="Fold a storm: when more events wait for one URL than `rate_limit` lets out within "
        "2 s, they go as one request, an `alertq.digest/1` JSON (`headline`, `events`: the events as "
        "they came), at most 100 events a request. Off: one request per event.",
    )

    def problem(self, name: str) -> str | None:
        return _no_url(name) if not _given(self.url) and not self.urls else None

    def has_endpoint(self) -> bool:
        # `urls` serve named contacts only: everything else needs `url`.
        return _given(self.url)
