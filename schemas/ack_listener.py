"""Settings of the ack listener (`[ack_listener]`) and of the forwarder's target (`[ack_target]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic_settings import NoDecode

from schemas.fields import PlainHttpUrl, SlackSigningSecret


def _split(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class _Section(BaseModel):
    # Inputs stay out of error texts: some are secrets (schemas/fields.py).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class AckListenerSettings(_Section):
    """`alertq ack-listener`: takes Acknowledge clicks from Mattermost and Slack."""

    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8090, ge=1, le=65535, description="Listen port.")
    body_limit: int = Field(64 * 1024, ge=1024, description="Largest request body in bytes (413 above).")
    allowed_users: Annotated[list[str], NoDecode, BeforeValidator(_split)] = Field(
        default_factory=list,
        description="Chat user names that may acknowledge; empty: anyone who can see the button.",
    )
    slack_signing_secret: SlackSigningSecret | None = Field(
        None, description="Slack app signing secret (32 characters); without it /slack/actions answers 503."
    )
    author_format: str = Field("{user}", description="Author recorded by the core; {user} and {source}.")
    comment_format: str = Field(
        "Acknowledged in {source} by {user} via alertq", description="Comment recorded; {user} and {source}."
    )
    sticky: bool = Field(True, description="Keep the acknowledgement until the object recovers.")
    notify: bool = Field(True, description="Let the core send ACKNOWLEDGEMENT notifications.")
    persistent: bool = Field(True, description="Keep the ack comment across core restarts.")
    publish_timeout: float = Field(2.0, gt=0, description="Seconds to wait for the broker before answering 503.")
    request_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds a client has to send a whole request (headers and body) from the moment the "
        "connection is open or the previous answer was sent; a slower one gets 408 and is disconnected.",
    )
    problem_check_timeout: float = Field(
        0.5,
        gt=0,
        description="Seconds to ask the core ([ack_target]) whether a button's problem is still the current one; "
        "slower: the forwarder asks before it acknowledges.",
    )


class AckTargetSettings(_Section):
    """`alertq ack-forwarder`: where acknowledgements go. One kind, its fields below."""

    kind: Literal["nagios", "openitcockpit", "icinga2"] = "nagios"
    # nagios / naemon
    command_file: Path | None = Field(None, description="nagios: the external command FIFO (nagios.cmd).")
    use_expire: bool = Field(False, description="nagios: send ACKNOWLEDGE_*_PROBLEM_EXPIRE (Naemon, Nagios 4.4+).")
    expire_after: int = Field(86_400, gt=0, description="nagios: seconds until an _EXPIRE ack lapses.")
    status_file: Path | None = Field(
        None, description="nagios: the core's status.dat, read to tell whether a problem is still unacknowledged."
    )
    status_max_age: float = Field(
        300.0, gt=0, description="nagios: seconds after which an unchanged status.dat counts as unknown."
    )
    # openITCOCKPIT / Icinga 2
    url: PlainHttpUrl = Field(None, description="openitcockpit: https://oitc.example.org; icinga2: https://host:5665.")
    api_key: SecretStr | None = Field(None, description="openitcockpit: API key (Authorization: X-OITC-API).")
    host_ack_type: Literal["hostOnly", "hostAndServices"] = Field("hostOnly", description="openitcockpit.")
    username: str | None = Field(None, description="icinga2: ApiUser name.")
    password: SecretStr | None = Field(None, description="icinga2: ApiUser password.")
    ca_bundle: Path | None = Field(None, description="CA bundle for a self-signed server.")
    verify_tls: bool = True
    timeout: float = Field(5.0, gt=0, description="Seconds per request or write.")
    # retries (in the forwarder, between the connection's own heartbeats; see ack_listener/forwarder.py)
    give_up_after: float = Field(
        600.0,
        gt=0,
        le=1500,
        description="Seconds of retrying a target that fails before the ack is dead-lettered (below RabbitMQ's"
        " 30-minute consumer timeout).",
    )
    attempts: int | None = Field(None, ge=1, description="Also give up after this many tries; unset: time only.")
    retry_wait: float = Field(0.5, ge=0, description="Seconds before the second try; doubles up to max_retry_wait.")
    max_retry_wait: float = Field(30.0, gt=0, description="Longest wait between two tries, in seconds.")

    def problem(self) -> str | None:
        """Why this target cannot work as configured, or None."""
        if self.kind == "nagios" and self.command_file is None:
            return "ack_target.command_file is not set (the core's nagios.cmd)"
        if self.kind == "openitcockpit" and (self.url is None or self.api_key is None):
            return "ack_target.url and ack_target.api_key are needed for openitcockpit"
        if self.kind == "icinga2" and (self.url is None or self.username is None or self.password is None):
            return "ack_target.url, username and password are needed for icinga2"
        return None
