"""The per-ticket state machine: `(ticket, event, policy) -> Decision`, and `advance` to fire deadlines.

Every clock is derived from the ticket's recorded instants, so firing a deadline twice from the same
state gives the same outputs with the same ids: a shell may fire from a stale copy and re-derive later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, NamedTuple

from processor.sla.classification import classify
from processor.sla.exceptions import Rejected
from processor.sla.ids import digest, remember
from processor.sla.outputs import (
    Acknowledged,
    Breach,
    DeadlineWarning,
    Escalation,
    Output,
    OutputTopic,
    Retraction,
    SurveyDue,
    Unacknowledged,
    UpdateDue,
)
from processor.sla.policy import MissedAcknowledgement, Policy, Step, Target
from processor.sla.values import evolve
from processor.sla.vocabulary import Severity, Tier
from schemas.cloudevents import (
    Closed,
    EscalationAcknowledged,
    Reopened,
    Resolved,
    Responded,
    SeverityChanged,
    StatusChanged,
    TicketEvent,
    TicketOpened,
    Updated,
)
from schemas.outputs import iso_duration

_RANK: Final = {Severity.LOW: 0, Severity.NORMAL: 1, Severity.HIGH: 2, Severity.URGENT: 3}
_ZERO: Final = timedelta(0)
# Outputs fired by ticks since a ticket's last event, remembered to correct them should a late
# event arrive; past this many, corrections stop until the next event (decisions.md, 37).
MAX_FIRED: Final = 64


class Phase(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    CLOSED = "closed"


@dataclass(frozen=True)  # no slots: `evolve` copies the instance dict
class Ticket:
    """One ticket's SLA state; instants are aware UTC datetimes."""

    ticket_id: str
    customer_id: str
    tier: Tier
    severity: Severity
    phase: Phase
    opened_at: datetime
    cycle: int
    cycle_start: datetime
    last_time: datetime
    response_due: datetime | None = None  # pending initial-response deadline
    responded_at: datetime | None = None
    breached_at: datetime | None = None
    steps_done: frozenset[tuple[Severity, int]] = frozenset()
    update_start: datetime | None = None  # start of the current update window; None: clock stopped
    update_paused: timedelta = _ZERO  # working time paused within the current window
    update_cycle: int = 0  # windows missed since the last update
    paused_since: datetime | None = None  # set while the status is a pausing one
    status: str | None = None
    closed_at: datetime | None = None
    seen_ids: tuple[int, ...] = ()
    # Fields below came with warnings, acknowledgements, corrections and surveys (codec 4).
    warned: frozenset[str] = frozenset()  # "<deadline key>@<point>" of warnings fired
    # Escalation steps awaiting acknowledgement: (severity, step, escalated_at, window start,
    # windows missed).
    awaiting: tuple[tuple[Severity, int, datetime, datetime, int], ...] = ()
    resolved_at: datetime | None = None
    survey_due: datetime | None = None
    surveyed_cycle: int = 0
    last_agent: str | None = None
    # The state right after the last event, and what ticks fired since: (id, type, topic, time).
    base: Ticket | None = None
    fired: tuple[tuple[str, str, str, datetime], ...] = ()
    # The policy version governing the ticket (`name@label`, processor.sla.policy_set), chosen
    # at its clock start (codec 5; "" in states stored before).
    policy: str = ""


Awaiting = tuple[Severity, int, datetime, datetime, int]


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine decided: the new state (None: forget it), outputs in time order, next wake-up."""

    state: Ticket | None
    outputs: tuple[Output, ...]
    next_deadline: datetime | None
    duplicate: bool = False


# -- deadlines --------------------------------------------------------------------------------


def next_step(ticket: Ticket, policy: Policy) -> tuple[Step, datetime] | None:
    """The first escalation step of the current severity not yet emitted in this cycle."""
    if ticket.phase is not Phase.OPEN:
        return None
    for step in policy.ladders.get(ticket.severity, ()):
        if (ticket.severity, step.number) not in ticket.steps_done:
            return step, policy.clock(ticket.severity).add(ticket.cycle_start, step.after)
    return None


def update_due(ticket: Ticket, policy: Policy) -> datetime | None:
    """When the current update window expires; None while stopped, paused or not required."""
    if ticket.phase is not Phase.OPEN or ticket.update_start is None or ticket.paused_since:
        return None
    frequency = policy.update_frequency.get(ticket.severity)
    if frequency is None:
        return None
    return policy.clock(ticket.severity).add(ticket.update_start, frequency + ticket.update_paused)


def expires_at(ticket: Ticket, policy: Policy) -> datetime | None:
    if ticket.closed_at is None:
        return None
    return ticket.closed_at + policy.closed_ticket_retention


def next_deadline(ticket: Ticket, policy: Policy) -> datetime | None:
    return _next(ticket, _earliest(ticket, policy), policy)


# -- firing -----------------------------------------------------------------------------------


# The kinds of deadline, in the order they fire when due at the same instant.
_STEP, _BREACH, _UPDATE, _UNACKNOWLEDGED, _WARNING, _SURVEY = 0, 1, 2, 3, 4, 5


class Pending(NamedTuple):
    """A ticket's next deadline (not retention): when, which kind, and what the kind needs: an
    escalation's `Step`, an awaited acknowledgement's `Awaiting`, a warning's `_Point`."""

    due: datetime
    kind: int
    what: Any = None


class _Point(NamedTuple):
    """A warning point: before the deadline `key` (due `due`), named `label` by the policy."""

    key: str
    label: str
    target: Target
    step: int | None
    due: datetime


def _earliest(ticket: Ticket, policy: Policy) -> Pending | None:
    """The next deadline (not retention): the clocks' of an open ticket, a resolved one's survey."""
    if ticket.phase is not Phase.OPEN:
        due = ticket.survey_due
        return None if due is None else Pending(due, _SURVEY)
    step = next_step(ticket, policy)
    best: Pending | None = Pending(step[1], _STEP, step[0]) if step else None
    due = ticket.response_due
    if due is not None and (best is None or due < best.due):
        best = Pending(due, _BREACH)
    due = update_due(ticket, policy)
    if due is not None and (best is None or due < best.due):
        best = Pending(due, _UPDATE)
    for waiting in ticket.awaiting:
        rule = policy.acknowledgement.get(waiting[0])
        due = waiting[3] if rule is None else policy.clock(waiting[0]).add(waiting[3], rule.within)
        if best is None or due < best.due:
            best = Pending(due, _UNACKNOWLEDGED, waiting)
    if policy.warnings:
        warning = _next_warning(ticket, policy)
        if warning is not None and (best is None or warning.due < best.due):
            best = warning
    return best


def _next_warning(ticket: Ticket, policy: Policy) -> Pending | None:
    """The earliest warning point not yet fired, of the deadlines pending now."""
    rule = policy.warnings.get(ticket.severity)
    if rule is None:
        return None
    clock = policy.clock(ticket.severity)
    best: Pending | None = None
    # (key, target, step, start, span of working time, working time to add, due)
    deadlines: list[tuple[str, Target, int | None, datetime, timedelta, timedelta, datetime]] = []
    if Target.INITIAL_RESPONSE in rule.targets and ticket.response_due is not None:
        span = clock.working_time(ticket.opened_at, ticket.response_due)
        deadlines.append(("initial_response", Target.INITIAL_RESPONSE, None,
                          ticket.opened_at, span, _ZERO, ticket.response_due))  # fmt: skip
    if Target.UPDATE_DUE in rule.targets:
        due = update_due(ticket, policy)
        if due is not None and ticket.update_start is not None:
            key = f"update_due:{ticket.cycle}:{_text(ticket.update_start)}"
            frequency = policy.update_frequency[ticket.severity]
            deadlines.append((key, Target.UPDATE_DUE, None, ticket.update_start, frequency,
                              ticket.update_paused, due))  # fmt: skip
    if Target.ESCALATION in rule.targets:
        for step in policy.ladders.get(ticket.severity, ()):
            if (ticket.severity, step.number) in ticket.steps_done:
                continue
            key = f"escalation:{ticket.cycle}:{ticket.severity}:{step.number}"
            due = clock.add(ticket.cycle_start, step.after)
            deadlines.append((key, Target.ESCALATION, step.number, ticket.cycle_start,
                              step.after, _ZERO, due))  # fmt: skip
    for key, target, number, start, span, extra, due in deadlines:
        points = [(f"{p}%", span * p / 100) for p in rule.percents]
        points += [(iso_duration(lead), span - lead) for lead in rule.leads if lead < span]
        for label, elapsed in points:
            if f"{key}@{label}" in ticket.warned:
                continue
            at = clock.add(start, elapsed + extra)
            if at < due and (best is None or at < best.due):
                best = Pending(at, _WARNING, _Point(key, label, target, number, due))
    return best


def _text(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _fire(
    ticket: Ticket, policy: Policy, pending: Pending, floor: datetime | None
) -> tuple[Ticket, tuple[Output, ...]]:
    """Fire one deadline; `floor` lifts the emitted instant to the event that made it due."""
    due, kind, what = pending
    at = max(due, floor) if floor else due
    if kind == _STEP:
        return _escalate(ticket, what, at, policy), (_escalation(ticket, what, at),)
    if kind == _BREACH:
        breach = Breach(ticket.ticket_id, ticket.customer_id, ticket.severity, ticket.tier, at)
        return evolve(ticket, response_due=None, breached_at=at), (breach,)
    if kind == _UPDATE:
        cycle = ticket.update_cycle + 1
        fired = evolve(ticket, update_start=at, update_paused=_ZERO, update_cycle=cycle,
                       warned=_unwarn(ticket.warned, "update_due:"))  # fmt: skip
        frequency = policy.update_frequency[ticket.severity]
        return fired, (
            UpdateDue(ticket.ticket_id, ticket.customer_id, ticket.severity, ticket.cycle, cycle,
                      frequency, at),
        )  # fmt: skip
    if kind == _UNACKNOWLEDGED:
        return _unacknowledged(ticket, policy, what, at)
    if kind == _WARNING:
        return _warn(ticket, policy, what, at)
    assert kind == _SURVEY
    survey = SurveyDue(
        ticket.ticket_id, ticket.customer_id, ticket.severity, ticket.tier, ticket.cycle,
        ticket.cycle_start, ticket.responded_at, ticket.resolved_at or at, ticket.last_agent, at,
    )  # fmt: skip
    return evolve(ticket, survey_due=None, surveyed_cycle=ticket.cycle), (survey,)


def _escalate(ticket: Ticket, step: Step, at: datetime, policy: Policy) -> Ticket:
    done = ticket.steps_done | {(ticket.severity, step.number)}
    rule = policy.acknowledgement.get(ticket.severity)
    if rule is None or (rule.steps is not None and step.number not in rule.steps):
        return evolve(ticket, steps_done=done)
    waiting = (ticket.severity, step.number, at, at, 0)
    return evolve(ticket, steps_done=done, awaiting=(*ticket.awaiting, waiting))


def _warn(
    ticket: Ticket, policy: Policy, point: _Point, at: datetime
) -> tuple[Ticket, tuple[Output, ...]]:
    """A warning fires once per deadline and point; never at or after its deadline (a change
    that made it due late drops it)."""
    fired = evolve(ticket, warned=ticket.warned | {f"{point.key}@{point.label}"})
    if at >= point.due:
        return fired, ()
    remaining = policy.clock(ticket.severity).working_time(at, point.due)
    return fired, (
        DeadlineWarning(
            ticket.ticket_id, ticket.customer_id, ticket.severity, ticket.tier, ticket.cycle,
            point.target, point.step, point.label, point.due, remaining, point.key, at,
        ),
    )  # fmt: skip


def _unacknowledged(
    ticket: Ticket, policy: Policy, waiting: Awaiting, at: datetime
) -> tuple[Ticket, tuple[Output, ...]]:
    severity, number, escalated_at, _, missed = waiting
    others = tuple(w for w in ticket.awaiting if w is not waiting)
    rule = policy.acknowledgement.get(severity)
    if rule is None:  # no longer asked for (the policy changed)
        return evolve(ticket, awaiting=others), ()
    missed += 1
    then: MissedAcknowledgement | None = None
    if rule.on_missed is MissedAcknowledgement.REPEAT and missed <= rule.repeats:
        then = MissedAcknowledgement.REPEAT
        others = (*others, (severity, number, escalated_at, at, missed))
    follow = None
    if rule.on_missed is MissedAcknowledgement.NEXT_STEP:
        follow = next_step(ticket, policy)
        if follow is not None and follow[0].number > number and severity is ticket.severity:
            then = MissedAcknowledgement.NEXT_STEP
        else:
            follow = None
    step = _step_of(policy, severity, number)
    missed_output = Unacknowledged(
        ticket.ticket_id, ticket.customer_id, severity, ticket.tier, ticket.cycle, number,
        escalated_at, rule.within, missed, then, step.actions if step else (), at,
    )  # fmt: skip
    ticket = evolve(ticket, awaiting=others)
    if follow is None:
        return ticket, (missed_output,)
    return _escalate(ticket, follow[0], at, policy), (
        missed_output,
        _escalation(ticket, follow[0], at),
    )


def _step_of(policy: Policy, severity: Severity, number: int) -> Step | None:
    return next((s for s in policy.ladders.get(severity, ()) if s.number == number), None)


def _unwarn(warned: frozenset[str], prefix: str) -> frozenset[str]:
    """Forget the warnings of deadlines that will not come back (a window that moved on)."""
    if not warned:
        return warned
    return frozenset(w for w in warned if not w.startswith(prefix))


def _escalation(ticket: Ticket, step: Step, at: datetime) -> Escalation:
    return Escalation(
        ticket.ticket_id, ticket.customer_id, ticket.severity, ticket.tier,
        ticket.cycle, step.number, step.after, step.actions, at,
    )  # fmt: skip


def _sweep(
    ticket: Ticket,
    policy: Policy,
    until: datetime,
    *,
    inclusive: bool,
    floor: datetime | None = None,
) -> tuple[Ticket, list[Output], Pending | None]:
    """Fire what is due up to `until`; also return the first deadline left pending."""
    outputs: list[Output] = []
    limit = until if inclusive else until - timedelta(microseconds=1)
    while (pending := _earliest(ticket, policy)) is not None and pending.due <= limit:
        ticket, fired = _fire(ticket, policy, pending, floor)
        outputs += fired
    return ticket, outputs, pending


def _next(ticket: Ticket, pending: Pending | None, policy: Policy) -> datetime | None:
    expiry = expires_at(ticket, policy)
    if pending is None:
        return expiry
    return pending.due if expiry is None else min(pending.due, expiry)


def advance(ticket: Ticket, now: datetime, policy: Policy) -> Decision:
    """Fire every deadline due at or before `now`; forget the ticket once its retention ends."""
    before = ticket
    ticket, outputs, pending = _sweep(ticket, policy, now, inclusive=True)
    expiry = expires_at(ticket, policy)
    if expiry is not None and expiry <= now:
        return Decision(None, tuple(outputs), None)
    if outputs and policy.retractions:
        ticket = _remember_fired(ticket, before, outputs)
    return Decision(ticket, tuple(outputs), _next(ticket, pending, policy))


def _remember_fired(ticket: Ticket, before: Ticket, outputs: list[Output]) -> Ticket:
    """Keep the state of the last event and the outputs fired since, for a late event to correct."""
    fired = (*before.fired, *((o.id, o.type, o.TOPIC.value, o.time) for o in outputs))
    if len(fired) > MAX_FIRED:
        return evolve(ticket, base=None, fired=())
    # After an event a state has no base: it is its own.
    return evolve(ticket, base=before.base or before, fired=fired)


# -- events -----------------------------------------------------------------------------------


def decide(ticket: Ticket | None, event: TicketEvent, policy: Policy) -> Decision:
    """Apply one event: deadlines due strictly before it fire first, then the event, then catch-ups."""
    if ticket is None:
        return _open(event, policy)
    event_digest = digest(event.id)
    if event_digest in ticket.seen_ids:
        return Decision(ticket, (), next_deadline(ticket, policy), duplicate=True)
    _check_acceptable(ticket, event)
    if ticket.fired and ticket.base is not None and ticket.fired[-1][3] >= event.time:
        return _correct(ticket, ticket.base, event, policy)
    return _apply(ticket, event, event_digest, policy)


def _apply(ticket: Ticket, event: TicketEvent, event_digest: int, policy: Policy) -> Decision:
    at = event.time
    if ticket.fired or ticket.base is not None:
        ticket = evolve(ticket, base=None, fired=())
    ticket, before, _ = _sweep(ticket, policy, at, inclusive=False)
    changes = _changes(ticket, event, policy)
    own: tuple[Output, ...] = ()
    if isinstance(event, EscalationAcknowledged):
        own = _acknowledgements(ticket, event, policy)
    ticket = evolve(
        ticket, **changes, last_time=at, seen_ids=remember(ticket.seen_ids, event_digest)
    )
    ticket, after, pending = _sweep(ticket, policy, at, inclusive=True, floor=at)
    return Decision(ticket, (*before, *own, *after), _next(ticket, pending, policy))


def _correct(ticket: Ticket, base: Ticket, event: TicketEvent, policy: Policy) -> Decision:
    """A late event: stamped at or before outputs that ticks already fired since the last event.

    The event is applied to the state of the last event, the result advanced as far as the
    ticks had fired; what was emitted and is not in that history is retracted, what the history
    has and was not emitted is emitted now (decisions.md, 37).
    """
    horizon = ticket.fired[-1][3]
    applied = _apply(base, event, digest(event.id), policy)
    assert applied.state is not None
    advanced = advance(applied.state, horizon, policy)
    redone = (*applied.outputs, *advanced.outputs)
    emitted = {fired[0] for fired in ticket.fired}
    kept = {output.id for output in redone}
    retractions = tuple(
        Retraction(
            ticket.ticket_id,
            ticket.customer_id,
            output_id,
            output_type,
            OutputTopic(topic),
            event.id,
            event.type,
            event.time,
            max(time, event.time),
        )
        for output_id, output_type, topic, time in ticket.fired
        if output_id not in kept
    )
    fresh = tuple(output for output in redone if output.id not in emitted)
    state = advanced.state
    if state is not None and advanced.outputs:
        # What the ticks have fired since this event, as if they had fired after it.
        fired = tuple((o.id, o.type, o.TOPIC.value, o.time) for o in advanced.outputs)
        state = evolve(state, base=applied.state, fired=fired[-MAX_FIRED:])
    return Decision(state, (*fresh, *retractions), advanced.next_deadline)


def _acknowledgements(
    ticket: Ticket, event: EscalationAcknowledged, policy: Policy
) -> tuple[Output, ...]:
    """The awaited steps an acknowledgement answers (none when already acknowledged)."""
    role = event.data.role.value if event.data.role else None
    return tuple(
        Acknowledged(
            ticket.ticket_id,
            ticket.customer_id,
            severity,
            ticket.tier,
            ticket.cycle,
            number,
            role,
            escalated_at,
            _window(policy, severity),
            event.id,
            event.time,
        )
        for severity, number, escalated_at, _, _ in ticket.awaiting
        if number == event.data.step
    )


def _window(policy: Policy, severity: Severity) -> timedelta:
    rule = policy.acknowledgement.get(severity)
    return _ZERO if rule is None else rule.within


def _check_acceptable(ticket: Ticket, event: TicketEvent) -> None:
    if ticket.phase is Phase.CLOSED:
        raise Rejected("ticket_closed", f"ticket {ticket.ticket_id} is closed")
    if event.time < ticket.last_time:
        raise Rejected("out_of_order", "event time is before the ticket's last event")
    if isinstance(event, TicketOpened):
        raise Rejected("already_opened", f"ticket {ticket.ticket_id} is already open")
    if isinstance(event, Reopened) and ticket.phase is not Phase.RESOLVED:
        raise Rejected("not_resolved", "only a resolved ticket can be reopened")


def _open(event: TicketEvent, policy: Policy) -> Decision:
    if not isinstance(event, TicketOpened):
        raise Rejected("unknown_ticket", f"no open ticket {event.subject}; {event.type} needs one")
    data = event.data
    severity = data.severity or classify(data, policy.classification)
    if severity is None:
        raise Rejected(
            "unclassifiable", "no severity, and no impact or problem type to classify by"
        )
    at = event.time
    target = policy.response_targets[(severity, data.support_tier)]
    ticket = Ticket(
        ticket_id=event.subject,
        customer_id=data.customer_id,
        tier=data.support_tier,
        severity=severity,
        phase=Phase.OPEN,
        opened_at=at,
        cycle=1,
        cycle_start=at,
        last_time=at,
        response_due=policy.clock(severity).add(at, target),
        seen_ids=(digest(event.id),),
    )
    ticket, outputs, pending = _sweep(ticket, policy, at, inclusive=True, floor=at)
    return Decision(ticket, tuple(outputs), _next(ticket, pending, policy))


Changes = dict[str, Any]


def _changes(ticket: Ticket, event: TicketEvent, policy: Policy) -> Changes:
    """What the event changes, as field values: the caller makes one copy with all of them."""
    at = event.time
    match event:
        case SeverityChanged():
            return _retarget(ticket, event.data.severity, at, policy)
        case Responded():
            return {**_respond(ticket, at), **_agent(ticket, event.data.agent_id)}
        case Updated():
            restart = _restart_updates(ticket, at) if ticket.update_start else {}
            return {**restart, **_agent(ticket, event.data.agent_id)}
        case StatusChanged():
            return _set_status(ticket, event.data.status, at, policy)
        case Resolved():
            return _resolve(ticket, at, policy) if ticket.phase is Phase.OPEN else {}
        case Closed():
            return {**_stop(Phase.CLOSED), "closed_at": at}
        case Reopened():
            return _reopen(ticket, at)
        case EscalationAcknowledged():
            return _acknowledge(ticket, event.data.step)
    raise AssertionError(f"unhandled event type {event.type}")  # pragma: no cover


def _retarget(ticket: Ticket, severity: Severity, at: datetime, policy: Policy) -> Changes:
    if severity is ticket.severity:
        return {}
    due = ticket.response_due
    if due is not None:
        clock, target = policy.clock(severity), policy.response_targets[(severity, ticket.tier)]
        if _RANK[severity] > _RANK[ticket.severity]:
            due = min(due, clock.add(at, target))
        else:
            due = clock.add(ticket.opened_at, target)
    return {"severity": severity, "response_due": due}


def _respond(ticket: Ticket, at: datetime) -> Changes:
    if ticket.responded_at is not None:
        # A later response is customer-visible communication like any update.
        return _restart_updates(ticket, at) if ticket.update_start else {}
    restart = _restart_updates(ticket, at) if ticket.phase is Phase.OPEN else {}
    return {"responded_at": at, "response_due": None, **restart}


def _restart_updates(ticket: Ticket, at: datetime) -> Changes:
    return {"update_start": at, "update_paused": _ZERO, "update_cycle": 0,
            "paused_since": at if ticket.paused_since else None,
            "warned": _unwarn(ticket.warned, "update_due:")}  # fmt: skip


def _set_status(ticket: Ticket, status: str, at: datetime, policy: Policy) -> Changes:
    pausing = status in policy.pausing_statuses
    if pausing and ticket.paused_since is None:
        return {"status": status, "paused_since": at}
    if not pausing and ticket.paused_since is not None:
        paused = _paused_total(ticket, at, policy)
        return {"status": status, "paused_since": None, "update_paused": paused}
    return {"status": status}


def _paused_total(ticket: Ticket, at: datetime, policy: Policy) -> timedelta:
    if ticket.update_start is None or ticket.paused_since is None:
        return ticket.update_paused
    since = max(ticket.paused_since, ticket.update_start)
    return ticket.update_paused + policy.clock(ticket.severity).working_time(since, at)


def _stop(phase: Phase) -> Changes:
    return {"phase": phase, "response_due": None, "update_start": None, "update_paused": _ZERO,
            "awaiting": ()}  # fmt: skip


def _resolve(ticket: Ticket, at: datetime, policy: Policy) -> Changes:
    survey = policy.survey
    due = None
    if survey is not None and ticket.severity in survey.severities:
        due = at + survey.delay  # wall-clock time, as help desks send surveys
    return {**_stop(Phase.RESOLVED), "resolved_at": at, "survey_due": due}


def _reopen(ticket: Ticket, at: datetime) -> Changes:
    return {"phase": Phase.OPEN, "cycle": ticket.cycle + 1, "cycle_start": at,
            "steps_done": frozenset(), "warned": frozenset(), "survey_due": None,
            **_restart_updates(ticket, at)}  # fmt: skip


def _agent(ticket: Ticket, agent_id: str | None) -> Changes:
    return {} if agent_id is None or agent_id == ticket.last_agent else {"last_agent": agent_id}


def _acknowledge(ticket: Ticket, step: int) -> Changes:
    """An acknowledgement of a step this cycle escalated; a repeat of one changes nothing."""
    if not any(number == step for _, number in ticket.steps_done):
        raise Rejected("not_escalated", f"step {step} of ticket {ticket.ticket_id} has not been"
                       " escalated in this cycle")  # fmt: skip
    awaiting = tuple(w for w in ticket.awaiting if w[1] != step)
    return {"awaiting": awaiting} if len(awaiting) != len(ticket.awaiting) else {}
