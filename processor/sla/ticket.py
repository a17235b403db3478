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
from processor.sla.outputs import Breach, Escalation, Output, UpdateDue
from processor.sla.policy import Policy, Step
from processor.sla.values import evolve
from processor.sla.vocabulary import Severity, Tier
from schemas.cloudevents import (
    Closed,
    Reopened,
    Resolved,
    Responded,
    SeverityChanged,
    StatusChanged,
    TicketEvent,
    TicketOpened,
    Updated,
)

_RANK: Final = {Severity.LOW: 0, Severity.NORMAL: 1, Severity.HIGH: 2, Severity.URGENT: 3}
_ZERO: Final = timedelta(0)


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
_STEP, _BREACH, _UPDATE = 0, 1, 2


class Pending(NamedTuple):
    """A ticket's next clock deadline: when, which kind (`_STEP`, `_BREACH`, `_UPDATE`), and for
    an escalation its step."""

    due: datetime
    kind: int
    step: Step | None


def _earliest(ticket: Ticket, policy: Policy) -> Pending | None:
    """The next clock deadline (not retention) of an open ticket."""
    if ticket.phase is not Phase.OPEN:
        return None
    step = next_step(ticket, policy)
    best: Pending | None = Pending(step[1], _STEP, step[0]) if step else None
    due = ticket.response_due
    if due is not None and (best is None or due < best.due):
        best = Pending(due, _BREACH, None)
    due = update_due(ticket, policy)
    if due is not None and (best is None or due < best.due):
        best = Pending(due, _UPDATE, None)
    return best


def _fire(
    ticket: Ticket, policy: Policy, pending: Pending, floor: datetime | None
) -> tuple[Ticket, Output]:
    """Fire one deadline; `floor` lifts the emitted instant to the event that made it due."""
    due, kind, step = pending
    at = max(due, floor) if floor else due
    if step is not None:
        return _escalate(ticket, step, at), _escalation(ticket, step, at)
    if kind == _BREACH:
        breach = Breach(ticket.ticket_id, ticket.customer_id, ticket.severity, ticket.tier, at)
        return evolve(ticket, response_due=None, breached_at=at), breach
    cycle = ticket.update_cycle + 1
    fired = evolve(ticket, update_start=at, update_paused=_ZERO, update_cycle=cycle)
    frequency = policy.update_frequency[ticket.severity]
    return fired, UpdateDue(
        ticket.ticket_id, ticket.customer_id, ticket.severity, ticket.cycle, cycle, frequency, at
    )


def _escalate(ticket: Ticket, step: Step, at: datetime) -> Ticket:
    return evolve(ticket, steps_done=ticket.steps_done | {(ticket.severity, step.number)})


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
        ticket, output = _fire(ticket, policy, pending, floor)
        outputs.append(output)
    return ticket, outputs, pending


def _next(ticket: Ticket, pending: Pending | None, policy: Policy) -> datetime | None:
    expiry = expires_at(ticket, policy)
    if pending is None:
        return expiry
    return pending.due if expiry is None else min(pending.due, expiry)


def advance(ticket: Ticket, now: datetime, policy: Policy) -> Decision:
    """Fire every deadline due at or before `now`; forget the ticket once its retention ends."""
    ticket, outputs, pending = _sweep(ticket, policy, now, inclusive=True)
    expiry = expires_at(ticket, policy)
    if expiry is not None and expiry <= now:
        return Decision(None, tuple(outputs), None)
    return Decision(ticket, tuple(outputs), _next(ticket, pending, policy))


# -- events -----------------------------------------------------------------------------------


def decide(ticket: Ticket | None, event: TicketEvent, policy: Policy) -> Decision:
    """Apply one event: deadlines due strictly before it fire first, then the event, then catch-ups."""
    if ticket is None:
        return _open(event, policy)
    event_digest = digest(event.id)
    if event_digest in ticket.seen_ids:
        return Decision(ticket, (), next_deadline(ticket, policy), duplicate=True)
    _check_acceptable(ticket, event)
    at = event.time
    ticket, before, _ = _sweep(ticket, policy, at, inclusive=False)
    changes = _changes(ticket, event, policy)
    ticket = evolve(
        ticket, **changes, last_time=at, seen_ids=remember(ticket.seen_ids, event_digest)
    )
    ticket, after, pending = _sweep(ticket, policy, at, inclusive=True, floor=at)
    return Decision(ticket, (*before, *after), _next(ticket, pending, policy))


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
            return _respond(ticket, at)
        case Updated():
            return _restart_updates(ticket, at) if ticket.update_start else {}
        case StatusChanged():
            return _set_status(ticket, event.data.status, at, policy)
        case Resolved():
            return _stop(Phase.RESOLVED) if ticket.phase is Phase.OPEN else {}
        case Closed():
            return {**_stop(Phase.CLOSED), "closed_at": at}
        case Reopened():
            return _reopen(ticket, at)
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
            "paused_since": at if ticket.paused_since else None}  # fmt: skip


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
    return {"phase": phase, "response_due": None, "update_start": None, "update_paused": _ZERO}


def _reopen(ticket: Ticket, at: datetime) -> Changes:
    return {"phase": Phase.OPEN, "cycle": ticket.cycle + 1, "cycle_start": at,
            "steps_done": frozenset(), **_restart_updates(ticket, at)}  # fmt: skip
