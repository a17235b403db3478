"""The report's figures as frozen values: per ticket, per group, per output kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from processor.attainment.figures import attainment_percent
from processor.sla.vocabulary import Severity, Tier

SEVERITIES = tuple(Severity)
TIERS = tuple(Tier)


class Outcome(StrEnum):
    """A ticket's initial response: met, breached, or neither yet (pending)."""

    MET = "met"
    BREACHED = "breached"
    PENDING = "pending"


@dataclass(frozen=True, slots=True)
class TicketFigures:
    """One ticket's figures; severity and tier as the ticket last had them."""

    ticket_id: str
    customer_id: str
    severity: Severity
    tier: Tier
    week: str  # ISO week of the opening
    outcome: Outcome
    first_response: timedelta | None  # opening to first response, wall clock
    breach_lateness: timedelta | None  # breach to first response (or to the horizon)
    answered: bool
    update_dues: int


@dataclass(frozen=True, slots=True)
class Tally:
    tickets: int
    met: int
    breached: int
    pending: int

    @property
    def attainment(self) -> float | None:
        return attainment_percent(self.met, self.breached)


@dataclass(frozen=True, slots=True)
class AttainmentRow:
    """Initial-response outcomes of one group; a dimension not grouped by is None."""

    week: str | None
    severity: Severity | None
    tier: Tier | None
    customer: str | None
    tally: Tally


@dataclass(frozen=True, slots=True)
class FirstResponseRow:
    severity: Severity | None  # None: every severity
    responded: int
    buckets: tuple[int, ...]  # counts per figures.FIRST_RESPONSE bucket
    p50: timedelta | None
    p90: timedelta | None
    p99: timedelta | None


@dataclass(frozen=True, slots=True)
class UpdateDueRow:
    week: str  # ISO week the update fell due
    severity: Severity
    update_dues: int
    tickets: int


@dataclass(frozen=True, slots=True)
class MissedUpdateRow:
    severity: Severity
    tickets: int
    tickets_with_missed_update: int
    update_dues: int


@dataclass(frozen=True, slots=True)
class EscalationRow:
    severity: Severity
    step: int
    escalations: int
    after: timedelta  # the ladder's: how long after the clock start the step is due
    elapsed_p50: timedelta | None  # clock start to the escalation, wall clock
    elapsed_p90: timedelta | None
    elapsed_max: timedelta | None
    beyond_ladder: int  # escalated later than `after` (catch-ups, working hours)


@dataclass(frozen=True, slots=True)
class AcknowledgementRow:
    severity: Severity
    step: int
    acknowledged: int
    windows_missed: int
    latency_p50: timedelta | None
    latency_p90: timedelta | None


@dataclass(frozen=True, slots=True)
class NoticeRow:
    maintenance_id: str
    revision: int
    kind: str
    announced_at: datetime
    window_start: datetime
    lead_time: timedelta
    short_notice: bool


@dataclass(frozen=True, slots=True)
class MaintenanceFigures:
    notices: tuple[NoticeRow, ...]  # every announcement (scheduled or rescheduled)
    short_notice: int  # lead-time violations
    minimum_notice: timedelta | None  # as the violations state it
    reminders: int
    cancelled: int
    lead_buckets: tuple[int, ...]  # counts per figures.LEAD_TIME bucket
    lead_p50: timedelta | None


@dataclass(frozen=True, slots=True)
class CustomerRow:
    customer: str
    tally: Tally
    first_response_p90: timedelta | None
    update_dues: int
    escalations: int


@dataclass(frozen=True, slots=True)
class Worst:
    breach_lateness: tuple[TicketFigures, ...]
    first_response: tuple[TicketFigures, ...]
    update_dues: tuple[TicketFigures, ...]


@dataclass(frozen=True, slots=True)
class Attainment:
    horizon: datetime | None
    outputs: int  # standing
    retracted: int
    overall: Tally
    attainment: tuple[AttainmentRow, ...]  # per week, severity, tier and customer
    by_week_severity: tuple[AttainmentRow, ...]
    by_severity_tier: tuple[AttainmentRow, ...]
    customers: tuple[CustomerRow, ...]
    first_response: tuple[FirstResponseRow, ...]  # per severity, then every severity
    update_dues: tuple[UpdateDueRow, ...]
    missed_updates: tuple[MissedUpdateRow, ...]
    escalations: tuple[EscalationRow, ...]
    acknowledgements: tuple[AcknowledgementRow, ...]
    maintenance: MaintenanceFigures
    worst: Worst
