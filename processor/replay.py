"""The replay shell: the engine on a simulated clock over a JSONL file of CloudEvents.

Two orders of input. By default (`replay`) lines are in time order per subject, and every
deadline fires before any event stamped after it: what a processor that reads each event before
its subject's next deadline emits. In arrival order (`replay_arrivals`) each line may carry the
instant it reached the processor, which may lag its event time: deadlines due before that
instant fire first, so an event stamped before them is *late* and, under a policy with
corrections, retracts what it would have prevented. Both run the same engine.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

import orjson

from processor.instants import epoch, instant
from processor.sla import engine
from processor.sla.deadlines import DeadlineIndex
from processor.sla.exceptions import Rejected
from processor.sla.outputs import Output
from processor.sla.policy_set import PolicySet
from processor.sla.ticket import Ticket
from processor.sla.timeline import Entry, event_entry, output_entries, rejected_entry
from schemas.cloudevents import InputEvent, InvalidEvent, TicketEvent, parse_event

Key = tuple[engine.Domain, str]


@dataclass(slots=True)
class ReplayResult:
    """Outputs in emission order, and the last state of every ticket seen (for the report)."""

    outputs: list[Output] = field(default_factory=list)
    emitted_at: list[datetime] = field(default_factory=list)  # of each output, simulated
    tickets: dict[str, Ticket] = field(default_factory=dict)
    events: int = 0
    bad_lines: int = 0
    skipped_after_until: int = 0
    timeline: list[Entry] = field(default_factory=list)  # of the watched ticket, if any
    horizon: datetime | None = None  # every timer due by then has fired


@dataclass(slots=True)
class _Watch:
    """Records one ticket's timeline entries as the replay goes (`--timeline ID`)."""

    ticket_id: str | None
    entries: list[Entry]

    def watches(self, event: InputEvent) -> bool:
        return event.subject == self.ticket_id and engine.domain_of(event) is engine.Domain.TICKET

    def decided(
        self, event: InputEvent, decision: engine.AnyDecision, now: datetime | None
    ) -> None:
        """`now`: when the event arrived (None: outputs are emitted when they fall due)."""
        if not self.watches(event):
            return
        assert isinstance(event, TicketEvent)
        if decision.duplicate:
            self.entries.append(rejected_entry(event, "duplicate"))
            return
        early = [o for o in decision.outputs if o.time < event.time]
        self.fired(engine.Domain.TICKET, event.subject, early, now)
        assert isinstance(decision.state, Ticket)
        self.entries.append(event_entry(event, decision.state))
        self.fired(engine.Domain.TICKET, event.subject, decision.outputs[len(early) :], now)

    def rejected(self, event: InputEvent, reason: str, known: bool) -> None:
        if known and self.watches(event):
            assert isinstance(event, TicketEvent)
            self.entries.append(rejected_entry(event, reason))

    def fired(
        self, domain: engine.Domain, subject: str, outputs: Iterable[Output], now: datetime | None
    ) -> None:
        if subject == self.ticket_id and domain is engine.Domain.TICKET:
            for output in outputs:
                emitted = output.time if now is None else max(output.time, now)
                self.entries += output_entries((output,), emitted)


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
    policy: engine.Policies,
    until: datetime | None,
    errors: TextIO,
    timeline: str | None = None,
) -> ReplayResult:
    """Apply events in input order (time order per subject), then fire every timer up to `until`;
    record the timeline of ticket `timeline`."""
    return replay_each(events, (policy,), until, errors, timeline)[0]


def replay_each(
    events: Iterable[tuple[int, InputEvent]],
    policies: Sequence[engine.Policies],
    until: datetime | None,
    errors: TextIO,
    timeline: str | None = None,
) -> list[ReplayResult]:
    """`replay` under each policy (or set) in one pass over the events: each is read and parsed
    once. Rejections are reported as the first policy sees them."""
    runs = [_Run(engine.as_set(policy), timeline) for policy in policies]
    quiet = io.StringIO()
    last_time: datetime | None = None
    for number, event in events:
        if until is not None and event.time > until:
            for run in runs:
                run.result.skipped_after_until += 1
            continue
        last_time = event.time if last_time is None else max(last_time, event.time)
        for n, run in enumerate(runs):
            run.decide(number, event, errors if n == 0 else quiet)
        quiet.seek(0)
        quiet.truncate()
    for run in runs:
        run.finish(until or last_time)
    return [run.result for run in runs]


class _Run:
    """One policy's replay: the states, and the outputs stamped for their emission order."""

    def __init__(self, book: PolicySet, timeline: str | None) -> None:
        self.book = book
        self.result = ReplayResult()
        self.watch = _Watch(timeline, self.result.timeline)
        self.states: dict[Key, engine.State] = {}
        self.order: dict[Key, int] = {}
        self.stamped: list[tuple[datetime, int, int, Output]] = []

    def decide(self, number: int, event: InputEvent, errors: TextIO) -> None:
        key = (engine.domain_of(event), event.subject)
        rank = self.order.setdefault(key, len(self.order))
        self.result.events += 1
        try:
            decision = engine.decide(self.states.get(key), event, self.book)
        except Rejected as exc:
            errors.write(f"line {number}: rejected ({exc.reason}): {exc}\n")
            self.watch.rejected(event, exc.reason, key in self.states)
            return
        self.watch.decided(event, decision, None)
        _record(self.result, self.states, key, decision, self.stamped, rank)

    def finish(self, horizon: datetime | None) -> None:
        """Fire every timer up to `horizon`; outputs in emission order."""
        result = self.result
        result.horizon = horizon
        if horizon is not None:
            for key, state in list(self.states.items()):
                decision = engine.advance(state, horizon, self.book)
                self.watch.fired(key[0], key[1], decision.outputs, None)
                _record(result, self.states, key, decision, self.stamped, self.order[key])
        self.stamped.sort(key=lambda item: item[:3])
        result.outputs = [output for *_, output in self.stamped]
        result.emitted_at = [output.time for output in result.outputs]


# -- arrival order ---------------------------------------------------------------------------


def read_arrivals(
    lines: Iterable[bytes], errors: TextIO
) -> Iterator[tuple[int, datetime | None, InputEvent]]:
    """Lines in arrival order: a CloudEvent (it arrives at its own time, or as soon as the one
    before it), or `{"arrived_at": RFC 3339, "event": CloudEvent}`."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        arrived: datetime | None = None
        raw = line.rstrip(b"\r\n")
        try:
            document: Any = orjson.loads(raw)
            if isinstance(document, dict) and "arrived_at" in document:
                arrived = _arrival(document.get("arrived_at"))
                raw = orjson.dumps(document.get("event"))
            yield number, arrived, parse_event(raw)
        except orjson.JSONDecodeError as exc:
            errors.write(f"line {number}: malformed_json: {exc}\n")
        except InvalidEvent as exc:
            errors.write(f"line {number}: {exc.reason}: {exc}\n")


def _arrival(value: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidEvent("invalid_envelope", "arrived_at must be an RFC 3339 instant")
    return instant(epoch(moment))


def replay_arrivals(
    lines: Iterable[tuple[int, datetime | None, InputEvent]],
    policy: engine.Policies,
    until: datetime | None,
    errors: TextIO,
    timeline: str | None = None,
) -> ReplayResult:
    """Apply events in arrival order on one simulated clock; before each, fire every deadline
    due before it arrived. Outputs are in emission order, each emitted when its deadline fell
    due, or when the event that caused it arrived."""
    result = ReplayResult()
    watch = _Watch(timeline, result.timeline)
    states: dict[str, engine.State] = {}
    index = DeadlineIndex()
    clock: datetime | None = None

    def record(key: str, decision: engine.AnyDecision, now: datetime) -> None:
        if decision.state is None:
            states.pop(key, None)
            index.cancel(key)
        else:
            states[key] = decision.state
            if isinstance(decision.state, Ticket):
                result.tickets[decision.state.ticket_id] = decision.state
            if decision.next_deadline is None:
                index.cancel(key)
            else:
                index.arm(key, epoch(decision.next_deadline))
        for output in decision.outputs:
            result.outputs.append(output)
            result.emitted_at.append(max(output.time, now))

    def fire(upto: datetime, *, inclusive: bool) -> None:
        bound = epoch(upto) if inclusive else epoch(upto) - 1e-6
        while (due := index.peek()) is not None and due <= bound:
            for key, seconds in index.pop_due(due):
                when = instant(seconds)
                decision = engine.advance(states[key], when, policy)
                domain, _, subject = key.partition(":")
                watch.fired(engine.Domain(domain), subject, decision.outputs, when)
                record(key, decision, when)

    for number, arrived, event in lines:
        at = max(arrived or event.time, clock) if clock else arrived or event.time
        if until is not None and at > until:
            result.skipped_after_until += 1
            continue
        fire(at, inclusive=False)
        clock = at
        result.events += 1
        key = f"{engine.domain_of(event)}:{event.subject}"
        try:
            decision = engine.decide(states.get(key), event, policy)
        except Rejected as exc:
            errors.write(f"line {number}: rejected ({exc.reason}): {exc}\n")
            watch.rejected(event, exc.reason, key in states)
            continue
        watch.decided(event, decision, at)
        record(key, decision, at)
    horizon = result.horizon = until or clock
    if horizon is not None:
        fire(horizon, inclusive=True)
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
