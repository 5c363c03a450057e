"""Settings of `alertq sink`, the local preview of chat and mail: `[sink]` in TOML, `ALERTQ_SINK__…` in env.

`[sink.mattermost]` and `[sink.slack]` shape the chat APIs the sink emulates (alertq/sink/mattermost_api.py,
slack_api.py). Their defaults make `make run` work with nothing configured: any bearer token is accepted,
every channel name exists with the bot in it, and the rate limits are the real services' defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic_settings import NoDecode

from schemas.fields import PlainHttpUrl, SlackSigningSecret, split_list

Names = Annotated[list[str], NoDecode, BeforeValidator(split_list)]
Tokens = Annotated[list[SecretStr], NoDecode, BeforeValidator(split_list)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SinkRateLimit(_Section):
    """A GCRA limit as Mattermost's server applies it (and Slack's, near enough): `requests` per `seconds`,
    plus `max_burst` more at once after a quiet spell (so max_burst + 1 calls pass back to back)."""

    enabled: bool = Field(True, description="Off: never answer 429.")
    requests: float = Field(10, gt=0, description="Sustained calls allowed per `seconds`.")
    seconds: float = Field(1, gt=0, description="The period `requests` is counted over.")
    max_burst: int = Field(
        100, ge=0, description="Calls allowed above the sustained rate at once (max_burst + 1 pass)."
    )


class MattermostRateLimit(SinkRateLimit):
    enabled: bool = Field(True, description="Rate-limit the Mattermost API (a real server's is off until enabled).")
    requests: float = Field(10, gt=0, description="Mattermost calls per token allowed per `seconds` (PerSec 10).")
    seconds: float = Field(1, gt=0, description="The period of the Mattermost limit.")
    max_burst: int = Field(
        100, ge=0, description="Mattermost MaxBurst: calls above the rate at once (max_burst + 1 pass); then 429."
    )


class SlackPostRateLimit(SinkRateLimit):
    enabled: bool = Field(True, description="Rate-limit chat.postMessage.")
    requests: float = Field(
        1, gt=0, description="chat.postMessage calls per channel allowed per `seconds` (about 1/s)."
    )
    seconds: float = Field(1, gt=0, description="The period of the chat.postMessage limit.")
    max_burst: int = Field(
        2,
        ge=0,
        description="chat.postMessage calls above the rate at once (max_burst + 1 pass); then 429 + Retry-After.",
    )


class SlackUpdateRateLimit(SinkRateLimit):
    enabled: bool = Field(True, description="Rate-limit chat.update (a budget separate from posts).")
    requests: float = Field(50, gt=0, description="chat.update calls per token allowed per `seconds` (Tier 3: 50/min).")
    seconds: float = Field(60, gt=0, description="The period of the chat.update limit.")
    max_burst: int = Field(
        49, ge=0, description="chat.update calls above the rate at once (max_burst + 1 pass); then 429 + Retry-After."
    )


class SinkMattermostApi(_Section):
    """The Mattermost REST API v4 subset under /api/v4/ (docs/channels.md lists it)."""

    tokens: Tokens = Field(
        default_factory=list,
        description="Bearer tokens accepted (bot or personal access tokens); empty: any non-empty token is. "
        "Others get 401.",
    )
    bot_username: str = Field("alertq", description="Username of the bot the tokens belong to (GET /users/me).")
    channels: Names | None = Field(
        None,
        description="Channels that exist, as `team/channel`; unset: every name exists (created when first "
        "looked up). Others are 404 by name and 403 to post in.",
    )
    not_member: Names = Field(
        default_factory=list, description="`team/channel` names the bot is not a member of: posting there is 403."
    )
    users: Names | None = Field(
        None, description="Usernames that exist (for `@user` direct messages); unset: every username does."
    )
    max_post_size: int = Field(16383, ge=1, description="Longest `message` in runes (MaxPostSize); longer is 400.")
    answer_delay: float = Field(
        0.0, ge=0, le=60, description="Seconds each call waits before it is handled: a slow server, for tests."
    )
    # Per token, with Mattermost's RateLimitSettings defaults (PerSec 10, MaxBurst 100): 429 `limit exceeded` beyond.
    rate_limit: MattermostRateLimit = Field(default_factory=MattermostRateLimit)


class SinkSlackApi(_Section):
    """The Slack Web API subset under /api/<method> (docs/channels.md lists it)."""

    tokens: Tokens = Field(
        default_factory=list,
        description="Bot tokens accepted (xoxb-…); empty: any non-empty token is. Others get `invalid_auth`.",
    )
    bot_name: str = Field("alertq", description="Name of the app's bot user (auth.test).")
    channels: Names | None = Field(
        None,
        description="Channels that exist, by id (C…) or name; unset: every channel does. Others get "
        "`channel_not_found`.",
    )
    not_in_channel: Names = Field(
        default_factory=list,
        description="Channels (id or name) the bot is not in: chat.postMessage answers `not_in_channel`.",
    )
    max_text: int = Field(
        40000, ge=1, description="chat.postMessage cuts `text` to this many characters (warning `message_truncated`)."
    )
    max_update_text: int = Field(4000, ge=1, description="chat.update refuses longer `text` with `msg_too_long`.")
    max_blocks: int = Field(50, ge=1, description="More blocks than this are `invalid_blocks`.")
    answer_delay: float = Field(
        0.0, ge=0, le=60, description="Seconds each call waits before it is handled: a slow Slack, for tests."
    )
    # chat.postMessage per channel: about 1 per second, short bursts; 429 + Retry-After beyond.
    post_rate_limit: SlackPostRateLimit = Field(default_factory=SlackPostRateLimit)
    # chat.update per token (Tier 3, 50 per minute), a budget of its own; 429 + Retry-After beyond.
    update_rate_limit: SlackUpdateRateLimit = Field(default_factory=SlackUpdateRateLimit)


class SinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = Field("127.0.0.1", description="Address the sink's HTTP and SMTP servers listen on.")
    http_port: int = Field(8025, ge=1, le=65535, description="Web page, JSON API and webhook endpoints.")
    smtp_port: int = Field(2525, ge=1, le=65535, description="SMTP server that keeps every mail it is sent.")
    max_messages: int = Field(
        10000, ge=1, description="Messages kept in memory; the oldest is dropped first (a root with its thread)."
    )
    max_calls: int = Field(
        20000, ge=1, description="Chat API calls kept for GET /api/calls; the oldest is dropped first."
    )
    user_name: str = Field("preview-user", description="Chat user name a button click is made as, by default.")
    slack_actions_url: PlainHttpUrl = Field(
        None,
        description="Where Slack button clicks go (the Slack app's Interactivity Request URL), "
        "e.g. the ack listener's http://127.0.0.1:8090/slack/actions.",
    )
    slack_signing_secret: SlackSigningSecret | None = Field(
        None,
        description="Signs Slack button clicks as Slack would, for a listener that verifies them "
        "(the listener's `slack_signing_secret`).",
    )
    action_timeout: float = Field(10.0, gt=0, description="Seconds to wait for the listener to answer a click.")
    core_command_file: Path | None = Field(
        None,
        description="A Nagios-style external command file whose lines the page shows as what the monitoring "
        "core received (`alertq up` sets it to its demo core's var/nagios.cmd).",
    )
    mattermost: SinkMattermostApi = Field(default_factory=SinkMattermostApi)
    slack: SinkSlackApi = Field(default_factory=SinkSlackApi)

    def public_url(self) -> str:
        """Base URL of the page and the hooks, as the workers on this machine reach them."""
        return f"http://{_url_host(self.host)}:{self.http_port}"


def _url_host(host: str) -> str:
    # Listening on every interface still means "this machine" to a worker started beside the sink.
    if host in ("0.0.0.0", ""):  # noqa: S104
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
