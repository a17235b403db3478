"""The engine's one entry point for both shells: decide on an event, or advance a subject's clock."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TypeAlias

from processor.sla import maintenance, ticket
from processor.sla.maintenance import Maintenance, MaintenanceDecision
from processor.sla.policy import Policy
from processor.sla.ticket import Decision, Ticket
from schemas.cloudevents import InputEvent, MaintenanceEvent

State: TypeAlias = Ticket | Maintenance
AnyDecision: TypeAlias = Decision | MaintenanceDecision


class Domain(StrEnum):
    """Tickets and maintenances are separate key spaces: the same subject may name one of each."""

    TICKET = "ticket"
    MAINTENANCE = "maintenance"


def decide(state: State | None, event: InputEvent, policy: Policy) -> AnyDecision:
    """Apply `event` to the subject's state; raises `Rejected` when the state cannot accept it."""
    if isinstance(event, MaintenanceEvent):
        assert state is None or isinstance(state, Maintenance)
        return maintenance.decide(state, event, policy)
    assert state is None or isinstance(state, Ticket)
    return ticket.decide(state, event, policy)


def advance(state: State, now: datetime, policy: Policy) -> AnyDecision:
    """Fire whatever is due at or before `now`."""
    if isinstance(state, Maintenance):
        return maintenance.advance(state, now, policy)
    return ticket.advance(state, now, policy)


def next_deadline(state: State, policy: Policy) -> datetime | None:
    if isinstance(state, Maintenance):
        return maintenance.next_deadline(state, policy)
    return ticket.next_deadline(state, policy)


def domain_of(event: InputEvent) -> Domain:
    return Domain.MAINTENANCE if isinstance(event, MaintenanceEvent) else Domain.TICKET


__all__ = ["AnyDecision", "Domain", "State", "advance", "decide", "domain_of", "next_deadline"]
