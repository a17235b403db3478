"""Invariants of the SLA engine over random ticket histories, timer firings and garbage input.

Each run is checked against a small reference model of the contract ("Semantics of the default
policy"), tracked from the events the engine accepted and the outputs it emitted.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from hypothesis import HealthCheck, assume, given, settings, target
from hypothesis import strategies as st

from processor.sla import engine
from processor.sla.exceptions import Rejected
from processor.sla.outputs import Breach, Escalation, Output, UpdateDue
from processor.sla.policy import Policy
from processor.sla.ticket import Decision, Ticket
from schemas.cloudevents import (
    REASONS,
    Closed,
    EscalationAcknowledged,
    InputEvent,
    InvalidEvent,
    Reopened,
    Resolved,
    Responded,
    Severity,
    SeverityChanged,
    StatusChanged,
    TicketOpened,
    Tier,
    Updated,
    parse_event,
)
from schemas.outputs import cloudevent

from .factories import to_bytes
from .strategies import (
    POLICIES,
    Advance,
    Step,
    gaps,
    garbage,
    mangled_events,
    near_instants,
    policy_names,
    retargeting_scripts,
    ticket_scripts,
    update_scripts,
    valid_events,
)

TICK = timedelta(microseconds=1)
# The general mix, twice as likely as each focused family (see their docstrings).
SCRIPTS = st.one_of(ticket_scripts(), ticket_scripts(), retargeting_scripts(), update_scripts())
IN_ORDER = st.one_of(
    ticket_scripts(late=False), ticket_scripts(late=False), retargeting_scripts(), update_scripts()
)
PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
_RANK = {Severity.LOW: 0, Severity.NORMAL: 1, Severity.HIGH: 2, Severity.URGENT: 3}


# -- running a script -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Record:
    """One step of a run: the state before it, and the engine's decision or rejection reason."""

    step: Step
    before: Ticket | None
    decision: Decision | None = None
    rejected: str | None = None

    @property
    def horizon(self) -> datetime:
        return self.step.now if isinstance(self.step, Advance) else self.step.time

    @property
    def outputs(self) -> tuple[Output, ...]:
        return self.decision.outputs if self.decision is not None else ()

    @property
    def event(self) -> InputEvent | None:
        return None if isinstance(self.step, Advance) else self.step


def run(script: Sequence[Step], policy: Policy) -> list[Record]:
    """Feed the steps to the engine like a shell would; stop once the ticket is forgotten."""
    state: Ticket | None = None
    records: list[Record] = []
    for step in script:
        if isinstance(step, Advance):
            if state is None:
                continue
            decision = engine.advance(state, step.now, policy)
        else:
            try:
                decision = engine.decide(state, step, policy)
            except Rejected as exc:
                records.append(Record(step, state, rejected=exc.reason))
                continue
        assert isinstance(decision, Decision)
        records.append(Record(step, state, decision))
        if decision.state is None:
            break
        state = decision.state
    return records


def final_state(records: Sequence[Record]) -> Ticket | None:
    decided = [r.decision for r in records if r.decision is not None]
    return decided[-1].state if decided else None


# -- the reference model --------------------------------------------------------------------------


@dataclass(slots=True)
class Model:
    """What the contract says one ticket's state is, from accepted events and emitted outputs."""

    policy: Policy
    phase: str | None = None  # None: never opened
    severity: Severity = Severity.LOW
    tier: Tier = Tier.BASIC
    opened_at: datetime | None = None
    cycle: int = 0
    cycle_start: datetime | None = None
    severity_since: datetime | None = None
    last_time: datetime | None = None
    ids: frozenset[str] = frozenset()
    paused: bool = False
    responded: bool = False
    update_clock: bool = False  # the update clock runs (not counting pauses)
    update_mark: datetime | None = None  # last restart of the update clock, or last update_due
    update_count: int = 0  # update_due cycles since the last restart
    update_paused: timedelta = timedelta(0)  # working time paused within the current window
    paused_since: datetime | None = None
    response_due: datetime | None = None
    due_set_at: datetime | None = None
    steps_done: frozenset[tuple[int, Severity, int]] = frozenset()

    def rejection(self, event: InputEvent) -> str | None:
        """The reason the contract gives for refusing `event`, None when it must be accepted."""
        if self.phase is None:
            return None if isinstance(event, TicketOpened) else "unknown_ticket"
        if event.id in self.ids:
            return None
        if self.phase == "closed":
            return "ticket_closed"
        assert self.last_time is not None
        if event.time < self.last_time:
            return "out_of_order"
        if isinstance(event, TicketOpened):
            return "already_opened"
        if isinstance(event, Reopened) and self.phase != "resolved":
            return "not_resolved"
        if isinstance(event, EscalationAcknowledged) and event.data.step not in self.escalated(
            event.time
        ):
            return "not_escalated"
        return None

    def escalated(self, before: datetime) -> set[int]:
        """The steps of this cycle emitted, or due strictly before `before` (an event fires
        them first)."""
        steps = {step for cycle, _, step in self.steps_done if cycle == self.cycle}
        if self.phase == "open" and self.cycle_start is not None:
            clock = self.policy.clock(self.severity)
            ladder = self.policy.ladders.get(self.severity, ())
            steps |= {s.number for s in ladder if clock.add(self.cycle_start, s.after) < before}
        return steps

    def duplicate(self, event: InputEvent) -> bool:
        return self.phase is not None and event.id in self.ids

    def target(self, severity: Severity) -> timedelta:
        return self.policy.response_targets[(severity, self.tier)]

    def apply(self, event: InputEvent, state: Ticket) -> None:
        at = event.time
        self.ids |= {event.id}
        self.last_time = at
        match event:
            case TicketOpened():
                self.phase, self.severity, self.tier = "open", state.severity, state.tier
                self.opened_at = self.cycle_start = self.severity_since = at
                self.cycle = 1
                self._set_due(
                    self.policy.clock(self.severity).add(at, self.target(self.severity)), at
                )
            case SeverityChanged(data=data) if data.severity is not self.severity:
                self._retarget(data.severity, at)
            case Responded():
                restart = self.phase == "open" and (not self.responded or self.update_clock)
                self.responded, self.response_due = True, None
                if restart:
                    self._restart_updates(at)
            case Updated() if self.update_clock:
                self._restart_updates(at)
            case StatusChanged(data=data):
                self._set_status(data.status in self.policy.pausing_statuses, at)
            case Resolved() if self.phase == "open":
                self.phase, self.response_due = "resolved", None
                self._stop_updates()
            case Closed():
                self.phase, self.response_due = "closed", None
                self._stop_updates()
            case Reopened():
                self.phase, self.cycle, self.cycle_start = "open", self.cycle + 1, at
                self._restart_updates(at)

    def absorb(self, output: Output) -> None:
        match output:
            case Escalation():
                self.steps_done |= {(output.cycle, output.severity, output.step)}
            case Breach():
                self.response_due = None
            case UpdateDue():
                self.update_count, self.update_mark = output.cycle, output.time
                self.update_paused = timedelta(0)

    def _retarget(self, severity: Severity, at: datetime) -> None:
        if self.response_due is not None:
            assert self.opened_at is not None
            clock = self.policy.clock(severity)
            if _RANK[severity] > _RANK[self.severity]:
                self._set_due(min(self.response_due, clock.add(at, self.target(severity))), at)
            else:
                self._set_due(clock.add(self.opened_at, self.target(severity)), at)
        self.severity, self.severity_since = severity, at

    def _set_due(self, due: datetime, at: datetime) -> None:
        self.response_due, self.due_set_at = due, at

    def _restart_updates(self, at: datetime) -> None:
        self.update_clock, self.update_mark, self.update_count = True, at, 0
        self.update_paused = timedelta(0)
        self.paused_since = at if self.paused else None

    def _stop_updates(self) -> None:
        self.update_clock, self.update_paused = False, timedelta(0)

    def _set_status(self, pausing: bool, at: datetime) -> None:
        if pausing and not self.paused:
            self.paused, self.paused_since = True, at
        elif not pausing and self.paused:
            if self.update_clock and self.paused_since is not None:
                assert self.update_mark is not None
                since = max(self.paused_since, self.update_mark)
                clock = self.policy.clock(self.severity)
                self.update_paused += clock.working_time(since, at)
            self.paused, self.paused_since = False, None

    def update_due(self) -> datetime | None:
        """When the contract has the next update_due emitted; None while none is pending."""
        frequency = self.policy.update_frequency.get(self.severity)
        if self.phase != "open" or not self.update_clock or self.paused or frequency is None:
            return None
        assert self.update_mark is not None
        assert self.last_time is not None
        clock = self.policy.clock(self.severity)
        # A window that an event (a severity change, an end of pause) put in the past is due
        # at that event: nothing else can make a pending deadline earlier than the last event.
        return max(clock.add(self.update_mark, frequency + self.update_paused), self.last_time)

    def step_due(self, step: int, severity: Severity) -> datetime:
        """When the contract has a step of the current cycle emitted: its elapsed time, or at once."""
        assert self.cycle_start is not None
        assert self.severity_since is not None
        after = self.policy.ladders[severity][step - 1].after
        due = self.policy.clock(severity).add(self.cycle_start, after)
        return max(due, self.severity_since, self.cycle_start)

    def breach_due(self) -> datetime | None:
        if self.response_due is None:
            return None
        assert self.due_set_at is not None
        return max(self.response_due, self.due_set_at)


@dataclass(frozen=True, slots=True)
class Moment:
    """A record, or one of its outputs, with the model as it stood just before."""

    record: Record
    output: Output | None
    model: Model


def walk(records: Sequence[Record], policy: Policy) -> Iterator[Moment]:
    """Replay the records through the model: outputs due before an event, the event, the rest."""
    model = Model(policy)
    for record in records:
        yield Moment(record, None, copy.copy(model))
        decision, pending = record.decision, record.event
        if decision is None or decision.duplicate:
            continue
        assert decision.state is not None or pending is None
        for output in decision.outputs:
            if pending is not None and output.time >= pending.time:
                model.apply(pending, decision.state)  # type: ignore[arg-type]
                pending = None
            yield Moment(record, output, copy.copy(model))
            model.absorb(output)
        if pending is not None:
            model.apply(pending, decision.state)  # type: ignore[arg-type]


def walk_end(records: Sequence[Record], policy: Policy) -> Model:
    """The model after the last record."""
    model = Model(policy)
    for moment in walk([*records, Record(Advance(records[-1].horizon), None)], policy):
        model = moment.model
    return model


def outputs_of(moments: Iterator[Moment]) -> Iterator[tuple[Output, Model, Record]]:
    for moment in moments:
        if moment.output is not None:
            yield moment.output, moment.model, moment.record


def with_final_advance(script: list[Step]) -> list[Step]:
    """The script, then a timer at its latest instant: everything due by then has fired."""
    times = [s.now if isinstance(s, Advance) else s.time for s in script]
    return [*script, Advance(max(times))]


def key(output: Output) -> tuple[str, str, datetime]:
    return output.type, output.id, output.time


# -- lifecycle --------------------------------------------------------------------------------


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_nothing_is_emitted_while_resolved_or_closed(script: list[Step], policy_name: str) -> None:
    policy = POLICIES[policy_name]
    for output, model, _ in outputs_of(walk(run(script, policy), policy)):
        assert model.phase == "open", f"{output.type} at {output.time} while {model.phase}"
        if isinstance(output, Escalation | UpdateDue):
            cycle = output.cycle if isinstance(output, Escalation) else output.ticket_cycle
            assert cycle == model.cycle, f"{output.type} of cycle {cycle} in cycle {model.cycle}"
            assert model.cycle_start is not None
            assert output.time >= model.cycle_start


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_rejections_and_duplicates_follow_the_contract(
    script: list[Step], policy_name: str
) -> None:
    policy = POLICIES[policy_name]
    for moment in walk(run(script, policy), policy):
        record, model = moment.record, moment.model
        event = record.event
        if moment.output is not None or event is None:
            continue
        expected = model.rejection(event)
        if isinstance(event, TicketOpened) and model.phase is None and event.data.severity is None:
            assert record.rejected in (None, "unclassifiable")
            continue
        assert record.rejected == expected, f"{event.type} at {event.time}"
        if model.duplicate(event):
            assert record.decision is not None
            assert record.decision.duplicate
            assert record.decision.outputs == ()
            assert record.decision.state == record.before
        elif record.decision is not None:
            assert not record.decision.duplicate


# -- at most once -----------------------------------------------------------------------------


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_each_step_breach_and_update_cycle_is_emitted_once(
    script: list[Step], policy_name: str
) -> None:
    policy = POLICIES[policy_name]
    records = run(script, policy)
    outputs = [o for r in records for o in r.outputs]
    ids = Counter(o.id for o in outputs)
    assert not [i for i, n in ids.items() if n > 1], "an output id was emitted twice"
    steps = Counter((o.cycle, o.severity, o.step) for o in outputs if isinstance(o, Escalation))
    assert max(steps.values(), default=0) <= 1, f"a step twice in one cycle: {steps}"
    assert sum(isinstance(o, Breach) for o in outputs) <= 1


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_update_due_cycles_count_up_between_updates(script: list[Step], policy_name: str) -> None:
    policy = POLICIES[policy_name]
    shortest = min(policy.update_frequency.values())
    records = run(with_final_advance(script), policy)
    dues = 0
    for output, model, _ in outputs_of(walk(records, policy)):
        if not isinstance(output, UpdateDue):
            continue
        dues += 1
        assert model.update_clock, "update_due without a running update clock"
        assert not model.paused, "update_due while the status pauses the update clock"
        assert output.severity in policy.update_frequency
        assert output.cycle == model.update_count + 1
        assert model.update_mark is not None
        assert output.time >= model.update_mark + shortest
        assert output.time == model.update_due()
    target(float(dues), label="update_due outputs")
    if final_state(records) is None:
        return
    due = walk_end(records, policy).update_due()
    assert due is None or due > records[-1].horizon, f"the update due at {due} never came"


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_no_breach_once_responded_and_none_missed(script: list[Step], policy_name: str) -> None:
    policy = POLICIES[policy_name]
    records = run(with_final_advance(script), policy)
    retargeted = 0
    for moment in walk(records, policy):
        output, model = moment.output, moment.model
        if isinstance(output, Breach):
            assert not model.responded, "breach after the initial response"
            assert output.time == model.breach_due()
        elif output is None and isinstance(moment.record.event, SeverityChanged):
            retargeted += model.response_due is not None and moment.record.rejected is None
    target(float(retargeted), label="severity changes before the response")
    if final_state(records) is None:
        return
    last = walk_end(records, policy)
    due = last.breach_due()
    if last.phase == "open" and due is not None:
        assert due > records[-1].horizon, f"the response deadline {due} passed without a breach"


# -- escalation ladder ------------------------------------------------------------------------


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_escalations_follow_the_ladder_of_the_current_severity(
    script: list[Step], policy_name: str
) -> None:
    policy = POLICIES[policy_name]
    records = run(with_final_advance(script), policy)
    for output, model, _ in outputs_of(walk(records, policy)):
        if isinstance(output, Escalation):
            assert output.severity is model.severity
            assert output.after == policy.ladders[output.severity][output.step - 1].after
            assert output.time == model.step_due(output.step, output.severity)
    if final_state(records) is None:
        return
    last = walk_end(records, policy)
    if last.phase != "open":
        return
    for step in policy.ladders.get(last.severity, ()):
        if last.step_due(step.number, last.severity) <= records[-1].horizon:
            assert (last.cycle, last.severity, step.number) in last.steps_done, (
                f"step {step.number} of {last.severity} was due and never emitted"
            )


# -- order and horizon ------------------------------------------------------------------------


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_outputs_are_in_time_order_within_the_horizon(script: list[Step], policy_name: str) -> None:
    policy = POLICIES[policy_name]
    latest_horizon: datetime | None = None
    latest_output: datetime | None = None
    late = False
    for moment in walk(run(script, policy), policy):
        record, model = moment.record, moment.model
        if moment.output is not None:
            continue
        times = [o.time for o in record.outputs]
        assert times == sorted(times)
        assert all(t <= record.horizon for t in times), "an output after the decision's horizon"
        opened = model.opened_at or record.horizon
        assert all(t >= opened for t in times), "an output before the ticket was opened"
        if record.decision is None or record.decision.duplicate:
            continue
        in_order = latest_horizon is None or record.horizon >= latest_horizon
        # An accepted event older than a timer already fired may rightly emit in the past.
        late = late or not in_order
        if not late and times and latest_output is not None:
            assert times[0] >= latest_output, "a ticket's outputs went back in time"
        latest_horizon = max(filter(None, (latest_horizon, record.horizon)))
        latest_output = max(filter(None, (latest_output, *times)), default=None)


# -- idempotent, stale-state-safe firing ------------------------------------------------------


def outcome(state: Ticket, event: InputEvent, policy: Policy) -> Decision | str:
    """The decision, or the reason for the rejection."""
    try:
        decision = engine.decide(state, event, policy)
    except Rejected as exc:
        return exc.reason
    assert isinstance(decision, Decision)
    return decision


def decided_states(records: Sequence[Record]) -> list[tuple[Ticket, datetime]]:
    return [
        (r.decision.state, r.horizon)
        for r in records
        if r.decision is not None and r.decision.state is not None
    ]


@PROPERTY
@given(script=IN_ORDER, policy_name=policy_names, data=st.data())
def test_advancing_in_two_hops_equals_one_hop(
    script: list[Step], policy_name: str, data: st.DataObject
) -> None:
    policy = POLICIES[policy_name]
    states = decided_states(run(script, policy))
    assume(states)
    state, horizon = data.draw(st.sampled_from(states), label="state")
    t1 = horizon + data.draw(gaps, label="first hop")
    t2 = t1 + data.draw(gaps, label="second hop")
    first = engine.advance(state, t1, policy)
    direct = engine.advance(state, t2, policy)
    if first.state is None:
        assert direct.state is None
        assert direct.outputs == first.outputs
        return
    second = engine.advance(first.state, t2, policy)
    assert [*map(key, first.outputs + second.outputs)] == [*map(key, direct.outputs)]
    assert first.outputs + second.outputs == direct.outputs
    assert second.state == direct.state
    assert second.next_deadline == direct.next_deadline
    # A stale copy fired again (a shell that lost the new state) says exactly the same.
    assert engine.advance(state, t2, policy) == direct
    assert engine.advance(state, t1, policy) == first


@PROPERTY
@given(script=IN_ORDER, policy_name=policy_names, data=st.data())
def test_a_timer_fired_before_an_event_changes_nothing(
    script: list[Step], policy_name: str, data: st.DataObject
) -> None:
    policy = POLICIES[policy_name]
    records = run(script, policy)
    pairs = [
        (i, j)
        for i, r in enumerate(records)
        if r.decision is not None and r.decision.state is not None
        for j in range(i + 1, len(records))
        if records[j].event is not None and records[j].horizon > r.horizon
    ]
    assume(pairs)
    i, j = data.draw(st.sampled_from(pairs), label="state, event")
    state, event = records[i].decision.state, records[j].event  # type: ignore[union-attr]
    assert state is not None
    assert event is not None
    span = (event.time - records[i].horizon) // TICK
    t1 = records[i].horizon + TICK * data.draw(st.integers(0, span - 1), label="timer")
    fired = engine.advance(state, t1, policy)
    assume(fired.state is not None)
    assert isinstance(fired.state, Ticket)
    direct, after = outcome(state, event, policy), outcome(fired.state, event, policy)
    if isinstance(direct, str) or isinstance(after, str):
        assert direct == after, "a timer fired before the event changed whether it is accepted"
        return
    if direct.duplicate:  # a repeated id is ignored whatever the timers did
        assert after.duplicate
        assert after.outputs == ()
        return
    assert fired.outputs + after.outputs == direct.outputs
    assert after.state == direct.state


# -- determinism and next deadline ------------------------------------------------------------


def transcript(records: Sequence[Record]) -> list[bytes]:
    lines = []
    for record in records:
        lines.append(orjson.dumps([record.rejected, record.decision and record.decision.duplicate]))
        lines += [orjson.dumps(cloudevent(o, o.time)) for o in record.outputs]
    return lines


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_the_same_script_gives_the_same_outputs_and_ids(
    script: list[Step], policy_name: str
) -> None:
    policy = POLICIES[policy_name]
    first, second = run(script, policy), run(list(script), policy)
    assert transcript(first) == transcript(second)
    assert [r.decision for r in first] == [r.decision for r in second]
    reparsed = [
        s if isinstance(s, Advance) else parse_event(s.model_dump_json().encode()) for s in script
    ]
    assert transcript(run(reparsed, policy)) == transcript(first)


@PROPERTY
@given(script=SCRIPTS, policy_name=policy_names)
def test_next_deadline_is_in_the_future_and_exact(script: list[Step], policy_name: str) -> None:
    policy = POLICIES[policy_name]
    for record in run(script, policy):
        decision = record.decision
        if decision is None or decision.state is None:
            continue
        state, due = decision.state, decision.next_deadline
        assert due == engine.next_deadline(state, policy)
        if decision.duplicate:
            assert record.before is not None
            assert due == engine.next_deadline(record.before, policy)
            continue
        if due is None:
            continue
        assert due > record.horizon, f"next deadline {due} is not after {record.horizon}"
        assert engine.advance(state, due - TICK, policy).outputs == ()
        at_due = engine.advance(state, due, policy)
        assert at_due.outputs or at_due.state is None, f"nothing fell due at {due}"


# -- garbage never crashes --------------------------------------------------------------------


@PROPERTY
@given(raw=garbage)
def test_parse_event_returns_an_event_or_raises_invalid_event(raw: bytes) -> None:
    try:
        parse_event(raw)
    except InvalidEvent as exc:
        reason = exc.reason
    else:
        return
    assert reason in REASONS


def drive(soup: list[dict[str, object]], waits: list[timedelta], policy: Policy) -> None:
    """Route parsed events by (domain, subject) as the shells do, then let timers fire a while.

    Timers fire a few days after each subject's last event, as a shell would: the engine emits
    every missed update window, so an instant centuries later is a different test.
    """
    states: dict[tuple[str, str], engine.State] = {}
    for attributes in soup:
        try:
            event = parse_event(to_bytes(attributes))
        except InvalidEvent:
            continue
        subject = (engine.domain_of(event), event.subject)
        try:
            decision = engine.decide(states.get(subject), event, policy)
        except Rejected:
            continue
        if decision.state is None:
            states.pop(subject, None)
        else:
            states[subject] = decision.state
    for wait in waits:
        for subject, state in list(states.items()):
            decision = engine.advance(state, state.last_time + wait, policy)
            if decision.state is None:
                del states[subject]
            else:
                states[subject] = decision.state
                engine.next_deadline(decision.state, policy)


waits = st.lists(st.timedeltas(timedelta(0), timedelta(days=3)), max_size=4)


@PROPERTY
@given(
    soup=st.lists(valid_events() | mangled_events(), min_size=1, max_size=25),
    waits=waits,
    policy_name=policy_names,
)
def test_decide_returns_or_rejects_in_any_order(
    soup: list[dict[str, object]], waits: list[timedelta], policy_name: str
) -> None:
    """Any instant a CloudEvent may carry, the ends of datetime's range included."""
    drive(soup, waits, POLICIES[policy_name])


@PROPERTY
@given(
    soup=st.lists(valid_events(instants=near_instants), min_size=1, max_size=25),
    waits=waits,
    policy_name=policy_names,
)
def test_decide_returns_or_rejects_in_any_order_at_ordinary_times(
    soup: list[dict[str, object]], waits: list[timedelta], policy_name: str
) -> None:
    drive(soup, waits, POLICIES[policy_name])
