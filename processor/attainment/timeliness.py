"""Figures of the outputs that time a ticket's handling and a maintenance's notice: update
dues, escalation steps, acknowledgements, maintenance lead times."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from processor.attainment.figures import LEAD_TIME, iso_week, percentile
from processor.attainment.values import (
    SEVERITIES,
    AcknowledgementRow,
    EscalationRow,
    MaintenanceFigures,
    NoticeRow,
    UpdateDueRow,
)
from processor.sla.outputs import (
    Acknowledged,
    Escalation,
    MaintenanceNotice,
    NoticeType,
    Output,
    Unacknowledged,
    UpdateDue,
)
from processor.sla.ticket import Ticket
from processor.sla.vocabulary import Severity


def update_dues(dues: Sequence[UpdateDue]) -> tuple[UpdateDueRow, ...]:
    groups: dict[tuple[str, Severity], list[UpdateDue]] = defaultdict(list)
    for due in dues:
        groups[(iso_week(due.time), due.severity)].append(due)
    return tuple(
        UpdateDueRow(week, severity, len(group), len({o.ticket_id for o in group}))
        for (week, severity), group in sorted(
            groups.items(), key=lambda item: (item[0][0], SEVERITIES.index(item[0][1]))
        )
    )


def escalations(
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


def acknowledgements(outputs: Sequence[Output]) -> tuple[AcknowledgementRow, ...]:
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


def maintenance(notices: Sequence[MaintenanceNotice]) -> MaintenanceFigures:
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
