"""The report's figures from a replay: pure and deterministic, no I/O.

Every figure comes from the tickets' last states and the outputs that stand: an output a
`Retraction` withdrew counts nowhere, nor do the retractions themselves.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

from processor.attainment import timeliness
from processor.attainment.figures import FIRST_RESPONSE, iso_week, percentile
from processor.attainment.values import (
    SEVERITIES,
    TIERS,
    Attainment,
    AttainmentRow,
    CustomerRow,
    FirstResponseRow,
    MissedUpdateRow,
    Outcome,
    Tally,
    TicketFigures,
    Worst,
)
from processor.replay import ReplayResult
from processor.sla.outputs import (
    Breach,
    Escalation,
    MaintenanceNotice,
    Output,
    Retraction,
    UpdateDue,
)
from processor.sla.ticket import Ticket
from processor.sla.vocabulary import Severity, Tier

_T = TypeVar("_T")


def of_replay(result: ReplayResult, top: int = 20) -> Attainment:
    return compute(result.tickets, result.outputs, result.horizon, top=top)


def compute(
    tickets: Mapping[str, Ticket],
    outputs: Sequence[Output],
    horizon: datetime | None,
    *,
    top: int = 20,
) -> Attainment:
    standing, retracted = standing_outputs(outputs)
    dues = _only(standing, UpdateDue)
    escalations = _only(standing, Escalation)
    figures = ticket_figures(tickets, standing, horizon)
    return Attainment(
        horizon=horizon,
        outputs=len(standing),
        retracted=retracted,
        overall=tally(figures),
        attainment=_rows(figures, lambda f: (f.week, f.severity, f.tier, f.customer_id)),
        by_week_severity=_rows(figures, lambda f: (f.week, f.severity, None, None)),
        by_severity_tier=_rows(figures, lambda f: (None, f.severity, f.tier, None)),
        customers=_customers(figures, escalations),
        first_response=_first_response(figures),
        update_dues=timeliness.update_dues(dues),
        missed_updates=_missed_updates(figures),
        escalations=timeliness.escalations(escalations, tickets),
        acknowledgements=timeliness.acknowledgements(standing),
        maintenance=timeliness.maintenance(_only(standing, MaintenanceNotice)),
        worst=_worst(figures, top),
    )


def ticket_figures(
    tickets: Mapping[str, Ticket], standing: Sequence[Output], horizon: datetime | None
) -> list[TicketFigures]:
    """Each ticket's figures (by ticket id), from the outputs that stand."""
    breaches = {o.ticket_id: o for o in _only(standing, Breach)}
    dues = Counter(o.ticket_id for o in _only(standing, UpdateDue))
    return [_ticket(tickets[key], breaches.get(key), dues[key], horizon) for key in sorted(tickets)]


def standing_outputs(outputs: Sequence[Output]) -> tuple[list[Output], int]:
    """The outputs no retraction withdrew, and how many were withdrawn."""
    withdrawn = {o.retracted_id for o in outputs if isinstance(o, Retraction)}
    kept = [o for o in outputs if not isinstance(o, Retraction)]
    if not withdrawn:  # an id is a digest: computed only when there is something to match
        return kept, 0
    ids = [o.id for o in kept]
    standing = [o for o, key in zip(kept, ids, strict=True) if key not in withdrawn]
    return standing, len(withdrawn & set(ids))


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


def tally(figures: Iterable[TicketFigures]) -> Tally:
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
        AttainmentRow(*group, tally(groups[group])) for group in sorted(groups, key=_order)
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
            tally(group),
            percentile(_spans(group), 90),
            sum(f.update_dues for f in group),
            escalated[customer],
        )
        for customer, group in sorted(groups.items())
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
