"""Typed models of the output events, as `schemas.outputs.encode` writes them: the source of
their JSON Schemas (`schemas/json/`) and of the AsyncAPI document, and a check on every output
the tests see (`validate_output`)."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

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
    policy: str = Field(
        description="the policy version that produced it, `name@label` (a plain policy file: "
        "`default@1`); a ticket keeps the version in force when it was opened"
    )
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


class WarningData(_Data):
    ticket_id: str
    customer_id: str
    severity: Severity
    support_tier: Tier
    cycle: int = Field(ge=1)
    target: Literal["initial_response", "update_due", "escalation"]
    step: int | None = Field(default=None, ge=1, description="escalation warnings only")
    point: str = Field(
        description="the policy's point: a share of the target (`75%`) or a lead time (`PT15M`)",
        examples=["50%", "PT15M"],
    )
    due_at: Instant = Field(description="the deadline warned of")
    remaining: Duration = Field(description="working time left before it")


class UnacknowledgedData(_Data):
    ticket_id: str
    customer_id: str
    severity: Severity
    support_tier: Tier
    cycle: int = Field(ge=1)
    step: int = Field(ge=1)
    escalated_at: Instant
    within: Duration = Field(description="the policy's acknowledgement window")
    due_at: Instant = Field(description="the end of the window missed")
    missed: int = Field(ge=1, description="windows missed so far for this step")
    then: Literal["repeat", "next_step"] | None = Field(
        description="repeat: notify the step's actions again, a new window starts; next_step: "
        "the ladder's next step is emitted at once; null: nothing more"
    )
    actions: tuple[ActionItem, ...]


class AcknowledgedData(_Data):
    ticket_id: str
    customer_id: str
    severity: Severity
    support_tier: Tier
    cycle: int = Field(ge=1)
    step: int = Field(ge=1)
    role: Role | None
    escalated_at: Instant
    acknowledged_at: Instant
    latency: Duration
    within: Duration
    event_id: str = Field(description="the id of the ticket.escalation_acknowledged event")


class LateEvent(BaseModel):
    model_config = _MODEL
    id: str
    type: str
    time: Instant


class RetractionData(_Data):
    ticket_id: str
    customer_id: str
    retracted_id: str = Field(description="the id of the output retracted")
    retracted_type: str
    retracted_time: Instant
    reason: Literal["late_event"]
    late_event: LateEvent


class SurveyData(_Data):
    ticket_id: str
    customer_id: str
    severity: Severity
    support_tier: Tier
    cycle: int = Field(ge=1)
    opened_at: Instant = Field(description="the cycle's clock start")
    responded_at: Instant | None
    resolved_at: Instant
    agent_id: str | None = Field(description="the last agent who responded or updated")


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


class WarningEvent(_Envelope):
    type: Literal["sla.warning"]
    data: WarningData


class AcknowledgementEvent(_Envelope):
    type: Literal["sla.escalation_unacknowledged", "sla.escalation_acknowledged"]
    data: UnacknowledgedData | AcknowledgedData

    @model_validator(mode="after")
    def _data_fits_the_type(self) -> AcknowledgementEvent:
        unacknowledged = self.type == "sla.escalation_unacknowledged"
        if unacknowledged != isinstance(self.data, UnacknowledgedData):
            raise ValueError(f"data does not fit {self.type}")
        return self


class RetractionEvent(_Envelope):
    type: Literal["sla.retraction"]
    data: RetractionData


class SurveyDueEvent(_Envelope):
    type: Literal["ticket.survey_due"]
    data: SurveyData


OutputEvent = (
    EscalationEvent
    | UpdateDueEvent
    | BreachEvent
    | MaintenanceNoticeEvent
    | WarningEvent
    | AcknowledgementEvent
    | RetractionEvent
    | SurveyDueEvent
)
# The models by the topic setting that names their topic.
BY_TOPIC: Final = {
    "topic_escalations": EscalationEvent,
    "topic_updates_due": UpdateDueEvent,
    "topic_breaches": BreachEvent,
    "topic_notices": MaintenanceNoticeEvent,
    "topic_warnings": WarningEvent,
    "topic_acknowledgements": AcknowledgementEvent,
    "topic_retractions": RetractionEvent,
    "topic_surveys": SurveyDueEvent,
}
_OUTPUT: Final[TypeAdapter[OutputEvent]] = TypeAdapter(OutputEvent)


def validate_output(value: bytes) -> OutputEvent:
    """The output event these bytes are; pydantic's ValidationError if they are none."""
    return _OUTPUT.validate_json(value)
