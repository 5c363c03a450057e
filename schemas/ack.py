"""`alertq.ack/1`: one acknowledgement clicked in chat, on its way from the ack listener to the core.

The listener builds it from what the signed button token says (host, service, event, the problem it
was issued for) and who clicked; the forwarder hands it to the configured target. `reply` says where
the chat can be told how it went (Slack: the click's `response_url`; Mattermost: the channel the post
was in), so a failed ack is never silent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.versioning import AckSchemaName

ACK_SCHEMA = "alertq.ack/1"


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

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def parse_ack(body: bytes) -> AckMessage:
    """Validate a message body. Raises `UnsupportedSchema` or pydantic's ValidationError."""
    return AckMessage.model_validate_json(body)
