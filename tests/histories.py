"""Reproducible random histories of ticket and maintenance events, timed on and around deadlines.

Each subject's events are checked against the engine as they are generated, so every event is
accepted except the few deliberately invalid ones (subjects `H{seed}-X{n}`, never opened) and
the verbatim repeats, which the engine ignores as duplicates.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from processor.sla import engine
from processor.sla.exceptions import Rejected
from processor.sla.maintenance import Maintenance
from processor.sla.policy import Policy
from processor.sla.ticket import Phase, Ticket
from schemas.cloudevents import parse_event

Data = dict[str, Any] | None
Event = tuple[datetime, str, int, str, bytes]  # time, subject, sequence, domain, bytes

_US: Final = timedelta(microseconds=1)
_REPEAT: Final = 0.02  # share of events sent twice, the repeat right after the original
_TIERS: Final = ("premium", "select", "basic")
_SEVERITIES: Final = ("urgent", "high", "normal", "low")
_IMPACTS: Final = ("service_down", "partial", "minor", "none")
_OTHER_PROBLEMS: Final = ("database", "billing", "performance", "Web Services")


def histories(
    seed: int,
    *,
    tickets: int,
    maintenances: int,
    start: datetime,
    end: datetime,
    policy: engine.Policies,
) -> list[tuple[str, bytes]]:
    """(domain, CloudEvent JSON bytes) with domain "tickets" or "maintenance"; deterministic for a seed"""
    rng = random.Random(seed)
    span = _Span(start.astimezone(UTC), end.astimezone(UTC))
    invalid = set(rng.sample(range(tickets), round(tickets / 100)))
    events: list[Event] = []
    for n in range(tickets):
        events += _ticket(_Walk(rng, policy, span, "tickets", f"H{seed}-T{n}"), f"c{n % 7}")
        if n in invalid:
            events.append(_invalid(rng, span, f"H{seed}-X{n}"))
    for n in range(maintenances):
        events += _maintenance(_Walk(rng, policy, span, "maintenance", f"H{seed}-M{n}"), n)
    events.sort(key=lambda event: event[:3])  # (time, subject, sequence) is unique
    return [(domain, raw) for *_, domain, raw in events]


@dataclass(frozen=True, slots=True)
class _Span:
    start: datetime
    end: datetime

    def anywhere(self, rng: random.Random, share: float = 1.0) -> datetime:
        return self.start + (self.end - self.start) * share * rng.random()


@dataclass(slots=True)
class _Walk:
    """One subject's history so far, and its state in the engine."""

    rng: random.Random
    policy: engine.Policies
    span: _Span
    domain: str
    subject: str
    state: engine.State | None = None
    last: datetime | None = None
    sent: int = 0
    events: list[Event] = field(default_factory=list)

    def offer(self, type_: str, at: datetime, data: Data = None) -> bool:
        """Keep the event if the engine accepts it; maybe repeat it verbatim."""
        self.sent += 1
        raw = _encode(self.rng, f"{self.subject}-{self.sent}", type_, at, self.subject, data)
        try:
            self.state = engine.decide(self.state, parse_event(raw), self.policy).state
        except Rejected:
            return False
        self.last = at
        for _ in range(2 if self.rng.random() < _REPEAT else 1):
            self.events.append((at, self.subject, len(self.events), self.domain, raw))
        return True

    def next_time(self, before: datetime | None = None) -> datetime | None:
        """On, just around or well after the next deadline; None once past the end."""
        assert self.state is not None
        assert self.last is not None
        limit = self.span.end if before is None else min(self.span.end, before - _US)
        deadline = engine.next_deadline(self.state, self.policy)
        if deadline is not None and deadline > limit:
            deadline = None  # beyond reach: a random gap instead
        at = _near(self.rng, self.last, deadline, self.span.end - self.span.start)
        if at > limit:
            return limit if self.rng.random() < 0.3 else None
        return max(at, self.last)


def _near(
    rng: random.Random, last: datetime, deadline: datetime | None, span: timedelta
) -> datetime:
    few = min(timedelta(minutes=rng.uniform(1, 5)), span / 100)
    offset = rng.choice((timedelta(0), timedelta(0), -_US, _US, -few, few, None, None))
    if deadline is None or offset is None:
        return last + span * rng.uniform(0, 0.12)
    return deadline + offset


def _encode(
    rng: random.Random, event_id: str, type_: str, at: datetime, subject: str, data: Data
) -> bytes:
    time_ = at.isoformat(timespec="microseconds").replace("+00:00", rng.choice(("Z", "+00:00")))
    body: dict[str, Any] = {"specversion": "1.0", "id": event_id, "source": "histories",
                            "type": type_, "time": time_, "subject": subject}  # fmt: skip
    if data is not None:
        body["data"] = data
    return orjson.dumps(body)


# -- tickets ------------------------------------------------------------------------------------


def _ticket(walk: _Walk, customer: str) -> list[Event]:
    opened = walk.span.anywhere(walk.rng, 0.8)
    while not walk.offer("ticket.opened", opened, _opened(walk.rng, _plain(walk.policy), customer)):
        pass
    for _ in range(walk.rng.randint(1, 14)):
        at = walk.next_time()
        if at is None or not _ticket_step(walk, at):
            break
    return walk.events


def _ticket_step(walk: _Walk, at: datetime) -> bool:
    """One more accepted event at `at`; False once the ticket is closed."""
    assert isinstance(walk.state, Ticket)
    for _ in range(5):
        type_, data = _move(walk.rng, walk.state)
        if walk.offer(type_, at, data):
            return type_ != "ticket.closed"
    return True


def _plain(policies: engine.Policies) -> Policy:
    """A set's default policy (its first version): classification and notice to generate by."""
    book = engine.as_set(policies)
    return book.policies[book.default][0].policy


def _opened(rng: random.Random, policy: Policy, customer: str) -> dict[str, Any]:
    data: dict[str, Any] = {"customer_id": customer, "support_tier": rng.choice(_TIERS)}
    if rng.random() < 0.5:
        return {**data, "severity": rng.choice(_SEVERITIES)}
    rules = policy.classification
    problems = (*sorted(rules.low_problem_types | rules.urgent_problem_types), *_OTHER_PROBLEMS)
    data["impact"] = rng.choice(_IMPACTS)
    if rng.random() < 0.8:
        data["problem_type"] = rng.choice(problems)
    if rng.random() < 0.7:
        data["workaround_available"] = rng.random() < 0.4
    return data


def _move(rng: random.Random, ticket: Ticket) -> tuple[str, Data]:
    if ticket.phase is Phase.RESOLVED:
        weights = {"ticket.reopened": 3, "ticket.closed": 3, "ticket.updated": 0.5,
                   "ticket.status_changed": 0.5}  # fmt: skip
    else:
        weights = {"ticket.responded": 1 if ticket.responded_at else 4, "ticket.updated": 3,
                   "ticket.status_changed": 2, "ticket.severity_changed": 2,
                   "ticket.resolved": 2, "ticket.closed": 0.5}  # fmt: skip
        if ticket.steps_done:
            weights["ticket.escalation_acknowledged"] = 2
    type_ = rng.choices(list(weights), list(weights.values()))[0]
    return type_, _ticket_data(rng, ticket, type_)


def _ticket_data(rng: random.Random, ticket: Ticket, type_: str) -> Data:
    if type_ in ("ticket.responded", "ticket.updated"):
        return rng.choice((None, {"agent_id": f"a{rng.randrange(20)}"}))
    if type_ == "ticket.status_changed":
        return {"status": "open" if ticket.paused_since else "pending_customer"}
    if type_ == "ticket.escalation_acknowledged":
        data: dict[str, Any] = {"step": rng.choice(sorted(n for _, n in ticket.steps_done))}
        if rng.random() < 0.5:
            data["role"] = rng.choice(("tier1", "tier2", "support_manager", "support_director"))
        return data
    if type_ == "ticket.severity_changed":
        return {"severity": rng.choice([s for s in _SEVERITIES if s != ticket.severity])}
    return None


def _invalid(rng: random.Random, span: _Span, subject: str) -> Event:
    """An event for a ticket never opened (or opened without anything to classify by)."""
    type_, data = rng.choice(
        (
            ("ticket.updated", None),
            ("ticket.responded", {"agent_id": "a1"}),
            ("ticket.closed", None),
            ("ticket.opened", {"customer_id": "c0", "support_tier": "basic"}),
        )
    )
    at = span.anywhere(rng)
    return at, subject, 0, "tickets", _encode(rng, f"{subject}-1", type_, at, subject, data)


# -- maintenance --------------------------------------------------------------------------------


def _maintenance(walk: _Walk, n: int) -> list[Event]:
    rng, at = walk.rng, walk.span.anywhere(walk.rng)
    kind = "planned" if rng.random() < 0.7 else "emergency"
    scheduled: dict[str, Any] = {
        "kind": kind,
        **_window(rng, _plain(walk.policy), at),
        "summary": f"change {n}",
    }
    if rng.random() < 0.5:
        scheduled |= {"services": ["api"], "customers": [f"c{n % 7}"]}
    walk.offer("maintenance.scheduled", at, scheduled)
    for _ in range(rng.randint(0, 3)):
        assert isinstance(walk.state, Maintenance)
        # Before the window ends: after that the processor may forget the maintenance.
        moment = walk.next_time(before=walk.state.window_end)
        if moment is None:
            break
        if rng.random() < 0.3:
            walk.offer("maintenance.cancelled", moment)
            break
        walk.offer("maintenance.rescheduled", moment, _window(rng, _plain(walk.policy), moment))
    return walk.events


def _window(rng: random.Random, policy: Policy, at: datetime) -> dict[str, str]:
    """A window whose notice is short of, exactly or more than the policy's minimum."""
    notice = policy.maintenance.minimum_notice
    lead = rng.choice(
        (notice * rng.uniform(0.05, 0.95), notice, notice - _US, notice * rng.uniform(1.05, 3))
    )
    start = at + max(lead, _US)
    end = start + timedelta(hours=rng.randint(1, 6))
    return {"window_start": start.isoformat(timespec="microseconds"),
            "window_end": end.isoformat(timespec="microseconds")}  # fmt: skip
