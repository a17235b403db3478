"""An SLA attainment summary of a replay: per severity and tier, and escalations per step."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from processor.sla.outputs import Acknowledged, Escalation, Output, Retraction, Unacknowledged
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


@dataclass(slots=True)
class AcknowledgementRow:
    acknowledged: int = 0
    missed: int = 0  # windows missed (an unacknowledged step counts once per window)
    latencies: list[timedelta] = field(default_factory=list)


def acknowledgements(outputs: Iterable[Output]) -> dict[tuple[Severity, int], AcknowledgementRow]:
    """Per severity and step: acknowledgements, their latencies, and windows missed."""
    rows: dict[tuple[Severity, int], AcknowledgementRow] = defaultdict(AcknowledgementRow)
    for output in outputs:
        if isinstance(output, Acknowledged):
            row = rows[(output.severity, output.step)]
            row.acknowledged += 1
            row.latencies.append(output.latency)
        elif isinstance(output, Unacknowledged):
            rows[(output.severity, output.step)].missed += 1
    return dict(rows)


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
    outputs = list(outputs)
    withdrawn = {o.retracted_id for o in outputs if isinstance(o, Retraction)}
    standing = [o for o in outputs if o.id not in withdrawn]
    lines += ["", "| severity | step | escalations |", "|---|---:|---:|"]
    for (severity, step), count in sorted(escalations_per_step(standing).items()):
        lines.append(f"| {severity} | {step} | {count} |")
    acknowledged = acknowledgements(outputs)
    if acknowledged:
        lines += ["", "| severity | step | acknowledged | windows missed | median latency |",
                  "|---|---:|---:|---:|---:|"]  # fmt: skip
        for (severity, step), ack in sorted(acknowledged.items()):
            latency = iso_duration(_median(ack.latencies)) if ack.latencies else "n/a"
            lines.append(f"| {severity} | {step} | {ack.acknowledged} | {ack.missed} | {latency} |")
    retracted = Counter(o.retracted_type for o in outputs if isinstance(o, Retraction))
    if retracted:
        lines += ["", "| retracted (late events) | outputs |", "|---|---:|"]
        lines += [f"| {kind} | {count} |" for kind, count in sorted(retracted.items())]
    return "\n".join(lines) + "\n"
