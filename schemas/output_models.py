"""Typed models of the output events, as `schemas.outputs.encode` writes them: the source of
their JSON Schemas (`schemas/json/`) and of the AsyncAPI document, and a check on every output
the tests see (`validate_output`)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from processor.sla.policy import Action, Role
from processor.sla.vocabulary import Severity, Tier

# ISO 8601 durations as the outputs write them: days of 24 h, then hours, minutes, seconds.
Duration = Annotated[
    str,
    Field(
        pattern=r"^-?P(?:\d+D)?(?:T(?:\d+H)?(?:\d+M)?(?:\d+(?:\.\d+)?S)?)?$",
        examples=["PT15M", "P1D", "PT1H30M"],
    ),
]
Instant = Annotated[AwareDatetime, Field(description="RFC 3339, UTC (Z)")]
_MODEL = ConfigDict(strict=True, frozen=True, extra="forbid")


class _Data(BaseModel):
    model_config = _MODEL
    emitted_at: Instant = Field(description="when the processor sent it (wall clock)")


class ActionItem(BaseModel):
    model_config = _MODEL
    role: Role
    action: Action


class EscalationData(_Data):
    ticket_id: str
    customer_id: str
    severity: Severity
    support_tier: Tier
    cycle: int = Field(ge=1, description="1, then 2, 3... after each reopen")
    step: int = Field(ge=1)
    after: Duration = Field(description="the step's time after the cycle's clock start")
    actions: tuple[ActionItem, ...]


class UpdateDueData(_Data):
    ticket_id: str
    customer_id: str
    severity: Severity
    cycle: int = Field(ge=1)
    due_at: Instant
    frequency: Duration


class BreachData(_Data):
    ticket_id: str
    customer_id: str
    severity: Severity
    support_tier: Tier
    target: Literal["initial_response"]
    due_at: Instant


class NoticeData(_Data):
    maintenance_id: str
    kind: Literal["planned", "emergency"]
    revision: int = Field(ge=1)
    window_start: Instant
    window_end: Instant
    lead_time: Duration = Field(description="from the notice to the window's start")
    summary: str
    services: tuple[str, ...]
    customers: tuple[str, ...]
    minimum_notice: Duration | None = Field(default=None, description="lead-time violations only")
    reminder_offset: Duration | None = Field(default=None, description="reminders only")


class _Envelope(BaseModel):
    model_config = _MODEL
    specversion: Literal["1.0"]
    id: str = Field(description="deterministic (uuid5): the same output always has the same id")
    source: Literal["sla-processor"]
    time: Instant = Field(description="when the condition fell due (not when it was sent)")
    subject: str = Field(description="the ticket or maintenance id; also the record's key")
    datacontenttype: Literal["application/json"]


class EscalationEvent(_Envelope):
    type: Literal["sla.escalation"]
    data: EscalationData


class UpdateDueEvent(_Envelope):
    type: Literal["sla.update_due"]
    data: UpdateDueData


class BreachEvent(_Envelope):
    type: Literal["sla.breach"]
    data: BreachData


class MaintenanceNoticeEvent(_Envelope):
    type: Literal[
        "maintenance.notice",
        "maintenance.reminder",
        "maintenance.lead_time_violation",
        "maintenance.cancelled",
    ]
    data: NoticeData


OutputEvent = EscalationEvent | UpdateDueEvent | BreachEvent | MaintenanceNoticeEvent
# The models by the topic setting that names their topic.
BY_TOPIC: Final = {
    "topic_escalations": EscalationEvent,
    "topic_updates_due": UpdateDueEvent,
    "topic_breaches": BreachEvent,
    "topic_notices": MaintenanceNoticeEvent,
}
_OUTPUT: Final[TypeAdapter[OutputEvent]] = TypeAdapter(OutputEvent)


def validate_output(value: bytes) -> OutputEvent:
    """The output event these bytes are; pydantic's ValidationError if they are none."""
    return _OUTPUT.validate_json(value)
