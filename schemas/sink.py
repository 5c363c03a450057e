"""Settings of `alertq sink`, the local preview of chat and mail: `[sink]` in TOML, `ALERTQ_SINK__…` in env."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.fields import PlainHttpUrl, SlackSigningSecret


class SinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str = Field("127.0.0.1", description="Address the sink's HTTP and SMTP servers listen on.")
    http_port: int = Field(8025, ge=1, le=65535, description="Web page, JSON API and webhook endpoints.")
    smtp_port: int = Field(2525, ge=1, le=65535, description="SMTP server that keeps every mail it is sent.")
    max_messages: int = Field(1000, ge=1, description="Messages kept in memory; the oldest is dropped first.")
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
