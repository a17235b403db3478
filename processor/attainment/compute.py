"""SLA attainment of a replay, as values: pure, deterministic, no I/O (rendered by `render_*`).

Every figure comes from the tickets' last states and the outputs that stand: an output a
`Retraction` withdrew counts nowhere, nor do the retractions themselves.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from processor.attainment.figures import (
    FIRST_RESPONSE,
    LEAD_TIME,
    attainment_percent,
    iso_week,
    percentile,
)
from processor.replay import ReplayResult
from processor.sla.outputs import (
    Acknowledged,
    Breach,
    Escalation,
    MaintenanceNotice,
    NoticeType,
    Output,
    Retraction,
    Unacknowledged,
    UpdateDue,
)
from processor.sla.ticket import Ticket
from processor.sla.vocabulary import Severity, Tier

SEVERITIES = tuple(Severity)
TIERS = tuple(Tier)
_T = TypeVar("_T")


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


def of_replay(result: ReplayResult, top: int = 20) -> Attainment:
    return compute(result.tickets, result.outputs, result.horizon, top=top)


def compute(
    tickets: Mapping[str, Ticket],
    outputs: Sequence[Output],
    horizon: datetime | None,
    *,
    top: int = 20,
) -> Attainment:
    standing, retracted = _standing(outputs)
    breaches = {o.ticket_id: o for o in _only(standing, Breach)}
    dues = _only(standing, UpdateDue)
    escalations = _only(standing, Escalation)
    per_ticket_dues = Counter(o.ticket_id for o in dues)
    figures = [
        _ticket(tickets[key], breaches.get(key), per_ticket_dues[key], horizon)
        for key in sorted(tickets)
    ]
    return Attainment(
        horizon=horizon,
        outputs=len(standing),
        retracted=retracted,
        overall=_tally(figures),
        attainment=_rows(figures, lambda f: (f.week, f.severity, f.tier, f.customer_id)),
        by_week_severity=_rows(figures, lambda f: (f.week, f.severity, None, None)),
        by_severity_tier=_rows(figures, lambda f: (None, f.severity, f.tier, None)),
        customers=_customers(figures, escalations),
        first_response=_first_response(figures),
        update_dues=_update_dues(dues),
        missed_updates=_missed_updates(figures),
        escalations=_escalations(escalations, tickets),
        acknowledgements=_acknowledgements(standing),
        maintenance=_maintenance(_only(standing, MaintenanceNotice)),
        worst=_worst(figures, top),
    )


def _standing(outputs: Sequence[Output]) -> tuple[list[Output], int]:
    withdrawn = {o.retracted_id for o in outputs if isinstance(o, Retraction)}
    standing = [o for o in outputs if not isinstance(o, Retraction) and o.id not in withdrawn]
    retracted = len({o.id for o in outputs if o.id in withdrawn})
    return standing, retracted


def _only(outputs: Iterable[Output], kind: type[_T]) -> list[_T]:
    return [o for o in outputs if isinstance(o, kind)]


def _ticket(
    ticket: Ticket, breach: Breach | None, dues: int, horizon: datetime | None
) -> TicketFigures:
    responded = ticket.responded_at
    lateness = None
    if breach is not None:
        # Zero when the response was stamped before the breach but read after it, and the
        # policy has no corrections to withdraw the breach.
        lateness = max((responded or horizon or breach.time) - breach.time, timedelta(0))
    outcome = Outcome.BREACHED if breach else Outcome.MET if responded else Outcome.PENDING
    return TicketFigures(
        ticket.ticket_id, ticket.customer_id, ticket.severity, ticket.tier,
        iso_week(ticket.opened_at), outcome,
        None if responded is None else responded - ticket.opened_at,
        lateness, responded is not None, dues,
    )  # fmt: skip


def _tally(figures: Iterable[TicketFigures]) -> Tally:
    counts = Counter(f.outcome for f in figures)
    return Tally(
        counts.total(), counts[Outcome.MET], counts[Outcome.BREACHED], counts[Outcome.PENDING]
    )


Key = tuple[str | None, Severity | None, Tier | None, str | None]


def _rows(
    figures: Iterable[TicketFigures], key: Callable[[TicketFigures], Key]
) -> tuple[AttainmentRow, ...]:
    groups: dict[Key, list[TicketFigures]] = defaultdict(list)
    for figure in figures:
        groups[key(figure)].append(figure)
    return tuple(
        AttainmentRow(*group, _tally(groups[group])) for group in sorted(groups, key=_order)
    )


def _order(key: Key) -> tuple[str, int, int, str]:
    week, severity, tier, customer = key
    return (
        week or "",
        -1 if severity is None else SEVERITIES.index(severity),
        -1 if tier is None else TIERS.index(tier),
        customer or "",
    )


def _spans(figures: Iterable[TicketFigures]) -> list[timedelta]:
    return sorted(f.first_response for f in figures if f.first_response is not None)


def _first_response(figures: Sequence[TicketFigures]) -> tuple[FirstResponseRow, ...]:
    groups: list[tuple[Severity | None, list[timedelta]]] = [
        (severity, _spans(f for f in figures if f.severity is severity)) for severity in SEVERITIES
    ]
    groups.append((None, _spans(figures)))
    return tuple(
        FirstResponseRow(
            severity,
            len(spans),
            FIRST_RESPONSE.counts(spans),
            percentile(spans, 50),
            percentile(spans, 90),
            percentile(spans, 99),
        )
        for severity, spans in groups
        if spans or severity is None
    )


def _customers(
    figures: Sequence[TicketFigures], escalations: Sequence[Escalation]
) -> tuple[CustomerRow, ...]:
    groups: dict[str, list[TicketFigures]] = defaultdict(list)
    for figure in figures:
        groups[figure.customer_id].append(figure)
    escalated = Counter(o.customer_id for o in escalations)
    return tuple(
        CustomerRow(
            customer,
            _tally(group),
            percentile(_spans(group), 90),
            sum(f.update_dues for f in group),
            escalated[customer],
        )
        for customer, group in sorted(groups.items())
    )


def _update_dues(dues: Sequence[UpdateDue]) -> tuple[UpdateDueRow, ...]:
    groups: dict[tuple[str, Severity], list[UpdateDue]] = defaultdict(list)
    for due in dues:
        groups[(iso_week(due.time), due.severity)].append(due)
    return tuple(
        UpdateDueRow(week, severity, len(group), len({o.ticket_id for o in group}))
        for (week, severity), group in sorted(
            groups.items(), key=lambda item: (item[0][0], SEVERITIES.index(item[0][1]))
        )
    )


def _missed_updates(figures: Sequence[TicketFigures]) -> tuple[MissedUpdateRow, ...]:
    rows = []
    for severity in SEVERITIES:
        group = [f for f in figures if f.severity is severity]
        if group:
            missed = [f for f in group if f.update_dues]
            dues = sum(f.update_dues for f in missed)
            rows.append(MissedUpdateRow(severity, len(group), len(missed), dues))
    return tuple(rows)


def _escalations(
    escalations: Sequence[Escalation], tickets: Mapping[str, Ticket]
) -> tuple[EscalationRow, ...]:
    groups: dict[tuple[Severity, int], list[Escalation]] = defaultdict(list)
    for escalation in escalations:
        groups[(escalation.severity, escalation.step)].append(escalation)
    rows = []
    for (severity, step), group in sorted(
        groups.items(), key=lambda item: (SEVERITIES.index(item[0][0]), item[0][1])
    ):
        after = min(o.after for o in group)
        elapsed = sorted(
            o.time - start
            for o in group
            if (start := _clock_start(tickets.get(o.ticket_id), o.cycle)) is not None
        )
        rows.append(
            EscalationRow(
                severity,
                step,
                len(group),
                after,
                percentile(elapsed, 50),
                percentile(elapsed, 90),
                elapsed[-1] if elapsed else None,
                sum(1 for span in elapsed if span > after),
            )
        )
    return tuple(rows)


def _clock_start(ticket: Ticket | None, cycle: int) -> datetime | None:
    """The cycle's clock start, when the last state still knows it (the first or the last)."""
    if ticket is None:
        return None
    if cycle == ticket.cycle:
        return ticket.cycle_start
    return ticket.opened_at if cycle == 1 else None


def _acknowledgements(outputs: Sequence[Output]) -> tuple[AcknowledgementRow, ...]:
    latencies: dict[tuple[Severity, int], list[timedelta]] = defaultdict(list)
    missed: Counter[tuple[Severity, int]] = Counter()
    for output in outputs:
        if isinstance(output, Acknowledged):
            latencies[(output.severity, output.step)].append(output.latency)
        elif isinstance(output, Unacknowledged):
            missed[(output.severity, output.step)] += 1
    keys = sorted(set(latencies) | set(missed), key=lambda k: (SEVERITIES.index(k[0]), k[1]))
    rows = []
    for key in keys:
        spans = sorted(latencies.get(key, ()))
        rows.append(
            AcknowledgementRow(
                *key, len(spans), missed[key], percentile(spans, 50), percentile(spans, 90)
            )
        )
    return tuple(rows)


def _maintenance(notices: Sequence[MaintenanceNotice]) -> MaintenanceFigures:
    violations = [o for o in notices if o.notice is NoticeType.LEAD_TIME_VIOLATION]
    short = {(o.maintenance_id, o.revision) for o in violations}
    announced = sorted(
        (o for o in notices if o.notice is NoticeType.NOTICE),
        key=lambda o: (o.time, o.maintenance_id, o.revision),
    )
    rows = tuple(
        NoticeRow(
            o.maintenance_id,
            o.revision,
            o.kind,
            o.time,
            o.window_start,
            o.lead_time,
            (o.maintenance_id, o.revision) in short,
        )
        for o in announced
    )
    leads = sorted(row.lead_time for row in rows)
    minimums = {o.minimum_notice for o in violations if o.minimum_notice is not None}
    return MaintenanceFigures(
        notices=rows,
        short_notice=len(violations),
        minimum_notice=min(minimums) if minimums else None,
        reminders=sum(1 for o in notices if o.notice is NoticeType.REMINDER),
        cancelled=sum(1 for o in notices if o.notice is NoticeType.CANCELLED),
        lead_buckets=LEAD_TIME.counts(leads),
        lead_p50=percentile(leads, 50),
    )


def _worst(figures: Sequence[TicketFigures], top: int) -> Worst:
    def ranked(value: Callable[[TicketFigures], float]) -> tuple[TicketFigures, ...]:
        chosen = [f for f in figures if value(f) > 0]
        # Largest first; ties by ticket id (figures come sorted by it, and the sort is stable).
        chosen.sort(key=value, reverse=True)
        return tuple(chosen[:top])

    return Worst(
        breach_lateness=ranked(lambda f: _seconds(f.breach_lateness)),
        first_response=ranked(lambda f: _seconds(f.first_response)),
        update_dues=ranked(lambda f: f.update_dues),
    )


def _seconds(span: timedelta | None) -> float:
    return 0.0 if span is None else span.total_seconds()
