"""`alertq.timer/1`: the escalator's reminder to itself that a step of an incident falls due.

It rides the delay queues (`alertq.delay.<N>s`, routing key `escalate.timer`) back to
`alertq.escalator`, one hop per queue until `due_at`. It carries only the incident and the step: the
incident store decides whether the step still fires, so a stale or repeated timer sends nothing.
"""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.versioning import TimerSchemaName

TIMER_SCHEMA = "alertq.timer/1"


class EscalationTimer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    schema_: TimerSchemaName = Field(TIMER_SCHEMA, alias="schema")
    incident_id: int = Field(ge=1)
    key: str = Field(min_length=1, description="The incident's host[/service], for logs and dead letters.")
    step: int = Field(ge=1, description="1-based number of the step that falls due.")
    due_at: AwareDatetime

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def parse_timer(body: bytes) -> EscalationTimer:
    """Validate a message body. Raises `UnsupportedSchema` or pydantic's ValidationError."""
    return EscalationTimer.model_validate_json(body)
