"""An SLA attainment summary of a replay: per severity and tier, and escalations per step."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from processor.sla.outputs import Escalation, Output
from processor.sla.ticket import Ticket
from processor.sla.vocabulary import Severity, Tier
from schemas.outputs import iso_duration


@dataclass(slots=True)
class Row:
    tickets: int = 0
    met: int = 0
    breached: int = 0
    response_times: list[timedelta] = field(default_factory=list)

    @property
    def attainment(self) -> float | None:
        decided = self.met + self.breached
        return 100.0 * self.met / decided if decided else None


def summarise(tickets: Iterable[Ticket]) -> dict[tuple[Severity, Tier], Row]:
    """Attainment of the initial-response target; a ticket neither answered nor breached is pending."""
    rows: dict[tuple[Severity, Tier], Row] = defaultdict(Row)
    for ticket in tickets:
        row = rows[(ticket.severity, ticket.tier)]
        row.tickets += 1
        if ticket.breached_at is not None:
            row.breached += 1
        elif ticket.responded_at is not None:
            row.met += 1
        if ticket.responded_at is not None:
            row.response_times.append(ticket.responded_at - ticket.opened_at)
    return dict(rows)


def escalations_per_step(outputs: Iterable[Output]) -> Counter[tuple[Severity, int]]:
    return Counter((o.severity, o.step) for o in outputs if isinstance(o, Escalation))


def _median(spans: list[timedelta]) -> timedelta:
    ordered = sorted(spans)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def render(tickets: Iterable[Ticket], outputs: Iterable[Output]) -> str:
    rows = summarise(tickets)
    lines = [
        "| severity | tier | tickets | met | breached | attainment | median first response |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for severity in Severity:
        for tier in Tier:
            row = rows.get((severity, tier))
            if row is None:
                continue
            attained = "n/a" if row.attainment is None else f"{row.attainment:.1f}%"
            first = iso_duration(_median(row.response_times)) if row.response_times else "n/a"
            lines.append(
                f"| {severity} | {tier} | {row.tickets} | {row.met} | {row.breached} "
                f"| {attained} | {first} |"
            )
    lines += ["", "| severity | step | escalations |", "|---|---:|---:|"]
    for (severity, step), count in sorted(escalations_per_step(outputs).items()):
        lines.append(f"| {severity} | {step} | {count} |")
    return "\n".join(lines) + "\n"
