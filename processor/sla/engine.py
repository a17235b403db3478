"""The engine's one entry point for both shells: decide on an event, or advance a subject's clock."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TypeAlias, TypeVar

from processor.sla import maintenance, ticket
from processor.sla.maintenance import Maintenance, MaintenanceDecision
from processor.sla.policy import Policy
from processor.sla.policy_set import Facts, PolicySet, Version, single
from processor.sla.ticket import Decision, Ticket
from processor.sla.values import evolve
from schemas.cloudevents import InputEvent, MaintenanceEvent, TicketOpened

State: TypeAlias = Ticket | Maintenance
AnyDecision: TypeAlias = Decision | MaintenanceDecision
Policies: TypeAlias = Policy | PolicySet  # a plain policy is the set of it alone
_D = TypeVar("_D", Decision, MaintenanceDecision)


class Domain(StrEnum):
    """Tickets and maintenances are separate key spaces: the same subject may name one of each."""

    TICKET = "ticket"
    MAINTENANCE = "maintenance"


def decide(state: State | None, event: InputEvent, policies: Policies) -> AnyDecision:
    """Apply `event` to the subject's state under the policy version governing it; raises
    `Rejected` when the state cannot accept it."""
    book = as_set(policies)
    if isinstance(event, MaintenanceEvent):
        assert state is None or isinstance(state, Maintenance)
        version = book.in_force(book.maintenance, event.time) if state is None else of(state, book)
        return _stamped(maintenance.decide(state, event, version.policy), version)
    assert state is None or isinstance(state, Ticket)
    version = _opening(event, book) if state is None else of(state, book)
    return _stamped(ticket.decide(state, event, version.policy), version)


def advance(state: State, now: datetime, policies: Policies) -> AnyDecision:
    """Fire whatever is due at or before `now`."""
    version = of(state, as_set(policies))
    if isinstance(state, Maintenance):
        return _stamped(maintenance.advance(state, now, version.policy), version)
    return _stamped(ticket.advance(state, now, version.policy), version)


def next_deadline(state: State, policies: Policies) -> datetime | None:
    policy = of(state, as_set(policies)).policy
    if isinstance(state, Maintenance):
        return maintenance.next_deadline(state, policy)
    return ticket.next_deadline(state, policy)


def of(state: State, book: PolicySet) -> Version:
    """The policy version governing a stored state."""
    version = book.versions.get(state.policy)
    if version is not None:
        return version
    if isinstance(state, Maintenance):
        return book.governing(state.policy, state.armed_at, lambda: book.maintenance)
    facts = Facts(state.customer_id, state.tier)
    return book.governing(state.policy, state.opened_at, lambda: book.choose(facts))


def _opening(event: InputEvent, book: PolicySet) -> Version:
    if isinstance(event, TicketOpened):
        data = event.data
        facts = Facts(data.customer_id, data.support_tier, data.contract, data.region)
        return book.select(facts, event.time)
    return book.in_force(book.default, event.time)  # the ticket layer rejects it


def _stamped(decision: _D, version: Version) -> _D:
    """The decision with its state keyed to `version` and every output naming it."""
    state, outputs = decision.state, decision.outputs
    if state is None or state.policy == version.key:
        if not outputs:
            return decision
    else:
        state = evolve(state, policy=version.key)
    for output in outputs:
        # The outputs are new values of this decision that nothing else holds yet: naming the
        # version in place spares a copy of each (0.15 against 3.7 us; a burst emits 100k).
        object.__setattr__(output, "policy", version.key)
    return type(decision)(state, outputs, decision.next_deadline, decision.duplicate)


_SINGLES: dict[int, tuple[Policy, PolicySet]] = {}


def as_set(policies: Policies) -> PolicySet:
    """A policy set as it is, a plain policy as the set of it alone (made once per policy)."""
    if isinstance(policies, PolicySet):
        return policies
    held = _SINGLES.get(id(policies))
    if held is None or held[0] is not policies:
        if len(_SINGLES) > 64:
            _SINGLES.clear()
        held = _SINGLES[id(policies)] = (policies, single(policies))
    return held[1]


def domain_of(event: InputEvent) -> Domain:
    return Domain.MAINTENANCE if isinstance(event, MaintenanceEvent) else Domain.TICKET


__all__ = [
    "AnyDecision",
    "Domain",
    "Policies",
    "State",
    "advance",
    "as_set",
    "decide",
    "domain_of",
    "next_deadline",
    "of",
]
