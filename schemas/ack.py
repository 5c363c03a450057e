"""`alertq.ack`: one action clicked in chat, on its way from the ack listener to the core.

The listener builds it from what the signed button token says (action, host, service, event, the
problem it was issued for) and who clicked; the forwarder hands it to the configured target.

Versions: an Acknowledge is written as `alertq.ack/1`, exactly as before there were other actions
(`action` is just one more field an older reader ignores). Snooze, Recheck now and Unacknowledge are
`alertq.ack/2`: a major version, because an older forwarder that ignored `action` would acknowledge
them; it dead-letters them as `unsupported-schema` instead (and the chat hears so). Reading: a `/1`
message is an Acknowledge (one naming another action is invalid); a `/2` message says its action. `reply` says where
the chat can be told how it went (Slack: the click's `response_url`; Mattermost: the channel the post
was in), so a failed ack is never silent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.actions import Action
from schemas.versioning import AckSchemaName, major_of

ACK_SCHEMA = "alertq.ack/1"
ACTION_SCHEMA = "alertq.ack/2"


class Reply(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    response_url: str | None = Field(None, description="Slack: post here to tell the channel (about 30 min, few uses).")
    channel_name: str | None = Field(None, description="Mattermost: the channel the button's post was in.")
    post_id: str | None = Field(None, description="Mattermost: the post whose button was clicked.")
    channel_id: str | None = Field(None, description="The chat's id of the channel the clicked post is in.")
    message_ts: str | None = Field(None, description="Slack: the ts of the message whose button was clicked.")


class AckMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    schema_: AckSchemaName = Field(ACK_SCHEMA, alias="schema")
    ack_id: str = Field(min_length=1)
    received_at: AwareDatetime
    source: Literal["mattermost", "slack"]
    chat_user: str = Field(min_length=1, description="The clicker's user name in the chat.")
    author: str = Field(min_length=1, description="Author the core records (ack_listener.author_format).")
    comment: str
    kind: Literal["host", "service"]
    host_id: str = Field(min_length=1)
    service_id: str | None
    event_id: str = Field(min_length=1, description="The alert event whose button was clicked.")
    # The problem the button was issued for (from its token): the forwarder acknowledges only while it is
    # still the core's current problem. Absent in acks from before binding: no check.
    problem_id: str | None = Field(None, description="The core's problem id the button was issued for.")
    problem_since: AwareDatetime | None = Field(None, description="When that problem's incident began.")
    sticky: bool = True
    notify: bool = True
    persistent: bool = True
    reply: Reply = Field(default_factory=Reply)
    action: Action = Field("acknowledge", description="What the core is asked to do (alertq.ack/2).")
    snooze: str | None = Field(None, description="Snooze: the choice clicked (1h, until 08:00).")
    downtime_start: AwareDatetime | None = Field(None, description="Snooze: the downtime's start (the click).")
    downtime_end: AwareDatetime | None = Field(None, description="Snooze: the downtime's end.")

    @model_validator(mode="after")
    def _versioned(self) -> AckMessage:
        major = major_of(self.schema_)
        if major == 1 and self.action != "acknowledge":
            if "schema_" in self.model_fields_set:
                raise ValueError("an alertq.ack/1 message can only acknowledge")
            object.__setattr__(self, "schema_", ACTION_SCHEMA)  # written by this version: say the action
        if self.action == "snooze" and (self.downtime_start is None or self.downtime_end is None):
            raise ValueError("a snooze needs downtime_start and downtime_end")
        if (
            self.downtime_start is not None
            and self.downtime_end is not None
            and self.downtime_end <= self.downtime_start
        ):
            raise ValueError("downtime_end must be after downtime_start")
        return self

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def parse_ack(body: bytes) -> AckMessage:
    """Validate a message body. Raises `UnsupportedSchema` or pydantic's ValidationError."""
    return AckMessage.model_validate_json(body)
