"""Settings of the ack listener (`[ack_listener]`) and of the forwarder's target (`[ack_target]`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr
from pydantic_settings import NoDecode

from schemas.fields import PlainHttpUrl, SlackSigningSecret, split_list


def _optional_list(value: object) -> object:
    return None if value is None else split_list(value)


class _Section(BaseModel):
    # Inputs stay out of error texts: some are secrets (schemas/fields.py).
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class AckListenerSettings(_Section):
    """`alertq ack-listener`: takes Acknowledge clicks from Mattermost and Slack."""

    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8090, ge=1, le=65535, description="Listen port.")
    body_limit: int = Field(64 * 1024, ge=1024, description="Largest request body in bytes (413 above).")
    allowed_users: Annotated[list[str], NoDecode, BeforeValidator(split_list)] = Field(
        default_factory=list,
        description="Chat user names that may acknowledge (and take the other actions unless their own list "
        "is set); empty: anyone who can see the button.",
    )
    snooze_allowed_users: Annotated[list[str] | None, NoDecode, BeforeValidator(_optional_list)] = Field(
        None, description="Who may Snooze; unset: as allowed_users; empty: anyone."
    )
    recheck_allowed_users: Annotated[list[str] | None, NoDecode, BeforeValidator(_optional_list)] = Field(
        None, description="Who may Recheck now; unset: as allowed_users; empty: anyone."
    )
    unacknowledge_allowed_users: Annotated[list[str] | None, NoDecode, BeforeValidator(_optional_list)] = Field(
        None, description="Who may Unacknowledge; unset: as allowed_users; empty: anyone."
    )
    authors: dict[str, str] = Field(
        default_factory=dict,
        description="Chat user name -> the user the core records as author (openITCOCKPIT user, Icinga 2 "
        'author), e.g. {alice = "a.smith"}; a name not listed is recorded as it is in the chat.',
    )
    slack_signing_secret: SlackSigningSecret | None = Field(
        None, description="Slack app signing secret (32 characters); without it /slack/actions answers 503."
    )
    author_format: str = Field("{user}", description="Author recorded by the core; {user} and {source}.")
    comment_format: str = Field(
        "Acknowledged in {source} by {user} via alertq", description="Comment recorded; {user} and {source}."
    )
    snooze_comment_format: str = Field(
        "Snoozed ({choice}) in {source} by {user} via alertq",
        description="Comment of a Snooze's downtime; {user}, {source} and {choice}.",
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

    def may(self, action: str, chat_user: str) -> bool:
        """Whether `chat_user` may take `action` (acknowledge, snooze, recheck, unacknowledge)."""
        own: list[str] | None = getattr(self, f"{action}_allowed_users", None)
        allowed = self.allowed_users if own is None else own
        return not allowed or chat_user in allowed

    def author_of(self, chat_user: str, source: str) -> str:
        """The author the core records for `chat_user`: the mapped core user, through `author_format`."""
        return self.author_format.format(user=self.authors.get(chat_user, chat_user), source=source.capitalize())


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
    # proof (ack_listener/proof.py)
    confirm_within: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Seconds the core has to show an action applied (read back from status.dat or the API) "
        "before the chat is told it was NOT applied.",
    )
    confirm_every: float = Field(1.0, gt=0, description="Seconds between two read-backs while confirming.")

    def problem(self) -> str | None:
        """Why this target cannot work as configured, or None."""
        if self.kind == "nagios" and self.command_file is None:
            return "ack_target.command_file is not set (the core's nagios.cmd)"
        if self.kind == "openitcockpit" and (self.url is None or self.api_key is None):
            return "ack_target.url and ack_target.api_key are needed for openitcockpit"
        if self.kind == "icinga2" and (self.url is None or self.username is None or self.password is None):
            return "ack_target.url, username and password are needed for icinga2"
        return None
