"""The replay shell: the engine on a simulated clock over a JSONL file of CloudEvents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TextIO

from processor.sla import engine
from processor.sla.exceptions import Rejected
from processor.sla.outputs import Output
from processor.sla.policy import Policy
from processor.sla.ticket import Ticket
from schemas.cloudevents import InputEvent, InvalidEvent, parse_event

Key = tuple[engine.Domain, str]


@dataclass(slots=True)
class ReplayResult:
    """Outputs in emission order, and the last state of every ticket seen (for the report)."""

    outputs: list[Output] = field(default_factory=list)
    tickets: dict[str, Ticket] = field(default_factory=dict)
    events: int = 0
    bad_lines: int = 0
    skipped_after_until: int = 0


def read_events(lines: Iterable[bytes], errors: TextIO) -> Iterator[tuple[int, InputEvent]]:
    """Parse each non-blank line; a bad one is reported with its number and skipped."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield number, parse_event(line.rstrip(b"\r\n"))
        except InvalidEvent as exc:
            errors.write(f"line {number}: {exc.reason}: {exc}\n")


def replay(
    events: Iterable[tuple[int, InputEvent]],
    policy: Policy,
    until: datetime | None,
    errors: TextIO,
) -> ReplayResult:
    """Apply events in input order (time order per subject), then fire every timer up to `until`."""
    result = ReplayResult()
    states: dict[Key, engine.State] = {}
    order: dict[Key, int] = {}
    stamped: list[tuple[datetime, int, int, Output]] = []
    last_time: datetime | None = None
    for number, event in events:
        if until is not None and event.time > until:
            result.skipped_after_until += 1
            continue
        key = (engine.domain_of(event), event.subject)
        rank = order.setdefault(key, len(order))
        result.events += 1
        last_time = event.time if last_time is None else max(last_time, event.time)
        try:
            decision = engine.decide(states.get(key), event, policy)
        except Rejected as exc:
            errors.write(f"line {number}: rejected ({exc.reason}): {exc}\n")
            continue
        _record(result, states, key, decision, stamped, rank)
    horizon = until or last_time
    if horizon is not None:
        for key, state in list(states.items()):
            _record(
                result, states, key, engine.advance(state, horizon, policy), stamped, order[key]
            )
    stamped.sort(key=lambda item: item[:3])
    result.outputs = [output for *_, output in stamped]
    return result


def _record(
    result: ReplayResult,
    states: dict[Key, engine.State],
    key: Key,
    decision: engine.AnyDecision,
    stamped: list[tuple[datetime, int, int, Output]],
    rank: int,
) -> None:
    if decision.state is None:
        states.pop(key, None)
    else:
        states[key] = decision.state
        if isinstance(decision.state, Ticket):
            result.tickets[decision.state.ticket_id] = decision.state
    # Ties in time are broken by the subject's first appearance, then by emission order.
    stamped.extend((o.time, rank, len(stamped), o) for o in decision.outputs)
