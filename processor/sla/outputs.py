"""The engine's output events as values, with deterministic ids and their contract `data`."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from hashlib import sha1
from typing import Any, ClassVar, Final, Protocol

from processor.sla.policy import Assignment
from schemas.cloudevents import Severity, Tier

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


def rfc3339(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def iso_duration(span: timedelta) -> str:
    """ISO 8601 duration; days are 24 h, a negative span gets a leading minus (a common extension)."""
    sign, span = ("-", -span) if span < timedelta(0) else ("", span)
    hours, rest = divmod(span.seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    second_text = (
        f"{seconds}.{span.microseconds:06d}".rstrip("0").rstrip(".")
        if span.microseconds
        else str(seconds)
    )
    clock = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M")) if v)
    clock += f"{second_text}S" if seconds or span.microseconds else ""
    days = f"{span.days}D" if span.days else ""
    if not (days or clock):
        return "PT0S"
    return f"{sign}P{days}{'T' + clock if clock else ''}"


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
    def data(self) -> dict[str, Any]: ...


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

    def data(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "customer_id": self.customer_id,
            "severity": self.severity.value,
            "support_tier": self.tier.value,
            "cycle": self.cycle,
            "step": self.step,
            "after": iso_duration(self.after),
            "actions": [{"role": a.role.value, "action": a.action.value} for a in self.actions],
        }


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
        return deterministic_id(self.type, self.ticket_id, self.ticket_cycle, rfc3339(self.time))

    def data(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "customer_id": self.customer_id,
            "severity": self.severity.value,
            "cycle": self.cycle,
            "due_at": rfc3339(self.time),
            "frequency": iso_duration(self.frequency),
        }


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

    def data(self) -> dict[str, Any]:
        return {
            "ticket_id": self.ticket_id,
            "customer_id": self.customer_id,
            "severity": self.severity.value,
            "support_tier": self.tier.value,
            "target": self.target,
            "due_at": rfc3339(self.time),
        }


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

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "maintenance_id": self.maintenance_id,
            "kind": self.kind,
            "revision": self.revision,
            "window_start": rfc3339(self.window_start),
            "window_end": rfc3339(self.window_end),
            "lead_time": iso_duration(self.lead_time),
            "summary": self.summary,
            "services": list(self.services),
            "customers": list(self.customers),
        }
        if self.minimum_notice is not None:
            data["minimum_notice"] = iso_duration(self.minimum_notice)
        if self.offset is not None:
            data["reminder_offset"] = iso_duration(self.offset)
        return data


SOURCE: Final = "sla-processor"


def cloudevent(output: Output, emitted_at: datetime) -> dict[str, Any]:
    """The output as CloudEvent attributes, in a fixed key order so encodings are byte-stable."""
    data = output.data()
    data["emitted_at"] = rfc3339(emitted_at)
    return {
        "specversion": "1.0",
        "id": output.id,
        "source": SOURCE,
        "type": output.type,
        "time": rfc3339(output.time),
        "subject": output.subject,
        "datacontenttype": "application/json",
        "data": data,
    }
