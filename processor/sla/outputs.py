"""The engine's output events as values, with deterministic ids (their wire form: `schemas.outputs`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from hashlib import sha1
from typing import ClassVar, Final, Protocol

from processor.sla.policy import Assignment, MissedAcknowledgement, Target
from processor.sla.vocabulary import Severity, Tier

# Ids are uuid5 over the logical identity of an output, so retries, restarts and replays agree.
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:sla-processor:outputs")
_PREFIX: Final = _NAMESPACE.bytes


def deterministic_id(*parts: object) -> str:
    """`str(uuid.uuid5(_NAMESPACE, name))`, formatted straight from the digest (a third of the
    cost: ids are computed for every output, and a burst emits 100k at once)."""
    name = "\x1f".join(map(str, parts))
    x = sha1(_PREFIX + name.encode()).hexdigest()
    # RFC 4122: version 5 in the 13th hex digit, the variant's two top bits 10 in the 17th.
    variant = "89ab"[int(x[16], 16) & 3]
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{variant}{x[17:20]}-{x[20:32]}"


def _text(moment: datetime) -> str:
    """An instant as the ids have always named it (RFC 3339, `Z`); the wire's own formatting is
    `schemas.outputs.rfc3339`, which must agree."""
    return moment.isoformat().replace("+00:00", "Z")


class OutputTopic(StrEnum):
    ESCALATIONS = "escalations"
    UPDATES_DUE = "updates_due"
    BREACHES = "breaches"
    NOTICES = "notices"
    WARNINGS = "warnings"
    ACKNOWLEDGEMENTS = "acknowledgements"
    RETRACTIONS = "retractions"
    SURVEYS = "surveys"


class Output(Protocol):
    """What every output value offers the shells."""

    TOPIC: ClassVar[OutputTopic]

    @property
    def type(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def time(self) -> datetime: ...
    @property
    def id(self) -> str: ...
    @property
    def policy(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Escalation:
    TOPIC: ClassVar[OutputTopic] = OutputTopic.ESCALATIONS
    type: ClassVar[str] = "sla.escalation"

    ticket_id: str
    customer_id: str
    severity: Severity
    tier: Tier
    cycle: int
    step: int
    after: timedelta
    actions: tuple[Assignment, ...]
    time: datetime
    policy: str = ""  # the policy version that produced it (`name@label`)

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.ticket_id, self.cycle, self.severity, self.step)


@dataclass(frozen=True, slots=True)
class UpdateDue:
    TOPIC: ClassVar[OutputTopic] = OutputTopic.UPDATES_DUE
    type: ClassVar[str] = "sla.update_due"

    ticket_id: str
    customer_id: str
    severity: Severity
    ticket_cycle: int
    cycle: int
    frequency: timedelta
    time: datetime
    policy: str = ""  # the policy version that produced it (`name@label`)

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.ticket_id, self.ticket_cycle, _text(self.time))


@dataclass(frozen=True, slots=True)
class Breach:
    TOPIC: ClassVar[OutputTopic] = OutputTopic.BREACHES
    type: ClassVar[str] = "sla.breach"
    target: ClassVar[str] = "initial_response"

    ticket_id: str
    customer_id: str
    severity: Severity
    tier: Tier
    time: datetime
    policy: str = ""  # the policy version that produced it (`name@label`)

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.ticket_id, self.target)


@dataclass(frozen=True, slots=True)
class DeadlineWarning:
    """A deadline approaches: `point` names the policy's point ("75%" or a lead such as "PT15M")."""

    TOPIC: ClassVar[OutputTopic] = OutputTopic.WARNINGS
    type: ClassVar[str] = "sla.warning"

    ticket_id: str
    customer_id: str
    severity: Severity
    tier: Tier
    cycle: int
    target: Target
    step: int | None  # the escalation step warned of
    point: str
    due_at: datetime  # the deadline warned of
    remaining: timedelta  # working time left before it
    key: str  # which deadline: its target, cycle and (step or window)
    time: datetime
    policy: str = ""  # the policy version that produced it (`name@label`)

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        # The deadline's instant too: after a severity change the same point of the initial
        # response is another warning (and a retracted one must not share its id).
        return deterministic_id(self.type, self.ticket_id, self.key, self.point, _text(self.due_at))


@dataclass(frozen=True, slots=True)
class Unacknowledged:
    """An escalation step's actions were not acknowledged within the policy's window."""

    TOPIC: ClassVar[OutputTopic] = OutputTopic.ACKNOWLEDGEMENTS
    type: ClassVar[str] = "sla.escalation_unacknowledged"

    ticket_id: str
    customer_id: str
    severity: Severity
    tier: Tier
    cycle: int
    step: int
    escalated_at: datetime
    within: timedelta
    missed: int  # windows missed so far: 1, 2, ...
    then: MissedAcknowledgement | None  # what follows: a repeat, the next step, or nothing
    actions: tuple[Assignment, ...]
    time: datetime
    policy: str = ""  # the policy version that produced it (`name@label`)

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        return deterministic_id(
            self.type, self.ticket_id, self.cycle, self.severity, self.step, self.missed
        )


@dataclass(frozen=True, slots=True)
class Acknowledged:
    """An awaited escalation step was acknowledged: its latency since the step was emitted."""

    TOPIC: ClassVar[OutputTopic] = OutputTopic.ACKNOWLEDGEMENTS
    type: ClassVar[str] = "sla.escalation_acknowledged"

    ticket_id: str
    customer_id: str
    severity: Severity
    tier: Tier
    cycle: int
    step: int
    role: str | None
    escalated_at: datetime
    within: timedelta
    event_id: str
    time: datetime
    policy: str = ""  # the policy version that produced it (`name@label`)

    @property
    def latency(self) -> timedelta:
        return self.time - self.escalated_at

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.ticket_id, self.cycle, self.severity, self.step)


@dataclass(frozen=True, slots=True)
class Retraction:
    """A late event (stamped before an emitted output's time) would have cancelled that output.

    `time` is the retracted output's, so a stream ordered by time has the retraction after it.
    """

    TOPIC: ClassVar[OutputTopic] = OutputTopic.RETRACTIONS
    type: ClassVar[str] = "sla.retraction"

    ticket_id: str
    customer_id: str
    retracted_id: str
    retracted_type: str
    retracted_topic: OutputTopic
    event_id: str
    event_type: str
    event_time: datetime
    time: datetime
    policy: str = ""  # the policy version that produced it (`name@label`)

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.retracted_id, self.event_id)


@dataclass(frozen=True, slots=True)
class SurveyDue:
    """A resolved ticket's satisfaction survey is due (once per cycle, unless reopened first)."""

    TOPIC: ClassVar[OutputTopic] = OutputTopic.SURVEYS
    type: ClassVar[str] = "ticket.survey_due"

    ticket_id: str
    customer_id: str
    severity: Severity
    tier: Tier
    cycle: int
    opened_at: datetime  # the cycle's clock start
    responded_at: datetime | None
    resolved_at: datetime
    agent_id: str | None  # the last agent who responded or updated
    time: datetime
    policy: str = ""  # the policy version that produced it (`name@label`)

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.ticket_id, self.cycle)


class NoticeType(StrEnum):
    NOTICE = "maintenance.notice"
    REMINDER = "maintenance.reminder"
    LEAD_TIME_VIOLATION = "maintenance.lead_time_violation"
    CANCELLED = "maintenance.cancelled"


@dataclass(frozen=True, slots=True)
class MaintenanceNotice:
    """Any of the four change-management outputs; `offset` is set for reminders only."""

    TOPIC: ClassVar[OutputTopic] = OutputTopic.NOTICES

    notice: NoticeType
    maintenance_id: str
    kind: str
    revision: int
    window_start: datetime
    window_end: datetime
    lead_time: timedelta
    summary: str
    services: tuple[str, ...]
    customers: tuple[str, ...]
    time: datetime
    minimum_notice: timedelta | None = None
    offset: timedelta | None = None
    policy: str = ""

    @property
    def type(self) -> str:
        return self.notice.value

    @property
    def subject(self) -> str:
        return self.maintenance_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.maintenance_id, self.revision, self.offset)
