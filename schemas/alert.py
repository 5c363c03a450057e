"""`alertq.alert/1`: one alert event, addressed to one channel.

The enqueue command builds this JSON with the standard library alone (it must start fast), so this
model is the reader's contract: every process that consumes an event validates it here, and the test
suite checks that what `alertq-enqueue` writes validates.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.incident import incident_key
from schemas.versioning import SchemaName

ALERT_SCHEMA = "alertq.alert/1"

KNOWN_NOTIFICATION_TYPES = (
    "PROBLEM",
    "RECOVERY",
    "ACKNOWLEDGEMENT",
    "FLAPPINGSTART",
    "FLAPPINGSTOP",
    "FLAPPINGDISABLED",
    "DOWNTIMESTART",
    "DOWNTIMEEND",
    "DOWNTIMECANCELLED",
    "CUSTOM",
)

HOST_STATES = {0: "UP", 1: "DOWN", 2: "UNREACHABLE"}
SERVICE_STATES = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


class _Model(BaseModel):
    # Readers ignore fields they do not know: a minor version may add some.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Host(_Model):
    id: str = Field(min_length=1, description="The core's host_name (a UUID in openITCOCKPIT).")
    name: str = Field(min_length=1)
    display_name: str
    address: str | None = None


class Service(_Model):
    id: str = Field(min_length=1, description="The core's service_description (a UUID in openITCOCKPIT).")
    name: str = Field(min_length=1)
    display_name: str


class Ack(_Model):
    author: str
    comment: str


class Contact(_Model):
    name: str | None = None
    email: str | None = None
    pager: str | None = None
    address: str | None = Field(
        None,
        description="Where the channel reaches this contact (routing file `addresses`): a Mattermost "
        "channel or @user; set by the escalator.",
    )


class Escalation(_Model):
    policy: str
    step: int = Field(ge=0, description="0 for the core's own notification, 1.. for escalation steps.")
    since: AwareDatetime | None = Field(None, description="When the incident's first PROBLEM was seen, if known.")


class Fallback(_Model):
    """Set on the copy of a notification that its own channel gave up on (workers/fallback.py): which
    channel gave up, why, and when the copy was re-addressed. A copy that carries it never falls back
    again, so fallbacks cannot chain or loop."""

    from_channel: str = Field(min_length=1, description="The channel that gave up.")
    reason: str = Field(description="Its dead-letter reason: permanent, max-attempts or expired.")
    error: str = Field(description="Its last error, as in the dead letter's alertq-last-error.")
    at: AwareDatetime = Field(description="When the copy was re-addressed; its age limit counts from here.")
    original_event_id: str = Field(min_length=1, description="The event id of the dead letter.")

    @property
    def note(self) -> str:
        """`slack gave up (permanent): slack channel C0ALERTS not found (channel_not_found)`."""
        return f"{self.from_channel} gave up ({self.reason}): {self.error}"


class Source(_Model):
    producer_host: str
    core: str


class AlertEvent(_Model):
    schema_: SchemaName = Field(alias="schema")
    event_id: str = Field(min_length=1)
    created_at: AwareDatetime
    channel: str = Field(min_length=1)
    kind: Literal["host", "service"]
    # Any string: a core may invent types, and dropping an alert for its type is worse than showing it.
    notification_type: str = Field(min_length=1)
    host: Host
    service: Service | None
    state: int = Field(ge=0, le=3)
    output: str
    long_output: str = ""
    ack: Ack | None = None
    notification_number: int | None = None
    # The core's own problem id ($SERVICEPROBLEMID$ / $HOSTPROBLEMID$) when the command passes it: it names
    # one problem exactly, where host[/service] is shared by every problem the object ever has.
    problem_id: str | None = None
    contact: Contact | None = None
    escalation: Escalation | None = None
    fallback: Fallback | None = None
    source: Source

    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    @property
    def state_name(self) -> str:
        names = SERVICE_STATES if self.kind == "service" else HOST_STATES
        return names.get(self.state, str(self.state))

    @property
    def incident_key(self) -> str:
        """host[/service]: what one incident is about, whichever contact or channel told of it."""
        return incident_key(self.host.id, None if self.service is None else self.service.id)

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def parse_alert(body: bytes) -> AlertEvent:
    """Validate a message body. Raises `UnsupportedSchema` or pydantic's ValidationError."""
    return AlertEvent.model_validate_json(body)
