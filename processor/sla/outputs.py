"""The engine's output events as values, with deterministic ids (their wire form: `schemas.outputs`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from hashlib import sha1
from typing import ClassVar, Final, Protocol

from processor.sla.policy import Assignment
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

    @property
    def subject(self) -> str:
        return self.ticket_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.ticket_id, self.target)


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

    @property
    def type(self) -> str:
        return self.notice.value

    @property
    def subject(self) -> str:
        return self.maintenance_id

    @property
    def id(self) -> str:
        return deterministic_id(self.type, self.maintenance_id, self.revision, self.offset)
