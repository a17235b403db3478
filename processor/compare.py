"""What-if on history: the same events replayed under two policies (or sets), side by side.

Per ticket (or maintenance), the outputs one policy emits and the other does not (`gained`
under B, `lost` under B) and those both emit at different times (`moved`: an output's id names
its logical event, a breach or an escalation step, not when it falls due); per severity, tier
and customer, the initial-response attainment under each, as the attainment report counts it
(`processor.attainment`: a ticket whose breach stands is breached, one answered without is met,
else pending); per output type and severity, the counts under each. Retracted outputs do not
count.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from processor.attainment.compute import standing_outputs, tally, ticket_figures
from processor.attainment.render_data import tally_fields
from processor.attainment.values import Tally, TicketFigures
from processor.replay import ReplayResult
from processor.sla.outputs import Escalation, Output
from schemas.outputs import rfc3339

TEXT_TICKETS: Final = 20  # tickets listed in the text form (the JSON lists them all)
TEXT_CUSTOMERS: Final = 20


@dataclass(slots=True)
class Difference:
    """One subject's outputs under A and B that differ."""

    gained: list[Output] = field(default_factory=list)  # under B only
    lost: list[Output] = field(default_factory=list)  # under A only
    moved: list[tuple[Output, Output]] = field(default_factory=list)  # (A's, B's)

    @property
    def size(self) -> int:
        return len(self.gained) + len(self.lost) + len(self.moved)


@dataclass(slots=True)
class Comparison:
    names: tuple[str, str]
    subjects: dict[str, Difference]
    attainment: dict[tuple[str, str], tuple[Tally, Tally]]  # (dimension, value)
    counts: dict[tuple[str, str], tuple[int, int]]  # (output type, severity or "")
    outputs: tuple[int, int]


def compare(a: ReplayResult, b: ReplayResult, names: tuple[str, str]) -> Comparison:
    standing_a, standing_b = standing_outputs(a.outputs)[0], standing_outputs(b.outputs)[0]
    return Comparison(
        names,
        _differences(standing_a, standing_b),
        _attainment(
            ticket_figures(a.tickets, standing_a, a.horizon),
            ticket_figures(b.tickets, standing_b, b.horizon),
        ),
        _counts(standing_a, standing_b),
        (len(standing_a), len(standing_b)),
    )


def _differences(a: list[Output], b: list[Output]) -> dict[str, Difference]:
    by_id_a, by_id_b = {o.id: o for o in a}, {o.id: o for o in b}
    found: dict[str, Difference] = defaultdict(Difference)
    for output in a:
        other = by_id_b.get(output.id)
        if other is None:
            found[output.subject].lost.append(output)
        elif other.time != output.time:
            found[output.subject].moved.append((output, other))
    for output in b:
        if output.id not in by_id_a:
            found[output.subject].gained.append(output)
    return dict(sorted(found.items()))


def _attainment(
    a: list[TicketFigures], b: list[TicketFigures]
) -> dict[tuple[str, str], tuple[Tally, Tally]]:
    """The report's initial-response tallies (attainment.compute) overall and per severity,
    tier and customer, under A and B."""
    groups: dict[tuple[str, str], tuple[list[TicketFigures], list[TicketFigures]]] = {}
    for side, figures in enumerate((a, b)):
        for figure in figures:
            for key in (
                ("all", ""),
                ("severity", figure.severity.value),
                ("support_tier", figure.tier.value),
                ("customer_id", figure.customer_id),
            ):
                groups.setdefault(key, ([], []))[side].append(figure)
    return {key: (tally(pair[0]), tally(pair[1])) for key, pair in sorted(groups.items())}


def _counts(a: list[Output], b: list[Output]) -> dict[tuple[str, str], tuple[int, int]]:
    def count(outputs: list[Output]) -> Counter[tuple[str, str]]:
        return Counter((o.type, str(getattr(o, "severity", "") or "")) for o in outputs)

    under_a, under_b = count(a), count(b)
    return {key: (under_a[key], under_b[key]) for key in sorted(under_a.keys() | under_b.keys())}


# -- forms ------------------------------------------------------------------------------------


def as_json(comparison: Comparison) -> dict[str, Any]:
    name_a, name_b = comparison.names
    return {
        "policies": {"a": name_a, "b": name_b},
        "outputs": {"a": comparison.outputs[0], "b": comparison.outputs[1]},
        "subjects_differing": len(comparison.subjects),
        "attainment": [
            {
                "dimension": dimension,
                "value": value,
                "a": tally_fields(pair[0]),
                "b": tally_fields(pair[1]),
            }
            for (dimension, value), pair in comparison.attainment.items()
        ],
        "counts": [
            {"type": kind, "severity": severity or None, "a": n_a, "b": n_b}
            for (kind, severity), (n_a, n_b) in comparison.counts.items()
        ],
        "subjects": [
            {
                "subject": subject,
                "gained": [_brief(o) for o in diff.gained],
                "lost": [_brief(o) for o in diff.lost],
                "moved": [
                    {**_brief(o_a), "time_a": rfc3339(o_a.time), "time_b": rfc3339(o_b.time)}
                    for o_a, o_b in diff.moved
                ],
            }
            for subject, diff in comparison.subjects.items()
        ],
    }


def _brief(output: Output) -> dict[str, Any]:
    brief: dict[str, Any] = {"id": output.id, "type": output.type, "time": rfc3339(output.time)}
    if isinstance(output, Escalation):
        brief["step"] = output.step
    return brief


def as_text(comparison: Comparison) -> str:
    name_a, name_b = comparison.names
    lines = [
        f"A: {name_a}",
        f"B: {name_b}",
        "",
        f"outputs: {comparison.outputs[0]} under A, {comparison.outputs[1]} under B; "
        f"{len(comparison.subjects)} subjects differ",
        "",
        "| attainment (initial response) | | tickets | A met | A breached | A % "
        "| B met | B breached | B % | change |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows = comparison.attainment
    named = [k for k in rows if k[0] != "customer_id"]
    customers = sorted(
        (k for k in rows if k[0] == "customer_id"),
        key=lambda k: (-abs(_change(rows[k]) or 0.0), k[1]),
    )[:TEXT_CUSTOMERS]
    for key in (*named, *customers):
        a, b = rows[key]
        change = _change((a, b))
        lines.append(
            f"| {key[0]} | {key[1]} | {a.tickets} | {a.met} | {a.breached} | {_pct(a.attainment)} "
            f"| {b.met} | {b.breached} | {_pct(b.attainment)} "
            f"| {'n/a' if change is None else f'{change:+.2f}'} |"
        )
    lines += ["", "| output | severity | A | B | change |", "|---|---|---:|---:|---:|"]
    for (kind, severity), (n_a, n_b) in comparison.counts.items():
        lines.append(f"| {kind} | {severity or '-'} | {n_a} | {n_b} | {n_b - n_a:+d} |")
    biggest = sorted(comparison.subjects.items(), key=lambda item: (-item[1].size, item[0]))
    if biggest:
        lines += ["", f"| subject (the {TEXT_TICKETS} most changed) | gained | lost | moved |",
                  "|---|---|---|---|"]  # fmt: skip
        for subject, diff in biggest[:TEXT_TICKETS]:
            lines.append(
                f"| {subject} | {_list(diff.gained)} | {_list(diff.lost)} | {_moves(diff.moved)} |"
            )
    return "\n".join(lines) + "\n"


def _change(pair: tuple[Tally, Tally]) -> float | None:
    a, b = pair[0].attainment, pair[1].attainment
    return None if a is None or b is None else round(b - a, 2)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _list(outputs: Iterable[Output]) -> str:
    return ", ".join(f"{_name(o)} {rfc3339(o.time)}" for o in outputs) or "-"


def _moves(pairs: Iterable[tuple[Output, Output]]) -> str:
    return ", ".join(f"{_name(a)} {rfc3339(a.time)} → {rfc3339(b.time)}" for a, b in pairs) or "-"


def _name(output: Output) -> str:
    step = f" {output.step}" if isinstance(output, Escalation) else ""
    return f"{output.type.rpartition('.')[2]}{step}"
